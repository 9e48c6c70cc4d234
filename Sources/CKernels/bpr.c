/* BPR's stochastic gradient steps over one block of stratified SGD (ChorusCollaborative/BPR.swift).
 *
 * Each step draws an interaction uniformly from the block's edges and a negative uniformly from the
 * block's items: three random rows of the factor matrices, plus the edge's owner and column, are
 * touched per step, and the step itself is a few hundred flops, so the loop waits on memory. The
 * draws therefore run LOOKAHEAD steps ahead of the updates, and each drawn step's rows are
 * prefetched while earlier steps train (as a hardware queue of outstanding misses would). */
#include "ckernels.h"
#include <math.h>

#define LOOKAHEAD 8

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256**: SeededRandom.next() in ChorusCore, the same stream. */
static inline uint64_t next(uint64_t *s) {
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Every cache line of one row of f floats. */
static inline void prefetch_row(const float *row, size_t f) {
    for (size_t c = 0; c < f; c += 16) __builtin_prefetch(row + c);
    __builtin_prefetch(row + f - 1);
}

/* Uniform in 0 ..< n by a multiply and shift (Lemire), not a division: two per step. */
static inline uint64_t below(uint64_t *s, uint64_t n) { return (uint64_t)(((unsigned __int128)next(s) * n) >> 64); }

static inline int contains(const int32_t *row, int64_t n, int32_t j) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (row[mid] < j) lo = mid + 1; else hi = mid;
    }
    return lo < n && row[lo] == j;
}

/* x · (a − b) over f floats in 8 partial sums (a chain of f dependent adds would bound the step). */
static inline float dot_diff(const float *restrict x, const float *restrict a, const float *restrict b, size_t f) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t c = 0;
    for (; c + 8 <= f; c += 8)
        for (size_t l = 0; l < 8; l++) acc[l] += x[c + l] * (a[c + l] - b[c + l]);
    float d = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; c < f; c++) d += x[c] * (a[c] - b[c]);
    return d;
}

/* ln σ(pu·(qi−qj)) ascent with L2 regularisation; the last column is the item bias (user side 1). */
static inline void step(float *restrict pu, float *restrict qi, float *restrict qj, size_t f, float lr, float reg) {
    float x = dot_diff(pu, qi, qj, f);
    float z = 1.0f / (1.0f + expf(x)); /* σ(−x): the gradient of ln σ(x) */
    for (size_t c = 0; c + 1 < f; c++) {
        float uc = pu[c], ic = qi[c], jc = qj[c];
        pu[c] = uc + lr * (z * (ic - jc) - reg * uc);
        qi[c] = ic + lr * (z * uc - reg * ic);
        qj[c] = jc + lr * (-z * uc - reg * jc);
    }
    qi[f - 1] += lr * (z - reg * qi[f - 1]);
    qj[f - 1] += lr * (-z - reg * qj[f - 1]);
}

void ck_bpr_block(const int32_t *edges, size_t n_edges, const int32_t *negatives, size_t n_negatives,
                  const int32_t *owner, const int64_t *row_start, const int32_t *col_index,
                  float *users, float *items, size_t f, float lr, float reg, uint64_t state[4], size_t steps) {
    if (n_edges == 0 || n_negatives == 0 || f == 0) return;
    int32_t ring_e[LOOKAHEAD], ring_j[LOOKAHEAD];
    size_t primed = steps < LOOKAHEAD ? steps : LOOKAHEAD;
    for (size_t k = 0; k < primed; k++) {
        ring_e[k] = edges[below(state, n_edges)];
        ring_j[k] = negatives[below(state, n_negatives)];
        __builtin_prefetch(owner + ring_e[k]);
        __builtin_prefetch(col_index + ring_e[k]);
        prefetch_row(items + (size_t)ring_j[k] * f, f);
    }
    for (size_t n = 0; n < steps; n++) {
        size_t slot = n % LOOKAHEAD;
        int64_t e = ring_e[slot];
        int32_t j = ring_j[slot];
        if (n + LOOKAHEAD < steps) {
            ring_e[slot] = edges[below(state, n_edges)];
            ring_j[slot] = negatives[below(state, n_negatives)];
            __builtin_prefetch(owner + ring_e[slot]);
            __builtin_prefetch(col_index + ring_e[slot]);
            prefetch_row(items + (size_t)ring_j[slot] * f, f);
        }
        /* Three steps on, the owner and column of that step have arrived: fetch its rows and where
         * its user's items start; six steps on, the start has arrived: fetch the user's items (the
         * negative's membership test searches them). */
        if (n + LOOKAHEAD - 3 < steps) {
            int32_t e2 = ring_e[(n + LOOKAHEAD - 3) % LOOKAHEAD];
            prefetch_row(users + (size_t)owner[e2] * f, f);
            prefetch_row(items + (size_t)col_index[e2] * f, f);
            __builtin_prefetch(row_start + owner[e2]);
        }
        if (n + 2 < steps) {
            int32_t e3 = ring_e[(n + 2) % LOOKAHEAD];
            __builtin_prefetch(col_index + row_start[owner[e3]]);
        }
        int32_t u = owner[e], i = col_index[e];
        const int32_t *row = col_index + row_start[u];
        int64_t len = row_start[u + 1] - row_start[u];
        /* A negative the user has is redrawn, up to 8 times; one equal to the positive is skipped. */
        for (int tries = 0; tries < 8 && contains(row, len, j); tries++) j = negatives[below(state, n_negatives)];
        if (j == i) continue;
        step(users + (size_t)u * f, items + (size_t)i * f, items + (size_t)j * f, f, lr, reg);
    }
}

/* The fold-ins' BPR steps (ChorusAgents/FoldIn.swift): the same ascent on one side, the other
 * fixed, one step a draw, with the draws of the Swift loops they replaced (uniform by
 * `next() % n`, as SeededRandom.nextInt). Rows of `items` hold f + 1 floats, the last the item
 * bias. */
void ck_bpr_fold_user(float *restrict x, size_t f, const int32_t *positives, size_t n_positives, const float *items,
                      size_t n_items, float lr, float reg, uint64_t state[4], size_t steps) {
    if (n_positives == 0 || n_items < 2) return;
    for (size_t n = 0; n < steps; n++) {
        int32_t i = positives[next(state) % n_positives];
        int32_t j = (int32_t)(next(state) % n_items);
        for (int tries = 0; tries < 8 && contains(positives, (int64_t)n_positives, j); tries++) j = (int32_t)(next(state) % n_items);
        if (j == i) continue;
        const float *qi = items + (size_t)i * (f + 1), *qj = items + (size_t)j * (f + 1);
        float d = (qi[f] - qj[f]) + dot_diff(x, qi, qj, f);
        float z = 1.0f / (1.0f + expf(d));
        for (size_t c = 0; c < f; c++) x[c] += lr * (z * (qi[c] - qj[c]) - reg * x[c]);
    }
}

void ck_bpr_fold_item(float *restrict y, size_t f, const float *users, size_t n_users, const float *items, size_t n_items,
                      float lr, float reg, uint64_t state[4], size_t steps) {
    if (n_users == 0 || n_items == 0) return;
    for (size_t n = 0; n < steps; n++) {
        const float *x = users + (size_t)(next(state) % n_users) * (f + 1);
        const float *qj = items + (size_t)(next(state) % n_items) * (f + 1);
        float d = dot_diff(x, y, qj, f + 1);
        float z = 1.0f / (1.0f + expf(d));
        for (size_t c = 0; c < f; c++) y[c] += lr * (z * x[c] - reg * y[c]);
        y[f] += lr * (z - reg * y[f]);
    }
}
