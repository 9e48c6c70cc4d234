#include <string.h>
#include "ckernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CK_X86 1
#endif

/* Also every vector path's scalar tail (a call's last rows past a multiple of 4). Never inlined
 * and never contracted into fused multiply-adds: inlined into an AVX2+FMA function the compiler
 * may fuse or not depending on the call site (a constant m = 1 did), and every path must give a
 * row the same bits. */
__attribute__((noinline))
static void row_dots_portable(const float *a, size_t m, size_t k, const float *x, float *y) {
#pragma clang fp contract(off)
    for (size_t i = 0; i < m; i++) {
        const float *r = a + i * k;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        size_t j = 0;
        for (; j + 4 <= k; j += 4) {
            s0 += r[j] * x[j];
            s1 += r[j + 1] * x[j + 1];
            s2 += r[j + 2] * x[j + 2];
            s3 += r[j + 3] * x[j + 3];
        }
        for (; j < k; j++) s0 += r[j] * x[j];
        y[i] = (s0 + s1) + (s2 + s3);
    }
}

#ifdef CK_X86
/* Four rows share each load of x; the four 8-lane accumulators are reduced together with two
 * horizontal adds. The rows are any four (contiguous in row_dots_avx2, gathered by index in
 * ck_row_dots_gather_batch): a row's result does not depend on where it sits. */
__attribute__((target("avx2,fma"), always_inline))
static inline __m128 dot_4rows_avx2(const float *r0, const float *r1, const float *r2, const float *r3, size_t k, const float *x) {
    const size_t kv = k & ~(size_t)7;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    for (size_t j = 0; j < kv; j += 8) {
        const __m256 xv = _mm256_loadu_ps(x + j);
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + j), xv, s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(r1 + j), xv, s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(r2 + j), xv, s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(r3 + j), xv, s3);
    }
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
    __m128 out = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    if (kv < k) {
        /* Explicit fused multiply-adds: the same operations in ck_row_dots_batch's kernel,
         * whatever the compiler would contract. */
        float tail[4] = {0, 0, 0, 0};
        for (size_t j = kv; j < k; j++) {
            tail[0] = __builtin_fmaf(r0[j], x[j], tail[0]); tail[1] = __builtin_fmaf(r1[j], x[j], tail[1]);
            tail[2] = __builtin_fmaf(r2[j], x[j], tail[2]); tail[3] = __builtin_fmaf(r3[j], x[j], tail[3]);
        }
        out = _mm_add_ps(out, _mm_loadu_ps(tail));
    }
    return out;
}

__attribute__((target("avx2,fma")))
static void row_dots_avx2(const float *a, size_t m, size_t k, const float *x, float *y) {
    size_t i = 0;
    for (; i + 4 <= m; i += 4) {
        const float *r0 = a + i * k;
        _mm_storeu_ps(y + i, dot_4rows_avx2(r0, r0 + k, r0 + 2 * k, r0 + 3 * k, k, x));
    }
    if (i < m) row_dots_portable(a + i * k, m - i, k, x, y + i);
}
#endif

