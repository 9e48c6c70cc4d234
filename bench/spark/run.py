#!/usr/bin/env python3
"""Batch scoring throughput on Spark (chorus.spark.recommend_all), 1 and 2 partitions, MovieLens
ml-latest-small (issue 19).

    python3 bench/spark/run.py [--data DIR] [--copies 50] [--repeats 3] [--no-write] [--not-for-the-record]

The engine is fitted once (the default fit, hashing encoder) and saved; a local[2] SparkSession
(Java 17) then scores, for 1 and 2 partitions:

- every user of the data set (610), written to Parquet: what one scoring job costs end to end,
  Spark's per-job overhead included;
- the users `--copies` times over (each row is scored: 610 x 50 = 30,500 users), to Parquet: the
  throughput once the overhead is spread (users/s).

Each is timed `--repeats` times after one warm-up (the median and the best are kept), with the
load average before and after each. The single-process batch `Engine.recommend` over the same
users (k = 10) is the reference. Writes bench/spark/results.md and results.json (refused from a
dirty tree: bench/common.py).
"""

import argparse
import glob
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import common  # noqa: E402

LIB = os.path.join(common.REPO, ".build", "release", "libchorus.so")
BINDING = os.path.join(common.REPO, "bindings", "python")
K = 10


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(common.DEFAULT_DATA, "ml-latest-small"))
    ap.add_argument("--copies", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    common.add_record_flag(ap)
    common.add_render_flags(ap)
    args = ap.parse_args()
    if args.render:
        return common.render_mode(args, HERE, render)
    prov = common.Provenance([LIB])
    if not args.no_write:
        prov.check_record(args.not_for_the_record)

    os.environ.setdefault("CHORUS_LIBRARY", LIB)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (BINDING, os.environ.get("PYTHONPATH")) if p)
    if not os.environ.get("JAVA_HOME"):
        homes = sorted(glob.glob("/usr/lib/jvm/java-17-openjdk-*"))
        if homes:
            os.environ["JAVA_HOME"] = homes[0]
    sys.path.insert(0, BINDING)
    import numpy as np
    import chorus
    from chorus.spark import recommend_all
    from pyspark.sql import SparkSession

    users, items, ratings, times = common.load_ratings(os.path.join(args.data, "ratings.csv"))
    tmp = tempfile.mkdtemp(prefix="bench-spark-")
    snapshot = os.path.join(tmp, "ml-latest-small.chorus")
    t0 = time.perf_counter()
    with chorus.Engine(hashing_encoder=True) as engine:
        engine.add_interactions(users, items, ratings, times)
        engine.fit(progress=False)
        fit_seconds = time.perf_counter() - t0
        engine.save(snapshot)
        everyone = np.unique(users)
        many = np.tile(everyone, args.copies)
        single = {}
        for name, batch in (("all", everyone), ("copies", many)):
            engine.recommend(batch[:500], k=K)  # warm-up
            runs = [_timed(lambda: engine.recommend(batch, k=K)) for _ in range(args.repeats)]
            single[name] = {"users": int(batch.size), "seconds": runs, "users_per_second": batch.size / statistics.median(runs)}
    snapshot_bytes = os.path.getsize(snapshot)
    t0 = time.perf_counter()
    chorus.Engine.load(snapshot).close()
    load_seconds = time.perf_counter() - t0

    spark = (SparkSession.builder.master("local[2]").appName("bench-spark")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", "2")
             .config("spark.executorEnv.CHORUS_LIBRARY", chorus.library_path()).getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    rows = []
    try:
        base = spark.createDataFrame([(int(u),) for u in everyone], "user_id long").cache()
        base.count()
        copies = base.crossJoin(spark.range(args.copies).withColumnRenamed("id", "copy")).select("user_id").cache()
        copies.count()
        for name, df, n in (("all", base, everyone.size), ("copies", copies, many.size)):
            for partitions in (1, 2):
                out = os.path.join(tmp, f"recs-{name}-{partitions}.parquet")

                def job():
                    recommend_all(spark, snapshot, df, k=K, num_partitions=partitions).write.mode("overwrite").parquet(out)

                job()  # warm-up: the Python workers start, the executors fetch the snapshot
                runs = []
                for _ in range(args.repeats):
                    before = os.getloadavg()[0]
                    seconds = _timed(job)
                    runs.append({"seconds": seconds, "load_before": before, "load_after": os.getloadavg()[0]})
                written = spark.read.parquet(out).count()
                median = statistics.median(r["seconds"] for r in runs)
                row = {"users": name, "n_users": int(n), "partitions": partitions, "rows_written": written, "runs": runs,
                       "median_seconds": median, "best_seconds": min(r["seconds"] for r in runs),
                       "users_per_second": n / median}
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        spark.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    import pyspark
    result = {"benchmark": "spark", "settings": vars(args), "k": K, "fit_seconds": fit_seconds,
              "snapshot_bytes": snapshot_bytes,
              "snapshot_load_seconds": load_seconds, "single_process": single, "rows": rows,
              "pyspark": pyspark.__version__, "java_home": os.environ.get("JAVA_HOME"),
              "provenance": prov.finish().as_dict()}
    common.write_results(HERE, result, render, json_out=args.json_out, write=not args.no_write)


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def render(r):
    L = ["# Batch scoring on Spark: chorus.spark.recommend_all on ml-latest-small", "",
         "Recorded by `bench/spark/run.py`; do not edit by hand (rerun it).", ""]
    L += common.provenance_banner(r.get("provenance")) + [""]
    L += [f"PySpark {r['pyspark']}, `local[2]` (2 cores shared with other work), Java at `{r['java_home']}`; k = {r['k']}, "
          f"top-k of each user written to Parquet. Engine: the default fit ({r['fit_seconds']:.1f} s), snapshot "
          f"{r['snapshot_bytes'] / 1e6:.1f} MB, loaded in {r['snapshot_load_seconds']:.2f} s (each partition loads it once).", "",
          "| users scored | partitions | rows written | median s (best) | users/s | load average during the runs |",
          "| --- | --- | --- | --- | --- | --- |"]
    for row in r["rows"]:
        loads = [x["load_before"] for x in row["runs"]] + [x["load_after"] for x in row["runs"]]
        what = f"{row['n_users']:,} (every user)" if row["users"] == "all" else f"{row['n_users']:,} (every user x {r['settings']['copies']})"
        L.append(f"| {what} | {row['partitions']} | {row['rows_written']:,} | {row['median_seconds']:.2f} ({row['best_seconds']:.2f}) | "
                 f"{row['users_per_second']:,.0f} | {min(loads):.1f}-{max(loads):.1f} |")
    s = r["single_process"]
    L += ["", f"Single process, batch `Engine.recommend` (one call, no Spark, no Parquet): {s['all']['users']:,} users at "
          f"{s['all']['users_per_second']:,.0f} users/s, {s['copies']['users']:,} at {s['copies']['users_per_second']:,.0f} users/s "
          f"(median of {r['settings']['repeats']}).", "",
          f"Each Spark figure is the median of {r['settings']['repeats']} runs after a warm-up run (which starts the Python "
          "workers and fetches the snapshot); a run is one job: repartition, load the engine per partition, recommend in "
          "batches of 1,024, write Parquet.", "", "```", r["provenance"]["command"] if r.get("provenance") else "", "```", ""]
    return "\n".join(L)


if __name__ == "__main__":
    main()
