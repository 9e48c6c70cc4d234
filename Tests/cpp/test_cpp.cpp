// test_cpp.cpp — the C++ wrapper (include/chorus.hpp): every method, its error path (a chorus::error
// with the status and the library's message), and the handles' move semantics and destructors.
// Built with -std=c++17 -Wall -Wextra -Werror -pedantic (make test-cpp), and again under ASan + UBSan.
// Prints one line per group, then "N passed, M failed"; exits 1 if anything failed.
#include "chorus.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unistd.h>
#include <vector>

namespace {

int g_passed = 0, g_failed = 0;

bool check_impl(bool ok, const char *what, int line) {
    if (ok) {
        g_passed++;
    } else {
        g_failed++;
        std::printf("  FAILED (line %d): %s\n", line, what);
    }
    return ok;
}

#define CHECK(cond) check_impl(static_cast<bool>(cond), #cond, __LINE__)

// Runs `body`, which must throw chorus::error with `status`; returns its message ("" if it did not).
template <class F>
std::string expect_error(F body, chorus_status status, const char *what, int line) {
    try {
        body();
    } catch (const chorus::error &e) {
        bool ok = e.status() == status && std::string(e.status_name()) == chorus_status_name(status) &&
                  std::string(e.what()).size() > 0;
        if (!ok) std::printf("  got %s: %s\n", e.status_name(), e.what());
        check_impl(ok, what, line);
        return e.what();
    } catch (const std::exception &e) {
        std::printf("  unexpected exception: %s\n", e.what());
        check_impl(false, what, line);
        return "";
    }
    std::printf("  no exception\n");
    check_impl(false, what, line);
    return "";
}

#define EXPECT_ERROR(status, ...) expect_error([&]() { __VA_ARGS__; }, (status), #__VA_ARGS__, __LINE__)

bool contains(const std::string &text, const std::string &part) { return text.find(part) != std::string::npos; }

std::string g_dir;

std::string path(const std::string &name) { return g_dir + "/" + name; }

void write_file(const std::string &p, const std::string &text) {
    std::ofstream f(p, std::ios::binary);
    f << text;
}

void group(const char *name) { std::printf("%s\n", name); }

// Two clusters: users 1-20 play items 100-109, users 21-40 items 200-209, 6 items each.
struct data_set {
    std::vector<int64_t> users, items, timestamps;
    std::vector<float> weights;
};

data_set two_clusters() {
    data_set d;
    for (int64_t u = 1; u <= 40; u++) {
        int64_t base = u <= 20 ? 100 : 200;
        for (int64_t j = 0; j < 6; j++) {
            d.users.push_back(u);
            d.items.push_back(base + (u * 3 + j * 7) % 10);
            d.weights.push_back(static_cast<float>(1 + (u + j) % 4));
            d.timestamps.push_back(1700000000 + 3600 * j);
        }
    }
    return d;
}

bool in_cluster(int64_t user, int64_t item) { return user <= 20 ? (item >= 100 && item < 110) : (item >= 200 && item < 210); }

bool seen(const data_set &d, int64_t user, int64_t item) {
    for (size_t i = 0; i < d.users.size(); i++)
        if (d.users[i] == user && d.items[i] == item) return true;
    return false;
}

// A C handle freed for good: any call with it is INVALID_ARGUMENT (the library never reuses tokens).
bool engine_freed(chorus_engine *raw) {
    size_t n = 0;
    return chorus_engine_agent_count(raw, &n) == CHORUS_ERR_INVALID_ARGUMENT;
}
bool kg_freed(chorus_kg *raw) { return chorus_kg_counts(raw, nullptr, nullptr, nullptr) == CHORUS_ERR_INVALID_ARGUMENT; }
bool encoder_freed(chorus_encoder *raw) {
    size_t d = 0;
    return chorus_encoder_dim(raw, &d) == CHORUS_ERR_INVALID_ARGUMENT;
}

chorus::engine_options hashing() {
    chorus::engine_options o;
    o.hashing_encoder = true;  // fast and always there: these tests are about the wrapper
    return o;
}

chorus::fit_options small_fit() {
    chorus::fit_options f;
    f.factors = 4;
    f.iterations = 5;
    f.regularization = 0.1f;
    f.threads = 1;
    return f;
}

void test_library() {
    group("library: version, status names, struct sizes");
    CHECK(chorus::version() == std::to_string(CHORUS_VERSION_MAJOR) + "." + std::to_string(CHORUS_VERSION_MINOR) + "." +
                                   std::to_string(CHORUS_VERSION_PATCH));
    CHECK(chorus::version_number() == CHORUS_VERSION_NUMBER);
    CHECK(chorus::status_name(CHORUS_ERR_NOT_FOUND) == "CHORUS_ERR_NOT_FOUND");
    CHECK(chorus::struct_size("chorus_fit_params") == sizeof(chorus_fit_params));
    CHECK(chorus::struct_size("chorus_recommend_params") == sizeof(chorus_recommend_params));
    CHECK(chorus::struct_size("no_such_struct") == 0);
    std::string msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, chorus::struct_size(std::string("chorus\0x", 8)));
    CHECK(contains(msg, "struct_name"));
}

void test_errors() {
    group("errors: status and the library's message");
    const std::string missing = path("no-such-snapshot.chorus");
    std::string msg = EXPECT_ERROR(CHORUS_ERR_NOT_FOUND, chorus::engine::load(missing));
    // The message is the C API's own for the same call.
    chorus_engine *raw = nullptr;
    CHECK(chorus_engine_load(missing.c_str(), &raw) == CHORUS_ERR_NOT_FOUND && raw == nullptr);
    CHECK(msg == chorus_last_error());
    CHECK(contains(msg, missing));
    // A chorus::error is a std::runtime_error.
    bool caught = false;
    try {
        chorus::knowledge_graph::load(missing);
    } catch (const std::runtime_error &e) {
        caught = contains(e.what(), missing);
    }
    CHECK(caught);

    chorus::engine e(hashing());
    data_set d = two_clusters();
    msg = EXPECT_ERROR(CHORUS_ERR_NOT_FITTED, (void)e.recommend({1}, 3));
    CHECK(msg == chorus_last_error());
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.add_interactions(d.users, std::vector<int64_t>{1, 2}));
    CHECK(contains(msg, "item_ids") && contains(msg, "user_ids"));
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.add_interactions(d.users, d.items, std::vector<float>{1.0f}));
    CHECK(contains(msg, "weights"));
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.add_interactions(d.users, d.items, {}, std::vector<int64_t>{1}));
    CHECK(contains(msg, "timestamps"));
    EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.add_interactions(std::vector<int64_t>{}, std::vector<int64_t>{}));
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.add_interactions({1, 2}, {10, 11}, {1.0f, NAN}));
    CHECK(msg == chorus_last_error() && contains(msg, "weight"));
    CHECK(e.stats().n_interactions == 0);  // the rejected batches added nothing
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.set_item_texts({1, 2}, {"fine", std::string("a\0b", 3)}));
    CHECK(contains(msg, "texts[1]") && contains(msg, "NUL"));
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.set_user_texts({1}, std::vector<std::string>{}));
    CHECK(contains(msg, "texts"));
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.define_scenario("", "no name"));
    CHECK(msg == chorus_last_error());
    e.add_interactions(d.users, d.items);
    e.fit(small_fit());
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, (void)e.recommend({1, 2}, static_cast<size_t>(-1) / 2 + 1));
    CHECK(contains(msg, "overflows"));
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, (void)e.recommend({1}, 0));
    CHECK(msg == chorus_last_error());
    chorus::recommend_options bad;
    bad.diversity = 2;
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, (void)e.recommend({1}, 3, bad));
    CHECK(contains(msg, "diversity"));
    bad = chorus::recommend_options();
    bad.scenario = "undefined";
    EXPECT_ERROR(CHORUS_ERR_NOT_FOUND, (void)e.recommend({1}, 3, bad));
    EXPECT_ERROR(CHORUS_ERR_NOT_FOUND, (void)e.similar_items({999}, 3));
    EXPECT_ERROR(CHORUS_ERR_NOT_FOUND, (void)e.explain(1, 999));
    EXPECT_ERROR(CHORUS_ERR_IO, e.save(g_dir));  // a directory
}

