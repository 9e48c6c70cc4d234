/*
 * test_stress.c — one engine, many threads, every kind of call at once (build/test_stress).
 *
 * Built for ThreadSanitizer (`make test-c-tsan`: the library built with `swift build --sanitize=thread`,
 * this host with `clang -fsanitize=thread`, run with TSAN_OPTIONS=halt_on_error=1), and run plainly in
 * `make test-c`. THREADS threads share one fitted engine for a fixed number of iterations each
 * (`build/test_stress [iterations]`, default 16), each iteration one call chosen by (thread, iteration):
 * recommend (plain and with details: shares and agent names), explain, similar items,
 * add_interactions (new users, new items), feedback (every event type, new users and items, then a
 * recommend that must not return the item just purchased), fit (a small budget), save (to the thread's own path and to
 * one path all threads share), load of either into another engine (which must then serve), item and
 * user texts, item facts, the engine's knowledge graph (a handle, triples, counts), stats and agent
 * info, and now and then sharded training's calls on the changing engine (a merge of one, a private
 * merge, the privacy report, a save without interactions, a fit started from it: op_shards). Every call must return CHORUS_OK or one of the
 * statuses the header documents for that situation, and every result must be well formed: ids the
 * test gave the engine, finite scores in non-increasing order without duplicates, empty slots as
 * CHORUS_NO_ITEM / -INFINITY, shares summing to 1. A load of the shared path must always succeed
 * (saves replace it atomically). At the end the engine still serves, saves and loads, and no
 * temporary file is left beside either path.
 *
 * Worker threads never touch the harness's counters (they are not atomic): each keeps its own
 * failure count and first message; the main thread checks them after joining.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "harness.h"

#define THREADS 8
#define K 5
#define BATCH 4
/* Items the threads add: 3000 + thread * 100 + iteration (iterations are capped below 100). */
#define NEW_ITEM_BASE 3000
#define MAX_ITERATIONS 99

static chorus_engine *g_engine;
static char g_shared_path[1024];

typedef struct worker {
    int index;
    int iterations;
    int failures;
    char first[512];
    int calls[16];
} worker;

static void failf(worker *w, int line, const char *fmt, ...) {
    va_list ap;
    if (w->failures++ == 0) {
        int n = snprintf(w->first, sizeof w->first, "thread %d, line %d: ", w->index, line);
        va_start(ap, fmt);
        if (n > 0 && (size_t)n < sizeof w->first) vsnprintf(w->first + n, sizeof w->first - (size_t)n, fmt, ap);
        va_end(ap);
    }
}

#define WCHECK(w, cond, ...)                                  \
    do {                                                      \
        if (!(cond)) failf((w), __LINE__, __VA_ARGS__);       \
    } while (0)

/* The status must be one of the listed ones (CHORUS_OK first); the message names the call. */
static int status_in(worker *w, int line, const char *call, chorus_status got, int n, ...) {
    va_list ap;
    int i, ok = 0;
    va_start(ap, n);
    for (i = 0; i < n; i++)
        if (got == (chorus_status)va_arg(ap, int)) ok = 1;
    va_end(ap);
    if (!ok) failf(w, line, "%s returned %s (%s)", call, status_str(got), chorus_last_error());
    return got == CHORUS_OK;
}

#define STATUS_OK(w, call, got) status_in((w), __LINE__, (call), (got), 1, CHORUS_OK)

static int known_item(int64_t id) {
    return is_dataset_item(id) || (id >= NEW_ITEM_BASE && id < NEW_ITEM_BASE + THREADS * 100);
}

/* One row of k slots: filled slots first (known ids, finite non-increasing scores, no duplicates),
 * then empty ones. `ordered` = 0 skips the order check (diversity re-ranks). */
static int row_ok(const int64_t *ids, const float *scores, size_t k, int ordered, size_t *filled) {
    size_t i, j, n = 0;
    int empty = 0;
    for (i = 0; i < k; i++) {
        if (ids[i] == CHORUS_NO_ITEM) {
            empty = 1;
            if (!(isinf(scores[i]) && scores[i] < 0)) return 0;
            continue;
        }
        if (empty || !known_item(ids[i]) || !isfinite(scores[i])) return 0;
        if (ordered && i > 0 && scores[i] > scores[i - 1]) return 0;
        for (j = 0; j < i; j++)
            if (ids[j] == ids[i]) return 0;
        n++;
    }
    if (filled) *filled = n;
    return 1;
}

