/* The few jemalloc entry points Chorus uses. jemalloc is built from Debian's source package with
 * the symbol prefix `chjem_` and general-dynamic TLS (scripts/build-jemalloc.sh) and linked
 * statically, so its names never collide with the host's malloc and libchorus.so can be
 * dlopen'ed into a running process (Debian's libjemalloc.so.2 uses initial-exec TLS, which
 * glibc refuses to load after start-up: "cannot allocate memory in static TLS block"). */
#include <stddef.h>
void *chjem_mallocx(size_t size, int flags);
void chjem_dallocx(void *ptr, int flags);
size_t chjem_sallocx(const void *ptr, int flags);
int chjem_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
