/*
 * chorus.hpp — a header-only C++17 face of the C API in chorus.h.
 *
 * - Errors are exceptions: every failing call throws chorus::error, which carries the chorus_status
 *   (status(), status_name()) and the library's message (what(), from chorus_last_error()). Argument
 *   mistakes the wrapper can see itself (arrays of different lengths, a string holding a NUL byte,
 *   a size that overflows) throw the same class with CHORUS_ERR_INVALID_ARGUMENT and a message
 *   naming the argument.
 * - Handles (chorus::engine, chorus::encoder, chorus::knowledge_graph) own one C handle each and
 *   free it in their destructor. They are move-only; a moved-from handle holds nothing and every
 *   call on it throws CHORUS_ERR_INVALID_ARGUMENT (the library's own check of a NULL handle).
 * - Inputs are chorus::array_view<T> (a pointer and a length, made implicitly from a std::vector,
 *   std::array, C array, braced list or any contiguous container with data() and size(), such as
 *   C++20's std::span) and std::string lists; outputs are std::vector of plain structs, copied out
 *   of the library's buffers before the call returns (nothing returned borrows library memory).
 * - Callbacks (fit and training progress, the log callback) are std::function. An exception thrown
 *   by a progress callback cancels the call and is rethrown to its caller once the library has
 *   returned (it never crosses the C library); one thrown by the log callback is dropped.
 * - Thread safety is the C API's (chorus.h): a handle may be shared by threads (by reference) as
 *   the C handle may.
 * - Every chorus_engine_* function has a method (the _ex calls are the overloads taking
 *   texts_options / save_options); the options structs stand for the C params structs, whose _init
 *   the wrapper calls itself.
 *
 * Build: g++ -std=c++17 -Iinclude program.cpp -lchorus.
 */
#ifndef CHORUS_HPP
#define CHORUS_HPP

#include "chorus.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace chorus {

/* ---- Errors ----------------------------------------------------------------------------------- */

/* A failed call: the status (never CHORUS_OK) and the library's message. */
class error : public std::runtime_error {
public:
    error(chorus_status status, const std::string &message) : std::runtime_error(message), status_(status) {}
    chorus_status status() const noexcept { return status_; }
    /* "CHORUS_ERR_NOT_FOUND" etc. (chorus_status_name). */
    const char *status_name() const noexcept { return chorus_status_name(status_); }

private:
    chorus_status status_;
};

namespace detail {

/* Throws for a failed status, with this thread's last error message. */
inline void check(chorus_status status) {
    if (status != CHORUS_OK) throw error(status, chorus_last_error());
}

[[noreturn]] inline void invalid(const std::string &message) { throw error(CHORUS_ERR_INVALID_ARGUMENT, message); }

/* a * b, or an INVALID_ARGUMENT naming `what` when it overflows size_t. */
inline size_t product(size_t a, size_t b, const char *what) {
    if (a != 0 && b > std::numeric_limits<size_t>::max() / a) invalid(std::string(what) + " overflows");
    return a * b;
}

}  // namespace detail

/* ---- Input views ------------------------------------------------------------------------------ */

/* A read-only view of `size()` contiguous T (C++17 has no std::span). It borrows: the viewed array
 * must outlive the call it is passed to (a braced list lives until the end of the full expression,
 * so `engine.recommend({1, 2}, 10)` is fine; keeping a view of one in a variable is not). */
template <class T>
class array_view {
public:
    constexpr array_view() noexcept = default;
    constexpr array_view(const T *data, size_t size) noexcept : data_(data), size_(size) {}
    /* As C++26's std::span: GCC warns that the view does not extend the list's lifetime, which is
     * the point of a view (see above). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winit-list-lifetime"
#endif
    array_view(std::initializer_list<T> list) noexcept : data_(list.begin()), size_(list.size()) {}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
    template <size_t N>
    constexpr array_view(const T (&array)[N]) noexcept : data_(array), size_(N) {}
    /* Any contiguous container of T: std::vector, std::array, std::span (C++20), ... */
    template <class C, class = std::enable_if_t<
        !std::is_same_v<std::decay_t<C>, array_view> &&
        std::is_convertible_v<decltype(std::declval<const C &>().data()), const T *> &&
        std::is_convertible_v<decltype(std::declval<const C &>().size()), size_t>>>
    constexpr array_view(const C &container) noexcept : data_(container.data()), size_(container.size()) {}

    constexpr const T *data() const noexcept { return data_; }
    constexpr size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr const T *begin() const noexcept { return data_; }
    constexpr const T *end() const noexcept { return data_ + size_; }
    constexpr const T &operator[](size_t i) const noexcept { return data_[i]; }

private:
    const T *data_ = nullptr;
    size_t size_ = 0;
};

namespace detail {

/* The C strings of `texts` for one call. A string holding a NUL byte would be cut short by the
 * library without a word: refused here, naming the argument and the index. */
inline std::vector<const char *> c_strings(array_view<std::string> texts, const char *what) {
    std::vector<const char *> out;
    out.reserve(texts.size());
    for (size_t i = 0; i < texts.size(); i++) {
        if (texts[i].find('\0') != std::string::npos)
            invalid(std::string(what) + "[" + std::to_string(i) + "] contains a NUL byte");
        out.push_back(texts[i].c_str());
    }
    return out;
}

inline const char *c_string(const std::string &text, const char *what) {
    if (text.find('\0') != std::string::npos) invalid(std::string(what) + " contains a NUL byte");
    return text.c_str();
}

/* NULL for "", else the checked C string: the optional strings of params structs. */
inline const char *optional_c_string(const std::string &text, const char *what) {
    return text.empty() ? nullptr : c_string(text, what);
}

inline void same_length(size_t n, size_t m, const char *first, const char *second) {
    if (n != m)
        invalid(std::string(second) + " has " + std::to_string(m) + " entries, " + first + " " + std::to_string(n));
}

/* A progress callback as the C API takes it; the std::function and any exception it throws live
 * here for the duration of one call. */
using progress_function = std::function<bool(std::string_view stage, double fraction)>;

struct progress_relay {
    const progress_function *fn;
    std::exception_ptr thrown;

    static int32_t call(const char *stage, double fraction, void *user_data) noexcept {
        auto *self = static_cast<progress_relay *>(user_data);
        try {
            return (*self->fn)(stage ? std::string_view(stage) : std::string_view(), fraction) ? 1 : 0;
        } catch (...) {
            if (!self->thrown) self->thrown = std::current_exception();
            return 1;  // cancel: the exception is rethrown once the call has returned
        }
    }

