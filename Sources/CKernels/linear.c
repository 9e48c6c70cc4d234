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
/* R (1..6) rows of x against one panel, from the panel's bias pb[16]; nj (<= 16) columns stored. When
 * `pf` is set, the tile also prefetches the panel that follows (one 64-byte line per two steps of k,
 * which covers it: a panel is 32 bytes per step). */
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void tile16(int R, const float *x, size_t ldx, const uint16_t *p, const float *pb, size_t k,
                          float *y, size_t ldy, size_t nj, const char *pf) {
    __m256 a[6][2];
    const __m256 b0 = _mm256_loadu_ps(pb), b1 = _mm256_loadu_ps(pb + 8);
    for (int r = 0; r < 6; r++) { a[r][0] = b0; a[r][1] = b1; }
    for (size_t i = 0; i < k; i++) {
        if (pf && !(i & 1)) _mm_prefetch(pf + 32 * i, _MM_HINT_T0);
        const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16 * i)));
        const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16 * i + 8)));
        for (int r = 0; r < R; r++) {
            const __m256 xv = _mm256_broadcast_ss(x + r * ldx + i);
            a[r][0] = _mm256_fmadd_ps(xv, w0, a[r][0]);
            a[r][1] = _mm256_fmadd_ps(xv, w1, a[r][1]);
        }
    }
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

__attribute__((target("avx2,fma,f16c")))
static void linear_f16_avx2(const float *x, size_t rows, size_t k, size_t ldx, const uint16_t *panels,
                            const float *bias, size_t p0, size_t p1, size_t n, float *y, size_t ldy) {
    for (size_t p = p0; p < p1; p++) {
        const uint16_t *panel = panels + p * 16 * k;
        const size_t j0 = 16 * p, nj = n - j0 < 16 ? n - j0 : 16;
        /* The first tile of each panel prefetches the next one of this call's range. */
        const char *pf = p + 1 < p1 ? (const char *)(panel + 16 * k) : NULL;
        size_t r = 0;
        for (; r + 6 <= rows; r += 6, pf = NULL) tile16(6, x + r * ldx, ldx, panel, bias + j0, k, y + r * ldy + j0, ldy, nj, pf);
        switch (rows - r) {
        case 5: tile16(5, x + r * ldx, ldx, panel, bias + j0, k, y + r * ldy + j0, ldy, nj, pf); break;
        case 4: tile16(4, x + r * ldx, ldx, panel, bias + j0, k, y + r * ldy + j0, ldy, nj, pf); break;
        case 3: tile16(3, x + r * ldx, ldx, panel, bias + j0, k, y + r * ldy + j0, ldy, nj, pf); break;
        case 2: tile16(2, x + r * ldx, ldx, panel, bias + j0, k, y + r * ldy + j0, ldy, nj, pf); break;
        case 1: tile16(1, x + r * ldx, ldx, panel, bias + j0, k, y + r * ldy + j0, ldy, nj, pf); break;
        default: break;
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
