/*
 * test_fit.c — fitting: progress and stats, a reproducible fit, concurrent readers and
 * thread-local errors, serving while a fit runs, cancellation (the previous model keeps serving),
 * extreme weights.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <float.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fixtures.h"
#include "harness.h"
#include "tests.h"

void test_fit(chorus_engine *e) {
    chorus_fit_params fp = small_fit_params();
    progress_state ps;
    chorus_engine_stats st;

    group_begin("fit / progress / stats");
    memset(&ps, 0, sizeof ps);
    ps.thread = pthread_self();
    fp.progress = progress_cb;
    fp.progress_user_data = &ps;
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_OK);
    CHECK_MSG(ps.calls > 0, "the progress callback was called");
    CHECK_MSG(ps.bad == 0, "every progress call had a stage name and a fraction in [0, 1]");
    CHECK_MSG(ps.wrong_thread == 0, "progress is called on the thread that called fit");
    CHECK(!ps.cancelled);

    st = get_stats(e);
    CHECK(st.struct_size == sizeof st);
    CHECK(st.fitted == 1);
    CHECK(st.n_users == N_USERS && st.n_items == N_ITEMS && st.n_interactions == d_n);
    CHECK(st.n_model_users == N_USERS && st.n_model_items == N_ITEMS);
    /* At least the ALS factors: (users + items) * factors floats. */
    CHECK(st.model_bytes >= (uint64_t)(N_USERS + N_ITEMS) * FIT_FACTORS * sizeof(float));
    /* The engine was created with an explicit half-life or the automatic choice: either way a real one. */
    CHECK(st.popularity_half_life_seconds == -1 || st.popularity_half_life_seconds > 0);
    CHECK(st.allocator_allocated_bytes > 0 && st.allocator_resident_bytes > 0);
    group_end();
}

/* Same data, same parameters (seed included): the same model. */
void test_reproducible(const chorus_engine *e) {
    chorus_engine *twin = NULL;
    chorus_fit_params fp = small_fit_params();
    recs *a = malloc(sizeof *a), *b = malloc(sizeof *b);

    group_begin("reproducible fit");
    EXPECT(chorus_engine_create(NULL, &twin), CHORUS_OK);
    if (twin && a && b) {
        EXPECT(chorus_engine_add_interactions(twin, d_user, d_item, d_weight, d_time, d_n), CHORUS_OK);
        EXPECT(chorus_engine_fit(twin, &fp), CHORUS_OK);
        EXPECT(recommend(e, g_users, N_USERS, 5, NULL, a), CHORUS_OK);
        EXPECT(recommend(twin, g_users, N_USERS, 5, NULL, b), CHORUS_OK);
        CHECK_MSG(same_recs(a, b, 1), "two engines fitted on the same data with the same seed recommend the same");
        EXPECT(similar(e, g_items, N_ITEMS, 5, NULL, a), CHORUS_OK);
        EXPECT(similar(twin, g_items, N_ITEMS, 5, NULL, b), CHORUS_OK);
        CHECK_MSG(same_recs(a, b, 0), "... and find the same similar items");
    }
    chorus_engine_free(twin);
    free(a);
    free(b);
    group_end();
}

/* ---- Threads ------------------------------------------------------------------------------------ */

typedef struct reader_arg {
    const chorus_engine *e;
    const recs *reference;
    int mismatches;
    int errors;
} reader_arg;

static void *reader_main(void *p) {
    reader_arg *a = (reader_arg *)p;
    recs *r = malloc(sizeof *r);
    int i;
    if (!r) { a->errors++; return NULL; }
    for (i = 0; i < 25; i++) {
        if (recommend(a->e, g_users, N_USERS, 3, NULL, r) != CHORUS_OK) a->errors++;
        else if (!same_recs(r, a->reference, 1)) a->mismatches++;
    }
    free(r);
    return NULL;
}

typedef struct error_probe {
    char before[256];
    char after[256];
} error_probe;

static void *error_probe_main(void *p) {
    error_probe *ep = (error_probe *)p;
    const char *m = chorus_last_error();
    snprintf(ep->before, sizeof ep->before, "%s", m ? m : "<NULL>");
    (void)chorus_engine_params_init(NULL); /* fails on this thread only */
    m = chorus_last_error();
    snprintf(ep->after, sizeof ep->after, "%s", m ? m : "<NULL>");
    return NULL;
}