void test_engine() {
    group("engine: data, fit, recommend, similar items and users, explain, stats, save / load");
    data_set d = two_clusters();
    chorus::engine e(hashing());
    CHECK(static_cast<bool>(e) && e.get() != nullptr);
    CHECK(contains(e.encoder_name(), "hashing"));
    e.define_scenario("home", "the home feed: what is new and what suits you");
    // The first half in the default scenario, with weights and timestamps; the rest in "home".
    size_t half = d.users.size() / 2;
    e.add_interactions(chorus::array_view<int64_t>(d.users.data(), half), chorus::array_view<int64_t>(d.items.data(), half),
                       chorus::array_view<float>(d.weights.data(), half), chorus::array_view<int64_t>(d.timestamps.data(), half));
    e.add_scenario_interactions("home", chorus::array_view<int64_t>(d.users.data() + half, d.users.size() - half),
                                chorus::array_view<int64_t>(d.items.data() + half, d.items.size() - half),
                                chorus::array_view<float>(d.weights.data() + half, d.weights.size() - half));
    EXPECT_ERROR(CHORUS_ERR_NOT_FOUND, e.add_scenario_interactions("nowhere", {1}, {100}));
    std::vector<int64_t> text_items;
    std::vector<std::string> texts;
    for (int64_t i = 100; i < 110; i++) { text_items.push_back(i); texts.push_back("jazz piano trio record " + std::to_string(i)); }
    for (int64_t i = 200; i < 210; i++) { text_items.push_back(i); texts.push_back("heavy metal guitar album " + std::to_string(i)); }
    e.set_item_texts(text_items, texts);
    e.set_user_texts({500}, {"loves jazz piano"});
    CHECK(e.add_item_facts({100, 200}, {"genre", "genre"}, {"jazz", "metal"}) == 2);
    CHECK(e.add_item_facts({100}, {"genre"}, {"jazz"}) == 0);  // repeated

    chorus::engine_stats s = e.stats();
    CHECK(s.fitted == 0 && s.n_users == 40 && s.n_items == 20 && s.n_interactions == d.users.size());
    CHECK(s.n_item_texts == 20 && s.n_user_texts == 1 && s.n_item_facts == 2);
    std::vector<chorus::agent_info> before = e.agents();
    CHECK(!before.empty() && before[0].name == "popularity");

    std::vector<std::string> stages;
    double last = -1;
    bool monotone = true;
    chorus::fit_options f = small_fit();
    f.progress = [&](std::string_view stage, double fraction) {
        if (stages.empty() || stages.back() != stage) stages.emplace_back(stage);
        if (fraction < last || fraction < 0 || fraction > 1) monotone = false;
        last = fraction;
        return false;
    };
    e.fit(f);
    CHECK(monotone && stages.size() >= 2 && stages.back() == "done" && last == 1.0);
    CHECK(e.stats().fitted == 1);
    std::vector<chorus::agent_info> agents = e.agents();
    float total = 0;
    std::set<std::string> names;
    for (const auto &a : agents) { total += a.weight; names.insert(a.name); }
    CHECK(agents.size() >= 3 && names.count("als") == 1 && names.count("content") == 1 && total > 0.5f);

    // Known answer: every recommendation in the user's cluster, none seen, best first.
    std::vector<chorus::user_recommendations> recs = e.recommend({1, 40, 12345}, 3);
    CHECK(recs.size() == 3 && recs[0].user == 1 && recs[1].user == 40 && recs[2].user == 12345);
    bool ok = true;
    for (size_t u = 0; u < 2; u++) {
        ok = ok && recs[u].items.size() == 3 && !recs[u].cold_fallback && recs[u].agents.empty();
        for (size_t j = 0; j < recs[u].items.size(); j++) {
            const auto &r = recs[u].items[j];
            ok = ok && in_cluster(recs[u].user, r.item) && !seen(d, recs[u].user, r.item) && r.shares.empty();
            if (j > 0) ok = ok && r.score <= recs[u].items[j - 1].score;
        }
    }
    CHECK(ok);
    CHECK(recs[2].cold_fallback && recs[2].items.size() == 3);

    // Shares and the agents they refer to.
    chorus::recommend_options o;
    o.shares = true;
    recs = e.recommend(std::vector<int64_t>{1, 21}, 4, o);
    ok = recs.size() == 2;
    for (const auto &list : recs) {
        ok = ok && list.agents.size() == agents.size() && list.agents[0] == "popularity" && list.items.size() == 4;
        for (const auto &r : list.items) {
            float sum = 0;
            for (float x : r.shares) sum += x;
            ok = ok && r.shares.size() == list.agents.size() && std::fabs(sum - 1.0f) < 1e-3f;
        }
    }
    CHECK(ok);

    // Allow / deny lists, seen items, one agent, scenario, query, history, diversity.
    o = chorus::recommend_options();
    o.allow_items = std::vector<int64_t>{101, 102, 103, 104, 105, 106, 107, 108, 109, 201};
    o.deny_items = {101, 102};
    recs = e.recommend({21}, 3, o);
    ok = recs[0].items.size() >= 1;
    for (const auto &r : recs[0].items) ok = ok && r.item != 101 && r.item != 102 && ((r.item > 102 && r.item <= 109) || r.item == 201);
    CHECK(ok);
    o.allow_items = std::vector<int64_t>{};  // present but empty: nothing may be recommended
    o.deny_items.clear();
    CHECK(e.recommend({1}, 3, o)[0].items.empty());
    o = chorus::recommend_options();
    o.include_seen = true;
    recs = e.recommend({1}, 10, o);
    size_t seen_count = 0;
    for (const auto &r : recs[0].items) seen_count += seen(d, 1, r.item) ? 1 : 0;
    CHECK(recs[0].items.size() == 10 && seen_count > 0);
    o = chorus::recommend_options();
    o.agent = "popularity";
    o.shares = true;
    recs = e.recommend({1}, 3, o);
    CHECK(recs[0].items.size() == 3);
    o.agent = "no-such-agent";
    EXPECT_ERROR(CHORUS_ERR_NOT_FOUND, (void)e.recommend({1}, 3, o));
    o = chorus::recommend_options();
    o.scenario = "home";
    CHECK(e.recommend({1}, 3, o)[0].items.size() == 3);
    o = chorus::recommend_options();
    o.query = "heavy metal guitar";
    recs = e.recommend({1}, 3, o);
    CHECK(recs[0].items.size() == 3);
    o = chorus::recommend_options();
    o.history_items = {200, 201, 202};
    recs = e.recommend({99999}, 3, o);  // an anonymous visitor with a metal session
    ok = recs[0].items.size() == 3;
    for (const auto &r : recs[0].items) ok = ok && r.item != 200 && r.item != 201 && r.item != 202;
    CHECK(ok);
    o = chorus::recommend_options();
    o.diversity = 0.5f;
    CHECK(e.recommend({1}, 5, o)[0].items.size() == 5);
    // A user known only by a profile text.
    CHECK(!e.recommend({500}, 3)[0].items.empty());

    // Similar items stay in their cluster, the item itself excluded; allow lists apply.
    std::vector<chorus::similar_items_result> sim = e.similar_items({100, 205}, 3);
    ok = sim.size() == 2 && sim[0].item == 100 && sim[1].item == 205;
    for (const auto &s2 : sim) {
        ok = ok && s2.items.size() == 3;
        for (const auto &r : s2.items) ok = ok && r.item != s2.item && (r.item / 100 == s2.item / 100);
    }
    CHECK(ok);
    o = chorus::recommend_options();
    o.allow_items = std::vector<int64_t>{103, 104};
    sim = e.similar_items({100}, 2, o);
    CHECK(sim[0].items.size() == 2 && (sim[0].items[0].item == 103 || sim[0].items[0].item == 104));

    // Similar users stay in their cluster, the user itself excluded; allow / deny lists apply.
    std::vector<chorus::similar_users_result> su = e.similar_users({3, 33}, 4);
    ok = su.size() == 2 && su[0].user == 3 && su[1].user == 33;
    for (const auto &s2 : su) {
        ok = ok && s2.users.size() == 4;
        for (const auto &u : s2.users) ok = ok && u.user != s2.user && ((u.user <= 20) == (s2.user <= 20)) && u.score <= 1.0001f;
    }
    CHECK(ok);
    su = e.similar_users({3}, 3, std::vector<int64_t>{5, 25}, {5});
    CHECK(su[0].users.size() == 1 && su[0].users[0].user == 25);
    EXPECT_ERROR(CHORUS_ERR_NOT_FOUND, (void)e.similar_users({999}, 3));
    std::string su_msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, (void)e.similar_users({3}, 1000));
    CHECK(su_msg == chorus_last_error() && contains(su_msg, "k ="));

    // Explain: one sentence, shares per agent, the history item it comes from.
    int64_t top = e.recommend({1}, 1)[0].items[0].item;
    chorus::explanation x = e.explain(1, top);
    float sum = 0;
    for (float v : x.shares) sum += v;
    CHECK(!x.sentence.empty() && x.agents.size() == x.shares.size() && !x.agents.empty() && std::fabs(sum - 1.0f) < 1e-3f);
    CHECK(x.because_item == CHORUS_NO_ITEM || seen(d, 1, x.because_item));
    o = chorus::recommend_options();
    o.query = "jazz piano";
    x = e.explain(1, 103, o);
    CHECK(contains(x.matched_terms, "jazz") || contains(x.matched_terms, "piano"));

    // Save and load: the same recommendations.
    const std::string file = path("engine.chorus");
    e.save(file);
    chorus::engine loaded = chorus::engine::load(file);
    auto a = e.recommend({1, 21}, 5), b = loaded.recommend({1, 21}, 5);
    ok = a.size() == b.size();
    for (size_t u = 0; ok && u < a.size(); u++) {
        ok = a[u].items.size() == b[u].items.size();
        for (size_t j = 0; ok && j < a[u].items.size(); j++) ok = a[u].items[j].item == b[u].items[j].item;
    }
    CHECK(ok);
    CHECK(loaded.stats().n_item_facts == 2);

    // The engine's knowledge graph: shared, holds the item facts as triples.
    chorus::knowledge_graph g = e.graph();
    CHECK(g.counts().triples == 2);
    CHECK(g.add_triples({"jazz"}, {"subgenre of"}, {"music"}) == 1);
    chorus::knowledge_graph g2 = e.graph();  // the same graph, a second handle
    CHECK(g2.counts().triples == 3);
}

