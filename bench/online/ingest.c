/*
 * ingest.c — live-feedback ingest rate while recommend runs (issue 17's speed target: >= 200k events/s
 * on 2 threads, recommend p99 under that load within 20% of idle). Not a timed test: it prints.
 *
 * On a MovieLens ratings.csv (userId,movieId,rating,timestamp): the ratings sorted by time, the first
 * half added and fitted (chorus_engine_fit with the defaults, or --factors), then
 *   1. idle: single-user recommends (k = 10, seen excluded) for users of the first half, timed alone;
 *   2. load: --ingest-threads threads stream the second half as CHORUS_EVENT_RATING events (value = the
 *      rating, timestamps as given) in batches of --batch through chorus_engine_feedback, taking
 *      batches in time order from a shared counter, while one more thread keeps recommending as in 1.
 * Reports events/s over the ingest's wall time, the recommend latency percentiles idle and under load,
 * and the time of one refit on all data for comparison. --no-recommend streams with no recommend thread
 * (what ingest costs by itself). bench/online/ingest.sh builds it and repeats runs with medians.
 *
 *   cc -std=c99 -O2 -Wall -Werror -pedantic -Iinclude bench/online/ingest.c -o build/bench_ingest \
 *      -L.build/release -lchorus -Wl,-rpath,$PWD/.build/release -lm -lpthread
 *   build/bench_ingest [--batch N] [--ingest-threads N] [--factors N] [--no-refit] [--no-recommend] \
 *      ../shared/data/ml-latest-small/ratings.csv
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chorus.h"

#define K 10
#define MAX_LAT 2000000

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, chorus_status st) {
    fprintf(stderr, "bench_ingest: %s failed: %s: %s\n", what, chorus_status_name(st), chorus_last_error());
    exit(1);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "bench_ingest: out of memory\n"); exit(1); }
    return p;
}

typedef struct { int64_t user, item, time; float rating; } rating_t;

static rating_t *load(const char *path, size_t *out_n) {
    FILE *f = fopen(path, "r");
    char line[512];
    size_t n = 0, cap = 0, lineno = 0;
    rating_t *r = NULL;
    if (!f) { fprintf(stderr, "bench_ingest: cannot open %s: %s\n", path, strerror(errno)); exit(1); }
    while (fgets(line, sizeof line, f)) {
        char *p = line, *end;
        rating_t x;
        lineno++;
        if (lineno == 1 && strncmp(line, "userId", 6) == 0) continue;
        if (line[0] == '\r' || line[0] == '\n') continue;
        x.user = strtoll(p, &end, 10); if (end == p || *end != ',') goto bad; p = end + 1;
        x.item = strtoll(p, &end, 10); if (end == p || *end != ',') goto bad; p = end + 1;
        x.rating = strtof(p, &end);    if (end == p || *end != ',') goto bad; p = end + 1;
        x.time = strtoll(p, &end, 10); if (end == p) goto bad;
        if (n == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            r = realloc(r, cap * sizeof *r);
            if (!r) { fprintf(stderr, "bench_ingest: out of memory\n"); exit(1); }
        }
        r[n++] = x;
        continue;
    bad:
        fprintf(stderr, "bench_ingest: %s:%lu: cannot parse line\n", path, (unsigned long)lineno);
        exit(1);
    }
    fclose(f);
    *out_n = n;
    return r;
}

static int by_time(const void *a, const void *b) {
    const rating_t *x = a, *y = b;
    if (x->time != y->time) return (x->time > y->time) - (x->time < y->time);
    return (x->user > y->user) - (x->user < y->user);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *v, size_t n, double q) {
    size_t i;
    if (n == 0) return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    i = (size_t)ceil(q * (double)n);
    return v[i == 0 ? 0 : i - 1];
}

static chorus_engine *g_engine;
static const rating_t *g_stream;
static size_t g_stream_n, g_batch;
static int64_t *g_users;
static size_t g_n_users;
static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
static size_t g_next;      /* next batch start (guarded by g_mutex) */
static int g_done;         /* ingest finished (guarded by g_mutex) */