    /* Rethrows the callback's exception, else throws for a failed status. */
    void finish(chorus_status status) const {
        if (thrown) std::rethrow_exception(thrown);
        check(status);
    }
};

/* Dummy storage for a present but empty list (a NULL pointer would mean "no list"). */
inline const int64_t *ids_or_empty(const std::vector<int64_t> &ids) {
    static const int64_t none = 0;
    return ids.empty() ? &none : ids.data();
}

}  // namespace detail

/* ---- Library ---------------------------------------------------------------------------------- */

/* "MAJOR.MINOR.PATCH" of the loaded library (compare with CHORUS_VERSION_* of this header). */
inline std::string version() { return chorus_version(); }
inline uint32_t version_number() { return chorus_version_number(); }
inline std::string status_name(chorus_status status) { return chorus_status_name(status); }
/* sizeof() of a public struct in the library, 0 for an unknown name. */
inline size_t struct_size(const std::string &struct_name) {
    return chorus_struct_size(detail::c_string(struct_name, "struct_name"));
}

/* The library's log lines: level (CHORUS_LOG_*) and message, from any thread the library runs on. */
using log_function = std::function<void(int32_t level, std::string_view message)>;

namespace detail {

struct log_state {
    std::mutex mutex;
    /* Every callback ever set stays alive: a log call already running on another thread may still
     * be inside the previous one when it is replaced. */
    std::vector<std::unique_ptr<log_function>> kept;
};

inline log_state &log_holder() {
    static log_state *state = new log_state();  // never destroyed: logging may outlive static destructors
    return *state;
}

inline void log_relay(int32_t level, const char *message, void *user_data) noexcept {
    try {
        (*static_cast<log_function *>(user_data))(level, message ? std::string_view(message) : std::string_view());
    } catch (...) {
        // Nowhere to send it: the log callback cannot fail the library call that logged.
    }
}

}  // namespace detail

/* Sets the process-wide log callback (an empty function clears it). Each callback set is kept
 * alive until the process ends (a few bytes per call), so a log line in flight on another thread
 * never reaches a destroyed function. */
inline void set_log_callback(log_function callback) {
    auto &state = detail::log_holder();
    std::lock_guard<std::mutex> lock(state.mutex);
    if (!callback) {
        detail::check(chorus_set_log_callback(nullptr, nullptr));
        return;
    }
    state.kept.push_back(std::make_unique<log_function>(std::move(callback)));
    detail::check(chorus_set_log_callback(&detail::log_relay, state.kept.back().get()));
}

/* ---- Shared outputs --------------------------------------------------------------------------- */

struct recommended_item {
    int64_t item;
    float score;
    /* Each agent's share of the score, in the order of the list's `agents` (only when
     * recommend_options::shares is set). */
    std::vector<float> shares;
};

/* One user's recommendations, best first (fewer than k when fewer items can be recommended). */
struct user_recommendations {
    int64_t user;
    /* CHORUS_USER_COLD_FALLBACK: the user is unknown to the model (served by popularity / content). */
    bool cold_fallback;
    std::vector<recommended_item> items;
    /* The agents the shares refer to (only when recommend_options::shares is set). */
    std::vector<std::string> agents;
};

/* The items most similar to `item`, most similar first. */
struct similar_items_result {
    int64_t item;
    std::vector<recommended_item> items;
};

/* A user similar to another, and the cosine of their user vectors. */
struct similar_user {
    int64_t user;
    float score;
};

/* The users most similar to `user`, most similar first (fewer than k when fewer are candidates). */
struct similar_users_result {
    int64_t user;
    std::vector<similar_user> users;
};

struct explanation {
    float score;
    /* The item of the user's history the item is most similar to, or CHORUS_NO_ITEM. */
    int64_t because_item;
    float because_similarity;
    /* The query's words the item's text contains, space-separated. */
    std::string matched_terms;
    std::string sentence;
    std::vector<std::string> agents;
    std::vector<float> shares;  // in the order of agents
};

struct agent_info {
    std::string name;
    float weight;  // in the coordinator's blend; 0 before a fit
};

/* One row of the learning coordinator's slate log: an item of a closed slate (chorus_slate_row). */
struct slate_row {
    int64_t request_id;
    int64_t user_id;
    int64_t item_id;
    int32_t slot;       // 0 = first
    float propensity;   // P(this item at this slot | request) under the policy that served it
    float reward;       // the sum of the rewards of the events naming this request and item
};

/* The privacy spent by the private merges a model descends from (chorus_engine_privacy_spent):
 * rounds 0 and epsilon infinite when no private merge made it; epsilon infinite after a merge
 * without noise. */
struct privacy_spent_result {
    double epsilon;
    double delta;
    uint32_t rounds;
};

using engine_stats = chorus_engine_stats;
using kg_metrics = chorus_kg_metrics;

struct kg_counts {
    size_t entities, relations, triples;
};

/* ---- Options (0 / empty = the library's default, as in the C params structs) ----------------- */

struct engine_options {
    bool require_encoder = false;   // CHORUS_ENGINE_REQUIRE_ENCODER
    bool hashing_encoder = false;   // CHORUS_ENGINE_HASHING_ENCODER
    int64_t popularity_half_life_seconds = 0;
    std::string encoder_path;
};

struct fit_options {
    uint32_t factors = 0;
    float regularization = 0;
    float alpha = 0;
    uint32_t iterations = 0;
    uint32_t threads = 0;
    uint64_t seed = 0;
    float validation_fraction = 0;
    std::string agents;             // comma-separated names; empty = every agent the data allows
    uint32_t bpr_epochs = 0;
    /* Called with the stage and the fraction of the fit done; return true to cancel
     * (CHORUS_ERR_CANCELLED; the engine keeps its previous model). */
    std::function<bool(std::string_view stage, double fraction)> progress;
};