void test_progress_callbacks() {
    group("fit progress: cancel, and an exception from the callback");
    data_set d = two_clusters();
    chorus::engine e(hashing());
    e.add_interactions(d.users, d.items);
    e.fit(small_fit());
    auto before = e.recommend({1}, 3);
    chorus::fit_options f = small_fit();
    f.seed = 7;
    f.progress = [](std::string_view, double) { return true; };
    EXPECT_ERROR(CHORUS_ERR_CANCELLED, e.fit(f));
    int calls = 0;
    f.progress = [&](std::string_view, double) -> bool {
        if (++calls == 2) throw std::logic_error("from the callback");
        return false;
    };
    std::string what;
    try {
        e.fit(f);
    } catch (const std::logic_error &x) {
        what = x.what();
    }
    CHECK(what == "from the callback" && calls == 2);  // rethrown as it was; no call after it
    auto after = e.recommend({1}, 3);  // the previous model still serves
    CHECK(e.stats().fitted == 1 && after[0].items.size() == before[0].items.size() &&
          after[0].items[0].item == before[0].items[0].item);
}

void test_log_callback() {
    group("log callback");
    std::vector<std::pair<int32_t, std::string>> lines;
    chorus::set_log_callback([&](int32_t level, std::string_view message) { lines.emplace_back(level, std::string(message)); });
    chorus::engine e(hashing());
    chorus_kg_free(reinterpret_cast<chorus_kg *>(e.get()));  // the wrong free: a no-op, logged as a warning
    bool warned = false;
    for (const auto &l : lines) warned = warned || (l.first == CHORUS_LOG_WARNING && !l.second.empty());
    CHECK(warned);
    CHECK(e.stats().fitted == 0);  // the engine is still there
    // A callback that throws: the exception stays in the wrapper.
    chorus::set_log_callback([](int32_t, std::string_view) { throw std::runtime_error("ignored"); });
    chorus_kg_free(reinterpret_cast<chorus_kg *>(e.get()));
    CHECK(e.stats().fitted == 0);
    size_t n = lines.size();
    chorus::set_log_callback({});  // cleared
    chorus_kg_free(reinterpret_cast<chorus_kg *>(e.get()));
    CHECK(lines.size() == n);
}