/* Recommends single users until `stop` says so or `max_calls` calls; latencies in microseconds. */
static size_t recommend_loop(double *lat, size_t max_calls, int until_ingest_done, unsigned seed) {
    size_t n = 0;
    int64_t ids[K];
    float scores[K];
    for (;;) {
        int64_t user = g_users[(seed = seed * 1103515245u + 12345u) % g_n_users];
        double t0 = now_seconds();
        chorus_status st = chorus_engine_recommend(g_engine, &user, 1, K, NULL, ids, scores, K, NULL, 0, NULL);
        if (st != CHORUS_OK) die("recommend", st);
        if (n < max_calls) lat[n++] = (now_seconds() - t0) * 1e6;
        if (!until_ingest_done && n >= max_calls) break;
        if (until_ingest_done) {
            int done;
            pthread_mutex_lock(&g_mutex);
            done = g_done;
            pthread_mutex_unlock(&g_mutex);
            if (done || n >= max_calls) break;
        }
    }
    return n;
}

static void *ingest_main(void *arg) {
    size_t cap = g_batch, i;
    int64_t *users = xmalloc(cap * sizeof *users), *items = xmalloc(cap * sizeof *items), *times = xmalloc(cap * sizeof *times);
    int32_t *events = xmalloc(cap * sizeof *events);
    float *values = xmalloc(cap * sizeof *values);
    (void)arg;
    for (;;) {
        size_t start, n;
        chorus_status st;
        pthread_mutex_lock(&g_mutex);
        start = g_next;
        g_next = start + g_batch < g_stream_n ? start + g_batch : g_stream_n;
        pthread_mutex_unlock(&g_mutex);
        if (start >= g_stream_n) break;
        n = (start + g_batch < g_stream_n ? g_batch : g_stream_n - start);
        for (i = 0; i < n; i++) {
            const rating_t *r = &g_stream[start + i];
            users[i] = r->user; items[i] = r->item; times[i] = r->time;
            events[i] = CHORUS_EVENT_RATING; values[i] = r->rating;
        }
        st = chorus_engine_feedback(g_engine, users, items, events, values, times, n, NULL, NULL, NULL);
        if (st != CHORUS_OK) die("feedback", st);
    }
    free(users); free(items); free(times); free(events); free(values);
    return NULL;
}

