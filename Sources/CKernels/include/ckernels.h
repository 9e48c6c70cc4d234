/* Hot numeric kernels in C, so that they can carry per-function target attributes: an AVX2+FMA
 * version is chosen at run time when the CPU has it, with a portable version otherwise. The
 * library itself stays built for baseline x86-64, so it loads on any x86-64 CPU.
 * Internal to libchorus.so: not exported (exports.map keeps only chorus_*). */
#ifndef CHORUS_CKERNELS_H
#define CHORUS_CKERNELS_H
#include <stddef.h>
#include <stdint.h>

/* y[i] = dot(a[i*k .. i*k+k), x) for i in 0..<m: one user's scores against every item. */
void ck_row_dots(const float *a, size_t m, size_t k, const float *x, float *y);

/* As ck_row_dots with `a` in IEEE half precision (binary16 bits): half the memory traffic. */
void ck_row_dots_f16(const uint16_t *a, size_t m, size_t k, const float *x, float *y);

/* One binary16 value as a float. */
float ck_half_to_float(uint16_t h);

/* y[r*ldy + j] = bias[j] + dot(x[r*ldx .. +k), w[j*ldw .. +k)) for r < rows, j < n: a PyTorch Linear
 * layer (W as [n, k], row-major) on `rows` rows, reading W in place. With at least
 * CK_LINEAR_PACK_ROWS rows and a `panel` scratch of 16 * (k + 1) floats, each 16-column panel of W
 * is first transposed into it (a faster kernel once enough rows share the copy); `panel` may be NULL.
 * Single-threaded; callers split the columns over threads (each call writes only its own columns). */
#define CK_LINEAR_PACK_ROWS 64
void ck_linear(const float *x, size_t rows, size_t k, size_t ldx, const float *w, size_t ldw,
               const float *bias, size_t n, float *y, size_t ldy, float *panel);

/* Knowledge-graph training (kg.c). sum |a[i] - b[i]| over n floats. */
float ck_l1_distance(const float *a, const float *b, size_t n);

/* g[i] += c * sign(q[i] - x[i]) (0 where they are equal): the L1 distance's gradient. */
void ck_l1_sign_axpy(float c, const float *q, const float *x, float *g, size_t n);

/* torch.optim.Adam on one row (beta 0.9 / 0.999, eps 1e-8): m = b1 m + (1 - b1) g,
 * v = b2 v + (1 - b2) g g, x -= step * m / (sqrt(v) / root_bc2 + eps), with step = lr / bc1;
 * then, when unit_norm is not 0, x /= ||x|| (TransE's constraint; a zero row is left alone). */
void ck_adam(float *x, float *m, float *v, const float *g, size_t n, float step, float root_bc2, int unit_norm);

/* Prefetches [p, p + bytes) for writing, one hint per 64-byte line. */
void ck_prefetch(const void *p, size_t bytes);

/* A spin-wait hint (x86 PAUSE). */
void ck_cpu_relax(void);

/* 1 when the AVX2+FMA path is in use. */
int ck_uses_avx2(void);

#endif
