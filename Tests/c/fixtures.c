/*
 * fixtures.c — the synthetic two-cluster data and the shared engine helpers (see fixtures.h).
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700

#include <math.h>
#include <string.h>

#include "fixtures.h"

/* ---- Synthetic data: two clusters (described in fixtures.h) ------------------------------------ */

int64_t g_users[N_USERS];
int64_t g_items[N_ITEMS];
int64_t d_user[MAX_INTERACTIONS], d_item[MAX_INTERACTIONS], d_time[MAX_INTERACTIONS];
float d_weight[MAX_INTERACTIONS];
size_t d_n;

int64_t user_id(int cluster, int j) { return cluster == 0 ? 1 + j : 101 + j; }
int64_t item_id(int cluster, int i) { return (cluster == 0 ? 1000 : 2000) + i; }
int user_cluster(int64_t u) { return u < 100 ? 0 : 1; }
int item_cluster(int64_t it) { return it < 2000 ? 0 : 1; }
int is_dataset_item(int64_t it) {
    return (it >= 1000 && it < 1000 + N_ITEMS_PER_CLUSTER) || (it >= 2000 && it < 2000 + N_ITEMS_PER_CLUSTER);
}

static int skips(int j, int i) {
    int s;
    if (i == 0) return 0;
    for (s = 0; s < 3; s++)
        if (1 + (j + s) % 9 == i) return 1;
    return 0;
}

void build_data(void) {
    int c, j, i, nu = 0;
    d_n = 0;
    for (c = 0; c < 2; c++) {
        int n_users = c == 0 ? N_USERS_A : N_USERS_B;
        for (j = 0; j < n_users; j++) {
            g_users[nu++] = user_id(c, j);
            for (i = 0; i < N_ITEMS_PER_CLUSTER; i++) {
                if (skips(j, i)) continue;
                d_user[d_n] = user_id(c, j);
                d_item[d_n] = item_id(c, i);
                d_weight[d_n] = 1.0f;
                /* Each user's items in a user-specific order, so the latest (held-out) items vary. */
                d_time[d_n] = T0 + (int64_t)((nu - 1) * 10 + (i * 3 + j) % 10) * 60;
                d_n++;
            }
        }
    }
    for (i = 0; i < N_ITEMS_PER_CLUSTER; i++) {
        g_items[i] = item_id(0, i);
        g_items[N_ITEMS_PER_CLUSTER + i] = item_id(1, i);
    }
}

int has_seen(int64_t user, int64_t item) {
    size_t n;
    for (n = 0; n < d_n; n++)
        if (d_user[n] == user && d_item[n] == item) return 1;
    return 0;
}

int contains(const int64_t *set, size_t n, int64_t v) {
    size_t i;
    for (i = 0; i < n; i++)
        if (set[i] == v) return 1;
    return 0;
}

/* ---- Output helpers ----------------------------------------------------------------------------- */

size_t g_n_agents;

chorus_status recommend(const chorus_engine *e, const int64_t *users, size_t n, size_t k,
                        const chorus_recommend_params *p, recs *r) {
    size_t i;
    r->n = n;
    r->k = k;
    r->n_agents = g_n_agents;
    for (i = 0; i < MAX_SLOTS; i++) {
        r->ids[i] = 424242;
        r->scores[i] = 12345.0f;
    }
    for (i = 0; i < MAX_BATCH; i++) r->flags[i] = 77;
    return chorus_engine_recommend(e, users, n, k, p, r->ids, r->scores, n * k, r->shares,
                                   n * k * g_n_agents, r->flags);
}

chorus_status similar(const chorus_engine *e, const int64_t *items, size_t n, size_t k,
                      const chorus_recommend_params *p, recs *r) {
    size_t i;
    r->n = n;
    r->k = k;
    r->n_agents = 0;
    for (i = 0; i < MAX_SLOTS; i++) {
        r->ids[i] = 424242;
        r->scores[i] = 12345.0f;
    }
    return chorus_engine_similar_items(e, items, n, k, p, r->ids, r->scores, n * k);
}

int row_well_formed(const recs *r, size_t row, size_t *out_filled) {
    const int64_t *ids = r->ids + row * r->k;
    const float *sc = r->scores + row * r->k;
    size_t i, j, filled = 0;
    int ok = 1, empty_seen = 0;
    for (i = 0; i < r->k; i++) {
        if (ids[i] == CHORUS_NO_ITEM) {
            empty_seen = 1;
            if (!(isinf(sc[i]) && sc[i] < 0)) ok = 0;
        } else {
            if (empty_seen) ok = 0;
            if (!isfinite(sc[i])) ok = 0;
            if (i > 0 && ids[i - 1] != CHORUS_NO_ITEM && sc[i] > sc[i - 1]) ok = 0;
            for (j = 0; j < i; j++)
                if (ids[j] == ids[i]) ok = 0;
            filled++;
        }
    }
    if (out_filled) *out_filled = filled;
    return ok;
}

int all_rows_well_formed(const recs *r) {
    size_t u;
    for (u = 0; u < r->n; u++)
        if (!row_well_formed(r, u, NULL)) return 0;
    return 1;
}

int shares_ok(const recs *r) {
    size_t s, a;
    for (s = 0; s < r->n * r->k; s++) {
        double sum = 0.0;
        int zero = 1;
        for (a = 0; a < r->n_agents; a++) {
            float v = r->shares[s * r->n_agents + a];
            if (!isfinite(v)) return 0;
            sum += v;
            if (v != 0.0f) zero = 0;
        }
        if (r->ids[s] == CHORUS_NO_ITEM) {
            if (!zero) return 0;
        } else if (fabs(sum - 1.0) > 1e-3) {
            return 0;
        }
    }
    return 1;
}

int same_recs(const recs *a, const recs *b, int compare_flags) {
    size_t s;
    if (a->n != b->n || a->k != b->k) return 0;
    for (s = 0; s < a->n * a->k; s++) {
        if (a->ids[s] != b->ids[s]) return 0;
        if (a->ids[s] == CHORUS_NO_ITEM) continue;
        if (fabsf(a->scores[s] - b->scores[s]) > 1e-6f * (1.0f + fabsf(a->scores[s]))) return 0;
    }
    if (compare_flags) {
        for (s = 0; s < a->n; s++)
            if (a->flags[s] != b->flags[s]) return 0;
    }
    return 1;
}

size_t find_agent(const chorus_engine *e, const char *name) {
    size_t i, n = 0;
    if (chorus_engine_agent_count(e, &n) != CHORUS_OK) return (size_t)-1;
    for (i = 0; i < n; i++) {
        const char *got = NULL;
        if (chorus_engine_agent_info(e, i, &got, NULL) == CHORUS_OK && got && strcmp(got, name) == 0)
            return i;
    }
    return (size_t)-1;
}

chorus_engine_stats get_stats(const chorus_engine *e) {
    chorus_engine_stats st;
    memset(&st, 0xAB, sizeof st);
    st.struct_size = (uint32_t)sizeof st;
    if (chorus_engine_get_stats(e, &st) != CHORUS_OK) memset(&st, 0xFF, sizeof st);
    return st;
}

chorus_fit_params small_fit_params(void) {
    chorus_fit_params fp;
    chorus_fit_params_init(&fp);
    fp.factors = FIT_FACTORS;
    fp.regularization = 0.1f;
    fp.iterations = 15;
    fp.threads = 2;
    fp.seed = 7;
    return fp;
}
