/*
 * test_abi_hygiene.c — the C host test of chorus.h's ABI rules across versions.
 *
 * - struct_size: an input struct from an older (shorter) header is read up to its struct_size only,
 *   the fields it lacks taking their defaults; an output struct is written up to its struct_size
 *   only; the `_init` functions write their struct's first published layout and nothing past it.
 * - handles are tokens, counted: two handles to one engine's knowledge graph (the same token) are
 *   freed independently; a free beyond the count is a no-op; a retired token is never issued again
 *   nor accepted, however many objects follow; a free through the wrong function frees nothing.
 * - strings: each CHORUS_MAX_* limit at its edge; invalid UTF-8 refused in every kind of string
 *   argument; an engine holding strings at the limits saves and loads back whole.
 * - the grown chorus_explanation: one explain call gives the sentence and the agents' names with
 *   the shares; a caller with the 0.1.0 layout gets neither and nothing past its struct_size is
 *   written; the sentence is a per-thread copy; chorus_explanation_init (the function) still writes
 *   the 0.1.0 layout, the macro of that name this header's sizeof.
 * - chorus_engine_recommend_details: the same recommendations as chorus_engine_recommend, with the
 *   names of the agents the shares refer to; every error path (NULLs, counts, buffers, before fit).
 * - one version source: chorus_version() and chorus_version_number() are the header's macros, and
 *   the macros are the VERSION file named by the first argument (`make test-c` passes it).
 *
 * Its data is synthetic: two clusters of users who like two disjoint groups of items.
 *
 * Build (as `make test-c` does):
 *   cc -std=c99 -Wall -Werror -pedantic -Iinclude Tests/c/test_abi_hygiene.c -o build/test_abi_hygiene \
 *      -L.build/release -lchorus -Wl,-rpath,$PWD/.build/release -lm
 * and run as `build/test_abi_hygiene VERSION` (without the argument the VERSION file is not checked).
 * Prints one line per check group and ends with "N passed, M failed"; exits 1 if M > 0.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chorus.h"
#include "harness.h"

/* Checks and groups: the host test's harness (harness.h). */

/* Whether `n` bytes at `p` all equal `byte`. */
static int all_bytes(const void *p, size_t n, unsigned char byte) {
    const unsigned char *b = p;
    size_t i;
    for (i = 0; i < n; i++)
        if (b[i] != byte) return 0;
    return 1;
}

#define FILL 0xAB

/* ---- Synthetic data: two clusters --------------------------------------------------------------
 * Users 1..10 interact with 6 of items 100..109, users 11..20 with 6 of items 200..209. */

#define N_USERS 20
#define PER_USER 6
#define N_INTERACTIONS (N_USERS * PER_USER)

static int64_t d_user[N_INTERACTIONS], d_item[N_INTERACTIONS], d_time[N_INTERACTIONS];

static void make_data(void) {
    int u, j, n = 0;
    for (u = 0; u < N_USERS; u++) {
        int64_t base = u < N_USERS / 2 ? 100 : 200;
        for (j = 0; j < PER_USER; j++) {
            d_user[n] = u + 1;
            d_item[n] = base + (u + j * 3) % 10;
            d_time[n] = 1700000000 + 3600 * j;
            n++;
        }
    }
}

static chorus_fit_params small_fit(void) {
    chorus_fit_params fp;
    chorus_fit_params_init(&fp);
    fp.factors = 4;
    fp.iterations = 3;
    fp.threads = 1;
    return fp;
}

static chorus_engine *new_engine(void) {
    chorus_engine *e = NULL;
    if (chorus_engine_create(NULL, &e) != CHORUS_OK) return NULL;
    if (chorus_engine_add_interactions(e, d_user, d_item, NULL, d_time, N_INTERACTIONS) != CHORUS_OK) {
        chorus_engine_free(e);
        return NULL;
    }
    return e;
}

static chorus_engine *fitted_engine(void) {
    chorus_engine *e = new_engine();
    chorus_fit_params fp = small_fit();
    if (e != NULL && chorus_engine_fit(e, &fp) != CHORUS_OK) {
        chorus_engine_free(e);
        return NULL;
    }
    return e;
}

/* ---- struct_size ------------------------------------------------------------------------------- */

static int g_progress_calls;

static int32_t cancel_at_once(const char *stage, double fraction, void *user_data) {
    (void)stage;
    (void)fraction;
    (void)user_data;
    g_progress_calls++;
    return 1;
}

/* Every one-argument _init function writes its struct's first published layout (all of it for the
 * structs that have not grown since 0.1.0) and not one byte past it. */
#define CHECK_INIT_WRITES(type, init, first_layout)                                          \
    do {                                                                                    \
        struct {                                                                            \
            type p;                                                                         \
            unsigned char after[32];                                                        \
        } buf;                                                                              \
        unsigned char *bytes = (unsigned char *)&buf;                                       \
        memset(&buf, FILL, sizeof buf);                                                     \
        EXPECT(init(&buf.p), CHORUS_OK);                                                    \
        CHECK(buf.p.struct_size == (first_layout));                                         \
        CHECK(all_bytes(bytes + (first_layout), sizeof buf - (first_layout), FILL));        \
        CHECK(chorus_struct_size(#type) == sizeof(type));                                   \
    } while (0)

static void test_init_functions(void) {
    group_begin("_init writes its first layout only");
    CHECK_INIT_WRITES(chorus_engine_params, chorus_engine_params_init, sizeof(chorus_engine_params));
    CHECK_INIT_WRITES(chorus_fit_params, (chorus_fit_params_init), offsetof(chorus_fit_params, agents));
    CHECK_INIT_WRITES(chorus_recommend_params, (chorus_recommend_params_init), offsetof(chorus_recommend_params, request_ids));
    CHECK_INIT_WRITES(chorus_engine_stats, chorus_engine_stats_init, sizeof(chorus_engine_stats));
    CHECK_INIT_WRITES(chorus_encoder_params, chorus_encoder_params_init, sizeof(chorus_encoder_params));
    CHECK_INIT_WRITES(chorus_kg_train_params, chorus_kg_train_params_init, sizeof(chorus_kg_train_params));
    CHECK_INIT_WRITES(chorus_kg_metrics, chorus_kg_metrics_init, sizeof(chorus_kg_metrics));
    /* Grown since 0.1.0: the function of the old name still writes the 0.1.0 layout. */
    CHECK_INIT_WRITES(chorus_explanation, (chorus_explanation_init), offsetof(chorus_explanation, sentence));
    /* Grown (privacy) within 0.3.0: the function writes the layout before the privacy fields. */
    CHECK_INIT_WRITES(chorus_learning_params, (chorus_learning_params_init), offsetof(chorus_learning_params, noise_multiplier));
    group_end();
}

static void test_fit_params_sizes(void) {
    chorus_engine *e = new_engine();
    chorus_fit_params fp;
    struct {
        chorus_fit_params p;
        uint64_t extra;
    } grown;
    unsigned char *exact;
    size_t cut;

    group_begin("struct_size: chorus_fit_params (input)");
    CHECK(e != NULL);
    /* The control: a whole struct with an invalid validation_fraction is refused... */
    fp = small_fit();
    fp.validation_fraction = 0.9f;
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_ERR_INVALID_ARGUMENT);
    /* ...but a struct that ends before validation_fraction never shows it: the default (0.1) is used. */
    fp.struct_size = (uint32_t)offsetof(chorus_fit_params, validation_fraction);
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_OK);

    /* A progress callback that cancels: read from a whole struct, ignored past a shorter one. */
    fp = small_fit();
    fp.progress = cancel_at_once;
    g_progress_calls = 0;
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_ERR_CANCELLED);
    CHECK(g_progress_calls > 0);
    fp.struct_size = (uint32_t)offsetof(chorus_fit_params, progress);
    g_progress_calls = 0;
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_OK);
    CHECK(g_progress_calls == 0);

    /* A struct allocated at exactly its declared size (under ASan a read past it is reported). */
    cut = offsetof(chorus_fit_params, seed);
    exact = malloc(cut);
    CHECK(exact != NULL);
    if (exact != NULL) {
        fp = small_fit();
        fp.struct_size = (uint32_t)cut;
        memcpy(exact, &fp, cut);
        EXPECT(chorus_engine_fit(e, (const chorus_fit_params *)(const void *)exact), CHORUS_OK);
        free(exact);
    }

    /* The bounds: struct_size and the field after it at least, sizeof at most. */
    fp = small_fit();
    fp.struct_size = 0;
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_ERR_INVALID_ARGUMENT);
    fp.struct_size = 4;
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_ERR_INVALID_ARGUMENT);
    fp.struct_size = 7;
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_ERR_INVALID_ARGUMENT);
    /* A size inside the progress pointer (no header ever had it) would copy half a pointer: refused,
     * as every size that is not a multiple of the struct's alignment (found by the api fuzzer
     * through chorus_texts_params). */
    fp.progress = cancel_at_once;
    fp.struct_size = (uint32_t)offsetof(chorus_fit_params, progress) + 4;
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_ERR_INVALID_ARGUMENT);
    fp.struct_size = 12;
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_ERR_INVALID_ARGUMENT);
    fp.progress = NULL;
    fp.struct_size = 8; /* factors only: iterations, threads... take their defaults */
    fp.iterations = 0xFFFFFFFFu;
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_OK);
    memset(&grown, 0, sizeof grown);
    grown.p = small_fit();
    grown.p.struct_size = (uint32_t)sizeof grown;
    EXPECT(chorus_engine_fit(e, &grown.p), CHORUS_ERR_INVALID_ARGUMENT);
    grown.p.struct_size = (uint32_t)sizeof grown.p;
    EXPECT(chorus_engine_fit(e, &grown.p), CHORUS_OK);
    group_end();
    chorus_engine_free(e);
}