struct recommend_options {
    bool include_seen = false;                   // CHORUS_RECOMMEND_INCLUDE_SEEN
    std::optional<std::vector<int64_t>> allow_items;  // recommend only among these (empty: none)
    std::vector<int64_t> deny_items;
    std::string agent;                           // one agent alone; empty = the blend
    std::string query;                           // natural-language request; empty = none
    std::vector<int64_t> history_items;          // the session's items, most recent last
    float diversity = 0;                         // [0, 1]
    std::string scenario;                        // empty = the default scenario
    bool shares = false;                         // fill recommended_item::shares and ::agents
    /* One per user of recommend(): the id each user's slate is logged under for the learning
     * coordinator (set_learning; ignored while it is off); any id but CHORUS_NO_REQUEST. Empty =
     * not logged. similar_items() and explain() ignore it. */
    std::vector<int64_t> request_ids;
};

/* The reward of each event type (chorus_feedback_params). Unlike the other options a 0 here is a
 * reward of 0, not "default": the defaults below are the library's (chorus_feedback_params_init). */
struct feedback_rewards {
    float impression = 0;    // counted only
    float click = 1;
    float add_to_cart = 2;
    float purchase = 4;
    float rating = 1;        // a rating's reward is rating * its value
    float skip = -0.5f;      // demotes the item for that user
    float dismiss = -1;      // drops the item from that user's lists
};

struct feedback_options {
    std::string scenario;    // the scenario of every event; empty = the default scenario
    feedback_rewards rewards;
};

/* The learning coordinator (chorus_learning_params). */
struct learning_options {
    int32_t mode = CHORUS_LEARNING_OFF;  // a chorus_learning_mode (int32_t as in the C struct: any value reaches its check)
    float exploration = 0;           // 0 = default (0.03 for the bandits, 0.1 for the policy)
    float learning_rate = 0;         // the policy's step size; 0 = default (0.3)
    float prior_strength = 0;        // the bandits' prior toward the fitted coordinator; 0 = default (10)
    uint64_t log_capacity = 0;       // slate-log rows kept; 0 = default (100,000)
    uint64_t seed = 42;              // seeds the sampling with each request id, and the privacy noise
    // Private learning from feedback (clip_norm > 0; see chorus_learning_params).
    double noise_multiplier = 0;     // sigma; needs clip_norm > 0
    double clip_norm = 0;            // C: each user's part of a release, L2; 0 = not private
    double delta = 0;                // the delta of the epsilon reported; 0 = default (1e-5)
    uint64_t release_slates = 0;     // closed slates per release; 0 = default (1,000)
};

/* The privacy spent by learning from feedback (chorus_engine_learning_privacy_spent): epsilon 0
 * when nothing was learned, infinite once a slate was learned from without privacy. */
struct learning_privacy_result {
    double epsilon;
    double delta;
    uint64_t releases;
};

struct slate_log_options {
    bool close_open = false;         // CHORUS_SLATE_LOG_CLOSE_OPEN: close every open slate first
    bool drain = false;              // CHORUS_SLATE_LOG_DRAIN: remove the rows returned from the log
};

/* Sharded training's merge (chorus_merge_params). */
struct merge_options {
    uint32_t threads = 0;
    double noise_multiplier = 0;     // sigma; 0 = no noise (needs clip_norm > 0)
    double clip_norm = 0;            // C; 0 = no clipping
    double delta = 0;                // the delta of the epsilon reported; 0 = default (1e-5)
    uint64_t seed = 42;              // seeds the noise (0 is a seed too)
};

struct save_options {
    bool without_interactions = false;  // CHORUS_SAVE_WITHOUT_INTERACTIONS (see engine::save)
};

/* set_item_texts / set_user_texts with options (chorus_texts_params). */
struct texts_options {
    uint32_t threads = 0;
    /* Stage "encoding" and the fraction of the texts encoded; return true to cancel
     * (CHORUS_ERR_CANCELLED; nothing of the call is kept). */
    std::function<bool(std::string_view stage, double fraction)> progress;
};

struct encoder_options {
    uint32_t threads = 0;
    std::string model_path;         // empty = search, then fall back to hashing
    bool require_model = false;     // CHORUS_ENCODER_REQUIRE_MODEL
};

struct kg_train_options {
    uint32_t dim = 0;
    std::string model;              // transe, distmult, complex or rotate; empty = rotate
    uint32_t epochs = 0;
    uint32_t batch_size = 0;
    uint32_t negatives = 0;
    uint32_t threads = 0;
    float learning_rate = 0;
    float gamma = 0;
    uint64_t seed = 0;
    uint32_t share_negatives = 0;
    uint32_t lr_decay_epoch = 0;
    float lr_decay_factor = 0;
    bool filter_negatives = false;
    /* Stage "training" and the fraction of epochs done; return true to cancel. */
    std::function<bool(std::string_view stage, double fraction)> progress;
};

