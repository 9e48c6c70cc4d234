/*
 * test_learning.c — the learning coordinator from C (chorus_learning_params, chorus_engine_set_learning,
 * chorus_recommend_params.request_ids, chorus_engine_slate_log): argument validation, slates opened
 * under request ids and rewarded by feedback, the log's rows and flags, and the learner's statistics
 * surviving save and load. Uses its own engine, built from the synthetic clusters.
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
    memset(&p, 0xAB, sizeof p);
    EXPECT((chorus_learning_params_init)(&p), CHORUS_OK);
    CHECK(p.struct_size == sizeof p && p.mode == CHORUS_LEARNING_OFF);
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

void test_learning(void) {
    chorus_engine *e = fitted();
    test_learning_params();
    group_begin("learning: engine");
    CHECK(e != NULL);
    group_end();
    if (e == NULL) return;
    test_learning_validation(e);
    test_learning_slates(e);
    chorus_engine_free(e);
}