static int shares_sum_ok(const int64_t *ids, const float *shares, size_t slots, size_t n_agents) {
    size_t s, a;
    for (s = 0; s < slots; s++) {
        double sum = 0;
        for (a = 0; a < n_agents; a++) {
            float v = shares[s * n_agents + a];
            if (!isfinite(v) || v < -1e-6f) return 0;
            sum += v;
        }
        if (ids[s] == CHORUS_NO_ITEM ? sum != 0 : fabs(sum - 1.0) > 1e-3) return 0;
    }
    return 1;
}

typedef struct scratch {
    int64_t ids[BATCH * K];
    float scores[BATCH * K];
    float shares[BATCH * K * MAX_AGENTS];
    uint32_t flags[BATCH];
} scratch;

static void users_for(worker *w, int it, int64_t users[BATCH]) {
    users[0] = g_users[(w->index * 7 + it) % N_USERS];
    users[1] = g_users[(w->index * 3 + it * 5 + 11) % N_USERS];
    users[2] = COLD_USER;
    /* A user some thread may have added (known only after a fit: cold until then). */
    users[3] = 10000 + ((w->index + it) % THREADS) * 100 + it % 4;
}

static void op_recommend(worker *w, int it, scratch *s) {
    int64_t users[BATCH];
    chorus_recommend_params rp;
    size_t u;
    users_for(w, it, users);
    int64_t requests[BATCH];
    chorus_recommend_params_init(&rp);
    if (it % 3 == 1) rp.diversity = 0.3f;
    if (it % 4 == 2) rp.query = "a film for a family evening";
    /* Every other call is logged for the learning coordinator (ids unique per thread and call). */
    for (u = 0; u < BATCH; u++) requests[u] = (int64_t)w->index * 1000000 + it * BATCH + (int64_t)u;
    if (it % 2 == 0) rp.request_ids = requests;
    if (!STATUS_OK(w, "recommend", chorus_engine_recommend(g_engine, users, BATCH, K, &rp, s->ids, s->scores,
                                                           BATCH * K, NULL, 0, s->flags)))
        return;
    for (u = 0; u < BATCH; u++) {
        WCHECK(w, row_ok(s->ids + u * K, s->scores + u * K, K, rp.diversity == 0, NULL),
               "recommend: row %lu malformed", (unsigned long)u);
        WCHECK(w, s->flags[u] == CHORUS_USER_KNOWN || s->flags[u] == CHORUS_USER_COLD_FALLBACK, "recommend: flag %u",
               (unsigned)s->flags[u]);
    }
    WCHECK(w, s->flags[2] == CHORUS_USER_COLD_FALLBACK, "recommend: the cold user is not flagged cold");
}

static void op_recommend_details(worker *w, int it, scratch *s) {
    int64_t users[BATCH];
    const char *const *names = NULL;
    size_t n_agents = 0, u, a;
    chorus_status st;
    users_for(w, it, users);
    st = chorus_engine_recommend_details(g_engine, users, BATCH, K, NULL, s->ids, s->scores, BATCH * K, s->shares,
                                         BATCH * K * MAX_AGENTS, s->flags, &names, &n_agents);
    if (!STATUS_OK(w, "recommend_details", st)) return;
    WCHECK(w, names != NULL && n_agents >= 1 && n_agents <= MAX_AGENTS, "recommend_details: %lu agents",
           (unsigned long)n_agents);
    if (!names || n_agents == 0 || n_agents > MAX_AGENTS) return;
    for (a = 0; a < n_agents; a++) WCHECK(w, names[a] && names[a][0], "recommend_details: agent %lu unnamed", (unsigned long)a);
    for (u = 0; u < BATCH; u++)
        WCHECK(w, row_ok(s->ids + u * K, s->scores + u * K, K, 1, NULL), "recommend_details: row %lu malformed",
               (unsigned long)u);
    WCHECK(w, shares_sum_ok(s->ids, s->shares, BATCH * K, n_agents), "recommend_details: shares do not sum to 1");
}

