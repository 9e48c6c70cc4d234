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

/* *lo, *hi = the smallest and largest of x[0..<n], NaNs skipped (+inf and -inf when there are no
 * numbers). AVX2 when the CPU has it. */
void ck_min_max(const float *x, size_t n, float *lo, float *hi);

/* The first index i in [start, n) with x[i] > t (NaN never is), or n. AVX2 when the CPU has it. */
size_t ck_first_above(const float *x, size_t start, size_t n, float t);

/* The k best scores of x[0..n) (k >= 1), best first, ties by lower index; -infinity and NaN never
 * taken: values into out_val, indices into out_idx (room for k each), returns how many (< k when
 * fewer qualify). work: the caller's scratch, room for 2k keys. Indices are int32: n at most
 * INT32_MAX. (topk.c: a reservoir of 2k with quickselect compaction.) */
size_t ck_top_k(const float *x, size_t n, size_t k, float *out_val, int32_t *out_idx, uint64_t *work);

/* ck_row_dots for nq queries, bit for bit, each row chunk loaded once for four queries at a time. */
void ck_row_dots_batch(const float *a, size_t m, size_t k, const float *const *x, float *const *y, size_t nq);

/* ck_row_dots_batch over rows given by pointer (y[q][i] = dot(rows[i], x[q])), bit for bit what
 * ck_row_dots_batch gives the same rows laid out contiguously in the same order. */
void ck_row_dots_gather_batch(const float *const *rows, size_t m, size_t k, const float *const *x, float *const *y, size_t nq);

/* Approximate row dots from 8-bit codes (IVFIndex's scan copy), with bounds: a = scale[i] *
 * sum_j x[j] * codes[i*k + j], lo[i] = a - scale[i] * err, hi[i] = a + scale[i] * err for i in 0..<m.
 * AVX2 when the CPU has it. */
void ck_sq8_dots(const int8_t *codes, const float *scale, size_t m, size_t k, const float *x, float err, float *lo, float *hi);

/* ck_row_dots_f16 for nq queries: y[q][i] = dot(a row i, x[q]), bit for bit what ck_row_dots_f16
 * gives each query alone, with each row chunk converted once for four queries at a time. */
void ck_row_dots_f16_batch(const uint16_t *a, size_t m, size_t k, const float *const *x, float *const *y, size_t nq);

/* One binary16 value as a float. */
float ck_half_to_float(uint16_t h);

/* A PyTorch Linear layer (W as [n, k], row-major; several such layers may share one combined output
 * space, as Q, K and V) with W in IEEE half precision packed in 16-column panels: panel p holds the
 * combined output columns 16p ..< 16p + 16 as [k][16] binary16 values, ceil(n / 16) * 16 * k in all,
 * columns past n zero. */

/* Packs the n rows of w (stride ldw, k used) as the combined columns col0 ..< col0 + n of `panels`,
 * each rounded to the nearest binary16. Zero `panels` first when some panel columns stay unused. */
void ck_linear_f16_pack(const float *w, size_t n, size_t k, size_t ldw, uint16_t *panels, size_t col0);

/* y[r*ldy + j] = bias[j] + Σ_i x[r*ldx + i] w[j, i] for r < rows and the columns j of panels
 * p0 ..< p1 (j < n, the combined width); `y` and `bias` are indexed by combined column, and `bias` has
 * ceil(n / 16) * 16 entries. Products and sums in float (AVX2+FMA+F16C when the CPU has them, a
 * portable loop otherwise); each output is accumulated over i in order from its bias, the same way
 * whatever `rows`, p0 or p1. Single-threaded; callers split the panels over threads. */
void ck_linear_f16(const float *x, size_t rows, size_t k, size_t ldx, const uint16_t *panels,
                   const float *bias, size_t p0, size_t p1, size_t n, float *y, size_t ldy);

/* ck_linear_f16's portable loop, whatever the CPU (a test hook: the tests compare both paths). */
void ck_linear_f16_portable(const float *x, size_t rows, size_t k, size_t ldx, const uint16_t *panels,
                            const float *bias, size_t p0, size_t p1, size_t n, float *y, size_t ldy);

/* x[i] = GELU(x[i]) (erf form, erf within 1.3 ulp; AVX2+FMA when the CPU has it), for i < n. */
void ck_gelu(float *x, size_t n);

/* h[i] = f[i] rounded to the nearest binary16 (ties to even; overflow to infinity), for i < n. */
void ck_float_to_half(const float *f, uint16_t *h, size_t n);

/* 1 when the half-precision kernels use F16C (AVX2+FMA+F16C). */
int ck_uses_f16c(void);

/* Knowledge-graph training (kg.c). sum |a[i] - b[i]| over n floats. */
float ck_l1_distance(const float *a, const float *b, size_t n);

