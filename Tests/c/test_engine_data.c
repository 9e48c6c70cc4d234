/*
 * test_engine_data.c — an engine and its data: create / free, stats, add_interactions (bad
 * weights, empty batches), and an engine before its first fit.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "harness.h"
#include "tests.h"

void test_create(void) {
    chorus_engine_params ep;
    chorus_engine *e;
    chorus_engine *sentinel = (chorus_engine *)&g_passed; /* any non-NULL value */

    group_begin("engine_create / free");
    EXPECT(chorus_engine_create(NULL, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_engine_params_init(&ep);
    EXPECT(chorus_engine_create(&ep, NULL), CHORUS_ERR_INVALID_ARGUMENT);

    ep.struct_size = 4;
    e = sentinel;
    EXPECT(chorus_engine_create(&ep, &e), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK_MSG(e == NULL, "*out_engine is NULL after a failed create (struct_size 4)");
    ep.struct_size = 0;
    e = sentinel;
    EXPECT(chorus_engine_create(&ep, &e), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK_MSG(e == NULL, "*out_engine is NULL after a failed create (struct_size 0)");

    e = NULL;
    EXPECT(chorus_engine_create(NULL, &e), CHORUS_OK);
    CHECK(e != NULL);
    chorus_engine_free(e);

    chorus_engine_params_init(&ep);
    e = NULL;
    EXPECT(chorus_engine_create(&ep, &e), CHORUS_OK);
    CHECK(e != NULL);
    chorus_engine_free(e);

    chorus_engine_params_init(&ep);
    ep.popularity_half_life_seconds = -1; /* no decay */
    e = NULL;
    EXPECT(chorus_engine_create(&ep, &e), CHORUS_OK);
    CHECK(e != NULL);
    chorus_engine_free(e);

    chorus_engine_params_init(&ep);
    ep.popularity_half_life_seconds = 3600;
    e = NULL;
    EXPECT(chorus_engine_create(&ep, &e), CHORUS_OK);
    CHECK(e != NULL);
    chorus_engine_free(e);
    group_end();
}

static int stats_counts(const chorus_engine *e, uint64_t users, uint64_t items, uint64_t inter) {
    chorus_engine_stats st = get_stats(e);
    return st.n_users == users && st.n_items == items && st.n_interactions == inter;
}

void test_stats_and_add(void) {
    chorus_engine *e = NULL;
    chorus_engine_stats st;
    int64_t u[3] = {5, 6, 7}, it[3] = {50, 60, 70}, ts[3] = {T0, T0 + 1, T0 + 2};
    float w[3] = {1.0f, 1.0f, 1.0f};
    static const float bad[5] = {0.0f, -1.0f, 0.0f, 0.0f, 0.0f};
    size_t b;

    group_begin("stats / add_interactions");
    EXPECT(chorus_engine_create(NULL, &e), CHORUS_OK);
    if (!e) { group_end(); return; }

    /* Stats of an empty engine, and the argument checks of get_stats. */
    chorus_engine_stats_init(&st);
    EXPECT(chorus_engine_get_stats(e, &st), CHORUS_OK);
    CHECK(st.struct_size == sizeof st);
    CHECK(st.fitted == 0 && st.n_users == 0 && st.n_items == 0 && st.n_interactions == 0);
    CHECK(st.n_model_users == 0 && st.n_model_items == 0 && st.model_bytes == 0);
    EXPECT(chorus_engine_get_stats(NULL, &st), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_get_stats(e, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    st.struct_size = 4;
    EXPECT(chorus_engine_get_stats(e, &st), CHORUS_ERR_INVALID_ARGUMENT);
    st.struct_size = 0;
    EXPECT(chorus_engine_get_stats(e, &st), CHORUS_ERR_INVALID_ARGUMENT);

    /* NULL pointers. */
    EXPECT(chorus_engine_add_interactions(NULL, u, it, NULL, NULL, 3), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_add_interactions(e, NULL, it, NULL, NULL, 3), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_add_interactions(e, u, NULL, NULL, NULL, 3), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_add_interactions(e, NULL, NULL, NULL, NULL, 3), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(stats_counts(e, 0, 0, 0));

    /* n = 0 is a bad count: rejected, nothing added. */
    EXPECT(chorus_engine_add_interactions(e, u, it, NULL, NULL, 0), EMPTY_BATCH_STATUS);
    CHECK(stats_counts(e, 0, 0, 0));
    EXPECT(chorus_engine_add_interactions(e, u, it, w, ts, 0), EMPTY_BATCH_STATUS);
    CHECK(stats_counts(e, 0, 0, 0));

    /* Bad weights anywhere in the batch (here the last one): rejected whole. */
    for (b = 0; b < 6; b++) {
        char what[96];
        w[0] = 1.0f;
        w[1] = 2.0f;
        w[2] = b == 2 ? NAN : b == 3 ? INFINITY : b == 4 ? -INFINITY : b == 5 ? (float)-0.0 : bad[b];
        snprintf(what, sizeof what, "add_interactions rejects weight %g", (double)w[2]);
        CHECK_MSG(chorus_engine_add_interactions(e, u, it, w, ts, 3) == CHORUS_ERR_INVALID_ARGUMENT, what);
        CHECK_MSG(chorus_last_error()[0] != '\0', "chorus_last_error() non-empty after a rejected weight");
        snprintf(what, sizeof what, "a batch rejected for weight %g added nothing", (double)w[2]);
        CHECK_MSG(stats_counts(e, 0, 0, 0), what);
    }
    /* The bad weight first, too. */
    w[0] = NAN;
    w[1] = 1.0f;
    w[2] = 1.0f;
    EXPECT(chorus_engine_add_interactions(e, u, it, w, NULL, 3), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(stats_counts(e, 0, 0, 0));

    /* A good batch with default weights and timestamps. */
    EXPECT(chorus_engine_add_interactions(e, u, it, NULL, NULL, 3), CHORUS_OK);
    CHECK(stats_counts(e, 3, 3, 3));
    /* Weights and timestamps given; a repeated pair counts as another interaction. */
    w[0] = 0.5f;
    w[1] = 2.0f;
    w[2] = 1e6f;
    EXPECT(chorus_engine_add_interactions(e, u, it, w, ts, 3), CHORUS_OK);
    CHECK(stats_counts(e, 3, 3, 6));
    /* A rejected batch on a non-empty engine leaves it unchanged. */
    {
        int64_t u2[2] = {8, 9}, it2[2] = {80, 90};
        float w2[2] = {1.0f, NAN};
        EXPECT(chorus_engine_add_interactions(e, u2, it2, w2, NULL, 2), CHORUS_ERR_INVALID_ARGUMENT);
        CHECK(stats_counts(e, 3, 3, 6));
    }
    st = get_stats(e);
    CHECK(st.fitted == 0 && st.n_model_users == 0 && st.n_model_items == 0);
    chorus_engine_free(e);
    group_end();
}

void test_before_fit(chorus_engine *e) {
    chorus_fit_params fp;
    recs *r = malloc(sizeof *r);
    int64_t user = g_users[0], item = g_items[3];
    size_t i, n = 0;
    const char *name;
    float weight;
    chorus_engine *tiny = NULL;
    progress_state ps;

    group_begin("before fit");
    if (!r) { CHECK(r != NULL); group_end(); return; }
    EXPECT(recommend(e, &user, 1, 3, NULL, r), CHORUS_ERR_NOT_FITTED);
    EXPECT(similar(e, &item, 1, 3, NULL, r), CHORUS_ERR_NOT_FITTED);

    /* Agents exist before fit; every weight is 0. */
    EXPECT(chorus_engine_agent_count(e, &n), CHORUS_OK);
    CHECK(n >= 2 && n <= MAX_AGENTS);
    for (i = 0; i < n; i++) {
        name = NULL;
        weight = -1.0f;
        EXPECT(chorus_engine_agent_info(e, i, &name, &weight), CHORUS_OK);
        CHECK(name != NULL && name[0] != '\0');
        CHECK_MSG(weight == 0.0f, "agent weight is 0 before fit");
    }
    name = NULL;
    EXPECT(chorus_engine_agent_info(e, 0, &name, NULL), CHORUS_OK);
    CHECK_MSG(name != NULL && strcmp(name, "popularity") == 0, "agent 0 is \"popularity\"");
    CHECK_MSG(find_agent(e, "als") != (size_t)-1, "an agent named \"als\" exists");

    /* A failed fit of any kind leaves the engine unfitted. */
    EXPECT(chorus_engine_fit(NULL, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    fp = small_fit_params();
    fp.struct_size = 4;
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_ERR_INVALID_ARGUMENT);
    fp = small_fit_params();
    fp.validation_fraction = 0.5f;
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_ERR_INVALID_ARGUMENT);
    fp.validation_fraction = NAN;
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_ERR_INVALID_ARGUMENT);
    fp.validation_fraction = -0.1f;
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_ERR_INVALID_ARGUMENT);

    /* Cancelled on the first progress call. */
    fp = small_fit_params();
    memset(&ps, 0, sizeof ps);
    ps.thread = pthread_self();
    ps.cancel_at_call = 1;
    fp.progress = progress_cb;
    fp.progress_user_data = &ps;
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_ERR_CANCELLED);
    CHECK(ps.calls == 1 && ps.cancelled);
    CHECK(get_stats(e).fitted == 0);
    EXPECT(recommend(e, &user, 1, 3, NULL, r), CHORUS_ERR_NOT_FITTED);

    /* Too little data: an empty engine, then one user and one item. */
    EXPECT(chorus_engine_create(NULL, &tiny), CHORUS_OK);
    if (tiny) {
        int64_t u1 = 1, i1 = 10;
        EXPECT(chorus_engine_fit(tiny, NULL), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_add_interactions(tiny, &u1, &i1, NULL, NULL, 1), CHORUS_OK);
        EXPECT(chorus_engine_fit(tiny, NULL), CHORUS_ERR_INVALID_ARGUMENT);
        CHECK(get_stats(tiny).fitted == 0);
        chorus_engine_free(tiny);
    }
    CHECK(get_stats(e).fitted == 0);
    EXPECT(similar(e, &item, 1, 3, NULL, r), CHORUS_ERR_NOT_FITTED);
    free(r);
    group_end();
}