/* The 0.3.0 fields of chorus_fit_params: the agents to train and BPR's epochs; a caller with the
 * 0.2.0 layout trains every agent. */
static void test_fit_params_agents(void) {
    chorus_engine *e = new_engine();
    chorus_fit_params fp, old;
    size_t count = 0, i;
    const char *name = NULL;
    const char *refused[] = {"nope", "query", "als,als", "als,,bpr", "content", "kg", "\xff"};
    char seen[64];

    group_begin("chorus_fit_params 0.3.0: agents and bpr_epochs");
    CHECK(e != NULL);
    fp = small_fit();
    CHECK(fp.struct_size == sizeof(chorus_fit_params) && fp.agents == NULL && fp.bpr_epochs == 0);
    fp.agents = "als, session";
    fp.bpr_epochs = 2;
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_OK);
    EXPECT(chorus_engine_agent_count(e, &count), CHORUS_OK);
    seen[0] = '\0';
    for (i = 0; i < count; i++) {
        EXPECT(chorus_engine_agent_info(e, i, &name, NULL), CHORUS_OK);
        strncat(seen, name, sizeof seen - strlen(seen) - 2);
        strcat(seen, " ");
    }
    CHECK(strcmp(seen, "popularity als session ") == 0); /* popularity always, blend order */
    for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        fp.agents = refused[i];
        EXPECT(chorus_engine_fit(e, &fp), CHORUS_ERR_INVALID_ARGUMENT);
    }
    fp.agents = "bpr";
    fp.bpr_epochs = 100001;
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_ERR_INVALID_ARGUMENT);
    /* The same struct cut at the 0.2.0 layout: the fields past it are never read. */
    old = fp;
    old.struct_size = (uint32_t)offsetof(chorus_fit_params, agents);
    old.agents = "nope";
    EXPECT(chorus_engine_fit(e, &old), CHORUS_OK);
    EXPECT(chorus_engine_agent_count(e, &count), CHORUS_OK);
    CHECK(count == 5); /* popularity als bpr itemknn session */
    EXPECT(chorus_fit_params_init_sized(&fp, 7), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_fit_params_init_sized(&fp, sizeof fp + 1), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_fit_params_init_sized(NULL, sizeof fp), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_engine_free(e);
    group_end();
}

