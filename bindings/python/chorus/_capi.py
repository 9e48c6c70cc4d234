"""Layer 2: 1:1 ctypes declarations of include/chorus.h.

Every function and struct of the header is mirrored here, in the header's order, with its C
prototype pasted above it. Nothing here is Pythonic: pointers are ctypes pointers, strings are
bytes, statuses are ints. chorus.engine builds the Pythonic layer on top.

At import, each mirrored struct's ``ctypes.sizeof`` is compared with the size the library reports
through ``chorus_struct_size``; a mismatch (the header grew, the binding did not follow) raises
ImportError instead of letting the library read or write past a Python-allocated struct.
"""

from __future__ import annotations

import ctypes
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_double,
    c_float,
    c_int32,
    c_int64,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)

from . import _version
from ._lib import lib

# ---- Version ---------------------------------------------------------------------------------

# #define CHORUS_VERSION_MAJOR / CHORUS_VERSION_MINOR / CHORUS_VERSION_PATCH: the numbers of the
# VERSION file (chorus/VERSION, a link to the top-level one; tests/test_version.py checks chorus.h's
# macros against it).
CHORUS_VERSION_MAJOR = _version.MAJOR
CHORUS_VERSION_MINOR = _version.MINOR
CHORUS_VERSION_PATCH = _version.PATCH
CHORUS_VERSION_NUMBER = CHORUS_VERSION_MAJOR * 10000 + CHORUS_VERSION_MINOR * 100 + CHORUS_VERSION_PATCH

# ---- Status codes (pinned forever) -----------------------------------------------------------

# typedef int32_t chorus_status;
chorus_status = c_int32

CHORUS_OK = 0
CHORUS_ERR_INVALID_ARGUMENT = -1
CHORUS_ERR_NOT_FOUND = -2
CHORUS_ERR_BUFFER_TOO_SMALL = -3
CHORUS_ERR_NOT_FITTED = -4
CHORUS_ERR_IO = -5
CHORUS_ERR_FORMAT = -6
CHORUS_ERR_UNSUPPORTED_VERSION = -7
CHORUS_ERR_CANCELLED = -8
CHORUS_ERR_OUT_OF_MEMORY = -9
CHORUS_ERR_INTERNAL = -10

# #define CHORUS_NO_ITEM ((int64_t)-1)
CHORUS_NO_ITEM = -1

# Limits in bytes of UTF-8 (chorus.h's CHORUS_MAX_* macros).
CHORUS_MAX_TEXT_BYTES = 1 << 20
CHORUS_MAX_NAME_BYTES = 4096
CHORUS_MAX_SCENARIO_NAME_BYTES = 128
CHORUS_MAX_PATH_BYTES = 4096
CHORUS_MAX_SCENARIOS = 65534
CHORUS_MAX_METADATA_BYTES = 1 << 30
CHORUS_MAX_METADATA_KEYS = 1024

# ---- Library ---------------------------------------------------------------------------------

# const char *chorus_version(void);
chorus_version = lib.chorus_version
chorus_version.argtypes = []
chorus_version.restype = c_char_p

# uint32_t chorus_version_number(void);
chorus_version_number = lib.chorus_version_number
chorus_version_number.argtypes = []
chorus_version_number.restype = c_uint32

# const char *chorus_last_error(void);
chorus_last_error = lib.chorus_last_error
chorus_last_error.argtypes = []
chorus_last_error.restype = c_char_p

# const char *chorus_status_name(chorus_status status);
chorus_status_name = lib.chorus_status_name
chorus_status_name.argtypes = [chorus_status]
chorus_status_name.restype = c_char_p

# size_t chorus_struct_size(const char *struct_name);
chorus_struct_size = lib.chorus_struct_size
chorus_struct_size.argtypes = [c_char_p]
chorus_struct_size.restype = c_size_t

CHORUS_LOG_DEBUG = 0
CHORUS_LOG_INFO = 1
CHORUS_LOG_WARNING = 2

# typedef void (*chorus_log_fn)(int32_t level, const char *message, void *user_data);
chorus_log_fn = CFUNCTYPE(None, c_int32, c_char_p, c_void_p)

# chorus_status chorus_set_log_callback(chorus_log_fn callback, void *user_data);
chorus_set_log_callback = lib.chorus_set_log_callback
chorus_set_log_callback.argtypes = [chorus_log_fn, c_void_p]
chorus_set_log_callback.restype = chorus_status

# ---- Engine ----------------------------------------------------------------------------------


# typedef struct chorus_engine chorus_engine;
class chorus_engine(Structure):
    """Opaque: only ever handled through a pointer."""


chorus_engine_p = POINTER(chorus_engine)


# #define CHORUS_ENGINE_REQUIRE_ENCODER 1u
CHORUS_ENGINE_REQUIRE_ENCODER = 1
# #define CHORUS_ENGINE_HASHING_ENCODER 2u
CHORUS_ENGINE_HASHING_ENCODER = 2


# typedef struct chorus_engine_params {
#     uint32_t struct_size;
#     uint32_t flags;
#     int64_t popularity_half_life_seconds;
#     const char *encoder_path;
# } chorus_engine_params;
class chorus_engine_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("flags", c_uint32),
        ("popularity_half_life_seconds", c_int64),
        ("encoder_path", c_char_p),
    ]


