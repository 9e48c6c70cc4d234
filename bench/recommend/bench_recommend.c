/*
 * bench_recommend.c: recommend latency and throughput of libchorus.so through its C ABI, on
 * MovieLens ratings.csv (header, CRLF or LF): fit with default parameters, then
 *   - single-user latency, k = 10, the coordinator's blend, seen items excluded: every user once
 *     per pass after a warm-up pass (p50 / p90 / p99 / max over all calls, microseconds, and each
 *     pass's own p50 and p99 as a min-max spread);
 *   - the same with agent "als" alone;
 *   - batch throughput: all users in one chorus_engine_recommend call, best of 5 (users/s);
 *   - peak resident memory (getrusage ru_maxrss) after fit, and chorus_engine_get_stats.
 * With --json, one JSON object instead (bench/arch/compare.py reads it), which also carries a
 * digest (FNV-1a 64) of every user's top 10 ids and of their scores' bits, for the blend, the
 * blend with the query and "als" alone: two builds that should behave alike can be compared.
 *
 *     bench_recommend [--passes N] [--markdown | --json] [--movies movies.csv] [--users N] [--max-texts N] ratings.csv
 *
 * --users N measures the first N distinct users only (by id; the fit still uses every rating), and
 * --max-texts N gives the engine the first N movie texts only: a quick check (make bench-check), not a record.
 *
 * C99 + POSIX (clock_gettime, getrusage). Build (bench/recommend/run.sh does this):
 *     cc -std=c99 -O2 -Wall -Werror -pedantic -Iinclude bench/recommend/bench_recommend.c \
 *        -o build/bench_recommend -L.build/release -lchorus -Wl,-rpath,$PWD/.build/release -lm
 */
#define _POSIX_C_SOURCE 200809L
#include <chorus.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define K 10

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, chorus_status st) {
    fprintf(stderr, "bench_recommend: %s failed: %s: %s\n", what, chorus_status_name(st), chorus_last_error());
    exit(1);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "bench_recommend: out of memory\n"); exit(1); }
    return p;
}

typedef struct {
    int64_t *users, *items, *times;
    float *weights;
    size_t n, cap;
} ratings_t;