void test_threads(const chorus_engine *e) {
    recs *ref = malloc(sizeof *ref);
    reader_arg args[4];
    pthread_t th[4];
    error_probe ep;
    pthread_t pt;
    char mine[256];
    int i, started = 0, mism = 0, errs = 0;

    group_begin("threads");
    if (!ref) { CHECK(0); group_end(); return; }
    /* chorus_last_error() is per thread. */
    EXPECT(chorus_fit_params_init(NULL), CHORUS_ERR_INVALID_ARGUMENT);
    snprintf(mine, sizeof mine, "%s", chorus_last_error());
    memset(&ep, 0, sizeof ep);
    if (CHECK(pthread_create(&pt, NULL, error_probe_main, &ep) == 0)) {
        pthread_join(pt, NULL);
        CHECK_MSG(strcmp(ep.before, "") == 0, "a new thread's chorus_last_error() is \"\"");
        CHECK(ep.after[0] != '\0');
        CHECK_MSG(strcmp(chorus_last_error(), mine) == 0, "another thread's failure leaves this thread's error");
    }

    /* Concurrent readers get the same answer as one reader. */
    EXPECT(recommend(e, g_users, N_USERS, 3, NULL, ref), CHORUS_OK);
    for (i = 0; i < 4; i++) {
        args[i].e = e;
        args[i].reference = ref;
        args[i].mismatches = 0;
        args[i].errors = 0;
        if (pthread_create(&th[i], NULL, reader_main, &args[i]) != 0) break;
        started++;
    }
    CHECK(started == 4);
    for (i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        mism += args[i].mismatches;
        errs += args[i].errors;
    }
    CHECK_MSG(errs == 0, "concurrent recommend calls all succeed");
    CHECK_MSG(mism == 0, "concurrent recommend calls agree with a single reader");
    free(ref);
    group_end();
}

/* Serving during fit: fit runs on a worker thread whose progress callback waits (at most 20 s)
 * until the main thread has been served a recommendation from the previous model. */
typedef struct fit_during {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started, served, timed_out, calls;
    chorus_engine *e;
    chorus_status status;
} fit_during;

static int32_t blocking_progress(const char *stage, double fraction, void *user_data) {
    fit_during *fd = (fit_during *)user_data;
    (void)stage;
    (void)fraction;
    pthread_mutex_lock(&fd->mu);
    fd->calls++;
    if (!fd->started) {
        struct timespec deadline;
        fd->started = 1;
        pthread_cond_broadcast(&fd->cv);
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 20;
        while (!fd->served) {
            if (pthread_cond_timedwait(&fd->cv, &fd->mu, &deadline) == ETIMEDOUT) {
                fd->timed_out = 1;
                break;
            }
        }
    }
    pthread_mutex_unlock(&fd->mu);
    return 0;
}

static void *fit_worker(void *p) {
    fit_during *fd = (fit_during *)p;
    chorus_fit_params fp = small_fit_params();
    fp.progress = blocking_progress;
    fp.progress_user_data = fd;
    fd->status = chorus_engine_fit(fd->e, &fp);
    pthread_mutex_lock(&fd->mu);
    fd->started = 1; /* in case progress was never called */
    pthread_cond_broadcast(&fd->cv);
    pthread_mutex_unlock(&fd->mu);
    return NULL;
}

void test_serve_during_fit(chorus_engine *e) {
    fit_during fd;
    pthread_t th;
    recs *before = malloc(sizeof *before), *during = malloc(sizeof *during);
    int64_t nu[3] = {600, 600, 600}, ni[3] = {1000, 1001, 1002};
    int64_t probe[2];
    chorus_status st;

    group_begin("serving during fit");
    if (!before || !during) { CHECK(0); free(before); free(during); group_end(); return; }
    probe[0] = g_users[0];
    probe[1] = 600;
    /* A new user, known only to the next model. */
    EXPECT(chorus_engine_add_interactions(e, nu, ni, NULL, NULL, 3), CHORUS_OK);
    EXPECT(recommend(e, probe, 2, 3, NULL, before), CHORUS_OK);
    CHECK(before->flags[0] == CHORUS_USER_KNOWN && before->flags[1] == CHORUS_USER_COLD_FALLBACK);

    memset(&fd, 0, sizeof fd);
    pthread_mutex_init(&fd.mu, NULL);
    pthread_cond_init(&fd.cv, NULL);
    fd.e = e;
    if (CHECK(pthread_create(&th, NULL, fit_worker, &fd) == 0)) {
        pthread_mutex_lock(&fd.mu);
        while (!fd.started) pthread_cond_wait(&fd.cv, &fd.mu);
        pthread_mutex_unlock(&fd.mu);
        st = recommend(e, probe, 2, 3, NULL, during);
        pthread_mutex_lock(&fd.mu);
        fd.served = 1;
        pthread_cond_broadcast(&fd.cv);
        pthread_mutex_unlock(&fd.mu);
        pthread_join(th, NULL);
        CHECK_MSG(fd.calls > 0, "fit called progress");
        CHECK_MSG(!fd.timed_out, "recommend did not wait for the running fit (no write lock held while training)");
        EXPECT(st, CHORUS_OK);
        CHECK_MSG(same_recs(during, before, 1), "during fit, recommendations come from the previous model");
        EXPECT(fd.status, CHORUS_OK);
        EXPECT(recommend(e, probe, 2, 3, NULL, during), CHORUS_OK);
        CHECK_MSG(during->flags[1] == CHORUS_USER_KNOWN, "after fit, the new user is known to the model");
        CHECK(get_stats(e).n_model_users == N_USERS + 1);
    }
    pthread_cond_destroy(&fd.cv);
    pthread_mutex_destroy(&fd.mu);
    free(before);
    free(during);
    group_end();
}

