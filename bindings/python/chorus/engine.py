"""Layer 3: the Pythonic engine over the 1:1 declarations of chorus._capi.

numpy in and out: inputs are converted with ``np.ascontiguousarray`` to the C element types,
outputs are allocated here and filled by the library. Calls are batch-first and return
``(ids, scores)`` as implicit's ``recommend`` does.
"""

from __future__ import annotations

import ctypes
import datetime
import enum
import math
import operator
import os
import re
from ctypes import POINTER, byref, c_char_p, c_float, c_int64, c_size_t, c_uint32
from typing import Any, Callable, Dict, List, Literal, Mapping, NamedTuple, Optional, Sequence, Tuple, Union, overload

import numpy as np

from . import _capi, _frames, _progress
from ._handle import NativeObject
from ._ids import HostIds
from ._strings import PathLike, _path, _text
from .errors import InvalidArgument, check

ProgressFn = Callable[[str, float], Optional[bool]]
Progress = Union[None, bool, ProgressFn]
#: Ids as the caller holds them: one int or str, a sequence, a numpy array or a pandas Series; where
#: a method says so, a pandas DataFrame or a SciPy sparse matrix (neither has type stubs here).
IdsLike = Any
#: numbers as a sequence, a numpy array or a pandas Series.
ArrayLike = Any
#: (ids, scores): ids int64 (or object arrays of str for string ids), scores float32.
IdsAndScores = Tuple[np.ndarray, np.ndarray]

_INT64_MAX = np.iinfo(np.int64).max
# Room for more agents than an engine has (9 kinds today): explain's shares buffer, grown only if a
# model has more.
_SHARES_GUESS = 32
# Calls repeated because a concurrent fit published a model with more agents than the buffer had room
# for, before giving up with BufferTooSmall.
_RETRIES = 4
_UINT32_MAX = 2**32 - 1
_UINT64_MAX = 2**64 - 1
# "item <id>" in explanation sentences (ExplanationSentence.swift), rewritten for string ids.
_ITEM_IN_SENTENCE = re.compile(r"\bitem (-?\d+)\b")


class Recommendations(NamedTuple):
    """What ``Engine.recommend(..., return_details=True)`` returns.

    - ``ids`` (n, k) int64, ``scores`` (n, k) float32: as without details.
    - ``shares`` (n, k, n_agents) float32: each agent's share of each item's blended score, agents
      in the order of ``agents``; a row sums to 1 (all 0 for an empty slot).
    - ``cold`` (n,) bool: True where the user is unknown to the fitted model and the items come
      from the agents that need no history (popularity, and content for a user with a profile text).
    - ``agents``: the names of the agents the shares refer to, from the model that served the call
      (the same call: a fit running meanwhile cannot make them disagree).

    For a scalar user id every array loses its leading axis (and ``cold`` is a bool).
    """

    ids: np.ndarray
    scores: np.ndarray
    shares: np.ndarray
    cold: Union[np.ndarray, bool]
    agents: Tuple[str, ...]


class Event(enum.IntEnum):
    """Feedback event types (chorus.h's ``chorus_event``) for :meth:`Engine.feedback`; the names
    (``"click"``, ``"add_to_cart"``...) are accepted too."""

    IMPRESSION = _capi.CHORUS_EVENT_IMPRESSION
    CLICK = _capi.CHORUS_EVENT_CLICK
    ADD_TO_CART = _capi.CHORUS_EVENT_ADD_TO_CART
    PURCHASE = _capi.CHORUS_EVENT_PURCHASE
    RATING = _capi.CHORUS_EVENT_RATING
    SKIP = _capi.CHORUS_EVENT_SKIP
    DISMISS = _capi.CHORUS_EVENT_DISMISS


#: The default reward of each event type (chorus_feedback_params_init).
DEFAULT_REWARDS = {"impression": 0.0, "click": 1.0, "add_to_cart": 2.0, "purchase": 4.0, "rating": 1.0,
                   "skip": -0.5, "dismiss": -1.0}