/* Reads userId,movieId,rating,timestamp lines; skips the header; tolerates CRLF. */
static ratings_t load_ratings(const char *path) {
    ratings_t r = {0};
    FILE *f = fopen(path, "r");
    char line[512];
    size_t lineno = 0;
    if (!f) { fprintf(stderr, "bench_recommend: cannot open %s: %s\n", path, strerror(errno)); exit(1); }
    while (fgets(line, sizeof line, f)) {
        char *p = line, *end;
        long long u, i, t;
        float w;
        lineno++;
        if (lineno == 1 && strncmp(line, "userId", 6) == 0) continue;
        if (line[0] == '\r' || line[0] == '\n') continue;
        u = strtoll(p, &end, 10); if (end == p || *end != ',') goto bad; p = end + 1;
        i = strtoll(p, &end, 10); if (end == p || *end != ',') goto bad; p = end + 1;
        w = strtof(p, &end);      if (end == p || *end != ',') goto bad; p = end + 1;
        t = strtoll(p, &end, 10); if (end == p) goto bad;
        if (r.n == r.cap) {
            r.cap = r.cap ? 2 * r.cap : 1 << 16;
            r.users = realloc(r.users, r.cap * sizeof *r.users);
            r.items = realloc(r.items, r.cap * sizeof *r.items);
            r.times = realloc(r.times, r.cap * sizeof *r.times);
            r.weights = realloc(r.weights, r.cap * sizeof *r.weights);
            if (!r.users || !r.items || !r.times || !r.weights) { fprintf(stderr, "bench_recommend: out of memory\n"); exit(1); }
        }
        r.users[r.n] = u; r.items[r.n] = i; r.weights[r.n] = w; r.times[r.n] = t;
        r.n++;
        continue;
    bad:
        fprintf(stderr, "bench_recommend: %s:%lu: cannot parse line\n", path, (unsigned long)lineno);
        exit(1);
    }
    fclose(f);
    return r;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Distinct user ids, ascending. */
static int64_t *distinct_users(const ratings_t *r, size_t *out_n) {
    int64_t *u = xmalloc(r->n * sizeof *u);
    size_t i, n = 0;
    memcpy(u, r->users, r->n * sizeof *u);
    qsort(u, r->n, sizeof *u, cmp_i64);
    for (i = 0; i < r->n; i++) if (n == 0 || u[n - 1] != u[i]) u[n++] = u[i];
    *out_n = n;
    return u;
}

static double percentile(const double *sorted, size_t n, double q) {
    /* nearest rank */
    size_t rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

/* Percentiles over every timed call, and the spread of each pass's own p50 and p99 (min, max over
 * passes): a p99 pooled over 10,000 calls is not the 6th-slowest call, and the spread shows how
 * much a single pass would have moved it. */
typedef struct { double p50, p90, p99, max, mean; size_t n; double pass_p50[2], pass_p99[2]; } latency_t;

/* One warm-up pass, then `passes` timed passes over every user, one call per user. */
static latency_t single_user_latency(const chorus_engine *e, const int64_t *users, size_t n_users,
                                     const chorus_recommend_params *params, int passes) {
    int64_t ids[K];
    float scores[K];
    size_t total = (size_t)passes * n_users, i, s = 0;
    double *lat = xmalloc(total * sizeof *lat), sum = 0;
    latency_t out;
    int pass;
    chorus_status st;
    for (i = 0; i < n_users; i++) {
        st = chorus_engine_recommend(e, &users[i], 1, K, params, ids, scores, K, NULL, 0, NULL);
        if (st != CHORUS_OK) die("chorus_engine_recommend (warm-up)", st);
    }
    out.pass_p50[0] = out.pass_p99[0] = 1e300;
    out.pass_p50[1] = out.pass_p99[1] = 0;
    for (pass = 0; pass < passes; pass++) {
        double *mine = xmalloc(n_users * sizeof *mine), p50, p99;
        for (i = 0; i < n_users; i++) {
            double t0 = now_seconds();
            st = chorus_engine_recommend(e, &users[i], 1, K, params, ids, scores, K, NULL, 0, NULL);
            lat[s] = (now_seconds() - t0) * 1e6;
            if (st != CHORUS_OK) die("chorus_engine_recommend", st);
            mine[i] = lat[s];
            sum += lat[s++];
        }
        qsort(mine, n_users, sizeof *mine, cmp_double);
        p50 = percentile(mine, n_users, 0.50), p99 = percentile(mine, n_users, 0.99);
        if (p50 < out.pass_p50[0]) out.pass_p50[0] = p50;
        if (p50 > out.pass_p50[1]) out.pass_p50[1] = p50;
        if (p99 < out.pass_p99[0]) out.pass_p99[0] = p99;
        if (p99 > out.pass_p99[1]) out.pass_p99[1] = p99;
        free(mine);
    }
    qsort(lat, total, sizeof *lat, cmp_double);
    out.p50 = percentile(lat, total, 0.50);
    out.p90 = percentile(lat, total, 0.90);
    out.p99 = percentile(lat, total, 0.99);
    out.max = lat[total - 1];
    out.mean = sum / (double)total;
    out.n = total;
    free(lat);
    return out;
}

/* All users in one call, best of `rounds`; returns users per second. */
static double batch_throughput(const chorus_engine *e, const int64_t *users, size_t n_users,
                               const chorus_recommend_params *params, int rounds, double *best_seconds) {
    int64_t *ids = xmalloc(n_users * K * sizeof *ids);
    float *scores = xmalloc(n_users * K * sizeof *scores);
    double best = 1e30;
    int r;
    for (r = 0; r < rounds; r++) {
        double t0 = now_seconds(), dt;
        chorus_status st = chorus_engine_recommend(e, users, n_users, K, params, ids, scores, n_users * K, NULL, 0, NULL);
        dt = now_seconds() - t0;
        if (st != CHORUS_OK) die("chorus_engine_recommend (batch)", st);
        if (dt < best) best = dt;
    }
    free(ids);
    free(scores);
    *best_seconds = best;
    return (double)n_users / best;
}

/* movies.csv (movieId,title,genres; RFC 4180 quotes; CRLF): "Title. Genres: A, B." per movie, the
 * text `chorus eval` gives movies (MovieLens.itemText). Returns the count; *ids and *texts malloc'd. */
static size_t load_movie_texts(const char *path, size_t max_texts, int64_t **ids, char ***texts) {
    FILE *f = fopen(path, "rb");
    char line[8192];
    size_t n = 0, cap = 1024;
    if (!f) { fprintf(stderr, "cannot open %s\n", path); exit(1); }
    *ids = xmalloc(cap * sizeof **ids);
    *texts = xmalloc(cap * sizeof **texts);
    if (!fgets(line, sizeof line, f)) { fclose(f); return 0; } /* header */
    while (n < max_texts && fgets(line, sizeof line, f)) {
        char title[4096], genres[2048], out[8192], *p = line, *end;
        size_t t = 0, g = 0, o = 0;
        long long id = strtoll(p, &end, 10);
        if (end == p || *end != ',') continue;
        p = end + 1;
        if (*p == '"') {
            for (p++; *p && t + 1 < sizeof title; p++) {
                if (*p == '"' && p[1] == '"') { title[t++] = '"'; p++; }
                else if (*p == '"') { p++; break; }
                else title[t++] = *p;
            }
        } else {
            while (*p && *p != ',' && t + 1 < sizeof title) title[t++] = *p++;
        }
        title[t] = 0;
        if (*p == ',') p++;
        while (*p && *p != '\r' && *p != '\n' && g + 1 < sizeof genres) genres[g++] = *p++;
        genres[g] = 0;
        o = (size_t)snprintf(out, sizeof out, "%s", title);
        if (g > 0 && strcmp(genres, "(no genres listed)") != 0) {
            char *tok = strtok(genres, "|");
            o += (size_t)snprintf(out + o, sizeof out - o, ". Genres: ");
            for (int first = 1; tok; tok = strtok(NULL, "|"), first = 0)
                o += (size_t)snprintf(out + o, sizeof out - o, "%s%s", first ? "" : ", ", tok);
            o += (size_t)snprintf(out + o, sizeof out - o, ".");
        }
        if (n == cap) {
            cap *= 2;
            *ids = realloc(*ids, cap * sizeof **ids);
            *texts = realloc(*texts, cap * sizeof **texts);
            if (!*ids || !*texts) { fprintf(stderr, "out of memory\n"); exit(1); }
        }
        (*ids)[n] = (int64_t)id;
        (*texts)[n] = strdup(out);
        n++;
    }
    fclose(f);
    return n;
}

/* FNV-1a 64 over n bytes, continuing from h. */
static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    size_t i;
    for (i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ULL; }
    return h;
}

/* All users in one call; digests of the ids and of the scores' bits (row-major, k per user). */
static void recommend_digest(const chorus_engine *e, const int64_t *users, size_t n_users,
                             const chorus_recommend_params *params, uint64_t *ids_digest, uint64_t *scores_digest) {
    int64_t *ids = xmalloc(n_users * K * sizeof *ids);
    float *scores = xmalloc(n_users * K * sizeof *scores);
    chorus_status st = chorus_engine_recommend(e, users, n_users, K, params, ids, scores, n_users * K, NULL, 0, NULL);
    if (st != CHORUS_OK) die("chorus_engine_recommend (digest)", st);
    *ids_digest = fnv1a(0xcbf29ce484222325ULL, ids, n_users * K * sizeof *ids);
    *scores_digest = fnv1a(0xcbf29ce484222325ULL, scores, n_users * K * sizeof *scores);
    free(ids);
    free(scores);
}

static void print_latency_json(const char *name, const latency_t *l, int last) {
    printf("    \"%s\": {\"calls\": %lu, \"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, \"mean_us\": %.1f, "
           "\"pass_p50_us\": [%.1f, %.1f], \"pass_p99_us\": [%.1f, %.1f]}%s\n",
           name, (unsigned long)l->n, l->p50, l->p90, l->p99, l->max, l->mean, l->pass_p50[0], l->pass_p50[1], l->pass_p99[0],
           l->pass_p99[1], last ? "" : ",");
}

/* A JSON string (quotes, backslashes and control characters escaped). */
static void print_json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static void print_latency_row(const char *name, const latency_t *l) {
    printf("| %s | %lu | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f-%.1f | %.1f-%.1f |\n", name, (unsigned long)l->n, l->p50, l->p90,
           l->p99, l->max, l->mean, l->pass_p50[0], l->pass_p50[1], l->pass_p99[0], l->pass_p99[1]);
}

static long maxrss_kib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss; /* KiB on Linux */
}

