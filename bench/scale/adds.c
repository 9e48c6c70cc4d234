/*
 * adds.c — single-interaction adds through the C ABI (bench/scale/run.py builds and runs it).
 *
 *   bench_scale_adds HELD USERS ITEMS ADDS
 *
 * Fills an engine with HELD interactions (batches of 100,000; users and items uniform), then adds
 * ADDS interactions one call each and prints one JSON line: the mean and worst microseconds per
 * add, and the held count. A host feeding events one by one pays exactly this per event.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "chorus.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t next(uint64_t *x) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

int main(int argc, char **argv) {
    enum { BATCH = 100000 };
    long held, users, items, adds, i, j;
    uint64_t x = 88172645463325252ULL;
    int64_t *u, *it, *ts, one_u, one_i, one_t;
    double start, last, worst = 0;
    chorus_engine *e = NULL;

    if (argc != 5) {
        fprintf(stderr, "usage: %s HELD USERS ITEMS ADDS\n", argv[0]);
        return 2;
    }
    held = atol(argv[1]), users = atol(argv[2]), items = atol(argv[3]), adds = atol(argv[4]);
    if (held < 0 || users < 1 || items < 1 || adds < 1) return 2;
    u = malloc(BATCH * sizeof *u), it = malloc(BATCH * sizeof *it), ts = malloc(BATCH * sizeof *ts);
    if (!u || !it || !ts || chorus_engine_create(NULL, &e) != CHORUS_OK) return 1;
    for (i = 0; i < held; i += BATCH) {
        long n = held - i < BATCH ? held - i : BATCH;
        for (j = 0; j < n; j++) {
            u[j] = (int64_t)(next(&x) % (uint64_t)users);
            it[j] = (int64_t)(next(&x) % (uint64_t)items);
            ts[j] = i + j;
        }
        if (chorus_engine_add_interactions(e, u, it, NULL, ts, (size_t)n) != CHORUS_OK) {
            fprintf(stderr, "add: %s\n", chorus_last_error());
            return 1;
        }
    }
    start = last = now();
    for (i = 0; i < adds; i++) {
        double t;
        one_u = (int64_t)(next(&x) % (uint64_t)users);
        one_i = (int64_t)(next(&x) % (uint64_t)items);
        one_t = held + i;
        if (chorus_engine_add_interactions(e, &one_u, &one_i, NULL, &one_t, 1) != CHORUS_OK) {
            fprintf(stderr, "add: %s\n", chorus_last_error());
            return 1;
        }
        t = now();
        if (t - last > worst) worst = t - last;
        last = t;
    }
    printf("{\"held\": %ld, \"adds\": %ld, \"mean_us\": %.4f, \"worst_us\": %.1f}\n", held, adds,
           (last - start) / (double)adds * 1e6, worst * 1e6);
    chorus_engine_free(e);
    free(u);
    free(it);
    free(ts);
    return 0;
}