namespace detail {

/* The C recommend params for `o`; they point into `o`, which must outlive their use. */
inline chorus_recommend_params recommend_params(const recommend_options &o) {
    chorus_recommend_params p;
    check(chorus_recommend_params_init(&p));
    p.flags = o.include_seen ? CHORUS_RECOMMEND_INCLUDE_SEEN : 0u;
    if (o.allow_items) {
        p.allow_items = ids_or_empty(*o.allow_items);
        p.n_allow = o.allow_items->size();
    }
    if (!o.deny_items.empty()) {
        p.deny_items = o.deny_items.data();
        p.n_deny = o.deny_items.size();
    }
    p.agent = optional_c_string(o.agent, "agent");
    p.query = optional_c_string(o.query, "query");
    if (!o.history_items.empty()) {
        p.history_items = o.history_items.data();
        p.n_history = o.history_items.size();
    }
    p.diversity = o.diversity;
    p.scenario = optional_c_string(o.scenario, "scenario");
    if (!o.request_ids.empty()) p.request_ids = o.request_ids.data();
    return p;
}

/* The C fit params for `o`; they point into `o` and `relay`, which must outlive their use. */
inline chorus_fit_params fit_params(const fit_options &o, progress_relay &relay) {
    chorus_fit_params p;
    check(chorus_fit_params_init(&p));
    p.factors = o.factors;
    p.regularization = o.regularization;
    p.alpha = o.alpha;
    p.iterations = o.iterations;
    p.threads = o.threads;
    p.seed = o.seed;
    p.validation_fraction = o.validation_fraction;
    p.agents = optional_c_string(o.agents, "agents");
    p.bpr_epochs = o.bpr_epochs;
    if (o.progress) {
        p.progress = &progress_relay::call;
        p.progress_user_data = &relay;
    }
    return p;
}

/* The C learning params for `o` (every field of learning_options is set here, and only here). */
inline chorus_learning_params learning_params(const learning_options &o) {
    chorus_learning_params p;
    check(chorus_learning_params_init(&p));
    p.mode = o.mode;
    p.exploration = o.exploration;
    p.learning_rate = o.learning_rate;
    p.prior_strength = o.prior_strength;
    p.log_capacity = o.log_capacity;
    p.seed = o.seed;
    p.noise_multiplier = o.noise_multiplier;
    p.clip_norm = o.clip_norm;
    p.delta = o.delta;
    p.release_slates = o.release_slates;
    return p;
}

inline chorus_merge_params merge_params(const merge_options &o) {
    chorus_merge_params p;
    check(chorus_merge_params_init(&p));
    p.threads = o.threads;
    p.noise_multiplier = o.noise_multiplier;
    p.clip_norm = o.clip_norm;
    p.delta = o.delta;
    p.seed = o.seed;
    return p;
}

inline chorus_feedback_params feedback_params(const feedback_rewards &r) {
    chorus_feedback_params p;
    check(chorus_feedback_params_init(&p));
    p.impression = r.impression;
    p.click = r.click;
    p.add_to_cart = r.add_to_cart;
    p.purchase = r.purchase;
    p.rating = r.rating;
    p.skip = r.skip;
    p.dismiss = r.dismiss;
    return p;
}

inline std::vector<std::string> names(const char *const *names, size_t n) {
    std::vector<std::string> out;
    out.reserve(n);
    for (size_t i = 0; i < n; i++) out.emplace_back(names[i] ? names[i] : "");
    return out;
}

/* Rows of k (item, score) pairs, empty slots (CHORUS_NO_ITEM) left out. */
inline std::vector<recommended_item> row(const std::vector<int64_t> &ids, const std::vector<float> &scores,
                                         const std::vector<float> &shares, size_t row, size_t k, size_t agents) {
    std::vector<recommended_item> out;
    for (size_t j = 0; j < k; j++) {
        size_t slot = row * k + j;
        if (ids[slot] == CHORUS_NO_ITEM) continue;
        recommended_item r{ids[slot], scores[slot], {}};
        if (!shares.empty()) r.shares.assign(shares.begin() + slot * agents, shares.begin() + (slot + 1) * agents);
        out.push_back(std::move(r));
    }
    return out;
}

}  // namespace detail

/* ---- Knowledge graph -------------------------------------------------------------------------- */

class knowledge_graph {
public:
    /* An empty graph (chorus_kg_create). */
    knowledge_graph() { detail::check(chorus_kg_create(&kg_)); }
    /* Takes ownership of one handle to a graph (freed with chorus_kg_free). */
    explicit knowledge_graph(chorus_kg *adopted) noexcept : kg_(adopted) {}
    ~knowledge_graph() { chorus_kg_free(kg_); }
    knowledge_graph(const knowledge_graph &) = delete;
    knowledge_graph &operator=(const knowledge_graph &) = delete;
    knowledge_graph(knowledge_graph &&other) noexcept : kg_(std::exchange(other.kg_, nullptr)) {}
    knowledge_graph &operator=(knowledge_graph &&other) noexcept {
        if (this != &other) {
            chorus_kg_free(kg_);
            kg_ = std::exchange(other.kg_, nullptr);
        }
        return *this;
    }

    /* A graph saved by save() (chorus_kg_load). */
    static knowledge_graph load(const std::string &path) {
        chorus_kg *kg = nullptr;
        detail::check(chorus_kg_load(detail::c_string(path, "path"), &kg));
        return knowledge_graph(kg);
    }

    chorus_kg *get() const noexcept { return kg_; }
    /* Gives up ownership: the caller frees the returned handle. */
    chorus_kg *release() noexcept { return std::exchange(kg_, nullptr); }
    explicit operator bool() const noexcept { return kg_ != nullptr; }

    /* Adds (heads[i], relations[i], tails[i]); returns the triples that were new. */
    size_t add_triples(array_view<std::string> heads, array_view<std::string> relations, array_view<std::string> tails) {
        detail::same_length(heads.size(), relations.size(), "heads", "relations");
        detail::same_length(heads.size(), tails.size(), "heads", "tails");
        auto h = detail::c_strings(heads, "heads"), r = detail::c_strings(relations, "relations"),
             t = detail::c_strings(tails, "tails");
        size_t added = 0;
        detail::check(chorus_kg_add_triples(kg_, h.data(), r.data(), t.data(), h.size(), &added));
        return added;
    }

    /* Adds the triples of a head<TAB>relation<TAB>tail file; returns the triples that were new. */
    size_t load_tsv(const std::string &path) {
        size_t added = 0;
        detail::check(chorus_kg_load_tsv(kg_, detail::c_string(path, "path"), &added));
        return added;
    }

    kg_counts counts() const {
        kg_counts c{0, 0, 0};
        detail::check(chorus_kg_counts(kg_, &c.entities, &c.relations, &c.triples));
        return c;
    }

    void train(const kg_train_options &o = {}) {
        chorus_kg_train_params p;
        detail::check(chorus_kg_train_params_init(&p));
        p.dim = o.dim;
        p.model = detail::optional_c_string(o.model, "model");
        p.epochs = o.epochs;
        p.batch_size = o.batch_size;
        p.negatives = o.negatives;
        p.threads = o.threads;
        p.learning_rate = o.learning_rate;
        p.gamma = o.gamma;
        p.seed = o.seed;
        p.share_negatives = o.share_negatives;
        p.lr_decay_epoch = o.lr_decay_epoch;
        p.lr_decay_factor = o.lr_decay_factor;
        p.filter_negatives = o.filter_negatives ? 1u : 0u;
        detail::progress_relay relay{&o.progress, nullptr};
        if (o.progress) {
            p.progress = &detail::progress_relay::call;
            p.progress_user_data = &relay;
        }
        relay.finish(chorus_kg_train(kg_, &p));
    }

    /* Filtered link prediction on a file's triples (CHORUS_ERR_NOT_FITTED before train()). */
    kg_metrics evaluate_tsv(const std::string &path) const {
        kg_metrics m;
        detail::check(chorus_kg_metrics_init(&m));
        detail::check(chorus_kg_evaluate_tsv(kg_, detail::c_string(path, "path"), &m));
        return m;
    }

