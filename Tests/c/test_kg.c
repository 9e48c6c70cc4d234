/*
 * test_kg.c — the standalone knowledge graph (chorus_kg_*): triples, TSV files, training
 * and its knobs, vectors, link-prediction metrics, save / load.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "harness.h"
#include "tests.h"

static int32_t cancel_at_once(const char *stage, double fraction, void *user_data) {
    (void)stage; (void)fraction; (void)user_data;
    return 1;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) { fputs(text, f); fclose(f); }
}

static chorus_status load_kg_and_free(const char *path) {
    chorus_kg *l = NULL;
    chorus_status st = chorus_kg_load(path, &l);
    chorus_status out = (st != CHORUS_OK && l != NULL) ? CHORUS_ERR_INTERNAL : st; /* *out must stay NULL */
    chorus_kg_free(l);
    return out;
}

void test_kg(void) {
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
    /* Every flipped byte and every truncation of the graph's snapshot is refused cleanly. */
    {
        size_t len = 0;
        unsigned char *buf = read_all(saved, &len);
        char scratch[600];
        path_in_dir(scratch, sizeof scratch, "graph-broken.chorus");
        CHECK(buf != NULL && len > 20);
        if (buf && len > 20) CHECK(all_offsets_rejected(scratch, buf, len, load_kg_and_free, "graph snapshot"));
        free(buf);
    }
    chorus_kg_free(kg);
    chorus_kg_free(NULL);
    group_end();
}
