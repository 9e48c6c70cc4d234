/*
 * test_feedback.c — live feedback (chorus_engine_feedback, chorus_feedback_params): every argument's
 * validation with nothing recorded on error, feedback before the first fit, what the next recommend
 * sees (a consumed item gone, a new user served personally, a dismissed item dropped), and the
 * online state's save/load round trip. Uses its own engine, built from the synthetic clusters.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "harness.h"
#include "tests.h"

#define FK 5

static uint64_t interactions(const chorus_engine *e) { return get_stats(e).n_interactions; }

/* Top FK of one user (no shares); returns the status, the flag in *flag. */
static chorus_status top(const chorus_engine *e, int64_t user, int include_seen, size_t k, int64_t *ids, uint32_t *flag) {
    float scores[MAX_K];
    chorus_recommend_params rp;
    chorus_recommend_params_init(&rp);
    if (include_seen) rp.flags = CHORUS_RECOMMEND_INCLUDE_SEEN;
    return chorus_engine_recommend(e, &user, 1, k, &rp, ids, scores, k, NULL, 0, flag);
}

static chorus_status load_and_free(const char *path) {
    chorus_engine *l = NULL;
    chorus_status st = chorus_engine_load(path, &l);
    chorus_status out = (st != CHORUS_OK && l != NULL) ? CHORUS_ERR_INTERNAL : st; /* *out must stay NULL */
    chorus_engine_free(l);
    return out;
}

static chorus_engine *new_engine(void) {
    chorus_engine *e = NULL;
    if (chorus_engine_create(NULL, &e) != CHORUS_OK) return NULL;
    if (chorus_engine_add_interactions(e, d_user, d_item, d_weight, d_time, d_n) != CHORUS_OK) {
        chorus_engine_free(e);
        return NULL;
    }
    return e;
}

