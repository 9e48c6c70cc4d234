"""chorus.spark.train_sharded on local[2]: one shard and one round is the single-machine fit, a few
shards and rounds give one engine over every user (with privacy: its epsilon), and bad input fails
naming its cause. One SparkSession for the module."""

import glob
import os
import subprocess
import textwrap

import numpy as np
import pytest

import chorus
from chorus import spark as chorus_spark

from conftest import BINDING_DIR

if not os.environ.get("JAVA_HOME"):
    for home in sorted(glob.glob("/usr/lib/jvm/java-17-openjdk-*")):
        os.environ["JAVA_HOME"] = home
        break

from pyspark.sql import SparkSession  # noqa: E402  (after JAVA_HOME)

FIT = dict(factors=8, iterations=5, threads=1, seed=11, agents=["als", "bpr", "itemknn", "session"], bpr_epochs=10)


@pytest.fixture(scope="module")
def spark():
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (BINDING_DIR, saved) if p)
    session = (SparkSession.builder.master("local[2]").appName("chorus-test-sharded")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "2")
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


def _rows(seed=3, n=4000, users=120, items=60):
    rng = np.random.default_rng(seed)
    u = rng.integers(0, users, size=n) * 7 + 100
    i = (rng.zipf(1.3, size=n) % items) * 5 + 10**6
    w = rng.integers(1, 4, size=n).astype(float)
    t = 1_700_000_000 + rng.integers(0, 10**6, size=n)
    return [(int(a), int(b), float(c), int(d)) for a, b, c, d in zip(u, i, w, t)]


def test_one_shard_one_round_is_the_single_fit(spark):
    rows = _rows()
    df = spark.createDataFrame(rows, "user_id long, item_id long, weight double, timestamp long")
    with chorus_spark.train_sharded(spark, df, n_shards=1, rounds=1, fit_params=FIT) as merged:
        single = chorus.Engine()
        data = sorted(rows)  # the order a task adds its rows in
        arr = np.array(data, dtype=object)
        single.add_interactions(arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2].astype(np.float32),
                                arr[:, 3].astype(np.int64))
        single.fit(**FIT, progress=False)
        users = np.unique(arr[:, 0].astype(np.int64))
        a, sa = merged.recommend(users, k=10)
        b, sb = single.recommend(users, k=10)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(sa, sb)
        single.close()


def test_shards_and_rounds_give_one_engine_over_every_user(spark):
    rows = _rows()
    rdd = spark.sparkContext.parallelize(rows, 3)
    privacy = dict(noise_multiplier=1.0, clip_norm=1.0)
    with chorus_spark.train_sharded(spark, rdd, n_shards=3, rounds=2, fit_params=FIT, privacy=privacy) as merged:
        users = sorted({r[0] for r in rows})
        assert merged.stats()["n_model_users"] == len(users)
        ids, _ = merged.recommend(users[:5], k=5)
        assert (ids != -1).all()
        spent = merged.privacy_spent
        assert spent.rounds == 2 and 5.3 < spent.epsilon < 9  # two rounds at σ = 1 compose past one's 5.2986


def test_bad_input_names_the_cause(spark):
    rows = _rows(n=60, users=3)
    df = spark.createDataFrame(rows, "user_id long, item_id long, weight double, timestamp long")
    with pytest.raises(chorus_spark.EmptyShard, match=r"shards? [0-9, ]+ of 8 ha(s|ve) no interactions"):
        chorus_spark.train_sharded(spark, df, n_shards=8, fit_params=FIT)
    with pytest.raises(chorus_spark.EmptyShard, match="at least 2"):
        chorus_spark.train_sharded(spark, df.where("user_id = 100 or user_id = 107"), n_shards=2, fit_params=FIT)
    with pytest.raises(chorus.InvalidArgument, match="n_shards"):
        chorus_spark.train_sharded(spark, df, n_shards=0)
    with pytest.raises(chorus.InvalidArgument, match="rounds"):
        chorus_spark.train_sharded(spark, df, n_shards=1, rounds=0)
    strings = spark.createDataFrame([("u1", "i1")], "user_id string, item_id string")
    with pytest.raises(TypeError, match="integer ids"):
        chorus_spark.train_sharded(spark, strings, n_shards=1)
    with pytest.raises(chorus.InvalidArgument, match="no column"):
        chorus_spark.train_sharded(spark, df.select("user_id"), n_shards=1)
    with pytest.raises(TypeError):
        chorus_spark.train_sharded(spark, rows, n_shards=1)


def test_library_version_mismatch_names_both(spark, tmp_path):
    """An executor with another build (a shim reporting MAJOR.MINOR.(PATCH+1) that forwards to the
    real library, as in test_spark.py) fails its shard naming both versions."""
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
    df = spark.createDataFrame(_rows(n=400, users=20), "user_id long, item_id long, weight double, timestamp long")
    env = spark.sparkContext.environment
    saved = env["CHORUS_LIBRARY"]
    env["CHORUS_LIBRARY"] = str(lib)
    try:
        pattern = (rf"LibraryMismatch: chorus library version mismatch: the driver has {chorus.library_version()} "
                   rf"\(.*\), this executor has {other} \(.*libchorus-other\.so\)")
        with pytest.raises(Exception, match=pattern):
            chorus_spark.train_sharded(spark, df, n_shards=2, fit_params=FIT)
    finally:
        env["CHORUS_LIBRARY"] = saved
