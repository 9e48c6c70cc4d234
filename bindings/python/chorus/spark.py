"""Batch scoring on Apache Spark: the top-k of every user of a DataFrame, from an engine snapshot.

    from chorus.spark import recommend_all
    recs = recommend_all(spark, "model.chorus", users_df, k=10)   # user, rank, item, score, cold
    recs.write.parquet("recs.parquet")

How it runs:

- The driver loads the snapshot once (it must be readable there): that checks it is a snapshot,
  gives the id types of the result's columns, and refuses input ids of the other type before any
  job starts.
- The snapshot reaches the executors with ``SparkContext.addFile`` (not a broadcast of its bytes:
  a snapshot is often hundreds of MB, which a broadcast would hold in the driver's and every
  Python worker's memory, then have to write to disk anyway since ``Engine.load`` reads a path;
  addFile fetches it once per executor to local disk, where each task finds it with
  ``SparkFiles.get``). It is shipped under a content-addressed name (``chorus-<sha256
  prefix>-<name>``, a hard link in a temporary directory of the driver process, taken before the
  driver reads the file): Spark never ships a second
  file under a name it has already shipped, so a snapshot saved again to the same path would
  otherwise be scored with the old file, silently. ``shared_path=True`` skips the shipping when the
  path is on storage every executor mounts at the same place. Either way each executor checks the
  file it reads against the size and sha256 the driver read (once per Python worker and file).
- Each partition loads the engine once through the Python binding and recommends for its users in
  batches of ``batch_size`` (one library call each). An empty partition loads nothing.

Executors need the binding and the library: the ``chorus`` package importable (the built wheel,
which carries the library, installed on every node or in a packed environment shipped with
``--archives``; not a zip in ``--py-files``: the binding reads files beside its modules) and, when
the library is not inside the package, ``spark.executorEnv.CHORUS_LIBRARY`` set to its path on the
executors. Each task compares its
library's version with the driver's and fails, naming both, when they differ.

Every failure names its cause: the snapshot missing on the driver (FileNotFoundError) or on an
executor (:class:`SnapshotMissing`), another file there than the driver's (:class:`SnapshotMismatch`:
another size or sha256), the library version (:class:`LibraryMismatch`), input ids of the
wrong type (TypeError) or missing (InvalidArgument). Errors raised in a task reach the driver as
Spark's ``PythonException``, whose message carries ours.

Users unknown to the model are not an error: they get what ``Engine.recommend`` gives an unknown
user (the agents that need no history: popularity, and content for a user with a profile text),
with ``cold = True``. With string ids that includes strings never added to the engine, which
``Engine.recommend`` itself refuses (NotFound): scoring a whole user table should not stop at the
first user who signed up after the fit.

Sharded training (:func:`train_sharded`): the interactions partitioned by user across tasks, each
task fits a local engine through the binding from its partition and returns its snapshot's bytes,
the driver merges them (``Engine.merge``: federated averaging); for each further round the merged
snapshot, saved without its interactions, is broadcast and every task fits again starting from it
(``Engine.fit(start_from=)``).

pyspark is imported only here, so ``import chorus`` works without it.
"""

from __future__ import annotations

import atexit
import hashlib
import operator
import os
import shutil
import tempfile
import threading
from ctypes import POINTER, byref, c_float, c_int64, c_uint32
from typing import Any, Callable, Iterable, Iterator, List, NamedTuple, Optional, Tuple

import numpy as np

from . import _capi
from .engine import Engine
from .errors import InvalidArgument, check

#: The result's columns, in order.
COLUMNS = ("user", "rank", "item", "score", "cold")
_INTEGRAL = ("ByteType", "ShortType", "IntegerType", "LongType")
_DIGEST_CHARS = 16  # of the sha256 in a shipped file's name: 64 bits, no accidental collision


class SnapshotMissing(FileNotFoundError):
    """The snapshot is not on an executor where the task looked for it."""


class SnapshotMismatch(RuntimeError):
    """The file an executor found is not the snapshot the driver read (another size or sha256)."""


class LibraryMismatch(RuntimeError):
    """An executor loaded a libchorus of another version than the driver's."""


class _Spec(NamedTuple):
    """What each task needs, pickled into the job (no engine, no bytes of the snapshot)."""

    file: str                 # the name addFile shipped it under, or the shared path
    shared: bool
    size: int
    sha256: str
    driver_version: str
    driver_library: str
    user_kind: str            # "int" or "str"
    k: int
    include_seen: bool
    agent: Optional[str]
    batch_size: int