/* IEEE half (binary16) bits to float, for the portable path. */
static float half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) { bits = sign; }
        else { /* subnormal: normalise */
            uint32_t e = 113, m = mant;
            while (!(m & 0x400)) { m <<= 1; e--; }
            bits = sign | (e << 23) | ((m & 0x3FF) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static void row_dots_f16_portable(const uint16_t *a, size_t m, size_t k, const float *x, float *y) {
    for (size_t i = 0; i < m; i++) {
        const uint16_t *r = a + i * k;
        float s = 0;
        for (size_t j = 0; j < k; j++) s += half_to_float(r[j]) * x[j];
        y[i] = s;
    }
}

#ifdef CK_X86
/* As row_dots_avx2, reading half-precision rows (F16C converts 8 lanes per instruction): half the
 * memory traffic, which is what bounds a scan over a large catalogue. */
__attribute__((target("avx2,fma,f16c")))
static void row_dots_f16_avx2(const uint16_t *a, size_t m, size_t k, const float *x, float *y) {
    size_t i = 0;
    const size_t kv = k & ~(size_t)7;
    for (; i + 4 <= m; i += 4) {
        const uint16_t *r0 = a + i * k, *r1 = r0 + k, *r2 = r1 + k, *r3 = r2 + k;
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
        for (size_t j = 0; j < kv; j += 8) {
            const __m256 xv = _mm256_loadu_ps(x + j);
            s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r0 + j))), xv, s0);
            s1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r1 + j))), xv, s1);
            s2 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r2 + j))), xv, s2);
            s3 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r3 + j))), xv, s3);
        }
        const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
        __m128 out = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
        if (kv < k) {
            float tail[4] = {0, 0, 0, 0};
            for (size_t j = kv; j < k; j++) {
                tail[0] += half_to_float(r0[j]) * x[j]; tail[1] += half_to_float(r1[j]) * x[j];
                tail[2] += half_to_float(r2[j]) * x[j]; tail[3] += half_to_float(r3[j]) * x[j];
            }
            out = _mm_add_ps(out, _mm_loadu_ps(tail));
        }
        _mm_storeu_ps(y + i, out);
    }
    if (i < m) row_dots_f16_portable(a + i * k, m - i, k, x, y + i);
}
#endif

#ifdef CK_X86
/* AVX-512 (full 512-bit FMA units on the CPUs that have them: twice AVX2's multiply-adds per
 * cycle), for half-precision rows whose width is a multiple of 16 (the content agent's 384). */
static int has_avx512(void) {
    static int has = -1;
    int h = __atomic_load_n(&has, __ATOMIC_RELAXED);
    if (h < 0) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
            && __builtin_cpu_supports("f16c");
        __atomic_store_n(&has, h, __ATOMIC_RELAXED);
    }
    return h;
}

/* A 16-lane accumulator folded to 8 lanes (low half + high half), then four of them reduced by
 * the AVX2 kernels' hadd tree: the one reduction of every AVX-512 dot product below, so a
 * (row, query) pair gets the same bits whichever kernel computes it. */
__attribute__((target("avx512f,avx2")))
static inline __m256 fold512(__m512 s) {
    return _mm256_add_ps(_mm512_castps512_ps256(s), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1)));
}

__attribute__((target("avx512f,avx2")))
static inline __m128 reduce4x512(__m512 s0, __m512 s1, __m512 s2, __m512 s3) {
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(fold512(s0), fold512(s1)), _mm256_hadd_ps(fold512(s2), fold512(s3)));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* Rows r[0..3] against x (k a multiple of 16) into out[0..3]. */
__attribute__((target("avx512f,avx2,fma,f16c")))
static inline void dots4_f16_avx512(const uint16_t *const r[4], size_t k, const float *x, float *out) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t j = 0; j < k; j += 16) {
        const __m512 xv = _mm512_loadu_ps(x + j);
        s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(r[0] + j))), xv, s0);
        s1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(r[1] + j))), xv, s1);
        s2 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(r[2] + j))), xv, s2);
        s3 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(r[3] + j))), xv, s3);
    }
    _mm_storeu_ps(out, reduce4x512(s0, s1, s2, s3));
}

/* ck_row_dots_f16 with AVX-512: four rows at a time; the last m % 4 rows by the same code with
 * the missing rows standing in as copies of the first (their results dropped). */
__attribute__((target("avx512f,avx2,fma,f16c")))
static void row_dots_f16_avx512(const uint16_t *a, size_t m, size_t k, const float *x, float *y) {
    size_t i = 0;
    float out[4];
    for (; i + 4 <= m; i += 4) {
        const uint16_t *r[4] = { a + i * k, a + (i + 1) * k, a + (i + 2) * k, a + (i + 3) * k };
        dots4_f16_avx512(r, k, x, y + i);
    }
    if (i < m) {
        const uint16_t *r[4];
        for (size_t j = 0; j < 4; j++) r[j] = a + (i + (i + j < m ? j : 0)) * k;
        dots4_f16_avx512(r, k, x, out);
        for (size_t j = 0; i + j < m; j++) y[i + j] = out[j];
    }
}

