/*
 * main.c — the C host test of include/chorus.h (build/test_capi): runs the check groups in order.
 *
 * Calls every function of the header, every documented error path (with its exact status and a
 * non-empty chorus_last_error()), and checks a synthetic case with a known answer: two clusters of
 * users who like two disjoint groups of items, so a fitted engine must recommend (and find similar)
 * items within the user's (item's) own cluster.
 *
 * A trap in the library ends the run, except in the few hostile-argument checks run in a child
 * process (EXPECT_ISOLATED).
 *
 * The groups live in one file per concern (tests.h lists them); harness.c holds the checks and
 * shared helpers, fixtures.c the synthetic data. Build (as `make test-c` does):
 *   cc -std=c99 -Wall -Werror -pedantic -Iinclude Tests/c/main.c Tests/c/harness.c Tests/c/fixtures.c \
 *      Tests/c/test_library.c Tests/c/test_engine_data.c Tests/c/test_fit.c Tests/c/test_recommend.c \
 *      Tests/c/test_snapshots.c Tests/c/test_texts.c Tests/c/test_kg.c Tests/c/test_metadata.c Tests/c/test_feedback.c Tests/c/test_learning.c Tests/c/test_merge.c -o build/test_capi \
 *      -L.build/release -lchorus -Wl,-rpath,$PWD/.build/release -lm
 * Prints one line per check group and ends with "N passed, M failed"; exits 1 if M > 0.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fixtures.h"
#include "harness.h"
#include "tests.h"

int main(void) {
    chorus_engine *e = NULL;
    const char *tmp = getenv("TMPDIR");
    const char *first_error;

    build_data();

    /* Before anything failed on this thread: "" and never NULL. */
    first_error = chorus_last_error();
    group_begin("last_error (initial)");
    CHECK(first_error != NULL && first_error[0] == '\0');
    group_end();

    snprintf(g_dir, sizeof g_dir, "%s/chorus-capi-XXXXXX", (tmp && tmp[0]) ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        printf("cannot create a temporary directory under %s: %s\n", (tmp && tmp[0]) ? tmp : "/tmp", strerror(errno));
        return 2;
    }
    test_library();
    /* Log lines from every group below are checked for well-formedness. */
    if (chorus_set_log_callback(log_cb, &g_log_token) != CHORUS_OK) g_failed++;
    test_params_init();
    test_create();
    test_stats_and_add();

    if (chorus_engine_create(NULL, &e) != CHORUS_OK || !e ||
        chorus_engine_add_interactions(e, d_user, d_item, d_weight, d_time, d_n / 2) != CHORUS_OK ||
        chorus_engine_add_interactions(e, d_user + d_n / 2, d_item + d_n / 2, d_weight + d_n / 2, d_time + d_n / 2,
                                       d_n - d_n / 2) != CHORUS_OK ||
        chorus_engine_agent_count(e, &g_n_agents) != CHORUS_OK || g_n_agents == 0 || g_n_agents > MAX_AGENTS) {
        printf("cannot set up the main engine: %s\n", chorus_last_error());
        chorus_engine_free(e);
        remove_tree(g_dir);
        printf("%d passed, %d failed\n", g_passed, g_failed + 1);
        return 1;
    }

    test_before_fit(e);
    test_fit(e);
    test_agents(e);
    test_reproducible(e);
    test_recommend(e);
    test_recommend_errors(e);
    test_cold_user(e);
    test_filters(e);
    test_similar(e);
    test_similar_users(e);
    test_threads(e);
    test_serve_during_fit(e);
    test_cancel(e);
    test_extreme_weights();
    test_snapshots(e);
    test_encoder(e);
    chorus_engine_free(e);
    test_texts();
    test_texts_progress();
    test_kg();
    test_metadata();
    test_feedback();
    test_learning();
    test_merge();
    test_log_callback();

    remove_tree(g_dir);
    group_begin("cleanup");
    {
        struct stat st;
        CHECK_MSG(stat(g_dir, &st) != 0, "the temporary directory is removed");
    }
    group_end();

    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
