/* Debian's OpenBLAS (libopenblas-dev) CBLAS interface. */
#include <cblas.h>
