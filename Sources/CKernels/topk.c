/* Top-k selection of one score vector by a reservoir (as faiss's ReservoirTopN): scores above a
 * threshold are appended to a buffer of 2k; when it fills, a quickselect keeps its k best and the
 * threshold rises to the k-th. Each append is O(1) and each compaction O(k), so a scan costs
 * O(n) with one SIMD comparison per 8 scores, where a heap pays O(log k) per kept score.
 *
 * An entry is one 64-bit key: the score's bits mapped to an order-preserving unsigned integer
 * (-0 as +0, so equal scores have equal high halves), then the complemented index, so "better"
 * (higher score, then lower index) is one unsigned comparison. */
#include <math.h>
#include <string.h>
#include "ckernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CK_X86 1
#endif

static inline uint64_t key_of(float s, size_t i) {
    uint32_t u;
    if (s == 0) s = 0;   /* -0 ties with +0 */
    memcpy(&u, &s, 4);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ((uint64_t)u << 32) | (uint32_t)~(uint32_t)i;
}

static inline int32_t index_of(uint64_t key) { return (int32_t)~(uint32_t)key; }

static inline void swap_keys(uint64_t *v, size_t a, size_t b) { const uint64_t t = v[a]; v[a] = v[b]; v[b] = t; }

/* Descending insertion sort of [lo, hi). */
static void insertion_sort(uint64_t *v, size_t lo, size_t hi) {
    for (size_t i = lo + 1; i < hi; i++) {
        const uint64_t t = v[i];
        size_t j = i;
        while (j > lo && v[j - 1] < t) { v[j] = v[j - 1]; j--; }
        v[j] = t;
    }
}

/* Partitions [lo, hi) around a median-of-three pivot: returns p with every key before p greater
 * than the pivot, the pivot at p, every key after it smaller (keys are distinct: indices differ). */
static size_t partition(uint64_t *v, size_t lo, size_t hi) {
    const size_t mid = lo + (hi - lo) / 2, last = hi - 1;
    if (v[mid] > v[lo]) swap_keys(v, mid, lo);
    if (v[last] > v[lo]) swap_keys(v, last, lo);
    if (v[last] > v[mid]) swap_keys(v, last, mid);
    swap_keys(v, mid, last);   /* the median to the end */
    const uint64_t pivot = v[last];
    size_t store = lo;
    for (size_t i = lo; i < last; i++) {
        /* Branch-free Lomuto step: v[i] and v[store] swap when v[i] beats the pivot. */
        const uint64_t x = v[i], y = v[store];
        const int take = x > pivot;
        v[i] = take ? y : x;
        v[store] = take ? x : y;
        store += (size_t)take;
    }
    swap_keys(v, store, last);
    return store;
}

/* Puts the k largest keys of [0, m) first (in any order), k < m. */
static void select_best(uint64_t *v, size_t m, size_t k) {
    size_t lo = 0, hi = m;
    while (hi - lo > 16) {
        const size_t p = partition(v, lo, hi);
        if (p == k || p + 1 == k) return;
        if (p < k) lo = p + 1; else hi = p;
    }
    insertion_sort(v, lo, hi);
}

/* Sorts [lo, hi) descending. */
static void sort_best(uint64_t *v, size_t lo, size_t hi) {
    while (hi - lo > 16) {
        const size_t p = partition(v, lo, hi);
        /* Recurse into the smaller side, loop on the larger: O(log m) depth. */
        if (p - lo < hi - p - 1) { sort_best(v, lo, p); lo = p + 1; } else { sort_best(v, p + 1, hi); hi = p; }
    }
    insertion_sort(v, lo, hi);
}

typedef struct {
    const float *x;
    uint64_t *keys;
    size_t m, k, cap;
    float threshold;
} reservoir;

/* Keeps the k best of a full buffer; the threshold becomes the k-th best's score. */
static void compact(reservoir *r) {
    select_best(r->keys, r->m, r->k);
    r->m = r->k;
    uint64_t worst = r->keys[0];
    for (size_t i = 1; i < r->k; i++) if (r->keys[i] < worst) worst = r->keys[i];
    r->threshold = r->x[index_of(worst)];
}

static inline void append(reservoir *r, size_t i) {
    r->keys[r->m++] = key_of(r->x[i], i);
    if (r->m == r->cap) compact(r);
}

/* Scalar scan of [start, n): a score is taken when it beats the threshold (strictly: a later equal
 * score has a higher index, so it loses to the k-th kept). NaN and -infinity never beat it. */
static void scan_portable(reservoir *r, size_t start, size_t n) {
    for (size_t i = start; i < n; i++) if (r->x[i] > r->threshold) append(r, i);
}

#ifdef CK_X86
__attribute__((target("avx2")))
static void scan_avx2(reservoir *r, size_t n) {
    const float *x = r->x;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 xv = _mm256_loadu_ps(x + i);
        unsigned mask = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(xv, _mm256_set1_ps(r->threshold), _CMP_GT_OQ));
        while (mask) {
            const unsigned j = (unsigned)__builtin_ctz(mask);
            const float before = r->threshold;
            append(r, i + j);
            mask &= mask - 1;
            /* A compaction raised the threshold: the rest of this block is compared again. */
            if (r->threshold != before)
                mask &= (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(xv, _mm256_set1_ps(r->threshold), _CMP_GT_OQ));
        }
    }
    scan_portable(r, i, n);
}
#endif

size_t ck_top_k(const float *x, size_t n, size_t k, float *out_val, int32_t *out_idx, uint64_t *work) {
    if (k == 0 || n == 0) return 0;
    reservoir r = { x, work, 0, k, 2 * k, -INFINITY };
#ifdef CK_X86
    if (ck_uses_avx2()) scan_avx2(&r, n); else scan_portable(&r, 0, n);
#else
    scan_portable(&r, 0, n);
#endif
    if (r.m > k) { select_best(r.keys, r.m, k); r.m = k; }
    sort_best(r.keys, 0, r.m);
    for (size_t i = 0; i < r.m; i++) { out_idx[i] = index_of(r.keys[i]); out_val[i] = x[out_idx[i]]; }
    return r.m;
}