void test_move_semantics() {
    group("handles: move-only, moved-from, destructors free");
    static_assert(!std::is_copy_constructible_v<chorus::engine> && !std::is_copy_assignable_v<chorus::engine>);
    static_assert(!std::is_copy_constructible_v<chorus::encoder> && !std::is_copy_assignable_v<chorus::encoder>);
    static_assert(!std::is_copy_constructible_v<chorus::knowledge_graph> && !std::is_copy_assignable_v<chorus::knowledge_graph>);
    static_assert(std::is_nothrow_move_constructible_v<chorus::engine> && std::is_nothrow_move_assignable_v<chorus::engine>);
    static_assert(std::is_nothrow_move_constructible_v<chorus::encoder> && std::is_nothrow_move_assignable_v<chorus::encoder>);
    static_assert(std::is_nothrow_move_constructible_v<chorus::knowledge_graph> &&
                  std::is_nothrow_move_assignable_v<chorus::knowledge_graph>);

    chorus_engine *raw = nullptr;
    {
        chorus::engine a(hashing());
        raw = a.get();
        a.add_interactions({1, 1, 2, 2}, {10, 11, 10, 12});
        chorus::engine b(std::move(a));
        CHECK(!a && a.get() == nullptr && b.get() == raw);
        CHECK(b.stats().n_interactions == 4);
        // A moved-from handle is NULL to the library: calls fail, they do not crash.
        std::string msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, (void)a.stats());
        CHECK(msg == chorus_last_error());
        chorus::engine c(hashing());
        chorus_engine *raw_c = c.get();
        c = std::move(b);  // frees c's own engine
        CHECK(engine_freed(raw_c) && c.get() == raw && !b);
        chorus::engine &same = c;
        c = std::move(same);  // self-move keeps it
        CHECK(c.get() == raw && !engine_freed(raw));
        a = std::move(c);  // into a moved-from handle
        CHECK(a.get() == raw && !c);
    }
    CHECK(engine_freed(raw));  // the destructor freed it
    {
        chorus::engine a(hashing());
        raw = a.release();
        CHECK(!a && !engine_freed(raw));
    }
    CHECK(!engine_freed(raw));  // released: the caller's to free
    chorus::engine adopted(raw);
    CHECK(adopted.stats().n_interactions == 0);

    chorus_kg *raw_kg = nullptr;
    {
        chorus::knowledge_graph g;
        raw_kg = g.get();
        chorus::knowledge_graph h(std::move(g));
        CHECK(!g && h.get() == raw_kg);
        EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, (void)g.counts());
        chorus::knowledge_graph other;
        chorus_kg *raw_other = other.get();
        other = std::move(h);
        CHECK(kg_freed(raw_other) && other.get() == raw_kg);
    }
    CHECK(kg_freed(raw_kg));
    // A graph handle from an engine is one reference: freeing it leaves the engine's graph alive.
    {
        chorus::engine e(hashing());
        e.add_item_facts({1}, {"genre"}, {"jazz"});
        { chorus::knowledge_graph g = e.graph(); CHECK(g.counts().triples == 1); }
        chorus::knowledge_graph g = e.graph();
        CHECK(g.counts().triples == 1);
    }

    chorus_encoder *raw_enc = nullptr;
    {
        chorus::encoder a;
        raw_enc = a.get();
        chorus::encoder b = std::move(a);
        CHECK(!a && b.get() == raw_enc && b.dim() == 384);
        EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, (void)a.dim());
        chorus::encoder c;
        chorus_encoder *raw_c = c.get();
        c = std::move(b);
        CHECK(encoder_freed(raw_c) && c.get() == raw_enc);
    }
    CHECK(encoder_freed(raw_enc));
    // release() hands the C handle over; the adopting constructor takes it back.
    {
        chorus::encoder a;
        raw_enc = a.release();
        CHECK(!a && !encoder_freed(raw_enc));
    }
    CHECK(!encoder_freed(raw_enc));
    {
        chorus::encoder adopted_enc(raw_enc);
        CHECK(adopted_enc.dim() == 384);
    }
    CHECK(encoder_freed(raw_enc));
    {
        chorus::knowledge_graph g;
        g.add_triples({"a"}, {"r"}, {"b"});
        raw_kg = g.release();
        CHECK(!g && !kg_freed(raw_kg));
    }
    CHECK(!kg_freed(raw_kg));
    {
        chorus::knowledge_graph adopted_kg(raw_kg);
        CHECK(adopted_kg.counts().triples == 1);
    }
    CHECK(kg_freed(raw_kg));
}

void test_encoder() {
    group("encoder");
    chorus::encoder enc;
    CHECK(enc.dim() == 384 && !enc.name().empty());
    auto rows = enc.encode({"a light-hearted animated film", "a tense thriller", ""});
    bool ok = rows.size() == 3;
    for (const auto &r : rows) {
        double norm = 0;
        for (float v : r) norm += double(v) * v;
        ok = ok && r.size() == 384 && (std::fabs(norm - 1.0) < 1e-3 || norm == 0);
    }
    CHECK(ok);
    // No texts: whatever the library answers for n = 0, the wrapper answers the same.
    chorus_status s0 = chorus_encoder_encode(enc.get(), nullptr, 0, nullptr, 0);
    if (s0 == CHORUS_OK) {
        CHECK(enc.encode(std::vector<std::string>{}).empty());
    } else {
        EXPECT_ERROR(s0, (void)enc.encode(std::vector<std::string>{}));
    }
    chorus::encoder_options o;
    o.model_path = path("no-model-here");
    std::string msg = EXPECT_ERROR(CHORUS_ERR_NOT_FOUND, chorus::encoder{o});
    CHECK(contains(msg, "no-model-here"));
    o = chorus::encoder_options();
    o.threads = 1;
    chorus::encoder one(o);
    CHECK(one.encode({"same text"})[0] == enc.encode({"same text"})[0]);
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, (void)enc.encode({std::string("a\0b", 3)}));
    CHECK(contains(msg, "texts[0]"));
}