# ---- the driver ----------------------------------------------------------------------------------


def recommend_all(spark: Any, snapshot_path: Any, users: Any, k: int = 10, *, user_col: Optional[str] = None,
                  include_seen: bool = False, agent: Optional[str] = None,
                  num_partitions: Optional[int] = None, batch_size: int = 1024,
                  shared_path: bool = False) -> Any:
    """The top `k` items of every user in `users`, as a DataFrame (user, rank, item, score, cold).

    Args:
        spark: the SparkSession.
        snapshot_path: an engine snapshot written by ``Engine.save``, readable on the driver.
        users: a DataFrame (the ids in `user_col`) or an RDD of ids. Integer or string ids, the
            engine's type. Each row is scored: drop duplicates first if there are any.
        k: items per user (at least 1).
        user_col: the DataFrame's id column; default ``user_id``, or the only column.
        include_seen, agent: as in ``Engine.recommend``.
        num_partitions: repartition the users into this many partitions first (None keeps the
            input's partitioning). Each partition loads the engine once.
        batch_size: users per library call within a partition.
        shared_path: the snapshot is at `snapshot_path` on every executor too (shared storage
            mounted at the same place): not shipped.

    Returns:
        A DataFrame with columns ``user`` (the input's ids: long or string), ``rank`` (int, 1 =
        best), ``item`` (long or string, the engine's), ``score`` (float: the float32 score, bit
        for bit), ``cold`` (boolean: the user is unknown to the model; see the module docstring).
        Slots the engine cannot fill (fewer candidate items than k) give no row. Lazy, as any
        DataFrame: the scoring runs at the first action (``.write.parquet(...)``, ``.count()``).

    Raises:
        FileNotFoundError: `snapshot_path` does not exist on the driver.
        chorus.FormatError and the other errors of ``Engine.load``: not a readable snapshot.
        TypeError: ids of the other type than the engine's, `users` neither DataFrame nor RDD.
        InvalidArgument: a bad `k`, `batch_size` or `num_partitions`, a missing column.
    """
    from pyspark import RDD
    from pyspark.sql import DataFrame
    from pyspark.sql import types as T

    k = _positive(k, "k")
    batch_size = _positive(batch_size, "batch_size")
    if num_partitions is not None:
        num_partitions = _positive(num_partitions, "num_partitions")
    path = os.path.abspath(os.fspath(snapshot_path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"snapshot {path!r} does not exist on the driver (or is not a file)")
    # What is checked here, hashed and shipped is one file: a hard link (a copy across file
    # systems) taken first, which a later save to `path` (a rename) cannot change.
    local = path if shared_path else _stage(path)
    try:
        digest, size = _sha256(local), os.path.getsize(local)
        with Engine.load(local) as engine:
            user_kind = "str" if engine._ids("user").kind == "str" else "int"
            item_kind = "str" if engine._ids("item").kind == "str" else "int"
            # One recommendation on the driver: a k above the catalogue or an unknown agent fails
            # here, once, not in every task.
            _recommend_codes(engine, np.array([-1], dtype=np.int64), k, bool(include_seen), agent)

        if isinstance(users, DataFrame):
            col = _user_column(users, user_col)
            type_name = type(users.schema[col].dataType).__name__
            if (user_kind == "str") != (type_name == "StringType") or (user_kind == "int" and type_name not in _INTEGRAL):
                theirs = "strings" if user_kind == "str" else "integers"
                raise TypeError(f"users column {col!r} is {users.schema[col].dataType.simpleString()}, but the "
                                f"snapshot's user ids are {theirs}")
            ids = users.select(col).rdd.map(operator.itemgetter(0))
        elif isinstance(users, RDD):
            ids = users
        else:
            raise TypeError(f"users must be a pyspark DataFrame or RDD of ids, got {type(users).__name__}")
        if num_partitions is not None:
            ids = ids.repartition(num_partitions)
    except BaseException:
        if not shared_path:
            os.remove(local)
        raise

    import chorus
    sc = spark.sparkContext
    if shared_path:
        file = path
    else:
        file = _content_addressed(local, path, digest)
        sc.addFile(os.path.join(_ship_dir(), file))
    spec = _Spec(file, shared_path, size, digest, chorus.library_version(), chorus.library_path(),
                 user_kind, k, bool(include_seen), agent, batch_size)
    schema = T.StructType([
        T.StructField("user", T.StringType() if user_kind == "str" else T.LongType(), False),
        T.StructField("rank", T.IntegerType(), False),
        T.StructField("item", T.StringType() if item_kind == "str" else T.LongType(), False),
        T.StructField("score", T.FloatType(), False),
        T.StructField("cold", T.BooleanType(), False),
    ])
    return spark.createDataFrame(ids.mapPartitions(lambda rows: _score_partition(spec, rows)), schema)


def _positive(value: Any, name: str) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if v < 1:
        raise InvalidArgument(f"{name} must be at least 1, got {v}")
    return v


def _user_column(df: Any, user_col: Optional[str]) -> str:
    names = df.columns
    if user_col is not None:
        if user_col not in names:
            raise InvalidArgument(f"users has no column {user_col!r} (columns: {', '.join(names)})")
        return user_col
    if "user_id" in names:
        return "user_id"
    if len(names) == 1:
        return str(names[0])
    raise InvalidArgument(f"users has {len(names)} columns and none is 'user_id': name the ids with user_col=")


_ship_lock = threading.Lock()
_ship_state: dict = {}


def _ship_dir() -> str:
    """This process's directory of shipped names (removed at exit: addFile serves files from there
    until then)."""
    with _ship_lock:
        d = _ship_state.get("dir")
        if d is None:
            d = tempfile.mkdtemp(prefix="chorus-spark-")
            atexit.register(shutil.rmtree, d, True)
            _ship_state["dir"] = d
        return d


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _stage(path: str) -> str:
    """A hard link to `path` in the ship directory (a copy across file systems), under a
    temporary name."""
    fd, staged = tempfile.mkstemp(prefix=".staged-", dir=_ship_dir())
    os.close(fd)
    os.remove(staged)
    try:
        os.link(path, staged)
    except OSError:
        shutil.copyfile(path, staged)
    return staged


def _content_addressed(staged: str, path: str, digest: str) -> str:
    """Renames the staged file to the name it ships under, ``chorus-<sha256 prefix>-<basename of
    path>``; returns that name. Spark ships a name once: an identical file already there stays."""
    name = f"chorus-{digest[:_DIGEST_CHARS]}-{os.path.basename(path)}"
    target = os.path.join(_ship_dir(), name)
    if os.path.exists(target):
        os.remove(staged)
    else:
        os.replace(staged, target)
    return name


# ---- the executors -------------------------------------------------------------------------------


def _score_partition(spec: _Spec, rows: Iterable[Any]) -> Iterator[Tuple[Any, int, Any, float, bool]]:
    """One task: load the engine once, then (user, rank, item, score, cold) rows, batch by batch."""
    rows = iter(rows)
    batch = _take(rows, spec.batch_size)
    if not batch:  # no users: nothing to load, nothing to write
        return
    import chorus
    version = chorus.library_version()
    if version != spec.driver_version:
        raise LibraryMismatch(
            f"chorus library version mismatch: the driver has {spec.driver_version} "
            f"({spec.driver_library}), this executor has {version} ({chorus.library_path()}); install the "
            "same build on every node (spark.executorEnv.CHORUS_LIBRARY names the executors' library)")
    path = _local_snapshot(spec)
    with Engine.load(path) as engine:
        while batch:
            yield from _score_batch(engine, spec, batch)
            batch = _take(rows, spec.batch_size)


def _take(rows: Iterator[Any], n: int) -> List[Any]:
    out = []
    for row in rows:
        out.append(row)
        if len(out) == n:
            break
    return out


def _local_snapshot(spec: _Spec) -> str:
    if spec.shared:
        path = spec.file
        where = "at the shared path given to recommend_all (shared_path=True)"
    else:
        from pyspark import SparkFiles
        path = SparkFiles.get(spec.file)
        where = f"where SparkContext.addFile put it ({spec.file!r} under SparkFiles' root)"
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise SnapshotMissing(f"the engine snapshot is missing on this executor: {path!r}, {where}, "
                              f"cannot be read ({e.strerror or e})") from None
    if size != spec.size:
        raise SnapshotMismatch(f"the engine snapshot on this executor, {path!r}, has {size} bytes; the "
                               f"driver's has {spec.size}: another file, or changed since recommend_all")
    digest = _executor_digest(path)
    if digest != spec.sha256:
        raise SnapshotMismatch(f"the engine snapshot on this executor, {path!r}, has sha256 {digest[:16]}...; "
                               f"the driver's has {spec.sha256[:16]}...: another file of the same size, or "
                               "changed since recommend_all")
    return path


# (path, inode, size, mtime) -> sha256, in this Python worker: Spark reuses workers across tasks, so
# a file is hashed once per worker, not once per partition.
_digests: dict = {}
_digests_lock = threading.Lock()


def _executor_digest(path: str) -> str:
    st = os.stat(path)
    key = (path, st.st_ino, st.st_size, st.st_mtime_ns)
    with _digests_lock:
        digest = _digests.get(key)
    if digest is None:
        digest = _sha256(path)
        with _digests_lock:
            _digests[key] = digest
    return digest


def _score_batch(engine: Engine, spec: _Spec, batch: List[Any]) -> Iterator[Tuple[Any, int, Any, float, bool]]:
    codes = _user_codes(engine, spec.user_kind, batch)
    n, k = codes.size, spec.k
    ids, scores, flags = _recommend_codes(engine, codes, k, spec.include_seen, spec.agent)
    items = engine._ids("item").decode(ids)
    filled = ids != _capi.CHORUS_NO_ITEM
    cold = (flags & _capi.CHORUS_USER_COLD_FALLBACK) != 0
    for u in range(n):
        user, is_cold = batch[u], bool(cold[u])
        row_items, row_scores, row_filled = items[u].tolist(), scores[u].tolist(), filled[u]
        for r in range(k):
            if row_filled[r]:
                yield (user, r + 1, row_items[r], row_scores[r], is_cold)


def _recommend_codes(engine: Engine, codes: np.ndarray, k: int, include_seen: bool,
                     agent: Optional[str]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """chorus_engine_recommend on library ids, with the per-user flags and no shares:
    Engine.recommend's call plus the cold flags, without the cost of return_details' shares, and
    open to the ids of strings never added (which Engine.recommend refuses)."""
    n = codes.size
    params, keep = engine._query_params(include_seen, None, None, agent)
    ids = np.empty((n, k), dtype=np.int64)
    scores = np.empty((n, k), dtype=np.float32)
    flags = np.zeros(n, dtype=np.uint32)
    check(_capi.chorus_engine_recommend(
        engine._live(), codes.ctypes.data_as(POINTER(c_int64)), n, k, byref(params),
        ids.ctypes.data_as(POINTER(c_int64)), scores.ctypes.data_as(POINTER(c_float)), ids.size,
        None, 0, flags.ctypes.data_as(POINTER(c_uint32))))
    del keep
    return ids, scores, flags


def _user_codes(engine: Engine, kind: str, batch: List[Any]) -> np.ndarray:
    """The library's ids for a batch of the caller's: integers as they are; strings through the
    engine's map, and a string never added to -1, an id no string maps to, which the library
    serves as an unknown (cold) user."""
    for i, u in enumerate(batch):
        if u is None:
            raise InvalidArgument(f"users holds a missing (null) id; drop those rows first (row {i} of a batch)")
    if kind == "int":
        bad = next((u for u in batch if not isinstance(u, (int, np.integer)) or isinstance(u, bool)), None)
        if bad is not None:
            raise TypeError(f"user id {bad!r} is {type(bad).__name__}, but the snapshot's user ids are integers")
        return np.array(batch, dtype=np.int64)
    bad = next((u for u in batch if not isinstance(u, str)), None)
    if bad is not None:
        raise TypeError(f"user id {bad!r} is {type(bad).__name__}, but the snapshot's user ids are strings")
    codes = engine._ids("user")._codes
    return np.fromiter((codes.get(u, -1) for u in batch), dtype=np.int64, count=len(batch))


# ---- sharded training ----------------------------------------------------------------------------


class EmptyShard(ValueError):
    """A shard got no interactions (more shards than users, or a skewed hash)."""


class _ShardSpec(NamedTuple):
    """What each training task needs (no engine, no data)."""

    n_shards: int
    fit: dict
    driver_version: str
    driver_library: str


def _shard_of(user: int, n: int) -> int:
    """A user's shard: a multiplicative hash of the id (ids are often sequential or strided, which
    a plain modulo would give unevenly to the shards)."""
    return (((int(user) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) >> 32) % n


def train_sharded(spark: Any, interactions: Any, n_shards: int, rounds: int = 1, *,
                  fit_params: Optional[dict] = None, privacy: Optional[dict] = None,
                  columns: Tuple[str, str, str, str] = ("user_id", "item_id", "weight", "timestamp"),
                  on_round: Optional[Callable[[int, Engine], None]] = None) -> Engine:
    """Trains one engine from interactions partitioned by user across `n_shards` Spark tasks.

    Round 1: each task fits an engine on its users' interactions (``Engine.fit(**fit_params)``)
    and returns the snapshot's bytes; the driver merges them (``Engine.merge``). Rounds 2..R: the
    merged snapshot is broadcast, each task fits again from its interactions starting from it
    (``fit(start_from=merged)``, factor agents warm-started by id), the driver merges again.

    Args:
        spark: the SparkSession.
        interactions: a DataFrame with integer user and item id columns (names in `columns`;
            weight and timestamp optional: 1 and 0 when absent) or an RDD of (user, item, weight,
            timestamp) tuples.
        n_shards: shards (tasks), at least 1. Users are assigned by a hash of their id.
        rounds: merges, at least 1.
        fit_params: keyword arguments of ``Engine.fit`` for every shard (``progress`` is off).
        privacy: keyword arguments of ``Engine.merge`` (noise_multiplier, clip_norm, delta, seed):
            each round's merge clips and adds noise, ``privacy_spent`` of the result composes them.
            The seed is varied per round so rounds draw independent noise.
        columns: the DataFrame's user, item, weight and timestamp columns.
        on_round: called on the driver after each merge with (round, merged engine), 1-based;
            the engine is only valid during the call.

    Returns:
        The merged engine (on the driver; save it to ship it).

    Raises:
        EmptyShard: a shard with no interactions, or fewer than 2 users or items (checked on the
            driver before any fit), e.g. more shards than users.
        TypeError: string ids (a merge matches users and items by their int64 ids).
        InvalidArgument: bad n_shards, rounds or columns; what ``Engine.fit`` and
            ``Engine.merge`` raise (a shard too small to fit names its shard).
        LibraryMismatch: an executor with another library version than the driver's.
    """
    from pyspark import RDD
    from pyspark.sql import DataFrame

    n_shards = _positive(n_shards, "n_shards")
    rounds = _positive(rounds, "rounds")
    fit = dict(fit_params or {})
    fit["progress"] = False
    merge_args = dict(privacy or {})
    if isinstance(interactions, DataFrame):
        names = interactions.columns
        u, i, w, t = columns
        for c in (u, i):
            if c not in names:
                raise InvalidArgument(f"interactions has no column {c!r} (columns: {', '.join(names)})")
            type_name = type(interactions.schema[c].dataType).__name__
            if type_name not in _INTEGRAL:
                raise TypeError(f"interactions column {c!r} is {interactions.schema[c].dataType.simpleString()}: sharded "
                                "training needs integer ids (a merge matches users and items by their int64 ids)")
        cols = [interactions[u], interactions[i]]
        from pyspark.sql import functions as F
        cols.append(interactions[w].cast("float") if w in names else F.lit(1.0))
        cols.append(interactions[t].cast("long") if t in names else F.lit(0))
        rows = interactions.select(*cols).rdd.map(tuple)
    elif isinstance(interactions, RDD):
        rows = interactions
    else:
        raise TypeError(f"interactions must be a pyspark DataFrame or RDD, got {type(interactions).__name__}")

    import chorus
    spec = _ShardSpec(n_shards, fit, chorus.library_version(), chorus.library_path())
    n = n_shards
    keyed = rows.map(lambda r: (_user_key(r), r)).partitionBy(n, lambda key: _shard_of(key, n)).values()
    keyed = keyed.persist()
    sc = spark.sparkContext
    merged: Optional[Engine] = None
    try:
        # Every shard's size first (one pass over the persisted partitions): an empty or too small
        # shard is named on the driver before any fit starts.
        sizes = dict((s[0], s[1:]) for s in keyed.mapPartitionsWithIndex(_shard_size).collect())
        empty = [i for i in range(n) if sizes.get(i, (0, 0, 0))[0] == 0]
        if empty:
            raise EmptyShard(f"shard{'s' if len(empty) > 1 else ''} {', '.join(map(str, empty))} of {n} "
                             f"{'have' if len(empty) > 1 else 'has'} no interactions: fewer users than shards "
                             "(or a skewed partition); use fewer shards")
        small = [i for i in range(n) if min(sizes[i][1], sizes[i][2]) < 2]
        if small:
            i = small[0]
            raise EmptyShard(f"shard {i} of {n} has {sizes[i][1]} user(s) and {sizes[i][2]} item(s); a shard's fit needs "
                             "at least 2 of each: use fewer shards")
        for r in range(rounds):
            start = None
            if merged is not None:
                # The merged model without its interactions: the tasks need its factors, not the
                # union of every shard's rows (smaller, and the rows stay on the driver).
                start = sc.broadcast(_snapshot_bytes(merged, interactions=False))
            blobs = keyed.mapPartitionsWithIndex(lambda index, it, b=start: _fit_shard(spec, index, it, b)).collect()
            if start is not None:
                start.unpersist()
            blobs.sort(key=operator.itemgetter(0))
            shards = [_engine_from_bytes(b) for _, b in blobs]
            try:
                args = dict(merge_args)
                if args.get("noise_multiplier") or args.get("clip_norm"):
                    args["seed"] = int(args.get("seed", 42)) + r
                new = Engine.merge(shards, **args)
            finally:
                for e in shards:
                    e.close()
            if merged is not None:
                merged.close()
            merged = new
            if on_round is not None:
                on_round(r + 1, merged)
    except BaseException:
        if merged is not None:
            merged.close()
        raise
    finally:
        keyed.unpersist()
    assert merged is not None
    return merged


def _shard_size(index: int, rows: Iterable[Any]) -> Iterator[Tuple[int, int, int, int]]:
    """(shard, rows, distinct users, distinct items) of one partition."""
    n, users, items = 0, set(), set()
    for r in rows:
        n += 1
        users.add(r[0])
        items.add(r[1])
    yield index, n, len(users), len(items)


def _user_key(row: Any) -> int:
    u = row[0]
    if u is None or isinstance(u, bool) or not isinstance(u, (int, np.integer)):
        raise TypeError(f"user id {u!r} is {type(u).__name__}: sharded training needs integer ids")
    return int(u)


def _snapshot_bytes(engine: Engine, interactions: bool = True) -> bytes:
    d = tempfile.mkdtemp(prefix="chorus-shard-")
    try:
        path = os.path.join(d, "engine.chorus")
        engine.save(path, interactions=interactions)
        with open(path, "rb") as f:
            return f.read()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _engine_from_bytes(data: bytes) -> Engine:
    d = tempfile.mkdtemp(prefix="chorus-shard-")
    try:
        path = os.path.join(d, "engine.chorus")
        with open(path, "wb") as f:
            f.write(data)
        return Engine.load(path)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _fit_shard(spec: _ShardSpec, index: int, rows: Iterable[Any], start: Any) -> Iterator[Tuple[int, bytes]]:
    """One training task: its users' interactions, in a fixed order (Spark's order within a
    partition is not), fitted (from the broadcast merged snapshot after round 1); yields
    (shard, snapshot bytes)."""
    import chorus
    version = chorus.library_version()
    if version != spec.driver_version:
        raise LibraryMismatch(
            f"chorus library version mismatch: the driver has {spec.driver_version} "
            f"({spec.driver_library}), this executor has {version} ({chorus.library_path()}); install the "
            "same build on every node (spark.executorEnv.CHORUS_LIBRARY names the executors' library)")
    data = sorted((int(u), int(i), float(1.0 if w is None else w), int(0 if t is None else t)) for u, i, w, t in rows)
    if not data:
        raise EmptyShard(f"shard {index} of {spec.n_shards} has no interactions: fewer users than shards "
                         "(or a skewed partition); use fewer shards")
    arr = np.array(data, dtype=object)
    engine = Engine()
    start_engine = None
    try:
        engine.add_interactions(arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64),
                                arr[:, 2].astype(np.float32), arr[:, 3].astype(np.int64))
        if start is not None:
            start_engine = _engine_from_bytes(start.value)
        try:
            engine.fit(**spec.fit, start_from=start_engine)
        except chorus.ChorusError as e:
            raise type(e)(f"shard {index} of {spec.n_shards} ({len(data)} interactions): {e}") from None
        yield index, _snapshot_bytes(engine)
    finally:
        engine.close()
        if start_engine is not None:
            start_engine.close()
