/*
 * test_capi.c — the C host test of include/chorus.h.
 *
 * Calls every function of the header, every documented error path (with its exact status and a
 * non-empty chorus_last_error()), and checks a synthetic case with a known answer: two clusters of
 * users who like two disjoint groups of items, so a fitted engine must recommend (and find similar)
 * items within the user's (item's) own cluster.
 *
 * A trap in the library ends the run, except in the few hostile-argument checks run in a child
 * process (EXPECT_ISOLATED).
 *
 * Build (as `make test-c` does):
 *   cc -std=c99 -Wall -Werror -pedantic -Iinclude Tests/c/test_capi.c -o build/test_capi \
 *      -L.build/release -lchorus -Wl,-rpath,$PWD/.build/release -lm
 * Prints one line per check group and ends with "N passed, M failed"; exits 1 if M > 0.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chorus.h"

/* ---- Snapshot layout used by the corruption tests ----------------------------------------------
 * The format-version field: a little-endian uint32 right after the 8-byte magic (confirmed against
 * Sources/ChorusCore/Snapshot*.swift). */
#define SNAPSHOT_VERSION_OFFSET 8

/* An empty batch (n = 0, n_users = 0, n_items = 0) is a bad count: CHORUS_ERR_INVALID_ARGUMENT,
 * and nothing changes. */
#define EMPTY_BATCH_STATUS CHORUS_ERR_INVALID_ARGUMENT

/* ---- Check bookkeeping ------------------------------------------------------------------------ */

static int g_passed, g_failed;
static int g_group_checks, g_group_failed;
static const char *g_group = "";

static void group_begin(const char *name) {
    g_group = name;
    g_group_checks = 0;
    g_group_failed = 0;
}

static void group_end(void) {
    if (g_group_failed == 0)
        printf("[pass] %-28s %3d checks\n", g_group, g_group_checks);
    else
        printf("[FAIL] %-28s %3d checks, %d failed\n", g_group, g_group_checks, g_group_failed);
    fflush(stdout);
}

static int check_impl(int ok, const char *what, const char *file, int line) {
    g_group_checks++;
    if (ok) {
        g_passed++;
    } else {
        g_failed++;
        g_group_failed++;
        printf("  FAILED %s (%s:%d): %s\n", g_group, file, line, what);
        fflush(stdout);
    }
    return ok;
}

#define CHECK(cond) check_impl((cond) != 0, #cond, __FILE__, __LINE__)
#define CHECK_MSG(cond, msg) check_impl((cond) != 0, (msg), __FILE__, __LINE__)

/* The test's own names for statuses (messages must not depend on the library under test). */
static const char *status_str(chorus_status s) {
    static const char *names[] = {"CHORUS_OK", "CHORUS_ERR_INVALID_ARGUMENT", "CHORUS_ERR_NOT_FOUND",
                                  "CHORUS_ERR_BUFFER_TOO_SMALL", "CHORUS_ERR_NOT_FITTED", "CHORUS_ERR_IO",
                                  "CHORUS_ERR_FORMAT", "CHORUS_ERR_UNSUPPORTED_VERSION", "CHORUS_ERR_CANCELLED",
                                  "CHORUS_ERR_OUT_OF_MEMORY", "CHORUS_ERR_INTERNAL"};
    if (s <= 0 && s >= -10) return names[-s];
    return "(unknown status)";
}

/* Checks a status, and after an expected failure that chorus_last_error() says something. */
static int expect_status_impl(chorus_status got, chorus_status want, const char *expr, const char *file,
                              int line) {
    char err[512];
    char what[1024];
    const char *e = chorus_last_error(); /* read first: the next chorus call may replace it */
    int ok;
    if (e == NULL) {
        strcpy(err, "<NULL>");
    } else {
        strncpy(err, e, sizeof err - 1);
        err[sizeof err - 1] = '\0';
    }
    snprintf(what, sizeof what, "%s returned %s (%d), expected %s; last error: \"%s\"", expr,
             status_str(got), (int)got, status_str(want), err);
    ok = check_impl(got == want, what, file, line);
    if (want != CHORUS_OK) {
        snprintf(what, sizeof what, "%s: chorus_last_error() is non-empty after the failure", expr);
        ok &= check_impl(e != NULL && err[0] != '\0', what, file, line);
    }
    return ok;
}

#define EXPECT(call, want) expect_status_impl((call), (want), #call, __FILE__, __LINE__)

/* Either of two statuses (only where the header does not pin one). */
static int expect_either_impl(chorus_status got, chorus_status a, chorus_status b, const char *expr,
                              const char *file, int line) {
    const char *e = chorus_last_error();
    int nonempty = e != NULL && e[0] != '\0';
    char what[1024];
    int ok;
    snprintf(what, sizeof what, "%s returned %s (%d), expected %s or %s", expr, status_str(got), (int)got,
             status_str(a), status_str(b));
    ok = check_impl(got == a || got == b, what, file, line);
    snprintf(what, sizeof what, "%s: chorus_last_error() is non-empty after the failure", expr);
    return ok & check_impl(nonempty, what, file, line);
}

#define EXPECT_EITHER(call, a, b) expect_either_impl((call), (a), (b), #call, __FILE__, __LINE__)

/* Runs one call in a child process, so that a trap in the library (a Swift precondition failure)
 * on a hostile argument is a failed check rather than the end of the run. The child sends back the
 * status and whether chorus_last_error() was non-empty through a pipe. */
typedef chorus_status (*isolated_fn)(const void *arg);

static int expect_isolated_impl(isolated_fn fn, const void *arg, chorus_status want, const char *expr,
                                const char *file, int line) {
    int fds[2], wstatus = 0, got_reply = 0;
    pid_t pid;
    int32_t reply[2] = {0, 0};
    char what[512];
    fflush(stdout);
    fflush(stderr);
    if (pipe(fds) != 0 || (pid = fork()) < 0) {
        snprintf(what, sizeof what, "%s: cannot fork a child to run it: %s", expr, strerror(errno));
        return check_impl(0, what, file, line);
    }
    if (pid == 0) {
        const char *m;
        close(fds[0]);
        reply[0] = fn(arg);
        m = chorus_last_error();
        reply[1] = m != NULL && m[0] != '\0';
        if (write(fds[1], reply, sizeof reply) != (ssize_t)sizeof reply) _exit(3);
        _exit(0);
    }
    close(fds[1]);
    got_reply = read(fds[0], reply, sizeof reply) == (ssize_t)sizeof reply;
    close(fds[0]);
    waitpid(pid, &wstatus, 0);
    if (!got_reply) {
        if (WIFSIGNALED(wstatus))
            snprintf(what, sizeof what, "%s crashed the process (signal %d); expected %s", expr, WTERMSIG(wstatus),
                     status_str(want));
        else
            snprintf(what, sizeof what, "%s ended the process (exit status %d); expected %s", expr,
                     WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1, status_str(want));
        return check_impl(0, what, file, line);
    }
    snprintf(what, sizeof what, "%s returned %s (%d), expected %s", expr, status_str(reply[0]), (int)reply[0],
             status_str(want));
    if (!check_impl(reply[0] == want, what, file, line)) return 0;
    if (want == CHORUS_OK) return 1;
    snprintf(what, sizeof what, "%s: chorus_last_error() is non-empty after the failure", expr);
    return check_impl(reply[1] != 0, what, file, line);
}

#define EXPECT_ISOLATED(fn, arg, want) expect_isolated_impl((fn), (arg), (want), #fn, __FILE__, __LINE__)

/* ---- Synthetic data: two clusters ---------------------------------------------------------------
 * Cluster A: users 1..21 and items 1000..1009. Cluster B: users 101..120 and items 2000..2009.
 * The user with in-cluster index j sees item 0 of the group and 6 of items 1..9: it skips the three
 * items 1 + (j + s) % 9, s = 0, 1, 2. So every user has 3 unseen in-cluster items, item 1000 is the
 * most popular item (21 users), item 2000 the second (20 users), all others 13 or 14 users. */

#define N_ITEMS_PER_CLUSTER 10
#define N_ITEMS 20
#define N_USERS_A 21
#define N_USERS_B 20
#define N_USERS (N_USERS_A + N_USERS_B)
#define SEEN_PER_USER 7
#define MAX_INTERACTIONS 512
#define COLD_USER ((int64_t)999999)
#define UNKNOWN_ITEM ((int64_t)777777)
#define TOP_POPULAR_ITEM ((int64_t)1000)
#define T0 ((int64_t)1700000000)

static int64_t g_users[N_USERS];
static int64_t g_items[N_ITEMS];
static int64_t d_user[MAX_INTERACTIONS], d_item[MAX_INTERACTIONS], d_time[MAX_INTERACTIONS];
static float d_weight[MAX_INTERACTIONS];
static size_t d_n;

static int64_t user_id(int cluster, int j) { return cluster == 0 ? 1 + j : 101 + j; }
static int64_t item_id(int cluster, int i) { return (cluster == 0 ? 1000 : 2000) + i; }
static int user_cluster(int64_t u) { return u < 100 ? 0 : 1; }
static int item_cluster(int64_t it) { return it < 2000 ? 0 : 1; }
static int is_dataset_item(int64_t it) {
    return (it >= 1000 && it < 1000 + N_ITEMS_PER_CLUSTER) || (it >= 2000 && it < 2000 + N_ITEMS_PER_CLUSTER);
}

static int skips(int j, int i) {
    int s;
    if (i == 0) return 0;
    for (s = 0; s < 3; s++)
        if (1 + (j + s) % 9 == i) return 1;
    return 0;
}

static void build_data(void) {
    int c, j, i, nu = 0;
    d_n = 0;
    for (c = 0; c < 2; c++) {
        int n_users = c == 0 ? N_USERS_A : N_USERS_B;
        for (j = 0; j < n_users; j++) {
            g_users[nu++] = user_id(c, j);
            for (i = 0; i < N_ITEMS_PER_CLUSTER; i++) {
                if (skips(j, i)) continue;
                d_user[d_n] = user_id(c, j);
                d_item[d_n] = item_id(c, i);
                d_weight[d_n] = 1.0f;
                /* Each user's items in a user-specific order, so the latest (held-out) items vary. */
                d_time[d_n] = T0 + (int64_t)((nu - 1) * 10 + (i * 3 + j) % 10) * 60;
                d_n++;
            }
        }
    }
    for (i = 0; i < N_ITEMS_PER_CLUSTER; i++) {
        g_items[i] = item_id(0, i);
        g_items[N_ITEMS_PER_CLUSTER + i] = item_id(1, i);
    }
}

static int has_seen(int64_t user, int64_t item) {
    size_t n;
    for (n = 0; n < d_n; n++)
        if (d_user[n] == user && d_item[n] == item) return 1;
    return 0;
}

static int contains(const int64_t *set, size_t n, int64_t v) {
    size_t i;
    for (i = 0; i < n; i++)
        if (set[i] == v) return 1;
    return 0;
}

/* ---- Output helpers ----------------------------------------------------------------------------- */

#define MAX_AGENTS 16
#define MAX_BATCH 128
#define MAX_K N_ITEMS
#define MAX_SLOTS (MAX_BATCH * MAX_K)

typedef struct recs {
    size_t n, k, n_agents;
    int64_t ids[MAX_SLOTS];
    float scores[MAX_SLOTS];
    float shares[MAX_SLOTS * MAX_AGENTS];
    uint32_t flags[MAX_BATCH];
} recs;

static size_t g_n_agents; /* of the main engine, set once it exists */