static void test_params(void) {
    chorus_feedback_params p;
    group_begin("feedback params");
    memset(&p, 0xAB, sizeof p);
    EXPECT(chorus_feedback_params_init(&p), CHORUS_OK);
    CHECK(p.struct_size == sizeof p);
    CHECK(p.impression == 0.0f && p.click == 1.0f && p.add_to_cart == 2.0f && p.purchase == 4.0f);
    CHECK(p.rating == 1.0f && p.skip == -0.5f && p.dismiss == -1.0f && p.reserved == 0);
    memset(&p, 0xAB, sizeof p);
    EXPECT((chorus_feedback_params_init)(&p), CHORUS_OK);
    CHECK(p.struct_size == sizeof p && p.purchase == 4.0f);
    EXPECT(chorus_feedback_params_init_sized(&p, 4), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_feedback_params_init_sized(&p, sizeof p + 8), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_feedback_params_init_sized(NULL, sizeof p), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(chorus_struct_size("chorus_feedback_params") == sizeof p);
    group_end();
}

static void test_validation(chorus_engine *e) {
    int64_t u[2] = {1, 2}, it[2] = {1001, 1002}, bad_item[2] = {1001, CHORUS_NO_ITEM};
    int32_t ev[2] = {CHORUS_EVENT_CLICK, CHORUS_EVENT_PURCHASE};
    int32_t bad_ev[2] = {CHORUS_EVENT_CLICK, 7}, neg_ev[2] = {-1, CHORUS_EVENT_CLICK};
    float nan_v[2] = {1, NAN}, inf_v[2] = {INFINITY, 1}, neg_v[2] = {1, -1}, huge_v[2] = {1, 3e38f};
    const char bad_utf8[] = {'h', (char)0xC3, 0};
    chorus_feedback_params p;
    uint64_t before = interactions(e);

    group_begin("feedback: validation, nothing recorded on error");
    EXPECT(chorus_engine_feedback(NULL, u, it, ev, NULL, NULL, 2, NULL, NULL, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_feedback(e, NULL, it, ev, NULL, NULL, 2, NULL, NULL, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_feedback(e, u, NULL, ev, NULL, NULL, 2, NULL, NULL, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_feedback(e, u, it, NULL, NULL, NULL, 2, NULL, NULL, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_feedback(e, u, it, ev, NULL, NULL, 0, NULL, NULL, NULL), EMPTY_BATCH_STATUS);
    EXPECT(chorus_engine_feedback(e, u, it, ev, NULL, NULL, (size_t)-1, NULL, NULL, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_feedback(e, u, it, bad_ev, NULL, NULL, 2, NULL, NULL, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_feedback(e, u, it, neg_ev, NULL, NULL, 2, NULL, NULL, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_feedback(e, u, it, ev, nan_v, NULL, 2, NULL, NULL, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_feedback(e, u, it, ev, inf_v, NULL, 2, NULL, NULL, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_feedback(e, u, it, ev, neg_v, NULL, 2, NULL, NULL, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    /* 3e38 times the purchase reward 4 overflows float. */
    EXPECT(chorus_engine_feedback(e, u, it, ev, huge_v, NULL, 2, NULL, NULL, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_feedback(e, u, bad_item, ev, NULL, NULL, 2, NULL, NULL, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_feedback(e, u, it, ev, NULL, NULL, 2, "no such scenario", NULL, NULL), CHORUS_ERR_NOT_FOUND);
    EXPECT(chorus_engine_feedback(e, u, it, ev, NULL, NULL, 2, bad_utf8, NULL, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_feedback_params_init(&p);
    p.click = NAN;
    EXPECT(chorus_engine_feedback(e, u, it, ev, NULL, NULL, 2, NULL, NULL, &p), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_feedback_params_init(&p);
    p.dismiss = -INFINITY;
    EXPECT(chorus_engine_feedback(e, u, it, ev, NULL, NULL, 2, NULL, NULL, &p), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_feedback_params_init(&p);
    p.struct_size = 3;
    EXPECT(chorus_engine_feedback(e, u, it, ev, NULL, NULL, 2, NULL, NULL, &p), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_feedback_params_init(&p);
    p.reserved = 1;
    EXPECT(chorus_engine_feedback(e, u, it, ev, NULL, NULL, 2, NULL, NULL, &p), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK_MSG(interactions(e) == before, "no refused batch added an interaction");
    group_end();

    group_begin("feedback: accepted extremes");
    {
        int64_t users[4] = {INT64_MIN, INT64_MAX, -5, 1};
        int64_t items[4] = {INT64_MIN, INT64_MAX, -2, 1001};
        int64_t ts[4] = {INT64_MIN, INT64_MAX, 0, -1};
        int64_t req[4] = {INT64_MIN, -1, 0, INT64_MAX};
        int32_t evs[4] = {CHORUS_EVENT_CLICK, CHORUS_EVENT_RATING, CHORUS_EVENT_IMPRESSION, CHORUS_EVENT_SKIP};
        float vals[4] = {0, 5, 1, 1};
        /* A click of value 0 and an impression are counted only; the rating adds one interaction. */
        EXPECT(chorus_engine_feedback(e, users, items, evs, vals, ts, 4, "", req, NULL), CHORUS_OK);
        CHECK(interactions(e) == before + 1);
        /* Out-of-order timestamps and a reward configured to 0. */
        chorus_feedback_params_init(&p);
        p.click = 0;
        EXPECT(chorus_engine_feedback(e, users, items, evs, NULL, ts, 4, NULL, NULL, &p), CHORUS_OK);
        CHECK(interactions(e) == before + 2);
    }
    group_end();
}

void test_feedback(void) {
    chorus_engine *e, *loaded = NULL;
    chorus_fit_params fp = small_fit_params();
    int64_t ids[MAX_K], ids2[MAX_K];
    uint32_t flag = 77;
    char path[1024];
    size_t i;

    test_params();
    e = new_engine();
    group_begin("feedback: engine");
    CHECK(e != NULL);
    group_end();
    if (!e) return;
    test_validation(e);

    group_begin("feedback before the first fit");
    {
        int64_t u[2] = {500001, 500001}, it[2] = {1001, 1002};
        int32_t ev[2] = {CHORUS_EVENT_PURCHASE, CHORUS_EVENT_CLICK};
        uint64_t before = interactions(e);
        EXPECT(chorus_engine_feedback(e, u, it, ev, NULL, NULL, 2, NULL, NULL, NULL), CHORUS_OK);
        CHECK(interactions(e) == before + 2);
        EXPECT(top(e, 500001, 0, FK, ids, &flag), CHORUS_ERR_NOT_FITTED);
        EXPECT(chorus_engine_fit(e, &fp), CHORUS_OK);
        /* Its events are in the model now: a known user, its items excluded. */
        EXPECT(top(e, 500001, 0, FK, ids, &flag), CHORUS_OK);
        CHECK(flag == CHORUS_USER_KNOWN);
        CHECK(!contains(ids, FK, 1001) && !contains(ids, FK, 1002));
    }
    group_end();

    group_begin("feedback: the next recommend sees it");
    {
        int64_t user = user_id(0, 3), newcomer = 600001;
        int64_t u3[3] = {newcomer, newcomer, newcomer}, it3[3] = {2001, 2002, 2003};
        int32_t clicks[3] = {CHORUS_EVENT_CLICK, CHORUS_EVENT_CLICK, CHORUS_EVENT_PURCHASE};
        int32_t purchase = CHORUS_EVENT_PURCHASE, dismiss = CHORUS_EVENT_DISMISS;
        int64_t consumed, dismissed;
        size_t in_b = 0;
        EXPECT(top(e, user, 0, FK, ids, &flag), CHORUS_OK);
        consumed = ids[0];
        dismissed = ids[1];
        EXPECT(chorus_engine_feedback(e, &user, &consumed, &purchase, NULL, NULL, 1, NULL, NULL, NULL), CHORUS_OK);
        EXPECT(top(e, user, 0, FK, ids, &flag), CHORUS_OK);
        CHECK_MSG(!contains(ids, FK, consumed), "a consumed item is not recommended again");
        EXPECT(chorus_engine_feedback(e, &user, &dismissed, &dismiss, NULL, NULL, 1, NULL, NULL, NULL), CHORUS_OK);
        EXPECT(top(e, user, 1, N_ITEMS, ids, &flag), CHORUS_OK);
        CHECK_MSG(!contains(ids, N_ITEMS, dismissed), "a dismissed item is dropped even with INCLUDE_SEEN");
        CHECK_MSG(contains(ids, N_ITEMS, consumed), "INCLUDE_SEEN brings the consumed item back");

        EXPECT(top(e, newcomer, 0, FK, ids, &flag), CHORUS_OK);
        CHECK(flag == CHORUS_USER_COLD_FALLBACK);
        EXPECT(chorus_engine_feedback(e, u3, it3, clicks, NULL, NULL, 3, NULL, NULL, NULL), CHORUS_OK);
        EXPECT(top(e, newcomer, 0, FK, ids, &flag), CHORUS_OK);
        CHECK_MSG(flag == CHORUS_USER_KNOWN, "a new user with events is no longer a cold fallback");
        for (i = 0; i < FK; i++) in_b += item_cluster(ids[i]) == 1;
        CHECK_MSG(in_b >= 4, "the newcomer's list comes from the cluster of their items");
        CHECK(!contains(ids, FK, 2001) && !contains(ids, FK, 2002) && !contains(ids, FK, 2003));
    }
    group_end();

    group_begin("feedback: an item unknown to the model is served at once");
    {
        int64_t u[48], it[48], cold = COLD_USER, newcomer = 600002, fresh = 555555;
        int32_t ev[48];
        int64_t all[64];
        float scores[64];
        chorus_recommend_params rp;
        size_t j, m = (size_t)get_stats(e).n_model_items;
        /* 24 new users take item 1000, then the new item: popular, and what comes after 1000. */
        for (j = 0; j < 24; j++) {
            u[2 * j] = u[2 * j + 1] = 610000 + (int64_t)j;
            it[2 * j] = 1000; it[2 * j + 1] = fresh;
            ev[2 * j] = CHORUS_EVENT_CLICK; ev[2 * j + 1] = CHORUS_EVENT_PURCHASE;
        }
        EXPECT(chorus_engine_feedback(e, u, it, ev, NULL, NULL, 48, NULL, NULL, NULL), CHORUS_OK);
        chorus_recommend_params_init(&rp);
        rp.agent = "popularity";
        EXPECT(chorus_engine_recommend(e, &cold, 1, 1, &rp, ids, scores, 1, NULL, 0, NULL), CHORUS_OK);
        CHECK_MSG(ids[0] == fresh, "the popularity agent serves the new item first");
        EXPECT(chorus_engine_feedback(e, &newcomer, &it[0], &ev[0], NULL, NULL, 1, NULL, NULL, NULL), CHORUS_OK);
        rp.agent = "session";
        /* On the session agent's scale (c / sqrt(n_j n_k)), among the fitted transitions from 1000. */
        EXPECT(chorus_engine_recommend(e, &newcomer, 1, FK, &rp, ids, scores, FK, NULL, 0, NULL), CHORUS_OK);
        CHECK_MSG(contains(ids, FK, fresh), "the session agent serves it after item 1000");
        /* The catalogue counts it: k = the model's items + 1 is valid, + 2 is not. */
        CHECK(m + 2 <= 64);
        if (m + 2 <= 64) {
            EXPECT(chorus_engine_recommend(e, &cold, 1, m + 1, NULL, all, scores, m + 1, NULL, 0, NULL), CHORUS_OK);
            CHECK(contains(all, m + 1, fresh));
            EXPECT(chorus_engine_recommend(e, &cold, 1, m + 2, NULL, all, scores, m + 2, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
        }
        /* Explain and similar items know it from the next fit. */
        {
            chorus_explanation ex;
            chorus_explanation_init(&ex);
            EXPECT(chorus_engine_explain(e, cold, fresh, NULL, &ex, NULL, 0, NULL, 0, NULL), CHORUS_ERR_NOT_FOUND);
        }
    }
    group_end();

    group_begin("feedback: saved and rebuilt at load");
    path_in_dir(path, sizeof path, "feedback.chorus");
    EXPECT(chorus_engine_save(e, path), CHORUS_OK);
    EXPECT(chorus_engine_load(path, &loaded), CHORUS_OK);
    if (loaded) {
        int64_t users[3] = {user_id(0, 3), 600001, COLD_USER};
        for (i = 0; i < 3; i++) {
            uint32_t f1 = 0, f2 = 1;
            EXPECT(top(e, users[i], 0, FK, ids, &f1), CHORUS_OK);
            EXPECT(top(loaded, users[i], 0, FK, ids2, &f2), CHORUS_OK);
            CHECK_MSG(memcmp(ids, ids2, sizeof(int64_t) * FK) == 0 && f1 == f2, "the loaded engine serves the same lists");
        }
        CHECK(get_stats(loaded).n_interactions == get_stats(e).n_interactions);
        /* Feedback goes on in the loaded engine. */
        {
            int64_t u = 600001, it = 2004;
            int32_t ev = CHORUS_EVENT_CLICK;
            EXPECT(chorus_engine_feedback(loaded, &u, &it, &ev, NULL, NULL, 1, NULL, NULL, NULL), CHORUS_OK);
        }
        chorus_engine_free(loaded);
    }
    /* The snapshot with its feedback section: every flipped byte and every truncation fails cleanly. */
    {
        size_t len = 0;
        unsigned char *buf = read_all(path, &len);
        char bad[1024];
        path_in_dir(bad, sizeof bad, "feedback-bad.chorus");
        CHECK(buf != NULL && len > 0);
        if (buf) CHECK(all_offsets_rejected(bad, buf, len, load_and_free, "engine snapshot with feedback"));
        free(buf);
    }
    group_end();
    chorus_engine_free(e);
}
