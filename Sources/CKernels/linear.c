/* A dense layer y = x Wᵀ + b with W kept in IEEE half precision (binary16), packed once (at model
 * load) into 16-column panels: panel p holds output columns 16p ..< 16p + 16 as [k][16], so a panel
 * is one contiguous stream and a 6-row tile keeps 12 accumulators for 2 weight loads (widened by F16C)
 * and 6 broadcasts per step of k.
 *
 * Why half precision: for a sentence of ~10-20 tokens a layer pass is bound by reading the weights
 * (42 MB in f32 for MiniLM-L6, more than the 32 MB L3); in f16 that is 21 MB. Products and sums stay
 * in float. Each output is bias + Σ_i x_i w_i accumulated in the same order whatever the number of
 * rows in the call or the thread that runs its panel, so a sentence's embedding does not depend on
 * what it is batched with or on the thread count. */
#include <math.h>
#include "ckernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CK_X86 1
#endif

/* The panel index and slot of combined output column j, for k inputs. */
#define PANEL_AT(panels, j, k, i) ((panels)[((j) / 16) * 16 * (k) + 16 * (i) + ((j) % 16)])

void ck_linear_f16_pack(const float *w, size_t n, size_t k, size_t ldw, uint16_t *panels, size_t col0) {
    uint16_t row[256];
    for (size_t j = 0; j < n; j++) {
        const float *wj = w + j * ldw;
        for (size_t i0 = 0; i0 < k; i0 += 256) {
            const size_t m = k - i0 < 256 ? k - i0 : 256;
            ck_float_to_half(wj + i0, row, m);
            for (size_t i = 0; i < m; i++) PANEL_AT(panels, col0 + j, k, i0 + i) = row[i];
        }
    }
}

void ck_linear_f16_portable(const float *x, size_t rows, size_t k, size_t ldx, const uint16_t *panels,
                            const float *bias, size_t p0, size_t p1, size_t n, float *y, size_t ldy) {
    for (size_t p = p0; p < p1; p++) {
        const uint16_t *panel = panels + p * 16 * k;
        const size_t nj = n - 16 * p < 16 ? n - 16 * p : 16;
        for (size_t r = 0; r < rows; r++) {
            const float *xr = x + r * ldx;
            float a[16];
            for (size_t c = 0; c < 16; c++) a[c] = bias[16 * p + c];
            for (size_t i = 0; i < k; i++)
                for (size_t c = 0; c < 16; c++) a[c] += xr[i] * ck_half_to_float(panel[16 * i + c]);
            for (size_t c = 0; c < nj; c++) y[r * ldy + 16 * p + c] = a[c];
        }
    }
}

#ifdef CK_X86
/* One step of k for R rows: 2 weight loads widened, R broadcasts, 2R FMAs. */
#define TILE_STEP(i) do { \
        const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16 * (i)))); \
        const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16 * (i) + 8))); \
        for (int r = 0; r < R; r++) { \
            const __m256 xv = _mm256_broadcast_ss(x + r * ldx + (i)); \
            a[r][0] = _mm256_fmadd_ps(xv, w0, a[r][0]); \
            a[r][1] = _mm256_fmadd_ps(xv, w1, a[r][1]); \
        } \
    } while (0)

/* R (1..6) rows of x against one panel, from the panel's bias pb[16]; nj (<= 16) columns stored.
 * When `pf` is set, the tile also prefetches the panel that follows (one 64-byte line per two steps
 * of k, which covers it: a panel is 32 bytes per step). k is unrolled by 2 (each accumulator still
 * sums over k in order). */
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void tile16(int R, const float *x, size_t ldx, const uint16_t *p, const float *pb, size_t k,
                          float *y, size_t ldy, size_t nj, const char *pf) {
    __m256 a[6][2];
    const __m256 b0 = _mm256_loadu_ps(pb), b1 = _mm256_loadu_ps(pb + 8);
    for (int r = 0; r < 6; r++) { a[r][0] = b0; a[r][1] = b1; }
    const size_t k2 = k & ~(size_t)1;
    size_t i = 0;
    if (pf) {
        for (; i < k2; i += 2) { _mm_prefetch(pf + 32 * i, _MM_HINT_T0); TILE_STEP(i); TILE_STEP(i + 1); }
    } else {
        for (; i < k2; i += 2) { TILE_STEP(i); TILE_STEP(i + 1); }
    }
    if (i < k) TILE_STEP(i);
    for (int r = 0; r < R; r++) {
        if (nj == 16) {
            _mm256_storeu_ps(y + r * ldy, a[r][0]);
            _mm256_storeu_ps(y + r * ldy + 8, a[r][1]);
        } else {
            float t[16];
            _mm256_storeu_ps(t, a[r][0]);
            _mm256_storeu_ps(t + 8, a[r][1]);
            for (size_t j = 0; j < nj; j++) y[r * ldy + j] = t[j];
        }
    }
}

