/*
 * harness.h — check bookkeeping and shared helpers of the C host test (Tests/c).
 *
 * The counters, CHECK/EXPECT macros and group lines every test file uses; the forked-child runner
 * for hostile-argument checks (EXPECT_ISOLATED); the temporary directory and its file helpers;
 * the log and progress callbacks several groups install.
 */
#ifndef CHORUS_TESTS_C_HARNESS_H
#define CHORUS_TESTS_C_HARNESS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "chorus.h"

/* An empty batch (n = 0, n_users = 0, n_items = 0) is a bad count: CHORUS_ERR_INVALID_ARGUMENT,
 * and nothing changes. */
#define EMPTY_BATCH_STATUS CHORUS_ERR_INVALID_ARGUMENT

/* ---- Check bookkeeping ------------------------------------------------------------------------ */

extern int g_passed, g_failed;

void group_begin(const char *name);
void group_end(void);
int check_impl(int ok, const char *what, const char *file, int line);

#define CHECK(cond) check_impl((cond) != 0, #cond, __FILE__, __LINE__)
#define CHECK_MSG(cond, msg) check_impl((cond) != 0, (msg), __FILE__, __LINE__)

/* The test's own names for statuses (messages must not depend on the library under test). */
const char *status_str(chorus_status s);

/* Checks a status, and after an expected failure that chorus_last_error() says something. */
int expect_status_impl(chorus_status got, chorus_status want, const char *expr, const char *file, int line);

#define EXPECT(call, want) expect_status_impl((call), (want), #call, __FILE__, __LINE__)

/* Either of two statuses (only where the header does not pin one). */
int expect_either_impl(chorus_status got, chorus_status a, chorus_status b, const char *expr, const char *file,
                       int line);

#define EXPECT_EITHER(call, a, b) expect_either_impl((call), (a), (b), #call, __FILE__, __LINE__)

/* Runs one call in a child process, so that a trap in the library (a Swift precondition failure)
 * on a hostile argument is a failed check rather than the end of the run. The child sends back the
 * status and whether chorus_last_error() was non-empty through a pipe. */
typedef chorus_status (*isolated_fn)(const void *arg);

int expect_isolated_impl(isolated_fn fn, const void *arg, chorus_status want, const char *expr, const char *file,
                         int line);

#define EXPECT_ISOLATED(fn, arg, want) expect_isolated_impl((fn), (arg), (want), #fn, __FILE__, __LINE__)

/* ---- Files ------------------------------------------------------------------------------------ */

/* The run's temporary directory (mkdtemp under $TMPDIR or /tmp), made and removed by main. */
extern char g_dir[512];

void path_in_dir(char *out, size_t cap, const char *name);
/* The whole file in a malloc'ed buffer (free it), its length in *len; NULL if it cannot be read. */
unsigned char *read_all(const char *path, size_t *len);
int write_all(const char *path, const unsigned char *buf, size_t len);
int count_dir_entries(const char *dir);
/* Entries beside `path` in its parent directory whose names start with path's base name. */
int count_siblings(const char *path);
void remove_tree(const char *dir);

/* ---- Callbacks -------------------------------------------------------------------------------- */

/* Counts log lines; a line with a bad level, no message or other user_data than &g_log_token is
 * counted in g_log_bad. Both counters are guarded by g_log_mutex. */
extern pthread_mutex_t g_log_mutex;
extern long g_log_calls, g_log_bad;
extern int g_log_token;

void log_cb(int32_t level, const char *message, void *user_data);

typedef struct progress_state {
    long calls;
    long bad;             /* NULL/empty stage or fraction outside [0, 1] */
    long cancel_at_call;  /* return non-zero on this call (1-based); 0 = never */
    double cancel_at_fraction; /* or once fraction >= this (when > 0) */
    int cancelled;
    pthread_t thread;
    int wrong_thread;
} progress_state;

int32_t progress_cb(const char *stage, double fraction, void *user_data);

#endif