static void op_explain(worker *w, int it, scratch *s) {
    chorus_explanation ex;
    float shares[MAX_AGENTS];
    char text[1024];
    size_t len = 0, a;
    double sum = 0;
    int64_t user = g_users[(w->index + it * 3) % N_USERS];
    int64_t item = g_items[(w->index * 5 + it) % N_ITEMS];
    chorus_recommend_params rp;
    chorus_status st;
    (void)s;
    chorus_explanation_init(&ex);
    chorus_recommend_params_init(&rp);
    if (it % 2) rp.query = "an animated comedy";
    st = chorus_engine_explain(g_engine, user, item, &rp, &ex, shares, MAX_AGENTS, text, sizeof text, &len);
    if (!STATUS_OK(w, "explain", st)) return;
    WCHECK(w, isfinite(ex.score), "explain: score %f", (double)ex.score);
    WCHECK(w, ex.agent_count >= 1 && ex.agent_count <= MAX_AGENTS && ex.agent_names, "explain: %lu agents",
           (unsigned long)ex.agent_count);
    WCHECK(w, ex.sentence && strlen(ex.sentence) == ex.sentence_length && len == ex.sentence_length &&
                  strcmp(text, ex.sentence) == 0,
           "explain: sentence and copy disagree");
    WCHECK(w, ex.because_item == CHORUS_NO_ITEM || known_item(ex.because_item), "explain: because_item %lld",
           (long long)ex.because_item);
    for (a = 0; a < ex.agent_count && a < MAX_AGENTS; a++) sum += shares[a];
    WCHECK(w, fabs(sum - 1.0) < 1e-3 || sum == 0, "explain: shares sum to %f", sum);
}

static void op_similar(worker *w, int it, scratch *s) {
    int64_t items[2];
    size_t r;
    items[0] = g_items[(w->index + it) % N_ITEMS];
    items[1] = g_items[(w->index * 3 + it * 7) % N_ITEMS];
    if (!STATUS_OK(w, "similar_items",
                   chorus_engine_similar_items(g_engine, items, 2, K, NULL, s->ids, s->scores, 2 * K)))
        return;
    for (r = 0; r < 2; r++) {
        size_t i;
        WCHECK(w, row_ok(s->ids + r * K, s->scores + r * K, K, 1, NULL), "similar_items: row %lu malformed",
               (unsigned long)r);
        for (i = 0; i < K; i++) WCHECK(w, s->ids[r * K + i] != items[r], "similar_items: the item itself");
    }
}

static void op_add(worker *w, int it) {
    int64_t users[6], items[6], times[6];
    float weights[6];
    int i;
    for (i = 0; i < 6; i++) {
        users[i] = 10000 + w->index * 100 + it % 4;
        /* Mostly dataset items of one cluster, one new item. */
        items[i] = i == 5 ? NEW_ITEM_BASE + w->index * 100 + it : g_items[(w->index % 2) * N_ITEMS_PER_CLUSTER + (it + i) % 10];
        weights[i] = 1.0f + (float)i;
        times[i] = T0 + 100000 + it * 10 + i;
    }
    STATUS_OK(w, "add_interactions", chorus_engine_add_interactions(g_engine, users, items, weights, times, 6));
}

static void op_feedback(worker *w, int it, scratch *s) {
    int64_t users[7], items[7], times[7], requests[7];
    int32_t events[7];
    float values[7];
    int64_t buyer = g_users[(w->index * 5 + it * 3) % N_USERS], bought;
    int cluster = user_cluster(buyer);
    size_t i;
    for (i = 0; i < 7; i++) {
        /* A dataset user, new users of this thread (never the cold user: it must stay cold); dataset items, a new item. */
        users[i] = i < 3 ? buyer : i < 5 ? 20000 + w->index * 100 + it % 5 : 30000 + w->index;
        items[i] = i == 4 ? NEW_ITEM_BASE + w->index * 100 + it : g_items[cluster * N_ITEMS_PER_CLUSTER + (it + 3 * i + w->index) % 10];
        events[i] = (int32_t)((i + (size_t)it) % 7);
        values[i] = events[i] == CHORUS_EVENT_RATING ? 4.0f : 1.0f;
        /* Out of order on purpose. */
        times[i] = T0 + 200000 - it * 10 + (int64_t)i;
    }
    events[0] = CHORUS_EVENT_PURCHASE;
    bought = items[0];
    /* Request ids: of slates this thread served (some still open, some closed: late), or NULL. */
    for (i = 0; i < 7; i++) requests[i] = (int64_t)w->index * 1000000 + (it > 13 ? it - 13 : 0) * BATCH + (int64_t)i % BATCH;
    if (!STATUS_OK(w, "feedback", chorus_engine_feedback(g_engine, users, items, events, values, it % 2 ? times : NULL, 7, NULL,
                                                        it % 3 ? requests : NULL, NULL)))
        return;
    if (!STATUS_OK(w, "recommend after feedback", chorus_engine_recommend(g_engine, &buyer, 1, K, NULL, s->ids, s->scores, K,
                                                                         NULL, 0, s->flags)))
        return;
    WCHECK(w, row_ok(s->ids, s->scores, K, 1, NULL), "recommend after feedback: row malformed");
    for (i = 0; i < K; i++) WCHECK(w, s->ids[i] != bought, "user %lld got item %lld right after purchasing it", (long long)buyer, (long long)bought);
}

