"""chorus.spark: batch scoring on a local[2] Spark equals Engine.recommend bit for bit, and each
bad input fails naming its cause. One SparkSession for the module (starting one takes ~10 s)."""

import glob
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import chorus
from chorus import spark as chorus_spark

from conftest import BINDING_DIR

# Spark 3.5 runs on Java 17: Debian's, unless JAVA_HOME names another.
if not os.environ.get("JAVA_HOME"):
    for home in sorted(glob.glob("/usr/lib/jvm/java-17-openjdk-*")):
        os.environ["JAVA_HOME"] = home
        break

from pyspark.sql import SparkSession  # noqa: E402  (after JAVA_HOME)

N_USERS, N_ITEMS, K = 240, 90, 10
UNKNOWN_INT = [7_777_777, -5]
UNKNOWN_STR = ["signed-up-after-the-fit", ""]


@pytest.fixture(scope="module")
def spark():
    # The executors' Python workers import chorus from the source tree and load the library the
    # driver loaded, through spark.executorEnv (as on a cluster).
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (BINDING_DIR, saved) if p)
    session = (SparkSession.builder.master("local[2]").appName("chorus-test-spark")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "2")
               # A test's jobs are short: the JVM's quick compiler alone starts them sooner.
               .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
               .config("spark.executorEnv.CHORUS_LIBRARY", chorus.library_path())
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    if saved is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = saved


def _interactions(seed=3):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, N_USERS, size=6000).astype(np.int64) * 11 + 100
    items = (rng.zipf(1.3, size=6000) % N_ITEMS).astype(np.int64) * 5 + 10**9
    return users, items


@pytest.fixture(scope="module")
def int_snapshot(tmp_path_factory):
    users, items = _interactions()
    engine = chorus.Engine(hashing_encoder=True)
    engine.add_interactions(users, items)
    engine.fit(factors=8, iterations=5, threads=1, seed=11)
    path = tmp_path_factory.mktemp("int") / "model.chorus"
    engine.save(path)
    yield engine, path, np.unique(users).tolist()
    engine.close()


@pytest.fixture(scope="module")
def str_snapshot(tmp_path_factory):
    users, items = _interactions(seed=4)
    engine = chorus.Engine(hashing_encoder=True)
    engine.add_interactions([f"user-{u}" for u in users], [f"movie/{i}" for i in items])
    engine.fit(factors=8, iterations=5, threads=1, seed=11)
    path = tmp_path_factory.mktemp("str") / "model.chorus"
    engine.save(path)
    yield engine, path, sorted({f"user-{u}" for u in users})
    engine.close()


def _by_user(rows):
    """user -> (items, float32 scores, cold), in rank order (ranks checked to be 1..n)."""
    out = {}
    for r in sorted(rows, key=lambda r: (r["user"], r["rank"])):
        out.setdefault(r["user"], []).append(r)
    result = {}
    for user, rs in out.items():
        assert [r["rank"] for r in rs] == list(range(1, len(rs) + 1)), user
        assert len({r["cold"] for r in rs}) == 1, user
        result[user] = ([r["item"] for r in rs], np.array([r["score"] for r in rs], dtype=np.float32), rs[0]["cold"])
    return result


def _assert_equal_to_engine(engine, users, got, cold_users):
    ids, scores = engine.recommend(users, k=K)
    assert set(got) == set(users)
    for row, user in enumerate(users):
        items, s, cold = got[user]
        filled = [i for i in ids[row].tolist() if i is not None and i != chorus.NO_ITEM]
        assert items == filled, user
        # bit for bit: the float32 patterns, not a tolerance
        assert s.view(np.uint32).tolist() == scores[row][: len(filled)].view(np.uint32).tolist(), user
        assert cold == (user in cold_users), user


@pytest.mark.parametrize("partitions", [1, 2])
def test_int_ids_equal_single_process_through_parquet(spark, int_snapshot, tmp_path, partitions):
    engine, path, users = int_snapshot
    everyone = users + UNKNOWN_INT
    df = spark.createDataFrame([(u,) for u in everyone], "user_id long")
    recs = chorus_spark.recommend_all(spark, path, df, k=K, num_partitions=partitions, batch_size=37)
    assert recs.rdd.getNumPartitions() == partitions
    out = str(tmp_path / "recs.parquet")
    recs.write.parquet(out)
    back = spark.read.parquet(out)
    assert back.columns == list(chorus_spark.COLUMNS)
    assert [f.dataType.simpleString() for f in back.schema] == ["bigint", "int", "bigint", "float", "boolean"]
    got = _by_user([r.asDict() for r in back.collect()])
    _assert_equal_to_engine(engine, everyone, got, set(UNKNOWN_INT))
    # the unknown users got the cold fallback, as Engine.recommend gives them
    assert got[UNKNOWN_INT[0]][0] == got[UNKNOWN_INT[1]][0] and len(got[UNKNOWN_INT[0]][0]) == K