/* The rows are cut into ceil(rows / 6) tiles of as equal a size as possible (15 rows: 5 + 5 + 5, not
 * 6 + 6 + 3): a tile of R rows keeps 2R independent FMA chains, and below ~8 the FMA latency, not
 * the throughput, sets the pace. */
__attribute__((target("avx2,fma,f16c")))
static void linear_f16_avx2(const float *x, size_t rows, size_t k, size_t ldx, const uint16_t *panels,
                            const float *bias, size_t p0, size_t p1, size_t n, float *y, size_t ldy) {
    const size_t tiles = (rows + 5) / 6, base = tiles ? rows / tiles : 0, extra = tiles ? rows % tiles : 0;
    for (size_t p = p0; p < p1; p++) {
        const uint16_t *panel = panels + p * 16 * k;
        const size_t j0 = 16 * p, nj = n - j0 < 16 ? n - j0 : 16;
        /* The first tile of each panel prefetches the next one of this call's range. */
        const char *pf = p + 1 < p1 ? (const char *)(panel + 16 * k) : NULL;
        size_t r = 0;
        for (size_t t = 0; t < tiles; t++, pf = NULL) {
            const size_t R = base + (t < extra);
            const float *xt = x + r * ldx;
            float *yt = y + r * ldy + j0;
            switch (R) {
            case 6: tile16(6, xt, ldx, panel, bias + j0, k, yt, ldy, nj, pf); break;
            case 5: tile16(5, xt, ldx, panel, bias + j0, k, yt, ldy, nj, pf); break;
            case 4: tile16(4, xt, ldx, panel, bias + j0, k, yt, ldy, nj, pf); break;
            case 3: tile16(3, xt, ldx, panel, bias + j0, k, yt, ldy, nj, pf); break;
            case 2: tile16(2, xt, ldx, panel, bias + j0, k, yt, ldy, nj, pf); break;
            default: tile16(1, xt, ldx, panel, bias + j0, k, yt, ldy, nj, pf); break;
            }
            r += R;
        }
    }
}
#endif

void ck_linear_f16(const float *x, size_t rows, size_t k, size_t ldx, const uint16_t *panels,
                   const float *bias, size_t p0, size_t p1, size_t n, float *y, size_t ldy) {
#ifdef CK_X86
    if (ck_uses_f16c()) { linear_f16_avx2(x, rows, k, ldx, panels, bias, p0, p1, n, y, ldy); return; }
#endif
    ck_linear_f16_portable(x, rows, k, ldx, panels, bias, p0, p1, n, y, ldy);
}

/* GELU, erf form: x * 0.5 * (1 + erf(x / sqrt 2)), erf as BertKernels.erf (ChorusText): branch-free
 * polynomials on |x| < 0.8, 0.8 <= |x| < 2.2, 2.2 <= |x| < 3.92, and ±1 beyond (within 1.3 ulp). The
 * AVX2+FMA version evaluates the same polynomials 8 lanes at a time with fused multiply-adds (so its
 * last bit may differ from the portable one's). Runs on each worker's own columns of the intermediate
 * dense layer, where the baseline-x86-64 Swift loop (4-lane SSE, no FMA) took ~8% of a sentence. */
