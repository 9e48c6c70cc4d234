/* A dense layer y = x Wᵀ + b reading W in PyTorch's [out, in] layout straight from the mapped
 * weights (no packed copy). Each output is a dot product of an x row and a W row, so the AVX2 tile
 * keeps 3 x rows × 4 W rows = 12 dot products in flight: 7 loads per 12 FMAs, all from L1 when the
 * 4 W rows (16 KB at K = 1024) are reused across a block of x rows. */
#include "ckernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CK_X86 1
#endif

/* x rows per block: the block (ROWS × K floats) stays in L2 while every 4-row group of W passes. */
#define ROWS 48

static void linear_portable(const float *x, size_t rows, size_t k, size_t ldx, const float *w, size_t ldw,
                            const float *bias, size_t n, float *y, size_t ldy) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ldx;
        for (size_t j = 0; j < n; j++) {
            const float *wj = w + j * ldw;
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            size_t i = 0;
            for (; i + 4 <= k; i += 4) {
                s0 += xr[i] * wj[i]; s1 += xr[i + 1] * wj[i + 1];
                s2 += xr[i + 2] * wj[i + 2]; s3 += xr[i + 3] * wj[i + 3];
            }
            for (; i < k; i++) s0 += xr[i] * wj[i];
            y[r * ldy + j] = bias[j] + ((s0 + s1) + (s2 + s3));
        }
    }
}

#ifdef CK_X86
/* The sums of 4 vectors' lanes, as one 4-float vector. */
__attribute__((target("avx2,fma"), always_inline))
static inline __m128 sum4(__m256 a, __m256 b, __m256 c, __m256 d) {
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* R (1..3) rows of x against 4 rows of W; kv = k rounded down to 8, the rest in scalar. */
__attribute__((target("avx2,fma"), always_inline))
static inline void tile4(int R, const float *x, size_t ldx, const float *w, size_t ldw, size_t k, size_t kv,
                         const float *bias, float *y, size_t ldy) {
    __m256 a[3][4];
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++) a[r][c] = _mm256_setzero_ps();
    const float *w0 = w, *w1 = w + ldw, *w2 = w + 2 * ldw, *w3 = w + 3 * ldw;
    for (size_t i = 0; i < kv; i += 8) {
        __m256 xv[3];
        for (int r = 0; r < R; r++) xv[r] = _mm256_loadu_ps(x + r * ldx + i);
        __m256 wv = _mm256_loadu_ps(w0 + i);
        for (int r = 0; r < R; r++) a[r][0] = _mm256_fmadd_ps(xv[r], wv, a[r][0]);
        wv = _mm256_loadu_ps(w1 + i);
        for (int r = 0; r < R; r++) a[r][1] = _mm256_fmadd_ps(xv[r], wv, a[r][1]);
        wv = _mm256_loadu_ps(w2 + i);
        for (int r = 0; r < R; r++) a[r][2] = _mm256_fmadd_ps(xv[r], wv, a[r][2]);
        wv = _mm256_loadu_ps(w3 + i);
        for (int r = 0; r < R; r++) a[r][3] = _mm256_fmadd_ps(xv[r], wv, a[r][3]);
    }
    const __m128 b = _mm_loadu_ps(bias);
    for (int r = 0; r < R; r++) {
        __m128 s = sum4(a[r][0], a[r][1], a[r][2], a[r][3]);
        if (kv < k) {
            float t[4] = {0, 0, 0, 0};
            const float *xr = x + r * ldx;
            for (size_t i = kv; i < k; i++) {
                t[0] += xr[i] * w0[i]; t[1] += xr[i] * w1[i]; t[2] += xr[i] * w2[i]; t[3] += xr[i] * w3[i];
            }
            s = _mm_add_ps(s, _mm_loadu_ps(t));
        }
        _mm_storeu_ps(y + r * ldy, _mm_add_ps(b, s));
    }
}

/* R (1..6) rows of x against a packed panel p ([k][16]: 16 W rows interleaved) starting from the
 * panel's bias pb[16]; the broadcast form keeps 12 accumulators for 2 loads + 6 broadcasts. */