    /* A trained entity's / relation's vector (CHORUS_ERR_NOT_FOUND for an unknown name). */
    std::vector<float> entity_vector(const std::string &name) const { return lookup(chorus_kg_entity_vector, name); }
    std::vector<float> relation_vector(const std::string &name) const { return lookup(chorus_kg_relation_vector, name); }

    void save(const std::string &path) const { detail::check(chorus_kg_save(kg_, detail::c_string(path, "path"))); }

private:
    using vector_fn = chorus_status (*)(const chorus_kg *, const char *, float *, size_t, size_t *);

    /* Sized by asking first (BUFFER_TOO_SMALL reports the length); again if a training in
     * between changed the dimension. */
    std::vector<float> lookup(vector_fn fn, const std::string &name) const {
        const char *n = detail::c_string(name, "name");
        std::vector<float> out(1);  // never a NULL buffer: the library checks `out` before the size
        for (int attempt = 0; attempt < 8; attempt++) {
            size_t dim = 0;
            chorus_status s = fn(kg_, n, out.data(), out.size(), &dim);
            if (s == CHORUS_OK) {
                out.resize(dim);
                return out;
            }
            if (s != CHORUS_ERR_BUFFER_TOO_SMALL) detail::check(s);
            out.resize(dim > 0 ? dim : 1);
        }
        throw error(CHORUS_ERR_INTERNAL, "knowledge_graph: the vector's dimension kept changing");
    }

    chorus_kg *kg_ = nullptr;
};

/* ---- Engine ----------------------------------------------------------------------------------- */

class engine {
public:
    /* An empty engine (chorus_engine_create). */
    explicit engine(const engine_options &o = {}) {
        chorus_engine_params p;
        detail::check(chorus_engine_params_init(&p));
        p.flags = (o.require_encoder ? CHORUS_ENGINE_REQUIRE_ENCODER : 0u) |
                  (o.hashing_encoder ? CHORUS_ENGINE_HASHING_ENCODER : 0u);
        p.popularity_half_life_seconds = o.popularity_half_life_seconds;
        p.encoder_path = detail::optional_c_string(o.encoder_path, "encoder_path");
        detail::check(chorus_engine_create(&p, &engine_));
    }
    /* Takes ownership of an engine handle (freed with chorus_engine_free). */
    explicit engine(chorus_engine *adopted) noexcept : engine_(adopted) {}
    ~engine() { chorus_engine_free(engine_); }
    engine(const engine &) = delete;
    engine &operator=(const engine &) = delete;
    engine(engine &&other) noexcept : engine_(std::exchange(other.engine_, nullptr)) {}
    engine &operator=(engine &&other) noexcept {
        if (this != &other) {
            chorus_engine_free(engine_);
            engine_ = std::exchange(other.engine_, nullptr);
        }
        return *this;
    }

    /* An engine saved by save() (chorus_engine_load). */
    static engine load(const std::string &path) {
        chorus_engine *e = nullptr;
        detail::check(chorus_engine_load(detail::c_string(path, "path"), &e));
        return engine(e);
    }

    chorus_engine *get() const noexcept { return engine_; }
    chorus_engine *release() noexcept { return std::exchange(engine_, nullptr); }
    explicit operator bool() const noexcept { return engine_ != nullptr; }

    void save(const std::string &path) const { detail::check(chorus_engine_save(engine_, detail::c_string(path, "path"))); }

    /* save() with options (chorus_engine_save_ex). o.without_interactions keeps the interactions
     * out of the file: an engine loaded from it serves as before but reports n_interactions 0 and
     * refuses fit(), fit_from() and merge() (CHORUS_ERR_INVALID_ARGUMENT); it may still be the
     * `start` of another engine's fit_from(). An engine without a model: CHORUS_ERR_INVALID_ARGUMENT. */
    void save(const std::string &path, const save_options &o) const {
        const uint32_t flags = o.without_interactions ? CHORUS_SAVE_WITHOUT_INTERACTIONS : 0u;
        detail::check(chorus_engine_save_ex(engine_, detail::c_string(path, "path"), flags));
    }

    /* Engines fitted on disjoint sets of users merged into a new one (federated averaging; see
     * chorus_engine_merge); the shards are not changed. One shard gives a copy. */
    static engine merge(array_view<const engine *> shards, const merge_options &o = {}) {
        std::vector<const chorus_engine *> handles;
        handles.reserve(shards.size());
        for (const engine *s : shards) handles.push_back(s ? s->engine_ : nullptr);  // NULL: the library names it
        return merge_handles(handles, o);
    }
    static engine merge(array_view<engine> shards, const merge_options &o = {}) {
        std::vector<const chorus_engine *> handles;
        handles.reserve(shards.size());
        for (const engine &s : shards) handles.push_back(s.engine_);
        return merge_handles(handles, o);
    }

    /* Appends interactions (user_ids[i], item_ids[i]); weights and timestamps are empty (all 1,
     * all 0) or as long as the ids. */
    void add_interactions(array_view<int64_t> user_ids, array_view<int64_t> item_ids, array_view<float> weights = {},
                          array_view<int64_t> timestamps = {}) {
        add_scenario_interactions(std::string(), user_ids, item_ids, weights, timestamps);
    }

    /* The same, in `scenario` (defined with define_scenario; empty = the default scenario). */
    void add_scenario_interactions(const std::string &scenario, array_view<int64_t> user_ids, array_view<int64_t> item_ids,
                                   array_view<float> weights = {}, array_view<int64_t> timestamps = {}) {
        detail::same_length(user_ids.size(), item_ids.size(), "user_ids", "item_ids");
        if (!weights.empty()) detail::same_length(user_ids.size(), weights.size(), "user_ids", "weights");
        if (!timestamps.empty()) detail::same_length(user_ids.size(), timestamps.size(), "user_ids", "timestamps");
        const float *w = weights.empty() ? nullptr : weights.data();
        const int64_t *t = timestamps.empty() ? nullptr : timestamps.data();
        if (scenario.empty()) {
            detail::check(chorus_engine_add_interactions(engine_, user_ids.data(), item_ids.data(), w, t, user_ids.size()));
        } else {
            detail::check(chorus_engine_add_scenario_interactions(engine_, detail::c_string(scenario, "scenario"),
                                                                  user_ids.data(), item_ids.data(), w, t, user_ids.size()));
        }
    }

