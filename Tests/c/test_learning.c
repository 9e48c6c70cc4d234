/*
 * test_learning.c — the learning coordinator from C (chorus_learning_params, chorus_engine_set_learning,
 * chorus_recommend_params.request_ids, chorus_engine_slate_log, chorus_engine_learning_privacy_spent):
 * argument validation, slates opened under request ids and rewarded by feedback, the log's rows and
 * flags, private learning (its params, the epsilon spent, feedback kept from the shared statistics),
 * and the learner's statistics surviving save and load. Uses its own engine, built from the
 * synthetic clusters.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fixtures.h"
#include "harness.h"
#include "tests.h"

#define LK 4

static chorus_engine *fitted(void) {
    chorus_engine *e = NULL;
    chorus_fit_params fp = small_fit_params();
    if (chorus_engine_create(NULL, &e) != CHORUS_OK) return NULL;
    if (chorus_engine_add_interactions(e, d_user, d_item, d_weight, d_time, d_n) != CHORUS_OK ||
        chorus_engine_fit(e, &fp) != CHORUS_OK) {
        chorus_engine_free(e);
        return NULL;
    }
    return e;
}

/* One user's top LK under `request` (CHORUS_NO_REQUEST: not logged). */
static chorus_status serve(chorus_engine *e, int64_t user, int64_t request, int64_t *ids) {
    float scores[LK];
    chorus_recommend_params rp;
    chorus_recommend_params_init(&rp);
    if (request != CHORUS_NO_REQUEST) rp.request_ids = &request;
    return chorus_engine_recommend(e, &user, 1, LK, &rp, ids, scores, LK, NULL, 0, NULL);
}

