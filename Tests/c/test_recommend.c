/*
 * test_recommend.c — serving a fitted engine: agents, recommend (the known answer, batches,
 * one agent alone), its errors and hostile counts, unknown users, allow / deny / seen, similar_items,
 * similar_users.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "harness.h"
#include "tests.h"

/* agent_info with the largest size_t index: out of range, like any other. */
static chorus_status agent_info_index_size_max(const void *e) {
    const char *name = NULL;
    return chorus_engine_agent_info((const chorus_engine *)e, (size_t)-1, &name, NULL);
}

void test_agents(const chorus_engine *e) {
    size_t n = 0, i;
    const char *name;
    float w, sum = 0.0f;
    int any_positive = 0;

    group_begin("agent_count / agent_info");
    EXPECT(chorus_engine_agent_count(NULL, &n), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_agent_count(e, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_agent_count(e, &n), CHORUS_OK);
    CHECK(n == g_n_agents);
    EXPECT(chorus_engine_agent_info(NULL, 0, &name, &w), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_agent_info(e, 0, NULL, &w), CHORUS_ERR_INVALID_ARGUMENT);
    /* An agent index out of range is an unknown agent. */
    EXPECT(chorus_engine_agent_info(e, n, &name, &w), CHORUS_ERR_NOT_FOUND);
    EXPECT_ISOLATED(agent_info_index_size_max, e, CHORUS_ERR_NOT_FOUND);
    for (i = 0; i < n; i++) {
        const char *again = NULL;
        name = NULL;
        w = NAN;
        EXPECT(chorus_engine_agent_info(e, i, &name, &w), CHORUS_OK);
        CHECK(name != NULL && name[0] != '\0');
        CHECK_MSG(isfinite(w) && w >= 0.0f, "agent weight after fit is finite and >= 0");
        if (isfinite(w)) sum += w;
        if (w > 0.0f) any_positive = 1;
        /* The name is borrowed from the engine: the same pointer (and text) every time. */
        EXPECT(chorus_engine_agent_info(e, i, &again, NULL), CHORUS_OK);
        CHECK(again != NULL && name != NULL && strcmp(again, name) == 0);
    }
    CHECK_MSG(any_positive, "at least one agent has a positive blend weight after fit");
    CHECK_MSG(sum > 0.0f, "the blend weights after fit are not all zero");
    group_end();
}

void test_recommend(const chorus_engine *e) {
    recs *r = malloc(sizeof *r), *r2 = malloc(sizeof *r2);
    chorus_recommend_params rp;
    size_t u, s, filled;
    int64_t user = g_users[0];
    int64_t batch[3];
    size_t als = find_agent(e, "als");
    int known_answer = 1, unseen = 1, known_flags = 1, well_formed;

    group_begin("recommend (known answer)");
    if (!r || !r2) { CHECK(0); free(r); free(r2); group_end(); return; }

    /* Every user, k = 3, the blend: the three unseen items of the user's own cluster. */
    EXPECT(recommend(e, g_users, N_USERS, 3, NULL, r), CHORUS_OK);
    well_formed = all_rows_well_formed(r);
    CHECK_MSG(well_formed, "rows well formed (filled first, scores non-increasing, empties -inf)");
    for (u = 0; u < N_USERS; u++) {
        row_well_formed(r, u, &filled);
        if (filled != 3) known_answer = 0;
        for (s = 0; s < 3; s++) {
            int64_t it = r->ids[u * 3 + s];
            if (!is_dataset_item(it) || item_cluster(it) != user_cluster(g_users[u])) known_answer = 0;
            if (has_seen(g_users[u], it)) unseen = 0;
        }
        if (r->flags[u] != CHORUS_USER_KNOWN) known_flags = 0;
    }
    CHECK_MSG(known_answer, "blend: every user's top 3 are items of the user's own cluster");
    CHECK_MSG(unseen, "blend: no already-seen item is recommended by default");
    CHECK_MSG(known_flags, "every known user is flagged CHORUS_USER_KNOWN");
    CHECK_MSG(shares_ok(r), "agent shares of every filled slot sum to 1");
    if (!known_answer) {
        printf("  user %lld got %lld %lld %lld\n", (long long)g_users[N_USERS - 1],
               (long long)r->ids[(N_USERS - 1) * 3], (long long)r->ids[(N_USERS - 1) * 3 + 1],
               (long long)r->ids[(N_USERS - 1) * 3 + 2]);
    }

    /* Batch equals single. */
    {
        int same = 1;
        for (u = 0; u < N_USERS; u++) {
            if (recommend(e, &g_users[u], 1, 3, NULL, r2) != CHORUS_OK) { same = 0; break; }
            for (s = 0; s < 3; s++) {
                if (r2->ids[s] != r->ids[u * 3 + s] ||
                    fabsf(r2->scores[s] - r->scores[u * 3 + s]) > 1e-5f * (1.0f + fabsf(r2->scores[s])))
                    same = 0;
            }
        }
        CHECK_MSG(same, "a batch gives the same rows as one call per user");
    }
    /* A batch large enough to be split across threads (>= 64 users) gives the same rows. */
    {
        int64_t big[2 * N_USERS + 1];
        int same = 1;
        for (u = 0; u < N_USERS; u++) big[u] = big[N_USERS + u] = g_users[u];
        big[2 * N_USERS] = COLD_USER;
        EXPECT(recommend(e, big, 2 * N_USERS + 1, 3, NULL, r2), CHORUS_OK);
        for (s = 0; s < 2 * N_USERS * 3; s++)
            if (r2->ids[s] != r->ids[s % (N_USERS * 3)] ||
                fabsf(r2->scores[s] - r->scores[s % (N_USERS * 3)]) > 1e-5f * (1.0f + fabsf(r->scores[s % (N_USERS * 3)])))
                same = 0;
        CHECK_MSG(same, "a batch of 83 users (threaded) gives the same rows as the batch of 41");
        CHECK(shares_ok(r2) && r2->flags[0] == CHORUS_USER_KNOWN && r2->flags[2 * N_USERS] == CHORUS_USER_COLD_FALLBACK);
    }

    /* One agent alone: "als" has the same known answer; "popularity" works. */
    chorus_recommend_params_init(&rp);
    rp.agent = "als";
    EXPECT(recommend(e, g_users, N_USERS, 3, &rp, r2), CHORUS_OK);
    known_answer = all_rows_well_formed(r2);
    for (u = 0; u < N_USERS; u++)
        for (s = 0; s < 3; s++) {
            int64_t it = r2->ids[u * 3 + s];
            if (!is_dataset_item(it) || item_cluster(it) != user_cluster(g_users[u]) || has_seen(g_users[u], it))
                known_answer = 0;
        }
    CHECK_MSG(known_answer, "agent \"als\": every user's top 3 are unseen items of the own cluster");
    if (als != (size_t)-1) {
        /* With one agent, that agent carries each item's whole score. */
        int all_als = 1;
        for (s = 0; s < N_USERS * 3; s++)
            if (fabsf(r2->shares[s * g_n_agents + als] - 1.0f) > 1e-3f) all_als = 0;
        CHECK_MSG(shares_ok(r2) && all_als, "agent \"als\" alone: its share of every item is 1");
    }
    rp.agent = "popularity";
    EXPECT(recommend(e, &user, 1, 3, &rp, r2), CHORUS_OK);
    CHECK(all_rows_well_formed(r2) && r2->ids[0] != CHORUS_NO_ITEM);
    rp.agent = "no-such-agent";
    EXPECT(recommend(e, &user, 1, 3, &rp, r2), CHORUS_ERR_NOT_FOUND);
    rp.agent = "";
    EXPECT(recommend(e, &user, 1, 3, &rp, r2), CHORUS_ERR_NOT_FOUND);
    rp.agent = "ALS"; /* names are exact */
    EXPECT(recommend(e, &user, 1, 3, &rp, r2), CHORUS_ERR_NOT_FOUND);

    /* Shares and flags are optional. */
    {
        int64_t ids[3];
        float sc[3];
        EXPECT(chorus_engine_recommend(e, &user, 1, 3, NULL, ids, sc, 3, NULL, 0, NULL), CHORUS_OK);
        CHECK(ids[0] == r->ids[0] && ids[1] == r->ids[1] && ids[2] == r->ids[2]);
    }

    /* A mixed batch with a repeated user. */
    batch[0] = g_users[0];
    batch[1] = g_users[N_USERS - 1];
    batch[2] = g_users[0];
    EXPECT(recommend(e, batch, 3, 3, NULL, r2), CHORUS_OK);
    CHECK(r2->ids[0] == r2->ids[6] && r2->ids[1] == r2->ids[7] && r2->ids[2] == r2->ids[8]);
    CHECK(r2->ids[0] == r->ids[0] && r2->ids[3] == r->ids[(N_USERS - 1) * 3]);
    free(r);
    free(r2);
    group_end();
}

/* Counts above SIZE_MAX / 2 wrap negative in a signed view: each must be rejected, never trusted. */
static chorus_status recommend_n_allow_size_max(const void *e) {
    chorus_recommend_params rp;
    int64_t user = 1, allow = 1000, ids[3];
    float sc[3];
    chorus_recommend_params_init(&rp);
    rp.allow_items = &allow;
    rp.n_allow = (size_t)-1;
    return chorus_engine_recommend((const chorus_engine *)e, &user, 1, 3, &rp, ids, sc, 3, NULL, 0, NULL);
}

static chorus_status similar_n_deny_size_max(const void *e) {
    chorus_recommend_params rp;
    int64_t item = 1000, deny = 1001, ids[3];
    float sc[3];
    chorus_recommend_params_init(&rp);
    rp.deny_items = &deny;
    rp.n_deny = (size_t)-1;
    return chorus_engine_similar_items((const chorus_engine *)e, &item, 1, 3, &rp, ids, sc, 3);
}

static chorus_status recommend_n_users_size_max(const void *e) {
    int64_t user = 1, ids[3];
    float sc[3];
    return chorus_engine_recommend((const chorus_engine *)e, &user, (size_t)-1, 3, NULL, ids, sc, 3, NULL, 0, NULL);
}

static chorus_status recommend_k_size_max(const void *e) {
    int64_t user = 1, ids[3];
    float sc[3];
    return chorus_engine_recommend((const chorus_engine *)e, &user, 1, (size_t)-1, NULL, ids, sc, 3, NULL, 0, NULL);
}

void test_recommend_errors(const chorus_engine *e) {
    recs *r = malloc(sizeof *r);
    chorus_recommend_params rp;
    int64_t users[2] = {g_users[0], g_users[1]};
    int64_t ids[8];
    float sc[8], sh[8 * MAX_AGENTS];
    uint32_t fl[2];
    size_t na = g_n_agents;

    group_begin("recommend (errors)");
    if (!r) { CHECK(0); group_end(); return; }
    EXPECT(chorus_engine_recommend(NULL, users, 2, 3, NULL, ids, sc, 6, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_recommend(e, NULL, 2, 3, NULL, ids, sc, 6, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_recommend(e, users, 2, 3, NULL, NULL, sc, 6, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_recommend(e, users, 2, 3, NULL, ids, NULL, 6, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);

    /* k = 0, k beyond the catalogue; k = number of items is fine. */
    EXPECT(chorus_engine_recommend(e, users, 2, 0, NULL, ids, sc, 6, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(recommend(e, users, 1, N_ITEMS + 1, NULL, r), CHORUS_ERR_INVALID_ARGUMENT);
    /* n_users * k overflows size_t: rejected, nothing written (either status is right here). */
    EXPECT_EITHER(chorus_engine_recommend(e, users, 2, ((size_t)-1) / 2 + 1, NULL, ids, sc, 6, NULL, 0, NULL),
                  CHORUS_ERR_INVALID_ARGUMENT, CHORUS_ERR_BUFFER_TOO_SMALL);
    EXPECT(recommend(e, users, 1, N_ITEMS, NULL, r), CHORUS_OK);

    /* n_users = 0: an empty batch. */
    EXPECT(chorus_engine_recommend(e, users, 0, 3, NULL, ids, sc, 0, NULL, 0, NULL), EMPTY_BATCH_STATUS);

    /* Capacities. */
    EXPECT(chorus_engine_recommend(e, users, 2, 3, NULL, ids, sc, 5, NULL, 0, NULL), CHORUS_ERR_BUFFER_TOO_SMALL);
    EXPECT(chorus_engine_recommend(e, users, 2, 3, NULL, ids, sc, 0, NULL, 0, NULL), CHORUS_ERR_BUFFER_TOO_SMALL);
    EXPECT(chorus_engine_recommend(e, users, 2, 3, NULL, ids, sc, 6, sh, 6 * na - 1, fl), CHORUS_ERR_BUFFER_TOO_SMALL);
    EXPECT(chorus_engine_recommend(e, users, 2, 3, NULL, ids, sc, 6, sh, 6, fl), na > 1 ? CHORUS_ERR_BUFFER_TOO_SMALL : CHORUS_OK);
    EXPECT(chorus_engine_recommend(e, users, 2, 3, NULL, ids, sc, 6, sh, 6 * na, fl), CHORUS_OK);
    /* Larger capacities than needed are fine. */
    EXPECT(chorus_engine_recommend(e, users, 2, 3, NULL, ids, sc, 8, sh, 8 * na, fl), CHORUS_OK);

    /* Params. */
    chorus_recommend_params_init(&rp);
    rp.flags = 0x80u; /* not a CHORUS_RECOMMEND_* bit */
    EXPECT(chorus_engine_recommend(e, users, 2, 3, &rp, ids, sc, 6, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_recommend_params_init(&rp);
    rp.struct_size = 4;
    EXPECT(chorus_engine_recommend(e, users, 2, 3, &rp, ids, sc, 6, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    rp.struct_size = 0;
    EXPECT(chorus_engine_recommend(e, users, 2, 3, &rp, ids, sc, 6, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_recommend_params_init(&rp);
    rp.n_allow = 2; /* allow_items NULL */
    EXPECT(chorus_engine_recommend(e, users, 2, 3, &rp, ids, sc, 6, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_recommend_params_init(&rp);
    rp.n_deny = 2; /* deny_items NULL */
    EXPECT(chorus_engine_recommend(e, users, 2, 3, &rp, ids, sc, 6, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    /* Absurd counts (SIZE_MAX) are rejected with a message, never dereferenced. */
    EXPECT_ISOLATED(recommend_n_allow_size_max, e, CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT_ISOLATED(similar_n_deny_size_max, e, CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT_ISOLATED(recommend_n_users_size_max, e, CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT_ISOLATED(recommend_k_size_max, e, CHORUS_ERR_INVALID_ARGUMENT);
    /* A capacity beyond what is needed, even SIZE_MAX, is fine. */
    EXPECT(chorus_engine_recommend(e, users, 2, 3, NULL, ids, sc, (size_t)-1, NULL, 0, NULL), CHORUS_OK);
    free(r);
    group_end();
}

void test_cold_user(const chorus_engine *e) {
    recs *r = malloc(sizeof *r), *pop = malloc(sizeof *pop), *one = malloc(sizeof *one);
    chorus_recommend_params rp;
    int64_t cold = COLD_USER;
    int64_t batch[3];
    size_t s, filled = 0;
    int same = 1, deny_ok = 1;

    group_begin("unknown user (cold fallback)");
    if (!r || !pop || !one) { CHECK(0); free(r); free(pop); free(one); group_end(); return; }
    EXPECT(recommend(e, &cold, 1, 5, NULL, r), CHORUS_OK);
    CHECK(r->flags[0] == CHORUS_USER_COLD_FALLBACK);
    CHECK(row_well_formed(r, 0, &filled) && filled == 5);
    CHECK_MSG(r->ids[0] == TOP_POPULAR_ITEM, "a cold user's first item is the most popular one");
    /* The popularity agent alone gives the same items. */
    chorus_recommend_params_init(&rp);
    rp.agent = "popularity";
    EXPECT(recommend(e, &cold, 1, 5, &rp, pop), CHORUS_OK);
    for (s = 0; s < 5; s++)
        if (pop->ids[s] != r->ids[s]) same = 0;
    CHECK_MSG(same, "a cold user gets the popularity agent's items");
    CHECK_MSG(shares_ok(r) && fabsf(r->shares[0] - 1.0f) < 1e-3f,
              "a cold user's items are all the popularity agent's (share 1)");

    /* Mixed batch: flags per user; each row as for that user alone. */
    batch[0] = g_users[0];
    batch[1] = COLD_USER;
    batch[2] = g_users[N_USERS - 1];
    EXPECT(recommend(e, batch, 3, 5, NULL, r), CHORUS_OK);
    CHECK(r->flags[0] == CHORUS_USER_KNOWN && r->flags[1] == CHORUS_USER_COLD_FALLBACK &&
          r->flags[2] == CHORUS_USER_KNOWN);
    same = 1;
    for (s = 0; s < 5; s++)
        if (r->ids[5 + s] != pop->ids[s]) same = 0;
    EXPECT(recommend(e, &batch[0], 1, 5, NULL, one), CHORUS_OK);
    for (s = 0; s < 5; s++)
        if (r->ids[s] != one->ids[s]) same = 0;
    CHECK_MSG(same, "a cold user inside a batch gets the same row as alone");

    /* Deny list applies to the fallback too. */
    {
        int64_t deny = TOP_POPULAR_ITEM;
        chorus_recommend_params_init(&rp);
        rp.deny_items = &deny;
        rp.n_deny = 1;
        EXPECT(recommend(e, &cold, 1, 5, &rp, r), CHORUS_OK);
        CHECK(r->flags[0] == CHORUS_USER_COLD_FALLBACK);
        for (s = 0; s < 5; s++)
            if (r->ids[s] == TOP_POPULAR_ITEM) deny_ok = 0;
        CHECK_MSG(deny_ok && r->ids[0] == pop->ids[1], "deny list applied to a cold user's fallback");
    }
    /* Allow list too. */
    {
        int64_t allow[2] = {2003, 1005};
        chorus_recommend_params_init(&rp);
        rp.allow_items = allow;
        rp.n_allow = 2;
        EXPECT(recommend(e, &cold, 1, 3, &rp, r), CHORUS_OK);
        CHECK(row_well_formed(r, 0, &filled) && filled == 2 && contains(allow, 2, r->ids[0]) &&
              contains(allow, 2, r->ids[1]) && r->ids[2] == CHORUS_NO_ITEM);
    }
    free(r);
    free(pop);
    free(one);
    group_end();
}

void test_filters(const chorus_engine *e) {
    recs *r = malloc(sizeof *r), *base = malloc(sizeof *base);
    chorus_recommend_params rp;
    int64_t user = g_users[0];
    size_t s, filled = 0;
    int ok;

    group_begin("allow / deny / seen");
    if (!r || !base) { CHECK(0); free(r); free(base); group_end(); return; }
    EXPECT(recommend(e, &user, 1, 3, NULL, base), CHORUS_OK);

    /* Allow-list: only the other cluster's items are allowed. */
    {
        int64_t allow[4] = {2001, 2002, 2003, 2004};
        chorus_recommend_params_init(&rp);
        rp.allow_items = allow;
        rp.n_allow = 4;
        EXPECT(recommend(e, &user, 1, 3, &rp, r), CHORUS_OK);
        ok = row_well_formed(r, 0, &filled) && filled == 3;
        for (s = 0; s < 3; s++)
            if (!contains(allow, 4, r->ids[s])) ok = 0;
        CHECK_MSG(ok, "allow-list: only allowed items are recommended");
        CHECK(shares_ok(r));
    }
    /* Allow-list of one item: one filled slot, then empty slots. */
    {
        int64_t allow = 2005;
        chorus_recommend_params_init(&rp);
        rp.allow_items = &allow;
        rp.n_allow = 1;
        EXPECT(recommend(e, &user, 1, 3, &rp, r), CHORUS_OK);
        CHECK(r->ids[0] == 2005 && r->ids[1] == CHORUS_NO_ITEM && r->ids[2] == CHORUS_NO_ITEM);
        CHECK(isinf(r->scores[1]) && r->scores[1] < 0 && isinf(r->scores[2]) && r->scores[2] < 0);
        CHECK_MSG(shares_ok(r), "shares of empty slots are all 0");
    }
    /* Allow-list of seen items only: nothing to recommend (not an error). */
    {
        int64_t allow[2] = {1000, 0};
        size_t i;
        for (i = 1; i < N_ITEMS_PER_CLUSTER; i++)
            if (has_seen(user, 1000 + (int64_t)i)) { allow[1] = 1000 + (int64_t)i; break; }
        chorus_recommend_params_init(&rp);
        rp.allow_items = allow;
        rp.n_allow = 2;
        EXPECT(recommend(e, &user, 1, 3, &rp, r), CHORUS_OK);
        CHECK_MSG(r->ids[0] == CHORUS_NO_ITEM && r->ids[1] == CHORUS_NO_ITEM && r->ids[2] == CHORUS_NO_ITEM,
                  "allow-list of seen items only: every slot empty");
        rp.flags = CHORUS_RECOMMEND_INCLUDE_SEEN;
        EXPECT(recommend(e, &user, 1, 3, &rp, r), CHORUS_OK);
        CHECK_MSG(row_well_formed(r, 0, &filled) && filled == 2 && contains(allow, 2, r->ids[0]) &&
                      contains(allow, 2, r->ids[1]),
                  "the same allow-list with INCLUDE_SEEN: both items");
    }
    /* Deny-list: deny the usual top 3. */
    {
        chorus_recommend_params_init(&rp);
        rp.deny_items = base->ids;
        rp.n_deny = 3;
        EXPECT(recommend(e, &user, 1, 3, &rp, r), CHORUS_OK);
        ok = row_well_formed(r, 0, &filled) && filled == 3;
        for (s = 0; s < 3; s++)
            if (contains(base->ids, 3, r->ids[s]) || has_seen(user, r->ids[s])) ok = 0;
        CHECK_MSG(ok, "deny-list: denied items never recommended");
    }
    /* Allow and deny together: deny wins. */
    {
        int64_t allow[3] = {2001, 2002, 2003}, deny = 2002;
        chorus_recommend_params_init(&rp);
        rp.allow_items = allow;
        rp.n_allow = 3;
        rp.deny_items = &deny;
        rp.n_deny = 1;
        EXPECT(recommend(e, &user, 1, 3, &rp, r), CHORUS_OK);
        CHECK(row_well_formed(r, 0, &filled) && filled == 2 && r->ids[2] == CHORUS_NO_ITEM);
        CHECK(contains(allow, 3, r->ids[0]) && contains(allow, 3, r->ids[1]) && r->ids[0] != 2002 &&
              r->ids[1] != 2002);
    }
    /* Exclude-seen (default) vs INCLUDE_SEEN, with k = the whole catalogue. */
    {
        int seen_in = 0, all_unseen = 1;
        EXPECT(recommend(e, &user, 1, N_ITEMS, NULL, r), CHORUS_OK);
        CHECK(row_well_formed(r, 0, &filled));
        CHECK_MSG(filled == N_ITEMS - SEEN_PER_USER, "exclude-seen: k = all items fills exactly the unseen ones");
        for (s = 0; s < filled; s++)
            if (has_seen(user, r->ids[s])) all_unseen = 0;
        CHECK(all_unseen);
        chorus_recommend_params_init(&rp);
        rp.flags = CHORUS_RECOMMEND_INCLUDE_SEEN;
        EXPECT(recommend(e, &user, 1, N_ITEMS, &rp, r), CHORUS_OK);
        CHECK(row_well_formed(r, 0, &filled));
        CHECK_MSG(filled == N_ITEMS, "INCLUDE_SEEN: k = all items fills every slot");
        for (s = 0; s < filled; s++)
            if (has_seen(user, r->ids[s])) seen_in++;
        CHECK(seen_in == SEEN_PER_USER);
        /* And with k = 3 the top is within the cluster, seen items allowed. */
        EXPECT(recommend(e, &user, 1, 3, &rp, r), CHORUS_OK);
        ok = 1;
        for (s = 0; s < 3; s++)
            if (!is_dataset_item(r->ids[s]) || item_cluster(r->ids[s]) != user_cluster(user)) ok = 0;
        CHECK_MSG(ok, "INCLUDE_SEEN: top 3 still within the user's cluster");
    }
    free(r);
    free(base);
    group_end();
}

void test_similar(const chorus_engine *e) {
    recs *r = malloc(sizeof *r), *r2 = malloc(sizeof *r2);
    chorus_recommend_params rp;
    int64_t items[2] = {1003, 2006}, ids[8];
    float sc[8];
    size_t s, filled = 0;
    int ok = 1;

    group_begin("similar_items");
    if (!r || !r2) { CHECK(0); free(r); free(r2); group_end(); return; }
    EXPECT(similar(e, items, 2, 3, NULL, r), CHORUS_OK);
    CHECK(all_rows_well_formed(r));
    for (s = 0; s < 6; s++) {
        int64_t src = items[s / 3];
        if (r->ids[s] == src || !is_dataset_item(r->ids[s]) || item_cluster(r->ids[s]) != item_cluster(src)) ok = 0;
        if (!(r->scores[s] <= 1.0f + 1e-4f && r->scores[s] >= -1.0f - 1e-4f)) ok = 0;
    }
    CHECK_MSG(ok, "similar items are in the item's own cluster, exclude the item, cosine in [-1, 1]");
    /* Batch equals single. */
    EXPECT(similar(e, &items[1], 1, 3, NULL, r2), CHORUS_OK);
    CHECK(r2->ids[0] == r->ids[3] && r2->ids[1] == r->ids[4] && r2->ids[2] == r->ids[5]);
    /* k = all items: the item itself excluded leaves one empty slot. */
    EXPECT(similar(e, items, 1, N_ITEMS, NULL, r2), CHORUS_OK);
    CHECK(row_well_formed(r2, 0, &filled) && filled == N_ITEMS - 1 && !contains(r2->ids, N_ITEMS, items[0]));

    /* Filters. */
    {
        int64_t allow[3] = {2001, 2002, 1007}, deny[1];
        chorus_recommend_params_init(&rp);
        rp.allow_items = allow;
        rp.n_allow = 3;
        EXPECT(similar(e, items, 1, 3, &rp, r2), CHORUS_OK);
        CHECK(row_well_formed(r2, 0, &filled) && filled == 3 && r2->ids[0] == 1007 &&
              contains(allow, 3, r2->ids[1]) && contains(allow, 3, r2->ids[2]));
        deny[0] = r->ids[0];
        chorus_recommend_params_init(&rp);
        rp.deny_items = deny;
        rp.n_deny = 1;
        EXPECT(similar(e, items, 1, 3, &rp, r2), CHORUS_OK);
        CHECK_MSG(!contains(r2->ids, 3, deny[0]) && r2->ids[0] == r->ids[1],
                  "similar_items: deny-list honoured");
        /* agent and flags are ignored. */
        chorus_recommend_params_init(&rp);
        rp.agent = "no-such-agent";
        rp.flags = CHORUS_RECOMMEND_INCLUDE_SEEN;
        EXPECT(similar(e, items, 1, 3, &rp, r2), CHORUS_OK);
        CHECK(r2->ids[0] == r->ids[0] && r2->ids[1] == r->ids[1] && r2->ids[2] == r->ids[2]);
    }

    /* Errors. */
    {
        int64_t unknown[2] = {1003, UNKNOWN_ITEM};
        EXPECT(similar(e, &unknown[1], 1, 3, NULL, r2), CHORUS_ERR_NOT_FOUND);
        EXPECT(similar(e, unknown, 2, 3, NULL, r2), CHORUS_ERR_NOT_FOUND);
    }
    EXPECT(chorus_engine_similar_items(NULL, items, 1, 3, NULL, ids, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_similar_items(e, NULL, 1, 3, NULL, ids, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_similar_items(e, items, 1, 3, NULL, NULL, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_similar_items(e, items, 1, 3, NULL, ids, NULL, 3), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_similar_items(e, items, 1, 0, NULL, ids, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(similar(e, items, 1, N_ITEMS + 1, NULL, r2), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_similar_items(e, items, 0, 3, NULL, ids, sc, 0), EMPTY_BATCH_STATUS);
    EXPECT(chorus_engine_similar_items(e, items, 2, 3, NULL, ids, sc, 5), CHORUS_ERR_BUFFER_TOO_SMALL);
    EXPECT(chorus_engine_similar_items(e, items, 2, 3, NULL, ids, sc, 8), CHORUS_OK);
    chorus_recommend_params_init(&rp);
    rp.struct_size = 4;
    EXPECT(chorus_engine_similar_items(e, items, 1, 3, &rp, ids, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_recommend_params_init(&rp);
    rp.n_allow = 1;
    EXPECT(chorus_engine_similar_items(e, items, 1, 3, &rp, ids, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_recommend_params_init(&rp);
    rp.n_deny = 1;
    EXPECT(chorus_engine_similar_items(e, items, 1, 3, &rp, ids, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
    free(r);
    free(r2);
    group_end();
}

/* Hostile counts for similar_users, each in a child process (a trap must not end the run). */
static chorus_status similar_users_n_users_size_max(const void *e) {
    int64_t user = 1, ids[3];
    float sc[3];
    return chorus_engine_similar_users((const chorus_engine *)e, &user, (size_t)-1, 3, NULL, 0, NULL, 0, ids, sc, 3);
}

static chorus_status similar_users_k_size_max(const void *e) {
    int64_t user = 1, ids[3];
    float sc[3];
    return chorus_engine_similar_users((const chorus_engine *)e, &user, 1, (size_t)-1, NULL, 0, NULL, 0, ids, sc, 3);
}

static chorus_status similar_users_n_allow_size_max(const void *e) {
    int64_t user = 1, allow = 2, ids[3];
    float sc[3];
    return chorus_engine_similar_users((const chorus_engine *)e, &user, 1, 3, &allow, (size_t)-1, NULL, 0, ids, sc, 3);
}

static chorus_status similar_users_n_deny_size_max(const void *e) {
    int64_t user = 1, deny = 2, ids[3];
    float sc[3];
    return chorus_engine_similar_users((const chorus_engine *)e, &user, 1, 3, NULL, 0, &deny, (size_t)-1, ids, sc, 3);
}

/* A similar-users row: `filled` users first (finite cosines in [-1, 1], non-increasing, distinct,
 * not the user itself), then empty slots (CHORUS_NO_ITEM, -INFINITY). */
static int users_row_ok(const int64_t *ids, const float *sc, size_t k, int64_t self, size_t *out_filled) {
    size_t s, t, filled = 0;
    for (s = 0; s < k; s++) {
        if (sc[s] == -INFINITY) {
            if (ids[s] != CHORUS_NO_ITEM) return 0;
            continue;
        }
        if (filled != s) return 0; /* a filled slot after an empty one */
        if (!(sc[s] >= -1.0f - 1e-4f && sc[s] <= 1.0f + 1e-4f) || ids[s] == self) return 0;
        if (s > 0 && sc[s] > sc[s - 1]) return 0;
        for (t = 0; t < s; t++) if (ids[t] == ids[s]) return 0;
        filled++;
    }
    *out_filled = filled;
    return 1;
}

void test_similar_users(const chorus_engine *e) {
    int64_t users[2], ids[2 * N_USERS], ids2[N_USERS];
    float sc[2 * N_USERS], sc2[N_USERS];
    size_t s, filled = 0;
    int ok = 1;

    group_begin("similar_users");
    users[0] = user_id(0, 3);
    users[1] = user_id(1, 5);
    EXPECT(chorus_engine_similar_users(e, users, 2, 5, NULL, 0, NULL, 0, ids, sc, 10), CHORUS_OK);
    for (s = 0; s < 10; s++) {
        if (user_cluster(ids[s]) != user_cluster(users[s / 5])) ok = 0;
    }
    CHECK_MSG(ok, "similar users are in the user's own cluster");
    CHECK(users_row_ok(ids, sc, 5, users[0], &filled) && filled == 5);
    CHECK(users_row_ok(ids + 5, sc + 5, 5, users[1], &filled) && filled == 5);
    CHECK_MSG(sc[0] > 0.9f && sc[5] > 0.9f, "two factors, two clusters: the nearest user is at cosine ~1");
    /* Batch equals single. */
    EXPECT(chorus_engine_similar_users(e, &users[1], 1, 5, NULL, 0, NULL, 0, ids2, sc2, 5), CHORUS_OK);
    CHECK(memcmp(ids2, ids + 5, 5 * sizeof ids2[0]) == 0 && memcmp(sc2, sc + 5, 5 * sizeof sc2[0]) == 0);
    /* k = every user: the user itself excluded leaves one empty slot; the other cluster comes last. */
    EXPECT(chorus_engine_similar_users(e, users, 1, N_USERS, NULL, 0, NULL, 0, ids2, sc2, N_USERS), CHORUS_OK);
    CHECK(users_row_ok(ids2, sc2, N_USERS, users[0], &filled) && filled == N_USERS - 1);
    ok = 1;
    for (s = 0; s < N_USERS - 1; s++) if (user_cluster(ids2[s]) != (s < N_USERS_A - 1 ? 0 : 1)) ok = 0;
    CHECK_MSG(ok, "k = all users: the own cluster first, then the other");

    /* Allow and deny lists (unknown ids in them ignored). */
    {
        int64_t allow[4] = {0, 0, 0, COLD_USER}, deny[2] = {0, COLD_USER};
        allow[0] = user_id(1, 0);
        allow[1] = user_id(0, 7);
        allow[2] = users[0];
        EXPECT(chorus_engine_similar_users(e, users, 1, 3, allow, 4, NULL, 0, ids2, sc2, 3), CHORUS_OK);
        CHECK_MSG(users_row_ok(ids2, sc2, 3, users[0], &filled) && filled == 2 && ids2[0] == user_id(0, 7) &&
                  ids2[1] == user_id(1, 0), "allow_users: only those, the user itself still excluded");
        deny[0] = ids[0];
        EXPECT(chorus_engine_similar_users(e, users, 1, 3, NULL, 0, deny, 2, ids2, sc2, 3), CHORUS_OK);
        CHECK_MSG(!contains(ids2, 3, deny[0]) && ids2[0] == ids[1] && ids2[1] == ids[2], "deny_users honoured");
        EXPECT(chorus_engine_similar_users(e, users, 1, 3, allow, 0, NULL, 0, ids2, sc2, 3), CHORUS_OK);
        CHECK_MSG(sc2[0] == -INFINITY && sc2[2] == -INFINITY, "an empty allow list leaves every slot empty");
    }

    /* Errors: nothing written on failure. */
    {
        int64_t unknown[2] = {0, COLD_USER};
        unknown[0] = users[0];
        for (s = 0; s < N_USERS; s++) { ids2[s] = 42; sc2[s] = 42.0f; }
        EXPECT(chorus_engine_similar_users(e, &unknown[1], 1, 3, NULL, 0, NULL, 0, ids2, sc2, 3), CHORUS_ERR_NOT_FOUND);
        EXPECT(chorus_engine_similar_users(e, unknown, 2, 3, NULL, 0, NULL, 0, ids2, sc2, 6), CHORUS_ERR_NOT_FOUND);
        CHECK_MSG(ids2[0] == 42 && sc2[0] == 42.0f, "an unknown user: nothing written");
        EXPECT(chorus_engine_similar_users(e, users, 1, N_USERS + 1, NULL, 0, NULL, 0, ids, sc, 2 * N_USERS),
               CHORUS_ERR_INVALID_ARGUMENT);
        CHECK_MSG(strstr(chorus_last_error(), "k =") != NULL, "k past the user count: the message names k");
    }
    EXPECT(chorus_engine_similar_users(NULL, users, 1, 3, NULL, 0, NULL, 0, ids, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_similar_users(e, NULL, 1, 3, NULL, 0, NULL, 0, ids, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(chorus_last_error(), "user_ids") != NULL);
    EXPECT(chorus_engine_similar_users(e, users, 1, 3, NULL, 0, NULL, 0, NULL, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(chorus_last_error(), "out_user_ids") != NULL);
    EXPECT(chorus_engine_similar_users(e, users, 1, 3, NULL, 0, NULL, 0, ids, NULL, 3), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(chorus_last_error(), "out_scores") != NULL);
    EXPECT(chorus_engine_similar_users(e, users, 1, 0, NULL, 0, NULL, 0, ids, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_similar_users(e, users, 0, 3, NULL, 0, NULL, 0, ids, sc, 0), EMPTY_BATCH_STATUS);
    EXPECT(chorus_engine_similar_users(e, users, 1, 3, NULL, 2, NULL, 0, ids, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(chorus_last_error(), "allow_users") != NULL);
    EXPECT(chorus_engine_similar_users(e, users, 1, 3, NULL, 0, NULL, 1, ids, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(chorus_last_error(), "deny_users") != NULL);
    EXPECT(chorus_engine_similar_users(e, users, 2, 3, NULL, 0, NULL, 0, ids, sc, 5), CHORUS_ERR_BUFFER_TOO_SMALL);
    EXPECT(chorus_engine_similar_users(e, users, 2, 3, NULL, 0, NULL, 0, ids, sc, (size_t)-1), CHORUS_OK);
    EXPECT_ISOLATED(similar_users_n_users_size_max, e, CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT_ISOLATED(similar_users_k_size_max, e, CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT_ISOLATED(similar_users_n_allow_size_max, e, CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT_ISOLATED(similar_users_n_deny_size_max, e, CHORUS_ERR_INVALID_ARGUMENT);

    /* Before a fit; a model with no factor agent; bpr alone serves. */
    {
        chorus_engine *f = NULL;
        chorus_fit_params fp = small_fit_params();
        EXPECT(chorus_engine_create(NULL, &f), CHORUS_OK);
        EXPECT(chorus_engine_add_interactions(f, d_user, d_item, d_weight, d_time, d_n), CHORUS_OK);
        EXPECT(chorus_engine_similar_users(f, users, 1, 3, NULL, 0, NULL, 0, ids, sc, 3), CHORUS_ERR_NOT_FITTED);
        fp.agents = "itemknn";
        EXPECT(chorus_engine_fit(f, &fp), CHORUS_OK);
        EXPECT(chorus_engine_similar_users(f, users, 1, 3, NULL, 0, NULL, 0, ids, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
        CHECK_MSG(strstr(chorus_last_error(), "als or bpr") != NULL, "no factor agent: the message says which are needed");
        fp.agents = "bpr";
        fp.bpr_epochs = 30;
        EXPECT(chorus_engine_fit(f, &fp), CHORUS_OK);
        EXPECT(chorus_engine_similar_users(f, users, 1, 3, NULL, 0, NULL, 0, ids, sc, 3), CHORUS_OK);
        CHECK(users_row_ok(ids, sc, 3, users[0], &filled) && filled == 3);
        chorus_engine_free(f);
    }
    group_end();
}