void test_kg() {
    group("knowledge graph");
    chorus::knowledge_graph g;
    CHECK(g.add_triples({"a", "b", "c", "d", "e", "f"}, {"likes", "likes", "likes", "likes", "likes", "likes"},
                        {"b", "c", "d", "e", "f", "a"}) == 6);
    CHECK(g.add_triples({"a"}, {"likes"}, {"b"}) == 0);
    std::string msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, g.add_triples({"a", "b"}, {"likes"}, {"b", "c"}));
    CHECK(contains(msg, "relations"));
    EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, g.add_triples({""}, {"likes"}, {"b"}));
    const std::string train = path("kg-train.tsv"), test = path("kg-test.tsv"), bad = path("kg-bad.tsv");
    write_file(train, "a\tnear\tc\r\nc\tnear\te\r\nb\tnear\td\r\n");
    write_file(test, "d\tnear\tf\na\tlikes\tb\nzz\tnear\ta\n");
    write_file(bad, "a\tnear\tc\nonly two\tfields\n");
    CHECK(g.load_tsv(train) == 3);
    msg = EXPECT_ERROR(CHORUS_ERR_FORMAT, (void)g.load_tsv(bad));
    CHECK(contains(msg, "2"));  // names the line
    EXPECT_ERROR(CHORUS_ERR_NOT_FOUND, (void)g.load_tsv(path("missing.tsv")));
    chorus::kg_counts c = g.counts();
    CHECK(c.entities == 6 && c.relations == 2 && c.triples == 9);
    EXPECT_ERROR(CHORUS_ERR_NOT_FITTED, (void)g.evaluate_tsv(test));
    EXPECT_ERROR(CHORUS_ERR_NOT_FITTED, (void)g.entity_vector("a"));

    chorus::kg_train_options o;
    o.model = "transe";
    o.dim = 8;
    o.epochs = 3;
    o.batch_size = 4;
    o.negatives = 2;
    o.threads = 1;
    o.seed = 5;
    o.progress = [](std::string_view, double) { return true; };
    EXPECT_ERROR(CHORUS_ERR_CANCELLED, g.train(o));
    int calls = 0;
    o.progress = [&](std::string_view stage, double) { calls += stage == "training"; return false; };
    g.train(o);
    CHECK(calls > 0);
    chorus::kg_metrics m = g.evaluate_tsv(test);
    CHECK(m.queries == 4 && m.skipped == 1 && m.mrr > 0 && m.mrr <= 1);
    std::vector<float> va = g.entity_vector("a"), vr = g.relation_vector("near");
    CHECK(va.size() == 8 && vr.size() == 8);
    EXPECT_ERROR(CHORUS_ERR_NOT_FOUND, (void)g.entity_vector("nobody"));
    EXPECT_ERROR(CHORUS_ERR_NOT_FOUND, (void)g.relation_vector("nothing"));
    o = chorus::kg_train_options();
    o.model = "no-such-model";
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, g.train(o));
    CHECK(contains(msg, "no-such-model"));
    CHECK(g.entity_vector("a") == va);  // the failed training kept the model

    const std::string file = path("graph.chorus");
    g.save(file);
    chorus::knowledge_graph loaded = chorus::knowledge_graph::load(file);
    CHECK(loaded.counts().triples == 9 && loaded.entity_vector("a") == va);
    write_file(path("not-a-graph.chorus"), "hello");
    EXPECT_ERROR(CHORUS_ERR_FORMAT, chorus::knowledge_graph::load(path("not-a-graph.chorus")));
}


// Is `item` among the list's items?
bool lists(const chorus::user_recommendations &r, int64_t item) {
    for (const auto &x : r.items)
        if (x.item == item) return true;
    return false;
}

chorus::engine fitted_two_clusters() {
    data_set d = two_clusters();
    chorus::engine e(hashing());
    e.add_interactions(d.users, d.items, d.weights, d.timestamps);
    e.fit(small_fit());
    return e;
}

void test_feedback() {
    group("feedback: what the next recommend serves, rewards, values, errors");
    // The wrapper's default rewards are the library's.
    chorus_feedback_params fp;
    chorus_feedback_params_init(&fp);
    chorus::feedback_rewards r;
    CHECK(r.impression == fp.impression && r.click == fp.click && r.add_to_cart == fp.add_to_cart &&
          r.purchase == fp.purchase && r.rating == fp.rating && r.skip == fp.skip && r.dismiss == fp.dismiss);

    chorus::engine e = fitted_two_clusters();
    // A purchase of the top item: the next list no longer holds it (consumed like a seen item).
    int64_t top = e.recommend({1}, 1)[0].items[0].item;
    CHECK(lists(e.recommend({1}, 5)[0], top));
    e.feedback({1}, {top}, {CHORUS_EVENT_PURCHASE});
    CHECK(!lists(e.recommend({1}, 5)[0], top));
    CHECK(e.stats().n_interactions == two_clusters().users.size() + 1);
    // A dismissal drops the item without an interaction.
    int64_t next = e.recommend({2}, 1)[0].items[0].item;
    e.feedback({2}, {next}, {CHORUS_EVENT_DISMISS});
    CHECK(!lists(e.recommend({2}, 8)[0], next));
    // Rewards pass through: a click worth 0 is only counted, the item stays; a default click consumes it.
    chorus::feedback_options zero_click;
    zero_click.rewards.click = 0;
    int64_t third = e.recommend({3}, 1)[0].items[0].item;
    e.feedback({3}, {third}, {CHORUS_EVENT_CLICK}, {}, {}, {}, zero_click);
    CHECK(e.recommend({3}, 1)[0].items[0].item == third);
    // Values pass through: a rating of 0 is a reward of 0 too; a rating of 5 consumes the item.
    e.feedback({3}, {third}, {CHORUS_EVENT_RATING}, {0.0f}, {1700100000});
    CHECK(e.recommend({3}, 1)[0].items[0].item == third);
    e.feedback({3}, {third}, {CHORUS_EVENT_RATING}, {5.0f}, {1700100000});
    CHECK(!lists(e.recommend({3}, 5)[0], third));
    // A user unknown to the model is served personally from their first positive events on, in their cluster.
    CHECK(e.recommend({9001}, 3)[0].cold_fallback);
    e.feedback({9001, 9001, 9001}, {200, 201, 202}, {CHORUS_EVENT_CLICK, CHORUS_EVENT_PURCHASE, CHORUS_EVENT_CLICK});
    auto cold = e.recommend({9001}, 3)[0];
    bool ok = !cold.cold_fallback && cold.items.size() == 3;
    for (const auto &x : cold.items) ok = ok && x.item >= 203 && x.item < 210;
    CHECK(ok);

    // Errors: nothing of the batch is recorded.
    size_t before = e.stats().n_interactions;
    std::string msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.feedback({4}, {100}, {99}));
    CHECK(msg == chorus_last_error() && contains(msg, "99"));
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.feedback({4, 5}, {100, 101}, {CHORUS_EVENT_CLICK}));
    CHECK(contains(msg, "events") && contains(msg, "user_ids"));
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.feedback({4, 5}, {100}, {CHORUS_EVENT_CLICK, CHORUS_EVENT_CLICK}));
    CHECK(contains(msg, "item_ids"));
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.feedback({4}, {100}, {CHORUS_EVENT_RATING}, {1.0f, 2.0f}));
    CHECK(contains(msg, "values"));
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.feedback({4}, {100}, {CHORUS_EVENT_CLICK}, {}, {1, 2}));
    CHECK(contains(msg, "timestamps"));
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.feedback({4}, {100}, {CHORUS_EVENT_CLICK}, {}, {}, {7, 8}));
    CHECK(contains(msg, "request_ids"));
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.feedback({4}, {100}, {CHORUS_EVENT_RATING}, {-1.0f}));
    CHECK(msg == chorus_last_error());
    chorus::feedback_options bad;
    bad.rewards.purchase = NAN;
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.feedback({4}, {100}, {CHORUS_EVENT_PURCHASE}, {}, {}, {}, bad));
    CHECK(msg == chorus_last_error());
    bad = chorus::feedback_options();
    bad.scenario = "undefined";
    EXPECT_ERROR(CHORUS_ERR_NOT_FOUND, e.feedback({4}, {100}, {CHORUS_EVENT_CLICK}, {}, {}, {}, bad));
    bad.scenario = std::string("a\0b", 3);
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.feedback({4}, {100}, {CHORUS_EVENT_CLICK}, {}, {}, {}, bad));
    CHECK(contains(msg, "scenario") && contains(msg, "NUL"));
    EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.feedback(std::vector<int64_t>{}, std::vector<int64_t>{}, std::vector<int32_t>{}));
    CHECK(e.stats().n_interactions == before);
    // In a defined scenario it is accepted.
    e.define_scenario("home", "the home feed");
    bad.scenario = "home";
    e.feedback({4}, {100}, {CHORUS_EVENT_CLICK}, {}, {}, {}, bad);
    CHECK(e.stats().n_interactions == before + 1);
}