/* g[i] += c * sign(q[i] - x[i]) (0 where they are equal): the L1 distance's gradient. */
void ck_l1_sign_axpy(float c, const float *q, const float *x, float *g, size_t n);

/* torch.optim.Adam on one row (beta 0.9 / 0.999, eps 1e-8): m = b1 m + (1 - b1) g,
 * v = b2 v + (1 - b2) g g, x -= step * m / (sqrt(v) / root_bc2 + eps), with step = lr / bc1;
 * then, when unit_norm is not 0, x /= ||x|| (TransE's constraint; a zero row is left alone). */
void ck_adam(float *x, float *m, float *v, const float *g, size_t n, float step, float root_bc2, int unit_norm);

/* RotatE's distance over d complex components, u = q − x with each row its real block then its
 * imaginary block: Σ_k |u_k|. */
float ck_modulus_sum(const float *q, const float *x, size_t d);

/* Its gradient: g += c · u_k / |u_k| per component (0 where |u_k| = 0), u = q − x. */
void ck_modulus_axpy(float c, const float *q, const float *x, float *g, size_t d);

/* Both sides at once, one square root and division per component: c · ∂f/∂x and c · ∂f/∂q for
 * f = γ − Σ|u_k|, i.e. gx += v and gq −= v with v = c · u_k / |u_k|. Either output may be NULL. */
void ck_modulus_axpy2(float c, const float *q, const float *x, float *gq, float *gx, size_t d);

/* Prefetches [p, p + bytes) for writing, one hint per 64-byte line. */
void ck_prefetch(const void *p, size_t bytes);

/* The knowledge-graph kernels above as one path's functions (a test hook: the tests compare the
 * portable loops with the AVX2 ones on a CPU that has both). */
struct ck_kg_kernels {
    float (*l1_distance)(const float *a, const float *b, size_t n);
    void (*l1_sign_axpy)(float c, const float *q, const float *x, float *g, size_t n);
    void (*adam)(float *x, float *m, float *v, const float *g, size_t n, float step, float root_bc2, int unit_norm);
    float (*modulus_sum)(const float *q, const float *x, size_t d);
    void (*modulus_axpy2)(float c, const float *q, const float *x, float *gq, float *gx, size_t d);
};

/* Fills `out` with the portable functions (simd 0) or the AVX2+FMA ones (simd 1); returns 0, leaving
 * `out` alone, when this CPU cannot run the ones asked for. */
int ck_kg_kernel_table(int simd, struct ck_kg_kernels *out);

/* A spin-wait hint (x86 PAUSE). */
void ck_cpu_relax(void);

/* 1 when the AVX2+FMA path is in use. */
int ck_uses_avx2(void);

/* `steps` steps of BPR's stochastic gradient ascent over one block of stratified SGD: each draws an
 * interaction uniformly from edges[0..<n_edges] (indices into col_index / owner) and a negative
 * uniformly from negatives[0..<n_negatives] (redrawn up to 8 times while the user has it, skipped
 * when it is the positive), then updates the user's row and both item rows (f floats each, the last
 * the item bias). Draws come from the xoshiro256** state (SeededRandom's), updated in place. */
void ck_bpr_block(const int32_t *edges, size_t n_edges, const int32_t *negatives, size_t n_negatives,
                  const int32_t *owner, const int64_t *row_start, const int32_t *col_index,
                  float *users, float *items, size_t f, float lr, float reg, uint64_t state[4], size_t steps);

/* A fold-in's BPR steps on the user side (ChorusAgents/FoldIn.swift): x (f floats) ascends
 * ln σ(x·(q_i − q_j) + b_i − b_j) − reg |x|² / 2 for `steps` draws of a positive i from
 * positives[0..<n_positives] (ascending) and a negative j uniform over the n_items rows of `items`
 * (f + 1 floats each, the last the bias; redrawn up to 8 times while a positive, skipped when i). */
void ck_bpr_fold_user(float *x, size_t f, const int32_t *positives, size_t n_positives, const float *items,
                      size_t n_items, float lr, float reg, uint64_t state[4], size_t steps);

/* A new item's BPR placement (ChorusAgents/FoldIn.swift): y (f + 1 floats, the last its bias)
 * ascends ln σ(x_u·(y − q_j)) − reg |y|² / 2 for `steps` draws of a user row x_u from `users`
 * (n_users rows of f + 1 floats, the last 1) and a negative row q_j of `items` (n_items rows). */
void ck_bpr_fold_item(float *y, size_t f, const float *users, size_t n_users, const float *items, size_t n_items,
                      float lr, float reg, uint64_t state[4], size_t steps);

#endif
