/*
 * test_library.c — the library as a whole: version, status codes and names, struct sizes, params
 * init, last_error, the log callback.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fixtures.h"
#include "harness.h"
#include "tests.h"

void test_library(void) {
    char expected[64];
    const char *v;
    static const struct { chorus_status s; const char *name; } names[] = {
        {CHORUS_OK, "CHORUS_OK"},
        {CHORUS_ERR_INVALID_ARGUMENT, "CHORUS_ERR_INVALID_ARGUMENT"},
        {CHORUS_ERR_NOT_FOUND, "CHORUS_ERR_NOT_FOUND"},
        {CHORUS_ERR_BUFFER_TOO_SMALL, "CHORUS_ERR_BUFFER_TOO_SMALL"},
        {CHORUS_ERR_NOT_FITTED, "CHORUS_ERR_NOT_FITTED"},
        {CHORUS_ERR_IO, "CHORUS_ERR_IO"},
        {CHORUS_ERR_FORMAT, "CHORUS_ERR_FORMAT"},
        {CHORUS_ERR_UNSUPPORTED_VERSION, "CHORUS_ERR_UNSUPPORTED_VERSION"},
        {CHORUS_ERR_CANCELLED, "CHORUS_ERR_CANCELLED"},
        {CHORUS_ERR_OUT_OF_MEMORY, "CHORUS_ERR_OUT_OF_MEMORY"},
        {CHORUS_ERR_INTERNAL, "CHORUS_ERR_INTERNAL"},
    };
    static const chorus_status unknown[] = {1, 2, -11, -100, 12345, INT32_MIN, INT32_MAX};
    size_t i;

    group_begin("library");
    /* Pinned values: a change here breaks every binary built against an older header. */
    CHECK(CHORUS_OK == 0 && CHORUS_ERR_INVALID_ARGUMENT == -1 && CHORUS_ERR_NOT_FOUND == -2 &&
          CHORUS_ERR_BUFFER_TOO_SMALL == -3 && CHORUS_ERR_NOT_FITTED == -4 && CHORUS_ERR_IO == -5 &&
          CHORUS_ERR_FORMAT == -6 && CHORUS_ERR_UNSUPPORTED_VERSION == -7 && CHORUS_ERR_CANCELLED == -8 &&
          CHORUS_ERR_OUT_OF_MEMORY == -9 && CHORUS_ERR_INTERNAL == -10);
    CHECK(sizeof(chorus_status) == 4);

    v = chorus_version();
    snprintf(expected, sizeof expected, "%d.%d.%d", CHORUS_VERSION_MAJOR, CHORUS_VERSION_MINOR,
             CHORUS_VERSION_PATCH);
    CHECK(v != NULL);
    CHECK_MSG(v != NULL && strcmp(v, expected) == 0, "chorus_version() equals the header's MAJOR.MINOR.PATCH");
    CHECK(chorus_version_number() == (uint32_t)CHORUS_VERSION_NUMBER);
    CHECK(CHORUS_VERSION_NUMBER == CHORUS_VERSION_MAJOR * 10000 + CHORUS_VERSION_MINOR * 100 + CHORUS_VERSION_PATCH);

    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *got = chorus_status_name(names[i].s);
        char what[128];
        snprintf(what, sizeof what, "chorus_status_name(%d) == \"%s\"", (int)names[i].s, names[i].name);
        CHECK_MSG(got != NULL && strcmp(got, names[i].name) == 0, what);
    }
    for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *got = chorus_status_name(unknown[i]);
        char what[128];
        snprintf(what, sizeof what, "chorus_status_name(%ld) == \"CHORUS_UNKNOWN_STATUS\"", (long)unknown[i]);
        CHECK_MSG(got != NULL && strcmp(got, "CHORUS_UNKNOWN_STATUS") == 0, what);
    }

    CHECK(chorus_struct_size("chorus_engine_params") == sizeof(chorus_engine_params));
    CHECK(chorus_struct_size("chorus_fit_params") == sizeof(chorus_fit_params));
    CHECK(chorus_struct_size("chorus_recommend_params") == sizeof(chorus_recommend_params));
    CHECK(chorus_struct_size("chorus_engine_stats") == sizeof(chorus_engine_stats));
    CHECK(chorus_struct_size("chorus_encoder_params") == sizeof(chorus_encoder_params));
    CHECK(chorus_struct_size("chorus_explanation") == sizeof(chorus_explanation));
    CHECK(chorus_struct_size("chorus_kg_train_params") == sizeof(chorus_kg_train_params));
    CHECK(chorus_struct_size("chorus_kg_metrics") == sizeof(chorus_kg_metrics));
    CHECK(chorus_struct_size("chorus_engine") == 0); /* opaque: no size */
    CHECK(chorus_struct_size("chorus_no_such_struct") == 0);
    CHECK(chorus_struct_size("") == 0);
    CHECK(chorus_struct_size("chorus_fit_params ") == 0);
    CHECK(chorus_struct_size(NULL) == 0);

    /* _free(NULL) is a no-op (reaching the next line is the check). */
    chorus_engine_free(NULL);
    CHECK_MSG(1, "chorus_engine_free(NULL) returns");

    EXPECT(chorus_set_log_callback(NULL, NULL), CHORUS_OK); /* clearing when none is set */

    /* chorus_last_error() is "the message of the last failed call on this thread": a later
     * successful call does not erase it. */
    {
        chorus_engine_params ep;
        const char *m;
        EXPECT(chorus_engine_params_init(NULL), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_params_init(&ep), CHORUS_OK);
        m = chorus_last_error();
        CHECK_MSG(m != NULL && m[0] != '\0', "chorus_last_error() still describes the last failed call after a success");
    }
    group_end();
}