# chorus_status chorus_engine_params_init(chorus_engine_params *params);
chorus_engine_params_init = lib.chorus_engine_params_init
chorus_engine_params_init.argtypes = [POINTER(chorus_engine_params)]
chorus_engine_params_init.restype = chorus_status

# chorus_status chorus_engine_create(const chorus_engine_params *params, chorus_engine **out_engine);
chorus_engine_create = lib.chorus_engine_create
chorus_engine_create.argtypes = [POINTER(chorus_engine_params), POINTER(chorus_engine_p)]
chorus_engine_create.restype = chorus_status

# void chorus_engine_free(chorus_engine *engine);
chorus_engine_free = lib.chorus_engine_free
chorus_engine_free.argtypes = [chorus_engine_p]
chorus_engine_free.restype = None

# chorus_status chorus_engine_add_interactions(chorus_engine *engine, const int64_t *user_ids,
#                                              const int64_t *item_ids, const float *weights,
#                                              const int64_t *timestamps, size_t n);
chorus_engine_add_interactions = lib.chorus_engine_add_interactions
chorus_engine_add_interactions.argtypes = [
    chorus_engine_p, POINTER(c_int64), POINTER(c_int64), POINTER(c_float), POINTER(c_int64), c_size_t,
]
chorus_engine_add_interactions.restype = chorus_status

# chorus_status chorus_engine_set_item_texts(chorus_engine *engine, const int64_t *item_ids,
#                                            const char *const *texts, size_t n);
chorus_engine_set_item_texts = lib.chorus_engine_set_item_texts
chorus_engine_set_item_texts.argtypes = [chorus_engine_p, POINTER(c_int64), POINTER(c_char_p), c_size_t]
chorus_engine_set_item_texts.restype = chorus_status

# chorus_status chorus_engine_set_user_texts(chorus_engine *engine, const int64_t *user_ids,
#                                            const char *const *texts, size_t n);
chorus_engine_set_user_texts = lib.chorus_engine_set_user_texts
chorus_engine_set_user_texts.argtypes = [chorus_engine_p, POINTER(c_int64), POINTER(c_char_p), c_size_t]
chorus_engine_set_user_texts.restype = chorus_status

# chorus_status chorus_engine_add_item_facts(chorus_engine *engine, const int64_t *item_ids,
#                                            const char *const *relations, const char *const *entities,
#                                            size_t n, size_t *out_added);
chorus_engine_add_item_facts = lib.chorus_engine_add_item_facts
chorus_engine_add_item_facts.argtypes = [chorus_engine_p, POINTER(c_int64), POINTER(c_char_p), POINTER(c_char_p), c_size_t, POINTER(c_size_t)]
chorus_engine_add_item_facts.restype = chorus_status

# chorus_status chorus_engine_encoder_name(const chorus_engine *engine, const char **out_name);
chorus_engine_encoder_name = lib.chorus_engine_encoder_name
chorus_engine_encoder_name.argtypes = [chorus_engine_p, POINTER(c_char_p)]
chorus_engine_encoder_name.restype = chorus_status

# chorus_status chorus_engine_define_scenario(chorus_engine *engine, const char *name, const char *description);
chorus_engine_define_scenario = lib.chorus_engine_define_scenario
chorus_engine_define_scenario.argtypes = [chorus_engine_p, c_char_p, c_char_p]
chorus_engine_define_scenario.restype = chorus_status

# chorus_status chorus_engine_add_scenario_interactions(chorus_engine *engine, const char *scenario,
#                                                       const int64_t *user_ids, const int64_t *item_ids,
#                                                       const float *weights, const int64_t *timestamps, size_t n);
chorus_engine_add_scenario_interactions = lib.chorus_engine_add_scenario_interactions
chorus_engine_add_scenario_interactions.argtypes = [
    chorus_engine_p, c_char_p, POINTER(c_int64), POINTER(c_int64), POINTER(c_float), POINTER(c_int64), c_size_t,
]
chorus_engine_add_scenario_interactions.restype = chorus_status

# ---- Live feedback ----------------------------------------------------------------------------

# typedef enum chorus_event { CHORUS_EVENT_IMPRESSION = 0, ... CHORUS_EVENT_DISMISS = 6 } chorus_event;
CHORUS_EVENT_IMPRESSION = 0
CHORUS_EVENT_CLICK = 1
CHORUS_EVENT_ADD_TO_CART = 2
CHORUS_EVENT_PURCHASE = 3
CHORUS_EVENT_RATING = 4
CHORUS_EVENT_SKIP = 5
CHORUS_EVENT_DISMISS = 6


# typedef struct chorus_feedback_params {
#     uint32_t struct_size;
#     float impression, click, add_to_cart, purchase, rating, skip, dismiss;
#     uint32_t reserved;
# } chorus_feedback_params;
class chorus_feedback_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("impression", c_float),
        ("click", c_float),
        ("add_to_cart", c_float),
        ("purchase", c_float),
        ("rating", c_float),
        ("skip", c_float),
        ("dismiss", c_float),
        ("reserved", c_uint32),
    ]


# chorus_status chorus_feedback_params_init(chorus_feedback_params *params);
# (In C a macro of that name calls chorus_feedback_params_init_sized with sizeof; from Python call that
# with ctypes.sizeof.)
chorus_feedback_params_init = lib.chorus_feedback_params_init
chorus_feedback_params_init.argtypes = [POINTER(chorus_feedback_params)]
chorus_feedback_params_init.restype = chorus_status