int main(int argc, char **argv) {
    static const char usage[] =
        "usage: bench_recommend [--passes N] [--markdown | --json] [--movies movies.csv] [--users N] [--max-texts N] ratings.csv\n";
    const char *path = NULL, *movies = NULL;
    int passes = 1, markdown = 0, json = 0, a;
    long max_users = 0, max_texts = 0;
    uint64_t digest_ids[3] = {0, 0, 0}, digest_scores[3] = {0, 0, 0};
    int64_t *movie_ids = NULL;
    char **movie_texts = NULL;
    size_t n_movies = 0;
    double texts_s = 0;
    const char *encoder = "";
    chorus_recommend_params query;
    latency_t lq;
    ratings_t r;
    int64_t *users;
    size_t n_users, agents, i;
    chorus_engine *e = NULL;
    chorus_recommend_params blend, als;
    chorus_engine_stats stats;
    chorus_status st;
    double t0, fit_s, add_s, batch_blend_s, batch_als_s, tput_blend, tput_als;
    long rss_before_fit, rss_after_fit;
    latency_t lb, la;

    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--passes") == 0 && a + 1 < argc) passes = atoi(argv[++a]);
        else if (strcmp(argv[a], "--markdown") == 0) markdown = 1;
        else if (strcmp(argv[a], "--json") == 0) json = 1;
        else if (strcmp(argv[a], "--movies") == 0 && a + 1 < argc) movies = argv[++a];
        else if (strcmp(argv[a], "--users") == 0 && a + 1 < argc) max_users = atol(argv[++a]);
        else if (strcmp(argv[a], "--max-texts") == 0 && a + 1 < argc) max_texts = atol(argv[++a]);
        else if (argv[a][0] == '-') { fprintf(stderr, "%s", usage); return 2; }
        else path = argv[a];
    }
    if (!path || passes < 1 || max_users < 0 || max_texts < 0) { fprintf(stderr, "%s", usage); return 2; }

    r = load_ratings(path);
    users = distinct_users(&r, &n_users);
    if (max_users > 0 && (size_t)max_users < n_users) n_users = (size_t)max_users;

    st = chorus_engine_create(NULL, &e);
    if (st != CHORUS_OK) die("chorus_engine_create", st);
    t0 = now_seconds();
    st = chorus_engine_add_interactions(e, r.users, r.items, r.weights, r.times, r.n);
    if (st != CHORUS_OK) die("chorus_engine_add_interactions", st);
    add_s = now_seconds() - t0;
    if (movies) {
        /* Item texts: the content and query agents join (texts of rated movies only). */
        n_movies = load_movie_texts(movies, max_texts > 0 ? (size_t)max_texts : (size_t)-1, &movie_ids, &movie_texts);
        t0 = now_seconds();
        st = chorus_engine_set_item_texts(e, movie_ids, (const char *const *)movie_texts, n_movies);
        if (st != CHORUS_OK) die("chorus_engine_set_item_texts", st);
        texts_s = now_seconds() - t0;
        chorus_engine_encoder_name(e, &encoder);
    }
    rss_before_fit = maxrss_kib();
    t0 = now_seconds();
    st = chorus_engine_fit(e, NULL);
    if (st != CHORUS_OK) die("chorus_engine_fit", st);
    fit_s = now_seconds() - t0;
    rss_after_fit = maxrss_kib();

    chorus_engine_stats_init(&stats);
    st = chorus_engine_get_stats(e, &stats);
    if (st != CHORUS_OK) die("chorus_engine_get_stats", st);

    chorus_engine_agent_count(e, &agents);
    chorus_recommend_params_init(&blend);
    chorus_recommend_params_init(&als);
    als.agent = "als";

    lb = single_user_latency(e, users, n_users, &blend, passes);
    chorus_recommend_params_init(&query);
    query.query = "a light-hearted animated film for a family evening";
    if (movies) lq = single_user_latency(e, users, n_users, &query, 1);
    la = single_user_latency(e, users, n_users, &als, passes);
    tput_blend = batch_throughput(e, users, n_users, &blend, 5, &batch_blend_s);
    tput_als = batch_throughput(e, users, n_users, &als, 5, &batch_als_s);

    if (json) {
        recommend_digest(e, users, n_users, &blend, &digest_ids[0], &digest_scores[0]);
        if (movies) recommend_digest(e, users, n_users, &query, &digest_ids[1], &digest_scores[1]);
        recommend_digest(e, users, n_users, &als, &digest_ids[2], &digest_scores[2]);
        printf("{\n  \"library\": \"%s\", \"interactions\": %lu, \"users\": %llu, \"items\": %llu, \"passes\": %d,\n",
               chorus_version(), (unsigned long)r.n, (unsigned long long)stats.n_model_users,
               (unsigned long long)stats.n_model_items, passes);
        printf("  \"ratings\": ");
        print_json_string(path);
        printf(", \"measured_users\": %lu, \"encoder\": ", (unsigned long)n_users);
        print_json_string(encoder);
        printf(",\n  \"add_interactions_s\": %.4f, \"set_item_texts_s\": %.3f, \"movie_texts\": %lu, \"fit_s\": %.4f,\n",
               add_s, texts_s, (unsigned long)n_movies, fit_s);
        printf("  \"blend_weights\": {");
        for (i = 0; i < agents; i++) {
            const char *name = NULL;
            float w = 0;
            chorus_engine_agent_info(e, i, &name, &w);
            printf("%s\"%s\": %.9g", i ? ", " : "", name, (double)w);
        }
        printf("},\n  \"latency\": {\n");
        print_latency_json("blend", &lb, 0);
        if (movies) print_latency_json("blend_query", &lq, 0);
        print_latency_json("als", &la, 1);
        printf("  },\n  \"batch_s\": {\"blend\": %.5f, \"als\": %.5f},\n", batch_blend_s, batch_als_s);
        printf("  \"batch_users_per_s\": {\"blend\": %.1f, \"als\": %.1f},\n", tput_blend, tput_als);
        printf("  \"rss_kib\": {\"before_fit\": %ld, \"after_fit\": %ld, \"end\": %ld},\n",
               rss_before_fit, rss_after_fit, maxrss_kib());
        printf("  \"model_bytes\": %llu, \"allocator_allocated_bytes\": %llu, \"allocator_resident_bytes\": %llu,\n",
               (unsigned long long)stats.model_bytes, (unsigned long long)stats.allocator_allocated_bytes,
               (unsigned long long)stats.allocator_resident_bytes);
        printf("  \"digest\": {\"blend_ids\": \"%016llx\", \"blend_scores\": \"%016llx\", ",
               (unsigned long long)digest_ids[0], (unsigned long long)digest_scores[0]);
        if (movies) printf("\"blend_query_ids\": \"%016llx\", \"blend_query_scores\": \"%016llx\", ",
               (unsigned long long)digest_ids[1], (unsigned long long)digest_scores[1]);
        printf("\"als_ids\": \"%016llx\", \"als_scores\": \"%016llx\"}\n}\n",
               (unsigned long long)digest_ids[2], (unsigned long long)digest_scores[2]);
        goto done;
    }

    printf("%s", markdown ? "" : "bench_recommend (C ABI)\n");
    printf("- library %s; data %s: %lu interactions, %llu users, %llu items\n", chorus_version(), path,
           (unsigned long)r.n, (unsigned long long)stats.n_model_users, (unsigned long long)stats.n_model_items);
    printf("- chorus_engine_add_interactions %.3f s; chorus_engine_fit (defaults) %.3f s\n", add_s, fit_s);
    if (movies) printf("- chorus_engine_set_item_texts: %lu movie texts in %.2f s; encoder: %s\n", (unsigned long)n_movies, texts_s, encoder);
    printf("- blend weights:");
    for (i = 0; i < agents; i++) {
        const char *name = NULL;
        float w = 0;
        chorus_engine_agent_info(e, i, &name, &w);
        printf(" %s=%.3f", name, (double)w);
    }
    printf("\n\n");
    printf("| single-user recommend, k=%d, seen excluded | calls | p50 (us) | p90 (us) | p99 (us) | max (us) | mean (us) | "
           "p50 per pass, min-max (us) | p99 per pass, min-max (us) |\n", K);
    printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    print_latency_row("coordinator, all agents", &lb);
    if (movies) print_latency_row("coordinator + a natural-language query (encoded per call)", &lq);
    print_latency_row("agent \"als\" alone", &la);
    printf("\n| batch recommend, all %lu users in one call, k=%d | best of 5 (ms) | users/s |\n", (unsigned long)n_users, K);
    printf("| --- | --- | --- |\n");
    printf("| blend | %.2f | %.0f |\n", batch_blend_s * 1e3, tput_blend);
    printf("| agent \"als\" alone | %.2f | %.0f |\n", batch_als_s * 1e3, tput_als);
    printf("\n| memory | MiB |\n| --- | --- |\n");
    printf("| peak RSS before fit (ru_maxrss) | %.1f |\n", (double)rss_before_fit / 1024.0);
    printf("| peak RSS after fit (ru_maxrss) | %.1f |\n", (double)rss_after_fit / 1024.0);
    printf("| model_bytes (chorus_engine_get_stats) | %.2f |\n", (double)stats.model_bytes / 1048576.0);
    printf("| allocator_allocated_bytes (jemalloc) | %.2f |\n", (double)stats.allocator_allocated_bytes / 1048576.0);
    printf("| allocator_resident_bytes (jemalloc) | %.2f |\n", (double)stats.allocator_resident_bytes / 1048576.0);

done:
    chorus_engine_free(e);
    for (i = 0; i < n_movies; i++) free(movie_texts[i]);
    free(movie_texts); free(movie_ids);
    free(users);
    free(r.users); free(r.items); free(r.times); free(r.weights);
    return 0;
}