static void test_learning_params(void) {
    chorus_learning_params p;
    group_begin("learning params");
    memset(&p, 0xAB, sizeof p);
    EXPECT(chorus_learning_params_init(&p), CHORUS_OK);
    CHECK(p.struct_size == sizeof p && p.mode == CHORUS_LEARNING_OFF && p.exploration == 0.0f);
    CHECK(p.learning_rate == 0.0f && p.prior_strength == 0.0f && p.reserved == 0 && p.log_capacity == 0 && p.seed == 42);
    CHECK(p.noise_multiplier == 0.0 && p.clip_norm == 0.0 && p.delta == 0.0 && p.release_slates == 0);
    memset(&p, 0xAB, sizeof p);
    EXPECT((chorus_learning_params_init)(&p), CHORUS_OK);
    /* The function itself writes the layout before the privacy fields (a caller of that layout). */
    CHECK(p.struct_size == offsetof(chorus_learning_params, noise_multiplier) && p.mode == CHORUS_LEARNING_OFF);
    EXPECT(chorus_learning_params_init_sized(&p, 4), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_learning_params_init_sized(&p, 12), CHORUS_ERR_INVALID_ARGUMENT); /* not a multiple of 8 */
    EXPECT(chorus_learning_params_init_sized(&p, sizeof p + 8), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_learning_params_init_sized(NULL, sizeof p), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(chorus_struct_size("chorus_learning_params") == sizeof p);
    CHECK(chorus_struct_size("chorus_slate_row") == sizeof(chorus_slate_row));
    group_end();
}

static void test_learning_validation(chorus_engine *e) {
    chorus_learning_params p;
    chorus_recommend_params rp;
    int64_t users[2] = {user_id(0, 0), user_id(1, 0)}, req[2] = {5, CHORUS_NO_REQUEST}, ids[2 * LK];
    float scores[2 * LK];
    size_t count = 99;
    chorus_slate_row row;

    group_begin("learning: validation");
    chorus_learning_params_init(&p);
    EXPECT(chorus_engine_set_learning(NULL, &p), CHORUS_ERR_INVALID_ARGUMENT);
    p.mode = 4;
    EXPECT(chorus_engine_set_learning(e, &p), CHORUS_ERR_INVALID_ARGUMENT);
    p.mode = -1;
    EXPECT(chorus_engine_set_learning(e, &p), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_learning_params_init(&p);
    p.mode = CHORUS_LEARNING_THOMPSON;
    p.exploration = NAN;
    EXPECT(chorus_engine_set_learning(e, &p), CHORUS_ERR_INVALID_ARGUMENT);
    p.exploration = -1;
    EXPECT(chorus_engine_set_learning(e, &p), CHORUS_ERR_INVALID_ARGUMENT);
    p.exploration = INFINITY;
    EXPECT(chorus_engine_set_learning(e, &p), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_learning_params_init(&p);
    p.mode = CHORUS_LEARNING_POLICY;
    p.learning_rate = 1e9f;
    EXPECT(chorus_engine_set_learning(e, &p), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_learning_params_init(&p);
    p.reserved = 1;
    EXPECT(chorus_engine_set_learning(e, &p), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_learning_params_init(&p);
    p.log_capacity = UINT64_MAX;
    EXPECT(chorus_engine_set_learning(e, &p), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_learning_params_init(&p);
    p.struct_size = 3;
    EXPECT(chorus_engine_set_learning(e, &p), CHORUS_ERR_INVALID_ARGUMENT);
    /* Privacy: noise needs a clip; every value finite and in range. */
    {
        static const double bad_clip[3] = {NAN, -1.0, INFINITY};
        chorus_learning_params_init(&p);
        p.mode = CHORUS_LEARNING_LINUCB;
        p.noise_multiplier = 1.0;
        EXPECT(chorus_engine_set_learning(e, &p), CHORUS_ERR_INVALID_ARGUMENT);
        for (int i = 0; i < 3; i++) {
            p.noise_multiplier = 0.0;
            p.clip_norm = bad_clip[i];
            EXPECT(chorus_engine_set_learning(e, &p), CHORUS_ERR_INVALID_ARGUMENT);
        }
        p.clip_norm = 1.0;
        p.noise_multiplier = NAN;
        EXPECT(chorus_engine_set_learning(e, &p), CHORUS_ERR_INVALID_ARGUMENT);
        p.noise_multiplier = 1.0;
        p.delta = 1.0;
        EXPECT(chorus_engine_set_learning(e, &p), CHORUS_ERR_INVALID_ARGUMENT);
        p.delta = -1e-5;
        EXPECT(chorus_engine_set_learning(e, &p), CHORUS_ERR_INVALID_ARGUMENT);
        p.delta = 0.0;
        p.release_slates = UINT64_MAX;
        EXPECT(chorus_engine_set_learning(e, &p), CHORUS_ERR_INVALID_ARGUMENT);
        /* A caller of the layout before the privacy fields: they take their defaults (not private). */
        p.release_slates = 0;
        p.struct_size = (uint32_t)offsetof(chorus_learning_params, noise_multiplier);
        EXPECT(chorus_engine_set_learning(e, &p), CHORUS_OK);
    }
    {
        double eps = -1, delta = -1;
        uint64_t releases = 99;
        EXPECT(chorus_engine_learning_privacy_spent(NULL, &eps, &delta, &releases), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_learning_privacy_spent(e, NULL, &delta, &releases), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_learning_privacy_spent(e, &eps, NULL, &releases), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_learning_privacy_spent(e, &eps, &delta, NULL), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_learning_privacy_spent(e, &eps, &delta, &releases), CHORUS_OK);
        CHECK_MSG(eps == 0.0 && releases == 0, "nothing learned yet: nothing spent");
    }
    EXPECT(chorus_engine_set_learning(e, NULL), CHORUS_OK); /* NULL = off */

    /* request_ids: CHORUS_NO_REQUEST is refused (it names no request). */
    chorus_recommend_params_init(&rp);
    rp.request_ids = req;
    EXPECT(chorus_engine_recommend(e, users, 2, LK, &rp, ids, scores, 2 * LK, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    req[1] = INT64_MIN;
    EXPECT(chorus_engine_recommend(e, users, 2, LK, &rp, ids, scores, 2 * LK, NULL, 0, NULL), CHORUS_OK);

    EXPECT(chorus_engine_slate_log(NULL, 0, NULL, 0, &count), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_slate_log(e, 0, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_slate_log(e, 4, NULL, 0, &count), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_slate_log(e, 0, NULL, 1, &count), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_slate_log(e, CHORUS_SLATE_LOG_CLOSE_OPEN, &row, 1, &count), CHORUS_OK);
    CHECK_MSG(count == 0, "learning off: nothing is logged");
    group_end();
}

static void test_learning_slates(chorus_engine *e) {
    static const int32_t modes[3] = {CHORUS_LEARNING_LINUCB, CHORUS_LEARNING_THOMPSON, CHORUS_LEARNING_POLICY};
    char path[4096];
    group_begin("learning: slates, rewards, the log, save and load");
    for (int m = 0; m < 3; m++) {
        chorus_learning_params p;
        int64_t u = user_id(0, 1), ids[LK], again[LK];
        int32_t click = CHORUS_EVENT_CLICK;
        int64_t req = 100 + m;
        chorus_slate_row rows[3 * LK];
        size_t count = 0;
        chorus_learning_params_init(&p);
        p.mode = modes[m];
        EXPECT(chorus_engine_set_learning(e, &p), CHORUS_OK);
        EXPECT(serve(e, u, req, ids), CHORUS_OK);
        EXPECT(chorus_engine_feedback(e, &u, &ids[2], &click, NULL, NULL, 1, NULL, &req, NULL), CHORUS_OK);
        EXPECT(chorus_engine_slate_log(e, 0, rows, 3 * LK, &count), CHORUS_OK);
        CHECK_MSG(count == 0, "the slate is open until its user's next logged slate");
        EXPECT(serve(e, u, req + 10, again), CHORUS_OK); /* closes the first */
        EXPECT(chorus_engine_slate_log(e, 0, NULL, 0, &count), CHORUS_OK);
        CHECK(count == LK);
        EXPECT(chorus_engine_slate_log(e, CHORUS_SLATE_LOG_DRAIN, rows, 3 * LK, &count), CHORUS_OK);
        CHECK(count == LK);
        for (int s = 0; s < LK; s++) {
            CHECK(rows[s].request_id == req && rows[s].user_id == u && rows[s].slot == s && rows[s].item_id == ids[s]);
            CHECK(rows[s].propensity > 0.0f && rows[s].propensity <= 1.0f);
            CHECK(rows[s].reward == (s == 2 ? 1.0f : 0.0f));
        }
        EXPECT(chorus_engine_slate_log(e, CHORUS_SLATE_LOG_CLOSE_OPEN | CHORUS_SLATE_LOG_DRAIN, rows, 1, &count), CHORUS_OK);
        CHECK_MSG(count == LK, "closing the open slate logs it; one row read of LK");
        EXPECT(chorus_engine_slate_log(e, 0, rows, 3 * LK, &count), CHORUS_OK);
        CHECK_MSG(count == LK - 1, "drain removed only the row returned");
        EXPECT(chorus_engine_slate_log(e, CHORUS_SLATE_LOG_DRAIN, rows, 3 * LK, &count), CHORUS_OK);
    }
    /* The learner (policy mode, what it learned) is saved and loaded. */
    path_in_dir(path, sizeof path, "learning.chorus");
    EXPECT(chorus_engine_save(e, path), CHORUS_OK);
    {
        chorus_engine *l = NULL;
        int64_t u = user_id(1, 2), req = 7, ids[LK];
        size_t count = 0;
        EXPECT(chorus_engine_load(path, &l), CHORUS_OK);
        EXPECT(serve(l, u, req, ids), CHORUS_OK);
        EXPECT(chorus_engine_slate_log(l, CHORUS_SLATE_LOG_CLOSE_OPEN, NULL, 0, &count), CHORUS_OK);
        CHECK_MSG(count == LK, "the loaded engine still learns (policy mode kept)");
        chorus_engine_free(l);
    }
    group_end();
}

/* Private learning end to end: a release per slate at sigma 1 spends one Gaussian round's epsilon;
 * a brand-new item many users buy is not served to a cold user (popularity does not learn from
 * private feedback) though it is without privacy; the spent epsilon and the private feedback rows
 * survive save and load. */
static void test_learning_privacy(void) {
    chorus_engine *plain = fitted(), *priv = fitted(), *loaded = NULL;
    chorus_learning_params p;
    chorus_recommend_params pop;
    int64_t users[30], items[30], cold = 987654321, ids[LK], got[10];
    int32_t buy[30], skip = CHORUS_EVENT_SKIP;
    float scores[10];
    double eps = 0, delta = 0;
    uint64_t releases = 0;
    char path[4096];
    int in_plain = 0, in_priv = 0, in_loaded = 0;
    group_begin("learning: privacy");
    CHECK(plain != NULL && priv != NULL);
    if (plain == NULL || priv == NULL) goto done;
    chorus_learning_params_init(&p);
    p.mode = CHORUS_LEARNING_LINUCB;
    p.clip_norm = 1.0;
    p.noise_multiplier = 1.0;
    p.release_slates = 1;
    EXPECT(chorus_engine_set_learning(priv, &p), CHORUS_OK);
    {
        int64_t u = user_id(0, 3), req = 11;
        EXPECT(serve(priv, u, req, ids), CHORUS_OK);
        EXPECT(chorus_engine_feedback(priv, &u, &ids[0], &skip, NULL, NULL, 1, NULL, &req, NULL), CHORUS_OK);
        EXPECT(chorus_engine_slate_log(priv, CHORUS_SLATE_LOG_CLOSE_OPEN, NULL, 0, &(size_t){0}), CHORUS_OK);
    }
    EXPECT(chorus_engine_learning_privacy_spent(priv, &eps, &delta, &releases), CHORUS_OK);
    /* One round at sigma 1, delta 1e-5: 5.2986 on the accountant's grid of orders. */
    CHECK_MSG(releases == 1 && delta == 1e-5 && fabs(eps - 5.2986) < 1e-3, "one release at sigma 1 spends epsilon 5.2986");
    for (int i = 0; i < 30; i++) {
        users[i] = user_id(i % 2, i / 2);
        items[i] = 777777;
        buy[i] = CHORUS_EVENT_PURCHASE;
    }
    EXPECT(chorus_engine_feedback(plain, users, items, buy, NULL, NULL, 30, NULL, NULL, NULL), CHORUS_OK);
    EXPECT(chorus_engine_feedback(priv, users, items, buy, NULL, NULL, 30, NULL, NULL, NULL), CHORUS_OK);
    chorus_recommend_params_init(&pop);
    pop.agent = "popularity";
    EXPECT(chorus_engine_recommend(plain, &cold, 1, 10, &pop, got, scores, 10, NULL, 0, NULL), CHORUS_OK);
    for (int i = 0; i < 10; i++) in_plain |= got[i] == 777777;
    EXPECT(chorus_engine_recommend(priv, &cold, 1, 10, &pop, got, scores, 10, NULL, 0, NULL), CHORUS_OK);
    for (int i = 0; i < 10; i++) in_priv |= got[i] == 777777;
    CHECK_MSG(in_plain && !in_priv, "shared statistics learn from plain feedback only");
    path_in_dir(path, sizeof path, "private-learning.chorus");
    EXPECT(chorus_engine_save(priv, path), CHORUS_OK);
    EXPECT(chorus_engine_load(path, &loaded), CHORUS_OK);
    if (loaded != NULL) {
        double eps2 = 0, delta2 = 0;
        uint64_t releases2 = 0;
        EXPECT(chorus_engine_learning_privacy_spent(loaded, &eps2, &delta2, &releases2), CHORUS_OK);
        CHECK(eps2 == eps && delta2 == delta && releases2 == releases);
        EXPECT(chorus_engine_recommend(loaded, &cold, 1, 10, &pop, got, scores, 10, NULL, 0, NULL), CHORUS_OK);
        for (int i = 0; i < 10; i++) in_loaded |= got[i] == 777777;
        CHECK_MSG(!in_loaded, "the loaded overlay keeps private feedback out of popularity");
        chorus_engine_free(loaded);
    }
done:
    chorus_engine_free(plain);
    chorus_engine_free(priv);
    group_end();
}

void test_learning(void) {
    chorus_engine *e = fitted();
    test_learning_params();
    group_begin("learning: engine");
    CHECK(e != NULL);
    group_end();
    if (e == NULL) return;
    test_learning_validation(e);
    test_learning_slates(e);
    test_learning_privacy();
    chorus_engine_free(e);
}