# chorus_status chorus_feedback_params_init_sized(chorus_feedback_params *params, size_t struct_size);
chorus_feedback_params_init_sized = lib.chorus_feedback_params_init_sized
chorus_feedback_params_init_sized.argtypes = [POINTER(chorus_feedback_params), c_size_t]
chorus_feedback_params_init_sized.restype = chorus_status

# chorus_status chorus_engine_feedback(chorus_engine *engine, const int64_t *user_ids, const int64_t *item_ids,
#                                      const int32_t *events, const float *values, const int64_t *timestamps,
#                                      size_t n, const char *scenario, const int64_t *request_ids,
#                                      const chorus_feedback_params *params);
chorus_engine_feedback = lib.chorus_engine_feedback
chorus_engine_feedback.argtypes = [
    chorus_engine_p, POINTER(c_int64), POINTER(c_int64), POINTER(c_int32), POINTER(c_float), POINTER(c_int64),
    c_size_t, c_char_p, POINTER(c_int64), POINTER(chorus_feedback_params),
]
chorus_engine_feedback.restype = chorus_status

# ---- Learning coordinator ----------------------------------------------------------------------

# typedef enum chorus_learning_mode { CHORUS_LEARNING_OFF = 0, ... CHORUS_LEARNING_POLICY = 3 } chorus_learning_mode;
CHORUS_LEARNING_OFF = 0
CHORUS_LEARNING_LINUCB = 1
CHORUS_LEARNING_THOMPSON = 2
CHORUS_LEARNING_POLICY = 3
# #define CHORUS_NO_REQUEST ((int64_t)-1)
CHORUS_NO_REQUEST = -1
# #define CHORUS_SLATE_LOG_CLOSE_OPEN 1u / CHORUS_SLATE_LOG_DRAIN 2u
CHORUS_SLATE_LOG_CLOSE_OPEN = 1
CHORUS_SLATE_LOG_DRAIN = 2


# typedef struct chorus_learning_params {
#     uint32_t struct_size; int32_t mode; float exploration, learning_rate, prior_strength;
#     uint32_t reserved; uint64_t log_capacity, seed;
#     double noise_multiplier, clip_norm, delta; uint64_t release_slates;
# } chorus_learning_params;
class chorus_learning_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("mode", c_int32),
        ("exploration", c_float),
        ("learning_rate", c_float),
        ("prior_strength", c_float),
        ("reserved", c_uint32),
        ("log_capacity", c_uint64),
        ("seed", c_uint64),
        ("noise_multiplier", c_double),
        ("clip_norm", c_double),
        ("delta", c_double),
        ("release_slates", c_uint64),
    ]


# typedef struct chorus_slate_row {
#     int64_t request_id, user_id, item_id; int32_t slot; float propensity, reward; uint32_t reserved;
# } chorus_slate_row;
class chorus_slate_row(Structure):
    _fields_ = [
        ("request_id", c_int64),
        ("user_id", c_int64),
        ("item_id", c_int64),
        ("slot", c_int32),
        ("propensity", c_float),
        ("reward", c_float),
        ("reserved", c_uint32),
    ]


# chorus_status chorus_learning_params_init(chorus_learning_params *params);
# (In C a macro of that name calls chorus_learning_params_init_sized with sizeof.)
chorus_learning_params_init = lib.chorus_learning_params_init
chorus_learning_params_init.argtypes = [POINTER(chorus_learning_params)]
chorus_learning_params_init.restype = chorus_status

# chorus_status chorus_learning_params_init_sized(chorus_learning_params *params, size_t struct_size);
chorus_learning_params_init_sized = lib.chorus_learning_params_init_sized
chorus_learning_params_init_sized.argtypes = [POINTER(chorus_learning_params), c_size_t]
chorus_learning_params_init_sized.restype = chorus_status

# chorus_status chorus_engine_set_learning(chorus_engine *engine, const chorus_learning_params *params);
chorus_engine_set_learning = lib.chorus_engine_set_learning
chorus_engine_set_learning.argtypes = [chorus_engine_p, POINTER(chorus_learning_params)]
chorus_engine_set_learning.restype = chorus_status

# chorus_status chorus_engine_slate_log(chorus_engine *engine, uint32_t flags, chorus_slate_row *out, size_t capacity,
#                                       size_t *out_count);
chorus_engine_slate_log = lib.chorus_engine_slate_log
chorus_engine_slate_log.argtypes = [chorus_engine_p, c_uint32, POINTER(chorus_slate_row), c_size_t, POINTER(c_size_t)]
chorus_engine_slate_log.restype = chorus_status

# typedef int32_t (*chorus_progress_fn)(const char *stage, double fraction, void *user_data);
chorus_progress_fn = CFUNCTYPE(c_int32, c_char_p, c_double, c_void_p)