/* Four queries over rows r_lo ..< r_hi (a multiple of 4): four rows at a time, each row chunk
 * converted once for the four queries and each query chunk loaded once for the four rows (16
 * accumulators: 8 loads and 4 conversions per 16 multiply-adds); per (row, query) the
 * accumulation and reduction of row_dots_f16_avx512, so its bits. */
__attribute__((target("avx512f,avx2,fma,f16c")))
static void row_dots_f16_4q_avx512(const uint16_t *a, size_t r_lo, size_t r_hi, size_t k, const float *const *x,
                                   float *const *y) {
    for (size_t i = r_lo; i + 4 <= r_hi; i += 4) {
        const uint16_t *r0 = a + i * k, *r1 = r0 + k, *r2 = r1 + k, *r3 = r2 + k;
        __m512 s[4][4];
        for (int u = 0; u < 4; u++) for (int q = 0; q < 4; q++) s[u][q] = _mm512_setzero_ps();
        for (size_t j = 0; j < k; j += 16) {
            const __m512 x0 = _mm512_loadu_ps(x[0] + j), x1 = _mm512_loadu_ps(x[1] + j);
            const __m512 x2 = _mm512_loadu_ps(x[2] + j), x3 = _mm512_loadu_ps(x[3] + j);
            const __m512 t0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(r0 + j)));
            const __m512 t1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(r1 + j)));
            const __m512 t2 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(r2 + j)));
            const __m512 t3 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(r3 + j)));
            s[0][0] = _mm512_fmadd_ps(t0, x0, s[0][0]); s[0][1] = _mm512_fmadd_ps(t0, x1, s[0][1]);
            s[0][2] = _mm512_fmadd_ps(t0, x2, s[0][2]); s[0][3] = _mm512_fmadd_ps(t0, x3, s[0][3]);
            s[1][0] = _mm512_fmadd_ps(t1, x0, s[1][0]); s[1][1] = _mm512_fmadd_ps(t1, x1, s[1][1]);
            s[1][2] = _mm512_fmadd_ps(t1, x2, s[1][2]); s[1][3] = _mm512_fmadd_ps(t1, x3, s[1][3]);
            s[2][0] = _mm512_fmadd_ps(t2, x0, s[2][0]); s[2][1] = _mm512_fmadd_ps(t2, x1, s[2][1]);
            s[2][2] = _mm512_fmadd_ps(t2, x2, s[2][2]); s[2][3] = _mm512_fmadd_ps(t2, x3, s[2][3]);
            s[3][0] = _mm512_fmadd_ps(t3, x0, s[3][0]); s[3][1] = _mm512_fmadd_ps(t3, x1, s[3][1]);
            s[3][2] = _mm512_fmadd_ps(t3, x2, s[3][2]); s[3][3] = _mm512_fmadd_ps(t3, x3, s[3][3]);
        }
        for (int u = 0; u < 4; u++) {
            float o[4];
            _mm_storeu_ps(o, reduce4x512(s[u][0], s[u][1], s[u][2], s[u][3]));
            for (int q = 0; q < 4; q++) y[q][i + (size_t)u] = o[q];
        }
    }
}
#endif

void ck_row_dots_f16(const uint16_t *a, size_t m, size_t k, const float *x, float *y) {
#ifdef CK_X86
    if (k % 16 == 0 && has_avx512()) { row_dots_f16_avx512(a, m, k, x, y); return; }
    static int has = -1;
    int h = __atomic_load_n(&has, __ATOMIC_RELAXED);
    if (h < 0) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
        __atomic_store_n(&has, h, __ATOMIC_RELAXED);
    }
    if (h) { row_dots_f16_avx2(a, m, k, x, y); return; }
#endif
    row_dots_f16_portable(a, m, k, x, y);
}

float ck_half_to_float(uint16_t h) { return half_to_float(h); }