static void op_fit(worker *w, int it) {
    chorus_fit_params fp = small_fit_params();
    fp.iterations = 3;
    fp.threads = 1 + (unsigned)(it % 2);
    fp.seed = (uint64_t)(w->index * 1000 + it + 1);
    STATUS_OK(w, "fit", chorus_engine_fit(g_engine, &fp));
}

static void check_loaded(worker *w, chorus_engine *l, const char *what) {
    int64_t users[2];
    int64_t ids[2 * K];
    float scores[2 * K];
    chorus_engine_stats st = get_stats(l);
    users[0] = g_users[w->index];
    users[1] = COLD_USER;
    WCHECK(w, st.fitted == 1 && st.n_users >= N_USERS && st.n_items >= N_ITEMS, "%s: stats of the loaded engine", what);
    if (STATUS_OK(w, what, chorus_engine_recommend(l, users, 2, K, NULL, ids, scores, 2 * K, NULL, 0, NULL)))
        WCHECK(w, row_ok(ids, scores, K, 1, NULL) && row_ok(ids + K, scores + K, K, 1, NULL),
               "%s: recommendations of the loaded engine malformed", what);
}

/* Sharded training while the engine changes under the call: a merge of one (a copy) that serves, a
 * private merge of one (refused when the engine has texts or facts: INVALID_ARGUMENT, as
 * documented), the privacy report, and a save without interactions that loads, serves, refuses a fit,
 * and starts a small fit of the copy from it. */
static void op_shards(worker *w, int it) {
    const chorus_engine *one[1];
    chorus_engine *copy = NULL, *priv = NULL, *l = NULL;
    chorus_merge_params mp;
    char mine[1024], name[64];
    double eps = 0, delta = 0;
    uint32_t rounds = 9;
    one[0] = g_engine;
    if (STATUS_OK(w, "merge (one shard)", chorus_engine_merge(one, 1, NULL, &copy))) check_loaded(w, copy, "merge (one shard)");
    chorus_merge_params_init(&mp);
    mp.noise_multiplier = 1;
    mp.clip_norm = 0.5;
    if (status_in(w, __LINE__, "merge (private)", chorus_engine_merge(one, 1, &mp, &priv), 2, CHORUS_OK, CHORUS_ERR_INVALID_ARGUMENT) && priv)
        if (STATUS_OK(w, "privacy_spent", chorus_engine_privacy_spent(priv, &eps, &delta, &rounds)))
            WCHECK(w, rounds == 1 && isfinite(eps) && eps > 0, "privacy_spent: %u rounds, eps %g", (unsigned)rounds, eps);
    snprintf(name, sizeof name, "thread-%d-withheld.chorus", w->index);
    path_in_dir(mine, sizeof mine, name);
    if (STATUS_OK(w, "save_ex (without interactions)", chorus_engine_save_ex(g_engine, mine, CHORUS_SAVE_WITHOUT_INTERACTIONS)) &&
        STATUS_OK(w, "load (without interactions)", chorus_engine_load(mine, &l))) {
        chorus_fit_params fp = small_fit_params();
        WCHECK(w, get_stats(l).n_interactions == 0, "a snapshot without interactions loaded with some");
        status_in(w, __LINE__, "fit (without interactions)", chorus_engine_fit(l, &fp), 1, CHORUS_ERR_INVALID_ARGUMENT);
        fp.iterations = 2;
        fp.agents = "als";
        if (copy && it % 8 == 1) STATUS_OK(w, "fit_from", chorus_engine_fit_from(copy, &fp, l));
    }
    chorus_engine_free(copy);
    chorus_engine_free(priv);
    chorus_engine_free(l);
}

