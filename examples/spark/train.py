"""Sharded training on Spark: interactions partitioned by user across tasks, each task fits its shard,
the driver merges them (federated averaging), a few rounds; the merged engine is saved.

    python3 examples/spark/train.py --ratings ../shared/data/ml-latest-small/ratings.csv \\
        --snapshot /tmp/ml-merged.chorus --shards 4 --rounds 3                 # local[2]

    # with differential privacy of the merged item factors (noise multiplier 1, clip 0.5, 3 rounds):
    python3 examples/spark/train.py ... --noise-multiplier 1 --clip 0.5 --agents als

On a cluster (examples/spark/README.md): spark-submit with the binding and the library on the
executors, --master left to spark-submit, the ratings on storage Spark reads (hdfs://, s3a://):

    spark-submit --master yarn --conf spark.executorEnv.CHORUS_LIBRARY=/opt/chorus/libchorus.so \\
        examples/spark/train.py --master "" --ratings hdfs:///data/ratings.csv --snapshot /mnt/models/merged.chorus \\
        --shards 64 --rounds 3
"""

import argparse
import glob
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bindings", "python"))  # run from the source tree

import chorus  # noqa: E402
from chorus.spark import train_sharded  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ratings", required=True, help="userId,movieId,rating,timestamp CSV (a path Spark can read)")
    ap.add_argument("--snapshot", required=True, help="where the driver saves the merged engine")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--agents", default="", help="comma-separated agents (default: every collaborative agent)")
    ap.add_argument("--noise-multiplier", type=float, default=0.0)
    ap.add_argument("--clip", type=float, default=0.0)
    ap.add_argument("--master", default="local[2]", help='"" leaves it to spark-submit')
    args = ap.parse_args()

    if not os.environ.get("JAVA_HOME"):
        for home in sorted(glob.glob("/usr/lib/jvm/java-17-openjdk-*")):
            os.environ["JAVA_HOME"] = home
            break
    os.environ.setdefault("PYTHONPATH", os.path.join(HERE, "..", "..", "bindings", "python"))
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("chorus-sharded-training").config("spark.ui.showConsoleProgress", "false")
    if args.master:
        builder = builder.master(args.master).config("spark.executorEnv.CHORUS_LIBRARY", chorus.library_path())
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        df = (spark.read.option("header", True).csv(args.ratings)
              .selectExpr("cast(userId as long) user_id", "cast(movieId as long) item_id",
                          "cast(rating as float) weight", "cast(timestamp as long) timestamp"))
        fit = {"threads": 1}
        if args.agents:
            fit["agents"] = args.agents.split(",")
        privacy = None
        if args.noise_multiplier or args.clip:
            privacy = {"noise_multiplier": args.noise_multiplier, "clip_norm": args.clip}
        t0 = time.perf_counter()
        with train_sharded(spark, df, n_shards=args.shards, rounds=args.rounds, fit_params=fit, privacy=privacy,
                           on_round=lambda r, e: print(f"round {r}: merged {e.stats()['n_model_users']:,} users, "
                                                       f"{time.perf_counter() - t0:.1f} s", flush=True)) as merged:
            merged.save(args.snapshot)
            print(f"saved {args.snapshot}: {merged.agents}; privacy spent: {merged.privacy_spent}")
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