void test_params_init(void) {
    chorus_engine_params ep;
    chorus_fit_params fp;
    chorus_recommend_params rp;
    chorus_engine_stats st;

    group_begin("params_init");
    EXPECT(chorus_engine_params_init(NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_fit_params_init(NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_recommend_params_init(NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_stats_init(NULL), CHORUS_ERR_INVALID_ARGUMENT);

    memset(&ep, 0xCD, sizeof ep);
    memset(&fp, 0xCD, sizeof fp);
    memset(&rp, 0xCD, sizeof rp);
    memset(&st, 0xCD, sizeof st);
    EXPECT(chorus_engine_params_init(&ep), CHORUS_OK);
    EXPECT(chorus_fit_params_init(&fp), CHORUS_OK);
    EXPECT(chorus_recommend_params_init(&rp), CHORUS_OK);
    EXPECT(chorus_engine_stats_init(&st), CHORUS_OK);
    CHECK(ep.struct_size == sizeof ep);
    CHECK(fp.struct_size == sizeof fp);
    CHECK(rp.struct_size == sizeof rp);
    CHECK(st.struct_size == sizeof st);
    /* Defaults the header spells out. */
    CHECK(fp.progress == NULL && fp.progress_user_data == NULL);
    CHECK(fp.validation_fraction >= 0.0f && fp.validation_fraction < 0.5f);
    CHECK(rp.flags == 0 && rp.allow_items == NULL && rp.n_allow == 0 && rp.deny_items == NULL &&
          rp.n_deny == 0 && rp.agent == NULL);
    group_end();
}

void test_log_callback(void) {
    chorus_engine *e = NULL;
    long calls_after_clear = 0;

    group_begin("log callback");
    EXPECT(chorus_set_log_callback(log_cb, &g_log_token), CHORUS_OK);
    /* Some work that may log; every line must be well formed. */
    EXPECT(chorus_engine_create(NULL, &e), CHORUS_OK);
    if (e) {
        chorus_fit_params fp = small_fit_params();
        EXPECT(chorus_engine_add_interactions(e, d_user, d_item, d_weight, d_time, d_n), CHORUS_OK);
        EXPECT(chorus_engine_fit(e, &fp), CHORUS_OK);
    }
    pthread_mutex_lock(&g_log_mutex);
    CHECK_MSG(g_log_bad == 0, "every log line had a valid level, a message and the user_data");
    pthread_mutex_unlock(&g_log_mutex);
    EXPECT(chorus_set_log_callback(NULL, NULL), CHORUS_OK);
    pthread_mutex_lock(&g_log_mutex);
    calls_after_clear = g_log_calls;
    pthread_mutex_unlock(&g_log_mutex);
    if (e) EXPECT(chorus_engine_fit(e, NULL), CHORUS_OK); /* all defaults */
    pthread_mutex_lock(&g_log_mutex);
    CHECK_MSG(g_log_calls == calls_after_clear, "no log line arrives after the callback is cleared");
    pthread_mutex_unlock(&g_log_mutex);
    chorus_engine_free(e);
    group_end();
}
