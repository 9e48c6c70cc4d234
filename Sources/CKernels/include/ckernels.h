/* Hot numeric kernels in C, so that they can carry per-function target attributes: an AVX2+FMA
 * version is chosen at run time when the CPU has it, with a portable version otherwise. The
 * library itself stays built for baseline x86-64, so it loads on any x86-64 CPU.
 * Internal to libchorus.so: not exported (exports.map keeps only chorus_*). */
#ifndef CHORUS_CKERNELS_H
#define CHORUS_CKERNELS_H
#include <stddef.h>

/* y[i] = dot(a[i*k .. i*k+k), x) for i in 0..<m: one user's scores against every item. */
void ck_row_dots(const float *a, size_t m, size_t k, const float *x, float *y);

/* 1 when the AVX2+FMA path is in use. */
int ck_uses_avx2(void);

#endif