static void test_recommend_params_sizes(void) {
    chorus_engine *e = fitted_engine();
    chorus_recommend_params rp;
    int64_t user = 1, ids[3], base_ids[3];
    float scores[3], base_scores[3];

    group_begin("struct_size: chorus_recommend_params (input)");
    CHECK(e != NULL);
    EXPECT(chorus_engine_recommend(e, &user, 1, 3, NULL, base_ids, base_scores, 3, NULL, 0, NULL), CHORUS_OK);
    chorus_recommend_params_init(&rp);
    rp.diversity = 2.0f;    /* invalid */
    rp.scenario = "nope";   /* undefined */
    EXPECT(chorus_engine_recommend(e, &user, 1, 3, &rp, ids, scores, 3, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    rp.struct_size = (uint32_t)offsetof(chorus_recommend_params, diversity);
    EXPECT(chorus_engine_recommend(e, &user, 1, 3, &rp, ids, scores, 3, NULL, 0, NULL), CHORUS_OK);
    CHECK(memcmp(ids, base_ids, sizeof ids) == 0);
    rp.struct_size = (uint32_t)offsetof(chorus_recommend_params, scenario);
    rp.diversity = 0.0f;
    EXPECT(chorus_engine_recommend(e, &user, 1, 3, &rp, ids, scores, 3, NULL, 0, NULL), CHORUS_OK);
    rp.struct_size = (uint32_t)offsetof(chorus_recommend_params, request_ids); /* the 0.1.0 layout */
    EXPECT(chorus_engine_recommend(e, &user, 1, 3, &rp, ids, scores, 3, NULL, 0, NULL), CHORUS_ERR_NOT_FOUND);
    rp.struct_size = (uint32_t)sizeof rp;
    EXPECT(chorus_engine_recommend(e, &user, 1, 3, &rp, ids, scores, 3, NULL, 0, NULL), CHORUS_ERR_NOT_FOUND);
    rp.struct_size = (uint32_t)sizeof rp + 8;
    EXPECT(chorus_engine_recommend(e, &user, 1, 3, &rp, ids, scores, 3, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    rp.struct_size = 4;
    EXPECT(chorus_engine_similar_items(e, &base_ids[0], 1, 3, &rp, ids, scores, 3), CHORUS_ERR_INVALID_ARGUMENT);
    group_end();
    chorus_engine_free(e);
}

/* Sizes that end inside a pointer (no header ever had them) are refused for every input struct with
 * one; chorus_feedback_params (4-byte fields only) takes any multiple of 4. */
static void test_struct_size_alignment(void) {
    chorus_engine *e = fitted_engine();
    chorus_recommend_params rp;
    chorus_texts_params tp;
    chorus_feedback_params fb;
    int64_t user = 1, ids[3], req = 5, item = 1;
    int32_t click = CHORUS_EVENT_CLICK;
    float scores[3];
    const char *text = "a film";

    group_begin("struct_size: multiples of the alignment only");
    CHECK(e != NULL);
    chorus_recommend_params_init(&rp);
    rp.request_ids = &req;
    rp.struct_size = (uint32_t)offsetof(chorus_recommend_params, request_ids) + 4;
    EXPECT(chorus_engine_recommend(e, &user, 1, 3, &rp, ids, scores, 3, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    rp.struct_size = 12;
    EXPECT(chorus_engine_recommend(e, &user, 1, 3, &rp, ids, scores, 3, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    rp.struct_size = (uint32_t)sizeof rp;
    EXPECT(chorus_engine_recommend(e, &user, 1, 3, &rp, ids, scores, 3, NULL, 0, NULL), CHORUS_OK);
    chorus_texts_params_init(&tp);
    tp.struct_size = 12;
    EXPECT(chorus_engine_set_item_texts_ex(e, &item, &text, 1, &tp), CHORUS_ERR_INVALID_ARGUMENT);
    tp.struct_size = (uint32_t)offsetof(chorus_texts_params, progress) + 4;
    EXPECT(chorus_engine_set_user_texts_ex(e, &user, &text, 1, &tp), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_feedback_params_init(&fb);
    fb.struct_size = 10;
    EXPECT(chorus_engine_feedback(e, &user, &item, &click, NULL, NULL, 1, NULL, NULL, &fb), CHORUS_ERR_INVALID_ARGUMENT);
    fb.struct_size = 12; /* struct_size, impression, click: the rest take their defaults */
    EXPECT(chorus_engine_feedback(e, &user, &item, &click, NULL, NULL, 1, NULL, NULL, &fb), CHORUS_OK);
    group_end();
    chorus_engine_free(e);
}

static void test_engine_and_encoder_params_sizes(void) {
    chorus_engine_params ep;
    chorus_encoder_params cp;
    chorus_engine *e = NULL;
    chorus_encoder *enc = NULL;

    group_begin("struct_size: engine and encoder params (input)");
    chorus_engine_params_init(&ep);
    ep.encoder_path = "/nonexistent/chorus/encoder"; /* a path given must load */
    EXPECT(chorus_engine_create(&ep, &e), CHORUS_ERR_NOT_FOUND);
    CHECK(e == NULL);
    ep.struct_size = (uint32_t)offsetof(chorus_engine_params, encoder_path);
    EXPECT(chorus_engine_create(&ep, &e), CHORUS_OK);
    chorus_engine_free(e);
    e = NULL;
    ep.struct_size = 8; /* flags only */
    ep.flags = CHORUS_ENGINE_REQUIRE_ENCODER | CHORUS_ENGINE_HASHING_ENCODER; /* contradictory */
    EXPECT(chorus_engine_create(&ep, &e), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(e == NULL);

    chorus_encoder_params_init(&cp);
    cp.threads = 1;
    cp.model_path = "/nonexistent/chorus/encoder";
    cp.flags = 0x80u; /* not a CHORUS_ENCODER_* bit */
    EXPECT(chorus_encoder_create(&cp, &enc), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(enc == NULL);
    cp.flags = 0;
    cp.struct_size = (uint32_t)offsetof(chorus_encoder_params, model_path); /* threads only */
    EXPECT(chorus_encoder_create(&cp, &enc), CHORUS_OK); /* the search, or the hashing fallback */
    CHECK(enc != NULL);
    chorus_encoder_free(enc);
    cp.struct_size = (uint32_t)sizeof cp + 1;
    enc = NULL;
    EXPECT(chorus_encoder_create(&cp, &enc), CHORUS_ERR_INVALID_ARGUMENT);
    group_end();
}

static void test_kg_sizes(void) {
    const char *heads[4] = {"a", "b", "c", "d"}, *rels[4] = {"r", "r", "s", "s"}, *tails[4] = {"b", "c", "d", "a"};
    chorus_kg *g = NULL;
    chorus_kg_train_params tp;
    chorus_kg_metrics km;

    group_begin("struct_size: kg train params (input), metrics (output)");
    EXPECT(chorus_kg_create(&g), CHORUS_OK);
    EXPECT(chorus_kg_add_triples(g, heads, rels, tails, 4, NULL), CHORUS_OK);
    chorus_kg_train_params_init(&tp);
    tp.model = "distmult";
    tp.dim = 4;
    tp.epochs = 1;
    tp.batch_size = 4;
    tp.negatives = 2;
    tp.threads = 1;
    tp.lr_decay_factor = 5.0f; /* invalid */
    tp.filter_negatives = 7;   /* invalid */
    EXPECT(chorus_kg_train(g, &tp), CHORUS_ERR_INVALID_ARGUMENT);
    tp.struct_size = (uint32_t)offsetof(chorus_kg_train_params, share_negatives);
    EXPECT(chorus_kg_train(g, &tp), CHORUS_OK);
    tp.struct_size = 4;
    EXPECT(chorus_kg_train(g, &tp), CHORUS_ERR_INVALID_ARGUMENT);

    /* Output: nothing shorter than the 0.1.0 layout (all of it today), nothing longer than sizeof. */
    chorus_kg_metrics_init(&km);
    km.struct_size = (uint32_t)sizeof km - 8;
    EXPECT(chorus_kg_evaluate_tsv(g, "/nonexistent/chorus/test.tsv", &km), CHORUS_ERR_INVALID_ARGUMENT);
    km.struct_size = (uint32_t)sizeof km + 8;
    EXPECT(chorus_kg_evaluate_tsv(g, "/nonexistent/chorus/test.tsv", &km), CHORUS_ERR_INVALID_ARGUMENT);
    km.struct_size = (uint32_t)sizeof km;
    EXPECT(chorus_kg_evaluate_tsv(g, "/nonexistent/chorus/test.tsv", &km), CHORUS_ERR_NOT_FOUND);
    chorus_kg_free(g);
    group_end();
}

static void test_stats_sizes(void) {
    chorus_engine *e = fitted_engine();
    struct {
        chorus_engine_stats st;
        unsigned char after[16];
    } s;

    group_begin("struct_size: chorus_engine_stats (output)");
    CHECK(e != NULL);
    memset(&s, FILL, sizeof s);
    chorus_engine_stats_init(&s.st);
    s.st.struct_size = (uint32_t)sizeof s.st - 8;
    EXPECT(chorus_engine_get_stats(e, &s.st), CHORUS_ERR_INVALID_ARGUMENT);
    s.st.struct_size = (uint32_t)sizeof s.st + 8;
    EXPECT(chorus_engine_get_stats(e, &s.st), CHORUS_ERR_INVALID_ARGUMENT);
    s.st.struct_size = (uint32_t)sizeof s.st;
    EXPECT(chorus_engine_get_stats(e, &s.st), CHORUS_OK);
    CHECK(s.st.struct_size == sizeof s.st && s.st.fitted == 1 && s.st.n_interactions == N_INTERACTIONS);
    CHECK(all_bytes(s.after, sizeof s.after, FILL));
    group_end();
    chorus_engine_free(e);
}

/* ---- Explanations ------------------------------------------------------------------------------ */

#define EXPLANATION_V1 offsetof(chorus_explanation, sentence) /* the 0.1.0 layout */
#define UNKNOWN_ITEM ((int64_t)777777)
#define MAX_AGENTS 16

typedef struct {
    chorus_explanation x;
    unsigned char after[32];
} padded_explanation;

static void test_explanation_init(void) {
    padded_explanation b;
    unsigned char *bytes = (unsigned char *)&b;

    group_begin("chorus_explanation_init (grown struct)");
    /* The macro: this header's sizeof, every new field empty. */
    memset(&b, FILL, sizeof b);
    EXPECT(chorus_explanation_init(&b.x), CHORUS_OK);
    CHECK(b.x.struct_size == sizeof b.x && b.x.because_item == CHORUS_NO_ITEM);
    CHECK(b.x.sentence == NULL && b.x.sentence_length == 0 && b.x.agent_count == 0 && b.x.agent_names == NULL);
    CHECK(all_bytes(b.after, sizeof b.after, FILL));
    /* Sized explicitly: exactly that many bytes. */
    memset(&b, FILL, sizeof b);
    EXPECT(chorus_explanation_init_sized(&b.x, EXPLANATION_V1), CHORUS_OK);
    CHECK(b.x.struct_size == EXPLANATION_V1 && b.x.because_item == CHORUS_NO_ITEM);
    CHECK(all_bytes(bytes + EXPLANATION_V1, sizeof b - EXPLANATION_V1, FILL));
    memset(&b, FILL, sizeof b);
    EXPECT(chorus_explanation_init_sized(&b.x, EXPLANATION_V1 - 1), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_explanation_init_sized(&b.x, sizeof b.x + 1), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_explanation_init_sized(&b.x, 0), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_explanation_init_sized(&b.x, (size_t)-1), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(all_bytes(&b, sizeof b, FILL)); /* a refused init writes nothing */
    EXPECT(chorus_explanation_init_sized(NULL, sizeof b.x), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT((chorus_explanation_init)(NULL), CHORUS_ERR_INVALID_ARGUMENT);
    group_end();
}

static void test_explain_one_call(void) {
    chorus_engine *e = fitted_engine(), *unfitted = new_engine();
    padded_explanation b;
    unsigned char *bytes = (unsigned char *)&b;
    float shares[MAX_AGENTS], rec_shares[3 * MAX_AGENTS], sum = 0.0f, scores[3];
    char text[512], sentence[512];
    size_t len = 0, n_agents = 0, i;
    int64_t user = 1, ids[3], item;
    const char *const *names;

    group_begin("explain: one call gives sentence and agents");
    CHECK(e != NULL && unfitted != NULL);
    EXPECT(chorus_engine_agent_count(e, &n_agents), CHORUS_OK);
    CHECK(n_agents > 1 && n_agents <= MAX_AGENTS);
    EXPECT(chorus_engine_recommend(e, &user, 1, 3, NULL, ids, scores, 3, rec_shares, 3 * MAX_AGENTS, NULL), CHORUS_OK);
    item = ids[0];

    memset(&b, FILL, sizeof b);
    chorus_explanation_init(&b.x);
    EXPECT(chorus_engine_explain(e, user, item, NULL, &b.x, shares, MAX_AGENTS, text, sizeof text, &len), CHORUS_OK);
    CHECK(fabsf(b.x.score - scores[0]) < 1e-5f);
    CHECK(b.x.sentence != NULL && b.x.sentence_length == strlen(b.x.sentence) && len == b.x.sentence_length);
    CHECK(b.x.sentence != NULL && strcmp(b.x.sentence, text) == 0 && strstr(text, "is recommended") != NULL);
    CHECK(b.x.agent_count == n_agents && b.x.agent_names != NULL);
    for (i = 0; i < n_agents && i < b.x.agent_count; i++) {
        const char *name = NULL;
        EXPECT(chorus_engine_agent_info(e, i, &name, NULL), CHORUS_OK);
        CHECK(name != NULL && b.x.agent_names[i] != NULL && strcmp(name, b.x.agent_names[i]) == 0);
        CHECK(fabsf(shares[i] - rec_shares[i]) < 1e-5f);
        sum += shares[i];
    }
    CHECK(fabsf(sum - 1.0f) < 1e-4f);
    CHECK(all_bytes(b.after, sizeof b.after, FILL));
    snprintf(sentence, sizeof sentence, "%s", text);
    names = b.x.agent_names;

    /* No buffer at all: the struct alone carries sentence and names. */
    chorus_explanation_init(&b.x);
    EXPECT(chorus_engine_explain(e, user, item, NULL, &b.x, NULL, 0, NULL, 0, NULL), CHORUS_OK);
    CHECK(b.x.sentence != NULL && strcmp(b.x.sentence, sentence) == 0);
    CHECK(b.x.agent_names == names); /* one model's names: one array, for the library's lifetime */

    /* Buffers too small: *out is filled all the same, the buffers are not written. */
    chorus_explanation_init(&b.x);
    memset(shares, FILL, sizeof shares);
    EXPECT(chorus_engine_explain(e, user, item, NULL, &b.x, shares, n_agents - 1, NULL, 0, NULL), CHORUS_ERR_BUFFER_TOO_SMALL);
    CHECK(b.x.agent_count == n_agents && b.x.agent_names == names && fabsf(b.x.score - scores[0]) < 1e-5f);
    CHECK(b.x.sentence != NULL && b.x.sentence_length == strlen(sentence));
    CHECK(all_bytes(shares, sizeof shares, FILL));
    EXPECT(chorus_engine_explain(e, user, item, NULL, &b.x, shares, 0, NULL, 0, NULL), CHORUS_ERR_BUFFER_TOO_SMALL);
    CHECK(b.x.agent_count == n_agents && all_bytes(shares, sizeof shares, FILL));
    chorus_explanation_init(&b.x);
    memset(text, FILL, sizeof text);
    len = 0;
    EXPECT(chorus_engine_explain(e, user, item, NULL, &b.x, shares, MAX_AGENTS, text, 4, &len), CHORUS_ERR_BUFFER_TOO_SMALL);
    CHECK(len == strlen(sentence) && b.x.sentence_length == len);
    CHECK(all_bytes(text, sizeof text, FILL) && all_bytes(shares, sizeof shares, FILL));
    EXPECT(chorus_engine_explain(e, user, item, NULL, &b.x, shares, MAX_AGENTS, text, len, &len), CHORUS_ERR_BUFFER_TOO_SMALL);
    /* The retry the struct asks for succeeds. */
    EXPECT(chorus_engine_explain(e, user, item, NULL, &b.x, shares, b.x.agent_count, text, b.x.sentence_length + 1, &len),
           CHORUS_OK);
    CHECK(strcmp(text, sentence) == 0);

    /* A caller built against 0.1.0: its fields are filled, nothing past them is written. */
    memset(&b, FILL, sizeof b);
    b.x.struct_size = (uint32_t)EXPLANATION_V1;
    EXPECT(chorus_engine_explain(e, user, item, NULL, &b.x, shares, MAX_AGENTS, NULL, 0, NULL), CHORUS_OK);
    CHECK(b.x.struct_size == EXPLANATION_V1 && fabsf(b.x.score - scores[0]) < 1e-5f);
    CHECK(b.x.because_item != (int64_t)0xABABABABABABABABull && b.x.matched_terms[255] == '\0');
    CHECK(all_bytes(bytes + EXPLANATION_V1, sizeof b - EXPLANATION_V1, FILL));
    /* A size that holds the sentence but not the agents. */
    memset(&b, FILL, sizeof b);
    b.x.struct_size = (uint32_t)offsetof(chorus_explanation, agent_count);
    EXPECT(chorus_engine_explain(e, user, item, NULL, &b.x, NULL, 0, NULL, 0, NULL), CHORUS_OK);
    CHECK(b.x.sentence != NULL && strcmp(b.x.sentence, sentence) == 0 && b.x.sentence_length == strlen(sentence));
    CHECK(all_bytes(bytes + offsetof(chorus_explanation, agent_count), sizeof b - offsetof(chorus_explanation, agent_count), FILL));

    /* Failures write nothing past struct_size's own 4 bytes. */
    memset(&b, FILL, sizeof b);
    b.x.struct_size = (uint32_t)sizeof b.x;
    EXPECT(chorus_engine_explain(e, user, UNKNOWN_ITEM, NULL, &b.x, shares, MAX_AGENTS, text, sizeof text, NULL),
           CHORUS_ERR_NOT_FOUND);
    CHECK(all_bytes(bytes + 4, sizeof b - 4, FILL));
    EXPECT(chorus_engine_explain(unfitted, user, item, NULL, &b.x, shares, MAX_AGENTS, NULL, 0, NULL), CHORUS_ERR_NOT_FITTED);
    CHECK(all_bytes(bytes + 4, sizeof b - 4, FILL));
    b.x.struct_size = (uint32_t)EXPLANATION_V1 - 1;
    EXPECT(chorus_engine_explain(e, user, item, NULL, &b.x, NULL, 0, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    b.x.struct_size = (uint32_t)sizeof b.x + 8;
    EXPECT(chorus_engine_explain(e, user, item, NULL, &b.x, NULL, 0, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    b.x.struct_size = 0;
    EXPECT(chorus_engine_explain(e, user, item, NULL, &b.x, NULL, 0, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(all_bytes(bytes + 4, sizeof b - 4, FILL));
    EXPECT(chorus_engine_explain(e, user, item, NULL, NULL, NULL, 0, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    b.x.struct_size = (uint32_t)sizeof b.x;
    EXPECT(chorus_engine_explain(NULL, user, item, NULL, &b.x, NULL, 0, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    group_end();
    chorus_engine_free(unfitted);
    chorus_engine_free(e);
}

/* The sentence is a per-thread copy: another thread's explain leaves this thread's in place. */
typedef struct {
    chorus_engine *engine;
    int64_t user, item;
    chorus_status status;
    const char *sentence;
    char copy[512];
} explain_job;

static void *explain_on_thread(void *arg) {
    explain_job *job = arg;
    chorus_explanation x;
    chorus_explanation_init(&x);
    job->status = chorus_engine_explain(job->engine, job->user, job->item, NULL, &x, NULL, 0, NULL, 0, NULL);
    job->sentence = x.sentence;
    snprintf(job->copy, sizeof job->copy, "%s", x.sentence ? x.sentence : "");
    return NULL;
}

static void test_explain_sentence_per_thread(void) {
    chorus_engine *e = fitted_engine();
    chorus_explanation x;
    explain_job job;
    pthread_t thread;
    char mine[512];
    int64_t user = 1, other = N_USERS, ids[1];
    float scores[1];

    group_begin("explain: the sentence is per thread");
    CHECK(e != NULL);
    EXPECT(chorus_engine_recommend(e, &user, 1, 1, NULL, ids, scores, 1, NULL, 0, NULL), CHORUS_OK);
    chorus_explanation_init(&x);
    EXPECT(chorus_engine_explain(e, user, ids[0], NULL, &x, NULL, 0, NULL, 0, NULL), CHORUS_OK);
    CHECK(x.sentence != NULL);
    snprintf(mine, sizeof mine, "%s", x.sentence ? x.sentence : "");
    memset(&job, 0, sizeof job);
    job.engine = e;
    job.user = other;
    EXPECT(chorus_engine_recommend(e, &other, 1, 1, NULL, &job.item, scores, 1, NULL, 0, NULL), CHORUS_OK);
    CHECK(pthread_create(&thread, NULL, explain_on_thread, &job) == 0 && pthread_join(thread, NULL) == 0);
    CHECK(job.status == CHORUS_OK && job.sentence != NULL && job.sentence != x.sentence);
    CHECK(strstr(job.copy, "is recommended") != NULL && strcmp(job.copy, mine) != 0);
    /* Under ASan a freed or shared buffer would show here. */
    CHECK(x.sentence != NULL && strcmp(x.sentence, mine) == 0);
    group_end();
    chorus_engine_free(e);
}

/* ---- Recommend with details -------------------------------------------------------------------- */

#define JUNK_NAMES ((const char *const *)(void *)&g_passed)
#define JUNK_COUNT ((size_t)12345)

/* Resets the two outputs to junk, so each check sees what the call wrote. */
#define RESET_OUTS() (names = JUNK_NAMES, count = JUNK_COUNT)

static void test_recommend_details(void) {
    chorus_engine *e = fitted_engine(), *unfitted = new_engine();
    int64_t users[2] = {1, N_USERS}, ids[6], plain_ids[6], unknown[1] = {999999};
    float scores[6], plain_scores[6], shares[6 * MAX_AGENTS], plain_shares[6 * MAX_AGENTS];
    uint32_t flags[2] = {7, 7};
    const char *const *names;
    size_t count, n_agents = 0, i;
    chorus_recommend_params rp;
    chorus_explanation x;

    group_begin("recommend_details: agents with the shares");
    CHECK(e != NULL && unfitted != NULL);
    EXPECT(chorus_engine_agent_count(e, &n_agents), CHORUS_OK);
    CHECK(n_agents > 1 && n_agents <= MAX_AGENTS);
    EXPECT(chorus_engine_recommend(e, users, 2, 3, NULL, plain_ids, plain_scores, 6, plain_shares, 6 * n_agents, NULL),
           CHORUS_OK);

    /* Success: the same items, scores and shares as chorus_engine_recommend, and the names. */
    RESET_OUTS();
    EXPECT(chorus_engine_recommend_details(e, users, 2, 3, NULL, ids, scores, 6, shares, 6 * MAX_AGENTS, flags, &names, &count),
           CHORUS_OK);
    CHECK(count == n_agents && names != NULL && names != JUNK_NAMES);
    CHECK(memcmp(ids, plain_ids, sizeof ids) == 0 && memcmp(scores, plain_scores, sizeof scores) == 0);
    CHECK(memcmp(shares, plain_shares, 6 * n_agents * sizeof *shares) == 0);
    CHECK(flags[0] == CHORUS_USER_KNOWN && flags[1] == CHORUS_USER_KNOWN);
    for (i = 0; i < count && i < n_agents; i++) {
        const char *name = NULL;
        EXPECT(chorus_engine_agent_info(e, i, &name, NULL), CHORUS_OK);
        CHECK(names[i] != NULL && name != NULL && strcmp(names[i], name) == 0);
    }
    /* The names of one model are one array for the library's lifetime, as explain's. */
    chorus_explanation_init(&x);
    EXPECT(chorus_engine_explain(e, users[0], ids[0], NULL, &x, NULL, 0, NULL, 0, NULL), CHORUS_OK);
    CHECK(x.agent_names == names && x.agent_count == count);
    /* Shares and flags are optional; the names come all the same. */
    RESET_OUTS();
    EXPECT(chorus_engine_recommend_details(e, users, 2, 3, NULL, ids, scores, 6, NULL, 0, NULL, &names, &count), CHORUS_OK);
    CHECK(count == n_agents && names != NULL && names != JUNK_NAMES);
    RESET_OUTS();
    EXPECT(chorus_engine_recommend_details(e, unknown, 1, 3, NULL, ids, scores, 3, shares, 3 * n_agents, flags, &names, &count),
           CHORUS_OK);
    CHECK(count == n_agents && flags[0] == CHORUS_USER_COLD_FALLBACK);

    /* A shares buffer too small: BUFFER_TOO_SMALL with the count to retry with; nothing written. */
    memset(shares, FILL, sizeof shares);
    memset(ids, FILL, sizeof ids);
    RESET_OUTS();
    EXPECT(chorus_engine_recommend_details(e, users, 2, 3, NULL, ids, scores, 6, shares, 6 * n_agents - 1, NULL, &names, &count),
           CHORUS_ERR_BUFFER_TOO_SMALL);
    CHECK(count == n_agents && names != NULL && names != JUNK_NAMES && names[0] != NULL);
    CHECK(all_bytes(shares, sizeof shares, FILL) && all_bytes(ids, sizeof ids, FILL));
    RESET_OUTS();
    EXPECT(chorus_engine_recommend_details(e, users, 2, 3, NULL, ids, scores, 6, shares, 0, NULL, &names, &count),
           CHORUS_ERR_BUFFER_TOO_SMALL);
    CHECK(count == n_agents);
    /* The retry the count asks for. */
    EXPECT(chorus_engine_recommend_details(e, users, 2, 3, NULL, ids, scores, 6, shares, 6 * count, NULL, &names, &count),
           CHORUS_OK);
    /* The items buffer too small: BUFFER_TOO_SMALL, no names. */
    RESET_OUTS();
    EXPECT(chorus_engine_recommend_details(e, users, 2, 3, NULL, ids, scores, 5, shares, 6 * MAX_AGENTS, NULL, &names, &count),
           CHORUS_ERR_BUFFER_TOO_SMALL);
    CHECK(names == NULL && count == 0);

    /* NULLs and counts: INVALID_ARGUMENT, outputs reset. */
#define EXPECT_DETAILS_FAIL(call, want)                                    \
    do {                                                                   \
        RESET_OUTS();                                                      \
        EXPECT(call, want);                                                \
        CHECK(names == NULL && count == 0);                                \
    } while (0)
    EXPECT_DETAILS_FAIL(chorus_engine_recommend_details(NULL, users, 2, 3, NULL, ids, scores, 6, NULL, 0, NULL, &names, &count),
                        CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT_DETAILS_FAIL(chorus_engine_recommend_details(e, NULL, 2, 3, NULL, ids, scores, 6, NULL, 0, NULL, &names, &count),
                        CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT_DETAILS_FAIL(chorus_engine_recommend_details(e, users, 2, 3, NULL, NULL, scores, 6, NULL, 0, NULL, &names, &count),
                        CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT_DETAILS_FAIL(chorus_engine_recommend_details(e, users, 2, 3, NULL, ids, NULL, 6, NULL, 0, NULL, &names, &count),
                        CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT_DETAILS_FAIL(chorus_engine_recommend_details(e, users, 0, 3, NULL, ids, scores, 6, NULL, 0, NULL, &names, &count),
                        CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT_DETAILS_FAIL(chorus_engine_recommend_details(e, users, 2, 0, NULL, ids, scores, 6, NULL, 0, NULL, &names, &count),
                        CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT_DETAILS_FAIL(chorus_engine_recommend_details(e, users, (size_t)-1, 3, NULL, ids, scores, 6, NULL, 0, NULL, &names, &count),
                        CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT_DETAILS_FAIL(chorus_engine_recommend_details(e, users, 1, 1000, NULL, ids, scores, (size_t)-1, NULL, 0, NULL, &names, &count),
                        CHORUS_ERR_INVALID_ARGUMENT); /* k beyond the catalogue */
    chorus_recommend_params_init(&rp);
    rp.struct_size = 4;
    EXPECT_DETAILS_FAIL(chorus_engine_recommend_details(e, users, 2, 3, &rp, ids, scores, 6, NULL, 0, NULL, &names, &count),
                        CHORUS_ERR_INVALID_ARGUMENT);
    chorus_recommend_params_init(&rp);
    rp.agent = "no-such-agent";
    EXPECT_DETAILS_FAIL(chorus_engine_recommend_details(e, users, 2, 3, &rp, ids, scores, 6, NULL, 0, NULL, &names, &count),
                        CHORUS_ERR_NOT_FOUND);
    /* Before the first fit. */
    EXPECT_DETAILS_FAIL(chorus_engine_recommend_details(unfitted, users, 2, 3, NULL, ids, scores, 6, shares, 6 * MAX_AGENTS, NULL,
                                                        &names, &count),
                        CHORUS_ERR_NOT_FITTED);
#undef EXPECT_DETAILS_FAIL
    /* The two outputs are required. */
    count = JUNK_COUNT;
    EXPECT(chorus_engine_recommend_details(e, users, 2, 3, NULL, ids, scores, 6, NULL, 0, NULL, NULL, &count),
           CHORUS_ERR_INVALID_ARGUMENT);
    names = JUNK_NAMES;
    EXPECT(chorus_engine_recommend_details(e, users, 2, 3, NULL, ids, scores, 6, NULL, 0, NULL, &names, NULL),
           CHORUS_ERR_INVALID_ARGUMENT);
    group_end();
    chorus_engine_free(unfitted);
    chorus_engine_free(e);
}

/* While another thread refits with and without item texts (so the agents come and go), every
 * successful recommend_details call's shares must match the names it returned. */
typedef struct {
    chorus_engine *engine;
    pthread_mutex_t lock;
    int done;
    chorus_status failed;
} refit_job;

#define N_TEXT_ITEMS 20
#define REFITS 6

static void *refit_with_and_without_texts(void *arg) {
    refit_job *job = arg;
    int64_t items[N_TEXT_ITEMS];
    const char *with[N_TEXT_ITEMS], *without[N_TEXT_ITEMS];
    chorus_fit_params fp = small_fit();
    int i, round;
    for (i = 0; i < N_TEXT_ITEMS; i++) {
        items[i] = (i < 10 ? 100 : 200) + i % 10;
        with[i] = i < 10 ? "a quiet film about the sea" : "a loud film about rockets";
        without[i] = "";
    }
    for (round = 0; round < REFITS && job->failed == CHORUS_OK; round++) {
        chorus_status st = chorus_engine_set_item_texts(job->engine, items, round % 2 == 0 ? with : without, N_TEXT_ITEMS);
        if (st == CHORUS_OK) st = chorus_engine_fit(job->engine, &fp);
        if (st != CHORUS_OK) job->failed = st;
    }
    pthread_mutex_lock(&job->lock);
    job->done = 1;
    pthread_mutex_unlock(&job->lock);
    return NULL;
}

static void test_recommend_details_during_refits(void) {
    chorus_engine_params ep;
    refit_job job;
    pthread_t thread;
    int64_t users[2] = {1, N_USERS}, ids[6];
    float scores[6], shares[6 * MAX_AGENTS];
    const char *const *names;
    size_t count, base_count = 0, slot, a;
    int calls = 0, consistent = 1, done = 0, saw_content = 0, saw_base = 0;

    group_begin("recommend_details during refits");
    chorus_engine_params_init(&ep);
    ep.flags = CHORUS_ENGINE_HASHING_ENCODER;
    memset(&job, 0, sizeof job);
    pthread_mutex_init(&job.lock, NULL);
    EXPECT(chorus_engine_create(&ep, &job.engine), CHORUS_OK);
    EXPECT(chorus_engine_add_interactions(job.engine, d_user, d_item, NULL, d_time, N_INTERACTIONS), CHORUS_OK);
    {
        chorus_fit_params fp = small_fit();
        EXPECT(chorus_engine_fit(job.engine, &fp), CHORUS_OK);
    }
    EXPECT(chorus_engine_agent_count(job.engine, &base_count), CHORUS_OK);
    CHECK(pthread_create(&thread, NULL, refit_with_and_without_texts, &job) == 0);
    while (!done) {
        chorus_status st = chorus_engine_recommend_details(job.engine, users, 2, 3, NULL, ids, scores, 6, shares,
                                                           6 * MAX_AGENTS, NULL, &names, &count);
        calls++;
        if (st != CHORUS_OK) {
            consistent = 0;
            printf("  recommend_details returned %d during a refit: %s\n", (int)st, chorus_last_error());
            break;
        }
        /* Each filled slot's shares, read with the stride the call reported, sum to 1. */
        for (slot = 0; slot < 6; slot++) {
            float sum = 0.0f;
            if (ids[slot] == CHORUS_NO_ITEM) continue;
            for (a = 0; a < count; a++) sum += shares[slot * count + a];
            if (fabsf(sum - 1.0f) > 1e-3f) consistent = 0;
        }
        for (a = 0; a < count; a++)
            if (strcmp(names[a], "content") == 0) saw_content = 1;
        if (count == base_count) saw_base = 1;
        pthread_mutex_lock(&job.lock);
        done = job.done;
        pthread_mutex_unlock(&job.lock);
    }
    pthread_join(thread, NULL);
    EXPECT(job.failed, CHORUS_OK);
    CHECK(calls > 0 && consistent);
    CHECK(saw_base); /* the first model's agents were seen (the later ones depend on timing) */
    printf("  %d calls during %d refits%s\n", calls, REFITS, saw_content ? "; saw the content agent come" : "");
    group_end();
    chorus_engine_free(job.engine);
    pthread_mutex_destroy(&job.lock);
}

/* ---- Version ----------------------------------------------------------------------------------- */

static void test_version(const char *version_file) {
    char from_macros[64], from_file[64] = "";
    FILE *f;

    group_begin("version: VERSION = chorus.h = library");
    snprintf(from_macros, sizeof from_macros, "%d.%d.%d", CHORUS_VERSION_MAJOR, CHORUS_VERSION_MINOR,
             CHORUS_VERSION_PATCH);
    CHECK(chorus_version() != NULL && strcmp(chorus_version(), from_macros) == 0);
    CHECK(chorus_version_number() == CHORUS_VERSION_NUMBER);
    CHECK(chorus_version() == chorus_version()); /* one string for the library's lifetime */
    if (version_file == NULL) {
        printf("  (no VERSION file given: not compared)\n");
    } else if ((f = fopen(version_file, "r")) == NULL) {
        CHECK_MSG(0, "the VERSION file given as the first argument can be opened");
    } else {
        size_t n;
        if (fgets(from_file, sizeof from_file, f) == NULL) from_file[0] = '\0';
        fclose(f);
        n = strlen(from_file);
        while (n > 0 && (from_file[n - 1] == '\n' || from_file[n - 1] == '\r')) from_file[--n] = '\0';
        if (!CHECK(strcmp(from_file, from_macros) == 0))
            printf("  VERSION says \"%s\", chorus.h's CHORUS_VERSION_* say \"%s\"\n", from_file, from_macros);
    }
    group_end();
}

/* ---- Handles ----------------------------------------------------------------------------------- */

static void test_counted_handles(void) {
    chorus_engine *e = new_engine();
    chorus_kg *g1 = NULL, *g2 = NULL, *g3 = NULL, *own = NULL;
    const char *h[1] = {"x"}, *r[1] = {"likes"}, *t[1] = {"y"}, *h2[1] = {"y"};
    size_t added = 0, triples = 0;

    group_begin("handles: counted per token");
    CHECK(e != NULL);
    EXPECT(chorus_engine_knowledge_graph(e, &g1), CHORUS_OK);
    EXPECT(chorus_engine_knowledge_graph(e, &g2), CHORUS_OK);
    CHECK(g1 != NULL && g1 == g2); /* the engine's one graph, handed out twice */
    chorus_kg_free(g1);
    /* The other handle still works: writes and reads. */
    EXPECT(chorus_kg_add_triples(g2, h, r, t, 1, &added), CHORUS_OK);
    CHECK(added == 1);
    EXPECT(chorus_kg_counts(g2, NULL, NULL, &triples), CHORUS_OK);
    CHECK(triples == 1);
    chorus_kg_free(g2);
    /* Both references are gone: the pointer is no longer a live handle... */
    EXPECT(chorus_kg_counts(g2, NULL, NULL, &triples), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_kg_add_triples(g2, h2, r, t, 1, &added), CHORUS_ERR_INVALID_ARGUMENT);
    /* ...a third free of it is a harmless no-op... */
    chorus_kg_free(g2);
    chorus_kg_free(g1);
    /* ...and the graph lives on in the engine, with the triple added through the second handle. */
    EXPECT(chorus_engine_knowledge_graph(e, &g3), CHORUS_OK);
    CHECK(g3 != g1); /* a retired token is never handed out again */
    EXPECT(chorus_kg_counts(g1, NULL, NULL, &triples), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_kg_counts(g3, NULL, NULL, &triples), CHORUS_OK);
    CHECK(triples == 1);
    /* Counted, not paired: while g3 is live the graph keeps its token, so g1 is g3 again, a free
     * through either variable releases one count, and the token stays live until both were freed. */
    EXPECT(chorus_engine_knowledge_graph(e, &g1), CHORUS_OK);
    CHECK(g1 == g3);
    chorus_kg_free(g3);
    EXPECT(chorus_kg_counts(g1, NULL, NULL, &triples), CHORUS_OK);
    chorus_kg_free(g1);
    EXPECT(chorus_kg_counts(g1, NULL, NULL, &triples), CHORUS_ERR_INVALID_ARGUMENT);

    /* The engine's graph outlives the engine while a handle holds it. */
    EXPECT(chorus_engine_knowledge_graph(e, &g1), CHORUS_OK);
    chorus_engine_free(e);
    EXPECT(chorus_engine_recommend(e, d_user, 1, 1, NULL, NULL, NULL, 0, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_kg_counts(g1, NULL, NULL, &triples), CHORUS_OK);
    CHECK(triples == 1);
    chorus_kg_free(g1);
    chorus_engine_free(e); /* a second free of an engine: a no-op too */

    /* A standalone graph: one handle, one free; a second free is a no-op. */
    EXPECT(chorus_kg_create(&own), CHORUS_OK);
    CHECK(own != NULL);
    chorus_kg_free(own);
    EXPECT(chorus_kg_counts(own, NULL, NULL, &triples), CHORUS_ERR_INVALID_ARGUMENT);
    chorus_kg_free(own);
    chorus_kg_free(NULL);
    group_end();
}

/* The extremes of the entry points this version added or changed: int64 limits as user and item
 * ids, a freed engine handle, item id -1 (CHORUS_NO_ITEM), timestamps at the limits of int64 (NaT),
 * and save/load over what is not a regular file (a FIFO, /dev/zero). */
static void test_extremes(void) {
    chorus_engine *e = fitted_engine(), *gone = new_engine(), *loaded = NULL;
    int64_t users[2] = {INT64_MIN, INT64_MAX}, ids[6], bad_item[2] = {100, CHORUS_NO_ITEM}, two_users[2] = {1, 2};
    int64_t nat_user[4] = {1, 1, 2, 2}, nat_item[4] = {100, 101, 100, 102}, nat_time[4] = {INT64_MIN, INT64_MAX, INT64_MIN, 0};
    float scores[6], shares[6 * MAX_AGENTS];
    uint32_t flags[2] = {7, 7};
    const char *const *names = NULL;
    size_t count = 0;
    chorus_explanation x;
    chorus_engine_stats st;
    chorus_fit_params fp = small_fit();
    char dir[] = "/tmp/chorus-extremes-XXXXXX", fifo[64];

    group_begin("extremes: limits, freed handles, NO_ITEM, NaT, non-regular files");
    CHECK(e != NULL && gone != NULL);
    /* Users at the int64 limits are unknown users, served by the fallback. */
    EXPECT(chorus_engine_recommend_details(e, users, 2, 3, NULL, ids, scores, 6, shares, 6 * MAX_AGENTS, flags, &names, &count),
           CHORUS_OK);
    CHECK(count > 0 && flags[0] == CHORUS_USER_COLD_FALLBACK && flags[1] == CHORUS_USER_COLD_FALLBACK);
    chorus_explanation_init(&x);
    EXPECT(chorus_engine_explain(e, INT64_MIN, ids[0], NULL, &x, NULL, 0, NULL, 0, NULL), CHORUS_OK);
    CHECK(x.sentence != NULL && x.sentence_length == strlen(x.sentence));
    EXPECT(chorus_engine_explain(e, 1, INT64_MAX, NULL, &x, NULL, 0, NULL, 0, NULL), CHORUS_ERR_NOT_FOUND);
    EXPECT(chorus_engine_explain(e, 1, INT64_MIN, NULL, &x, NULL, 0, NULL, 0, NULL), CHORUS_ERR_NOT_FOUND);
    /* A freed engine is no engine (freed just before, so no new object can have its address yet). */
    chorus_engine_free(gone);
    names = NULL; count = 7;
    EXPECT(chorus_engine_recommend_details(gone, users, 2, 3, NULL, ids, scores, 6, NULL, 0, NULL, &names, &count),
           CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(names == NULL && count == 0);
    EXPECT(chorus_engine_explain(gone, 1, 100, NULL, &x, NULL, 0, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    /* Item -1 is the empty-slot marker: refused whole. */
    chorus_engine_stats_init(&st);
    EXPECT(chorus_engine_get_stats(e, &st), CHORUS_OK);
    {
        uint64_t before = st.n_interactions;
        const char *texts[2] = {"a", "b"}, *rel[2] = {"r", "r"}, *ent[2] = {"x", "y"};
        EXPECT(chorus_engine_add_interactions(e, two_users, bad_item, NULL, NULL, 2), CHORUS_ERR_INVALID_ARGUMENT);
        CHECK(strstr(chorus_last_error(), "CHORUS_NO_ITEM") != NULL);
        EXPECT(chorus_engine_set_item_texts(e, bad_item, texts, 2), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_add_item_facts(e, bad_item, rel, ent, 2, NULL), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_get_stats(e, &st), CHORUS_OK);
        CHECK(st.n_interactions == before && st.n_item_texts == 0 && st.n_item_facts == 0);
    }
    /* NaT next to INT64_MAX: accepted, and the next fit works. */
    EXPECT(chorus_engine_add_interactions(e, nat_user, nat_item, NULL, nat_time, 4), CHORUS_OK);
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_OK);
    EXPECT(chorus_engine_recommend(e, two_users, 2, 3, NULL, ids, scores, 6, NULL, 0, NULL), CHORUS_OK);
    CHECK(isfinite(scores[0]));
    /* Save and load only over regular files. */
    CHECK(mkdtemp(dir) != NULL);
    snprintf(fifo, sizeof fifo, "%s/pipe", dir);
    CHECK(mkfifo(fifo, 0600) == 0);
    EXPECT(chorus_engine_load(fifo, &loaded), CHORUS_ERR_IO);   /* returns at once: no writer needed */
    CHECK(loaded == NULL);
    EXPECT(chorus_engine_load("/dev/zero", &loaded), CHORUS_ERR_IO);
    EXPECT(chorus_engine_save(e, fifo), CHORUS_ERR_IO);
    {
        struct stat sb;
        CHECK(stat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
    }
    unlink(fifo);
    rmdir(dir);
    chorus_engine_free(e);
    group_end();
}

/* ---- Strings and limits ------------------------------------------------------------------------ */

/* A string of `n` copies of `c`, NUL-terminated (malloc'd; the caller frees it). */
static char *repeated(char c, size_t n) {
    char *s = malloc(n + 1);
    if (s != NULL) {
        memset(s, c, n);
        s[n] = '\0';
    }
    return s;
}

/* Each CHORUS_MAX_* limit at its edge (the limit accepted, one byte more refused with nothing
 * changed); invalid UTF-8 refused, never repaired, in every kind of string argument; and an engine
 * holding strings at the limits saves and loads back whole. */
static void test_strings_and_limits(void) {
    chorus_engine_params ep;
    chorus_engine *e = NULL, *loaded = NULL;
    chorus_kg *kg = NULL;
    chorus_engine_stats st, st2;
    chorus_recommend_params rp;
    chorus_fit_params fp = small_fit();
    char *text = repeated('t', CHORUS_MAX_TEXT_BYTES + 1), *name = repeated('n', CHORUS_MAX_NAME_BYTES + 1);
    char *scenario = repeated('s', CHORUS_MAX_SCENARIO_NAME_BYTES + 1), *path = repeated('p', CHORUS_MAX_PATH_BYTES + 1);
    char dir[] = "/tmp/chorus-limits-XXXXXX", file[96];
    int64_t item[1] = {100}, user[1] = {1}, ids[3];
    float scores[3];
    const char *texts[1], *rel[1], *ent[1], *h[1], *r[1] = {"likes"}, *t[1] = {"y"};
    const char *bad[] = {"\xff", "a\xc3", "\xed\xa0\x80" /* a UTF-16 surrogate */, "\xc0\xaf" /* overlong '/' */};
    size_t i, added = 0;

    group_begin("strings: CHORUS_MAX_* limits at their edges, invalid UTF-8 refused, saved and loaded back");
    CHECK(text && name && scenario && path);
    chorus_engine_params_init(&ep);
    ep.flags = CHORUS_ENGINE_HASHING_ENCODER; /* fast and always there: the limits are the engine's */
    EXPECT(chorus_engine_create(&ep, &e), CHORUS_OK);
    EXPECT(chorus_engine_add_interactions(e, d_user, d_item, NULL, d_time, N_INTERACTIONS), CHORUS_OK);

    /* Texts: CHORUS_MAX_TEXT_BYTES accepted, one more refused. */
    texts[0] = text;
    EXPECT(chorus_engine_set_item_texts(e, item, texts, 1), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(chorus_last_error(), "longer than") != NULL);
    text[CHORUS_MAX_TEXT_BYTES] = '\0';
    EXPECT(chorus_engine_set_item_texts(e, item, texts, 1), CHORUS_OK);
    /* Scenario names and descriptions. */
    EXPECT(chorus_engine_define_scenario(e, scenario, "d"), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_define_scenario(e, "", "d"), CHORUS_ERR_INVALID_ARGUMENT);
    scenario[CHORUS_MAX_SCENARIO_NAME_BYTES] = '\0';
    EXPECT(chorus_engine_define_scenario(e, scenario, text), CHORUS_OK);
    text[CHORUS_MAX_TEXT_BYTES] = 't';
    EXPECT(chorus_engine_define_scenario(e, "home", text), CHORUS_ERR_INVALID_ARGUMENT);
    text[CHORUS_MAX_TEXT_BYTES] = '\0';
    /* Fact relations and entities. */
    rel[0] = "genre";
    ent[0] = name;
    EXPECT(chorus_engine_add_item_facts(e, item, rel, ent, 1, &added), CHORUS_ERR_INVALID_ARGUMENT);
    name[CHORUS_MAX_NAME_BYTES] = '\0';
    EXPECT(chorus_engine_add_item_facts(e, item, rel, ent, 1, &added), CHORUS_OK);
    CHECK(added == 1);
    rel[0] = name;
    ent[0] = "x";
    EXPECT(chorus_engine_add_item_facts(e, item, rel, ent, 1, &added), CHORUS_OK);
    /* Graph names. */
    EXPECT(chorus_engine_knowledge_graph(e, &kg), CHORUS_OK);
    h[0] = name;
    EXPECT(chorus_kg_add_triples(kg, h, r, t, 1, &added), CHORUS_OK);
    name[CHORUS_MAX_NAME_BYTES] = 'n';
    EXPECT(chorus_kg_add_triples(kg, h, r, t, 1, &added), CHORUS_ERR_INVALID_ARGUMENT);
    name[CHORUS_MAX_NAME_BYTES] = '\0';
    /* Paths: longer than CHORUS_MAX_PATH_BYTES, or empty. */
    EXPECT(chorus_engine_save(e, path), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_save(e, ""), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_load(path, &loaded), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(loaded == NULL);

    /* Invalid UTF-8 anywhere: refused with a message, nothing added. */
    chorus_engine_stats_init(&st);
    EXPECT(chorus_engine_get_stats(e, &st), CHORUS_OK);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        texts[0] = bad[i];
        EXPECT(chorus_engine_set_item_texts(e, item, texts, 1), CHORUS_ERR_INVALID_ARGUMENT);
        CHECK(strstr(chorus_last_error(), "UTF-8") != NULL);
        EXPECT(chorus_engine_set_user_texts(e, user, texts, 1), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_define_scenario(e, bad[i], "d"), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_define_scenario(e, "ok", bad[i]), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_add_scenario_interactions(e, bad[i], d_user, d_item, NULL, NULL, 1), CHORUS_ERR_INVALID_ARGUMENT);
        rel[0] = bad[i];
        ent[0] = "x";
        EXPECT(chorus_engine_add_item_facts(e, item, rel, ent, 1, NULL), CHORUS_ERR_INVALID_ARGUMENT);
        h[0] = bad[i];
        EXPECT(chorus_kg_add_triples(kg, h, r, t, 1, NULL), CHORUS_ERR_INVALID_ARGUMENT);
        EXPECT(chorus_engine_save(e, bad[i]), CHORUS_ERR_INVALID_ARGUMENT);
    }
    chorus_engine_stats_init(&st2);
    EXPECT(chorus_engine_get_stats(e, &st2), CHORUS_OK);
    CHECK(st2.n_interactions == st.n_interactions && st2.n_item_texts == st.n_item_texts &&
          st2.n_user_texts == st.n_user_texts && st2.n_item_facts == st.n_item_facts);

    /* Requests: an invalid query or scenario name is refused, a valid one works. */
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_OK);
    chorus_recommend_params_init(&rp);
    rp.query = "\xff\xfe";
    EXPECT(chorus_engine_recommend(e, user, 1, 3, &rp, ids, scores, 3, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    rp.query = NULL;
    rp.scenario = "\xff";
    EXPECT(chorus_engine_recommend(e, user, 1, 3, &rp, ids, scores, 3, NULL, 0, NULL), CHORUS_ERR_INVALID_ARGUMENT);
    rp.scenario = scenario;
    EXPECT(chorus_engine_recommend(e, user, 1, 3, &rp, ids, scores, 3, NULL, 0, NULL), CHORUS_OK);

    /* What was accepted at the limits saves and loads back whole. */
    CHECK(mkdtemp(dir) != NULL);
    snprintf(file, sizeof file, "%s/limits.chorus", dir);
    EXPECT(chorus_engine_save(e, file), CHORUS_OK);
    EXPECT(chorus_engine_load(file, &loaded), CHORUS_OK);
    chorus_engine_stats_init(&st2);
    EXPECT(chorus_engine_get_stats(loaded, &st2), CHORUS_OK);
    EXPECT(chorus_engine_get_stats(e, &st), CHORUS_OK);
    CHECK(st2.n_item_texts == 1 && st2.n_item_facts == 2 &&
          st2.n_interactions == st.n_interactions);
    EXPECT(chorus_engine_recommend(loaded, user, 1, 3, &rp, ids, scores, 3, NULL, 0, NULL), CHORUS_OK);
    unlink(file);
    rmdir(dir);

    chorus_engine_free(loaded);
    chorus_kg_free(kg);
    chorus_engine_free(e);
    free(text);
    free(name);
    free(scenario);
    free(path);
    group_end();
}

/* Handles are tokens never issued twice: a freed handle is never taken for a live one, however
 * many objects are created after it (with an allocator that reuses addresses at once); a free
 * through the wrong function frees nothing. */
static void test_handle_tokens(void) {
    enum { ROUNDS = 200 };
    chorus_engine *freed[ROUNDS], *e = NULL;
    chorus_encoder *enc = NULL;
    chorus_kg *kg = NULL;
    chorus_engine_stats st;
    float v[4096];
    const char *texts[1] = {"a text"};
    int i, j, reissued = 0, accepted = 0;

    group_begin("handles: tokens never reissued, frees check the kind");
    for (i = 0; i < ROUNDS; i++) {
        freed[i] = NULL;
        if (chorus_engine_create(NULL, &freed[i]) != CHORUS_OK) break;
        chorus_engine_free(freed[i]);
    }
    CHECK(i == ROUNDS);
    EXPECT(chorus_engine_create(NULL, &e), CHORUS_OK);
    for (i = 0; i < ROUNDS; i++) {
        for (j = 0; j < i; j++) reissued += freed[i] == freed[j];
        reissued += freed[i] == e;
        chorus_engine_stats_init(&st);
        accepted += chorus_engine_get_stats((chorus_engine *)freed[i], &st) != CHORUS_ERR_INVALID_ARGUMENT;
    }
    CHECK(reissued == 0);
    CHECK(accepted == 0);
    chorus_engine_stats_init(&st);
    EXPECT(chorus_engine_get_stats(e, &st), CHORUS_OK);

    /* Wrong-kind frees are no-ops: the engine and the encoder keep working. */
    chorus_kg_free((chorus_kg *)e);
    chorus_encoder_free((chorus_encoder *)e);
    EXPECT(chorus_engine_get_stats(e, &st), CHORUS_OK);
    EXPECT(chorus_encoder_create(NULL, &enc), CHORUS_OK);
    chorus_engine_free((chorus_engine *)enc);
    chorus_kg_free((chorus_kg *)enc);
    EXPECT(chorus_encoder_encode(enc, texts, 1, v, sizeof v / sizeof v[0]), CHORUS_OK);
    EXPECT(chorus_kg_create(&kg), CHORUS_OK);
    chorus_engine_free((chorus_engine *)kg);
    EXPECT(chorus_kg_counts(kg, NULL, NULL, NULL), CHORUS_OK);
    /* Wrong-kind calls are refused by name. */
    EXPECT(chorus_engine_get_stats((chorus_engine *)kg, &st), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(chorus_last_error(), "another kind") != NULL);
    chorus_kg_free(kg);
    chorus_encoder_free(enc);
    chorus_engine_free(e);
    EXPECT(chorus_engine_get_stats(e, &st), CHORUS_ERR_INVALID_ARGUMENT);
    group_end();
}

/* ---- Re-entrant calls from callbacks ----------------------------------------------------------- */

static chorus_status g_nested_fit, g_nested_recommend, g_nested_train;

static int32_t fit_again(const char *stage, double fraction, void *user_data) {
    chorus_engine *e = user_data;
    chorus_fit_params fp = small_fit();
    int64_t user[1] = {1}, ids[3];
    float scores[3];
    (void)fraction;
    if (strcmp(stage, "start") == 0 && g_nested_fit == CHORUS_OK) {
        g_nested_fit = chorus_engine_fit(e, &fp);
        g_nested_recommend = chorus_engine_recommend(e, user, 1, 3, NULL, ids, scores, 3, NULL, 0, NULL);
    }
    return 0;
}

static int32_t train_again(const char *stage, double fraction, void *user_data) {
    (void)stage;
    (void)fraction;
    if (g_nested_train == CHORUS_OK) g_nested_train = chorus_kg_train(user_data, NULL);
    return 0;
}

/* A fit (a training) called from its own progress callback is an error, not a deadlock or a trap
 * on the lock the call holds; other calls work from the callback; the gate opens again after. */
static void test_reentrant_callbacks(void) {
    chorus_engine *e = fitted_engine();
    chorus_kg *kg = NULL;
    chorus_fit_params fp = small_fit();
    chorus_kg_train_params tp;
    const char *h[2] = {"a", "b"}, *r[2] = {"likes", "likes"}, *t[2] = {"b", "c"};

    group_begin("callbacks: a fit or training from its own progress callback is refused");
    CHECK(e != NULL);
    fp.progress = fit_again;
    fp.progress_user_data = e;
    g_nested_fit = CHORUS_OK;
    g_nested_recommend = CHORUS_ERR_INTERNAL;
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_OK);
    CHECK(g_nested_fit == CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(g_nested_recommend == CHORUS_OK); /* served by the previous model */
    fp.progress = NULL;
    EXPECT(chorus_engine_fit(e, &fp), CHORUS_OK);

    EXPECT(chorus_kg_create(&kg), CHORUS_OK);
    EXPECT(chorus_kg_add_triples(kg, h, r, t, 2, NULL), CHORUS_OK);
    chorus_kg_train_params_init(&tp);
    tp.dim = 8;
    tp.epochs = 2;
    tp.threads = 1;
    tp.progress = train_again;
    tp.progress_user_data = kg;
    g_nested_train = CHORUS_OK;
    EXPECT(chorus_kg_train(kg, &tp), CHORUS_OK);
    CHECK(g_nested_train == CHORUS_ERR_INVALID_ARGUMENT);
    tp.progress = NULL;
    EXPECT(chorus_kg_train(kg, &tp), CHORUS_OK);
    chorus_kg_free(kg);
    chorus_engine_free(e);
    group_end();
}

int main(int argc, char **argv) {
    make_data();
    test_version(argc > 1 ? argv[1] : NULL);
    test_init_functions();
    test_fit_params_sizes();
    test_fit_params_agents();
    test_recommend_params_sizes();
    test_struct_size_alignment();
    test_engine_and_encoder_params_sizes();
    test_kg_sizes();
    test_stats_sizes();
    test_counted_handles();
    test_explanation_init();
    test_explain_one_call();
    test_explain_sentence_per_thread();
    test_recommend_details();
    test_recommend_details_during_refits();
    test_extremes();
    test_strings_and_limits();
    test_handle_tokens();
    test_reentrant_callbacks();
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