static void op_save_load(worker *w, int it) {
    char mine[1024], name[64];
    chorus_engine *l = NULL;
    if (it % 4 == 1) op_shards(w, it);
    snprintf(name, sizeof name, "thread-%d.chorus", w->index);
    path_in_dir(mine, sizeof mine, name);
    if (it % 2 == 0) {
        if (STATUS_OK(w, "save (own path)", chorus_engine_save(g_engine, mine)) &&
            STATUS_OK(w, "load (own path)", chorus_engine_load(mine, &l)))
            check_loaded(w, l, "load (own path)");
    } else {
        /* Every other thread may be replacing this file right now: a load sees a whole snapshot. */
        if (STATUS_OK(w, "save (shared path)", chorus_engine_save(g_engine, g_shared_path)) &&
            STATUS_OK(w, "load (shared path)", chorus_engine_load(g_shared_path, &l)))
            check_loaded(w, l, "load (shared path)");
    }
    chorus_engine_free(l);
}

static void op_texts(worker *w, int it) {
    int64_t items[2], users[1];
    const char *item_texts[2], *user_texts[1];
    const char *rel[1] = {"genre"}, *ent[1];
    size_t added = 0;
    char t0[96], t1[96];
    static const char *genres[4] = {"Animation", "Comedy", "Thriller", "Drama"};
    items[0] = g_items[(w->index + it) % N_ITEMS];
    items[1] = NEW_ITEM_BASE + w->index * 100 + it;
    snprintf(t0, sizeof t0, "item %lld, version %d: a light-hearted animated film", (long long)items[0], it);
    snprintf(t1, sizeof t1, "new item %lld: a tense thriller", (long long)items[1]);
    item_texts[0] = t0;
    item_texts[1] = t1;
    STATUS_OK(w, "set_item_texts", chorus_engine_set_item_texts(g_engine, items, item_texts, 2));
    users[0] = g_users[(w->index * 11 + it) % N_USERS];
    user_texts[0] = it % 3 == 0 ? "" : "likes animated comedies";
    STATUS_OK(w, "set_user_texts", chorus_engine_set_user_texts(g_engine, users, user_texts, 1));
    ent[0] = genres[(w->index + it) % 4];
    STATUS_OK(w, "add_item_facts", chorus_engine_add_item_facts(g_engine, items, rel, ent, 1, &added));
}

/* The learning coordinator: a mode switch and a read of the slate log (closing, draining, or not). */
static void op_learning(worker *w, int it) {
    chorus_learning_params lp;
    chorus_slate_row rows[16];
    size_t count = 0, i, shown;
    chorus_learning_params_init(&lp);
    lp.mode = (it / 13 + w->index) % 4;
    lp.log_capacity = 1000;
    if (!STATUS_OK(w, "set_learning", chorus_engine_set_learning(g_engine, &lp))) return;
    if (!STATUS_OK(w, "slate_log", chorus_engine_slate_log(g_engine, (uint32_t)(it % 4), rows, 16, &count))) return;
    shown = count < 16 ? count : 16;
    for (i = 0; i < shown; i++)
        WCHECK(w, rows[i].slot >= 0 && rows[i].slot < K && rows[i].propensity > 0 && rows[i].propensity <= 1 && isfinite(rows[i].reward),
               "slate_log: row %lu malformed", (unsigned long)i);
}