/* Round to nearest even, as the F16C instruction with _MM_FROUND_TO_NEAREST_INT. */
static uint16_t float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    const uint32_t a = x & 0x7FFFFFFFu;
    if (a >= 0x7F800000u) return sign | 0x7C00 | (a > 0x7F800000u ? 0x200 | ((a >> 13) & 0x3FF) : 0); /* inf, NaN (quiet) */
    if (a >= 0x477FF000u) return sign | 0x7C00;        /* rounds to >= 65520: infinity */
    if (a < 0x38800000u) {                              /* below the smallest normal half: subnormal or 0 */
        if (a < 0x33000000u) return sign;               /* <= 2^-25: rounds to 0 */
        const uint32_t e = a >> 23, m = (a & 0x7FFFFF) | 0x800000;
        const uint32_t shift = 126 - e;                 /* 14..24 */
        uint32_t q = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return sign | (uint16_t)q;
    }
    uint32_t q = ((a >> 13) - (112u << 10));            /* rebias the exponent, keep 10 mantissa bits */
    const uint32_t rem = a & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) q++; /* a carry into the exponent is still right */
    return sign | (uint16_t)q;
}

static int has_f16c(void) {
#ifdef CK_X86
    static int has = -1;
    int h = __atomic_load_n(&has, __ATOMIC_RELAXED);
    if (h < 0) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
        __atomic_store_n(&has, h, __ATOMIC_RELAXED);
    }
    return h;
#else
    return 0;
#endif
}

int ck_uses_f16c(void) { return has_f16c(); }

#ifdef CK_X86
__attribute__((target("avx2,f16c")))
static void float_to_half_f16c(const float *f, uint16_t *h, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(f + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) h[i] = float_to_half(f[i]);
}
#endif

void ck_float_to_half(const float *f, uint16_t *h, size_t n) {
#ifdef CK_X86
    if (has_f16c()) { float_to_half_f16c(f, h, n); return; }
#endif
    for (size_t i = 0; i < n; i++) h[i] = float_to_half(f[i]);
}

typedef void (*row_dots_fn)(const float *, size_t, size_t, const float *, float *);

static row_dots_fn choose(void) {
#ifdef CK_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return row_dots_avx2;
#endif
    return row_dots_portable;
}

/* Chosen once; a benign race (every thread computes the same pointer). */
static row_dots_fn row_dots_impl;

void ck_row_dots(const float *a, size_t m, size_t k, const float *x, float *y) {
    row_dots_fn f = __atomic_load_n(&row_dots_impl, __ATOMIC_RELAXED);
    if (!f) {
        f = choose();
        __atomic_store_n(&row_dots_impl, f, __ATOMIC_RELAXED);
    }
    f(a, m, k, x, y);
}

int ck_uses_avx2(void) {
    row_dots_fn f = __atomic_load_n(&row_dots_impl, __ATOMIC_RELAXED);
    if (!f) {
        f = choose();
        __atomic_store_n(&row_dots_impl, f, __ATOMIC_RELAXED);
    }
    return f != row_dots_portable;
}

void ck_cpu_relax(void) {
#ifdef CK_X86
    _mm_pause();
#endif
}

/* The smallest and largest of x[0..<n], NaNs skipped (lo = +inf, hi = -inf when none is a number).
 * A scalar Swift loop with min/max does not vectorise (their NaN rules); MINPS/MAXPS with the
 * accumulator as the second operand return it when the new value is NaN, the same rule. */
static void min_max_portable(const float *x, size_t n, float *lo, float *hi) {
    float l = __builtin_inff(), h = -__builtin_inff();
    for (size_t i = 0; i < n; i++) {
        if (x[i] < l) l = x[i];
        if (x[i] > h) h = x[i];
    }
    *lo = l; *hi = h;
}

