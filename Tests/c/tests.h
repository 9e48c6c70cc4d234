/*
 * tests.h — the check groups of the C host test, one file per concern; main.c runs them in order.
 *
 * Groups that take an engine get the main engine (the two-cluster data of fixtures.h, added in two
 * batches; fitted by test_fit); the others make their own.
 */
#ifndef CHORUS_TESTS_C_TESTS_H
#define CHORUS_TESTS_C_TESTS_H

#include "chorus.h"

/* test_library.c */
void test_library(void);
void test_params_init(void);
void test_log_callback(void);

/* test_engine_data.c */
void test_create(void);
void test_stats_and_add(void);
void test_before_fit(chorus_engine *e);

/* test_fit.c */
void test_fit(chorus_engine *e);
void test_reproducible(const chorus_engine *e);
void test_threads(const chorus_engine *e);
void test_serve_during_fit(chorus_engine *e);
void test_cancel(chorus_engine *e);
void test_extreme_weights(void);

/* test_recommend.c */
void test_agents(const chorus_engine *e);
void test_recommend(const chorus_engine *e);
void test_recommend_errors(const chorus_engine *e);
void test_cold_user(const chorus_engine *e);
void test_filters(const chorus_engine *e);
void test_similar(const chorus_engine *e);
void test_similar_users(const chorus_engine *e);

/* test_snapshots.c */
void test_snapshots(chorus_engine *e);
/* Loads the file at `path` and frees what it loaded; returns the load's status. */
typedef chorus_status (*snapshot_loader)(const char *path);
/* Writes `buf` (an intact snapshot of `len` bytes, which `load` accepts) to `scratch` with every byte
 * flipped by three bit patterns (0xFF, 0x01, 0x80), one at a time, and truncated to every length
 * 0 ... len - 1: each load must fail cleanly (CHORUS_ERR_UNSUPPORTED_VERSION for a format version
 * made newer, else CHORUS_ERR_FORMAT). One CHECK with the count and the first offender; returns
 * whether all were rejected and the intact file still loads. */
int all_offsets_rejected(const char *scratch, const unsigned char *buf, size_t len, snapshot_loader load,
                         const char *what);

/* test_texts.c */
void test_encoder(const chorus_engine *engine);
void test_texts(void);
void test_texts_progress(void);

/* test_metadata.c */
void test_metadata(void);
/* test_feedback.c */
void test_feedback(void);
/* test_merge.c */
void test_merge(void);
/* test_learning.c */
void test_learning(void);

/* test_kg.c */
void test_kg(void);

#endif