# typedef struct chorus_fit_params {
#     uint32_t struct_size;
#     uint32_t factors;
#     float regularization;
#     float alpha;
#     uint32_t iterations;
#     uint32_t threads;
#     uint64_t seed;
#     float validation_fraction;
#     uint32_t reserved;
#     chorus_progress_fn progress;
#     void *progress_user_data;
# } chorus_fit_params;
class chorus_fit_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("factors", c_uint32),
        ("regularization", c_float),
        ("alpha", c_float),
        ("iterations", c_uint32),
        ("threads", c_uint32),
        ("seed", c_uint64),
        ("validation_fraction", c_float),
        ("reserved", c_uint32),
        ("progress", chorus_progress_fn),
        ("progress_user_data", c_void_p),
        # since 0.3.0
        ("agents", c_char_p),
        ("bpr_epochs", c_uint32),
        ("reserved2", c_uint32),
    ]


# chorus_status chorus_fit_params_init(chorus_fit_params *params);
# (The function: the 0.2.0 layout only. In C the macro of that name calls chorus_fit_params_init_sized
# with sizeof(chorus_fit_params); from Python call that with ctypes.sizeof.)
chorus_fit_params_init = lib.chorus_fit_params_init
chorus_fit_params_init.argtypes = [POINTER(chorus_fit_params)]
chorus_fit_params_init.restype = chorus_status

# chorus_status chorus_fit_params_init_sized(chorus_fit_params *params, size_t struct_size);
chorus_fit_params_init_sized = lib.chorus_fit_params_init_sized
chorus_fit_params_init_sized.argtypes = [POINTER(chorus_fit_params), c_size_t]
chorus_fit_params_init_sized.restype = chorus_status

# chorus_status chorus_engine_fit(chorus_engine *engine, const chorus_fit_params *params);
chorus_engine_fit = lib.chorus_engine_fit
chorus_engine_fit.argtypes = [chorus_engine_p, POINTER(chorus_fit_params)]
chorus_engine_fit.restype = chorus_status

# #define CHORUS_RECOMMEND_INCLUDE_SEEN 1u
CHORUS_RECOMMEND_INCLUDE_SEEN = 1


# typedef struct chorus_recommend_params {
#     uint32_t struct_size;
#     uint32_t flags;
#     const int64_t *allow_items;
#     size_t n_allow;
#     const int64_t *deny_items;
#     size_t n_deny;
#     const char *agent;
#     const char *query;
#     const int64_t *history_items;
#     size_t n_history;
#     float diversity;
#     uint32_t reserved;
#     const char *scenario;
# } chorus_recommend_params;
class chorus_recommend_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("flags", c_uint32),
        ("allow_items", POINTER(c_int64)),
        ("n_allow", c_size_t),
        ("deny_items", POINTER(c_int64)),
        ("n_deny", c_size_t),
        ("agent", c_char_p),
        ("query", c_char_p),
        ("history_items", POINTER(c_int64)),
        ("n_history", c_size_t),
        ("diversity", c_float),
        ("reserved", c_uint32),
        ("scenario", c_char_p),
        ("request_ids", POINTER(c_int64)),
    ]


# chorus_status chorus_recommend_params_init(chorus_recommend_params *params);
# (In C a macro of that name calls chorus_recommend_params_init_sized with sizeof; the function writes the
# 0.1.0 layout, without request_ids: call _init_sized with ctypes.sizeof.)
chorus_recommend_params_init = lib.chorus_recommend_params_init
chorus_recommend_params_init.argtypes = [POINTER(chorus_recommend_params)]
chorus_recommend_params_init.restype = chorus_status

# chorus_status chorus_recommend_params_init_sized(chorus_recommend_params *params, size_t struct_size);
chorus_recommend_params_init_sized = lib.chorus_recommend_params_init_sized
chorus_recommend_params_init_sized.argtypes = [POINTER(chorus_recommend_params), c_size_t]
chorus_recommend_params_init_sized.restype = chorus_status

# #define CHORUS_USER_KNOWN 0u
# #define CHORUS_USER_COLD_FALLBACK 1u
CHORUS_USER_KNOWN = 0
CHORUS_USER_COLD_FALLBACK = 1

# chorus_status chorus_engine_recommend(const chorus_engine *engine, const int64_t *user_ids,
#                                       size_t n_users, size_t k,
#                                       const chorus_recommend_params *params,
#                                       int64_t *out_item_ids, float *out_scores, size_t capacity,
#                                       float *out_agent_shares, size_t shares_capacity,
#                                       uint32_t *out_user_flags);
chorus_engine_recommend = lib.chorus_engine_recommend
chorus_engine_recommend.argtypes = [
    chorus_engine_p, POINTER(c_int64), c_size_t, c_size_t, POINTER(chorus_recommend_params),
    POINTER(c_int64), POINTER(c_float), c_size_t, POINTER(c_float), c_size_t, POINTER(c_uint32),
]
chorus_engine_recommend.restype = chorus_status

# chorus_status chorus_engine_recommend_details(const chorus_engine *engine, const int64_t *user_ids,
#                                               size_t n_users, size_t k,
#                                               const chorus_recommend_params *params,
#                                               int64_t *out_item_ids, float *out_scores, size_t capacity,
#                                               float *out_agent_shares, size_t shares_capacity,
#                                               uint32_t *out_user_flags,
#                                               const char *const **out_agent_names, size_t *out_agent_count);
chorus_engine_recommend_details = lib.chorus_engine_recommend_details
chorus_engine_recommend_details.argtypes = [
    chorus_engine_p, POINTER(c_int64), c_size_t, c_size_t, POINTER(chorus_recommend_params),
    POINTER(c_int64), POINTER(c_float), c_size_t, POINTER(c_float), c_size_t, POINTER(c_uint32),
    POINTER(POINTER(c_char_p)), POINTER(c_size_t),
]
chorus_engine_recommend_details.restype = chorus_status