#ifdef CK_X86
__attribute__((target("avx2")))
static void min_max_avx2(const float *x, size_t n, float *lo, float *hi) {
    __m256 l0 = _mm256_set1_ps(__builtin_inff()), l1 = l0, h0 = _mm256_set1_ps(-__builtin_inff()), h1 = h0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        l0 = _mm256_min_ps(a, l0); h0 = _mm256_max_ps(a, h0);
        l1 = _mm256_min_ps(b, l1); h1 = _mm256_max_ps(b, h1);
    }
    float ls[8], hs[8];
    _mm256_storeu_ps(ls, _mm256_min_ps(l0, l1));
    _mm256_storeu_ps(hs, _mm256_max_ps(h0, h1));
    float l, h;
    min_max_portable(x + i, n - i, &l, &h);
    for (int j = 0; j < 8; j++) { if (ls[j] < l) l = ls[j]; if (hs[j] > h) h = hs[j]; }
    *lo = l; *hi = h;
}
#endif

void ck_min_max(const float *x, size_t n, float *lo, float *hi) {
#ifdef CK_X86
    if (ck_uses_avx2()) { min_max_avx2(x, n, lo, hi); return; }
#endif
    min_max_portable(x, n, lo, hi);
}

/* The first index i in [start, n) with x[i] > t (ordered compare: NaN never is), or n. Top-k's scan:
 * most scores fail its threshold, and 8 fail per compare here. */
static size_t first_above_portable(const float *x, size_t start, size_t n, float t) {
    for (size_t i = start; i < n; i++) if (x[i] > t) return i;
    return n;
}

#ifdef CK_X86
__attribute__((target("avx2")))
static size_t first_above_avx2(const float *x, size_t start, size_t n, float t) {
    const __m256 tv = _mm256_set1_ps(t);
    size_t i = start;
    for (; i + 8 <= n; i += 8) {
        const int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), tv, _CMP_GT_OQ));
        if (mask) return i + (size_t)__builtin_ctz((unsigned)mask);
    }
    return first_above_portable(x, i, n, t);
}
#endif

size_t ck_first_above(const float *x, size_t start, size_t n, float t) {
#ifdef CK_X86
    if (ck_uses_avx2()) return first_above_avx2(x, start, n, t);
#endif
    return first_above_portable(x, start, n, t);
}

#ifdef CK_X86
/* Four queries against rows r_lo ..< r_hi of `a` (binary16, k columns, k a multiple of 8), y[q][i]
 * for each: 2 rows at a time, each 8-lane chunk of a row converted once and used for all four
 * queries. Each (row, query) accumulates over j exactly as row_dots_f16_avx2 does, and its 8 lanes
 * are reduced by the same hadd tree (hadd(hadd(a, b), hadd(c, d)), then the two 128-bit halves
 * added), so the results are bit for bit row_dots_f16_avx2's. */
__attribute__((target("avx2,fma,f16c")))
static void row_dots_f16_4q_avx2(const uint16_t *a, size_t r_lo, size_t r_hi, size_t k, const float *const *x,
                                 float *const *y) {
    for (size_t i = r_lo; i + 2 <= r_hi; i += 2) {
        const uint16_t *r0 = a + i * k, *r1 = r0 + k;
        __m256 s00 = _mm256_setzero_ps(), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00;
        for (size_t j = 0; j < k; j += 8) {
            const __m256 x0 = _mm256_loadu_ps(x[0] + j), x1 = _mm256_loadu_ps(x[1] + j);
            const __m256 x2 = _mm256_loadu_ps(x[2] + j), x3 = _mm256_loadu_ps(x[3] + j);
            const __m256 t0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r0 + j)));
            s00 = _mm256_fmadd_ps(t0, x0, s00); s01 = _mm256_fmadd_ps(t0, x1, s01);
            s02 = _mm256_fmadd_ps(t0, x2, s02); s03 = _mm256_fmadd_ps(t0, x3, s03);
            const __m256 t1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r1 + j)));
            s10 = _mm256_fmadd_ps(t1, x0, s10); s11 = _mm256_fmadd_ps(t1, x1, s11);
            s12 = _mm256_fmadd_ps(t1, x2, s12); s13 = _mm256_fmadd_ps(t1, x3, s13);
        }
        const __m256 h0 = _mm256_hadd_ps(_mm256_hadd_ps(s00, s01), _mm256_hadd_ps(s02, s03));
        const __m256 h1 = _mm256_hadd_ps(_mm256_hadd_ps(s10, s11), _mm256_hadd_ps(s12, s13));
        float o0[4], o1[4];
        _mm_storeu_ps(o0, _mm_add_ps(_mm256_castps256_ps128(h0), _mm256_extractf128_ps(h0, 1)));
        _mm_storeu_ps(o1, _mm_add_ps(_mm256_castps256_ps128(h1), _mm256_extractf128_ps(h1, 1)));
        for (int q = 0; q < 4; q++) { y[q][i] = o0[q]; y[q][i + 1] = o1[q]; }
    }
}
#endif