void test_learning() {
    group("learning coordinator: request ids, feedback naming them, the slate log");
    chorus_learning_params lp;
    chorus_learning_params_init(&lp);
    chorus::learning_options defaults;
    CHECK(defaults.mode == lp.mode && defaults.exploration == lp.exploration && defaults.learning_rate == lp.learning_rate &&
          defaults.prior_strength == lp.prior_strength && defaults.log_capacity == lp.log_capacity && defaults.seed == lp.seed);
    CHECK(defaults.noise_multiplier == lp.noise_multiplier && defaults.clip_norm == lp.clip_norm && defaults.delta == lp.delta &&
          defaults.release_slates == lp.release_slates);

    chorus::engine e = fitted_two_clusters();
    chorus::learning_options lo;
    lo.mode = CHORUS_LEARNING_LINUCB;
    e.set_learning(lo);
    chorus::recommend_options o;
    o.request_ids = {1001, 1002};
    auto served = e.recommend({1, 21}, 3, o);
    CHECK(served.size() == 2 && served[0].items.size() == 3 && served[1].items.size() == 3);
    int64_t bought = served[0].items[1].item;  // the second slot of user 1's slate
    e.feedback({1}, {bought}, {CHORUS_EVENT_PURCHASE}, {}, {}, {1001});
    CHECK(e.slate_log().empty());  // both slates still open
    chorus::slate_log_options close;
    close.close_open = true;
    std::vector<chorus::slate_row> rows = e.slate_log(close);
    bool ok = rows.size() == 6;
    size_t rewarded = 0;
    for (const auto &row : rows) {
        const bool first = row.request_id == 1001;
        ok = ok && (first || row.request_id == 1002) && row.user_id == (first ? 1 : 21) && row.slot >= 0 && row.slot < 3;
        ok = ok && row.item_id == served[first ? 0 : 1].items[static_cast<size_t>(row.slot)].item;
        ok = ok && row.propensity == 1.0f;  // LinUCB is deterministic
        if (first && row.item_id == bought) {
            rewarded++;
            ok = ok && row.reward == 4.0f && row.slot == 1;  // a purchase's default reward
        } else {
            ok = ok && row.reward == 0.0f;
        }
    }
    CHECK(ok && rewarded == 1);
    // Reading does not remove; draining does.
    CHECK(e.slate_log().size() == 6);
    chorus::slate_log_options drain;
    drain.drain = true;
    CHECK(e.slate_log(drain).size() == 6);
    CHECK(e.slate_log().empty());
    // Turned off (the default options): request ids are ignored, nothing is logged.
    e.set_learning();
    o = chorus::recommend_options();
    o.request_ids = {2001};
    e.recommend({1}, 3, o);
    CHECK(e.slate_log(close).empty());

    // Errors.
    o.request_ids = {1, 2};
    std::string msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, (void)e.recommend({1}, 3, o));
    CHECK(contains(msg, "request_ids"));
    e.set_learning(lo);
    o.request_ids = {CHORUS_NO_REQUEST};
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, (void)e.recommend({1}, 3, o));
    CHECK(msg == chorus_last_error());
    chorus::learning_options bad;
    bad.mode = 9;
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.set_learning(bad));
    CHECK(msg == chorus_last_error() && contains(msg, "mode"));
    bad = lo;
    bad.exploration = NAN;
    EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.set_learning(bad));
    bad = lo;
    bad.log_capacity = 1000000000ull;
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.set_learning(bad));
    CHECK(contains(msg, "log_capacity"));
    bad = lo;
    bad.noise_multiplier = 1;  // noise without a clip
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.set_learning(bad));
    CHECK(contains(msg, "clip_norm"));
    {
        // Private learning: a release per slate at sigma 1 spends one Gaussian round (5.2986 at 1e-5).
        chorus::engine p = fitted_two_clusters();
        CHECK(p.learning_privacy_spent().epsilon == 0 && p.learning_privacy_spent().releases == 0);
        chorus::learning_options priv = lo;
        priv.clip_norm = 1;
        priv.noise_multiplier = 1;
        priv.release_slates = 1;
        p.set_learning(priv);
        chorus::recommend_options po;
        po.request_ids = {77};
        auto slate = p.recommend({1}, 3, po);
        p.feedback({1}, {slate[0].items[0].item}, {CHORUS_EVENT_SKIP}, {}, {}, {77});
        chorus::slate_log_options closing;
        closing.close_open = true;
        CHECK(p.slate_log(closing).size() == 3);
        chorus::learning_privacy_result spent = p.learning_privacy_spent();
        CHECK(spent.releases == 1 && spent.delta == 1e-5 && std::fabs(spent.epsilon - 5.2986) < 1e-3);
    }
    // The policy mode samples: propensities below 1 show up, rewards still reach their row.
    lo.mode = CHORUS_LEARNING_POLICY;
    e.set_learning(lo);
    o.request_ids = {3001};
    served = e.recommend({5}, 3, o);
    e.feedback({5}, {served[0].items[0].item}, {CHORUS_EVENT_CLICK}, {}, {}, {3001});
    rows = e.slate_log(close);
    ok = rows.size() == 3;
    for (const auto &row : rows)
        ok = ok && row.request_id == 3001 && row.propensity > 0 && row.propensity <= 1 &&
             row.reward == (row.slot == 0 ? 1.0f : 0.0f);
    CHECK(ok);
}