# chorus_status chorus_engine_similar_items(const chorus_engine *engine, const int64_t *item_ids,
#                                           size_t n_items, size_t k,
#                                           const chorus_recommend_params *params,
#                                           int64_t *out_item_ids, float *out_scores,
#                                           size_t capacity);
chorus_engine_similar_items = lib.chorus_engine_similar_items
chorus_engine_similar_items.argtypes = [
    chorus_engine_p, POINTER(c_int64), c_size_t, c_size_t, POINTER(chorus_recommend_params),
    POINTER(c_int64), POINTER(c_float), c_size_t,
]
chorus_engine_similar_items.restype = chorus_status

# chorus_status chorus_engine_similar_users(const chorus_engine *engine, const int64_t *user_ids,
#                                           size_t n_users, size_t k,
#                                           const int64_t *allow_users, size_t n_allow,
#                                           const int64_t *deny_users, size_t n_deny,
#                                           int64_t *out_user_ids, float *out_scores,
#                                           size_t capacity);
chorus_engine_similar_users = lib.chorus_engine_similar_users
chorus_engine_similar_users.argtypes = [
    chorus_engine_p, POINTER(c_int64), c_size_t, c_size_t, POINTER(c_int64), c_size_t, POINTER(c_int64), c_size_t,
    POINTER(c_int64), POINTER(c_float), c_size_t,
]
chorus_engine_similar_users.restype = chorus_status

# chorus_status chorus_engine_agent_count(const chorus_engine *engine, size_t *out_count);
chorus_engine_agent_count = lib.chorus_engine_agent_count
chorus_engine_agent_count.argtypes = [chorus_engine_p, POINTER(c_size_t)]
chorus_engine_agent_count.restype = chorus_status

# chorus_status chorus_engine_agent_info(const chorus_engine *engine, size_t index,
#                                        const char **out_name, float *out_weight);
chorus_engine_agent_info = lib.chorus_engine_agent_info
chorus_engine_agent_info.argtypes = [chorus_engine_p, c_size_t, POINTER(c_char_p), POINTER(c_float)]
chorus_engine_agent_info.restype = chorus_status


# typedef struct chorus_engine_stats {
#     uint32_t struct_size;
#     uint32_t fitted;
#     uint64_t n_users;
#     uint64_t n_items;
#     uint64_t n_interactions;
#     uint64_t n_model_users;
#     uint64_t n_model_items;
#     uint64_t model_bytes;
#     int64_t popularity_half_life_seconds;
#     uint64_t allocator_allocated_bytes;
#     uint64_t allocator_resident_bytes;
# } chorus_engine_stats;
class chorus_engine_stats(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("fitted", c_uint32),
        ("n_users", c_uint64),
        ("n_items", c_uint64),
        ("n_interactions", c_uint64),
        ("n_model_users", c_uint64),
        ("n_model_items", c_uint64),
        ("model_bytes", c_uint64),
        ("popularity_half_life_seconds", c_int64),
        ("n_item_texts", c_uint64),
        ("n_user_texts", c_uint64),
        ("n_item_facts", c_uint64),
        ("allocator_allocated_bytes", c_uint64),
        ("allocator_resident_bytes", c_uint64),
    ]


# typedef struct chorus_explanation {
#     uint32_t struct_size;
#     float score;
#     int64_t because_item;
#     float because_similarity;
#     uint32_t reserved;
#     char matched_terms[256];
#     const char *sentence;
#     size_t sentence_length;
#     size_t agent_count;
#     const char *const *agent_names;
# } chorus_explanation;
class chorus_explanation(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("score", c_float),
        ("because_item", c_int64),
        ("because_similarity", c_float),
        ("reserved", c_uint32),
        ("matched_terms", ctypes.c_char * 256),
        # POINTER(c_char), not c_char_p: read with ctypes.string_at(sentence, sentence_length).
        ("sentence", POINTER(ctypes.c_char)),
        ("sentence_length", c_size_t),
        ("agent_count", c_size_t),
        ("agent_names", POINTER(c_char_p)),
    ]


# chorus_status chorus_explanation_init(chorus_explanation *explanation);
# (The function: the 0.1.0 layout only. In C the macro of that name calls chorus_explanation_init_sized
# with sizeof(chorus_explanation); from Python call that with ctypes.sizeof.)
chorus_explanation_init = lib.chorus_explanation_init
chorus_explanation_init.argtypes = [POINTER(chorus_explanation)]
chorus_explanation_init.restype = chorus_status

# chorus_status chorus_explanation_init_sized(chorus_explanation *explanation, size_t struct_size);
chorus_explanation_init_sized = lib.chorus_explanation_init_sized
chorus_explanation_init_sized.argtypes = [POINTER(chorus_explanation), c_size_t]
chorus_explanation_init_sized.restype = chorus_status

