/* Declarations only (include/chorus_fuzz.h): libFuzzer defines them in the instrumented build. */
#include "chorus_fuzz.h"