    /* Item texts (an empty text removes one), encoded now. */
    void set_item_texts(array_view<int64_t> item_ids, array_view<std::string> texts) {
        detail::same_length(item_ids.size(), texts.size(), "item_ids", "texts");
        auto t = detail::c_strings(texts, "texts");
        detail::check(chorus_engine_set_item_texts(engine_, item_ids.data(), t.data(), t.size()));
    }

    /* The same with encoder threads and progress (chorus_engine_set_item_texts_ex): a progress
     * callback returning true, or throwing, cancels and nothing of the call is kept. */
    void set_item_texts(array_view<int64_t> item_ids, array_view<std::string> texts, const texts_options &o) {
        set_texts_ex(chorus_engine_set_item_texts_ex, item_ids, texts, o, "item_ids");
    }

    /* User profile texts (an empty text removes one). */
    void set_user_texts(array_view<int64_t> user_ids, array_view<std::string> texts) {
        detail::same_length(user_ids.size(), texts.size(), "user_ids", "texts");
        auto t = detail::c_strings(texts, "texts");
        detail::check(chorus_engine_set_user_texts(engine_, user_ids.data(), t.data(), t.size()));
    }

    /* The same with options (chorus_engine_set_user_texts_ex). */
    void set_user_texts(array_view<int64_t> user_ids, array_view<std::string> texts, const texts_options &o) {
        set_texts_ex(chorus_engine_set_user_texts_ex, user_ids, texts, o, "user_ids");
    }

    /* Live feedback, seen by the next recommend without a refit (chorus_engine_feedback): event i
     * is (user_ids[i], item_ids[i], events[i], a chorus_event). values (empty: all 1), timestamps
     * (empty: the time of the call) and request_ids (empty: none; the id a slate was served under,
     * recommend_options::request_ids, or CHORUS_NO_REQUEST) are empty or as long as the ids. */
    void feedback(array_view<int64_t> user_ids, array_view<int64_t> item_ids, array_view<int32_t> events,
                  array_view<float> values = {}, array_view<int64_t> timestamps = {}, array_view<int64_t> request_ids = {},
                  const feedback_options &o = {}) {
        detail::same_length(user_ids.size(), item_ids.size(), "user_ids", "item_ids");
        detail::same_length(user_ids.size(), events.size(), "user_ids", "events");
        if (!values.empty()) detail::same_length(user_ids.size(), values.size(), "user_ids", "values");
        if (!timestamps.empty()) detail::same_length(user_ids.size(), timestamps.size(), "user_ids", "timestamps");
        if (!request_ids.empty()) detail::same_length(user_ids.size(), request_ids.size(), "user_ids", "request_ids");
        const chorus_feedback_params p = detail::feedback_params(o.rewards);
        detail::check(chorus_engine_feedback(engine_, user_ids.data(), item_ids.data(), events.data(),
                                             values.empty() ? nullptr : values.data(),
                                             timestamps.empty() ? nullptr : timestamps.data(), user_ids.size(),
                                             detail::optional_c_string(o.scenario, "scenario"),
                                             request_ids.empty() ? nullptr : request_ids.data(), &p));
    }

    /* Sets the learning coordinator's mode and knobs (chorus_engine_set_learning; the default
     * options turn it off). Serve with recommend_options::request_ids and send feedback naming them. */
    void set_learning(const learning_options &o = {}) {
        const chorus_learning_params p = detail::learning_params(o);
        detail::check(chorus_engine_set_learning(engine_, &p));
    }

    /* The slate log, oldest row first (chorus_engine_slate_log): every row it holds (with
     * o.drain, those returned are removed; rows closed during the call may wait for the next). */
    std::vector<slate_row> slate_log(const slate_log_options &o = {}) {
        size_t count = 0;
        detail::check(chorus_engine_slate_log(engine_, o.close_open ? CHORUS_SLATE_LOG_CLOSE_OPEN : 0u, nullptr, 0, &count));
        std::vector<chorus_slate_row> rows;
        for (int attempt = 0;; attempt++) {
            // Room for rows closed meanwhile; never a NULL buffer with a capacity.
            rows.resize(count + 64);
            size_t total = 0;
            detail::check(chorus_engine_slate_log(engine_, o.drain ? CHORUS_SLATE_LOG_DRAIN : 0u, rows.data(), rows.size(), &total));
            // A drain removed what it returned: take it. Without one, read again if the log outgrew the buffer.
            if (total <= rows.size() || o.drain || attempt >= 8) {
                rows.resize(std::min(total, rows.size()));
                break;
            }
            count = total;
        }
        std::vector<slate_row> out;
        out.reserve(rows.size());
        for (const auto &r : rows) out.push_back(slate_row{r.request_id, r.user_id, r.item_id, r.slot, r.propensity, r.reward});
        return out;
    }

    /* Host metadata (chorus_engine_set_metadata): `value`'s bytes (any, NUL included) under `key`;
     * an empty value removes the key. */
    void set_metadata(const std::string &key, std::string_view value) {
        detail::check(chorus_engine_set_metadata(engine_, detail::c_string(key, "key"), value.data(), value.size()));
    }

    /* The bytes stored under `key` (chorus_engine_metadata); CHORUS_ERR_NOT_FOUND for an absent key. */
    std::string metadata(const std::string &key) const {
        const char *k = detail::c_string(key, "key");
        std::string out(1, '\0');  // never a NULL buffer with a capacity
        for (int attempt = 0; attempt < 8; attempt++) {
            size_t length = 0;
            chorus_status s = chorus_engine_metadata(engine_, k, out.data(), out.size(), &length);
            if (s == CHORUS_OK) {
                out.resize(length);
                return out;
            }
            if (s != CHORUS_ERR_BUFFER_TOO_SMALL) detail::check(s);
            out.resize(length);  // set again in between: size again
        }
        throw error(CHORUS_ERR_INTERNAL, "engine::metadata: the value's length kept changing");
    }

    /* Facts (item_ids[i], relations[i], entities[i]); returns the facts that were new. */
    size_t add_item_facts(array_view<int64_t> item_ids, array_view<std::string> relations, array_view<std::string> entities) {
        detail::same_length(item_ids.size(), relations.size(), "item_ids", "relations");
        detail::same_length(item_ids.size(), entities.size(), "item_ids", "entities");
        auto r = detail::c_strings(relations, "relations"), e = detail::c_strings(entities, "entities");
        size_t added = 0;
        detail::check(chorus_engine_add_item_facts(engine_, item_ids.data(), r.data(), e.data(), item_ids.size(), &added));
        return added;
    }