void ck_row_dots_f16_batch(const uint16_t *a, size_t m, size_t k, const float *const *x, float *const *y, size_t nq) {
    size_t q = 0;
#ifdef CK_X86
    /* Whole groups of 4 rows take the 4-query kernel; the last m % 4 rows, and columns that are not
     * a multiple of 8, go through ck_row_dots_f16 itself, so they are computed by the very code a
     * single query runs (the compiler may contract its scalar tails differently elsewhere). */
    if (has_f16c() && k % 8 == 0) {
        const size_t full = m & ~(size_t)3;
        const int wide = k % 16 == 0 && has_avx512();   /* as ck_row_dots_f16 chooses */
        for (; q + 4 <= nq; q += 4) {
            if (wide) row_dots_f16_4q_avx512(a, 0, full, k, x + q, y + q); else row_dots_f16_4q_avx2(a, 0, full, k, x + q, y + q);
            if (full < m) for (size_t j = 0; j < 4; j++) ck_row_dots_f16(a + full * k, m - full, k, x[q + j], y[q + j] + full);
        }
    }
#endif
    for (; q < nq; q++) ck_row_dots_f16(a, m, k, x[q], y[q]);
}

#ifdef CK_X86
/* Two rows against four queries, each row chunk loaded once for the four: the same accumulation
 * and reduction per (row, query) as dot_4rows_avx2, so bit for bit its results. o0[q], o1[q]:
 * row 0's and row 1's dot with query q. */
__attribute__((target("avx2,fma"), always_inline))
static inline void dot_2rows_4q_avx2(const float *r0, const float *r1, size_t k, const float *const *x, float o0[4], float o1[4]) {
    const size_t kv = k & ~(size_t)7;
    __m256 s00 = _mm256_setzero_ps(), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00;
    for (size_t j = 0; j < kv; j += 8) {
        const __m256 x0 = _mm256_loadu_ps(x[0] + j), x1 = _mm256_loadu_ps(x[1] + j);
        const __m256 x2 = _mm256_loadu_ps(x[2] + j), x3 = _mm256_loadu_ps(x[3] + j);
        const __m256 t0 = _mm256_loadu_ps(r0 + j);
        s00 = _mm256_fmadd_ps(t0, x0, s00); s01 = _mm256_fmadd_ps(t0, x1, s01);
        s02 = _mm256_fmadd_ps(t0, x2, s02); s03 = _mm256_fmadd_ps(t0, x3, s03);
        const __m256 t1 = _mm256_loadu_ps(r1 + j);
        s10 = _mm256_fmadd_ps(t1, x0, s10); s11 = _mm256_fmadd_ps(t1, x1, s11);
        s12 = _mm256_fmadd_ps(t1, x2, s12); s13 = _mm256_fmadd_ps(t1, x3, s13);
    }
    const __m256 h0 = _mm256_hadd_ps(_mm256_hadd_ps(s00, s01), _mm256_hadd_ps(s02, s03));
    const __m256 h1 = _mm256_hadd_ps(_mm256_hadd_ps(s10, s11), _mm256_hadd_ps(s12, s13));
    __m128 v0 = _mm_add_ps(_mm256_castps256_ps128(h0), _mm256_extractf128_ps(h0, 1));
    __m128 v1 = _mm_add_ps(_mm256_castps256_ps128(h1), _mm256_extractf128_ps(h1, 1));
    if (kv < k) { /* dot_4rows_avx2's tail: per (row, query), explicit fused multiply-adds in order */
        float t0[4] = {0, 0, 0, 0}, t1[4] = {0, 0, 0, 0};
        for (int q = 0; q < 4; q++) {
            for (size_t j = kv; j < k; j++) { t0[q] = __builtin_fmaf(r0[j], x[q][j], t0[q]); t1[q] = __builtin_fmaf(r1[j], x[q][j], t1[q]); }
        }
        v0 = _mm_add_ps(v0, _mm_loadu_ps(t0)); v1 = _mm_add_ps(v1, _mm_loadu_ps(t1));
    }
    _mm_storeu_ps(o0, v0); _mm_storeu_ps(o1, v1);
}