// Users `first`..`last` of each cluster (1-20 and 21-40 by offset): a shard of the two-cluster data.
chorus::engine cluster_shard(int64_t first, int64_t last, uint32_t factors, bool fit = true) {
    data_set d = two_clusters();
    data_set s;
    for (size_t i = 0; i < d.users.size(); i++) {
        int64_t u = d.users[i], offset = u <= 20 ? u : u - 20;
        if (offset < first || offset > last) continue;
        s.users.push_back(u);
        s.items.push_back(d.items[i]);
        s.weights.push_back(d.weights[i]);
        s.timestamps.push_back(d.timestamps[i]);
    }
    chorus::engine e(hashing());
    e.add_interactions(s.users, s.items, s.weights, s.timestamps);
    if (fit) {
        chorus::fit_options f = small_fit();
        f.factors = factors;
        f.agents = "als,bpr,itemknn,session";
        f.bpr_epochs = 20;
        e.fit(f);
    }
    return e;
}

bool serves_in_cluster(const chorus::engine &e, std::vector<int64_t> users) {
    bool ok = true;
    for (const auto &list : e.recommend(users, 3)) {
        ok = ok && list.items.size() == 3 && !list.cold_fallback;
        for (const auto &x : list.items) ok = ok && in_cluster(list.user, x.item);
    }
    return ok;
}

void test_sharded() {
    group("sharded training: merge, fit_from, privacy_spent");
    chorus_merge_params mp;
    chorus_merge_params_init(&mp);
    chorus::merge_options defaults;
    CHECK(defaults.threads == mp.threads && defaults.noise_multiplier == mp.noise_multiplier &&
          defaults.clip_norm == mp.clip_norm && defaults.seed == mp.seed && defaults.delta == 0 && mp.delta == 1e-5);

    chorus::engine a = cluster_shard(1, 10, 4), b = cluster_shard(11, 20, 4);
    chorus::engine merged = chorus::engine::merge({&a, &b});
    CHECK(merged.stats().n_users == 40 && merged.stats().n_items == 20 && merged.stats().fitted == 1);
    CHECK(serves_in_cluster(merged, {1, 15, 25, 40}));
    CHECK(a.stats().n_users == 20 && b.stats().n_users == 20);  // the shards are not changed
    // The overload over a vector of engines (the shards moved in).
    {
        std::vector<chorus::engine> shards;
        shards.push_back(cluster_shard(1, 10, 4));
        shards.push_back(cluster_shard(11, 20, 4));
        chorus::engine m2 = chorus::engine::merge(shards);
        CHECK(m2.stats().n_users == 40 && serves_in_cluster(m2, {2, 39}));
    }
    // A merged model saves and loads like any other.
    merged.save(path("merged.chorus"));
    CHECK(serves_in_cluster(chorus::engine::load(path("merged.chorus")), {1, 40}));
    // Non-private: no guarantee.
    chorus::privacy_spent_result none = merged.privacy_spent();
    CHECK(none.rounds == 0 && std::isinf(none.epsilon) && none.delta == 0);

    // Bad shards: other factor counts, the same engine twice, a NULL, none, overlapping users, not fitted.
    chorus::engine wide = cluster_shard(11, 20, 8);
    std::string msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, chorus::engine::merge({&a, &wide}));
    CHECK(msg == chorus_last_error() && contains(msg, "factor"));
    EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, chorus::engine::merge({&a, &a}));
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, chorus::engine::merge({&a, nullptr}));
    CHECK(contains(msg, "shards[1]"));
    EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, chorus::engine::merge(std::vector<const chorus::engine *>{}));
    chorus::engine overlap = cluster_shard(5, 15, 4);
    EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, chorus::engine::merge({&a, &overlap}));
    chorus::engine unfitted = cluster_shard(11, 20, 4, false);
    EXPECT_ERROR(CHORUS_ERR_NOT_FITTED, chorus::engine::merge({&a, &unfitted}));
    EXPECT_ERROR(CHORUS_ERR_NOT_FITTED, (void)unfitted.privacy_spent());
    chorus::merge_options bad;
    bad.noise_multiplier = 1;  // noise without clipping
    EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, chorus::engine::merge({&a, &b}, bad));
    bad.clip_norm = 0.5;
    bad.delta = 2;
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, chorus::engine::merge({&a, &b}, bad));
    CHECK(contains(msg, "delta"));

    // A private merge: finite epsilon at the delta asked, one round; more noise spends less.
    chorus::merge_options priv;
    priv.noise_multiplier = 1.0;
    priv.clip_norm = 0.5;
    priv.delta = 1e-6;
    chorus::engine pm = chorus::engine::merge({&a, &b}, priv);
    chorus::privacy_spent_result spent = pm.privacy_spent();
    CHECK(spent.rounds == 1 && std::isfinite(spent.epsilon) && spent.epsilon > 0 && spent.delta == 1e-6);
    priv.noise_multiplier = 4.0;
    chorus::privacy_spent_result less = chorus::engine::merge({&a, &b}, priv).privacy_spent();
    CHECK(less.rounds == 1 && less.epsilon < spent.epsilon);
    CHECK(!pm.recommend({1}, 3)[0].items.empty());

    // fit_from: a round continuing from the merged model; the start's privacy ledger carries over.
    chorus::fit_options f = small_fit();
    f.agents = "als,bpr,itemknn,session";
    f.bpr_epochs = 20;
    a.fit_from(pm, f);
    chorus::privacy_spent_result carried = a.privacy_spent();
    CHECK(carried.rounds == 1 && carried.epsilon == spent.epsilon);
    b.fit_from(merged, f);
    CHECK(serves_in_cluster(a, {1, 30}) && serves_in_cluster(b, {11, 40}));
    chorus::engine round2 = chorus::engine::merge({&a, &b});
    CHECK(serves_in_cluster(round2, {1, 15, 25, 40}));
    CHECK(std::isinf(round2.privacy_spent().epsilon));  // a merge without noise after a private one
    // The start may be the engine itself; progress and cancel pass through.
    int calls = 0;
    f.progress = [&](std::string_view, double) { calls++; return false; };
    b.fit_from(b, f);
    CHECK(calls > 0);
    f.progress = [](std::string_view, double) { return true; };
    EXPECT_ERROR(CHORUS_ERR_CANCELLED, b.fit_from(merged, f));
    f.progress = nullptr;
    f.factors = 8;  // the start's ALS has 4
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, b.fit_from(merged, f));
    CHECK(msg == chorus_last_error());
    f.factors = 4;
    EXPECT_ERROR(CHORUS_ERR_NOT_FITTED, b.fit_from(unfitted, f));
}