@pytest.mark.parametrize("partitions", [1, 2])
def test_string_ids_equal_single_process_through_parquet(spark, str_snapshot, tmp_path, partitions):
    engine, path, users = str_snapshot
    df = spark.createDataFrame([(u, "x") for u in users + UNKNOWN_STR], "user_id string, name string")
    recs = chorus_spark.recommend_all(spark, path, df, k=K, num_partitions=partitions, batch_size=50)
    out = str(tmp_path / "recs.parquet")
    recs.write.parquet(out)
    back = spark.read.parquet(out)
    assert [f.dataType.simpleString() for f in back.schema] == ["string", "int", "string", "float", "boolean"]
    got = _by_user([r.asDict() for r in back.collect()])
    _assert_equal_to_engine(engine, users, {u: got[u] for u in users}, set())
    # Strings never added (Engine.recommend refuses them): served cold, flagged, all alike.
    for u in UNKNOWN_STR:
        items, scores, cold = got[u]
        assert cold and len(items) == K and all(isinstance(i, str) and i.startswith("movie/") for i in items)
        assert items == got[UNKNOWN_STR[0]][0]
        assert scores.tobytes() == got[UNKNOWN_STR[0]][1].tobytes()


def test_rdd_input_and_repeated_calls(spark, int_snapshot):
    engine, path, users = int_snapshot
    rdd = spark.sparkContext.parallelize(users[:30], 3)
    first = chorus_spark.recommend_all(spark, path, rdd, k=3).collect()
    again = chorus_spark.recommend_all(spark, str(path), rdd, k=3).collect()  # same file shipped once
    assert sorted(first) == sorted(again) and len(first) == 90
    ids, _ = engine.recommend(users[:30], k=3)
    assert _by_user([r.asDict() for r in first])[users[0]][0] == ids[0].tolist()


def test_a_snapshot_saved_again_to_the_same_path_is_shipped_again(spark, tmp_path, int_snapshot):
    """Spark never ships a second file under a name it has shipped: without content-addressed names
    the second call would score with the first model."""
    engine, _, users = int_snapshot
    path = tmp_path / "model.chorus"
    engine.save(path)
    df = spark.createDataFrame([(u,) for u in users[:5]], "user_id long")
    before = chorus_spark.recommend_all(spark, path, df, k=K).collect()
    other = chorus.Engine(hashing_encoder=True)
    u, i = _interactions(seed=9)
    other.add_interactions(u, i)
    other.fit(factors=4, iterations=3, threads=1, seed=5)
    other.save(path)
    after = chorus_spark.recommend_all(spark, path, df, k=K).collect()
    assert sorted(before) != sorted(after)
    _assert_equal_to_engine(other, users[:5], _by_user([r.asDict() for r in after]),
                            {u for u in users[:5] if other.recommend(u, k=K, return_details=True).cold})
    other.close()


def test_an_empty_partition_produces_nothing_and_loads_nothing(spark, int_snapshot, tmp_path):
    engine, path, users = int_snapshot
    one = spark.createDataFrame([(users[0],)], "user_id long")
    recs = chorus_spark.recommend_all(spark, path, one, k=K, num_partitions=2)
    sizes = recs.rdd.glom().map(len).collect()
    assert sorted(sizes) == [0, K]  # one partition had the user, the other nothing
    # No users at all: no rows, and no task even opens the snapshot (it is gone here).
    gone = tmp_path / "gone.chorus"
    shutil.copyfile(path, gone)
    empty = spark.createDataFrame([], "user_id long")
    lazy = chorus_spark.recommend_all(spark, gone, empty, k=K, num_partitions=2, shared_path=True)
    os.remove(gone)
    assert lazy.count() == 0


def test_snapshot_missing_on_the_driver(spark, tmp_path):
    df = spark.createDataFrame([(1,)], "user_id long")
    missing = tmp_path / "no-such.chorus"
    with pytest.raises(FileNotFoundError, match="no-such.chorus.*does not exist on the driver"):
        chorus_spark.recommend_all(spark, missing, df)


