/*
 * fixtures.h — the synthetic data with a known answer, and the engine helpers the groups share.
 */
#ifndef CHORUS_TESTS_C_FIXTURES_H
#define CHORUS_TESTS_C_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#include "chorus.h"

/* ---- Synthetic data: two clusters ---------------------------------------------------------------
 * Cluster A: users 1..21 and items 1000..1009. Cluster B: users 101..120 and items 2000..2009.
 * The user with in-cluster index j sees item 0 of the group and 6 of items 1..9: it skips the three
 * items 1 + (j + s) % 9, s = 0, 1, 2. So every user has 3 unseen in-cluster items, item 1000 is the
 * most popular item (21 users), item 2000 the second (20 users), all others 13 or 14 users. */

#define N_ITEMS_PER_CLUSTER 10
#define N_ITEMS 20
#define N_USERS_A 21
#define N_USERS_B 20
#define N_USERS (N_USERS_A + N_USERS_B)
#define SEEN_PER_USER 7
#define MAX_INTERACTIONS 512
#define COLD_USER ((int64_t)999999)
#define UNKNOWN_ITEM ((int64_t)777777)
#define TOP_POPULAR_ITEM ((int64_t)1000)
#define T0 ((int64_t)1700000000)

extern int64_t g_users[N_USERS];
extern int64_t g_items[N_ITEMS];
/* The interactions, as parallel arrays of d_n entries. */
extern int64_t d_user[MAX_INTERACTIONS], d_item[MAX_INTERACTIONS], d_time[MAX_INTERACTIONS];
extern float d_weight[MAX_INTERACTIONS];
extern size_t d_n;

/* Fills g_users, g_items and the d_* interactions; main calls it once, first. */
void build_data(void);
int64_t user_id(int cluster, int j);
int64_t item_id(int cluster, int i);
int user_cluster(int64_t u);
int item_cluster(int64_t it);
int is_dataset_item(int64_t it);
int has_seen(int64_t user, int64_t item);
int contains(const int64_t *set, size_t n, int64_t v);

/* ---- Output helpers ----------------------------------------------------------------------------- */

#define MAX_AGENTS 16
#define MAX_BATCH 128
#define MAX_K N_ITEMS
#define MAX_SLOTS (MAX_BATCH * MAX_K)

typedef struct recs {
    size_t n, k, n_agents;
    int64_t ids[MAX_SLOTS];
    float scores[MAX_SLOTS];
    float shares[MAX_SLOTS * MAX_AGENTS];
    uint32_t flags[MAX_BATCH];
} recs;

extern size_t g_n_agents; /* of the main engine, set once it exists */

/* Recommends with exact capacities, agent shares and user flags. */
chorus_status recommend(const chorus_engine *e, const int64_t *users, size_t n, size_t k,
                        const chorus_recommend_params *p, recs *r);
chorus_status similar(const chorus_engine *e, const int64_t *items, size_t n, size_t k,
                      const chorus_recommend_params *p, recs *r);
/* Row `row` is well formed: filled slots first (finite scores, non-increasing, no duplicates),
 * then empty slots (CHORUS_NO_ITEM, -INFINITY). Writes the number of filled slots. */
int row_well_formed(const recs *r, size_t row, size_t *out_filled);
int all_rows_well_formed(const recs *r);
/* Shares of every filled slot sum to ~1; those of empty slots are all 0. */
int shares_ok(const recs *r);
int same_recs(const recs *a, const recs *b, int compare_flags);
/* The index of the agent named `name`, or (size_t)-1. */
size_t find_agent(const chorus_engine *e, const char *name);
/* The engine's stats; all bytes 0xFF if get_stats fails. */
chorus_engine_stats get_stats(const chorus_engine *e);

/* Two factors for two clusters: more would let ALS memorise this tiny matrix (every unseen item
 * scored ~0, in-cluster or not; a numpy reference ALS does the same), and the known answer is lost. */
#define FIT_FACTORS 2

/* The fit parameters of every fit in the test (2 threads, seed 7). */
chorus_fit_params small_fit_params(void);

#endif