# chorus_status chorus_engine_explain(const chorus_engine *engine, int64_t user_id, int64_t item_id,
#                                     const chorus_recommend_params *params, chorus_explanation *out,
#                                     float *out_shares, size_t shares_capacity,
#                                     char *text, size_t text_capacity, size_t *out_text_length);
chorus_engine_explain = lib.chorus_engine_explain
chorus_engine_explain.argtypes = [
    chorus_engine_p, c_int64, c_int64, POINTER(chorus_recommend_params), POINTER(chorus_explanation),
    POINTER(c_float), c_size_t, ctypes.c_char_p, c_size_t, POINTER(c_size_t),
]
chorus_engine_explain.restype = chorus_status

# chorus_status chorus_engine_stats_init(chorus_engine_stats *stats);
chorus_engine_stats_init = lib.chorus_engine_stats_init
chorus_engine_stats_init.argtypes = [POINTER(chorus_engine_stats)]
chorus_engine_stats_init.restype = chorus_status

# chorus_status chorus_engine_get_stats(const chorus_engine *engine, chorus_engine_stats *out_stats);
chorus_engine_get_stats = lib.chorus_engine_get_stats
chorus_engine_get_stats.argtypes = [chorus_engine_p, POINTER(chorus_engine_stats)]
chorus_engine_get_stats.restype = chorus_status

# chorus_status chorus_engine_save(const chorus_engine *engine, const char *path);
chorus_engine_save = lib.chorus_engine_save
chorus_engine_save.argtypes = [chorus_engine_p, c_char_p]
chorus_engine_save.restype = chorus_status

# #define CHORUS_SAVE_WITHOUT_INTERACTIONS 1u
CHORUS_SAVE_WITHOUT_INTERACTIONS = 1

# chorus_status chorus_engine_save_ex(const chorus_engine *engine, const char *path, uint32_t flags);
chorus_engine_save_ex = lib.chorus_engine_save_ex
chorus_engine_save_ex.argtypes = [chorus_engine_p, c_char_p, c_uint32]
chorus_engine_save_ex.restype = chorus_status

# chorus_status chorus_engine_load(const char *path, chorus_engine **out_engine);
chorus_engine_load = lib.chorus_engine_load
chorus_engine_load.argtypes = [c_char_p, POINTER(chorus_engine_p)]
chorus_engine_load.restype = chorus_status

# ---- Sharded training (federated averaging) ------------------------------------------------------


# typedef struct chorus_merge_params {
#     uint32_t struct_size; uint32_t threads;
#     double noise_multiplier, clip_norm, delta; uint64_t seed;
# } chorus_merge_params;
class chorus_merge_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("threads", c_uint32),
        ("noise_multiplier", c_double),
        ("clip_norm", c_double),
        ("delta", c_double),
        ("seed", c_uint64),
    ]


# chorus_status chorus_merge_params_init(chorus_merge_params *params);
# (In C a macro of that name calls chorus_merge_params_init_sized with sizeof; from Python call that
# with ctypes.sizeof.)
chorus_merge_params_init = lib.chorus_merge_params_init
chorus_merge_params_init.argtypes = [POINTER(chorus_merge_params)]
chorus_merge_params_init.restype = chorus_status

# chorus_status chorus_merge_params_init_sized(chorus_merge_params *params, size_t struct_size);
chorus_merge_params_init_sized = lib.chorus_merge_params_init_sized
chorus_merge_params_init_sized.argtypes = [POINTER(chorus_merge_params), c_size_t]
chorus_merge_params_init_sized.restype = chorus_status

# chorus_status chorus_engine_merge(const chorus_engine *const *shards, size_t n, const chorus_merge_params *params,
#                                   chorus_engine **out_engine);
chorus_engine_merge = lib.chorus_engine_merge
chorus_engine_merge.argtypes = [POINTER(chorus_engine_p), c_size_t, POINTER(chorus_merge_params), POINTER(chorus_engine_p)]
chorus_engine_merge.restype = chorus_status

# chorus_status chorus_engine_fit_from(chorus_engine *engine, const chorus_fit_params *params, const chorus_engine *start);
chorus_engine_fit_from = lib.chorus_engine_fit_from
chorus_engine_fit_from.argtypes = [chorus_engine_p, POINTER(chorus_fit_params), chorus_engine_p]
chorus_engine_fit_from.restype = chorus_status

# chorus_status chorus_engine_privacy_spent(const chorus_engine *engine, double *out_epsilon, double *out_delta,
#                                           uint32_t *out_rounds);
chorus_engine_privacy_spent = lib.chorus_engine_privacy_spent
chorus_engine_privacy_spent.argtypes = [chorus_engine_p, POINTER(c_double), POINTER(c_double), POINTER(c_uint32)]
chorus_engine_privacy_spent.restype = chorus_status

# chorus_status chorus_engine_learning_privacy_spent(const chorus_engine *engine, double *out_epsilon, double *out_delta,
#                                                    uint64_t *out_releases);
chorus_engine_learning_privacy_spent = lib.chorus_engine_learning_privacy_spent
chorus_engine_learning_privacy_spent.argtypes = [chorus_engine_p, POINTER(c_double), POINTER(c_double), POINTER(c_uint64)]
chorus_engine_learning_privacy_spent.restype = chorus_status

# chorus_status chorus_engine_set_metadata(chorus_engine *engine, const char *key, const void *value, size_t length);
chorus_engine_set_metadata = lib.chorus_engine_set_metadata
chorus_engine_set_metadata.argtypes = [chorus_engine_p, c_char_p, c_void_p, c_size_t]
chorus_engine_set_metadata.restype = chorus_status