/* ck_row_dots_f16_batch's kernel for float rows. */
__attribute__((target("avx2,fma")))
static void row_dots_4q_avx2(const float *a, size_t r_lo, size_t r_hi, size_t k, const float *const *x, float *const *y) {
    for (size_t i = r_lo; i + 2 <= r_hi; i += 2) {
        float o0[4], o1[4];
        dot_2rows_4q_avx2(a + i * k, a + (i + 1) * k, k, x, o0, o1);
        for (int q = 0; q < 4; q++) { y[q][i] = o0[q]; y[q][i + 1] = o1[q]; }
    }
}

/* Rows gathered by pointer: a row's lines are fetched 16 rows ahead into L2, since the hardware
 * prefetchers do not follow rows scattered over the matrix (bench/ivf's mixture, 1M x 64, one
 * query at nprobe 64: 1.06 ms with none, 0.84 ms so; 8 ahead or 32 ahead, or into L1, no better). */
#define CK_GATHER_AHEAD 16
__attribute__((always_inline))
static inline void prefetch_row(const float *r, size_t k) {
    for (size_t b = 0; b < k * sizeof(float); b += 64) __builtin_prefetch((const char *)r + b, 0, 2);
}

__attribute__((target("avx2,fma")))
static void gather_dots_avx2(const float *const *rows, size_t m, size_t k, const float *x, float *y) {
    size_t i = 0;
    for (; i + 4 <= m; i += 4) {
        for (size_t p = i + CK_GATHER_AHEAD; p < i + CK_GATHER_AHEAD + 4 && p < m; p++) prefetch_row(rows[p], k);
        _mm_storeu_ps(y + i, dot_4rows_avx2(rows[i], rows[i + 1], rows[i + 2], rows[i + 3], k, x));
    }
    for (; i < m; i++) row_dots_portable(rows[i], 1, k, x, y + i);
}

__attribute__((target("avx2,fma")))
static void gather_dots_4q_avx2(const float *const *rows, size_t m, size_t k, const float *const *x, float *const *y) {
    for (size_t i = 0; i + 2 <= m; i += 2) {
        for (size_t p = i + CK_GATHER_AHEAD; p < i + CK_GATHER_AHEAD + 2 && p < m; p++) prefetch_row(rows[p], k);
        float o0[4], o1[4];
        dot_2rows_4q_avx2(rows[i], rows[i + 1], k, x, o0, o1);
        for (int q = 0; q < 4; q++) { y[q][i] = o0[q]; y[q][i + 1] = o1[q]; }
    }
}
#endif

/* 8-bit codes (IVFIndex's scan copy): row i's approximate dot with x is
 * a = scale[i] * sum_j x[j] * codes[i*k + j]; lo[i] = a - scale[i] * err, hi[i] = a + scale[i] * err.
 * The caller's err makes [lo, hi] hold the exact dot; no bit-for-bit contract. */
static void sq8_dots_portable(const int8_t *codes, const float *scale, size_t m, size_t k, const float *x, float err,
                              float *lo, float *hi) {
    for (size_t i = 0; i < m; i++) {
        const int8_t *r = codes + i * k;
        float s = 0;
        for (size_t j = 0; j < k; j++) s += x[j] * (float)r[j];
        const float a = scale[i] * s, e = scale[i] * err;
        lo[i] = a - e;
        hi[i] = a + e;
    }
}

