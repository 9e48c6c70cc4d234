/*
 * test_merge.c — sharded training from C (chorus_merge_params, chorus_engine_merge,
 * chorus_engine_fit_from, chorus_engine_privacy_spent): every argument's validation with nothing
 * created on error, the bad shards a merge must refuse naming the cause (none, NULL, the same
 * engine twice, not fitted, empty, overlapping users, other factor counts or agents), a merge of
 * two user-disjoint shards that serves, saves and loads, one shard as a copy, a round started from
 * the merged engine, the privacy accountant's epsilon, and chorus_engine_save_ex's
 * CHORUS_SAVE_WITHOUT_INTERACTIONS (the model serves, fits and merges are refused). Uses its own engines, built from the
 * synthetic clusters split by user id parity.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "harness.h"
#include "tests.h"

#define MK 5

/* An engine holding the interactions of the users `keep` selects (0: odd ids, 1: even ids, 2: all),
 * fitted with `factors` ALS factors and `agents` unless `fit` is 0. */
static chorus_engine *shard(int keep, int fit, uint32_t factors, const char *agents) {
    chorus_engine *e = NULL;
    int64_t u[MAX_INTERACTIONS], it[MAX_INTERACTIONS], t[MAX_INTERACTIONS];
    float w[MAX_INTERACTIONS];
    size_t n = 0;
    for (size_t i = 0; i < d_n; i++) {
        if (keep != 2 && (int)(d_user[i] % 2) == keep) continue;
        u[n] = d_user[i]; it[n] = d_item[i]; w[n] = d_weight[i]; t[n] = d_time[i];
        n++;
    }
    if (chorus_engine_create(NULL, &e) != CHORUS_OK) return NULL;
    if (chorus_engine_add_interactions(e, u, it, w, t, n) != CHORUS_OK) { chorus_engine_free(e); return NULL; }
    if (fit) {
        chorus_fit_params p;
        chorus_fit_params_init(&p);
        p.factors = factors; p.iterations = 8; p.threads = 1; p.regularization = 0.1f; p.bpr_epochs = 20;
        p.agents = agents;
        if (chorus_engine_fit(e, &p) != CHORUS_OK) { chorus_engine_free(e); return NULL; }
    }
    return e;
}

static const char *const AGENTS = "als,bpr,itemknn,session";

static void test_save_without_interactions(void);