static void *recommend_main(void *arg) {
    double *lat = arg;
    size_t n = recommend_loop(lat + 1, MAX_LAT - 1, 1, 7u);
    lat[0] = (double)n;
    return NULL;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    size_t n, half, i, ingest_threads = 2, idle_calls = 3000, n_idle, n_load, n_after;
    unsigned factors = 0;
    int refit = 1, alongside = 1;
    rating_t *r;
    int64_t *u, *it, *t;
    float *w;
    double *idle, *under, *after, t0, t_fit, t_ingest, t_refit = NAN;
    pthread_t th[16], rt;
    chorus_fit_params fp;
    chorus_engine_stats st;

    g_batch = 1000;
    for (i = 1; i < (size_t)argc; i++) {
        if (!strcmp(argv[i], "--batch") && i + 1 < (size_t)argc) g_batch = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--ingest-threads") && i + 1 < (size_t)argc) ingest_threads = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--factors") && i + 1 < (size_t)argc) factors = (unsigned)atol(argv[++i]);
        else if (!strcmp(argv[i], "--no-refit")) refit = 0;
        else if (!strcmp(argv[i], "--no-recommend")) alongside = 0;
        else path = argv[i];
    }
    if (!path || g_batch == 0 || ingest_threads == 0 || ingest_threads > 16) {
        fprintf(stderr, "usage: %s [--batch N] [--ingest-threads 1..16] [--factors N] [--no-refit] [--no-recommend] ratings.csv\n", argv[0]);
        return 2;
    }
    r = load(path, &n);
    qsort(r, n, sizeof *r, by_time);
    half = n / 2;
    u = xmalloc(half * sizeof *u); it = xmalloc(half * sizeof *it); t = xmalloc(half * sizeof *t); w = xmalloc(half * sizeof *w);
    for (i = 0; i < half; i++) { u[i] = r[i].user; it[i] = r[i].item; t[i] = r[i].time; w[i] = r[i].rating; }
    if (chorus_engine_create(NULL, &g_engine) != CHORUS_OK) die("create", CHORUS_ERR_INTERNAL);
    if ((i = (size_t)chorus_engine_add_interactions(g_engine, u, it, w, t, half)) != 0) die("add", (chorus_status)i);
    chorus_fit_params_init(&fp);
    if (factors) fp.factors = factors;
    t0 = now_seconds();
    if (chorus_engine_fit(g_engine, &fp) != CHORUS_OK) die("fit", -1);
    t_fit = now_seconds() - t0;
    /* Users of the first half (repeats weight active users, as traffic would). */
    g_users = u;
    g_n_users = half;

    idle = xmalloc(MAX_LAT * sizeof *idle);
    under = xmalloc(MAX_LAT * sizeof *under);
    recommend_loop(idle, 300, 0, 3u); /* warm-up */
    n_idle = recommend_loop(idle, idle_calls, 0, 5u);

    g_stream = r + half;
    g_stream_n = n - half;
    t0 = now_seconds();
    under[0] = 0;
    if (alongside) pthread_create(&rt, NULL, recommend_main, under);
    for (i = 0; i < ingest_threads; i++) pthread_create(&th[i], NULL, ingest_main, NULL);
    for (i = 0; i < ingest_threads; i++) pthread_join(th[i], NULL);
    t_ingest = now_seconds() - t0;
    pthread_mutex_lock(&g_mutex);
    g_done = 1;
    pthread_mutex_unlock(&g_mutex);
    if (alongside) pthread_join(rt, NULL);
    n_load = (size_t)under[0];
    /* Idle again, with the online state the stream left (fold-ins, new items). */
    after = xmalloc(MAX_LAT * sizeof *after);
    n_after = recommend_loop(after, idle_calls, 0, 9u);

    chorus_engine_stats_init(&st);
    chorus_engine_get_stats(g_engine, &st);
    if (refit) {
        t0 = now_seconds();
        if (chorus_engine_fit(g_engine, &fp) != CHORUS_OK) die("refit", -1);
        t_refit = now_seconds() - t0;
    }

    printf("data: %s, %lu ratings; fit on the first %lu (by time): %.2f s\n", path, (unsigned long)n, (unsigned long)half, t_fit);
    printf("ingest: %lu rating events, batches of %lu, %lu thread(s), %s: %.3f s = %.0f events/s\n",
           (unsigned long)g_stream_n, (unsigned long)g_batch, (unsigned long)ingest_threads,
           alongside ? "1 recommend thread alongside" : "no recommend thread", t_ingest, (double)g_stream_n / t_ingest);
    printf("recommend k=%d idle: %lu calls, p50 %.0f us, p99 %.0f us\n", K, (unsigned long)n_idle,
           percentile(idle, n_idle, 0.5), percentile(idle, n_idle, 0.99));
    if (alongside)
        printf("recommend k=%d during ingest: %lu calls, p50 %.0f us, p99 %.0f us\n", K, (unsigned long)n_load,
               percentile(under + 1, n_load, 0.5), percentile(under + 1, n_load, 0.99));
    printf("recommend k=%d idle after ingest: %lu calls, p50 %.0f us, p99 %.0f us (%lu new items served)\n", K, (unsigned long)n_after,
           percentile(after, n_after, 0.5), percentile(after, n_after, 0.99),
           (unsigned long)(st.n_items > st.n_model_items ? st.n_items - st.n_model_items : 0));
    if (refit) printf("one refit on all %lu interactions (for comparison): %.2f s\n", (unsigned long)st.n_interactions, t_refit);
    chorus_engine_free(g_engine);
    free(r); free(u); free(it); free(t); free(w); free(idle); free(under); free(after);
    return 0;
}