# chorus_status chorus_engine_metadata(const chorus_engine *engine, const char *key, void *buffer, size_t capacity,
#                                      size_t *out_length);
chorus_engine_metadata = lib.chorus_engine_metadata
chorus_engine_metadata.argtypes = [chorus_engine_p, c_char_p, c_void_p, c_size_t, POINTER(c_size_t)]
chorus_engine_metadata.restype = chorus_status

# ---- Text encoder ----------------------------------------------------------------------------


# typedef struct chorus_encoder chorus_encoder;
class chorus_encoder(Structure):
    """Opaque: only ever handled through a pointer."""


chorus_encoder_p = POINTER(chorus_encoder)

# #define CHORUS_ENCODER_REQUIRE_MODEL 1u
CHORUS_ENCODER_REQUIRE_MODEL = 1


# typedef struct chorus_encoder_params {
#     uint32_t struct_size;
#     uint32_t threads;
#     const char *model_path;
#     uint32_t flags;
#     uint32_t reserved;
# } chorus_encoder_params;
class chorus_encoder_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("threads", c_uint32),
        ("model_path", c_char_p),
        ("flags", c_uint32),
        ("reserved", c_uint32),
    ]


# chorus_status chorus_encoder_params_init(chorus_encoder_params *params);
chorus_encoder_params_init = lib.chorus_encoder_params_init
chorus_encoder_params_init.argtypes = [POINTER(chorus_encoder_params)]
chorus_encoder_params_init.restype = chorus_status

# chorus_status chorus_encoder_create(const chorus_encoder_params *params, chorus_encoder **out_encoder);
chorus_encoder_create = lib.chorus_encoder_create
chorus_encoder_create.argtypes = [POINTER(chorus_encoder_params), POINTER(chorus_encoder_p)]
chorus_encoder_create.restype = chorus_status

# void chorus_encoder_free(chorus_encoder *encoder);
chorus_encoder_free = lib.chorus_encoder_free
chorus_encoder_free.argtypes = [chorus_encoder_p]
chorus_encoder_free.restype = None

# chorus_status chorus_encoder_dim(const chorus_encoder *encoder, size_t *out_dim);
chorus_encoder_dim = lib.chorus_encoder_dim
chorus_encoder_dim.argtypes = [chorus_encoder_p, POINTER(c_size_t)]
chorus_encoder_dim.restype = chorus_status

# chorus_status chorus_encoder_name(const chorus_encoder *encoder, const char **out_name);
chorus_encoder_name = lib.chorus_encoder_name
chorus_encoder_name.argtypes = [chorus_encoder_p, POINTER(c_char_p)]
chorus_encoder_name.restype = chorus_status

# chorus_status chorus_encoder_encode(const chorus_encoder *encoder, const char *const *texts, size_t n,
#                                     float *out, size_t capacity);
chorus_encoder_encode = lib.chorus_encoder_encode
chorus_encoder_encode.argtypes = [chorus_encoder_p, POINTER(c_char_p), c_size_t, POINTER(c_float), c_size_t]
chorus_encoder_encode.restype = chorus_status

# ---- Knowledge graph -------------------------------------------------------------------------


class chorus_kg(Structure):
    """Opaque: only ever handled through a pointer."""


chorus_kg_p = POINTER(chorus_kg)


class chorus_kg_train_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("dim", c_uint32),
        ("model", c_char_p),
        ("epochs", c_uint32),
        ("batch_size", c_uint32),
        ("negatives", c_uint32),
        ("threads", c_uint32),
        ("learning_rate", c_float),
        ("gamma", c_float),
        ("seed", c_uint64),
        ("progress", chorus_progress_fn),
        ("progress_user_data", c_void_p),
        ("share_negatives", c_uint32),
        ("lr_decay_epoch", c_uint32),
        ("lr_decay_factor", c_float),
        ("filter_negatives", c_uint32),
    ]


class chorus_kg_metrics(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("reserved", c_uint32),
        ("queries", c_uint64),
        ("skipped", c_uint64),
        ("mrr", c_double),
        ("hits_at_1", c_double),
        ("hits_at_3", c_double),
        ("hits_at_10", c_double),
    ]


def _declare(name, argtypes, restype=chorus_status):
    fn = getattr(lib, name)
    fn.argtypes = argtypes
    fn.restype = restype
    return fn


