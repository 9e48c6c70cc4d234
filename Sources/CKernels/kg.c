/* Knowledge-graph training kernels: the L1 distance and its gradient (TransE), RotatE's modulus
 * distance and its gradient, the Adam row update, and prefetches of the rows a step is about to
 * touch. AVX2+FMA versions are chosen at run time; the portable ones do the same arithmetic in
 * the same order per lane. */
#include "ckernels.h"

/* No fused multiply-adds but the explicit ones: the compiler would otherwise fuse the scalar tails
 * of the AVX2 functions (built with FMA) and not the portable loops, and the two paths would part
 * by a rounding. */
#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CK_X86 1
#endif

static float l1_portable(const float *a, const float *b, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; i++) { float d = a[i] - b[i]; s += d < 0 ? -d : d; }
    return s;
}

static void l1_sign_axpy_portable(float c, const float *q, const float *x, float *g, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float d = q[i] - x[i];
        g[i] += d > 0 ? c : (d < 0 ? -c : 0.0f);
    }
}

/* x /= ||x|| (left alone when it is 0). */
static void unit_portable(float *x, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; i++) s += x[i] * x[i];
    float norm = __builtin_sqrtf(s);
    if (norm > 0) for (size_t i = 0; i < n; i++) x[i] /= norm;
}

static void adam_portable(float *x, float *m, float *v, const float *g, size_t n, float step, float root_bc2, int unit) {
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    for (size_t i = 0; i < n; i++) {
        float mi = b1 * m[i] + (1 - b1) * g[i];
        float vi = b2 * v[i] + (1 - b2) * g[i] * g[i];
        m[i] = mi; v[i] = vi;
        x[i] = x[i] - step * mi / (__builtin_sqrtf(vi) / root_bc2 + eps);
    }
    if (unit) unit_portable(x, n);
}

/* The RotatE kernels work in blocks of 8 components: the portable versions keep 8 lane sums
 * and reduce them as hsum256 does, so both give the same bits. */
static float hsum8_portable(const float *v) {
    float a0 = v[0] + v[4], a1 = v[1] + v[5], a2 = v[2] + v[6], a3 = v[3] + v[7];
    return (a0 + a2) + (a1 + a3);
}

static float modulus_sum_portable(const float *q, const float *x, size_t d) {
    float acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= d; i += 8)
        for (int l = 0; l < 8; l++) {
            float re = q[i + l] - x[i + l], im = q[d + i + l] - x[d + i + l];
            acc[l] += __builtin_sqrtf(re * re + im * im);
        }
    float s = hsum8_portable(acc);
    for (; i < d; i++) {
        float re = q[i] - x[i], im = q[d + i] - x[d + i];
        s += __builtin_sqrtf(re * re + im * im);
    }
    return s;
}

static void modulus_axpy2_portable(float c, const float *q, const float *x, float *gq, float *gx, size_t d) {
    for (size_t i = 0; i < d; i++) {
        float re = q[i] - x[i], im = q[d + i] - x[d + i];
        float m = __builtin_sqrtf(re * re + im * im);
        float k = m == 0 ? 0.0f : c / m;
        if (gx) { gx[i] += re * k; gx[d + i] += im * k; }
        if (gq) { gq[i] -= re * k; gq[d + i] -= im * k; }
    }
}

#ifdef CK_X86
__attribute__((target("avx2,fma")))
static float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma")))
static float l1_avx2(const float *a, const float *b, size_t n) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_add_ps(acc0, _mm256_andnot_ps(sign, _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i))));
        acc1 = _mm256_add_ps(acc1, _mm256_andnot_ps(sign, _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8))));
    }
    if (i + 8 <= n) {
        acc0 = _mm256_add_ps(acc0, _mm256_andnot_ps(sign, _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i))));
        i += 8;
    }
    float s = hsum256(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) { float d = a[i] - b[i]; s += d < 0 ? -d : d; }
    return s;
}