static void op_stats(worker *w, int it) {
    chorus_engine_stats st = get_stats(g_engine);
    size_t n = 0, i;
    op_learning(w, it);
    WCHECK(w, st.fitted == 1 && st.n_users >= N_USERS && st.n_items >= N_ITEMS && st.n_interactions >= d_n,
           "stats: fitted %u, %llu users, %llu items", (unsigned)st.fitted, (unsigned long long)st.n_users,
           (unsigned long long)st.n_items);
    if (!STATUS_OK(w, "agent_count", chorus_engine_agent_count(g_engine, &n))) return;
    for (i = 0; i < n; i++) {
        const char *name = NULL;
        float weight = -1;
        /* A fit publishing a model with fewer agents in between: NOT_FOUND, as documented. */
        if (status_in(w, __LINE__, "agent_info", chorus_engine_agent_info(g_engine, i, &name, &weight), 2, CHORUS_OK,
                      CHORUS_ERR_NOT_FOUND))
            WCHECK(w, name && name[0] && isfinite(weight) && weight >= 0, "agent_info %lu", (unsigned long)i);
    }
}

static void op_graph(worker *w, int it) {
    chorus_kg *kg = NULL;
    char head[64], tail[64];
    const char *h[1], *r[1] = {"related_to"}, *t[1];
    size_t added = 0, ne = 0, nr = 0, nt = 0;
    snprintf(head, sizeof head, "entity-%d-%d", w->index, it);
    snprintf(tail, sizeof tail, "entity-%d", it % 5);
    h[0] = head;
    t[0] = tail;
    if (!STATUS_OK(w, "engine_knowledge_graph", chorus_engine_knowledge_graph(g_engine, &kg))) return;
    if (STATUS_OK(w, "kg_add_triples", chorus_kg_add_triples(kg, h, r, t, 1, &added)))
        WCHECK(w, added == 1, "kg_add_triples: %lu added", (unsigned long)added);
    if (STATUS_OK(w, "kg_counts", chorus_kg_counts(kg, &ne, &nr, &nt))) WCHECK(w, nt >= 1 && nr >= 1, "kg_counts");
    chorus_kg_free(kg);
}

/* Which call iteration `it` of thread `t` makes: every thread cycles through all of them, shifted,
 * so at any moment different threads make different calls. Fits are the slowest call: about one
 * in thirteen; feedback two in thirteen. */
enum { OP_RECOMMEND, OP_DETAILS, OP_EXPLAIN, OP_FEEDBACK, OP_SIMILAR, OP_ADD, OP_SAVE_LOAD, OP_TEXTS, OP_RECOMMEND2,
       OP_FEEDBACK2, OP_STATS, OP_GRAPH, OP_FIT, N_OPS };

static void *worker_main(void *p) {
    worker *w = (worker *)p;
    scratch *s = malloc(sizeof *s);
    int it;
    if (!s) {
        failf(w, __LINE__, "out of memory");
        return NULL;
    }
    for (it = 0; it < w->iterations; it++) {
        int op = (w->index + it) % N_OPS;
        w->calls[op]++;
        switch (op) {
        case OP_RECOMMEND: case OP_RECOMMEND2: op_recommend(w, it, s); break;
        case OP_DETAILS: op_recommend_details(w, it, s); break;
        case OP_EXPLAIN: op_explain(w, it, s); break;
        case OP_SIMILAR: op_similar(w, it, s); break;
        case OP_ADD: op_add(w, it); break;
        case OP_FEEDBACK: case OP_FEEDBACK2: op_feedback(w, it, s); break;
        case OP_SAVE_LOAD: op_save_load(w, it); break;
        case OP_TEXTS: op_texts(w, it); break;
        case OP_STATS: op_stats(w, it); break;
        case OP_GRAPH: op_graph(w, it); break;
        case OP_FIT: op_fit(w, it); break;
        default: break;
        }
    }
    free(s);
    return NULL;
}