#define ERF_SMALL(P, K, s) P(P(P(P(P(K(-0.0006546708173118532f), s, 0.005086978897452354f), s, -0.02682185173034668f), s, \
    0.11283136904239655f), s, -0.3761260211467743f), s, 0.12837916612625122f)
#define ERF_MID(P, K, t) P(P(P(P(P(P(P(P(P(P(P(P(P(K(1.8446069589117542e-05f), t, 5.612700624624267e-05f), t, \
    -0.0002546709729358554f), t, -7.895402086433023e-05f), t, 0.0017098780954256654f), t, -0.0023672485258430243f), t, \
    -0.0047430619597435f), t, 0.019326945766806602f), t, -0.014866285026073456f), t, -0.04459892213344574f), t, \
    0.13875199854373932f), t, -0.17839543521404266f), t, 0.11893028765916824f), t, 0.9661051630973816f)
#define ERF_HIGH(P, K, u) P(P(P(P(P(P(P(P(K(-0.00010205424769083038f), u, 0.00034714516368694603f), u, -0.0006034258403815329f), u, \
    0.0007711942307651043f), u, -0.0007720413850620389f), u, 0.0005732719437219203f), u, -0.00029663799796253443f), u, \
    9.67454761848785e-05f), u, 0.9999849200248718f)

#define MULADD(acc, x, c) ((acc) * (x) + (c))
#define SCALAR(c) (c)
static float erf_portable(float x) {
    const float a = fabsf(x), s = a * a;
    const float small = a + a * ERF_SMALL(MULADD, SCALAR, s);
    const float m = ERF_MID(MULADD, SCALAR, (a - 1.5f));
    const float l = ERF_HIGH(MULADD, SCALAR, (a - 3.06f));
    const float y = a < 0.8f ? small : (a < 2.2f ? m : (a >= 3.92f ? 1.0f : l)); /* NaN falls through to l */
    return copysignf(y, x);
}

static void gelu_portable(float *x, size_t n) {
    for (size_t k = 0; k < n; k++) {
        const float v = x[k];
        x[k] = v * 0.5f * (1 + erf_portable(v * 0.70710678118654752440f));
    }
}

#ifdef CK_X86
#define FMA8(acc, x, c) _mm256_fmadd_ps((acc), (x), _mm256_set1_ps(c))
__attribute__((target("avx2,fma")))
static void gelu_avx2(float *x, size_t n) {
    const __m256 signMask = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        const __m256 v = _mm256_loadu_ps(x + k);
        const __m256 z = _mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752440f));
        const __m256 a = _mm256_andnot_ps(signMask, z), s = _mm256_mul_ps(a, a);
        const __m256 small = _mm256_fmadd_ps(a, ERF_SMALL(FMA8, _mm256_set1_ps, s), a);
        const __m256 t = _mm256_sub_ps(a, _mm256_set1_ps(1.5f)), u = _mm256_sub_ps(a, _mm256_set1_ps(3.06f));
        const __m256 m = ERF_MID(FMA8, _mm256_set1_ps, t), l = ERF_HIGH(FMA8, _mm256_set1_ps, u);
        /* Ordered comparisons are false for NaN, which then keeps l (NaN), as the portable form. */
        __m256 y = _mm256_blendv_ps(l, one, _mm256_cmp_ps(a, _mm256_set1_ps(3.92f), _CMP_GE_OQ));
        y = _mm256_blendv_ps(y, m, _mm256_cmp_ps(a, _mm256_set1_ps(2.2f), _CMP_LT_OQ));
        y = _mm256_blendv_ps(y, small, _mm256_cmp_ps(a, _mm256_set1_ps(0.8f), _CMP_LT_OQ));
        const __m256 e = _mm256_or_ps(y, _mm256_and_ps(z, signMask));
        _mm256_storeu_ps(x + k, _mm256_mul_ps(_mm256_mul_ps(v, half), _mm256_add_ps(one, e)));
    }
    gelu_portable(x + k, n - k);
}
#endif

void ck_gelu(float *x, size_t n) {
#ifdef CK_X86
    if (ck_uses_avx2()) { gelu_avx2(x, n); return; }
#endif
    gelu_portable(x, n);
}