/* Recommends with exact capacities, agent shares and user flags. */
static chorus_status recommend(const chorus_engine *e, const int64_t *users, size_t n, size_t k,
                               const chorus_recommend_params *p, recs *r) {
    size_t i;
    r->n = n;
    r->k = k;
    r->n_agents = g_n_agents;
    for (i = 0; i < MAX_SLOTS; i++) {
        r->ids[i] = 424242;
        r->scores[i] = 12345.0f;
    }
    for (i = 0; i < MAX_BATCH; i++) r->flags[i] = 77;
    return chorus_engine_recommend(e, users, n, k, p, r->ids, r->scores, n * k, r->shares,
                                   n * k * g_n_agents, r->flags);
}

static chorus_status similar(const chorus_engine *e, const int64_t *items, size_t n, size_t k,
                             const chorus_recommend_params *p, recs *r) {
    size_t i;
    r->n = n;
    r->k = k;
    r->n_agents = 0;
    for (i = 0; i < MAX_SLOTS; i++) {
        r->ids[i] = 424242;
        r->scores[i] = 12345.0f;
    }
    return chorus_engine_similar_items(e, items, n, k, p, r->ids, r->scores, n * k);
}

/* Row `row` is well formed: filled slots first (finite scores, non-increasing, no duplicates),
 * then empty slots (CHORUS_NO_ITEM, -INFINITY). Writes the number of filled slots. */
static int row_well_formed(const recs *r, size_t row, size_t *out_filled) {
    const int64_t *ids = r->ids + row * r->k;
    const float *sc = r->scores + row * r->k;
    size_t i, j, filled = 0;
    int ok = 1, empty_seen = 0;
    for (i = 0; i < r->k; i++) {
        if (ids[i] == CHORUS_NO_ITEM) {
            empty_seen = 1;
            if (!(isinf(sc[i]) && sc[i] < 0)) ok = 0;
        } else {
            if (empty_seen) ok = 0;
            if (!isfinite(sc[i])) ok = 0;
            if (i > 0 && ids[i - 1] != CHORUS_NO_ITEM && sc[i] > sc[i - 1]) ok = 0;
            for (j = 0; j < i; j++)
                if (ids[j] == ids[i]) ok = 0;
            filled++;
        }
    }
    if (out_filled) *out_filled = filled;
    return ok;
}

static int all_rows_well_formed(const recs *r) {
    size_t u;
    for (u = 0; u < r->n; u++)
        if (!row_well_formed(r, u, NULL)) return 0;
    return 1;
}

/* Shares of every filled slot sum to ~1; those of empty slots are all 0. */
static int shares_ok(const recs *r) {
    size_t s, a;
    for (s = 0; s < r->n * r->k; s++) {
        double sum = 0.0;
        int zero = 1;
        for (a = 0; a < r->n_agents; a++) {
            float v = r->shares[s * r->n_agents + a];
            if (!isfinite(v)) return 0;
            sum += v;
            if (v != 0.0f) zero = 0;
        }
        if (r->ids[s] == CHORUS_NO_ITEM) {
            if (!zero) return 0;
        } else if (fabs(sum - 1.0) > 1e-3) {
            return 0;
        }
    }
    return 1;
}

static int same_recs(const recs *a, const recs *b, int compare_flags) {
    size_t s;
    if (a->n != b->n || a->k != b->k) return 0;
    for (s = 0; s < a->n * a->k; s++) {
        if (a->ids[s] != b->ids[s]) return 0;
        if (a->ids[s] == CHORUS_NO_ITEM) continue;
        if (fabsf(a->scores[s] - b->scores[s]) > 1e-6f * (1.0f + fabsf(a->scores[s]))) return 0;
    }
    if (compare_flags) {
        for (s = 0; s < a->n; s++)
            if (a->flags[s] != b->flags[s]) return 0;
    }
    return 1;
}

static size_t find_agent(const chorus_engine *e, const char *name) {
    size_t i, n = 0;
    if (chorus_engine_agent_count(e, &n) != CHORUS_OK) return (size_t)-1;
    for (i = 0; i < n; i++) {
        const char *got = NULL;
        if (chorus_engine_agent_info(e, i, &got, NULL) == CHORUS_OK && got && strcmp(got, name) == 0)
            return i;
    }
    return (size_t)-1;
}

static chorus_engine_stats get_stats(const chorus_engine *e) {
    chorus_engine_stats st;
    memset(&st, 0xAB, sizeof st);
    st.struct_size = (uint32_t)sizeof st;
    if (chorus_engine_get_stats(e, &st) != CHORUS_OK) memset(&st, 0xFF, sizeof st);
    return st;
}

/* Two factors for two clusters: more would let ALS memorise this tiny matrix (every unseen item
 * scored ~0, in-cluster or not; a numpy reference ALS does the same), and the known answer is lost. */
#define FIT_FACTORS 2

static chorus_fit_params small_fit_params(void) {
    chorus_fit_params fp;
    chorus_fit_params_init(&fp);
    fp.factors = FIT_FACTORS;
    fp.regularization = 0.1f;
    fp.iterations = 15;
    fp.threads = 2;
    fp.seed = 7;
    return fp;
}

/* ---- Files -------------------------------------------------------------------------------------- */

static char g_dir[512];

static void path_in_dir(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", g_dir, name);
}

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long size;
    *len = 0;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)size + 1);
        if (buf && fread(buf, 1, (size_t)size, f) == (size_t)size) {
            *len = (size_t)size;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

static int write_all(const char *path, const unsigned char *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    int ok;
    if (!f) return 0;
    ok = fwrite(buf, 1, len, f) == len;
    return (fclose(f) == 0) && ok;
}

static int count_dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    if (!d) return -1;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

/* Entries beside `path` in its parent directory whose names start with path's base name. */
static int count_siblings(const char *path) {
    char parent[1024];
    const char *base;
    char *slash;
    DIR *d;
    struct dirent *de;
    int n = 0;
    snprintf(parent, sizeof parent, "%s", path);
    slash = strrchr(parent, '/');
    if (!slash) return -1;
    base = path + (slash - parent) + 1;
    if (slash == parent) slash[1] = '\0';
    else *slash = '\0';
    d = opendir(parent);
    if (!d) return -1;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, base, strlen(base)) == 0 && strcmp(de->d_name, base) != 0) n++;
    closedir(d);
    return n;
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[1024];
    struct stat st;
    if (!d) return;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static uint32_t get_le32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void put_le32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* ---- Callbacks ---------------------------------------------------------------------------------- */

static pthread_mutex_t g_log_mutex = PTHREAD_MUTEX_INITIALIZER;
static long g_log_calls, g_log_bad;
static int g_log_token;

static void log_cb(int32_t level, const char *message, void *user_data) {
    pthread_mutex_lock(&g_log_mutex);
    g_log_calls++;
    if (level < CHORUS_LOG_DEBUG || level > CHORUS_LOG_WARNING || message == NULL || user_data != &g_log_token)
        g_log_bad++;
    pthread_mutex_unlock(&g_log_mutex);
}

typedef struct progress_state {
    long calls;
    long bad;             /* NULL/empty stage or fraction outside [0, 1] */
    long cancel_at_call;  /* return non-zero on this call (1-based); 0 = never */
    double cancel_at_fraction; /* or once fraction >= this (when > 0) */
    int cancelled;
    pthread_t thread;
    int wrong_thread;
} progress_state;

static int32_t progress_cb(const char *stage, double fraction, void *user_data) {
    progress_state *ps = (progress_state *)user_data;
    ps->calls++;
    if (stage == NULL || stage[0] == '\0' || !(fraction >= 0.0 && fraction <= 1.0)) ps->bad++;
    if (!pthread_equal(pthread_self(), ps->thread)) ps->wrong_thread++;
    if ((ps->cancel_at_call > 0 && ps->calls >= ps->cancel_at_call) ||
        (ps->cancel_at_fraction > 0.0 && fraction >= ps->cancel_at_fraction)) {
        ps->cancelled = 1;
        return 1;
    }
    return 0;
}

/* ---- Groups -------------------------------------------------------------------------------------- */

