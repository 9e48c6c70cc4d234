/* Top-k selection of one score vector by a reservoir (as faiss's ReservoirTopN): scores above a
 * threshold are appended to a buffer of 2k; when it fills, a quickselect keeps its k best and the
 * threshold rises to the k-th. Each append is O(1) and each compaction O(k), so a scan costs
 * O(n) with one SIMD comparison per 8 scores, where a heap pays O(log k) per kept score. */
#include <math.h>
#include "ckernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CK_X86 1
#endif

/* The total order of results: higher score first, then lower index. */
static inline int better(float va, int32_t ia, float vb, int32_t ib) { return va > vb || (va == vb && ia < ib); }

static inline void swap_entries(float *v, int32_t *ix, size_t a, size_t b) {
    const float tv = v[a]; v[a] = v[b]; v[b] = tv;
    const int32_t ti = ix[a]; ix[a] = ix[b]; ix[b] = ti;
}

static void insertion_sort(float *v, int32_t *ix, size_t lo, size_t hi) {
    for (size_t i = lo + 1; i < hi; i++) {
        const float tv = v[i]; const int32_t ti = ix[i];
        size_t j = i;
        while (j > lo && better(tv, ti, v[j - 1], ix[j - 1])) { v[j] = v[j - 1]; ix[j] = ix[j - 1]; j--; }
        v[j] = tv; ix[j] = ti;
    }
}

/* Partitions [lo, hi) around a median-of-three pivot: returns p with every entry before p better
 * than the pivot's, the pivot at p, every entry after it not better. Entries are distinct under
 * the order (indices differ), so the split is strict. */
static size_t partition(float *v, int32_t *ix, size_t lo, size_t hi) {
    const size_t mid = lo + (hi - lo) / 2, last = hi - 1;
    if (better(v[mid], ix[mid], v[lo], ix[lo])) swap_entries(v, ix, mid, lo);
    if (better(v[last], ix[last], v[lo], ix[lo])) swap_entries(v, ix, last, lo);
    if (better(v[last], ix[last], v[mid], ix[mid])) swap_entries(v, ix, last, mid);
    swap_entries(v, ix, mid, last);   /* pivot (the median) to the end */
    const float pv = v[last]; const int32_t pi = ix[last];
    size_t store = lo;
    for (size_t i = lo; i < last; i++)
        if (better(v[i], ix[i], pv, pi)) { swap_entries(v, ix, i, store); store++; }
    swap_entries(v, ix, store, last);
    return store;
}

/* Puts the k best of [0, m) first (in any order), k < m. */
static void select_best(float *v, int32_t *ix, size_t m, size_t k) {
    size_t lo = 0, hi = m;
    while (hi - lo > 16) {
        const size_t p = partition(v, ix, lo, hi);
        if (p == k || p + 1 == k) return;
        if (p < k) lo = p + 1; else hi = p;
    }
    insertion_sort(v, ix, lo, hi);
}

/* Sorts [lo, hi) best first. */
static void sort_best(float *v, int32_t *ix, size_t lo, size_t hi) {
    while (hi - lo > 16) {
        const size_t p = partition(v, ix, lo, hi);
        /* Recurse into the smaller side, loop on the larger: O(log m) depth. */
        if (p - lo < hi - p - 1) { sort_best(v, ix, lo, p); lo = p + 1; } else { sort_best(v, ix, p + 1, hi); hi = p; }
    }
    insertion_sort(v, ix, lo, hi);
}

typedef struct {
    float *v;
    int32_t *ix;
    size_t m, k, cap;
    float threshold;
} reservoir;

/* Keeps the k best of a full buffer; the threshold becomes the k-th best's score. */
static void compact(reservoir *r) {
    select_best(r->v, r->ix, r->m, r->k);
    r->m = r->k;
    float worst = r->v[0]; int32_t worst_i = r->ix[0];
    for (size_t i = 1; i < r->k; i++) if (better(worst, worst_i, r->v[i], r->ix[i])) { worst = r->v[i]; worst_i = r->ix[i]; }
    r->threshold = worst;
}

static inline void append(reservoir *r, float s, size_t i) {
    r->v[r->m] = s; r->ix[r->m] = (int32_t)i; r->m++;
    if (r->m == r->cap) compact(r);
}

/* Scalar scan of [start, n): a score is taken when it beats the threshold (strictly: a later equal
 * score has a higher index, so it loses to the k-th kept). NaN and -infinity never beat it. */
static void scan_portable(reservoir *r, const float *x, size_t start, size_t n) {
    for (size_t i = start; i < n; i++) if (x[i] > r->threshold) append(r, x[i], i);
}

#ifdef CK_X86
__attribute__((target("avx2")))
static void scan_avx2(reservoir *r, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 xv = _mm256_loadu_ps(x + i);
        unsigned mask = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(xv, _mm256_set1_ps(r->threshold), _CMP_GT_OQ));
        while (mask) {
            const unsigned j = (unsigned)__builtin_ctz(mask);
            const float before = r->threshold;
            append(r, x[i + j], i + j);
            mask &= mask - 1;
            /* A compaction raised the threshold: the rest of this block is compared again. */
            if (r->threshold != before)
                mask &= (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(xv, _mm256_set1_ps(r->threshold), _CMP_GT_OQ));
        }
    }
    scan_portable(r, x, i, n);
}
#endif

size_t ck_top_k(const float *x, size_t n, size_t k, float *out_val, int32_t *out_idx, float *work_val, int32_t *work_idx) {
    if (k == 0 || n == 0) return 0;
    reservoir r = { work_val, work_idx, 0, k, 2 * k, -INFINITY };
#ifdef CK_X86
    if (ck_uses_avx2()) scan_avx2(&r, x, n); else scan_portable(&r, x, 0, n);
#else
    scan_portable(&r, x, 0, n);
#endif
    if (r.m > k) select_best(r.v, r.ix, r.m, k), r.m = k;
    sort_best(r.v, r.ix, 0, r.m);
    for (size_t i = 0; i < r.m; i++) { out_val[i] = r.v[i]; out_idx[i] = r.ix[i]; }
    return r.m;
}