__attribute__((target("avx2,fma")))
static void l1_sign_axpy_avx2(float c, const float *q, const float *x, float *g, size_t n) {
    const __m256 pc = _mm256_set1_ps(c), nc = _mm256_set1_ps(-c), zero = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(x + i));
        __m256 s = _mm256_or_ps(_mm256_and_ps(_mm256_cmp_ps(d, zero, _CMP_GT_OQ), pc),
                                _mm256_and_ps(_mm256_cmp_ps(d, zero, _CMP_LT_OQ), nc));
        _mm256_storeu_ps(g + i, _mm256_add_ps(_mm256_loadu_ps(g + i), s));
    }
    for (; i < n; i++) {
        float d = q[i] - x[i];
        g[i] += d > 0 ? c : (d < 0 ? -c : 0.0f);
    }
}

/* Separate multiplies and adds (no FMA), as the portable version and PyTorch's CPU Adam. */
__attribute__((target("avx2,fma")))
static void adam_avx2(float *x, float *m, float *v, const float *g, size_t n, float step, float root_bc2, int unit) {
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    const __m256 vb1 = _mm256_set1_ps(b1), vc1 = _mm256_set1_ps(1 - b1), vb2 = _mm256_set1_ps(b2), vc2 = _mm256_set1_ps(1 - b2);
    const __m256 vstep = _mm256_set1_ps(step), vr = _mm256_set1_ps(root_bc2), veps = _mm256_set1_ps(eps);
    __m256 sq = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 gi = _mm256_loadu_ps(g + i);
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(vb1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(vc1, gi));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(vb2, _mm256_loadu_ps(v + i)), _mm256_mul_ps(_mm256_mul_ps(vc2, gi), gi));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        __m256 den = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), vr), veps);
        __m256 xi = _mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_div_ps(_mm256_mul_ps(vstep, mi), den));
        _mm256_storeu_ps(x + i, xi);
        sq = _mm256_fmadd_ps(xi, xi, sq);
    }
    float s = hsum256(sq);
    for (; i < n; i++) {
        float mi = b1 * m[i] + (1 - b1) * g[i];
        float vi = b2 * v[i] + (1 - b2) * g[i] * g[i];
        m[i] = mi; v[i] = vi;
        x[i] = x[i] - step * mi / (__builtin_sqrtf(vi) / root_bc2 + eps);
        s += x[i] * x[i];
    }
    /* The unit-norm projection while the row is still in L1: x / ||x||, as torch's normalize. */
    if (unit) {
        float norm = __builtin_sqrtf(s);
        if (norm > 0) {
            const __m256 vn = _mm256_set1_ps(norm);
            size_t j = 0;
            for (; j + 8 <= n; j += 8) _mm256_storeu_ps(x + j, _mm256_div_ps(_mm256_loadu_ps(x + j), vn));
            for (; j < n; j++) x[j] /= norm;
        }
    }
}
/* Separate multiplies and adds (no FMA), as the portable versions. */
__attribute__((target("avx2,fma")))
static float modulus_sum_avx2(const float *q, const float *x, size_t d) {
    __m256 acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        __m256 re = _mm256_sub_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(x + i));
        __m256 im = _mm256_sub_ps(_mm256_loadu_ps(q + d + i), _mm256_loadu_ps(x + d + i));
        acc = _mm256_add_ps(acc, _mm256_sqrt_ps(_mm256_add_ps(_mm256_mul_ps(re, re), _mm256_mul_ps(im, im))));
    }
    float s = hsum256(acc);
    for (; i < d; i++) {
        float re = q[i] - x[i], im = q[d + i] - x[d + i];
        s += __builtin_sqrtf(re * re + im * im);
    }
    return s;
}