def test_snapshot_missing_on_an_executor_after_add_file(spark, int_snapshot, tmp_path):
    _, path, users = int_snapshot
    copy = tmp_path / "deleted.chorus"  # a name of its own: shipped as chorus-<sha>-deleted.chorus
    shutil.copyfile(path, copy)
    df = spark.createDataFrame([(u,) for u in users[:4]], "user_id long")
    recs = chorus_spark.recommend_all(spark, copy, df, k=K)
    assert recs.count() == 4 * K  # the executor has fetched its copy (a first task fetches it anew)
    from pyspark import SparkFiles
    shipped = glob.glob(os.path.join(SparkFiles.getRootDirectory(), "chorus-*-deleted.chorus"))
    assert len(shipped) == 1
    os.remove(shipped[0])  # local mode: the executor's copy is this one (a node's temp cleaner, say)
    with pytest.raises(Exception, match=r"SnapshotMissing: the engine snapshot is missing on this executor: .*deleted\.chorus"):
        recs.collect()


def test_snapshot_missing_at_the_shared_path(spark, int_snapshot, tmp_path):
    _, path, users = int_snapshot
    shared = tmp_path / "shared.chorus"
    shutil.copyfile(path, shared)
    df = spark.createDataFrame([(u,) for u in users[:4]], "user_id long")
    recs = chorus_spark.recommend_all(spark, shared, df, k=K, shared_path=True)
    assert recs.count() == 4 * K
    os.remove(shared)
    with pytest.raises(Exception, match=r"SnapshotMissing: .*shared\.chorus.*shared_path=True"):
        recs.collect()