#ifdef CK_X86
__attribute__((target("avx2,fma")))
static void sq8_dots_avx2(const int8_t *codes, const float *scale, size_t m, size_t k, const float *x, float err,
                          float *lo, float *hi) {
    size_t i = 0;
    const __m128 ev = _mm_set1_ps(err);
    const size_t kv = k & ~(size_t)7;
    for (; i + 4 <= m; i += 4) {
        const int8_t *r0 = codes + i * k, *r1 = r0 + k, *r2 = r1 + k, *r3 = r2 + k;
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (size_t j = 0; j < kv; j += 8) {
            const __m256 xv = _mm256_loadu_ps(x + j);
#define CK_SQ8_LANE(r) _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)((r) + j))))
            s0 = _mm256_fmadd_ps(CK_SQ8_LANE(r0), xv, s0);
            s1 = _mm256_fmadd_ps(CK_SQ8_LANE(r1), xv, s1);
            s2 = _mm256_fmadd_ps(CK_SQ8_LANE(r2), xv, s2);
            s3 = _mm256_fmadd_ps(CK_SQ8_LANE(r3), xv, s3);
#undef CK_SQ8_LANE
        }
        const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(s0, s1), _mm256_hadd_ps(s2, s3));
        __m128 sum = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
        if (kv < k) { /* a width past a multiple of 8 (BPR's item bias column) */
            float t[4] = {0, 0, 0, 0};
            for (size_t j = kv; j < k; j++) {
                t[0] += x[j] * (float)r0[j]; t[1] += x[j] * (float)r1[j]; t[2] += x[j] * (float)r2[j]; t[3] += x[j] * (float)r3[j];
            }
            sum = _mm_add_ps(sum, _mm_loadu_ps(t));
        }
        const __m128 sc = _mm_loadu_ps(scale + i);
        const __m128 a = _mm_mul_ps(sum, sc);
        const __m128 e = _mm_mul_ps(sc, ev);
        _mm_storeu_ps(lo + i, _mm_sub_ps(a, e));
        _mm_storeu_ps(hi + i, _mm_add_ps(a, e));
    }
    if (i < m) sq8_dots_portable(codes + i * k, scale + i, m - i, k, x, err, lo + i, hi + i);
}
#endif

void ck_sq8_dots(const int8_t *codes, const float *scale, size_t m, size_t k, const float *x, float err, float *lo, float *hi) {
#ifdef CK_X86
    if (ck_uses_avx2()) { sq8_dots_avx2(codes, scale, m, k, x, err, lo, hi); return; }
#endif
    sq8_dots_portable(codes, scale, m, k, x, err, lo, hi);
}

void ck_row_dots_batch(const float *a, size_t m, size_t k, const float *const *x, float *const *y, size_t nq) {
    size_t q = 0;
#ifdef CK_X86
    if (ck_uses_avx2()) {
        const size_t full = m & ~(size_t)3;
        for (; q + 4 <= nq; q += 4) {
            row_dots_4q_avx2(a, 0, full, k, x + q, y + q);
            if (full < m) for (size_t j = 0; j < 4; j++) ck_row_dots(a + full * k, m - full, k, x[q + j], y[q + j] + full);
        }
    }
#endif
    for (; q < nq; q++) ck_row_dots(a, m, k, x[q], y[q]);
}

void ck_row_dots_gather_batch(const float *const *rows, size_t m, size_t k, const float *const *x, float *const *y, size_t nq) {
    size_t q = 0;
#ifdef CK_X86
    if (ck_uses_avx2()) {
        const size_t full = m & ~(size_t)3;
        for (; q + 4 <= nq; q += 4) {
            gather_dots_4q_avx2(rows, full, k, x + q, y + q);
            for (size_t j = 0; j < 4; j++) for (size_t i = full; i < m; i++) row_dots_portable(rows[i], 1, k, x[q + j], y[q + j] + i);
        }
        for (; q < nq; q++) gather_dots_avx2(rows, m, k, x[q], y[q]);
        return;
    }
#endif
    for (; q < nq; q++) for (size_t i = 0; i < m; i++) row_dots_portable(rows[i], 1, k, x[q], y[q] + i);
}