int main(int argc, char **argv) {
    const char *tmp = getenv("TMPDIR");
    chorus_engine_params ep;
    chorus_fit_params fp;
    worker workers[THREADS];
    pthread_t th[THREADS];
    int iterations = argc > 1 ? atoi(argv[1]) : 16;
    int i, started = 0, op;
    int calls[N_OPS];
    char path[1024];

    if (iterations < 1 || iterations > MAX_ITERATIONS) {
        printf("usage: %s [iterations 1..%d]\n", argv[0], MAX_ITERATIONS);
        return 2;
    }
    build_data();
    snprintf(g_dir, sizeof g_dir, "%s/chorus-stress-XXXXXX", (tmp && tmp[0]) ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        printf("cannot create a temporary directory: %s\n", strerror(errno));
        return 2;
    }
    path_in_dir(g_shared_path, sizeof g_shared_path, "shared.chorus");
    if (chorus_set_log_callback(log_cb, &g_log_token) != CHORUS_OK) g_failed++;

    group_begin("stress: set-up (texts, facts, a first fit)");
    chorus_engine_params_init(&ep);
    ep.flags = CHORUS_ENGINE_HASHING_ENCODER; /* deterministic and fast; the transformer is tested elsewhere */
    EXPECT(chorus_engine_create(&ep, &g_engine), CHORUS_OK);
    if (!g_engine) {
        group_end();
        printf("%d passed, %d failed\n", g_passed, g_failed);
        return 1;
    }
    EXPECT(chorus_engine_add_interactions(g_engine, d_user, d_item, d_weight, d_time, d_n), CHORUS_OK);
    {
        const char *texts[N_ITEMS];
        char buf[N_ITEMS][64];
        for (i = 0; i < N_ITEMS; i++) {
            snprintf(buf[i], sizeof buf[i], "%s item %d", item_cluster(g_items[i]) ? "thriller" : "animated comedy", i);
            texts[i] = buf[i];
        }
        EXPECT(chorus_engine_set_item_texts(g_engine, g_items, texts, N_ITEMS), CHORUS_OK);
    }
    fp = small_fit_params();
    fp.iterations = 5;
    EXPECT(chorus_engine_fit(g_engine, &fp), CHORUS_OK);
    group_end();

    group_begin("stress: threads on one engine");
    memset(workers, 0, sizeof workers);
    for (i = 0; i < THREADS; i++) {
        workers[i].index = i;
        workers[i].iterations = iterations;
        if (pthread_create(&th[i], NULL, worker_main, &workers[i]) != 0) break;
        started++;
    }
    CHECK_MSG(started == THREADS, "all threads started");
    memset(calls, 0, sizeof calls);
    for (i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        for (op = 0; op < N_OPS; op++) calls[op] += workers[i].calls[op];
        if (workers[i].failures) printf("  %d failure(s); first: %s\n", workers[i].failures, workers[i].first);
        CHECK_MSG(workers[i].failures == 0, "every call of the thread returned a documented status, results well formed");
    }
    for (op = 0; op < N_OPS; op++) CHECK_MSG(calls[op] > 0 || iterations < N_OPS, "every kind of call was made");
    group_end();

    group_begin("stress: afterwards");
    {
        int64_t user = g_users[0];
        int64_t ids[K];
        float scores[K];
        chorus_engine *l = NULL;
        chorus_engine_stats a, b;
        size_t filled = 0;
        EXPECT(chorus_engine_recommend(g_engine, &user, 1, K, NULL, ids, scores, K, NULL, 0, NULL), CHORUS_OK);
        CHECK(row_ok(ids, scores, K, 1, &filled) && filled == K);
        EXPECT(chorus_engine_fit(g_engine, &fp), CHORUS_OK);
        a = get_stats(g_engine);
        CHECK_MSG(a.n_model_users > N_USERS && a.n_model_items > N_ITEMS,
                  "the users and items the threads added are in the model after a fit");
        EXPECT(chorus_engine_save(g_engine, g_shared_path), CHORUS_OK);
        EXPECT(chorus_engine_load(g_shared_path, &l), CHORUS_OK);
        if (l) {
            b = get_stats(l);
            CHECK(a.n_users == b.n_users && a.n_items == b.n_items && a.n_interactions == b.n_interactions &&
                  a.n_item_texts == b.n_item_texts && a.n_item_facts == b.n_item_facts);
            chorus_engine_free(l);
        }
        CHECK_MSG(count_siblings(g_shared_path) == 0, "no temporary file beside the shared path");
        for (i = 0; i < THREADS; i++) {
            char name[64];
            snprintf(name, sizeof name, "thread-%d.chorus", i);
            path_in_dir(path, sizeof path, name);
            CHECK_MSG(count_siblings(path) == 0, "no temporary file beside a thread's path");
        }
    }
    chorus_engine_free(g_engine);
    chorus_set_log_callback(NULL, NULL);
    pthread_mutex_lock(&g_log_mutex);
    CHECK_MSG(g_log_bad == 0, "every log line well formed");
    pthread_mutex_unlock(&g_log_mutex);
    group_end();

    remove_tree(g_dir);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