    /* Which sentence encoder the engine uses and why (loads it if needed). */
    std::string encoder_name() const {
        const char *name = nullptr;
        detail::check(chorus_engine_encoder_name(engine_, &name));
        return name ? name : "";
    }

    void define_scenario(const std::string &name, const std::string &description) {
        detail::check(chorus_engine_define_scenario(engine_, detail::c_string(name, "name"),
                                                    detail::c_string(description, "description")));
    }

    void fit(const fit_options &o = {}) {
        detail::progress_relay relay{&o.progress, nullptr};
        const chorus_fit_params p = detail::fit_params(o, relay);
        relay.finish(chorus_engine_fit(engine_, &p));
    }

    /* fit() with ALS and BPR started from `start`'s factors (chorus_engine_fit_from): a round of
     * sharded training, each shard continuing from the merged engine. `start` may be *this. */
    void fit_from(const engine &start, const fit_options &o = {}) {
        detail::progress_relay relay{&o.progress, nullptr};
        const chorus_fit_params p = detail::fit_params(o, relay);
        relay.finish(chorus_engine_fit_from(engine_, &p, start.engine_));
    }

    /* The privacy spent by the private merges the model descends from (CHORUS_ERR_NOT_FITTED
     * without a model). */
    privacy_spent_result privacy_spent() const {
        privacy_spent_result r{0, 0, 0};
        detail::check(chorus_engine_privacy_spent(engine_, &r.epsilon, &r.delta, &r.rounds));
        return r;
    }

    /* The privacy spent by learning from feedback (set_learning with clip_norm > 0). */
    learning_privacy_result learning_privacy_spent() const {
        learning_privacy_result r{0, 0, 0};
        detail::check(chorus_engine_learning_privacy_spent(engine_, &r.epsilon, &r.delta, &r.releases));
        return r;
    }

    /* The top k items for each user, one list per user in order (batch-first). With o.shares,
     * each item carries every agent's share of its score, and the list names the agents. */
    std::vector<user_recommendations> recommend(array_view<int64_t> user_ids, size_t k, const recommend_options &o = {}) const {
        if (!o.request_ids.empty()) detail::same_length(user_ids.size(), o.request_ids.size(), "user_ids", "request_ids");
        const chorus_recommend_params p = detail::recommend_params(o);
        const size_t n = user_ids.size();
        const size_t slots = detail::product(n, k, "user_ids.size() * k");
        std::vector<int64_t> ids(slots);
        std::vector<float> scores(slots), shares;
        std::vector<uint32_t> flags(n);
        const char *const *agent_names = nullptr;
        size_t agent_count = 0;
        if (!o.shares) {
            detail::check(chorus_engine_recommend(engine_, user_ids.data(), n, k, &p, ids.data(), scores.data(), slots,
                                                  nullptr, 0, flags.data()));
        } else {
            // Sized for the agents of the published model; a fit publishing a model with more
            // agents in between makes the call report them (BUFFER_TOO_SMALL): size again. Never
            // a NULL buffer (that would mean "no shares").
            detail::check(chorus_engine_agent_count(engine_, &agent_count));
            for (int attempt = 0;; attempt++) {
                shares.resize(std::max<size_t>(1, detail::product(slots, agent_count, "user_ids.size() * k * agents")));
                chorus_status s = chorus_engine_recommend_details(
                    engine_, user_ids.data(), n, k, &p, ids.data(), scores.data(), slots, shares.data(), shares.size(),
                    flags.data(), &agent_names, &agent_count);
                if (s == CHORUS_OK) break;
                if (s != CHORUS_ERR_BUFFER_TOO_SMALL || attempt >= 8) detail::check(s);
            }
        }
        std::vector<user_recommendations> out;
        out.reserve(n);
        std::vector<std::string> agents = detail::names(agent_names, agent_count);
        for (size_t u = 0; u < n; u++) {
            out.push_back(user_recommendations{user_ids[u], flags[u] == CHORUS_USER_COLD_FALLBACK,
                                               detail::row(ids, scores, shares, u, k, agent_count), agents});
        }
        return out;
    }

    /* The k items most similar to each item (o's allow / deny lists apply). */
    std::vector<similar_items_result> similar_items(array_view<int64_t> item_ids, size_t k,
                                                    const recommend_options &o = {}) const {
        const chorus_recommend_params p = detail::recommend_params(o);
        const size_t n = item_ids.size();
        const size_t slots = detail::product(n, k, "item_ids.size() * k");
        std::vector<int64_t> ids(slots);
        std::vector<float> scores(slots);
        detail::check(chorus_engine_similar_items(engine_, item_ids.data(), n, k, &p, ids.data(), scores.data(), slots));
        std::vector<similar_items_result> out;
        out.reserve(n);
        for (size_t i = 0; i < n; i++) out.push_back(similar_items_result{item_ids[i], detail::row(ids, scores, {}, i, k, 0)});
        return out;
    }

    /* The k users most similar to each user (cosine of the ALS, else BPR, user vectors): only among
     * `allow_users` when set, never `deny_users`. */
    std::vector<similar_users_result> similar_users(array_view<int64_t> user_ids, size_t k,
                                                    const std::optional<std::vector<int64_t>> &allow_users = std::nullopt,
                                                    const std::vector<int64_t> &deny_users = {}) const {
        const size_t n = user_ids.size();
        const size_t slots = detail::product(n, k, "user_ids.size() * k");
        std::vector<int64_t> ids(slots);
        std::vector<float> scores(slots);
        detail::check(chorus_engine_similar_users(engine_, user_ids.data(), n, k,
                                                  allow_users ? allow_users->data() : nullptr, allow_users ? allow_users->size() : 0,
                                                  deny_users.data(), deny_users.size(), ids.data(), scores.data(), slots));
        std::vector<similar_users_result> out;
        out.reserve(n);
        for (size_t i = 0; i < n; i++) {
            similar_users_result r{user_ids[i], {}};
            // An empty slot is told by its score: -1 may be a user id.
            for (size_t j = 0; j < k; j++)
                if (scores[i * k + j] != -std::numeric_limits<float>::infinity()) r.users.push_back({ids[i * k + j], scores[i * k + j]});
            out.push_back(std::move(r));
        }
        return out;
    }

