/*
 * test_texts.c — text: the sentence encoder (chorus_encoder_*), and an engine's item and user
 * texts (content and query agents, history, diversity, explanations, item facts, the engine's
 * knowledge graph, scenarios, texts in a snapshot).
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "harness.h"
#include "tests.h"

/* ---- Text encoder ------------------------------------------------------------------------------ */

static float dot_rows(const float *v, size_t a, size_t b, size_t dim) {
    float s = 0;
    size_t i;
    for (i = 0; i < dim; i++) s += v[a * dim + i] * v[b * dim + i];
    return s;
}

void test_encoder(const chorus_engine *engine) {
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

void test_texts(void) {
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

/* ---- Text encoding progress (chorus_engine_set_*_texts_ex) ------------------------------------ */

#define PROGRESS_TEXTS 1300 /* three chunks of at most 512 */

static chorus_texts_params texts_params(progress_state *ps) {
    chorus_texts_params tp;
    chorus_texts_params_init(&tp);
    memset(ps, 0, sizeof *ps);
    ps->thread = pthread_self();
    tp.progress = progress_cb;
    tp.progress_user_data = ps;
    return tp;
}

/* Records the fractions a progress callback sees (stage "encoding", non-decreasing). */
typedef struct fractions {
    double seen[16];
    long n, bad_stage;
} fractions;

static int32_t record_fractions(const char *stage, double fraction, void *user_data) {
    fractions *f = (fractions *)user_data;
    if (stage == NULL || strcmp(stage, "encoding") != 0) f->bad_stage++;
    if (f->n < 16) f->seen[f->n] = fraction;
    f->n++;
    return 0;
}

void test_texts_progress(void) {
    chorus_engine_params ep;
    chorus_engine *e = NULL;
    chorus_texts_params tp;
    progress_state ps;
    fractions fr;
    chorus_engine_stats st;
    static int64_t ids[PROGRESS_TEXTS];
    static char buf[PROGRESS_TEXTS][48];
    static const char *texts[PROGRESS_TEXTS], *empty[PROGRESS_TEXTS];
    const char *with_null[2] = {"fine", NULL};
    size_t i;
    long k;
    int increasing = 1;

    group_begin("text encoding progress (set_*_texts_ex)");
    EXPECT(chorus_texts_params_init(NULL), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_texts_params_init(&tp), CHORUS_OK);
    CHECK(tp.struct_size == sizeof tp && tp.threads == 0 && tp.progress == NULL && tp.progress_user_data == NULL);
    CHECK(chorus_struct_size("chorus_texts_params") == sizeof(chorus_texts_params));
    for (i = 0; i < PROGRESS_TEXTS; i++) {
        ids[i] = 5000 + (int64_t)i;
        snprintf(buf[i], sizeof buf[i], "item %zu: %s", i, i % 2 ? "space rocket galaxy" : "kitchen soup pasta");
        texts[i] = buf[i];
        empty[i] = "";
    }
    chorus_engine_params_init(&ep);
    ep.flags = CHORUS_ENGINE_HASHING_ENCODER;
    EXPECT(chorus_engine_create(&ep, &e), CHORUS_OK);
    if (!e) { group_end(); return; }

    /* The callback: "encoding", 0 first, after each chunk, 1 last, on this thread. */
    chorus_texts_params_init(&tp);
    memset(&fr, 0, sizeof fr);
    tp.progress = record_fractions;
    tp.progress_user_data = &fr;
    tp.threads = 1;
    EXPECT(chorus_engine_set_item_texts_ex(e, ids, texts, PROGRESS_TEXTS, &tp), CHORUS_OK);
    for (k = 1; k < fr.n && k < 16; k++) if (!(fr.seen[k] > fr.seen[k - 1])) increasing = 0;
    CHECK_MSG(fr.n == 4 && fr.bad_stage == 0 && fr.seen[0] == 0.0 && fr.seen[3] == 1.0 && increasing &&
              fabs(fr.seen[1] - 512.0 / PROGRESS_TEXTS) < 1e-9, "progress: 0, after each chunk of 512, then 1");
    st = get_stats(e);
    CHECK(st.n_item_texts == PROGRESS_TEXTS);
    tp = texts_params(&ps);
    EXPECT(chorus_engine_set_user_texts_ex(e, ids, texts, 600, &tp), CHORUS_OK);
    CHECK(ps.calls == 3 && ps.bad == 0 && ps.wrong_thread == 0);
    CHECK(get_stats(e).n_user_texts == 600);

    /* Cancel: at the start, mid-way, and at the last report (1.0, after every text is encoded):
     * nothing of the batch is kept, whether it adds, changes or removes texts. */
    for (k = 1; k <= 4; k++) {
        int64_t fresh[PROGRESS_TEXTS];
        for (i = 0; i < PROGRESS_TEXTS; i++) fresh[i] = 90000 + (int64_t)i;
        tp = texts_params(&ps);
        ps.cancel_at_call = k;
        EXPECT(chorus_engine_set_item_texts_ex(e, fresh, texts, PROGRESS_TEXTS, &tp), CHORUS_ERR_CANCELLED);
        CHECK(ps.calls == k && ps.cancelled);
        CHECK_MSG(get_stats(e).n_item_texts == PROGRESS_TEXTS, "a cancelled batch adds no text");
        tp = texts_params(&ps);
        ps.cancel_at_call = k > 2 ? 2 : k;
        EXPECT(chorus_engine_set_item_texts_ex(e, ids, empty, PROGRESS_TEXTS, &tp), CHORUS_ERR_CANCELLED);
        CHECK_MSG(get_stats(e).n_item_texts == PROGRESS_TEXTS, "a cancelled batch removes no text");
    }
    tp = texts_params(&ps);
    ps.cancel_at_fraction = 0.5;
    EXPECT(chorus_engine_set_user_texts_ex(e, ids, empty, 600, &tp), CHORUS_ERR_CANCELLED);
    CHECK(ps.calls == 2 && get_stats(e).n_user_texts == 600);
    CHECK(strstr(chorus_last_error(), "cancelled") != NULL);
    /* Removing every text: nothing to encode, reports 0 then 1. */
    tp = texts_params(&ps);
    EXPECT(chorus_engine_set_user_texts_ex(e, ids, empty, 600, &tp), CHORUS_OK);
    CHECK(ps.calls == 2 && get_stats(e).n_user_texts == 0);

    /* Arguments: validated before any report; NULL params; an older, shorter struct. */
    tp = texts_params(&ps);
    EXPECT(chorus_engine_set_item_texts_ex(e, ids, with_null, 2, &tp), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_set_item_texts_ex(NULL, ids, texts, 2, &tp), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_set_item_texts_ex(e, NULL, texts, 2, &tp), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_set_item_texts_ex(e, ids, NULL, 2, &tp), CHORUS_ERR_INVALID_ARGUMENT);
    EXPECT(chorus_engine_set_item_texts_ex(e, ids, texts, 0, &tp), EMPTY_BATCH_STATUS);
    EXPECT(chorus_engine_set_user_texts_ex(e, NULL, texts, 2, &tp), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(chorus_last_error(), "user_ids") != NULL);
    CHECK_MSG(ps.calls == 0, "no report for a call refused by validation");
    tp.struct_size = 4;
    EXPECT(chorus_engine_set_item_texts_ex(e, ids, texts, 2, &tp), CHORUS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(chorus_last_error(), "chorus_texts_params") != NULL);
    tp.struct_size = (uint32_t)sizeof tp + 8;
    EXPECT(chorus_engine_set_item_texts_ex(e, ids, texts, 2, &tp), CHORUS_ERR_INVALID_ARGUMENT);
    tp.struct_size = (uint32_t)offsetof(chorus_texts_params, progress); /* a header without the callback */
    ps.cancel_at_call = 1;
    EXPECT(chorus_engine_set_item_texts_ex(e, ids, texts, 2, &tp), CHORUS_OK);
    CHECK(ps.calls == 0);
    EXPECT(chorus_engine_set_item_texts_ex(e, ids, texts, 2, NULL), CHORUS_OK);
    EXPECT(chorus_engine_set_user_texts_ex(e, ids, texts, 2, NULL), CHORUS_OK);
    CHECK(get_stats(e).n_user_texts == 2);
    chorus_engine_free(e);
    group_end();
}