static void test_merge_params(void) {
    chorus_merge_params p;
    group_begin("merge params");
    memset(&p, 0xAB, sizeof p);
    EXPECT(chorus_merge_params_init(&p), CHORUS_OK);
    CHECK(p.struct_size == sizeof p && p.threads == 0 && p.noise_multiplier == 0 && p.clip_norm == 0);
    CHECK(p.delta == 1e-5 && p.seed == 42);
    memset(&p, 0xAB, sizeof p);
    EXPECT((chorus_merge_params_init)(&p), CHORUS_OK);
    CHECK(p.struct_size == sizeof p && p.delta == 1e-5);
    EXPECT(chorus_merge_params_init_sized(&p, 4), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_merge_params_init_sized(&p, 12), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_merge_params_init_sized(&p, sizeof p + 8), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_merge_params_init_sized(NULL, sizeof p), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(chorus_struct_size("chorus_merge_params") == sizeof p);
    group_end();
}

/* chorus_engine_merge's status; *out must stay NULL on error (then CHORUS_ERR_INTERNAL). */
static chorus_status merge_status(const chorus_engine *const *shards, size_t n, const chorus_merge_params *p) {
    chorus_engine *out = NULL;
    chorus_status st = chorus_engine_merge(shards, n, p, &out);
    if (st != CHORUS_OK && out != NULL) st = CHORUS_ERR_INTERNAL;
    chorus_engine_free(out);
    return st;
}

static int message_has(const char *needle) {
    const char *m = chorus_last_error();
    return m != NULL && strstr(m, needle) != NULL;
}

static void test_bad_merges(chorus_engine *odd, chorus_engine *even) {
    chorus_merge_params p;
    chorus_engine *out = (chorus_engine *)0x1;
    const chorus_engine *pair[2] = {odd, even}, *twice[2] = {odd, odd}, *with_null[2] = {odd, NULL};
    chorus_engine *unfitted = shard(1, 0, 4, AGENTS), *empty = NULL, *all = shard(2, 1, 4, AGENTS);
    chorus_engine *wider = shard(1, 1, 6, AGENTS), *fewer = shard(1, 1, 4, "als");
    chorus_engine_create(NULL, &empty);

    group_begin("merge: bad input refused, naming the cause");
    EXPECT(chorus_engine_merge(pair, 2, NULL, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_merge(NULL, 2, NULL, &out), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(out == NULL);
    EXPECT(merge_status(pair, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(message_has("at least one shard"));
    EXPECT(merge_status(pair, (size_t)1 << 62, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(merge_status(with_null, 2, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(message_has("shards[1] is NULL"));
    EXPECT(merge_status(twice, 2, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(message_has("same engine"));
    {
        const chorus_engine *s[2] = {odd, unfitted};
        EXPECT(merge_status(s, 2, NULL), CHORUS_ERR_NOT_FITTED);
        CHECK(message_has("shards[1] is not fitted"));
    }
    {
        const chorus_engine *s[1] = {empty};
        EXPECT(merge_status(s, 1, NULL), CHORUS_ERR_NOT_FITTED);
    }
    {
        const chorus_engine *s[2] = {odd, all};
        EXPECT(merge_status(s, 2, NULL), CHORUS_ERR_INVALID_ARGUMENT);
        CHECK(message_has("share user id"));
    }
    {
        const chorus_engine *s[2] = {wider, even};
        EXPECT(merge_status(s, 2, NULL), CHORUS_ERR_INVALID_ARGUMENT);
        CHECK(message_has("factors"));
    }
    {
        const chorus_engine *s[2] = {fewer, even};
        EXPECT(merge_status(s, 2, NULL), CHORUS_ERR_INVALID_ARGUMENT);
        CHECK(message_has("same agents"));
    }
    {
        /* A freed handle in the array. */
        chorus_engine *gone = shard(1, 0, 4, AGENTS);
        const chorus_engine *s[2] = {odd, gone};
        chorus_engine_free(gone);
        EXPECT(merge_status(s, 2, NULL), CHORUS_ERR_INVALID_ARGUMENT);
        CHECK(message_has("shards[1]"));
    }
    chorus_merge_params_init(&p);
    p.noise_multiplier = 1;
    EXPECT(merge_status(pair, 2, &p), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(message_has("clip_norm"));
    p.clip_norm = NAN;
    EXPECT(merge_status(pair, 2, &p), CHORUS_ERR_INVALID_ARGUMENT);
    p.clip_norm = 1; p.delta = 1.5;
    EXPECT(merge_status(pair, 2, &p), CHORUS_ERR_INVALID_ARGUMENT);
    p.delta = 0; p.noise_multiplier = -1;
    EXPECT(merge_status(pair, 2, &p), CHORUS_ERR_INVALID_ARGUMENT);
    p.noise_multiplier = INFINITY;
    EXPECT(merge_status(pair, 2, &p), CHORUS_ERR_INVALID_ARGUMENT);
    p.struct_size = 3;
    EXPECT(merge_status(pair, 2, &p), CHORUS_ERR_INVALID_ARGUMENT);
    group_end();
    chorus_engine_free(unfitted); chorus_engine_free(empty); chorus_engine_free(all);
    chorus_engine_free(wider); chorus_engine_free(fewer);
}

static void top(const chorus_engine *e, int64_t user, int64_t *ids) {
    float scores[MK];
    for (int i = 0; i < MK; i++) ids[i] = -1;
    chorus_engine_recommend(e, &user, 1, MK, NULL, ids, scores, MK, NULL, 0, NULL);
}

static void test_merged(chorus_engine *odd, chorus_engine *even) {
    const chorus_engine *pair[2] = {odd, even};
    chorus_engine *merged = NULL, *copy = NULL, *loaded = NULL;
    chorus_engine_stats s;
    int64_t a[MK], b[MK];
    double eps = 0, delta = 1;
    uint32_t rounds = 7;
    char path[1024];

    group_begin("merge: two user-disjoint shards serve, save and load as one engine");
    EXPECT(chorus_engine_merge(pair, 2, NULL, &merged), CHORUS_OK);
    CHECK(merged != NULL);
    s = get_stats(merged);
    CHECK(s.fitted && s.n_users == N_USERS && s.n_items == N_ITEMS);
    CHECK(s.n_interactions == get_stats(odd).n_interactions + get_stats(even).n_interactions);
    {
        /* Users of both shards get items of their own cluster. */
        int64_t users[2] = {user_id(0, 2), user_id(1, 3)};
        for (int k = 0; k < 2; k++) {
            int in = 0;
            top(merged, users[k], a);
            for (int i = 0; i < MK; i++) in += a[i] >= 0 && item_cluster(a[i]) == user_cluster(users[k]);
            CHECK_MSG(in >= 2, "a merged user's top 5 holds items of their cluster");
        }
    }
    snprintf(path, sizeof path, "%s/merged.chorus", g_dir);
    EXPECT(chorus_engine_save(merged, path), CHORUS_OK);
    EXPECT(chorus_engine_load(path, &loaded), CHORUS_OK);
    top(merged, user_id(1, 3), a); top(loaded, user_id(1, 3), b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    EXPECT(chorus_engine_privacy_spent(merged, &eps, &delta, &rounds), CHORUS_OK);
    CHECK(rounds == 0 && isinf(eps) && delta == 0);
    group_end();

    group_begin("merge: one shard is a copy");
    EXPECT(chorus_engine_merge(pair, 1, NULL, &copy), CHORUS_OK);
    top(copy, user_id(0, 4), a); top(odd, user_id(0, 4), b);
    CHECK(memcmp(a, b, sizeof a) == 0 && copy != odd);
    group_end();

    group_begin("merge: a round starts each shard from the merged engine");
    {
        chorus_fit_params p;
        chorus_engine *unfitted = shard(1, 0, 4, AGENTS);
        chorus_fit_params_init(&p);
        p.factors = 4; p.iterations = 4; p.threads = 1; p.regularization = 0.1f; p.bpr_epochs = 20; p.agents = AGENTS;
        EXPECT(chorus_engine_fit_from(NULL, &p, merged), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_fit_from(odd, &p, NULL), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_fit_from(odd, &p, unfitted), CHORUS_ERR_NOT_FITTED);
        p.factors = 6;
        EXPECT(chorus_engine_fit_from(odd, &p, merged), CHORUS_ERR_INVALID_ARGUMENT);
        CHECK(message_has("factors"));
        p.factors = 4;
        EXPECT(chorus_engine_fit_from(odd, &p, merged), CHORUS_OK);
        EXPECT(chorus_engine_fit_from(even, &p, merged), CHORUS_OK);
        chorus_engine_free(loaded);
        loaded = NULL;
        EXPECT(chorus_engine_merge(pair, 2, NULL, &loaded), CHORUS_OK);
        CHECK(get_stats(loaded).n_users == N_USERS);
        chorus_engine_free(unfitted);
    }
    group_end();

    group_begin("merge: differential privacy and its accountant");
    {
        chorus_merge_params mp;
        chorus_engine *priv = NULL, *unfitted = shard(1, 0, 4, AGENTS);
        chorus_merge_params_init(&mp);
        mp.noise_multiplier = 1; mp.clip_norm = 1;
        EXPECT(chorus_engine_merge(pair, 2, &mp, &priv), CHORUS_OK);
        EXPECT(chorus_engine_privacy_spent(priv, NULL, &delta, &rounds), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_privacy_spent(priv, &eps, NULL, &rounds), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_privacy_spent(priv, &eps, &delta, NULL), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_privacy_spent(NULL, &eps, &delta, &rounds), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_privacy_spent(unfitted, &eps, &delta, &rounds), CHORUS_ERR_NOT_FITTED);
        EXPECT(chorus_engine_privacy_spent(priv, &eps, &delta, &rounds), CHORUS_OK);
        /* sigma 1, one round, delta 1e-5: eps = min over orders of a/2 + ln(1e5)/(a - 1) = 5.2986 (a = 5.8). */
        CHECK(rounds == 1 && delta == 1e-5 && fabs(eps - 5.2986) < 1e-3);
        /* The ledger travels with the snapshot. */
        snprintf(path, sizeof path, "%s/private.chorus", g_dir);
        EXPECT(chorus_engine_save(priv, path), CHORUS_OK);
        chorus_engine_free(loaded);
        loaded = NULL;
        EXPECT(chorus_engine_load(path, &loaded), CHORUS_OK);
        eps = 0;
        EXPECT(chorus_engine_privacy_spent(loaded, &eps, &delta, &rounds), CHORUS_OK);
        CHECK(rounds == 1 && fabs(eps - 5.2986) < 1e-3);
        chorus_engine_free(priv);
        chorus_engine_free(unfitted);
    }
    group_end();
    chorus_engine_free(merged); chorus_engine_free(copy); chorus_engine_free(loaded);
}

void test_merge(void) {
    chorus_engine *odd = shard(0, 1, 4, AGENTS), *even = shard(1, 1, 4, AGENTS);
    group_begin("merge: shards fitted");
    CHECK(odd != NULL && even != NULL);
    group_end();
    if (odd == NULL || even == NULL) return;
    test_merge_params();
    test_bad_merges(odd, even);
    test_merged(odd, even);
    chorus_engine_free(odd);
    chorus_engine_free(even);
    test_save_without_interactions();
}

static void test_save_without_interactions(void) {
    chorus_engine *e = shard(2, 1, 4, AGENTS), *loaded = NULL, *again = NULL, *unfitted = shard(2, 0, 4, AGENTS);
    char path[1024];
    int64_t a[MK], b[MK];
    group_begin("save without interactions: the model serves, a fit is refused");
    CHECK(e != NULL && unfitted != NULL);
    snprintf(path, sizeof path, "%s/withheld.chorus", g_dir);
    EXPECT(chorus_engine_save_ex(NULL, path, CHORUS_SAVE_WITHOUT_INTERACTIONS), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_save_ex(e, NULL, CHORUS_SAVE_WITHOUT_INTERACTIONS), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_save_ex(e, path, 2), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_save_ex(unfitted, path, CHORUS_SAVE_WITHOUT_INTERACTIONS), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(message_has("fit it first"));
    EXPECT(chorus_engine_save_ex(e, path, 0), CHORUS_OK);  /* 0: chorus_engine_save */
    EXPECT(chorus_engine_load(path, &loaded), CHORUS_OK);
    CHECK(get_stats(loaded).n_interactions == d_n);
    chorus_engine_free(loaded);
    loaded = NULL;
    EXPECT(chorus_engine_save_ex(e, path, CHORUS_SAVE_WITHOUT_INTERACTIONS), CHORUS_OK);
    EXPECT(chorus_engine_load(path, &loaded), CHORUS_OK);
    CHECK(get_stats(loaded).n_interactions == 0 && get_stats(loaded).fitted && get_stats(loaded).n_model_users == N_USERS);
    top(e, user_id(0, 3), a); top(loaded, user_id(0, 3), b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    EXPECT(chorus_engine_fit(loaded, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(message_has("without its interactions"));
    {
        const chorus_engine *s[1] = {loaded};
        chorus_engine *out = NULL;
        EXPECT(chorus_engine_merge(s, 1, NULL, &out), CHORUS_ERR_INVALID_ARGUMENT);
        CHECK(out == NULL && message_has("without its interactions"));
    }
    {
        /* As the start of a round it serves: the shard has its own interactions. */
        chorus_fit_params p;
        chorus_fit_params_init(&p);
        p.factors = 4; p.iterations = 4; p.threads = 1; p.regularization = 0.1f; p.bpr_epochs = 20; p.agents = AGENTS;
        EXPECT(chorus_engine_fit_from(unfitted, &p, loaded), CHORUS_OK);
    }
    /* Its own saves withhold them too. */
    EXPECT(chorus_engine_save(loaded, path), CHORUS_OK);
    EXPECT(chorus_engine_load(path, &again), CHORUS_OK);
    CHECK(get_stats(again).n_interactions == 0);
    EXPECT(chorus_engine_fit(again, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    group_end();
    chorus_engine_free(e); chorus_engine_free(loaded); chorus_engine_free(again); chorus_engine_free(unfitted);
}