def _event_code(value, position: int) -> int:
    if isinstance(value, Event):
        return int(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        key = value.strip().lower().replace("-", "_").replace(" ", "_")
        if key.upper() not in Event.__members__:
            raise InvalidArgument(f"events[{position}] is {value!r}, not an event type "
                                  f"({', '.join(e.name.lower() for e in Event)})")
        return int(Event[key.upper()])
    try:
        code = operator.index(value)
    except TypeError:
        raise TypeError(f"events[{position}] must be an event name, an Event or an int, got {type(value).__name__}") from None
    if not -2**31 <= code < 2**31:
        raise InvalidArgument(f"events[{position}] is {code}, not an event type")
    return code  # the library refuses codes outside chorus_event


def _events_array(events, n: int) -> np.ndarray:
    """int32 event codes from names, Events or ints; one value stands for every event of the batch."""
    if isinstance(events, (str, bytes, Event)) or np.ndim(events) == 0:
        return np.full(n, _event_code(events if not isinstance(events, np.ndarray) else events.item(), 0), dtype=np.int32)
    if isinstance(events, (list, tuple)) and not all(isinstance(v, int) and not isinstance(v, bool) for v in events):
        return np.array([_event_code(v, i) for i, v in enumerate(events)], dtype=np.int32)  # mixed names, Events, ints
    arr = np.asarray(events)
    if arr.ndim > 1:
        raise InvalidArgument(f"events must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind in "iu":
        if arr.size and (int(arr.min()) < -2**31 or int(arr.max()) >= 2**31):
            raise InvalidArgument("events holds a value outside the int32 range")
        return np.ascontiguousarray(arr, dtype=np.int32)
    return np.array([_event_code(v, i) for i, v in enumerate(arr.tolist())], dtype=np.int32)


class Explanation(NamedTuple):
    """What ``Engine.explain`` returns."""

    item: Any                       # the caller's id type: int, or str for string ids
    score: float
    shares: Dict[str, float]        # agent name -> share of the score (they sum to 1)
    because_item: Optional[Any]     # the user's item this one is most similar to
    because_similarity: float
    matched_terms: List[str]        # query words the item's text contains
    sentence: str


# ---- conversions ---------------------------------------------------------------------------------


def _int64_array(values, name: str) -> np.ndarray:
    """A contiguous 1-D int64 array of integer ids (a scalar becomes one element)."""
    arr = np.asarray(values)
    if arr.ndim > 1:
        raise InvalidArgument(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        # np.asarray([]) is float64: an empty list is still a valid (empty) id list.
        if not (arr.size == 0 and arr.dtype.kind in "fO"):
            raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    elif arr.dtype.kind == "u" and arr.size and int(arr.max()) > _INT64_MAX:
        raise InvalidArgument(f"{name} holds a value above the int64 range")
    return np.ascontiguousarray(arr.reshape(-1), dtype=np.int64)


def _timestamps_array(values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind == "M":  # numpy datetime64: to Unix seconds
        arr = arr.astype("datetime64[s]").astype(np.int64)
    return _int64_array(arr, "timestamps")


def _float32_array(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim > 1:
        raise InvalidArgument(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf" and arr.size:
        raise TypeError(f"{name} must be numbers, got dtype {arr.dtype}")
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, which the library refuses
        return np.ascontiguousarray(arr.reshape(-1), dtype=np.float32)


def _name(values, default: str) -> str:
    """The name errors give a batch of ids: a DataFrame column's, else the argument's."""
    name = getattr(values, "name", None)
    return name if isinstance(name, str) and name.startswith("column ") else default


def _ptr(arr: Optional[np.ndarray], ctype):
    return None if arr is None else arr.ctypes.data_as(POINTER(ctype))


def _uint(value, name: str, maximum: int) -> int:
    if value is None:
        return 0
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if not 0 <= v <= maximum:
        raise InvalidArgument(f"{name} must be in 0...{maximum}, got {v}")
    return v


def _float(value, name: str) -> float:
    if value is None:
        return 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}") from None


#: Texts to encode above which set_item_texts / set_user_texts show a bar by default (as Encoder.encode).
_TEXTS_BAR_MIN = 1024


def _call_with_progress(progress: Progress, description: str, call) -> None:
    """Runs ``call(params)`` with a chorus_texts_params whose progress callback is `progress` (a
    tqdm bar, the caller's callable, or none; see chorus._progress). An exception the callable
    raises cancels the call and is re-raised once the library has returned; a True return is
    Cancelled."""
    params = _capi.chorus_texts_params()
    check(_capi.chorus_texts_params_init(byref(params)))
    fn, bar = _progress.callback(progress, description)
    raised: List[BaseException] = []
    callback = None
    if fn is not None:
        def trampoline(stage, fraction, _user_data):
            # Nothing may propagate into C: record the exception and cancel.
            if raised:
                return 1
            try:
                return 1 if fn(stage.decode("utf-8", "replace") if stage else "", float(fraction)) else 0
            except BaseException as e:  # noqa: B902 -- KeyboardInterrupt must cancel too
                raised.append(e)
                return 1

        callback = _capi.chorus_progress_fn(trampoline)
        params.progress = callback
    try:
        status = call(byref(params))
    finally:
        if bar is not None:
            bar.__exit__()
    del callback  # kept alive until here: the library calls it during the call only
    if raised:
        try:
            raise raised[0]
        finally:
            raised.clear()
    check(status)


def _k(k) -> int:
    try:
        k = operator.index(k)
    except TypeError:
        raise TypeError(f"k must be an int, got {type(k).__name__}") from None
    if k < 0:
        raise InvalidArgument(f"k must be at least 1, got {k}")
    return k


def _half_life(value) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    v = float(value)
    if math.isnan(v):
        raise InvalidArgument("popularity_half_life_seconds is NaN")
    if math.isinf(v) or v < 0:
        return -1  # an infinite (or negative) half-life is no decay
    # Past int64 (1e30) the C field would wrap: a half-life that long is no decay either way.
    return min(int(round(v)), 2**63 - 1)


# ---- the engine ----------------------------------------------------------------------------------


class Engine(HostIds, NativeObject):
    """A Chorus recommendation engine: interactions in, a fitted blend of agents, top-k out.

    ``Engine(popularity_half_life_seconds=None)`` creates an empty engine; ``None`` (or 0) lets
    each fit choose the popularity half-life on its validation hold-out (no decay, 7, 30, 91 or 365
    days; ``stats()["popularity_half_life_seconds"]`` tells which), a negative value or ``math.inf``
    means no time decay.
    A ``datetime.timedelta`` is accepted too.

    Texts (:meth:`set_item_texts`, :meth:`set_user_texts`) are encoded by the engine's sentence
    encoder: ``encoder_path`` names the all-MiniLM-L6-v2 weights directory (None searches, then
    falls back to the hashing encoder; :attr:`encoder` says which is in use); ``require_encoder``
    fails instead of falling back; ``hashing_encoder`` uses the fast hashing encoder always.

    Ids may be integers (the host's own int64 ids, passed through) or strings (mapped to int64 ids
    by the binding, kept in snapshots, and given back in results as str); one kind per id space
    (users, items) and engine, settled by the first ids added.

    Use it as a context manager, or call :meth:`close`; ``__del__`` frees it only as a fallback.
    The read methods (recommend, similar_items, agents, stats, save) may run from many threads at
    once; close() must not run while another call is in progress.
    """

    _handle: Any = None
    _free = staticmethod(_capi.chorus_engine_free)
    _pickle_hint = "; use engine.save(path) and Engine.load(path)"

    def __init__(self, popularity_half_life_seconds: Union[None, int, float, datetime.timedelta] = None, *,
                 encoder_path: Optional[PathLike] = None, require_encoder: bool = False,
                 hashing_encoder: bool = False) -> None:
        params = _capi.chorus_engine_params()
        check(_capi.chorus_engine_params_init(byref(params)))
        params.popularity_half_life_seconds = _half_life(popularity_half_life_seconds)
        params.flags = ((_capi.CHORUS_ENGINE_REQUIRE_ENCODER if require_encoder else 0)
                        | (_capi.CHORUS_ENGINE_HASHING_ENCODER if hashing_encoder else 0))
        path = None if encoder_path is None else _path(encoder_path)
        params.encoder_path = path
        handle = _capi.chorus_engine_p()
        check(_capi.chorus_engine_create(byref(params), byref(handle)))
        del path
        self._handle = handle

    # -- lifetime ------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: PathLike) -> "Engine":
        """Reads a snapshot written by :meth:`save` into a new engine.

        Raises:
            NotFound: `path` does not exist.
            ChorusIOError: `path` is a directory or unreadable.
            FormatError: not a snapshot, truncated or corrupted.
            UnsupportedVersion: written by a newer snapshot format.
        """
        raw = _path(path)
        handle = _capi.chorus_engine_p()
        check(_capi.chorus_engine_load(raw, byref(handle)))
        engine = cls._adopt(handle)
        try:
            engine._restore_id_maps()
        except BaseException:
            engine.close()
            raise
        return engine

    def __repr__(self) -> str:
        if self.closed:
            return "<chorus.Engine (closed)>"
        s = self.stats()
        return (f"<chorus.Engine fitted={s['fitted']} users={s['n_users']} items={s['n_items']} "
                f"interactions={s['n_interactions']}>")

    # -- data and training -------------------------------------------------------------------------

    def add_interactions(self, user_ids: IdsLike, item_ids: IdsLike = None, weights: ArrayLike = None,
                         timestamps: ArrayLike = None, *,
                         scenario: Optional[str] = None, user_col: str = "user_id", item_col: str = "item_id",
                         weight_col: Optional[str] = None, timestamp_col: Optional[str] = None) -> None:
        """Appends interactions ``(user_ids[i], item_ids[i])``; used by the next :meth:`fit`.

        Three forms:

        - ``add_interactions(user_ids, item_ids, weights=None, timestamps=None)``: sequences or numpy
          arrays of the same length;
        - ``add_interactions(df)``: a pandas DataFrame with columns `user_col` and `item_col`
          (``user_id``, ``item_id``), and optionally `weight_col` and `timestamp_col` (by default
          ``weight`` and ``timestamp`` when the frame has them);
        - ``add_interactions(user_items)``: a SciPy sparse users x items matrix (CSR, COO...), as
          implicit's ``fit(user_items)``: row = user id, column = item id, value = weight.

        Args:
            user_ids, item_ids: ids, integers (the host's own int64 ids) or strings (mapped by the
                binding; results give them back). One type per column, and the same type as the
                engine's earlier ids.
            weights: optional confidences (finite, > 0), e.g. plays or clicks; default 1 each.
            timestamps: optional Unix seconds (or numpy/pandas datetimes); default 0 each.
            scenario: the scenario they happened in (see :meth:`define_scenario`); None = default.
            user_col, item_col, weight_col, timestamp_col: the DataFrame's column names.

        The batch is validated whole: on error nothing is added, and no row is ever dropped.

        Raises:
            InvalidArgument: lengths differ, a weight is NaN, infinite or <= 0, a missing id (NaN,
                None), a DataFrame without a named column, a sparse matrix with a stored zero...
            TypeError: ids neither integers nor strings, ints and strings mixed in one column,
                or ids of another type than the engine's; a non-numeric sparse matrix.
        """
        handle = self._live()
        if _frames.is_dataframe(user_ids) or _frames.is_sparse(user_ids):
            if item_ids is not None or weights is not None or timestamps is not None:
                raise TypeError("pass a DataFrame or a sparse matrix alone: its columns are the ids, weights and timestamps")
            if _frames.is_sparse(user_ids):
                triples = _frames.sparse_interactions(user_ids, "user_items")
                user_ids, item_ids, weights = triples.users, triples.items, triples.weights
            else:
                df = user_ids
                user_ids = _frames.column(df, user_col, "user_col")
                item_ids = _frames.column(df, item_col, "item_col")
                w = _frames.column(df, weight_col or "weight", "weight_col", required=weight_col is not None)
                t = _frames.column(df, timestamp_col or "timestamp", "timestamp_col", required=timestamp_col is not None)
                weights = None if w is None else _frames.numbers(w, str(w.name))
                timestamps = None if t is None else _frames.timestamps(t, str(t.name))
                user_ids = user_ids.rename(f"column {user_col!r}")
                item_ids = item_ids.rename(f"column {item_col!r}")
        elif item_ids is None:
            raise TypeError("add_interactions takes (user_ids, item_ids, ...), a DataFrame or a sparse user x item matrix")
        user_map, item_map = self._ids("user"), self._ids("item")
        with user_map.lock, item_map.lock:
            users, commit_users = user_map.encode_new(user_ids, _name(user_ids, "user_ids"), self._space_in_use("user"))
            items, commit_items = item_map.encode_new(item_ids, _name(item_ids, "item_ids"), self._space_in_use("item"))
            n = users.size
            if items.size != n:
                raise InvalidArgument(f"user_ids and item_ids differ in length ({n} vs {items.size})")
            w = None
            if weights is not None:
                w = _float32_array(weights, "weights")
                if w.size != n:
                    raise InvalidArgument(f"weights has {w.size} elements for {n} interactions")
            t = None
            if timestamps is not None:
                t = _timestamps_array(timestamps)
                if t.size != n:
                    raise InvalidArgument(f"timestamps has {t.size} elements for {n} interactions")
            if scenario is None:
                check(_capi.chorus_engine_add_interactions(
                    handle, _ptr(users, c_int64), _ptr(items, c_int64), _ptr(w, c_float), _ptr(t, c_int64), n))
            else:
                check(_capi.chorus_engine_add_scenario_interactions(
                    handle, _text(scenario, "scenario"), _ptr(users, c_int64), _ptr(items, c_int64), _ptr(w, c_float),
                    _ptr(t, c_int64), n))
            commit_users()
            commit_items()

    def feedback(self, user_ids: IdsLike, item_ids: IdsLike, events: Any, values: ArrayLike = None, timestamps: ArrayLike = None,
                 scenario: Optional[str] = None, request_ids: ArrayLike = None, *,
                 rewards: Optional[Mapping[str, float]] = None) -> None:
        """Records live feedback, seen by the next :meth:`recommend` without a refit.

        ``engine.feedback(42, 7, "click")`` or, batch-first, ``engine.feedback(users, items,
        ["click", "purchase", ...], values=..., timestamps=...)``.

        Args:
            user_ids, item_ids: ids as :meth:`add_interactions` takes them, integers or strings (scalars
                for one event); unknown ones become new.
            events: event names (``"impression"``, ``"click"``, ``"add_to_cart"``, ``"purchase"``,
                ``"rating"``, ``"skip"``, ``"dismiss"``), :class:`Event` values or their ints; one
                value for the whole batch is repeated.
            values: optional, finite and >= 0 (default 1): the event's value (a rating, a quantity).
                An event's reward is its type's reward times its value.
            timestamps: optional Unix seconds or datetime64 (default: now); any order.
            scenario: the scenario of the events (see :meth:`define_scenario`).
            request_ids: optional int64 ids of the served slates the events answer (the
                ``request_ids`` of :meth:`recommend`; -1 = none): with a learning coordinator each
                event's reward is credited to that item of that slate (see :meth:`set_learning`).
            rewards: optional ``{event name: reward}`` overriding :data:`DEFAULT_REWARDS`.

        Positive rewards become interactions (weight = reward) for the next :meth:`fit` and update
        the online state at once: the item leaves the user's recommendations, joins their history,
        counts for popularity, and the user's ALS/BPR vectors are folded in (a new user is served
        personally from their first events). Negative rewards demote (skip) or drop (dismiss) the
        item for that user. Before the first fit events are accumulated. The batch is validated
        whole: on error nothing is recorded.

        Raises:
            InvalidArgument: lengths differ, an unknown event, a NaN, infinite or negative value,
                item id -1, a reward that is not finite.  NotFound: an undefined scenario.
        """
        handle = self._live()
        user_map, item_map = self._ids("user"), self._ids("item")
        with user_map.lock, item_map.lock:
            users, commit_users = user_map.encode_new(user_ids, _name(user_ids, "user_ids"), self._space_in_use("user"))
            items, commit_items = item_map.encode_new(item_ids, _name(item_ids, "item_ids"), self._space_in_use("item"))
            self._feedback(handle, users, items, events, values, timestamps, scenario, request_ids, rewards)
            commit_users()
            commit_items()

    def _feedback(self, handle: Any, users: np.ndarray, items: np.ndarray, events: Any, values: ArrayLike,
                  timestamps: ArrayLike, scenario: Optional[str], request_ids: ArrayLike,
                  rewards: Optional[Mapping[str, float]]) -> None:
        n = users.size
        if items.size != n:
            raise InvalidArgument(f"user_ids and item_ids differ in length ({n} vs {items.size})")
        if n == 0:
            raise InvalidArgument("no feedback: user_ids is empty")
        codes = _events_array(events, n)
        if codes.size != n:
            raise InvalidArgument(f"events has {codes.size} elements for {n} events")
        v = t = r = None
        if values is not None:
            v = _float32_array(values, "values")
            if v.size == 1 and n > 1:
                v = np.full(n, v[0], dtype=np.float32)
            if v.size != n:
                raise InvalidArgument(f"values has {v.size} elements for {n} events")
        if timestamps is not None:
            t = _timestamps_array(timestamps)
            if t.size != n:
                raise InvalidArgument(f"timestamps has {t.size} elements for {n} events")
        if request_ids is not None:
            r = _int64_array(request_ids, "request_ids")
            if r.size != n:
                raise InvalidArgument(f"request_ids has {r.size} elements for {n} events")
        params = None
        if rewards is not None:
            params = _capi.chorus_feedback_params()
            check(_capi.chorus_feedback_params_init_sized(byref(params), ctypes.sizeof(params)))
            for name, reward in dict(rewards).items():
                key = str(name).strip().lower().replace("-", "_")
                if key not in DEFAULT_REWARDS:
                    raise InvalidArgument(f"rewards names {name!r}, not an event type ({', '.join(DEFAULT_REWARDS)})")
                setattr(params, key, _float(reward, f"rewards[{name!r}]"))
        check(_capi.chorus_engine_feedback(
            handle, _ptr(users, c_int64), _ptr(items, c_int64), _ptr(codes, ctypes.c_int32), _ptr(v, c_float),
            _ptr(t, c_int64), n, None if scenario is None else _text(scenario, "scenario"), _ptr(r, c_int64),
            None if params is None else byref(params)))

    def define_scenario(self, name: str, description: str = "") -> None:
        """Defines (or redefines) a scenario: ``engine.define_scenario("home", "the home feed: a
        relaxed browse of what is new and what suits the user")``. The description is encoded now;
        the coordinator learns per scenario how much to trust each agent, borrowing from the
        other scenarios when a scenario has little data."""
        handle = self._live()
        check(_capi.chorus_engine_define_scenario(handle, _text(name, "name"), _text(description, "description")))

    def fit(self, factors: int = 64, regularization: float = 0.01, alpha: float = 1.0,
            iterations: int = 15, threads: int = 0, seed: int = 42,
            validation_fraction: float = 0.1, progress: Progress = None, *,
            agents: Optional[Sequence[str]] = None, bpr_epochs: int = 0,
            start_from: Optional["Engine"] = None) -> None:
        """Trains the agents on the interactions added so far and fits the blend weights.

        `start_from`: a fitted engine (a merged one, :meth:`merge`) whose ALS and BPR factors this
        fit starts from, by user and item id, instead of a random start: a round of sharded
        training. The new model inherits its privacy ledger (:attr:`privacy_spent`). Engines with
        string ids cannot be used here (their codes differ between engines).

        A 0 (or None) for any parameter means the library's default (so ``regularization=0``
        is 0.01 and ``seed=0`` is 42); ``threads=0`` uses every CPU.

        `agents` names the agents to train (``["als", "session"]``; :attr:`agents` after a fit
        lists them with their weights); None trains every agent the data allows. "popularity" is
        always trained: it serves users the model does not know. `bpr_epochs=0` lets the
        validation hold-out choose BPR's epochs (early stopping).

        `progress`: None shows a tqdm bar when tqdm is installed and this runs in a terminal or a
        notebook (``chorus.set_progress(False)`` turns that off everywhere), False never, True
        always. A callable ``progress(stage, fraction)`` is called instead, on this thread, with a
        stage name ("als", ...) and a fraction in [0, 1]; returning True cancels the fit, which
        then raises :class:`Cancelled` and leaves the previous model in place. An exception raised
        by `progress` cancels the fit too and is re-raised here once the library has returned.

        Raises:
            InvalidArgument: a bad parameter, or too little data (at least 2 users and 2 items);
                a `start_from` with another ALS factor count or string ids.
            NotFitted: `start_from` has no model.
            Cancelled: `progress` returned True.
        """
        handle = self._live()
        start_handle = None
        if start_from is not None:
            if not isinstance(start_from, Engine):
                raise TypeError(f"start_from must be a chorus.Engine, got {type(start_from).__name__}")
            start_handle = start_from._live()
            _refuse_string_ids([self, start_from], "fit(start_from=...)")
        params = _capi.chorus_fit_params()
        check(_capi.chorus_fit_params_init_sized(byref(params), ctypes.sizeof(params)))
        params.factors = _uint(factors, "factors", _UINT32_MAX)
        params.regularization = _float(regularization, "regularization")
        params.alpha = _float(alpha, "alpha")
        params.iterations = _uint(iterations, "iterations", _UINT32_MAX)
        params.threads = _uint(threads, "threads", _UINT32_MAX)
        params.seed = _uint(seed, "seed", _UINT64_MAX)
        params.validation_fraction = _float(validation_fraction, "validation_fraction")
        params.bpr_epochs = _uint(bpr_epochs, "bpr_epochs", _UINT32_MAX)
        agent_list = None
        if agents is not None:
            if isinstance(agents, (str, bytes)):
                raise TypeError("agents must be a sequence of names, e.g. ['als', 'session']")
            names = [_text(a, "agents[i]") for a in agents]
            if any(b"," in n for n in names):
                raise InvalidArgument("an agent name cannot contain ','")
            if not names:
                raise InvalidArgument("agents is empty: name at least one agent (popularity is always trained)")
            agent_list = b",".join(names)
            params.agents = agent_list

        raised: List[BaseException] = []
        callback = None
        progress, bar = _progress.callback(progress, "chorus fit")
        if progress is not None:
            def trampoline(stage, fraction, _user_data):
                # Nothing may propagate into C: record the exception and cancel.
                if raised:
                    return 1
                try:
                    name = stage.decode("utf-8", "replace") if stage else ""
                    return 1 if progress(name, float(fraction)) else 0
                except BaseException as e:  # noqa: B902 -- KeyboardInterrupt must cancel too
                    raised.append(e)
                    return 1

            callback = _capi.chorus_progress_fn(trampoline)
            params.progress = callback
        try:
            if start_handle is None:
                status = _capi.chorus_engine_fit(handle, byref(params))
            else:
                status = _capi.chorus_engine_fit_from(handle, byref(params), start_handle)
        finally:
            if bar is not None:
                bar.__exit__()
        del callback  # kept alive until here: the library calls it during chorus_engine_fit only
        if raised:
            try:
                raise raised[0]
            finally:
                raised.clear()
        check(status)

    # -- learning coordinator ------------------------------------------------------------------

    def set_learning(self, mode: str = "off", *, exploration: float = 0.0, learning_rate: float = 0.0,
                     prior_strength: float = 0.0, log_capacity: int = 0, seed: int = 42,
                     clip_norm: float = 0.0, noise_multiplier: float = 0.0, delta: float = 0.0,
                     release_slates: int = 0) -> None:
        """Makes the coordinator keep learning from feedback on what it served.

        Serve with ``recommend(..., request_ids=...)`` and send feedback with the same
        ``request_ids``: each slate's items are rewarded by the events that name it; a slate closes
        when its user gets another logged slate (or :meth:`slate_log` with ``close_open=True``), and
        the learner then learns from every item served (0 for those without feedback).

        Args:
            mode: ``"off"`` (the fitted coordinator), ``"linucb"``, ``"thompson"`` (linear bandits
                over the candidates' features, per context segment) or ``"policy"`` (a softmax policy
                trained by REINFORCE with the top-K off-policy correction).
            exploration: LinUCB's alpha, Thompson's scale, the policy's temperature (0 = 0.03 for the
                bandits, 0.1 for the policy).
            learning_rate: the policy's step size (0 = 0.3).
            prior_strength: the bandits' pull toward the fitted coordinator (0 = 10).
            log_capacity: slate-log rows kept (0 = 100,000).
            seed: seeds the sampling together with each request id, and the privacy noise.
            clip_norm: > 0 makes learning from feedback differentially private: closed slates are
                learned in releases of `release_slates` (0 = 1,000), each user's part of a release
                clipped to this L2 norm C, with N(0, (noise_multiplier·C)²) added to every released
                coordinate; :attr:`learning_privacy_spent` reports the ε at `delta` (0 = 1e-5).
                While private, feedback reaches only its own user's overlay (their consumed items,
                history and folded-in vector), not the statistics every user's requests read
                (popularity, session transitions, new items): those learn from it at the next fit.
            noise_multiplier: σ (needs `clip_norm`).

        Raises:
            InvalidArgument: an unknown mode, a knob that is negative, not finite or too large, noise
                without a clip.
        """
        handle = self._live()
        modes = {"off": _capi.CHORUS_LEARNING_OFF, "linucb": _capi.CHORUS_LEARNING_LINUCB,
                 "thompson": _capi.CHORUS_LEARNING_THOMPSON, "policy": _capi.CHORUS_LEARNING_POLICY}
        key = str(mode).strip().lower()
        if key not in modes:
            raise InvalidArgument(f"mode is {mode!r}, not one of {', '.join(modes)}")
        params = _capi.chorus_learning_params()
        check(_capi.chorus_learning_params_init_sized(byref(params), ctypes.sizeof(params)))
        params.mode = modes[key]
        params.exploration = _float(exploration, "exploration")
        params.learning_rate = _float(learning_rate, "learning_rate")
        params.prior_strength = _float(prior_strength, "prior_strength")
        params.log_capacity = _uint(log_capacity, "log_capacity", 2**64 - 1)
        params.seed = _uint(seed, "seed", 2**64 - 1)
        params.clip_norm = _float(clip_norm, "clip_norm")
        params.noise_multiplier = _float(noise_multiplier, "noise_multiplier")
        params.delta = _float(delta, "delta")
        params.release_slates = _uint(release_slates, "release_slates", 2**64 - 1)
        check(_capi.chorus_engine_set_learning(handle, byref(params)))

    @property
    def learning_privacy_spent(self) -> "PrivacySpent":
        """The privacy spent by learning from feedback, as ``PrivacySpent(epsilon, delta, rounds)``
        (rounds = the learner's private releases): epsilon 0 when nothing was learned, infinite once
        a slate was learned from without privacy (see :meth:`set_learning`)."""
        handle = self._live()
        eps, delta, releases = ctypes.c_double(), ctypes.c_double(), ctypes.c_uint64()
        check(_capi.chorus_engine_learning_privacy_spent(handle, byref(eps), byref(delta), byref(releases)))
        return PrivacySpent(float(eps.value), float(delta.value), int(releases.value))

    def slate_log(self, *, close_open: bool = False, drain: bool = False) -> Dict[str, np.ndarray]:
        """The learning coordinator's log of closed slates, one row per served item, oldest first.

        Args:
            close_open: close every open slate first (its rewards so far become final).
            drain: remove the rows returned from the log.

        Returns:
            ``{"request_id", "user_id", "item_id", "slot", "propensity", "reward"}``: equal-length
            arrays (ids in the caller's own type); propensity = P(item at that slot) under the
            policy that served it, for off-policy evaluation.
        """
        handle = self._live()
        flags = (_capi.CHORUS_SLATE_LOG_CLOSE_OPEN if close_open else 0) | (_capi.CHORUS_SLATE_LOG_DRAIN if drain else 0)
        count = c_size_t()
        check(_capi.chorus_engine_slate_log(handle, flags & _capi.CHORUS_SLATE_LOG_CLOSE_OPEN, None, 0, byref(count)))
        # Room for rows closed meanwhile; any beyond it stay in the log (and are not drained).
        rows = (_capi.chorus_slate_row * (count.value + 64))()
        check(_capi.chorus_engine_slate_log(handle, flags & _capi.CHORUS_SLATE_LOG_DRAIN, rows, len(rows), byref(count)))
        table = np.ctypeslib.as_array(rows)[: min(count.value, len(rows))]

        def column(name: str, dtype) -> np.ndarray:
            return np.array(table[name], dtype=dtype)
        return {
            "request_id": column("request_id", np.int64),
            "user_id": self._ids("user").decode(column("user_id", np.int64)),
            "item_id": self._ids("item").decode(column("item_id", np.int64)),
            "slot": column("slot", np.int32),
            "propensity": column("propensity", np.float32),
            "reward": column("reward", np.float32),
        }

    # -- queries -------------------------------------------------------------------------------

    def _query_params(self, include_seen: bool, items, deny_items, agent, query=None, history=None,
                      diversity: float = 0.0, scenario: Optional[str] = None):
        params = _capi.chorus_recommend_params()
        check(_capi.chorus_recommend_params_init_sized(byref(params), ctypes.sizeof(params)))
        keep = []  # arrays the params point into, alive for the call
        if include_seen:
            params.flags |= _capi.CHORUS_RECOMMEND_INCLUDE_SEEN
        if items is not None:
            allow = self._ids("item").encode_known(items, "items")
            keep.append(allow)
            params.allow_items = _ptr(allow, c_int64)
            params.n_allow = allow.size
        if deny_items is not None:
            deny = self._ids("item").encode_known(deny_items, "deny_items", skip_unknown=True)
            keep.append(deny)
            params.deny_items = _ptr(deny, c_int64)
            params.n_deny = deny.size
        if agent is not None:
            name = _text(agent, "agent")
            keep.append(name)
            params.agent = name
        if query is not None:
            text = _text(query, "query")
            keep.append(text)
            params.query = text
        if history is not None:
            hist = self._ids("item").encode_known(history, "history", skip_unknown=True)
            keep.append(hist)
            params.history_items = _ptr(hist, c_int64)
            params.n_history = hist.size
        params.diversity = _float(diversity, "diversity")
        if scenario is not None:
            name = _text(scenario, "scenario")
            keep.append(name)
            params.scenario = name
        return params, keep

    @overload
    def recommend(self, user_ids: IdsLike, k: int = 10, *, include_seen: bool = False, items: IdsLike = None,
                  deny_items: IdsLike = None, agent: Optional[str] = None, query: Optional[str] = None,
                  history: IdsLike = None, diversity: float = 0.0, scenario: Optional[str] = None,
                  request_ids: ArrayLike = None,                   return_details: Literal[False] = False) -> IdsAndScores: ...

    @overload
    def recommend(self, user_ids: IdsLike, k: int = 10, *, include_seen: bool = False, items: IdsLike = None,
                  deny_items: IdsLike = None, agent: Optional[str] = None, query: Optional[str] = None,
                  history: IdsLike = None, diversity: float = 0.0, scenario: Optional[str] = None,
                  request_ids: ArrayLike = None,                   return_details: Literal[True]) -> Recommendations: ...

    def recommend(self, user_ids: IdsLike, k: int = 10, *, include_seen: bool = False, items: IdsLike = None,
                  deny_items: IdsLike = None, agent: Optional[str] = None, query: Optional[str] = None,
                  history: IdsLike = None, diversity: float = 0.0, scenario: Optional[str] = None,
                  request_ids: ArrayLike = None,                   return_details: bool = False) -> Union[IdsAndScores, Recommendations]:
        """The top `k` items for each user, best first.

        Args:
            user_ids: one user id (then the outputs are 1-D) or a sequence of them.
            k: items per user, 1 ... number of items.
            include_seen: also recommend items the user already interacted with.
            items: optional allow-list: recommend only among these items.
            deny_items: optional deny-list: never recommend these items.
            agent: one agent's name alone ("als", "popularity", "content", ...); None = the
                coordinator's blend.
            query: a natural-language request ("a light-hearted animated film for a family
                evening"); needs item texts. Works for known and unknown users.
            history: item ids the user interacted with that the model may not know (an
                anonymous visitor, the current session), most recent last.
            diversity: 0 (by score) ... 1 (as diverse as possible), maximal marginal relevance
                (the order is then MMR's: scores need not decrease along a row).
            scenario: the request's scenario (see :meth:`define_scenario`); None = default.
            request_ids: optional, one int64 per user (any but -1): the ids under which the slates
                are logged for the learning coordinator (see :meth:`set_learning`); feedback naming
                an id rewards that slate. Ignored while learning is off.
            return_details: return a :class:`Recommendations` with per-agent shares and the
                cold-start flags instead of ``(ids, scores)``.

        Returns:
            ``(ids, scores)``: int64 and float32 arrays of shape (n_users, k). Slots that cannot
            be filled hold -1 (CHORUS_NO_ITEM) and -inf. Users unknown to the model get the
            agents that need no history: popularity, and content when the user has a profile
            text (see ``Recommendations.cold``).

        Raises:
            NotFitted: no model yet.  InvalidArgument: bad k.  NotFound: unknown agent name.
        """
        handle = self._live()
        scalar = np.ndim(user_ids) == 0
        users = self._ids("user").encode_known(user_ids, "user_ids")
        k = _k(k)
        params, keep = self._query_params(include_seen, items, deny_items, agent, query, history, diversity, scenario)
        n = users.size
        if request_ids is not None:
            r = _int64_array(request_ids, "request_ids")
            if r.size != n:
                raise InvalidArgument(f"request_ids has {r.size} elements for {n} users")
            keep.append(r)
            params.request_ids = _ptr(r, c_int64)
        ids = np.empty((n, k), dtype=np.int64)
        scores = np.empty((n, k), dtype=np.float32)
        if not return_details:
            check(_capi.chorus_engine_recommend(
                handle, _ptr(users, c_int64), n, k, byref(params),
                _ptr(ids, c_int64), _ptr(scores, c_float), ids.size, None, 0, None))
            del keep
            ids = self._ids("item").decode(ids)
            return (ids[0], scores[0]) if scalar else (ids, scores)
        shares, flags, agents = self._recommend_details(handle, users, k, params, ids, scores)
        del keep
        ids = self._ids("item").decode(ids)
        cold = (flags & _capi.CHORUS_USER_COLD_FALLBACK) != 0
        if scalar:
            return Recommendations(ids[0], scores[0], shares[0], bool(cold[0]), agents)
        return Recommendations(ids, scores, shares, cold, agents)

    @classmethod
    def _recommend_details(cls, handle, users: np.ndarray, k: int, params, ids: np.ndarray, scores: np.ndarray):
        """chorus_engine_recommend_details: (shares (n, k, n_agents), flags (n,), agent names), the
        names and the shares from the one model that served the call. The shares buffer is sized
        from the agent count now; the call is repeated only if the model that serves has more."""
        n = users.size
        flags = np.zeros(n, dtype=np.uint32)
        names = POINTER(c_char_p)()
        count = c_size_t()
        room = max(cls._agent_count(handle), 1)
        for _attempt in range(_RETRIES):
            buffer = np.zeros(n * k * room, dtype=np.float32)
            status = _capi.chorus_engine_recommend_details(
                handle, _ptr(users, c_int64), n, k, byref(params),
                _ptr(ids, c_int64), _ptr(scores, c_float), ids.size,
                _ptr(buffer, c_float), buffer.size, _ptr(flags, c_uint32), byref(names), byref(count))
            if status != _capi.CHORUS_ERR_BUFFER_TOO_SMALL or count.value <= room:
                break
            room = count.value
        check(status)
        m = count.value
        agents = tuple(names[i].decode("utf-8", "replace") for i in range(m))
        return buffer[: n * k * m].reshape(n, k, m), flags, agents

    def explain(self, user_id: Union[int, str], item_id: Union[int, str], *, query: Optional[str] = None,
                history: IdsLike = None, scenario: Optional[str] = None) -> "Explanation":
        """Why `item_id` is recommended to `user_id` (for this query and history, if given).

        Returns an :class:`Explanation`: the item's score, each agent's share of it, the item of
        the user's history it is most similar to, the query words its text matches, and a sentence.

        Raises:
            NotFound: an item unknown to the model.  NotFitted.
        """
        handle = self._live()
        params, keep = self._query_params(False, None, None, None, query, history, 0.0, scenario)
        user = self._ids("user").encode_known(user_id, "user_id")
        item = self._ids("item").encode_known(item_id, "item_id")
        if user.size != 1 or item.size != 1:
            raise InvalidArgument("explain takes one user id and one item id")
        out = _capi.chorus_explanation()
        check(_capi.chorus_explanation_init_sized(byref(out), ctypes.sizeof(out)))
        # One call: the struct carries the sentence and the names of the agents that explained. The
        # shares buffer has room for more agents than an engine has; only if the model that
        # explained has more still (out.agent_count) is the call repeated.
        shares = np.zeros(_SHARES_GUESS, dtype=np.float32)
        for _attempt in range(_RETRIES):
            status = _capi.chorus_engine_explain(handle, int(user[0]), int(item[0]), byref(params), byref(out),
                                                 _ptr(shares, c_float), shares.size, None, 0, None)
            if status != _capi.CHORUS_ERR_BUFFER_TOO_SMALL or out.agent_count <= shares.size:
                break
            shares = np.zeros(out.agent_count, dtype=np.float32)
        check(status)
        # The sentence is the library's per-thread copy, valid until this thread's next explain: copy it now.
        sentence = ctypes.string_at(out.sentence, out.sentence_length).decode("utf-8", "replace")
        del keep
        names = [out.agent_names[i].decode("utf-8", "replace") for i in range(out.agent_count)]
        terms = out.matched_terms.decode("utf-8", "replace").split()
        items = self._ids("item")
        because = None if out.because_item == _capi.CHORUS_NO_ITEM else items.decode_one(int(out.because_item))
        if items.kind == "str":  # the library's sentence names items by the int64 codes it was given
            sentence = _ITEM_IN_SENTENCE.sub(lambda m: f"item {items.decode_one(int(m.group(1)))!r}"
                                             if items.decode_one(int(m.group(1))) is not None else m.group(0), sentence)
        return Explanation(items.decode_one(int(item[0])), float(out.score), dict(zip(names, (float(x) for x in shares))), because,
                           float(out.because_similarity), terms, sentence)

    def similar_items(self, item_ids: IdsLike, k: int = 10, *, items: IdsLike = None,
                      deny_items: IdsLike = None) -> IdsAndScores:
        """The `k` items most similar to each item (cosine of the ALS item factors), itself
        excluded. Shapes as in :meth:`recommend`: (n_items, k), or 1-D for a scalar id.

        Raises:
            NotFound: an item id unknown to the model.  NotFitted, InvalidArgument.
        """
        handle = self._live()
        scalar = np.ndim(item_ids) == 0
        query = self._ids("item").encode_known(item_ids, "item_ids")
        k = _k(k)
        params, keep = self._query_params(False, items, deny_items, None)
        n = query.size
        ids = np.empty((n, k), dtype=np.int64)
        scores = np.empty((n, k), dtype=np.float32)
        check(_capi.chorus_engine_similar_items(
            handle, _ptr(query, c_int64), n, k, byref(params),
            _ptr(ids, c_int64), _ptr(scores, c_float), ids.size))
        del keep
        ids = self._ids("item").decode(ids)
        return (ids[0], scores[0]) if scalar else (ids, scores)

    def similar_users(self, user_ids: IdsLike, k: int = 10, *, users: IdsLike = None,
                      deny_users: IdsLike = None) -> IdsAndScores:
        """The `k` users most similar to each user: the cosine of their vectors in the model's first
        factor agent (als, else bpr), the user itself excluded, best first. Shapes as in
        :meth:`recommend`: (n_users, k), or 1-D for a scalar id. Slots past the candidates hold
        score ``-inf`` (and id ``NO_ITEM``, or None for string ids): test the score, as -1 may be
        one of your user ids.

        Args:
            user_ids: users the fitted model knows.
            k: 1 ... the model's user count.
            users: only these users are candidates (ids the model does not know are ignored; a
                string id never added raises NotFound).
            deny_users: never these users (unknown ids are ignored).

        Raises:
            NotFound: a user the model does not know.  InvalidArgument: k out of range, or a model
            fitted without als or bpr.  NotFitted.
        """
        handle = self._live()
        scalar = np.ndim(user_ids) == 0
        id_map = self._ids("user")
        query = id_map.encode_known(user_ids, "user_ids")
        k = _k(k)
        allow = None if users is None else id_map.encode_known(users, "users")
        deny = None if deny_users is None else id_map.encode_known(deny_users, "deny_users", skip_unknown=True)
        n = query.size
        ids = np.empty((n, k), dtype=np.int64)
        scores = np.empty((n, k), dtype=np.float32)
        check(_capi.chorus_engine_similar_users(
            handle, _ptr(query, c_int64), n, k, _ptr(allow, c_int64), 0 if allow is None else allow.size,
            _ptr(deny, c_int64), 0 if deny is None else deny.size, _ptr(ids, c_int64), _ptr(scores, c_float), ids.size))
        ids = id_map.decode(ids)
        return (ids[0], scores[0]) if scalar else (ids, scores)

    # -- texts -------------------------------------------------------------------------------------

    def _set_texts(self, what: str, ids_or_mapping, texts, id_col: Optional[str], text_col: str,
                   progress: Progress = None) -> None:
        """The body of set_item_texts / set_user_texts: ids and texts from a mapping, two
        sequences or a DataFrame; the ids through the engine's id map."""
        handle = self._live()
        id_name = f"{what}_ids"
        if _frames.is_dataframe(ids_or_mapping):
            if texts is not None:
                raise TypeError(f"pass a DataFrame alone: set_{what}_texts(df, id_col=..., text_col=...)")
            df = ids_or_mapping
            column = id_col or f"{what}_id"
            ids_or_mapping = _frames.column(df, column, "id_col").rename(f"column {column!r}")
            texts = _frames.texts(_frames.column(df, text_col, "text_col"), text_col)
        elif texts is None:
            if not isinstance(ids_or_mapping, Mapping):
                raise TypeError(f"set_{what}_texts takes a mapping {{id: text}}, (ids, texts) or a DataFrame")
            ids_or_mapping, texts = list(ids_or_mapping.keys()), list(ids_or_mapping.values())
        if isinstance(texts, (str, bytes)):
            raise TypeError("texts must be a sequence of str; wrap a single text in a list")
        texts = list(texts)
        encoded = []
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, not str")
            if "\0" in t:
                raise ValueError(f"texts[{i}] contains a NUL character")
            encoded.append(t.encode("utf-8", "surrogatepass"))
        array = (c_char_p * len(encoded))(*encoded)
        id_map = self._ids(what)
        with id_map.lock:
            ids, commit = id_map.encode_new(ids_or_mapping, _name(ids_or_mapping, id_name), self._space_in_use(what))
            if ids.size != len(texts):
                raise InvalidArgument(f"{ids.size} ids but {len(texts)} texts")
            if ids.size:
                fn = _capi.chorus_engine_set_item_texts_ex if what == "item" else _capi.chorus_engine_set_user_texts_ex
                to_encode = sum(1 for t in encoded if t)
                if progress is None and to_encode <= _TEXTS_BAR_MIN:
                    progress = False  # a bar for a short call is noise
                _call_with_progress(progress, f"chorus {what} texts",
                                    lambda params: fn(handle, _ptr(ids, c_int64), array, ids.size, params))
                commit()  # only once the library kept the batch: a cancelled call adds no string id

    def set_item_texts(self, item_ids_or_mapping: Union[Mapping[Any, str], IdsLike],
                       texts: Optional[Sequence[str]] = None, *, id_col: Optional[str] = None,
                       text_col: str = "text", progress: Progress = None) -> None:
        """Gives items a text (title, description, tags as one string); ``""`` removes it.

        ``engine.set_item_texts({10: "Toy Story (1995) | Animation Children Comedy"})``,
        ``engine.set_item_texts(ids, texts)`` or ``engine.set_item_texts(df, id_col="item_id",
        text_col="text")`` (a pandas DataFrame; `id_col` defaults to ``item_id``). Texts are
        encoded now (this takes as long as the encoder needs) and kept with their vectors, in
        snapshots too. The content agent then ranks items by text similarity to each user's
        profile; an item with a text joins the catalogue at the next :meth:`fit` even before anyone
        interacts with it. Ids as in :meth:`add_interactions` (integers or strings).

        `progress`: None shows a tqdm bar for more than 1024 texts to encode when tqdm is
        installed and this runs in a terminal or notebook (``chorus.set_progress(False)`` turns that
        off), False never, True always; a callable ``progress("encoding", fraction)`` is called
        instead (after each chunk of 512 texts; returning True cancels). A cancelled call, or one
        whose callable raised, changes nothing: no text, vector or new id is kept.

        Raises:
            Cancelled: `progress` returned True (the exception it raised is re-raised instead).
            InvalidArgument: lengths differ, an id twice, a missing id, a DataFrame without the
                named column, or texts encoded by another encoder.
            TypeError: a text that is not a str (a missing text in a DataFrame names its row).
        """
        self._set_texts("item", item_ids_or_mapping, texts, id_col, text_col, progress)

    def set_user_texts(self, user_ids_or_mapping: Union[Mapping[Any, str], IdsLike],
                       texts: Optional[Sequence[str]] = None, *, id_col: Optional[str] = None,
                       text_col: str = "text", progress: Progress = None) -> None:
        """Gives users a profile text (``""`` removes it); used at once, no refit needed, and
        enough to recommend to a user with no interactions. Arguments (`progress` too) as
        :meth:`set_item_texts` (`id_col` defaults to ``user_id``)."""
        self._set_texts("user", user_ids_or_mapping, texts, id_col, text_col, progress)

    @property
    def knowledge_graph(self) -> "KnowledgeGraph":
        """The engine's own knowledge graph, as a :class:`chorus.KnowledgeGraph` (shared, not a
        copy): the item facts as triples ``("item:<id>", relation, entity)`` plus any triple added
        through it, such as facts about the entities themselves. Once you train it
        (``engine.knowledge_graph.train(model="distmult", ...)``), the next :meth:`fit` gives the
        items that are entities of its model the "kge" agent (embedding similarity). It is saved
        with the engine, model included. Close the returned object when done (the graph lives on
        in the engine).
        """
        from .knowledge import KnowledgeGraph
        handle = _capi.chorus_kg_p()
        check(_capi.chorus_engine_knowledge_graph(self._live(), byref(handle)))
        return KnowledgeGraph._adopt(handle)

    def add_item_facts(self, item_ids: IdsLike, relations: Optional[Sequence[str]] = None,
                       entities: Optional[Sequence[str]] = None, *, item_col: str = "item_id",
                       relation_col: str = "relation", entity_col: str = "entity") -> int:
        """Adds facts about items (the item knowledge graph): ``(item_ids[i], relations[i],
        entities[i])`` such as ``(1, "director", "John Lasseter")``, or the rows of a pandas
        DataFrame with columns `item_col`, `relation_col` and `entity_col`. The "kg" agent
        recommends through shared entities and names the path in explanations. Repeats are skipped.

        Returns:
            How many facts were new.
        Raises:
            InvalidArgument: lengths differ, an empty relation or entity, a missing id, a DataFrame
                without a named column (nothing is added).
        """
        handle = self._live()
        if _frames.is_dataframe(item_ids):
            if relations is not None or entities is not None:
                raise TypeError("pass a DataFrame alone: add_item_facts(df, item_col=..., relation_col=..., entity_col=...)")
            df = item_ids
            item_ids = _frames.column(df, item_col, "item_col").rename(f"column {item_col!r}")
            relations = _frames.texts(_frames.column(df, relation_col, "relation_col"), relation_col)
            entities = _frames.texts(_frames.column(df, entity_col, "entity_col"), entity_col)
        elif relations is None or entities is None:
            raise TypeError("add_item_facts takes (item_ids, relations, entities) or a DataFrame")
        if isinstance(relations, (str, bytes)) or isinstance(entities, (str, bytes)):
            raise TypeError("relations and entities must be sequences of str")
        rel = [_text(r, "relations[i]") for r in relations]
        ent = [_text(e, "entities[i]") for e in entities]
        id_map = self._ids("item")
        with id_map.lock:
            ids, commit = id_map.encode_new(item_ids, _name(item_ids, "item_ids"), self._space_in_use("item"))
            if not (ids.size == len(rel) == len(ent)):
                raise InvalidArgument(f"{ids.size} item ids, {len(rel)} relations and {len(ent)} entities differ in length")
            if ids.size == 0:
                return 0
            added = c_size_t()
            check(_capi.chorus_engine_add_item_facts(handle, _ptr(ids, c_int64), (c_char_p * len(rel))(*rel),
                                                     (c_char_p * len(ent))(*ent), ids.size, byref(added)))
            commit()
        return int(added.value)

    @property
    def encoder(self) -> str:
        """Which sentence encoder the engine uses and why (loads it if needed)."""
        handle = self._live()
        name = c_char_p()
        check(_capi.chorus_engine_encoder_name(handle, byref(name)))
        return (name.value or b"").decode("utf-8", "replace")

    # -- introspection ---------------------------------------------------------------------------

    @staticmethod
    def _agent_count(handle) -> int:
        count = c_size_t()
        check(_capi.chorus_engine_agent_count(handle, byref(count)))
        return int(count.value)

    @property
    def agents(self) -> List[Tuple[str, float]]:
        """``[(name, weight), ...]``: the agents in blend order (popularity first) with their
        weights in the coordinator's blend (0 before fit)."""
        handle = self._live()
        out = []
        for i in range(self._agent_count(handle)):
            name = c_char_p()
            weight = c_float()
            check(_capi.chorus_engine_agent_info(handle, i, byref(name), byref(weight)))
            out.append(((name.value or b"").decode("utf-8", "replace"), float(weight.value)))
        return out

    def stats(self) -> Dict[str, Union[bool, int]]:
        """The fields of chorus_engine_stats as a dict (``fitted`` as a bool)."""
        handle = self._live()
        st = _capi.chorus_engine_stats()
        check(_capi.chorus_engine_stats_init(byref(st)))
        check(_capi.chorus_engine_get_stats(handle, byref(st)))
        out: Dict[str, Union[bool, int]] = {}
        for name, _ctype in _capi.chorus_engine_stats._fields_:
            if name == "struct_size":
                continue
            out[name] = int(getattr(st, name))
        out["fitted"] = bool(out["fitted"])
        return out

    @property
    def fitted(self) -> bool:
        return bool(self.stats()["fitted"])

    # -- sharded training --------------------------------------------------------------------------

    @classmethod
    def merge(cls, shards: Sequence["Engine"], *, noise_multiplier: float = 0.0, clip_norm: float = 0.0,
              delta: float = 1e-5, seed: int = 42, threads: int = 0) -> "Engine":
        """Merges engines fitted on disjoint sets of users into a new engine (federated averaging):
        the union of their users and items; ALS and BPR item factors averaged, each shard weighted
        by how many of its users interacted with the item; ALS users solved again against the
        merged items; popularity, itemknn and session rebuilt from the union of the shards'
        interactions; the blend weights averaged by each shard's validation users (the shards'
        ranking networks are dropped). One shard gives a copy. The shards are not changed.

        Differential privacy of the merged item factors: `clip_norm` C > 0 clips each user's
        contribution (their items' factor rows) to L2 norm C, and `noise_multiplier` σ > 0 adds
        N(0, σ²C²) to every coordinate of the sums; :attr:`privacy_spent` reports the ε at `delta`
        composed over the rounds (an RDP accountant). The guarantee covers the item-factor sums,
        not the per-item counts, the rebuilt tables, the users' own vectors or the interactions
        the merged engine holds (``chorus.h``, "Sharded training").

        Raises:
            InvalidArgument: no shards, a shard given twice, shards with different agents or
                factor counts, a user id in two shards (named), texts/facts/scenarios (not
                carried), string ids (their codes differ between engines), bad privacy values.
            NotFitted: a shard without a model.
        """
        shards = list(shards)
        for i, e in enumerate(shards):
            if not isinstance(e, Engine):
                raise TypeError(f"shards[{i}] must be a chorus.Engine, got {type(e).__name__}")
        handles = [e._live() for e in shards]
        _refuse_string_ids(shards, "merge")
        params = _capi.chorus_merge_params()
        check(_capi.chorus_merge_params_init_sized(byref(params), ctypes.sizeof(params)))
        params.noise_multiplier = _float(noise_multiplier, "noise_multiplier")
        params.clip_norm = _float(clip_norm, "clip_norm")
        params.delta = _float(delta, "delta")
        params.seed = _uint(seed, "seed", _UINT64_MAX)
        params.threads = _uint(threads, "threads", _UINT32_MAX)
        array = (_capi.chorus_engine_p * max(1, len(handles)))(*handles)
        out = _capi.chorus_engine_p()
        check(_capi.chorus_engine_merge(array, len(handles), byref(params), byref(out)))
        merged = cls._adopt(out)
        try:
            merged._restore_id_maps()
            for what in ("user", "item"):
                if merged._ids(what).kind is None and any(e._ids(what).kind == "int" for e in shards):
                    merged._ids(what).kind = "int"
        except BaseException:
            merged.close()
            raise
        return merged

    @property
    def privacy_spent(self) -> Optional["PrivacySpent"]:
        """The privacy spent by the private merges this engine's model descends from, as
        ``PrivacySpent(epsilon, delta, rounds)`` (epsilon infinite when a merge added no noise);
        None when no private merge made the model.

        Raises:
            NotFitted: the engine has no model.
        """
        handle = self._live()
        eps, delta, rounds = ctypes.c_double(), ctypes.c_double(), c_uint32()
        check(_capi.chorus_engine_privacy_spent(handle, byref(eps), byref(delta), byref(rounds)))
        if rounds.value == 0:
            return None
        return PrivacySpent(float(eps.value), float(delta.value), int(rounds.value))

    # -- persistence -----------------------------------------------------------------------------

    def save(self, path: PathLike, *, interactions: bool = True) -> None:
        """Writes the whole engine to `path` as one snapshot file, atomically (a process killed
        mid-save leaves the previous file; a temporary file it left is removed by the next save).

        `interactions=False` keeps the interactions out of the file (no rows, no timestamps, no
        live-feedback record): the model still serves from it, but an engine loaded from it refuses
        to fit or be merged (InvalidArgument naming the missing interactions) and withholds them
        from its own saves too. It may still be the `start_from` of another engine's fit.

        Raises:
            ChorusIOError: `path` is a directory, its directory is missing, or the disk refused.
            InvalidArgument: `interactions=False` for an engine without a model.
        """
        handle = self._live()
        raw = _path(path)
        self._store_id_maps()
        if interactions:
            check(_capi.chorus_engine_save(handle, raw))
        else:
            check(_capi.chorus_engine_save_ex(handle, raw, _capi.CHORUS_SAVE_WITHOUT_INTERACTIONS))


class PrivacySpent(NamedTuple):
    """What :attr:`Engine.privacy_spent` reports: (ε, δ)-differential privacy of the merged item
    factors over `rounds` merges."""

    epsilon: float
    delta: float
    rounds: int


def _refuse_string_ids(engines: Sequence[Engine], what: str) -> None:
    """Merges and fits from another engine match users and items by their int64 ids: string ids
    are codes the binding gives per engine, so the same string has other codes elsewhere."""
    for i, e in enumerate(engines):
        for space in ("user", "item"):
            if e._ids(space).kind == "str":
                raise InvalidArgument(f"{what}: engine {i} has string {space} ids; shards are matched by their int64 ids "
                                      "and string ids get different codes in each engine: use integer ids")