    /* Why `item_id` is recommended to `user_id` (o's query and history count). */
    explanation explain(int64_t user_id, int64_t item_id, const recommend_options &o = {}) const {
        const chorus_recommend_params p = detail::recommend_params(o);
        std::vector<float> shares(8);
        for (int attempt = 0;; attempt++) {
            chorus_explanation x;
            detail::check(chorus_explanation_init(&x));
            chorus_status s = chorus_engine_explain(engine_, user_id, item_id, &p, &x, shares.data(), shares.size(),
                                                    nullptr, 0, nullptr);
            if (s == CHORUS_ERR_BUFFER_TOO_SMALL && attempt < 8) {
                shares.resize(x.agent_count);
                continue;
            }
            detail::check(s);
            explanation out;
            out.score = x.score;
            out.because_item = x.because_item;
            out.because_similarity = x.because_similarity;
            size_t terms = 0;
            while (terms < sizeof x.matched_terms && x.matched_terms[terms] != '\0') terms++;
            out.matched_terms.assign(x.matched_terms, terms);
            out.sentence.assign(x.sentence ? x.sentence : "", x.sentence ? x.sentence_length : 0);
            out.agents = detail::names(x.agent_names, x.agent_count);
            out.shares.assign(shares.begin(), shares.begin() + static_cast<std::ptrdiff_t>(x.agent_count));
            return out;
        }
    }

    /* The agents and their blend weights (the popularity agent first). */
    std::vector<agent_info> agents() const {
        size_t n = 0;
        detail::check(chorus_engine_agent_count(engine_, &n));
        std::vector<agent_info> out;
        for (size_t i = 0; i < n; i++) {
            const char *name = nullptr;
            float weight = 0;
            chorus_status s = chorus_engine_agent_info(engine_, i, &name, &weight);
            if (s == CHORUS_ERR_NOT_FOUND) break;  // a fit in between published fewer agents
            detail::check(s);
            out.push_back(agent_info{name ? name : "", weight});
        }
        return out;
    }

    engine_stats stats() const {
        engine_stats s;
        detail::check(chorus_engine_stats_init(&s));
        detail::check(chorus_engine_get_stats(engine_, &s));
        return s;
    }

    /* The engine's own knowledge graph (shared, not a copy: it lives on in the engine). */
    knowledge_graph graph() {
        chorus_kg *kg = nullptr;
        detail::check(chorus_engine_knowledge_graph(engine_, &kg));
        return knowledge_graph(kg);
    }

private:
    using texts_fn = chorus_status (*)(chorus_engine *, const int64_t *, const char *const *, size_t, const chorus_texts_params *);

    void set_texts_ex(texts_fn fn, array_view<int64_t> ids, array_view<std::string> texts, const texts_options &o,
                      const char *ids_name) {
        detail::same_length(ids.size(), texts.size(), ids_name, "texts");
        auto t = detail::c_strings(texts, "texts");
        chorus_texts_params p;
        detail::check(chorus_texts_params_init(&p));
        p.threads = o.threads;
        detail::progress_relay relay{&o.progress, nullptr};
        if (o.progress) {
            p.progress = &detail::progress_relay::call;
            p.progress_user_data = &relay;
        }
        relay.finish(fn(engine_, ids.data(), t.data(), t.size(), &p));
    }

    static engine merge_handles(const std::vector<const chorus_engine *> &handles, const merge_options &o) {
        const chorus_merge_params p = detail::merge_params(o);
        chorus_engine *merged = nullptr;
        // A non-NULL pointer even for no shards: the library reports n = 0 itself.
        static const chorus_engine *const none = nullptr;
        detail::check(chorus_engine_merge(handles.empty() ? &none : handles.data(), handles.size(), &p, &merged));
        return engine(merged);
    }

    chorus_engine *engine_ = nullptr;
};

/* ---- Text encoder ----------------------------------------------------------------------------- */

class encoder {
public:
    explicit encoder(const encoder_options &o = {}) {
        chorus_encoder_params p;
        detail::check(chorus_encoder_params_init(&p));
        p.threads = o.threads;
        p.model_path = detail::optional_c_string(o.model_path, "model_path");
        p.flags = o.require_model ? CHORUS_ENCODER_REQUIRE_MODEL : 0u;
        detail::check(chorus_encoder_create(&p, &encoder_));
    }
    explicit encoder(chorus_encoder *adopted) noexcept : encoder_(adopted) {}
    ~encoder() { chorus_encoder_free(encoder_); }
    encoder(const encoder &) = delete;
    encoder &operator=(const encoder &) = delete;
    encoder(encoder &&other) noexcept : encoder_(std::exchange(other.encoder_, nullptr)) {}
    encoder &operator=(encoder &&other) noexcept {
        if (this != &other) {
            chorus_encoder_free(encoder_);
            encoder_ = std::exchange(other.encoder_, nullptr);
        }
        return *this;
    }

    chorus_encoder *get() const noexcept { return encoder_; }
    chorus_encoder *release() noexcept { return std::exchange(encoder_, nullptr); }
    explicit operator bool() const noexcept { return encoder_ != nullptr; }

    size_t dim() const {
        size_t d = 0;
        detail::check(chorus_encoder_dim(encoder_, &d));
        return d;
    }

    /* "all-MiniLM-L6-v2 weights from <dir>" or "fallback hashing encoder: <why>". */
    std::string name() const {
        const char *n = nullptr;
        detail::check(chorus_encoder_name(encoder_, &n));
        return n ? n : "";
    }

    /* One unit-length vector of dim() floats per text. */
    std::vector<std::vector<float>> encode(array_view<std::string> texts) const {
        const size_t d = dim();
        auto t = detail::c_strings(texts, "texts");
        std::vector<float> flat(detail::product(t.size(), d, "texts.size() * dim"));
        detail::check(chorus_encoder_encode(encoder_, t.data(), t.size(), flat.data(), flat.size()));
        std::vector<std::vector<float>> out;
        out.reserve(t.size());
        for (size_t i = 0; i < t.size(); i++)
            out.emplace_back(flat.begin() + static_cast<std::ptrdiff_t>(i * d), flat.begin() + static_cast<std::ptrdiff_t>((i + 1) * d));
        return out;
    }

private:
    chorus_encoder *encoder_ = nullptr;
};

}  // namespace chorus

#endif /* CHORUS_HPP */