void test_cancel(chorus_engine *e) {
    recs *before = malloc(sizeof *before), *after = malloc(sizeof *after);
    chorus_fit_params fp;
    progress_state ps;
    chorus_engine_stats st0, st1;
    int64_t nu[2] = {601, 601}, ni[2] = {2000, 2001};
    int64_t probe[N_USERS + 2];
    size_t i;

    group_begin("fit cancellation");
    if (!before || !after) { CHECK(0); free(before); free(after); group_end(); return; }
    for (i = 0; i < N_USERS; i++) probe[i] = g_users[i];
    probe[N_USERS] = 601;
    probe[N_USERS + 1] = COLD_USER;
    EXPECT(chorus_engine_add_interactions(e, nu, ni, NULL, NULL, 2), CHORUS_OK);
    st0 = get_stats(e);
    EXPECT(recommend(e, probe, N_USERS + 2, 3, NULL, before), CHORUS_OK);

    /* Cancel at the first progress call, then half-way. */
    for (i = 0; i < 2; i++) {
        fp = small_fit_params();
        memset(&ps, 0, sizeof ps);
        ps.thread = pthread_self();
        if (i == 0) ps.cancel_at_call = 1;
        else ps.cancel_at_fraction = 0.5;
        fp.progress = progress_cb;
        fp.progress_user_data = &ps;
        EXPECT(chorus_engine_fit(e, &fp), CHORUS_ERR_CANCELLED);
        CHECK(ps.cancelled);
        if (i == 0) CHECK_MSG(ps.calls == 1, "progress is not called again after it asked to stop");
        st1 = get_stats(e);
        CHECK(st1.fitted == 1 && st1.n_model_users == st0.n_model_users && st1.n_model_items == st0.n_model_items);
        CHECK(st1.n_users == st0.n_users && st1.n_interactions == st0.n_interactions);
        EXPECT(recommend(e, probe, N_USERS + 2, 3, NULL, after), CHORUS_OK);
        CHECK_MSG(same_recs(before, after, 1), "after a cancelled fit, the previous model still serves");
        CHECK(after->flags[N_USERS] == CHORUS_USER_COLD_FALLBACK);
    }
    free(before);
    free(after);
    group_end();
}

/* Any finite positive weight that add_interactions accepts fits, serves, saves and loads: every
 * seventh weight 1e21, 2e25 or FLT_MAX (one pair twice, so its sum passes FLT_MAX), alpha 1000.
 * (ALS solves rows with such confidences exactly in Double; before, the fit diverged to NaN.) */
void test_extreme_weights(void) {
    static const float huge[] = {1e21f, 2e25f, FLT_MAX};
    char path[1024];
    group_begin("extreme weights: fit, serve, save, load");
    path_in_dir(path, sizeof path, "heavy.chorus");
    for (size_t h = 0; h < sizeof huge / sizeof huge[0]; h++) {
        chorus_engine *e = NULL, *back = NULL;
        float *w = malloc(d_n * sizeof *w);
        recs *a = malloc(sizeof *a), *b = malloc(sizeof *b);
        chorus_fit_params fp = small_fit_params();
        char what[128];
        fp.alpha = 1000;
        if (!w || !a || !b) { CHECK_MSG(0, "allocation"); free(w); free(a); free(b); break; }
        for (size_t i = 0; i < d_n; i++) w[i] = i % 7 == 0 ? huge[h] : d_weight[i];
        EXPECT(chorus_engine_create(NULL, &e), CHORUS_OK);
        EXPECT(chorus_engine_add_interactions(e, d_user, d_item, w, d_time, d_n), CHORUS_OK);
        EXPECT(chorus_engine_add_interactions(e, d_user, d_item, w, d_time, 1), CHORUS_OK);
        snprintf(what, sizeof what, "fit with weights of %g", (double)huge[h]);
        CHECK_MSG(chorus_engine_fit(e, &fp) == CHORUS_OK, what);
        EXPECT(recommend(e, g_users, N_USERS, 5, NULL, a), CHORUS_OK);
        CHECK(all_rows_well_formed(a) && shares_ok(a));
        EXPECT(chorus_engine_save(e, path), CHORUS_OK);
        EXPECT(chorus_engine_load(path, &back), CHORUS_OK);
        if (back) {
            EXPECT(recommend(back, g_users, N_USERS, 5, NULL, b), CHORUS_OK);
            CHECK_MSG(same_recs(a, b, 0), "the loaded engine serves the same lists");
        }
        chorus_engine_free(back);
        chorus_engine_free(e);
        free(w); free(a); free(b);
    }
    remove(path);
    group_end();
}
