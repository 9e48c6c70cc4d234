/*
 * harness.c — check bookkeeping and shared helpers of the C host test (see harness.h).
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* ---- Check bookkeeping ------------------------------------------------------------------------ */

int g_passed, g_failed;
static int g_group_checks, g_group_failed;
static const char *g_group = "";

void group_begin(const char *name) {
    g_group = name;
    g_group_checks = 0;
    g_group_failed = 0;
}

void group_end(void) {
    if (g_group_failed == 0)
        printf("[pass] %-28s %3d checks\n", g_group, g_group_checks);
    else
        printf("[FAIL] %-28s %3d checks, %d failed\n", g_group, g_group_checks, g_group_failed);
    fflush(stdout);
}

int check_impl(int ok, const char *what, const char *file, int line) {
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

/* The test's own names for statuses (messages must not depend on the library under test). */
const char *status_str(chorus_status s) {
    static const char *names[] = {"CHORUS_OK", "CHORUS_ERR_INVALID_ARGUMENT", "CHORUS_ERR_NOT_FOUND",
                                  "CHORUS_ERR_BUFFER_TOO_SMALL", "CHORUS_ERR_NOT_FITTED", "CHORUS_ERR_IO",
                                  "CHORUS_ERR_FORMAT", "CHORUS_ERR_UNSUPPORTED_VERSION", "CHORUS_ERR_CANCELLED",
                                  "CHORUS_ERR_OUT_OF_MEMORY", "CHORUS_ERR_INTERNAL"};
    if (s <= 0 && s >= -10) return names[-s];
    return "(unknown status)";
}

/* Checks a status, and after an expected failure that chorus_last_error() says something. */
int expect_status_impl(chorus_status got, chorus_status want, const char *expr, const char *file, int line) {
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

/* Either of two statuses (only where the header does not pin one). */
int expect_either_impl(chorus_status got, chorus_status a, chorus_status b, const char *expr, const char *file,
                       int line) {
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

int expect_isolated_impl(isolated_fn fn, const void *arg, chorus_status want, const char *expr, const char *file,
                         int line) {
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

/* ---- Files ------------------------------------------------------------------------------------ */

char g_dir[512];

void path_in_dir(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", g_dir, name);
}

unsigned char *read_all(const char *path, size_t *len) {
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

int write_all(const char *path, const unsigned char *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    int ok;
    if (!f) return 0;
    ok = fwrite(buf, 1, len, f) == len;
    return (fclose(f) == 0) && ok;
}

int count_dir_entries(const char *dir) {
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
int count_siblings(const char *path) {
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

void remove_tree(const char *dir) {
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

/* ---- Callbacks -------------------------------------------------------------------------------- */

pthread_mutex_t g_log_mutex = PTHREAD_MUTEX_INITIALIZER;
long g_log_calls, g_log_bad;
int g_log_token;

void log_cb(int32_t level, const char *message, void *user_data) {
    pthread_mutex_lock(&g_log_mutex);
    g_log_calls++;
    if (level < CHORUS_LOG_DEBUG || level > CHORUS_LOG_WARNING || message == NULL || user_data != &g_log_token)
        g_log_bad++;
    pthread_mutex_unlock(&g_log_mutex);
}

int32_t progress_cb(const char *stage, double fraction, void *user_data) {
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