__attribute__((target("avx2,fma")))
static void modulus_axpy2_avx2(float c, const float *q, const float *x, float *gq, float *gx, size_t d) {
    const __m256 vc = _mm256_set1_ps(c), zero = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        __m256 re = _mm256_sub_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(x + i));
        __m256 im = _mm256_sub_ps(_mm256_loadu_ps(q + d + i), _mm256_loadu_ps(x + d + i));
        __m256 m = _mm256_sqrt_ps(_mm256_add_ps(_mm256_mul_ps(re, re), _mm256_mul_ps(im, im)));
        /* c / m, and 0 where m is 0 (the subgradient at a zero modulus). */
        __m256 k = _mm256_andnot_ps(_mm256_cmp_ps(m, zero, _CMP_EQ_OQ), _mm256_div_ps(vc, m));
        __m256 vre = _mm256_mul_ps(re, k), vim = _mm256_mul_ps(im, k);
        if (gx) {
            _mm256_storeu_ps(gx + i, _mm256_add_ps(_mm256_loadu_ps(gx + i), vre));
            _mm256_storeu_ps(gx + d + i, _mm256_add_ps(_mm256_loadu_ps(gx + d + i), vim));
        }
        if (gq) {
            _mm256_storeu_ps(gq + i, _mm256_sub_ps(_mm256_loadu_ps(gq + i), vre));
            _mm256_storeu_ps(gq + d + i, _mm256_sub_ps(_mm256_loadu_ps(gq + d + i), vim));
        }
    }
    for (; i < d; i++) {
        float re = q[i] - x[i], im = q[d + i] - x[d + i];
        float m = __builtin_sqrtf(re * re + im * im);
        float k = m == 0 ? 0.0f : c / m;
        if (gx) { gx[i] += re * k; gx[d + i] += im * k; }
        if (gq) { gq[i] -= re * k; gq[d + i] -= im * k; }
    }
}
#endif

/* 1: AVX2+FMA, 0: portable, -1: not chosen yet (a benign race: every thread picks the same). */
static int kg_avx2 = -1;

static inline int use_avx2(void) {
    int a = __atomic_load_n(&kg_avx2, __ATOMIC_RELAXED);
    if (a < 0) {
#ifdef CK_X86
        __builtin_cpu_init();
        a = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
        a = 0;
#endif
        __atomic_store_n(&kg_avx2, a, __ATOMIC_RELAXED);
    }
    return a;
}

int ck_kg_kernel_table(int simd, struct ck_kg_kernels *out) {
    if (!simd) {
        *out = (struct ck_kg_kernels){l1_portable, l1_sign_axpy_portable, adam_portable, modulus_sum_portable, modulus_axpy2_portable};
        return 1;
    }
#ifdef CK_X86
    if (use_avx2()) {
        *out = (struct ck_kg_kernels){l1_avx2, l1_sign_axpy_avx2, adam_avx2, modulus_sum_avx2, modulus_axpy2_avx2};
        return 1;
    }
#endif
    return 0;
}

float ck_l1_distance(const float *a, const float *b, size_t n) {
#ifdef CK_X86
    if (use_avx2()) return l1_avx2(a, b, n);
#endif
    return l1_portable(a, b, n);
}

void ck_l1_sign_axpy(float c, const float *q, const float *x, float *g, size_t n) {
#ifdef CK_X86
    if (use_avx2()) { l1_sign_axpy_avx2(c, q, x, g, n); return; }
#endif
    l1_sign_axpy_portable(c, q, x, g, n);
}

void ck_adam(float *x, float *m, float *v, const float *g, size_t n, float step, float root_bc2, int unit_norm) {
#ifdef CK_X86
    if (use_avx2()) { adam_avx2(x, m, v, g, n, step, root_bc2, unit_norm); return; }
#endif
    adam_portable(x, m, v, g, n, step, root_bc2, unit_norm);
}

void ck_prefetch(const void *p, size_t bytes) {
    const char *c = (const char *)p;
    for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 1, 3);
    if (bytes) __builtin_prefetch(c + bytes - 1, 1, 3);
}

float ck_modulus_sum(const float *q, const float *x, size_t d) {
#ifdef CK_X86
    if (use_avx2()) return modulus_sum_avx2(q, x, d);
#endif
    return modulus_sum_portable(q, x, d);
}

void ck_modulus_axpy(float c, const float *q, const float *x, float *g, size_t d) {
#ifdef CK_X86
    if (use_avx2()) { modulus_axpy2_avx2(c, q, x, NULL, g, d); return; }
#endif
    modulus_axpy2_portable(c, q, x, NULL, g, d);
}

void ck_modulus_axpy2(float c, const float *q, const float *x, float *gq, float *gx, size_t d) {
#ifdef CK_X86
    if (use_avx2()) { modulus_axpy2_avx2(c, q, x, gq, gx, d); return; }
#endif
    modulus_axpy2_portable(c, q, x, gq, gx, d);
}
