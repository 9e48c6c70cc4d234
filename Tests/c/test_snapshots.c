/*
 * test_snapshots.c — save / load: round trips, and every kind of broken snapshot (missing,
 * directory, not a snapshot, truncated, flipped bytes, trailing garbage, newer format version).
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "fixtures.h"
#include "harness.h"
#include "tests.h"

/* ---- Snapshot layout used by the corruption tests ----------------------------------------------
 * The format-version field: a little-endian uint32 right after the 8-byte magic (confirmed against
 * Sources/ChorusCore/Snapshot*.swift). */
#define SNAPSHOT_VERSION_OFFSET 8

static uint32_t get_le32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void put_le32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

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

static chorus_status load_engine_and_free(const char *path) {
    chorus_engine *l = NULL;
    chorus_status st = chorus_engine_load(path, &l);
    chorus_status out = (st != CHORUS_OK && l != NULL) ? CHORUS_ERR_INTERNAL : st; /* *out must stay NULL */
    chorus_engine_free(l);
    return out;
}

/* The status a load of `buf` (a snapshot of `len` bytes) must give once byte `at` reads `value`:
 * the container's format-version field (bytes 8..11) read as a newer version is
 * CHORUS_ERR_UNSUPPORTED_VERSION; everything else, a lower version (0) included, is a corruption
 * (the header's CRC covers the version, each section's CRC its tag, length and payload). */
static chorus_status status_after_flip(const unsigned char *buf, size_t at, unsigned char value) {
    if (at >= SNAPSHOT_VERSION_OFFSET && at < SNAPSHOT_VERSION_OFFSET + 4) {
        unsigned char v[4];
        memcpy(v, buf + SNAPSHOT_VERSION_OFFSET, 4);
        v[at - SNAPSHOT_VERSION_OFFSET] = value;
        if (get_le32(v) > get_le32(buf + SNAPSHOT_VERSION_OFFSET)) return CHORUS_ERR_UNSUPPORTED_VERSION;
    }
    return CHORUS_ERR_FORMAT;
}

int all_offsets_rejected(const char *scratch, const unsigned char *buf, size_t len, snapshot_loader load,
                         const char *what) {
    static const unsigned char patterns[3] = {0xFF, 0x01, 0x80};
    size_t at, cut, n_bad = 0, first_bad = (size_t)-1, n_loads = 0;
    chorus_status bad_status = CHORUS_OK;
    int p, fd, ok;
    char msg[256];

    /* Flips: the file rewritten in place one byte at a time (and put back). */
    if (!write_all(scratch, buf, len)) return 0;
    fd = open(scratch, O_WRONLY);
    if (fd < 0) return 0;
    for (at = 0; at < len; at++) {
        for (p = 0; p < 3; p++) {
            unsigned char flipped = (unsigned char)(buf[at] ^ patterns[p]);
            chorus_status want = status_after_flip(buf, at, flipped), got;
            if (pwrite(fd, &flipped, 1, (off_t)at) != 1) { n_bad++; continue; }
            got = load(scratch);
            n_loads++;
            if (got != want && n_bad++ == 0) {
                first_bad = at;
                bad_status = got;
            }
        }
        if (pwrite(fd, &buf[at], 1, (off_t)at) != 1) n_bad++;
    }
    /* Truncations: every length from 0 to len - 1. */
    for (cut = len; cut-- > 0;) {
        chorus_status got;
        if (ftruncate(fd, (off_t)cut) != 0) { n_bad++; continue; }
        got = load(scratch);
        n_loads++;
        if (got != CHORUS_ERR_FORMAT && n_bad++ == 0) {
            first_bad = len + cut;
            bad_status = got;
        }
    }
    close(fd);
    ok = n_bad == 0;
    snprintf(msg, sizeof msg, "%s: all %lu flips (3 per byte) and %lu truncations rejected (%lu not; first at %s %ld: %s)",
             what, (unsigned long)(3 * len), (unsigned long)len, (unsigned long)n_bad,
             first_bad >= len ? "truncation to" : "byte", (long)(first_bad >= len ? first_bad - len : first_bad),
             status_str(bad_status));
    CHECK_MSG(ok, msg);
    /* The intact file loads again. */
    ok = write_all(scratch, buf, len) && load(scratch) == CHORUS_OK && ok;
    (void)n_loads;
    return ok;
}

void test_snapshots(chorus_engine *e) {
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
        /* Every flip of every byte (three bit patterns) and every truncation is caught. */
        CHECK(all_offsets_rejected(bad, buf, len, load_engine_and_free, "engine snapshot"));
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