# chorus_status chorus_kg_create(chorus_kg **out_kg);
chorus_kg_create = _declare("chorus_kg_create", [POINTER(chorus_kg_p)])
# void chorus_kg_free(chorus_kg *kg);
chorus_kg_free = _declare("chorus_kg_free", [chorus_kg_p], None)
# chorus_status chorus_kg_add_triples(chorus_kg *kg, const char *const *heads, const char *const *relations,
#                                     const char *const *tails, size_t n, size_t *out_added);
chorus_kg_add_triples = _declare("chorus_kg_add_triples", [chorus_kg_p, POINTER(c_char_p), POINTER(c_char_p), POINTER(c_char_p), c_size_t, POINTER(c_size_t)])
# chorus_status chorus_kg_load_tsv(chorus_kg *kg, const char *path, size_t *out_added);
chorus_kg_load_tsv = _declare("chorus_kg_load_tsv", [chorus_kg_p, c_char_p, POINTER(c_size_t)])
# chorus_status chorus_kg_counts(const chorus_kg *kg, size_t *out_entities, size_t *out_relations, size_t *out_triples);
chorus_kg_counts = _declare("chorus_kg_counts", [chorus_kg_p, POINTER(c_size_t), POINTER(c_size_t), POINTER(c_size_t)])
# chorus_status chorus_kg_train_params_init(chorus_kg_train_params *params);
chorus_kg_train_params_init = _declare("chorus_kg_train_params_init", [POINTER(chorus_kg_train_params)])
# chorus_status chorus_kg_train(chorus_kg *kg, const chorus_kg_train_params *params);
chorus_kg_train = _declare("chorus_kg_train", [chorus_kg_p, POINTER(chorus_kg_train_params)])
# chorus_status chorus_kg_metrics_init(chorus_kg_metrics *metrics);
chorus_kg_metrics_init = _declare("chorus_kg_metrics_init", [POINTER(chorus_kg_metrics)])
# chorus_status chorus_kg_evaluate_tsv(const chorus_kg *kg, const char *path, chorus_kg_metrics *out);
chorus_kg_evaluate_tsv = _declare("chorus_kg_evaluate_tsv", [chorus_kg_p, c_char_p, POINTER(chorus_kg_metrics)])
# chorus_status chorus_kg_entity_vector(const chorus_kg *kg, const char *name, float *out, size_t capacity, size_t *out_dim);
chorus_kg_entity_vector = _declare("chorus_kg_entity_vector", [chorus_kg_p, c_char_p, POINTER(c_float), c_size_t, POINTER(c_size_t)])
# chorus_status chorus_kg_relation_vector(const chorus_kg *kg, const char *name, float *out, size_t capacity, size_t *out_dim);
chorus_kg_relation_vector = _declare("chorus_kg_relation_vector", [chorus_kg_p, c_char_p, POINTER(c_float), c_size_t, POINTER(c_size_t)])
# chorus_status chorus_kg_save(const chorus_kg *kg, const char *path);
chorus_kg_save = _declare("chorus_kg_save", [chorus_kg_p, c_char_p])
# chorus_status chorus_kg_load(const char *path, chorus_kg **out_kg);
chorus_kg_load = _declare("chorus_kg_load", [c_char_p, POINTER(chorus_kg_p)])
# chorus_status chorus_engine_knowledge_graph(chorus_engine *engine, chorus_kg **out_kg);
chorus_engine_knowledge_graph = _declare("chorus_engine_knowledge_graph", [chorus_engine_p, POINTER(chorus_kg_p)])

# ---- Texts with options ----------------------------------------------------------------------


class chorus_texts_params(Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("threads", c_uint32),
        ("progress", chorus_progress_fn),
        ("progress_user_data", c_void_p),
    ]


# chorus_status chorus_texts_params_init(chorus_texts_params *params);
chorus_texts_params_init = _declare("chorus_texts_params_init", [POINTER(chorus_texts_params)])
# chorus_status chorus_engine_set_item_texts_ex(chorus_engine *engine, const int64_t *item_ids,
#                                               const char *const *texts, size_t n,
#                                               const chorus_texts_params *params);
chorus_engine_set_item_texts_ex = _declare("chorus_engine_set_item_texts_ex", [
    chorus_engine_p, POINTER(c_int64), POINTER(c_char_p), c_size_t, POINTER(chorus_texts_params)])
# chorus_status chorus_engine_set_user_texts_ex(chorus_engine *engine, const int64_t *user_ids,
#                                               const char *const *texts, size_t n,
#                                               const chorus_texts_params *params);
chorus_engine_set_user_texts_ex = _declare("chorus_engine_set_user_texts_ex", [
    chorus_engine_p, POINTER(c_int64), POINTER(c_char_p), c_size_t, POINTER(chorus_texts_params)])

# ---- Layout check ----------------------------------------------------------------------------

#: Every struct of chorus.h mirrored above, by its C name.
STRUCTS = {
    "chorus_engine_params": chorus_engine_params,
    "chorus_fit_params": chorus_fit_params,
    "chorus_recommend_params": chorus_recommend_params,
    "chorus_engine_stats": chorus_engine_stats,
    "chorus_encoder_params": chorus_encoder_params,
    "chorus_explanation": chorus_explanation,
    "chorus_kg_train_params": chorus_kg_train_params,
    "chorus_kg_metrics": chorus_kg_metrics,
    "chorus_feedback_params": chorus_feedback_params,
    "chorus_texts_params": chorus_texts_params,
    "chorus_learning_params": chorus_learning_params,
    "chorus_slate_row": chorus_slate_row,
    "chorus_merge_params": chorus_merge_params,
}


def check_struct_sizes() -> None:
    """Raises ImportError if a mirrored struct's size differs from the library's."""
    for name, struct in STRUCTS.items():
        theirs = int(chorus_struct_size(name.encode("ascii")))
        ours = ctypes.sizeof(struct)
        if theirs != ours:
            raise ImportError(
                f"chorus: struct layout drift: sizeof({name}) is {theirs} in the library but "
                f"{ours} in the Python binding (chorus/_capi.py); the binding and the library "
                "come from different versions of chorus.h"
            )


check_struct_sizes()
