"""Batch scoring on Spark: fit (or load) a Chorus engine, score every user, write Parquet.

    python3 examples/spark/score.py --ratings ../shared/data/ml-latest-small/ratings.csv \\
        --snapshot /tmp/ml.chorus --out /tmp/recs.parquet            # local[2], fits if needed

On a cluster (examples/spark/README.md): spark-submit with the binding and the library on the
executors (the wheel installed on every node, or a packed environment in --archives), the snapshot
where the driver can read it, --master left to spark-submit:

    spark-submit --master yarn --conf spark.executorEnv.CHORUS_LIBRARY=/opt/chorus/libchorus.so \\
        examples/spark/score.py --master "" --snapshot /mnt/models/ml.chorus --users hdfs:///ratings.csv --out hdfs:///recs
"""

import argparse
import glob
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bindings", "python"))  # run from the source tree

import chorus  # noqa: E402
from chorus.spark import recommend_all  # noqa: E402


def fit(ratings_csv: str, snapshot: str) -> None:
    """A MovieLens ratings.csv (userId,movieId,rating,timestamp) -> a fitted engine saved to `snapshot`."""
    import pandas as pd

    df = pd.read_csv(ratings_csv)
    with chorus.Engine(hashing_encoder=True) as engine:
        engine.add_interactions(df, user_col="userId", item_col="movieId", weight_col="rating", timestamp_col="timestamp")
        engine.fit(progress=False)
        engine.save(snapshot)
        print(f"fitted on {len(df):,} ratings: {engine.agents}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--snapshot", required=True, help="the engine snapshot: loaded if it exists, else fitted from --ratings")
    ap.add_argument("--ratings", help="a MovieLens ratings.csv to fit on (when the snapshot does not exist)")
    ap.add_argument("--users", help="a CSV with a header and a userId column, read by Spark (default: --ratings)")
    ap.add_argument("--out", required=True, help="where to write the Parquet (overwritten)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--partitions", type=int, default=None, help="repartition the users first")
    ap.add_argument("--master", default="local[2]", help='Spark master ("" to leave it to spark-submit)')
    args = ap.parse_args()

    if not os.path.exists(args.snapshot):
        if not args.ratings:
            ap.error(f"{args.snapshot} does not exist: pass --ratings to fit one")
        fit(args.ratings, args.snapshot)
    users_csv = args.users or args.ratings
    if not users_csv:
        ap.error("pass --users (or --ratings) to name the users to score")

    if not os.environ.get("JAVA_HOME"):  # Spark 3.5 on Debian's Java 17 when nothing else is set
        homes = sorted(glob.glob("/usr/lib/jvm/java-17-openjdk-*"))
        if homes:
            os.environ["JAVA_HOME"] = homes[0]
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("chorus-batch-scoring")
    if args.master:
        # local mode: the Python workers inherit this environment; name the library for them as a
        # cluster would (spark-submit --conf spark.executorEnv.CHORUS_LIBRARY=... there).
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.join(HERE, "..", "..", "bindings", "python"),
                                                                os.environ.get("PYTHONPATH")) if p)
        builder = (builder.master(args.master).config("spark.ui.showConsoleProgress", "false")
                   .config("spark.executorEnv.CHORUS_LIBRARY", chorus.library_path()))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        users = spark.read.csv(users_csv, header=True, inferSchema=True).select("userId").distinct()
        t0 = time.perf_counter()
        recs = recommend_all(spark, args.snapshot, users, k=args.k, user_col="userId", num_partitions=args.partitions)
        recs.write.mode("overwrite").parquet(args.out)
        seconds = time.perf_counter() - t0
        back = spark.read.parquet(args.out)
        n_users = back.select("user").distinct().count()
        print(f"wrote {back.count():,} rows for {n_users:,} users to {args.out} in {seconds:.1f} s "
              f"({back.filter('cold').select('user').distinct().count()} cold users)")
        back.orderBy("user", "rank").show(5)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