static void test_library(void) {
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

static void test_params_init(void) {
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

static void test_create(void) {
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

static void test_stats_and_add(void) {
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

static void test_before_fit(chorus_engine *e) {
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

/* agent_info with the largest size_t index: out of range, like any other. */
static chorus_status agent_info_index_size_max(const void *e) {
    const char *name = NULL;
    return chorus_engine_agent_info((const chorus_engine *)e, (size_t)-1, &name, NULL);
}

static void test_agents(const chorus_engine *e) {
    size_t n = 0, i;
    const char *name;
    float w, sum = 0.0f;
    int any_positive = 0;

    group_begin("agent_count / agent_info");
    EXPECT(chorus_engine_agent_count(NULL, &n), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_agent_count(e, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_agent_count(e, &n), CHORUS_OK);
    CHECK(n == g_n_agents);
    EXPECT(chorus_engine_agent_info(NULL, 0, &name, &w), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_agent_info(e, 0, NULL, &w), CHORUS_ERR_INVALID_ARGUMENT);
    /* An agent index out of range is an unknown agent. */
    EXPECT(chorus_engine_agent_info(e, n, &name, &w), CHORUS_ERR_NOT_FOUND);
    EXPECT_ISOLATED(agent_info_index_size_max, e, CHORUS_ERR_NOT_FOUND);
    for (i = 0; i < n; i++) {
        const char *again = NULL;
        name = NULL;
        w = NAN;
        EXPECT(chorus_engine_agent_info(e, i, &name, &w), CHORUS_OK);
        CHECK(name != NULL && name[0] != '\0');
        CHECK_MSG(isfinite(w) && w >= 0.0f, "agent weight after fit is finite and >= 0");
        if (isfinite(w)) sum += w;
        if (w > 0.0f) any_positive = 1;
        /* The name is borrowed from the engine: the same pointer (and text) every time. */
        EXPECT(chorus_engine_agent_info(e, i, &again, NULL), CHORUS_OK);
        CHECK(again != NULL && name != NULL && strcmp(again, name) == 0);
    }
    CHECK_MSG(any_positive, "at least one agent has a positive blend weight after fit");
    CHECK_MSG(sum > 0.0f, "the blend weights after fit are not all zero");
    group_end();
}

static void test_fit(chorus_engine *e) {
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
static void test_reproducible(const chorus_engine *e) {
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

static void test_recommend(const chorus_engine *e) {
    recs *r = malloc(sizeof *r), *r2 = malloc(sizeof *r2);
    chorus_recommend_params rp;
    size_t u, s, filled;
    int64_t user = g_users[0];
    int64_t batch[3];
    size_t als = find_agent(e, "als");
    int known_answer = 1, unseen = 1, known_flags = 1, well_formed;

    group_begin("recommend (known answer)");
    if (!r || !r2) { CHECK(0); free(r); free(r2); group_end(); return; }

    /* Every user, k = 3, the blend: the three unseen items of the user's own cluster. */
    EXPECT(recommend(e, g_users, N_USERS, 3, NULL, r), CHORUS_OK);
    well_formed = all_rows_well_formed(r);
    CHECK_MSG(well_formed, "rows well formed (filled first, scores non-increasing, empties -inf)");
    for (u = 0; u < N_USERS; u++) {
        row_well_formed(r, u, &filled);
        if (filled != 3) known_answer = 0;
        for (s = 0; s < 3; s++) {
            int64_t it = r->ids[u * 3 + s];
            if (!is_dataset_item(it) || item_cluster(it) != user_cluster(g_users[u])) known_answer = 0;
            if (has_seen(g_users[u], it)) unseen = 0;
        }
        if (r->flags[u] != CHORUS_USER_KNOWN) known_flags = 0;
    }
    CHECK_MSG(known_answer, "blend: every user's top 3 are items of the user's own cluster");
    CHECK_MSG(unseen, "blend: no already-seen item is recommended by default");
    CHECK_MSG(known_flags, "every known user is flagged CHORUS_USER_KNOWN");
    CHECK_MSG(shares_ok(r), "agent shares of every filled slot sum to 1");
    if (!known_answer) {
        printf("  user %lld got %lld %lld %lld\n", (long long)g_users[N_USERS - 1],
               (long long)r->ids[(N_USERS - 1) * 3], (long long)r->ids[(N_USERS - 1) * 3 + 1],
               (long long)r->ids[(N_USERS - 1) * 3 + 2]);
    }

    /* Batch equals single. */
    {
        int same = 1;
        for (u = 0; u < N_USERS; u++) {
            if (recommend(e, &g_users[u], 1, 3, NULL, r2) != CHORUS_OK) { same = 0; break; }
            for (s = 0; s < 3; s++) {
                if (r2->ids[s] != r->ids[u * 3 + s] ||
                    fabsf(r2->scores[s] - r->scores[u * 3 + s]) > 1e-5f * (1.0f + fabsf(r2->scores[s])))
                    same = 0;
            }
        }
        CHECK_MSG(same, "a batch gives the same rows as one call per user");
    }
    /* A batch large enough to be split across threads (>= 64 users) gives the same rows. */
    {
        int64_t big[2 * N_USERS + 1];
        int same = 1;
        for (u = 0; u < N_USERS; u++) big[u] = big[N_USERS + u] = g_users[u];
        big[2 * N_USERS] = COLD_USER;
        EXPECT(recommend(e, big, 2 * N_USERS + 1, 3, NULL, r2), CHORUS_OK);
        for (s = 0; s < 2 * N_USERS * 3; s++)
            if (r2->ids[s] != r->ids[s % (N_USERS * 3)] ||
                fabsf(r2->scores[s] - r->scores[s % (N_USERS * 3)]) > 1e-5f * (1.0f + fabsf(r->scores[s % (N_USERS * 3)])))
                same = 0;
        CHECK_MSG(same, "a batch of 83 users (threaded) gives the same rows as the batch of 41");
        CHECK(shares_ok(r2) && r2->flags[0] == CHORUS_USER_KNOWN && r2->flags[2 * N_USERS] == CHORUS_USER_COLD_FALLBACK);
    }

    /* One agent alone: "als" has the same known answer; "popularity" works. */
    chorus_recommend_params_init(&rp);
    rp.agent = "als";
    EXPECT(recommend(e, g_users, N_USERS, 3, &rp, r2), CHORUS_OK);
    known_answer = all_rows_well_formed(r2);
    for (u = 0; u < N_USERS; u++)
        for (s = 0; s < 3; s++) {
            int64_t it = r2->ids[u * 3 + s];
            if (!is_dataset_item(it) || item_cluster(it) != user_cluster(g_users[u]) || has_seen(g_users[u], it))
                known_answer = 0;
        }
    CHECK_MSG(known_answer, "agent \"als\": every user's top 3 are unseen items of the own cluster");
    if (als != (size_t)-1) {
        /* With one agent, that agent carries each item's whole score. */
        int all_als = 1;
        for (s = 0; s < N_USERS * 3; s++)
            if (fabsf(r2->shares[s * g_n_agents + als] - 1.0f) > 1e-3f) all_als = 0;
        CHECK_MSG(shares_ok(r2) && all_als, "agent \"als\" alone: its share of every item is 1");
    }
    rp.agent = "popularity";
    EXPECT(recommend(e, &user, 1, 3, &rp, r2), CHORUS_OK);
    CHECK(all_rows_well_formed(r2) && r2->ids[0] != CHORUS_NO_ITEM);
    rp.agent = "no-such-agent";
    EXPECT(recommend(e, &user, 1, 3, &rp, r2), CHORUS_ERR_NOT_FOUND);
    rp.agent = "";
    EXPECT(recommend(e, &user, 1, 3, &rp, r2), CHORUS_ERR_NOT_FOUND);
    rp.agent = "ALS"; /* names are exact */
    EXPECT(recommend(e, &user, 1, 3, &rp, r2), CHORUS_ERR_NOT_FOUND);

    /* Shares and flags are optional. */
    {
        int64_t ids[3];
        float sc[3];
        EXPECT(chorus_engine_recommend(e, &user, 1, 3, NULL, ids, sc, 3, NULL, 0, NULL), CHORUS_OK);
        CHECK(ids[0] == r->ids[0] && ids[1] == r->ids[1] && ids[2] == r->ids[2]);
    }

    /* A mixed batch with a repeated user. */
    batch[0] = g_users[0];
    batch[1] = g_users[N_USERS - 1];
    batch[2] = g_users[0];
    EXPECT(recommend(e, batch, 3, 3, NULL, r2), CHORUS_OK);
    CHECK(r2->ids[0] == r2->ids[6] && r2->ids[1] == r2->ids[7] && r2->ids[2] == r2->ids[8]);
    CHECK(r2->ids[0] == r->ids[0] && r2->ids[3] == r->ids[(N_USERS - 1) * 3]);
    free(r);
    free(r2);
    group_end();
}

/* Counts above SIZE_MAX / 2 wrap negative in a signed view: each must be rejected, never trusted. */
static chorus_status recommend_n_allow_size_max(const void *e) {
    chorus_recommend_params rp;
    int64_t user = 1, allow = 1000, ids[3];
    float sc[3];
    chorus_recommend_params_init(&rp);
    rp.allow_items = &allow;
    rp.n_allow = (size_t)-1;
    return chorus_engine_recommend((const chorus_engine *)e, &user, 1, 3, &rp, ids, sc, 3, NULL, 0, NULL);
}

static chorus_status similar_n_deny_size_max(const void *e) {
    chorus_recommend_params rp;
    int64_t item = 1000, deny = 1001, ids[3];
    float sc[3];
    chorus_recommend_params_init(&rp);
    rp.deny_items = &deny;
    rp.n_deny = (size_t)-1;
    return chorus_engine_similar_items((const chorus_engine *)e, &item, 1, 3, &rp, ids, sc, 3);
}

static chorus_status recommend_n_users_size_max(const void *e) {
    int64_t user = 1, ids[3];
    float sc[3];
    return chorus_engine_recommend((const chorus_engine *)e, &user, (size_t)-1, 3, NULL, ids, sc, 3, NULL, 0, NULL);
}

static chorus_status recommend_k_size_max(const void *e) {
    int64_t user = 1, ids[3];
    float sc[3];
    return chorus_engine_recommend((const chorus_engine *)e, &user, 1, (size_t)-1, NULL, ids, sc, 3, NULL, 0, NULL);
}

static void test_recommend_errors(const chorus_engine *e) {
    recs *r = malloc(sizeof *r);
    chorus_recommend_params rp;
    int64_t users[2] = {g_users[0], g_users[1]};
    int64_t ids[8];
    float sc[8], sh[8 * MAX_AGENTS];
    uint32_t fl[2];
    size_t na = g_n_agents;

    group_begin("recommend (errors)");
    if (!r) { CHECK(0); group_end(); return; }
    EXPECT(chorus_engine_recommend(NULL, users, 2, 3, NULL, ids, sc, 6, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_recommend(e, NULL, 2, 3, NULL, ids, sc, 6, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_recommend(e, users, 2, 3, NULL, NULL, sc, 6, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_recommend(e, users, 2, 3, NULL, ids, NULL, 6, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);

    /* k = 0, k beyond the catalogue; k = number of items is fine. */
    EXPECT(chorus_engine_recommend(e, users, 2, 0, NULL, ids, sc, 6, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(recommend(e, users, 1, N_ITEMS + 1, NULL, r), CHORUS_ERR_INVALID_ARGUMENT);
    /* n_users * k overflows size_t: rejected, nothing written (either status is right here). */
    EXPECT_EITHER(chorus_engine_recommend(e, users, 2, ((size_t)-1) / 2 + 1, NULL, ids, sc, 6, NULL, 0, NULL),
                  CHORUS_ERR_INVALID_ARGUMENT, CHORUS_ERR_BUFFER_TOO_SMALL);
    EXPECT(recommend(e, users, 1, N_ITEMS, NULL, r), CHORUS_OK);

    /* n_users = 0: an empty batch. */
    EXPECT(chorus_engine_recommend(e, users, 0, 3, NULL, ids, sc, 0, NULL, 0, NULL), EMPTY_BATCH_STATUS);

    /* Capacities. */
    EXPECT(chorus_engine_recommend(e, users, 2, 3, NULL, ids, sc, 5, NULL, 0, NULL), CHORUS_ERR_BUFFER_TOO_SMALL);
    EXPECT(chorus_engine_recommend(e, users, 2, 3, NULL, ids, sc, 0, NULL, 0, NULL), CHORUS_ERR_BUFFER_TOO_SMALL);
    EXPECT(chorus_engine_recommend(e, users, 2, 3, NULL, ids, sc, 6, sh, 6 * na - 1, fl), CHORUS_ERR_BUFFER_TOO_SMALL);
    EXPECT(chorus_engine_recommend(e, users, 2, 3, NULL, ids, sc, 6, sh, 6, fl), na > 1 ? CHORUS_ERR_BUFFER_TOO_SMALL : CHORUS_OK);
    EXPECT(chorus_engine_recommend(e, users, 2, 3, NULL, ids, sc, 6, sh, 6 * na, fl), CHORUS_OK);
    /* Larger capacities than needed are fine. */
    EXPECT(chorus_engine_recommend(e, users, 2, 3, NULL, ids, sc, 8, sh, 8 * na, fl), CHORUS_OK);

    /* Params. */
    chorus_recommend_params_init(&rp);
    rp.flags = 0x80u; /* not a CHORUS_RECOMMEND_* bit */
    EXPECT(chorus_engine_recommend(e, users, 2, 3, &rp, ids, sc, 6, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_recommend_params_init(&rp);
    rp.struct_size = 4;
    EXPECT(chorus_engine_recommend(e, users, 2, 3, &rp, ids, sc, 6, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    rp.struct_size = 0;
    EXPECT(chorus_engine_recommend(e, users, 2, 3, &rp, ids, sc, 6, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_recommend_params_init(&rp);
    rp.n_allow = 2; /* allow_items NULL */
    EXPECT(chorus_engine_recommend(e, users, 2, 3, &rp, ids, sc, 6, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_recommend_params_init(&rp);
    rp.n_deny = 2; /* deny_items NULL */
    EXPECT(chorus_engine_recommend(e, users, 2, 3, &rp, ids, sc, 6, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    /* Absurd counts (SIZE_MAX) are rejected with a message, never dereferenced. */
    EXPECT_ISOLATED(recommend_n_allow_size_max, e, CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT_ISOLATED(similar_n_deny_size_max, e, CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT_ISOLATED(recommend_n_users_size_max, e, CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT_ISOLATED(recommend_k_size_max, e, CHORUS_ERR_INVALID_ARGUMENT);
    /* A capacity beyond what is needed, even SIZE_MAX, is fine. */
    EXPECT(chorus_engine_recommend(e, users, 2, 3, NULL, ids, sc, (size_t)-1, NULL, 0, NULL), CHORUS_OK);
    free(r);
    group_end();
}

static void test_cold_user(const chorus_engine *e) {
    recs *r = malloc(sizeof *r), *pop = malloc(sizeof *pop), *one = malloc(sizeof *one);
    chorus_recommend_params rp;
    int64_t cold = COLD_USER;
    int64_t batch[3];
    size_t s, filled = 0;
    int same = 1, deny_ok = 1;

    group_begin("unknown user (cold fallback)");
    if (!r || !pop || !one) { CHECK(0); free(r); free(pop); free(one); group_end(); return; }
    EXPECT(recommend(e, &cold, 1, 5, NULL, r), CHORUS_OK);
    CHECK(r->flags[0] == CHORUS_USER_COLD_FALLBACK);
    CHECK(row_well_formed(r, 0, &filled) && filled == 5);
    CHECK_MSG(r->ids[0] == TOP_POPULAR_ITEM, "a cold user's first item is the most popular one");
    /* The popularity agent alone gives the same items. */
    chorus_recommend_params_init(&rp);
    rp.agent = "popularity";
    EXPECT(recommend(e, &cold, 1, 5, &rp, pop), CHORUS_OK);
    for (s = 0; s < 5; s++)
        if (pop->ids[s] != r->ids[s]) same = 0;
    CHECK_MSG(same, "a cold user gets the popularity agent's items");
    CHECK_MSG(shares_ok(r) && fabsf(r->shares[0] - 1.0f) < 1e-3f,
              "a cold user's items are all the popularity agent's (share 1)");

    /* Mixed batch: flags per user; each row as for that user alone. */
    batch[0] = g_users[0];
    batch[1] = COLD_USER;
    batch[2] = g_users[N_USERS - 1];
    EXPECT(recommend(e, batch, 3, 5, NULL, r), CHORUS_OK);
    CHECK(r->flags[0] == CHORUS_USER_KNOWN && r->flags[1] == CHORUS_USER_COLD_FALLBACK &&
          r->flags[2] == CHORUS_USER_KNOWN);
    same = 1;
    for (s = 0; s < 5; s++)
        if (r->ids[5 + s] != pop->ids[s]) same = 0;
    EXPECT(recommend(e, &batch[0], 1, 5, NULL, one), CHORUS_OK);
    for (s = 0; s < 5; s++)
        if (r->ids[s] != one->ids[s]) same = 0;
    CHECK_MSG(same, "a cold user inside a batch gets the same row as alone");

    /* Deny list applies to the fallback too. */
    {
        int64_t deny = TOP_POPULAR_ITEM;
        chorus_recommend_params_init(&rp);
        rp.deny_items = &deny;
        rp.n_deny = 1;
        EXPECT(recommend(e, &cold, 1, 5, &rp, r), CHORUS_OK);
        CHECK(r->flags[0] == CHORUS_USER_COLD_FALLBACK);
        for (s = 0; s < 5; s++)
            if (r->ids[s] == TOP_POPULAR_ITEM) deny_ok = 0;
        CHECK_MSG(deny_ok && r->ids[0] == pop->ids[1], "deny list applied to a cold user's fallback");
    }
    /* Allow list too. */
    {
        int64_t allow[2] = {2003, 1005};
        chorus_recommend_params_init(&rp);
        rp.allow_items = allow;
        rp.n_allow = 2;
        EXPECT(recommend(e, &cold, 1, 3, &rp, r), CHORUS_OK);
        CHECK(row_well_formed(r, 0, &filled) && filled == 2 && contains(allow, 2, r->ids[0]) &&
              contains(allow, 2, r->ids[1]) && r->ids[2] == CHORUS_NO_ITEM);
    }
    free(r);
    free(pop);
    free(one);
    group_end();
}

static void test_filters(const chorus_engine *e) {
    recs *r = malloc(sizeof *r), *base = malloc(sizeof *base);
    chorus_recommend_params rp;
    int64_t user = g_users[0];
    size_t s, filled = 0;
    int ok;

    group_begin("allow / deny / seen");
    if (!r || !base) { CHECK(0); free(r); free(base); group_end(); return; }
    EXPECT(recommend(e, &user, 1, 3, NULL, base), CHORUS_OK);

    /* Allow-list: only the other cluster's items are allowed. */
    {
        int64_t allow[4] = {2001, 2002, 2003, 2004};
        chorus_recommend_params_init(&rp);
        rp.allow_items = allow;
        rp.n_allow = 4;
        EXPECT(recommend(e, &user, 1, 3, &rp, r), CHORUS_OK);
        ok = row_well_formed(r, 0, &filled) && filled == 3;
        for (s = 0; s < 3; s++)
            if (!contains(allow, 4, r->ids[s])) ok = 0;
        CHECK_MSG(ok, "allow-list: only allowed items are recommended");
        CHECK(shares_ok(r));
    }
    /* Allow-list of one item: one filled slot, then empty slots. */
    {
        int64_t allow = 2005;
        chorus_recommend_params_init(&rp);
        rp.allow_items = &allow;
        rp.n_allow = 1;
        EXPECT(recommend(e, &user, 1, 3, &rp, r), CHORUS_OK);
        CHECK(r->ids[0] == 2005 && r->ids[1] == CHORUS_NO_ITEM && r->ids[2] == CHORUS_NO_ITEM);
        CHECK(isinf(r->scores[1]) && r->scores[1] < 0 && isinf(r->scores[2]) && r->scores[2] < 0);
        CHECK_MSG(shares_ok(r), "shares of empty slots are all 0");
    }
    /* Allow-list of seen items only: nothing to recommend (not an error). */
    {
        int64_t allow[2] = {1000, 0};
        size_t i;
        for (i = 1; i < N_ITEMS_PER_CLUSTER; i++)
            if (has_seen(user, 1000 + (int64_t)i)) { allow[1] = 1000 + (int64_t)i; break; }
        chorus_recommend_params_init(&rp);
        rp.allow_items = allow;
        rp.n_allow = 2;
        EXPECT(recommend(e, &user, 1, 3, &rp, r), CHORUS_OK);
        CHECK_MSG(r->ids[0] == CHORUS_NO_ITEM && r->ids[1] == CHORUS_NO_ITEM && r->ids[2] == CHORUS_NO_ITEM,
                  "allow-list of seen items only: every slot empty");
        rp.flags = CHORUS_RECOMMEND_INCLUDE_SEEN;
        EXPECT(recommend(e, &user, 1, 3, &rp, r), CHORUS_OK);
        CHECK_MSG(row_well_formed(r, 0, &filled) && filled == 2 && contains(allow, 2, r->ids[0]) &&
                      contains(allow, 2, r->ids[1]),
                  "the same allow-list with INCLUDE_SEEN: both items");
    }
    /* Deny-list: deny the usual top 3. */
    {
        chorus_recommend_params_init(&rp);
        rp.deny_items = base->ids;
        rp.n_deny = 3;
        EXPECT(recommend(e, &user, 1, 3, &rp, r), CHORUS_OK);
        ok = row_well_formed(r, 0, &filled) && filled == 3;
        for (s = 0; s < 3; s++)
            if (contains(base->ids, 3, r->ids[s]) || has_seen(user, r->ids[s])) ok = 0;
        CHECK_MSG(ok, "deny-list: denied items never recommended");
    }
    /* Allow and deny together: deny wins. */
    {
        int64_t allow[3] = {2001, 2002, 2003}, deny = 2002;
        chorus_recommend_params_init(&rp);
        rp.allow_items = allow;
        rp.n_allow = 3;
        rp.deny_items = &deny;
        rp.n_deny = 1;
        EXPECT(recommend(e, &user, 1, 3, &rp, r), CHORUS_OK);
        CHECK(row_well_formed(r, 0, &filled) && filled == 2 && r->ids[2] == CHORUS_NO_ITEM);
        CHECK(contains(allow, 3, r->ids[0]) && contains(allow, 3, r->ids[1]) && r->ids[0] != 2002 &&
              r->ids[1] != 2002);
    }
    /* Exclude-seen (default) vs INCLUDE_SEEN, with k = the whole catalogue. */
    {
        int seen_in = 0, all_unseen = 1;
        EXPECT(recommend(e, &user, 1, N_ITEMS, NULL, r), CHORUS_OK);
        CHECK(row_well_formed(r, 0, &filled));
        CHECK_MSG(filled == N_ITEMS - SEEN_PER_USER, "exclude-seen: k = all items fills exactly the unseen ones");
        for (s = 0; s < filled; s++)
            if (has_seen(user, r->ids[s])) all_unseen = 0;
        CHECK(all_unseen);
        chorus_recommend_params_init(&rp);
        rp.flags = CHORUS_RECOMMEND_INCLUDE_SEEN;
        EXPECT(recommend(e, &user, 1, N_ITEMS, &rp, r), CHORUS_OK);
        CHECK(row_well_formed(r, 0, &filled));
        CHECK_MSG(filled == N_ITEMS, "INCLUDE_SEEN: k = all items fills every slot");
        for (s = 0; s < filled; s++)
            if (has_seen(user, r->ids[s])) seen_in++;
        CHECK(seen_in == SEEN_PER_USER);
        /* And with k = 3 the top is within the cluster, seen items allowed. */
        EXPECT(recommend(e, &user, 1, 3, &rp, r), CHORUS_OK);
        ok = 1;
        for (s = 0; s < 3; s++)
            if (!is_dataset_item(r->ids[s]) || item_cluster(r->ids[s]) != user_cluster(user)) ok = 0;
        CHECK_MSG(ok, "INCLUDE_SEEN: top 3 still within the user's cluster");
    }
    free(r);
    free(base);
    group_end();
}

static void test_similar(const chorus_engine *e) {
    recs *r = malloc(sizeof *r), *r2 = malloc(sizeof *r2);
    chorus_recommend_params rp;
    int64_t items[2] = {1003, 2006}, ids[8];
    float sc[8];
    size_t s, filled = 0;
    int ok = 1;

    group_begin("similar_items");
    if (!r || !r2) { CHECK(0); free(r); free(r2); group_end(); return; }
    EXPECT(similar(e, items, 2, 3, NULL, r), CHORUS_OK);
    CHECK(all_rows_well_formed(r));
    for (s = 0; s < 6; s++) {
        int64_t src = items[s / 3];
        if (r->ids[s] == src || !is_dataset_item(r->ids[s]) || item_cluster(r->ids[s]) != item_cluster(src)) ok = 0;
        if (!(r->scores[s] <= 1.0f + 1e-4f && r->scores[s] >= -1.0f - 1e-4f)) ok = 0;
    }
    CHECK_MSG(ok, "similar items are in the item's own cluster, exclude the item, cosine in [-1, 1]");
    /* Batch equals single. */
    EXPECT(similar(e, &items[1], 1, 3, NULL, r2), CHORUS_OK);
    CHECK(r2->ids[0] == r->ids[3] && r2->ids[1] == r->ids[4] && r2->ids[2] == r->ids[5]);
    /* k = all items: the item itself excluded leaves one empty slot. */
    EXPECT(similar(e, items, 1, N_ITEMS, NULL, r2), CHORUS_OK);
    CHECK(row_well_formed(r2, 0, &filled) && filled == N_ITEMS - 1 && !contains(r2->ids, N_ITEMS, items[0]));

    /* Filters. */
    {
        int64_t allow[3] = {2001, 2002, 1007}, deny[1];
        chorus_recommend_params_init(&rp);
        rp.allow_items = allow;
        rp.n_allow = 3;
        EXPECT(similar(e, items, 1, 3, &rp, r2), CHORUS_OK);
        CHECK(row_well_formed(r2, 0, &filled) && filled == 3 && r2->ids[0] == 1007 &&
              contains(allow, 3, r2->ids[1]) && contains(allow, 3, r2->ids[2]));
        deny[0] = r->ids[0];
        chorus_recommend_params_init(&rp);
        rp.deny_items = deny;
        rp.n_deny = 1;
        EXPECT(similar(e, items, 1, 3, &rp, r2), CHORUS_OK);
        CHECK_MSG(!contains(r2->ids, 3, deny[0]) && r2->ids[0] == r->ids[1],
                  "similar_items: deny-list honoured");
        /* agent and flags are ignored. */
        chorus_recommend_params_init(&rp);
        rp.agent = "no-such-agent";
        rp.flags = CHORUS_RECOMMEND_INCLUDE_SEEN;
        EXPECT(similar(e, items, 1, 3, &rp, r2), CHORUS_OK);
        CHECK(r2->ids[0] == r->ids[0] && r2->ids[1] == r->ids[1] && r2->ids[2] == r->ids[2]);
    }

    /* Errors. */
    {
        int64_t unknown[2] = {1003, UNKNOWN_ITEM};
        EXPECT(similar(e, &unknown[1], 1, 3, NULL, r2), CHORUS_ERR_NOT_FOUND);
        EXPECT(similar(e, unknown, 2, 3, NULL, r2), CHORUS_ERR_NOT_FOUND);
    }
    EXPECT(chorus_engine_similar_items(NULL, items, 1, 3, NULL, ids, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_similar_items(e, NULL, 1, 3, NULL, ids, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_similar_items(e, items, 1, 3, NULL, NULL, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_similar_items(e, items, 1, 3, NULL, ids, NULL, 3), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_similar_items(e, items, 1, 0, NULL, ids, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(similar(e, items, 1, N_ITEMS + 1, NULL, r2), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_similar_items(e, items, 0, 3, NULL, ids, sc, 0), EMPTY_BATCH_STATUS);
    EXPECT(chorus_engine_similar_items(e, items, 2, 3, NULL, ids, sc, 5), CHORUS_ERR_BUFFER_TOO_SMALL);
    EXPECT(chorus_engine_similar_items(e, items, 2, 3, NULL, ids, sc, 8), CHORUS_OK);
    chorus_recommend_params_init(&rp);
    rp.struct_size = 4;
    EXPECT(chorus_engine_similar_items(e, items, 1, 3, &rp, ids, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_recommend_params_init(&rp);
    rp.n_allow = 1;
    EXPECT(chorus_engine_similar_items(e, items, 1, 3, &rp, ids, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_recommend_params_init(&rp);
    rp.n_deny = 1;
    EXPECT(chorus_engine_similar_items(e, items, 1, 3, &rp, ids, sc, 3), CHORUS_ERR_INVALID_ARGUMENT);
    free(r);
    free(r2);
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

static void test_threads(const chorus_engine *e) {
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

static void test_serve_during_fit(chorus_engine *e) {
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

static void test_cancel(chorus_engine *e) {
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

/* ---- Snapshots ---------------------------------------------------------------------------------- */

static int engines_agree(const chorus_engine *a, const chorus_engine *b) {
    recs *ra = malloc(sizeof *ra), *rb = malloc(sizeof *rb);
    int64_t probe[N_USERS + 1];
    int64_t items[4] = {1000, 1005, 2000, 2009};
    size_t i;
    int ok = ra && rb;
    chorus_recommend_params rp;
    for (i = 0; i < N_USERS; i++) probe[i] = g_users[i];
    probe[N_USERS] = COLD_USER;
    if (ok) {
        ok = recommend(a, probe, N_USERS + 1, 5, NULL, ra) == CHORUS_OK &&
             recommend(b, probe, N_USERS + 1, 5, NULL, rb) == CHORUS_OK && same_recs(ra, rb, 1);
        for (i = 0; ok && i < ra->n * ra->k * ra->n_agents; i++)
            if (fabsf(ra->shares[i] - rb->shares[i]) > 1e-5f) ok = 0;
    }
    if (ok) {
        chorus_recommend_params_init(&rp);
        rp.agent = "popularity";
        ok = recommend(a, probe, N_USERS + 1, 5, &rp, ra) == CHORUS_OK &&
             recommend(b, probe, N_USERS + 1, 5, &rp, rb) == CHORUS_OK && same_recs(ra, rb, 1);
    }
    if (ok) {
        ok = similar(a, items, 4, 5, NULL, ra) == CHORUS_OK && similar(b, items, 4, 5, NULL, rb) == CHORUS_OK &&
             same_recs(ra, rb, 0);
    }
    free(ra);
    free(rb);
    return ok;
}

static int agents_agree(const chorus_engine *a, const chorus_engine *b) {
    size_t na = 0, nb = 0, i;
    if (chorus_engine_agent_count(a, &na) != CHORUS_OK || chorus_engine_agent_count(b, &nb) != CHORUS_OK || na != nb)
        return 0;
    for (i = 0; i < na; i++) {
        const char *sa = NULL, *sb = NULL;
        float wa = -1, wb = -2;
        if (chorus_engine_agent_info(a, i, &sa, &wa) != CHORUS_OK || chorus_engine_agent_info(b, i, &sb, &wb) != CHORUS_OK)
            return 0;
        if (!sa || !sb || strcmp(sa, sb) != 0 || wa != wb) return 0;
    }
    return 1;
}

static void test_snapshots(chorus_engine *e) {
    char snap[1024], other[1024], bad[1024], missing_dir[1024];
    chorus_engine *l = NULL;
    chorus_engine *sentinel = (chorus_engine *)&g_failed;
    chorus_engine_stats a, b;
    unsigned char *buf;
    size_t len = 0;

    group_begin("save / load");
    path_in_dir(snap, sizeof snap, "model.chorus");
    path_in_dir(other, sizeof other, "other.chorus");
    path_in_dir(bad, sizeof bad, "bad.chorus");
    path_in_dir(missing_dir, sizeof missing_dir, "no-such-dir/model.chorus");

    /* Save: argument and file-system errors. */
    EXPECT(chorus_engine_save(NULL, snap), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_save(e, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_save(e, g_dir), CHORUS_ERR_IO);
    EXPECT(chorus_engine_save(e, missing_dir), CHORUS_ERR_IO);
    CHECK_MSG(count_dir_entries(g_dir) == 0, "failed saves leave no file behind");
    CHECK_MSG(count_siblings(g_dir) == 0, "a failed save over a directory leaves no temporary file beside it");

    /* Round trip. */
    EXPECT(chorus_engine_save(e, snap), CHORUS_OK);
    CHECK_MSG(count_dir_entries(g_dir) == 1, "a save leaves exactly one file (no temporary file)");
    EXPECT(chorus_engine_load(snap, &l), CHORUS_OK);
    CHECK(l != NULL);
    if (l) {
        a = get_stats(e);
        b = get_stats(l);
        CHECK(b.fitted == 1);
        CHECK(a.n_users == b.n_users && a.n_items == b.n_items && a.n_interactions == b.n_interactions);
        CHECK(a.n_model_users == b.n_model_users && a.n_model_items == b.n_model_items && a.model_bytes == b.model_bytes);
        CHECK_MSG(agents_agree(e, l), "loaded engine: same agents and blend weights");
        CHECK_MSG(engines_agree(e, l), "loaded engine: identical recommendations, shares, flags, similar items");
        /* The loaded engine keeps working: more data, a new fit. */
        {
            int64_t nu[3] = {700, 700, 700}, ni[3] = {2001, 2002, 2003};
            chorus_fit_params fp = small_fit_params();
            EXPECT(chorus_engine_add_interactions(l, nu, ni, NULL, NULL, 3), CHORUS_OK);
            EXPECT(chorus_engine_fit(l, &fp), CHORUS_OK);
            CHECK(get_stats(l).n_model_users == a.n_users + 1);
        }
        /* Saving over an existing snapshot leaves a valid file: the new one. */
        EXPECT(chorus_engine_save(l, snap), CHORUS_OK);
        CHECK_MSG(count_dir_entries(g_dir) == 1, "a save over a file leaves exactly one file");
        chorus_engine_free(l);
        l = NULL;
        EXPECT(chorus_engine_load(snap, &l), CHORUS_OK);
        CHECK_MSG(l != NULL && get_stats(l).n_users == a.n_users + 1, "the overwritten file holds the new engine");
        chorus_engine_free(l);
        l = NULL;
    }
    /* The same engine saved twice gives loadable files that agree. */
    EXPECT(chorus_engine_save(e, other), CHORUS_OK);
    EXPECT(chorus_engine_save(e, other), CHORUS_OK);
    EXPECT(chorus_engine_load(other, &l), CHORUS_OK);
    if (l) {
        CHECK(engines_agree(e, l));
        chorus_engine_free(l);
        l = NULL;
    }

    /* An engine with interactions but no model round-trips too, and is still unfitted. */
    {
        chorus_engine *u = NULL;
        char path[1024];
        int64_t user = g_users[0];
        recs *r = malloc(sizeof *r);
        path_in_dir(path, sizeof path, "unfitted.chorus");
        EXPECT(chorus_engine_create(NULL, &u), CHORUS_OK);
        if (u && r) {
            chorus_fit_params fp = small_fit_params();
            EXPECT(chorus_engine_add_interactions(u, d_user, d_item, d_weight, d_time, d_n), CHORUS_OK);
            EXPECT(chorus_engine_save(u, path), CHORUS_OK);
            chorus_engine_free(u);
            u = NULL;
            EXPECT(chorus_engine_load(path, &u), CHORUS_OK);
            CHECK(u != NULL);
            if (u) {
                b = get_stats(u);
                CHECK(b.fitted == 0 && b.n_users == N_USERS && b.n_items == N_ITEMS && b.n_interactions == d_n);
                EXPECT(recommend(u, &user, 1, 3, NULL, r), CHORUS_ERR_NOT_FITTED);
                EXPECT(chorus_engine_fit(u, &fp), CHORUS_OK);
                EXPECT(recommend(u, &user, 1, 3, NULL, r), CHORUS_OK);
            }
        }
        chorus_engine_free(u);
        free(r);
    }

    /* Load: argument and file-system errors. */
    EXPECT(chorus_engine_load(NULL, &l), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_load(other, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    l = sentinel;
    EXPECT(chorus_engine_load(missing_dir, &l), CHORUS_ERR_NOT_FOUND);
    CHECK_MSG(l == NULL, "*out_engine is NULL after a failed load (missing)");
    path_in_dir(bad, sizeof bad, "no-such-file.chorus");
    l = sentinel;
    EXPECT(chorus_engine_load(bad, &l), CHORUS_ERR_NOT_FOUND);
    CHECK(l == NULL);
    l = sentinel;
    EXPECT(chorus_engine_load(g_dir, &l), CHORUS_ERR_IO);
    CHECK_MSG(l == NULL, "*out_engine is NULL after a failed load (directory)");

    /* Load: not snapshots, truncated, corrupted, newer. */
    path_in_dir(bad, sizeof bad, "bad.chorus");
    buf = read_all(other, &len);
    CHECK_MSG(buf != NULL && len > SNAPSHOT_VERSION_OFFSET + 8, "the snapshot can be read back");
    if (buf && len > SNAPSHOT_VERSION_OFFSET + 8) {
        static const char text[] = "this is not a chorus snapshot, just some text in a file\n";
        unsigned char *copy = malloc(len);
        size_t cuts[6];
        size_t c;
        uint32_t version = get_le32(buf + SNAPSHOT_VERSION_OFFSET);

        CHECK(write_all(bad, (const unsigned char *)text, sizeof text - 1));
        l = sentinel;
        EXPECT(chorus_engine_load(bad, &l), CHORUS_ERR_FORMAT);
        CHECK_MSG(l == NULL, "*out_engine is NULL after a failed load (format)");
        CHECK(write_all(bad, (const unsigned char *)"", 0));
        EXPECT(chorus_engine_load(bad, &l), CHORUS_ERR_FORMAT);
        /* A file as long as a snapshot but of zeros. */
        if (copy) {
            memset(copy, 0, len);
            CHECK(write_all(bad, copy, len));
            EXPECT(chorus_engine_load(bad, &l), CHORUS_ERR_FORMAT);
        }

        cuts[0] = 4;
        cuts[1] = SNAPSHOT_VERSION_OFFSET;
        cuts[2] = SNAPSHOT_VERSION_OFFSET + 4;
        cuts[3] = len / 2;
        cuts[4] = len - 4;
        cuts[5] = len - 1;
        for (c = 0; c < 6; c++) {
            char what[128];
            CHECK(write_all(bad, buf, cuts[c]));
            l = sentinel;
            snprintf(what, sizeof what, "load of a snapshot truncated to %lu of %lu bytes is CHORUS_ERR_FORMAT",
                     (unsigned long)cuts[c], (unsigned long)len);
            CHECK_MSG(chorus_engine_load(bad, &l) == CHORUS_ERR_FORMAT, what);
            CHECK_MSG(chorus_last_error()[0] != '\0' && l == NULL, "error message set, *out NULL");
            if (l && l != sentinel) chorus_engine_free(l);
        }
        /* Trailing garbage after a valid snapshot. */
        if (copy) {
            unsigned char *longer = malloc(len + 16);
            if (longer) {
                memcpy(longer, buf, len);
                memset(longer + len, 0x5A, 16);
                CHECK(write_all(bad, longer, len + 16));
                l = sentinel;
                EXPECT(chorus_engine_load(bad, &l), CHORUS_ERR_FORMAT);
                if (l && l != sentinel) chorus_engine_free(l);
                free(longer);
            }
        }
        /* One flipped byte: in the middle, in the magic, near the end. */
        if (copy) {
            size_t where[3];
            where[0] = len / 2;
            where[1] = 0;
            where[2] = len - 2;
            for (c = 0; c < 3; c++) {
                char what[128];
                memcpy(copy, buf, len);
                copy[where[c]] ^= 0xFF;
                CHECK(write_all(bad, copy, len));
                l = sentinel;
                snprintf(what, sizeof what, "load of a snapshot with byte %lu of %lu flipped is CHORUS_ERR_FORMAT",
                         (unsigned long)where[c], (unsigned long)len);
                CHECK_MSG(chorus_engine_load(bad, &l) == CHORUS_ERR_FORMAT, what);
                CHECK_MSG(chorus_last_error()[0] != '\0' && l == NULL, "error message set, *out NULL");
                if (l && l != sentinel) chorus_engine_free(l);
            }
        }
        /* Every single-byte flip anywhere in the file is caught: the version bytes as a newer
         * version, everything else as a corruption. */
        if (copy) {
            size_t at, first_bad = (size_t)-1, n_bad = 0;
            chorus_status bad_status = CHORUS_OK;
            char what[160];
            int fd;
            CHECK(write_all(bad, buf, len));
            fd = open(bad, O_WRONLY);
            CHECK(fd >= 0);
            for (at = 0; fd >= 0 && at < len; at++) {
                chorus_status want = (at >= SNAPSHOT_VERSION_OFFSET && at < SNAPSHOT_VERSION_OFFSET + 4)
                                         ? CHORUS_ERR_UNSUPPORTED_VERSION : CHORUS_ERR_FORMAT;
                chorus_status got;
                unsigned char flipped = (unsigned char)(buf[at] ^ 0xFF);
                if (pwrite(fd, &flipped, 1, (off_t)at) != 1) { n_bad++; continue; }
                l = NULL;
                got = chorus_engine_load(bad, &l);
                if ((got != want || l != NULL) && n_bad++ == 0) {
                    first_bad = at;
                    bad_status = got;
                }
                chorus_engine_free(l);
                if (pwrite(fd, &buf[at], 1, (off_t)at) != 1) n_bad++;
            }
            if (fd >= 0) close(fd);
            snprintf(what, sizeof what, "all %lu single-byte flips rejected (%lu not; first at byte %ld: %s)",
                     (unsigned long)len, (unsigned long)n_bad, (long)first_bad, status_str(bad_status));
            CHECK_MSG(n_bad == 0, what);
        }
        /* A newer format version. */
        CHECK_MSG(version >= 1 && version < 1000, "the format version field holds a small positive number");
        if (copy) {
            uint32_t newer[2];
            newer[0] = version + 1;
            newer[1] = 0xFFFFFFFFu;
            for (c = 0; c < 2; c++) {
                char what[128];
                memcpy(copy, buf, len);
                put_le32(copy + SNAPSHOT_VERSION_OFFSET, newer[c]);
                CHECK(write_all(bad, copy, len));
                l = sentinel;
                snprintf(what, sizeof what, "load of a snapshot of format version %lu (this one writes %lu) is "
                         "CHORUS_ERR_UNSUPPORTED_VERSION", (unsigned long)newer[c], (unsigned long)version);
                CHECK_MSG(chorus_engine_load(bad, &l) == CHORUS_ERR_UNSUPPORTED_VERSION, what);
                CHECK_MSG(chorus_last_error()[0] != '\0' && l == NULL, "error message set, *out NULL");
                if (l && l != sentinel) chorus_engine_free(l);
            }
        }
        /* The intact file still loads after all that. */
        CHECK(write_all(bad, buf, len));
        l = NULL;
        EXPECT(chorus_engine_load(bad, &l), CHORUS_OK);
        chorus_engine_free(l);
        l = NULL;
        free(copy);
    }
    free(buf);
    group_end();
}

/* ---- Text encoder ------------------------------------------------------------------------------ */

static float dot_rows(const float *v, size_t a, size_t b, size_t dim) {
    float s = 0;
    size_t i;
    for (i = 0; i < dim; i++) s += v[a * dim + i] * v[b * dim + i];
    return s;
}

static void test_encoder(const chorus_engine *engine) {
    chorus_encoder_params ep;
    chorus_encoder *enc = NULL, *bad = (chorus_encoder *)&ep;
    const char *name = NULL;
    size_t dim = 0, i;
    const char *texts[4] = {"A galactic space opera with rebels and an empire.",
                            "Rebels fight a galactic empire in space.",
                            "Stainless steel frying pan with a glass lid.",
                            "A galactic space opera with rebels and an empire."};
    const char *with_null[2] = {"fine", NULL};
    float *out;
    char missing[600];

    group_begin("encoder");
    EXPECT(chorus_encoder_params_init(NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_encoder_params_init(&ep), CHORUS_OK);
    CHECK(ep.struct_size == sizeof ep && ep.threads == 0 && ep.model_path == NULL && ep.flags == 0);
    EXPECT(chorus_encoder_create(NULL, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    ep.struct_size = 4;
    enc = (chorus_encoder *)1;
    EXPECT(chorus_encoder_create(&ep, &enc), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(enc == NULL);
    chorus_encoder_params_init(&ep);
    ep.flags = 0x80u;
    EXPECT(chorus_encoder_create(&ep, &enc), CHORUS_ERR_INVALID_ARGUMENT);
    /* A path the host names must load: no silent fallback. */
    chorus_encoder_params_init(&ep);
    path_in_dir(missing, sizeof missing, "no-such-model-dir");
    ep.model_path = missing;
    EXPECT(chorus_encoder_create(&ep, &enc), CHORUS_ERR_NOT_FOUND);
    ep.model_path = g_dir; /* exists, but holds no weights */
    EXPECT(chorus_encoder_create(&ep, &enc), CHORUS_ERR_NOT_FOUND);

    /* Defaults: the transformer when its weights are found, the hashing encoder otherwise. */
    EXPECT(chorus_encoder_create(NULL, &enc), CHORUS_OK);
    if (!enc) { CHECK(0); group_end(); return; }
    EXPECT(chorus_encoder_dim(enc, &dim), CHORUS_OK);
    CHECK(dim == 384);
    EXPECT(chorus_encoder_name(enc, &name), CHORUS_OK);
    CHECK(name != NULL && name[0] != '\0');
    printf("       encoder in use: %s\n", name ? name : "(null)");
    EXPECT(chorus_encoder_dim(NULL, &dim), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_encoder_dim(enc, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_encoder_name(enc, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    /* Handles are checked for kind and liveness. */
    EXPECT(chorus_encoder_dim((const chorus_encoder *)engine, &dim), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_encoder_dim(bad, &dim), CHORUS_ERR_INVALID_ARGUMENT);

    out = malloc(4 * 384 * sizeof *out);
    if (!out) { CHECK(0); chorus_encoder_free(enc); group_end(); return; }
    EXPECT(chorus_encoder_encode(NULL, texts, 4, out, 4 * 384), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_encoder_encode(enc, NULL, 4, out, 4 * 384), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_encoder_encode(enc, texts, 4, NULL, 4 * 384), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_encoder_encode(enc, texts, 0, out, 4 * 384), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_encoder_encode(enc, texts, 4, out, 4 * 384 - 1), CHORUS_ERR_BUFFER_TOO_SMALL);
    EXPECT(chorus_encoder_encode(enc, with_null, 2, out, 2 * 384), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_encoder_encode(enc, texts, 4, out, 4 * 384), CHORUS_OK);
    for (i = 0; i < 4; i++) CHECK(fabsf(dot_rows(out, i, i, 384) - 1.0f) < 1e-4f);
    CHECK(fabsf(dot_rows(out, 0, 3, 384) - 1.0f) < 1e-5f);              /* same text, same vector */
    CHECK(dot_rows(out, 0, 1, 384) > dot_rows(out, 0, 2, 384) + 0.1f);  /* related beats unrelated */
    free(out);
    chorus_encoder_free(enc);
    chorus_encoder_free(NULL);
    group_end();
}

/* ---- Item and user texts (content agent) ------------------------------------------------------- */

#define NEW_ITEM ((int64_t)3000)   /* an item known only by its text */
#define TEXT_USER ((int64_t)888888) /* a user known only by a profile text */

static void test_texts(void) {
    chorus_engine_params ep;
    chorus_engine *e = NULL, *loaded = NULL;
    chorus_fit_params fp = small_fit_params();
    chorus_recommend_params rp;
    chorus_engine_stats st;
    const char *name = NULL;
    int64_t ids[N_ITEMS + 1], dup[2] = {1000, 1000}, uid = TEXT_USER, cluster_user = user_id(1, 0);
    const char *texts[N_ITEMS + 1], *with_null[2] = {"fine", NULL}, *two[2] = {"a", "b"};
    const char *profile = "cooking at home: recipes, kitchen, pasta, soup";
    char buf[N_ITEMS][96], path[600], missing[600];
    size_t i, n_agents = 0, n_base = 0, content, slot, filled;
    recs r;
    int new_item_rank = -1, in_cluster = 1;

    group_begin("item / user texts (content agent)");
    /* Engine flags: unknown bits, contradictory bits, a named encoder directory that does not load. */
    chorus_engine_params_init(&ep);
    CHECK(ep.flags == 0 && ep.encoder_path == NULL);
    ep.flags = 0x100u;
    EXPECT(chorus_engine_create(&ep, &e), CHORUS_ERR_INVALID_ARGUMENT);
    ep.flags = CHORUS_ENGINE_REQUIRE_ENCODER | CHORUS_ENGINE_HASHING_ENCODER;
    EXPECT(chorus_engine_create(&ep, &e), CHORUS_ERR_INVALID_ARGUMENT);
    ep.flags = 0;
    path_in_dir(missing, sizeof missing, "no-such-model-dir");
    ep.encoder_path = missing;
    EXPECT(chorus_engine_create(&ep, &e), CHORUS_ERR_NOT_FOUND);
    CHECK(e == NULL);

    /* Cluster 0 items are about space, cluster 1 items about cooking; a new space item has no interactions. */
    for (i = 0; i < N_ITEMS; i++) {
        int c = (int)(i / N_ITEMS_PER_CLUSTER);
        ids[i] = item_id(c, (int)(i % N_ITEMS_PER_CLUSTER));
        snprintf(buf[i], sizeof buf[i], c == 0 ? "space film %zu: rocket galaxy astronaut orbit planet"
                                               : "cooking show %zu: recipe kitchen pasta chef soup", i);
        texts[i] = buf[i];
    }
    ids[N_ITEMS] = NEW_ITEM;
    texts[N_ITEMS] = "a new space film: rocket, galaxy, astronaut, orbit";
    chorus_engine_params_init(&ep);
    ep.flags = CHORUS_ENGINE_HASHING_ENCODER;
    EXPECT(chorus_engine_create(&ep, &e), CHORUS_OK);
    if (!e) { group_end(); return; }
    EXPECT(chorus_engine_add_interactions(e, d_user, d_item, d_weight, d_time, d_n), CHORUS_OK);

    EXPECT(chorus_engine_set_item_texts(NULL, ids, texts, 1), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_set_item_texts(e, NULL, texts, 1), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_set_item_texts(e, ids, NULL, 1), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_set_item_texts(e, ids, texts, 0), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_set_item_texts(e, ids, with_null, 2), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_set_item_texts(e, dup, two, 2), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_set_user_texts(e, NULL, &profile, 1), CHORUS_ERR_INVALID_ARGUMENT);
    st = get_stats(e);
    CHECK(st.n_item_texts == 0 && st.n_user_texts == 0); /* failed calls changed nothing */
    EXPECT(chorus_engine_agent_count(e, &n_base), CHORUS_OK);
    CHECK(n_base >= 2 && n_base < MAX_AGENTS);
    CHECK(find_agent(e, "content") == (size_t)-1);

    EXPECT(chorus_engine_set_item_texts(e, ids, texts, N_ITEMS + 1), CHORUS_OK);
    EXPECT(chorus_engine_set_user_texts(e, &uid, &profile, 1), CHORUS_OK);
    st = get_stats(e);
    CHECK(st.n_item_texts == N_ITEMS + 1 && st.n_user_texts == 1);
    CHECK(st.n_items == N_ITEMS + 1); /* the text-only item joined the catalogue */
    EXPECT(chorus_engine_encoder_name(e, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_encoder_name(e, &name), CHORUS_OK);
    CHECK(name != NULL && strstr(name, "hashing") != NULL);
    EXPECT(chorus_engine_agent_count(e, &n_agents), CHORUS_OK);
    CHECK(n_agents == n_base + 2); /* texts add the content and query agents, last */
    content = find_agent(e, "content");
    CHECK(content == n_base);

    EXPECT(chorus_engine_fit(e, &fp), CHORUS_OK);
    /* The content agent alone: a cluster-1 (cooking) user gets cooking items only, and a cluster-0
     * user gets the new space item above every cooking item. */
    chorus_recommend_params_init(&rp);
    rp.agent = "content";
    g_n_agents = n_agents;
    /* (a user has N_ITEMS_PER_CLUSTER - SEEN_PER_USER unseen items in its cluster) */
    EXPECT(recommend(e, &cluster_user, 1, N_ITEMS_PER_CLUSTER - SEEN_PER_USER, &rp, &r), CHORUS_OK);
    for (slot = 0; slot < N_ITEMS_PER_CLUSTER - SEEN_PER_USER; slot++) in_cluster &= item_cluster(r.ids[slot]) == 1;
    CHECK_MSG(in_cluster, "content recommends a cooking user cooking items");
    cluster_user = user_id(0, 0);
    EXPECT(recommend(e, &cluster_user, 1, N_ITEMS + 1 - SEEN_PER_USER, &rp, &r), CHORUS_OK);
    CHECK(row_well_formed(&r, 0, &filled));
    for (slot = 0; slot < filled; slot++) {
        if (r.ids[slot] == NEW_ITEM) { new_item_rank = (int)slot; break; }
        if (item_cluster(r.ids[slot]) == 1) break;
    }
    CHECK_MSG(new_item_rank >= 0, "the text-only item ranks above every cooking item for a space user");

    /* A user known only by a profile text: cold, but content takes part; alone it gives cooking items. */
    EXPECT(recommend(e, &uid, 1, 5, NULL, &r), CHORUS_OK);
    CHECK(r.flags[0] == CHORUS_USER_COLD_FALLBACK);
    CHECK(shares_ok(&r));
    EXPECT(recommend(e, &uid, 1, 5, &rp, &r), CHORUS_OK);
    in_cluster = 1;
    for (slot = 0; slot < 5; slot++) in_cluster &= item_cluster(r.ids[slot]) == 1 && r.ids[slot] != NEW_ITEM;
    CHECK_MSG(in_cluster, "content recommends the cooking profile cooking items");
    /* The shares buffer must fit all of this engine's agents. */
    EXPECT(chorus_engine_recommend(e, &uid, 1, 5, NULL, r.ids, r.scores, 5, r.shares, 5 * n_agents - 1, NULL),
           CHORUS_ERR_BUFFER_TOO_SMALL);

    /* A query: a cooking user asking for space gets space items from the query agent alone. */
    chorus_recommend_params_init(&rp);
    CHECK(rp.query == NULL && rp.history_items == NULL && rp.n_history == 0 && rp.diversity == 0.0f);
    rp.query = "rocket galaxy astronaut";
    rp.agent = "query";
    cluster_user = user_id(1, 2);
    EXPECT(recommend(e, &cluster_user, 1, 3, &rp, &r), CHORUS_OK);
    in_cluster = 1;
    for (slot = 0; slot < 3; slot++) in_cluster &= item_cluster(r.ids[slot]) == 0 || r.ids[slot] == NEW_ITEM;
    CHECK_MSG(in_cluster, "the query agent answers a space query with space items");
    rp.agent = NULL;
    EXPECT(recommend(e, &cluster_user, 1, 3, &rp, &r), CHORUS_OK);
    CHECK(shares_ok(&r));
    /* An anonymous visitor with a history of cooking items. */
    {
        int64_t visitor = 5555555, hist[3] = {2000, 2002, 2004};
        chorus_recommend_params hp;
        chorus_recommend_params_init(&hp);
        hp.history_items = hist;
        hp.n_history = 3;
        EXPECT(recommend(e, &visitor, 1, 3, &hp, &r), CHORUS_OK);
        CHECK(r.flags[0] == CHORUS_USER_COLD_FALLBACK);
        in_cluster = 1;
        for (slot = 0; slot < 3; slot++) in_cluster &= item_cluster(r.ids[slot]) == 1 && !contains(hist, 3, r.ids[slot]);
        CHECK_MSG(in_cluster, "a cooking history gets unseen cooking items");
        hp.history_items = NULL;
        EXPECT(recommend(e, &visitor, 1, 3, &hp, &r), CHORUS_ERR_INVALID_ARGUMENT);
        hp.n_history = 0;
        hp.diversity = -0.1f;
        EXPECT(recommend(e, &visitor, 1, 3, &hp, &r), CHORUS_ERR_INVALID_ARGUMENT);
        hp.diversity = 1.5f;
        EXPECT(recommend(e, &visitor, 1, 3, &hp, &r), CHORUS_ERR_INVALID_ARGUMENT);
        hp.diversity = NAN;
        EXPECT(recommend(e, &visitor, 1, 3, &hp, &r), CHORUS_ERR_INVALID_ARGUMENT);
        hp.diversity = 0.5f;
        EXPECT(recommend(e, &cluster_user, 1, 3, &hp, &r), CHORUS_OK);
        /* MMR's order: distinct items with finite scores, not necessarily decreasing. */
        CHECK(r.ids[0] != CHORUS_NO_ITEM && r.ids[1] != CHORUS_NO_ITEM && r.ids[2] != CHORUS_NO_ITEM);
        CHECK(r.ids[0] != r.ids[1] && r.ids[0] != r.ids[2] && r.ids[1] != r.ids[2]);
        CHECK(isfinite(r.scores[0]) && isfinite(r.scores[1]) && isfinite(r.scores[2]));
    }
    /* Explanations agree with recommendations. */
    {
        chorus_explanation x;
        float xs[MAX_AGENTS];
        char sentence[512], tiny[4];
        size_t len = 0;
        int64_t top_item;
        EXPECT(chorus_explanation_init(NULL), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_explanation_init(&x), CHORUS_OK);
        CHECK(x.struct_size == sizeof x && x.because_item == CHORUS_NO_ITEM);
        EXPECT(recommend(e, &cluster_user, 1, 3, NULL, &r), CHORUS_OK);
        top_item = r.ids[0];
        EXPECT(chorus_engine_explain(e, cluster_user, top_item, NULL, NULL, NULL, 0, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_explain(NULL, cluster_user, top_item, NULL, &x, NULL, 0, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
        x.struct_size = 8;
        EXPECT(chorus_engine_explain(e, cluster_user, top_item, NULL, &x, NULL, 0, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
        chorus_explanation_init(&x);
        EXPECT(chorus_engine_explain(e, cluster_user, UNKNOWN_ITEM, NULL, &x, NULL, 0, NULL, 0, NULL), CHORUS_ERR_NOT_FOUND);
        EXPECT(chorus_engine_explain(e, cluster_user, top_item, NULL, &x, xs, n_agents - 1, NULL, 0, NULL), CHORUS_ERR_BUFFER_TOO_SMALL);
        EXPECT(chorus_engine_explain(e, cluster_user, top_item, NULL, &x, xs, n_agents, tiny, sizeof tiny, &len), CHORUS_ERR_BUFFER_TOO_SMALL);
        CHECK(len > sizeof tiny);
        EXPECT(chorus_engine_explain(e, cluster_user, top_item, NULL, &x, xs, n_agents, sentence, sizeof sentence, &len), CHORUS_OK);
        CHECK(fabsf(x.score - r.scores[0]) < 1e-5f);
        for (i = 0; i < n_agents; i++) CHECK(fabsf(xs[i] - r.shares[i]) < 1e-5f);
        CHECK(len == strlen(sentence) && strstr(sentence, "is recommended") != NULL);
        CHECK(x.because_item != CHORUS_NO_ITEM && item_cluster(x.because_item) == item_cluster(top_item));
        rp.agent = NULL;
        rp.query = "a rocket to the galaxy";
        EXPECT(chorus_engine_explain(e, COLD_USER, NEW_ITEM, &rp, &x, NULL, 0, NULL, 0, NULL), CHORUS_OK);
        CHECK(strstr(x.matched_terms, "rocket") != NULL && strstr(x.matched_terms, "galaxy") != NULL);
        CHECK(strstr(x.matched_terms, "the") == NULL);
    }

    /* Item facts: the knowledge-graph agent. */
    {
        int64_t fi[2] = {1000, 2000};
        const char *rel[2] = {"director", "director"}, *ent[2] = {"A", "B"}, *bad[2] = {"", "B"}, *nul[2] = {"director", NULL};
        size_t added = 99;
        EXPECT(chorus_engine_add_item_facts(NULL, fi, rel, ent, 2, &added), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_add_item_facts(e, fi, rel, ent, 0, &added), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_add_item_facts(e, fi, bad, ent, 2, &added), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_add_item_facts(e, fi, nul, ent, 2, &added), CHORUS_ERR_INVALID_ARGUMENT);
        CHECK(get_stats(e).n_item_facts == 0);
        EXPECT(chorus_engine_add_item_facts(e, fi, rel, ent, 2, &added), CHORUS_OK);
        CHECK(added == 2);
        EXPECT(chorus_engine_add_item_facts(e, fi, rel, ent, 2, NULL), CHORUS_OK);
        CHECK(get_stats(e).n_item_facts == 2);
    }

    /* The engine's knowledge graph: the facts as triples, shared with every handle to it. */
    {
        chorus_kg *g = NULL, *again = NULL;
        size_t ne = 0, nr = 0, nt = 0, added = 0;
        const char *h[1] = {"A"}, *r1[1] = {"born_in"}, *t1[1] = {"France"};
        EXPECT(chorus_engine_knowledge_graph(NULL, &g), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_knowledge_graph(e, NULL), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_knowledge_graph(e, &g), CHORUS_OK);
        EXPECT(chorus_kg_counts(g, &ne, &nr, &nt), CHORUS_OK);
        CHECK(nt == 2 && nr == 1 && ne == 4); /* item:1000, item:2000, A, B */
        EXPECT(chorus_kg_add_triples(g, h, r1, t1, 1, &added), CHORUS_OK);
        CHECK(added == 1);
        chorus_kg_free(g);
        EXPECT(chorus_engine_knowledge_graph(e, &again), CHORUS_OK);
        EXPECT(chorus_kg_counts(again, NULL, NULL, &nt), CHORUS_OK);
        CHECK(nt == 3);
        chorus_kg_free(again);
    }

    /* Scenarios: defined by name and description; interactions and requests name them. */
    {
        int64_t su = user_id(0, 1), si = item_id(0, 0);
        chorus_recommend_params sp;
        EXPECT(chorus_engine_define_scenario(NULL, "home", "the home feed"), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_define_scenario(e, NULL, "the home feed"), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_define_scenario(e, "home", NULL), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_define_scenario(e, "", "no name"), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_define_scenario(e, "home", "the home feed: what is new and what suits you"), CHORUS_OK);
        EXPECT(chorus_engine_add_scenario_interactions(e, "nope", &su, &si, NULL, NULL, 1), CHORUS_ERR_NOT_FOUND);
        EXPECT(chorus_engine_add_scenario_interactions(e, "home", &su, &si, NULL, NULL, 0), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_add_scenario_interactions(e, "home", &su, &si, NULL, NULL, 1), CHORUS_OK);
        chorus_recommend_params_init(&sp);
        CHECK(sp.scenario == NULL);
        sp.scenario = "nope";
        EXPECT(recommend(e, &su, 1, 3, &sp, &r), CHORUS_ERR_NOT_FOUND);
        sp.scenario = "home";
        EXPECT(recommend(e, &su, 1, 3, &sp, &r), CHORUS_OK);
        CHECK(all_rows_well_formed(&r));
    }

    /* Texts and the content agent survive a snapshot. */
    path_in_dir(path, sizeof path, "texts.chorus");
    EXPECT(chorus_engine_save(e, path), CHORUS_OK);
    EXPECT(chorus_engine_load(path, &loaded), CHORUS_OK);
    if (loaded) {
        recs a, b;
        st = get_stats(loaded);
        CHECK(st.n_item_texts == N_ITEMS + 1 && st.n_user_texts == 1);
        {
            chorus_kg *g = NULL;
            size_t nt = 0;
            EXPECT(chorus_engine_knowledge_graph(loaded, &g), CHORUS_OK);
            EXPECT(chorus_kg_counts(g, NULL, NULL, &nt), CHORUS_OK);
            CHECK(nt == 3); /* the facts and the host's triple, saved with the engine */
            chorus_kg_free(g);
        }
        EXPECT(chorus_engine_agent_count(loaded, &n_agents), CHORUS_OK);
        CHECK(n_agents == n_base + 2);
        EXPECT(recommend(e, &uid, 1, 6, NULL, &a), CHORUS_OK);
        EXPECT(recommend(loaded, &uid, 1, 6, NULL, &b), CHORUS_OK);
        CHECK(same_recs(&a, &b, 1));
        /* Removing a text: an empty string. */
        texts[0] = "";
        EXPECT(chorus_engine_set_item_texts(loaded, ids, texts, 1), CHORUS_OK);
        CHECK(get_stats(loaded).n_item_texts == N_ITEMS);
        chorus_engine_free(loaded);
    }
    g_n_agents = n_base;
    chorus_engine_free(e);
    group_end();
}

/* ---- Knowledge graph ------------------------------------------------------------------------------ */

static int32_t cancel_at_once(const char *stage, double fraction, void *user_data) {
    (void)stage; (void)fraction; (void)user_data;
    return 1;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) { fputs(text, f); fclose(f); }
}

static void test_kg(void) {
    chorus_kg *kg = NULL, *loaded = NULL;
    chorus_kg_train_params tp;
    chorus_kg_metrics km;
    const char *h[6] = {"a", "b", "c", "d", "e", "f"}, *r[6] = {"likes", "likes", "likes", "likes", "likes", "likes"};
    const char *t[6] = {"b", "c", "d", "e", "f", "a"}, *empty[1] = {""};
    char train[600], test[600], bad[600], missing[600], saved[600];
    size_t added = 0, ne = 0, nr = 0, nt = 0, dim = 0;
    float v[64], w[64];

    group_begin("knowledge graph (chorus_kg_*)");
    EXPECT(chorus_kg_create(NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_kg_create(&kg), CHORUS_OK);
    if (!kg) { group_end(); return; }
    EXPECT(chorus_kg_add_triples(kg, h, r, t, 0, &added), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_kg_add_triples(kg, empty, r, t, 1, &added), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_kg_add_triples(kg, h, r, t, 6, &added), CHORUS_OK);
    CHECK(added == 6);
    EXPECT(chorus_kg_add_triples(kg, h, r, t, 6, &added), CHORUS_OK);
    CHECK(added == 0); /* repeats skipped */
    path_in_dir(train, sizeof train, "kg-train.tsv");
    path_in_dir(test, sizeof test, "kg-test.tsv");
    path_in_dir(bad, sizeof bad, "kg-bad.tsv");
    path_in_dir(missing, sizeof missing, "kg-missing.tsv");
    write_file(train, "a\tnear\tc\r\nc\tnear\te\r\nb\tnear\td\r\n");
    write_file(test, "d\tnear\tf\na\tlikes\tb\nzz\tnear\ta\n");
    write_file(bad, "a\tnear\tc\nonly two\tfields\n");
    EXPECT(chorus_kg_load_tsv(kg, missing, &added), CHORUS_ERR_NOT_FOUND);
    EXPECT(chorus_kg_load_tsv(kg, bad, &added), CHORUS_ERR_FORMAT);
    CHECK(strstr(chorus_last_error(), "2") != NULL); /* the line number */
    EXPECT(chorus_kg_load_tsv(kg, train, &added), CHORUS_OK);
    CHECK(added == 3);
    EXPECT(chorus_kg_counts(kg, &ne, &nr, &nt), CHORUS_OK);
    CHECK(ne == 6 && nr == 2 && nt == 9);

    EXPECT(chorus_kg_entity_vector(kg, "a", v, 64, &dim), CHORUS_ERR_NOT_FITTED);
    EXPECT(chorus_kg_train_params_init(&tp), CHORUS_OK);
    tp.model = "no-such-model";
    EXPECT(chorus_kg_train(kg, &tp), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_kg_train_params_init(&tp);
    tp.model = "transe";
    tp.dim = 8; tp.epochs = 20; tp.batch_size = 4; tp.negatives = 4; tp.threads = 2;
    tp.progress = cancel_at_once;
    EXPECT(chorus_kg_train(kg, &tp), CHORUS_ERR_CANCELLED);
    tp.progress = NULL;
    tp.lr_decay_factor = 1.5f;
    EXPECT(chorus_kg_train(kg, &tp), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(chorus_last_error(), "lr_decay_factor") != NULL);
    /* Shared negatives and a decay run; then the plain training the rest of the test uses. */
    tp.lr_decay_factor = 0.5f; tp.lr_decay_epoch = 10; tp.share_negatives = 2;
    EXPECT(chorus_kg_train(kg, &tp), CHORUS_OK);
    EXPECT(chorus_kg_entity_vector(kg, "a", w, 64, &dim), CHORUS_OK);
    tp.lr_decay_factor = 0; tp.lr_decay_epoch = 0; tp.share_negatives = 0;
    /* Leaving known facts out of the negatives: 0 or 1 only; with 6 entities and 4 negatives a
     * draw often names a fact, so the vectors differ from the plain run's. */
    tp.filter_negatives = 2;
    EXPECT(chorus_kg_train(kg, &tp), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(chorus_last_error(), "filter_negatives") != NULL);
    tp.filter_negatives = 1;
    EXPECT(chorus_kg_train(kg, &tp), CHORUS_OK);
    float filtered[64];
    EXPECT(chorus_kg_entity_vector(kg, "a", filtered, 64, &dim), CHORUS_OK);
    tp.filter_negatives = 0;
    EXPECT(chorus_kg_train(kg, &tp), CHORUS_OK);
    EXPECT(chorus_kg_entity_vector(kg, "a", v, 64, &dim), CHORUS_OK);
    CHECK(dim == 8);
    CHECK(memcmp(v, w, 8 * sizeof(float)) != 0); /* the knobs reached the trainer */
    CHECK(memcmp(v, filtered, 8 * sizeof(float)) != 0);
    EXPECT(chorus_kg_entity_vector(kg, "a", v, 4, &dim), CHORUS_ERR_BUFFER_TOO_SMALL);
    EXPECT(chorus_kg_entity_vector(kg, "nobody", v, 64, &dim), CHORUS_ERR_NOT_FOUND);
    EXPECT(chorus_kg_relation_vector(kg, "likes", w, 64, &dim), CHORUS_OK);
    EXPECT(chorus_kg_metrics_init(&km), CHORUS_OK);
    EXPECT(chorus_kg_evaluate_tsv(kg, test, &km), CHORUS_OK);
    CHECK(km.queries == 4 && km.skipped == 1 && km.mrr > 0 && km.mrr <= 1 && km.hits_at_10 >= km.hits_at_1);

    path_in_dir(saved, sizeof saved, "graph.chorus");
    EXPECT(chorus_kg_save(kg, saved), CHORUS_OK);
    EXPECT(chorus_kg_load(saved, &loaded), CHORUS_OK);
    if (loaded) {
        float u[64];
        EXPECT(chorus_kg_entity_vector(loaded, "a", u, 64, &dim), CHORUS_OK);
        CHECK(memcmp(u, v, 8 * sizeof(float)) == 0);
        chorus_kg_free(loaded);
    }
    EXPECT(chorus_kg_load(test, &loaded), CHORUS_ERR_FORMAT); /* not a snapshot */
    chorus_kg_free(kg);
    chorus_kg_free(NULL);
    group_end();
}

static void test_log_callback(void) {
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
    test_threads(e);
    test_serve_during_fit(e);
    test_cancel(e);
    test_snapshots(e);
    test_encoder(e);
    chorus_engine_free(e);
    test_texts();
    test_kg();
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