__attribute__((target("avx2,fma"), always_inline))
static inline void tile16(int R, const float *x, size_t ldx, const float *p, const float *pb, size_t k,
                          float *y, size_t ldy, size_t n) {
    __m256 a[6][2];
    const __m256 b0 = _mm256_loadu_ps(pb), b1 = _mm256_loadu_ps(pb + 8);
    for (int r = 0; r < 6; r++) { a[r][0] = b0; a[r][1] = b1; }
    for (size_t i = 0; i < k; i++) {
        const __m256 w0 = _mm256_loadu_ps(p + 16 * i), w1 = _mm256_loadu_ps(p + 16 * i + 8);
        for (int r = 0; r < R; r++) {
            const __m256 xv = _mm256_broadcast_ss(x + r * ldx + i);
            a[r][0] = _mm256_fmadd_ps(xv, w0, a[r][0]);
            a[r][1] = _mm256_fmadd_ps(xv, w1, a[r][1]);
        }
    }
    for (int r = 0; r < R; r++) {
        if (n == 16) {
            _mm256_storeu_ps(y + r * ldy, a[r][0]);
            _mm256_storeu_ps(y + r * ldy + 8, a[r][1]);
        } else {
            float t[16];
            _mm256_storeu_ps(t, a[r][0]);
            _mm256_storeu_ps(t + 8, a[r][1]);
            for (size_t j = 0; j < n; j++) y[r * ldy + j] = t[j];
        }
    }
}

/* For many rows: each 16-column panel of W is transposed once into `panel` and reused by every row. */
__attribute__((target("avx2,fma")))
static void linear_packed_avx2(const float *x, size_t rows, size_t k, size_t ldx, const float *w, size_t ldw,
                               const float *bias, size_t n, float *y, size_t ldy, float *panel) {
    float *pb = panel + 16 * k;
    for (size_t j0 = 0; j0 < n; j0 += 16) {
        const size_t nj = n - j0 < 16 ? n - j0 : 16;
        for (size_t c = 0; c < 16; c++) {
            const float *wc = w + (j0 + c) * ldw;
            if (c < nj) { for (size_t i = 0; i < k; i++) panel[16 * i + c] = wc[i]; }
            else { for (size_t i = 0; i < k; i++) panel[16 * i + c] = 0; }
            pb[c] = c < nj ? bias[j0 + c] : 0;
        }
        size_t r = 0;
        for (; r + 6 <= rows; r += 6) tile16(6, x + r * ldx, ldx, panel, pb, k, y + r * ldy + j0, ldy, nj);
        switch (rows - r) {
        case 5: tile16(5, x + r * ldx, ldx, panel, pb, k, y + r * ldy + j0, ldy, nj); break;
        case 4: tile16(4, x + r * ldx, ldx, panel, pb, k, y + r * ldy + j0, ldy, nj); break;
        case 3: tile16(3, x + r * ldx, ldx, panel, pb, k, y + r * ldy + j0, ldy, nj); break;
        case 2: tile16(2, x + r * ldx, ldx, panel, pb, k, y + r * ldy + j0, ldy, nj); break;
        case 1: tile16(1, x + r * ldx, ldx, panel, pb, k, y + r * ldy + j0, ldy, nj); break;
        default: break;
        }
    }
}

__attribute__((target("avx2,fma")))
static void linear_avx2(const float *x, size_t rows, size_t k, size_t ldx, const float *w, size_t ldw,
                        const float *bias, size_t n, float *y, size_t ldy) {
    const size_t kv = k & ~(size_t)7, n4 = n & ~(size_t)3;
    for (size_t r0 = 0; r0 < rows; r0 += ROWS) {
        const size_t r1 = r0 + ROWS < rows ? r0 + ROWS : rows;
        for (size_t j = 0; j < n4; j += 4) {
            size_t r = r0;
            for (; r + 3 <= r1; r += 3)
                tile4(3, x + r * ldx, ldx, w + j * ldw, ldw, k, kv, bias + j, y + r * ldy + j, ldy);
            if (r1 - r == 2) tile4(2, x + r * ldx, ldx, w + j * ldw, ldw, k, kv, bias + j, y + r * ldy + j, ldy);
            else if (r1 - r == 1) tile4(1, x + r * ldx, ldx, w + j * ldw, ldw, k, kv, bias + j, y + r * ldy + j, ldy);
        }
        if (n4 < n)
            linear_portable(x + r0 * ldx, r1 - r0, k, ldx, w + n4 * ldw, ldw, bias + n4, n - n4, y + r0 * ldy + n4, ldy);
    }
}
#endif

void ck_linear(const float *x, size_t rows, size_t k, size_t ldx, const float *w, size_t ldw,
               const float *bias, size_t n, float *y, size_t ldy, float *panel) {
#ifdef CK_X86
    if (ck_uses_avx2()) {
        if (panel && rows >= CK_LINEAR_PACK_ROWS) linear_packed_avx2(x, rows, k, ldx, w, ldw, bias, n, y, ldy, panel);
        else linear_avx2(x, rows, k, ldx, w, ldw, bias, n, y, ldy);
        return;
    }
#endif
    (void)panel;
    linear_portable(x, rows, k, ldx, w, ldw, bias, n, y, ldy);
}
