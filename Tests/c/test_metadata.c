/*
 * test_metadata.c — host metadata (chorus_engine_set_metadata / chorus_engine_metadata): round
 * trips, size queries, every argument error, the key limits, and the values in a snapshot.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tests.h"

static chorus_status load_and_free(const char *path) {
    chorus_engine *l = NULL;
    chorus_status st = chorus_engine_load(path, &l);
    chorus_status out = (st != CHORUS_OK && l != NULL) ? CHORUS_ERR_INTERNAL : st;
    chorus_engine_free(l);
    return out;
}

void test_metadata(void) {
    chorus_engine *e = NULL, *l = NULL;
    const unsigned char value[6] = {'i', 'd', 0, 's', 0xFF, 1};
    unsigned char out[16];
    size_t len = 99;
    char key[64], path[1024], bad[1024];
    char *long_key = malloc(CHORUS_MAX_NAME_BYTES + 2);
    int64_t users[2] = {1, 2}, items[2] = {101, 102};
    unsigned i;

    group_begin("host metadata");
    EXPECT(chorus_engine_create(NULL, &e), CHORUS_OK);
    EXPECT(chorus_engine_add_interactions(e, users, items, NULL, NULL, 2), CHORUS_OK);

    /* Set, size query, read back (bytes with NULs are opaque bytes). */
    EXPECT(chorus_engine_set_metadata(e, "binding.ids", value, sizeof value), CHORUS_OK);
    EXPECT(chorus_engine_metadata(e, "binding.ids", NULL, 0, &len), CHORUS_ERR_BUFFER_TOO_SMALL);
    CHECK(len == sizeof value);
    memset(out, 0xAB, sizeof out);
    EXPECT(chorus_engine_metadata(e, "binding.ids", out, 5, &len), CHORUS_ERR_BUFFER_TOO_SMALL);
    CHECK_MSG(len == sizeof value && out[0] == 0xAB, "too small: the length is given, the buffer left alone");
    EXPECT(chorus_engine_metadata(e, "binding.ids", out, sizeof out, &len), CHORUS_OK);
    CHECK(len == sizeof value && memcmp(out, value, sizeof value) == 0);
    /* Replace, remove, absent keys. */
    EXPECT(chorus_engine_set_metadata(e, "binding.ids", "xy", 2), CHORUS_OK);
    EXPECT(chorus_engine_metadata(e, "binding.ids", out, sizeof out, &len), CHORUS_OK);
    CHECK(len == 2 && memcmp(out, "xy", 2) == 0);
    EXPECT(chorus_engine_set_metadata(e, "binding.ids", NULL, 0), CHORUS_OK);
    len = 7;
    EXPECT(chorus_engine_metadata(e, "binding.ids", out, sizeof out, &len), CHORUS_ERR_NOT_FOUND);
    CHECK(len == 0);
    EXPECT(chorus_engine_set_metadata(e, "never set", NULL, 0), CHORUS_OK);

    /* Argument errors: nothing changes. */
    EXPECT(chorus_engine_set_metadata(NULL, "k", value, 1), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_set_metadata(e, NULL, value, 1), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_set_metadata(e, "", value, 1), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_set_metadata(e, "\xC3\x28", value, 1), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_set_metadata(e, "k", NULL, 1), CHORUS_ERR_INVALID_ARGUMENT);
    /* A length past the limit (or past SSIZE_MAX) is refused before `value` is read. */
    EXPECT(chorus_engine_set_metadata(e, "k", value, (size_t)CHORUS_MAX_METADATA_BYTES + 1), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_set_metadata(e, "k", value, (size_t)-1), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_metadata(e, "k", out, sizeof out, &len), CHORUS_ERR_NOT_FOUND);
    EXPECT(chorus_engine_set_metadata(e, "k", value, 1), CHORUS_OK);
    EXPECT(chorus_engine_metadata(NULL, "k", out, sizeof out, &len), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_metadata(e, NULL, out, sizeof out, &len), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_metadata(e, "k", out, sizeof out, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_metadata(e, "k", NULL, 4, &len), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_metadata(e, "\xFF", out, sizeof out, &len), CHORUS_ERR_INVALID_ARGUMENT);

    /* Keys: CHORUS_MAX_NAME_BYTES accepted, one more refused; CHORUS_MAX_METADATA_KEYS keys at most. */
    if (long_key) {
        memset(long_key, 'k', CHORUS_MAX_NAME_BYTES + 1);
        long_key[CHORUS_MAX_NAME_BYTES + 1] = '\0';
        EXPECT(chorus_engine_set_metadata(e, long_key, value, 1), CHORUS_ERR_INVALID_ARGUMENT);
        long_key[CHORUS_MAX_NAME_BYTES] = '\0';
        EXPECT(chorus_engine_set_metadata(e, long_key, value, 1), CHORUS_OK);
        EXPECT(chorus_engine_set_metadata(e, long_key, NULL, 0), CHORUS_OK);
    }
    {
        int ok = 1;
        for (i = 1; i < CHORUS_MAX_METADATA_KEYS; i++) { /* "k" is the first */
            snprintf(key, sizeof key, "key %u", i);
            ok &= chorus_engine_set_metadata(e, key, &i, sizeof i) == CHORUS_OK;
        }
        CHECK_MSG(ok, "CHORUS_MAX_METADATA_KEYS keys are accepted");
    }
    EXPECT(chorus_engine_set_metadata(e, "one too many", value, 1), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_set_metadata(e, "key 7", value, 2), CHORUS_OK); /* replacing at the limit */
    EXPECT(chorus_engine_set_metadata(e, "key 7", NULL, 0), CHORUS_OK);
    EXPECT(chorus_engine_set_metadata(e, "one more", value, 1), CHORUS_OK);

    /* In a snapshot: every value comes back. */
    path_in_dir(path, sizeof path, "metadata.chorus");
    path_in_dir(bad, sizeof bad, "metadata-bad.chorus");
    EXPECT(chorus_engine_set_metadata(e, "one more", NULL, 0), CHORUS_OK);
    EXPECT(chorus_engine_set_metadata(e, "binding.ids", value, sizeof value), CHORUS_OK);
    EXPECT(chorus_engine_save(e, path), CHORUS_OK);
    EXPECT(chorus_engine_load(path, &l), CHORUS_OK);
    if (l) {
        int ok = 1;
        EXPECT(chorus_engine_metadata(l, "binding.ids", out, sizeof out, &len), CHORUS_OK);
        CHECK(len == sizeof value && memcmp(out, value, sizeof value) == 0);
        for (i = 1; i < CHORUS_MAX_METADATA_KEYS; i++) {
            unsigned got = 0;
            if (i == 7) continue;
            snprintf(key, sizeof key, "key %u", i);
            ok &= chorus_engine_metadata(l, key, &got, sizeof got, &len) == CHORUS_OK && got == i && len == sizeof got;
        }
        CHECK_MSG(ok, "every key comes back from the snapshot with its value");
        EXPECT(chorus_engine_metadata(l, "key 7", out, sizeof out, &len), CHORUS_ERR_NOT_FOUND);
        chorus_engine_free(l);
        l = NULL;
    }
    chorus_engine_free(e);

    /* A small snapshot with metadata: every flipped byte and truncation is refused. */
    EXPECT(chorus_engine_create(NULL, &e), CHORUS_OK);
    EXPECT(chorus_engine_add_interactions(e, users, items, NULL, NULL, 2), CHORUS_OK);
    EXPECT(chorus_engine_set_metadata(e, "binding.ids", value, sizeof value), CHORUS_OK);
    EXPECT(chorus_engine_save(e, path), CHORUS_OK);
    chorus_engine_free(e);
    {
        size_t n = 0;
        unsigned char *buf = read_all(path, &n);
        CHECK(buf != NULL);
        if (buf) CHECK(all_offsets_rejected(bad, buf, n, load_and_free, "engine snapshot with metadata"));
        free(buf);
    }
    free(long_key);
    group_end();
}