def test_another_file_at_the_shared_path(spark, int_snapshot, tmp_path):
    _, path, users = int_snapshot
    shared = tmp_path / "replaced.chorus"
    shutil.copyfile(path, shared)
    df = spark.createDataFrame([(u,) for u in users[:4]], "user_id long")
    recs = chorus_spark.recommend_all(spark, shared, df, k=K, shared_path=True)
    with open(shared, "ab") as f:
        f.write(b"more")
    with pytest.raises(Exception, match=r"SnapshotMismatch: .*replaced\.chorus.*has \d+ bytes; the driver's has \d+"):
        recs.collect()
    # The same size, another content (here one byte changed in place): the sha256 tells, before
    # the loader's checksums would.
    shutil.copyfile(path, shared)
    recs = chorus_spark.recommend_all(spark, shared, df, k=K, shared_path=True)
    with open(shared, "r+b") as f:
        f.seek(os.path.getsize(shared) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(Exception, match=r"SnapshotMismatch: .*replaced\.chorus.*has sha256 [0-9a-f]{16}\.\.\.; the driver's has [0-9a-f]{16}"):
        recs.collect()


def _library_of_another_version(tmp_path):
    """A real library file that reports another version: a shim whose chorus_version() says
    MAJOR.MINOR.(PATCH+1) (same major, so the binding loads it) and forwards everything else to
    libchorus.so, which it links. This is what an executor with another build looks like."""
    number = chorus._capi.chorus_version_number()
    other = f"{number // 10000}.{number // 100 % 100}.{number % 100 + 1}"
    src = tmp_path / "shim.c"
    src.write_text(textwrap.dedent(f"""
        const char *chorus_version(void) {{ return "{other}"; }}
    """))
    lib = tmp_path / "libchorus-other.so"
    real = chorus.library_path()
    subprocess.run([os.environ.get("CC", "cc"), "-shared", "-fPIC", str(src), "-o", str(lib), "-Wl,--no-as-needed", real,
                    f"-Wl,-rpath,{os.path.dirname(real)}"], check=True)
    return str(lib), other


def test_library_version_mismatch_names_both(spark, int_snapshot, tmp_path):
    _, path, users = int_snapshot
    lib, other = _library_of_another_version(tmp_path)
    check = subprocess.run([sys.executable, "-c", "import chorus; print(chorus.library_version())"],
                           env={**os.environ, "CHORUS_LIBRARY": lib}, capture_output=True, text=True)
    assert check.stdout.strip() == other, check.stderr  # the shim really loads as another version
    df = spark.createDataFrame([(u,) for u in users[:4]], "user_id long")
    env = spark.sparkContext.environment  # spark.executorEnv.*, read when a job is built
    saved = env["CHORUS_LIBRARY"]
    env["CHORUS_LIBRARY"] = lib
    try:
        recs = chorus_spark.recommend_all(spark, path, df, k=K)
        pattern = (rf"LibraryMismatch: chorus library version mismatch: the driver has {chorus.library_version()} "
                   rf"\(.*\), this executor has {other} \(.*libchorus-other\.so\)")
        with pytest.raises(Exception, match=pattern):
            recs.collect()
    finally:
        env["CHORUS_LIBRARY"] = saved
    assert chorus_spark.recommend_all(spark, path, df, k=K).count() == 4 * K


def test_no_library_on_the_executors_names_chorus_library(spark, int_snapshot, tmp_path):
    _, path, users = int_snapshot
    df = spark.createDataFrame([(u,) for u in users[:4]], "user_id long")
    env = spark.sparkContext.environment
    saved = env["CHORUS_LIBRARY"]
    env["CHORUS_LIBRARY"] = str(tmp_path / "not-installed" / "libchorus.so")
    try:
        recs = chorus_spark.recommend_all(spark, path, df, k=K)
        with pytest.raises(Exception, match=r"ImportError: chorus: \$CHORUS_LIBRARY is set to .*not-installed/libchorus\.so.*not a file"):
            recs.collect()
    finally:
        env["CHORUS_LIBRARY"] = saved


def test_ids_of_the_other_type_are_refused_on_the_driver(spark, int_snapshot, str_snapshot):
    _, int_path, _ = int_snapshot
    _, str_path, _ = str_snapshot
    with pytest.raises(TypeError, match="column 'user_id' is string, but the snapshot's user ids are integers"):
        chorus_spark.recommend_all(spark, int_path, spark.createDataFrame([("a",)], "user_id string"))
    with pytest.raises(TypeError, match="column 'u' is bigint, but the snapshot's user ids are strings"):
        chorus_spark.recommend_all(spark, str_path, spark.createDataFrame([(1, 2)], "u long, v long"), user_col="u")
    with pytest.raises(chorus.InvalidArgument, match="no column 'nope'"):
        chorus_spark.recommend_all(spark, int_path, spark.createDataFrame([(1,)], "user_id long"), user_col="nope")
    with pytest.raises(chorus.InvalidArgument, match="k must be at least 1"):
        chorus_spark.recommend_all(spark, int_path, spark.createDataFrame([(1,)], "user_id long"), k=0)
    with pytest.raises(chorus.NotFound, match="nope"):
        chorus_spark.recommend_all(spark, int_path, spark.createDataFrame([(1,)], "user_id long"), agent="nope")
    with pytest.raises(chorus.InvalidArgument, match="k"):
        chorus_spark.recommend_all(spark, int_path, spark.createDataFrame([(1,)], "user_id long"), k=N_ITEMS + 1)
    # nothing of the refused calls stays in the directory files are shipped from
    assert not glob.glob(os.path.join(chorus_spark._ship_dir(), ".staged-*"))


def test_null_and_mistyped_ids_fail_in_the_task(spark, int_snapshot):
    _, path, _ = int_snapshot
    nulls = spark.createDataFrame([(1,), (None,)], "user_id long")
    with pytest.raises(Exception, match=r"InvalidArgument: users holds a missing \(null\) id"):
        chorus_spark.recommend_all(spark, path, nulls).collect()
    rdd = spark.sparkContext.parallelize(["x"], 1)  # an RDD has no schema to check on the driver
    with pytest.raises(Exception, match="user id 'x' is str, but the snapshot's user ids are integers"):
        chorus_spark.recommend_all(spark, path, rdd).collect()


def test_the_binding_imports_without_pyspark():
    code = ("import sys; sys.modules['pyspark'] = None\n"
            "import chorus, chorus.spark\n"
            "print(chorus.spark.recommend_all.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": BINDING_DIR})
    assert out.returncode == 0 and out.stdout.strip() == "recommend_all", out.stderr


def test_a_partition_loads_the_engine_once_and_recommends_in_batches(int_snapshot, monkeypatch):
    """The task body itself, in this process: one Engine.load per partition, one library call per
    batch_size users, nothing at all for an empty partition."""
    engine, path, users = int_snapshot
    loads, calls = [], []
    real_load, real_recommend = chorus.Engine.load.__func__, chorus_spark._recommend_codes
    monkeypatch.setattr(chorus.Engine, "load", classmethod(lambda cls, p: loads.append(p) or real_load(cls, p)))
    monkeypatch.setattr(chorus_spark, "_recommend_codes", lambda e, codes, *a: calls.append(codes.size) or real_recommend(e, codes, *a))
    spec = chorus_spark._Spec(str(path), True, os.path.getsize(path), chorus_spark._sha256(str(path)),
                              chorus.library_version(), chorus.library_path(),
                              "int", K, False, None, 40)
    rows = list(chorus_spark._score_partition(spec, iter(users[:100])))
    assert loads == [str(path)] and calls == [40, 40, 20]
    assert len(rows) == 100 * K
    assert list(chorus_spark._score_partition(spec, iter([]))) == [] and loads == [str(path)]