void test_save_without_interactions() {
    group("save without interactions: serves, refuses fits and merges");
    chorus::engine e = fitted_two_clusters();
    chorus::save_options o;
    o.without_interactions = true;
    const std::string file = path("no-interactions.chorus");
    e.save(file, o);
    chorus::engine loaded = chorus::engine::load(file);
    CHECK(loaded.stats().n_interactions == 0 && loaded.stats().fitted == 1 && loaded.stats().n_users == 40);
    auto a = e.recommend({1, 21}, 5), b = loaded.recommend({1, 21}, 5);
    bool ok = a.size() == b.size();
    for (size_t u = 0; ok && u < a.size(); u++) {
        ok = a[u].items.size() == b[u].items.size();
        for (size_t j = 0; ok && j < a[u].items.size(); j++) ok = a[u].items[j].item == b[u].items[j].item;
    }
    CHECK(ok);  // the same lists, seen items still excluded
    std::string msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, loaded.fit(small_fit()));
    CHECK(msg == chorus_last_error() && contains(msg, "interactions"));
    EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, loaded.fit_from(e, small_fit()));
    chorus::engine other = cluster_shard(1, 10, 4);
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, chorus::engine::merge({&loaded}));
    CHECK(contains(msg, "interactions"));
    // It may still be the start of another engine's round.
    chorus::fit_options f = small_fit();
    f.agents = "als,bpr,itemknn,session";
    f.bpr_epochs = 20;
    other.fit_from(loaded, f);
    CHECK(other.stats().fitted == 1);
    // The default options are a plain save; an engine without a model refuses the flag.
    e.save(path("plain.chorus"), chorus::save_options());
    CHECK(chorus::engine::load(path("plain.chorus")).stats().n_interactions == e.stats().n_interactions);
    chorus::engine empty(hashing());
    empty.add_interactions({1, 2}, {10, 11});
    EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, empty.save(path("empty.chorus"), o));
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.save(std::string("a\0b", 3), o));
    CHECK(contains(msg, "path"));
}

void test_metadata() {
    group("host metadata");
    chorus::engine e(hashing());
    const std::string bytes("id\0map", 6);
    e.set_metadata("ids", bytes);
    e.set_metadata("version", "3");
    CHECK(e.metadata("ids") == bytes && e.metadata("version") == "3");
    e.set_metadata("version", "a longer value than before");
    CHECK(e.metadata("version") == "a longer value than before");
    EXPECT_ERROR(CHORUS_ERR_NOT_FOUND, (void)e.metadata("absent"));
    e.set_metadata("ids", "");  // removes
    EXPECT_ERROR(CHORUS_ERR_NOT_FOUND, (void)e.metadata("ids"));
    std::string msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.set_metadata("", "x"));
    CHECK(msg == chorus_last_error());
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.set_metadata(std::string("k\0", 2), "x"));
    CHECK(contains(msg, "key") && contains(msg, "NUL"));
    e.set_metadata("ids", bytes);
    e.add_interactions({1, 1, 2, 2}, {10, 11, 10, 12});
    e.save(path("metadata.chorus"));
    chorus::engine loaded = chorus::engine::load(path("metadata.chorus"));
    CHECK(loaded.metadata("ids") == bytes && loaded.metadata("version") == "a longer value than before");
}

void test_texts_options() {
    group("set_item_texts / set_user_texts with options: threads, progress, cancel");
    chorus::engine e(hashing());
    chorus::texts_options o;
    o.threads = 1;
    std::vector<double> fractions;
    bool encoding = true;
    o.progress = [&](std::string_view stage, double fraction) {
        encoding = encoding && stage == "encoding";
        fractions.push_back(fraction);
        return false;
    };
    e.set_item_texts({1, 2, 3}, {"jazz piano", "metal guitar", "folk song"}, o);
    CHECK(e.stats().n_item_texts == 3 && encoding && fractions.size() >= 2 && fractions.front() == 0 && fractions.back() == 1.0);
    fractions.clear();
    e.set_user_texts({7}, {"likes jazz"}, o);
    CHECK(e.stats().n_user_texts == 1 && !fractions.empty() && fractions.back() == 1.0);
    o.progress = [](std::string_view, double) { return true; };
    EXPECT_ERROR(CHORUS_ERR_CANCELLED, e.set_item_texts({4}, {"new text"}, o));
    EXPECT_ERROR(CHORUS_ERR_CANCELLED, e.set_user_texts({8}, {"new profile"}, o));
    CHECK(e.stats().n_item_texts == 3 && e.stats().n_user_texts == 1);  // nothing of the cancelled calls kept
    o.progress = [](std::string_view, double) -> bool { throw std::logic_error("from the texts callback"); };
    std::string what;
    try {
        e.set_item_texts({4}, {"new text"}, o);
    } catch (const std::logic_error &x) {
        what = x.what();
    }
    CHECK(what == "from the texts callback" && e.stats().n_item_texts == 3);
    o.progress = nullptr;
    std::string msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.set_item_texts({4, 5}, {"one"}, o));
    CHECK(contains(msg, "item_ids") && contains(msg, "texts"));
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.set_user_texts({9}, {std::string("a\0b", 3)}, o));
    CHECK(contains(msg, "texts[0]"));
    msg = EXPECT_ERROR(CHORUS_ERR_INVALID_ARGUMENT, e.set_item_texts({4, 4}, {"a", "b"}, o));
    CHECK(msg == chorus_last_error());
}

}  // namespace

int main() {
    const char *tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/chorus-cpp-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) {
        std::perror("mkdtemp");
        return 1;
    }
    g_dir = buf.data();
    test_library();
    test_errors();
    test_engine();
    test_progress_callbacks();
    test_log_callback();
    test_move_semantics();
    test_encoder();
    test_kg();
    test_feedback();
    test_learning();
    test_sharded();
    test_save_without_interactions();
    test_metadata();
    test_texts_options();
    std::filesystem::remove_all(g_dir);
    std::printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
