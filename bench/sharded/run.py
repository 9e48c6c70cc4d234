#!/usr/bin/env python3
"""Sharded training on Spark (chorus.spark.train_sharded): the merged model's NDCG@10 against the
single-machine fit for 2, 4 and 8 shards, its accuracy under differential privacy at eps in
{1, 4, 8, inf}, and Spark MLlib's ALS (implicitPrefs) on the same data, MovieLens ml-100k and
ml-latest-small (issue 19).

    python3 bench/sharded/run.py [--data DIR] [--datasets ml-100k,ml-latest-small] [--shards 2,4,8]
        [--rounds 3] [--epsilons 1,4,8,inf] [--privacy-shards 4] [--clip 0.5] [--no-mllib]
        [--mllib-regs 0.001,0.01,0.1,1,10] [--mllib-alphas 1,10,40] [--no-write] [--not-for-the-record]

Split: the per-user temporal split of `chorus eval` (ChorusEval.TemporalSplit, fraction 0.2): each
user's latest 20% of ratings (at least 1, users with fewer than 2 ratings stay whole in train) held
out, held-out pairs also in train dropped; every held-out item is relevant (no rating threshold);
ratings are the weights. NDCG@10 as ChorusEval's Metrics (binary, log2 discount, ideal over
min(10, |relevant|), each user's training items excluded), over every user with a held-out item.

- single: `Engine.fit()` on the whole training split on the driver (default parameters: every
  collaborative agent; 2 threads).
- sharded: `train_sharded(spark, train, n, rounds)` on `local[2]` (two tasks at a time, 1 thread
  each), the same fit parameters per shard, users hashed to shards.
- private: `--privacy-shards` shards, `--rounds` rounds, agents ALS (and popularity, always
  trained), each merge clipping users' contributions to `--clip` and adding Gaussian noise with the
  noise multiplier that makes the accountant's epsilon after all rounds the target (delta 1e-5).
  NDCG@10 of the blend and of the ALS agent alone (the part the privacy covers: popularity is
  rebuilt from the union of the shards' rows, not privatised).
- MLlib: `pyspark.ml.recommendation.ALS(implicitPrefs=True)`, rank 64 and 15 iterations as Chorus's
  ALS, tuned as the house rule asks (every choice on validation, test once): regParam x alpha over
  the grid (MLlib scales regParam by each row's count, hence the wide range) chosen by NDCG@10 on a
  validation split made from the training split alone (the same per-user temporal hold-out applied
  to train: each user's latest 20% of training rows), then refit on the whole training split with
  the chosen setting and scored once on test. Scored with the (validation-)training items masked.
  Its fit time is the final Spark job's.

Writes bench/sharded/results.md and results.json (refused from a dirty tree: bench/common.py).
"""

import argparse
import glob
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import common  # noqa: E402

LIB = os.path.join(common.REPO, ".build", "release", "libchorus.so")
BINDING = os.path.join(common.REPO, "bindings", "python")
K = 10
DELTA = 1e-5


def load(data_dir, name):
    import numpy as np
    if name == "ml-100k":
        a = np.loadtxt(os.path.join(data_dir, name, "u.data"), dtype=np.int64)
        return a[:, 0], a[:, 1], a[:, 2].astype(np.float32), a[:, 3]
    return common.load_ratings(os.path.join(data_dir, name, "ratings.csv"))


def split(u, i, w, t):
    """TemporalSplit.split(fraction: 0.2): (train mask, {user: set(relevant items)})."""
    held = common.temporal_holdout(u, t, fraction=0.2, minimum_rows=2)
    train = ~held
    pairs = set(zip(u[train].tolist(), i[train].tolist()))
    test = {}
    for uu, ii in zip(u[held].tolist(), i[held].tolist()):
        if (uu, ii) not in pairs:
            test.setdefault(uu, set()).add(ii)
    return train, test


def ndcg_of(top_ids, users, test):
    import numpy as np
    disc = 1.0 / np.log2(np.arange(K) + 2.0)
    total = 0.0
    for uu, row in zip(users, top_ids):
        rel = test[uu]
        hits = np.array([int(x) in rel for x in row[:K]], dtype=bool)
        total += float(disc[:len(hits)][hits].sum()) / float(disc[:min(K, len(rel))].sum())
    return total / max(1, len(users))


def engine_ndcg(engine, users, test, agent=None):
    import numpy as np
    ids, _ = engine.recommend(np.array(users, dtype=np.int64), k=K, agent=agent)
    return ndcg_of(ids.tolist(), users, test)


# The accountant, as Sources/ChorusAgents/ShardMerge.swift's PrivacyLedger: Gaussian RDP alpha/(2 sigma^2)
# per round, (eps, delta) by min over the orders of rdp + log(1/delta)/(alpha - 1).
ORDERS = [1 + x / 10 for x in range(1, 101)] + list(range(12, 65)) + [128, 256, 512, 1024]


def epsilon(sigma, rounds, delta=DELTA):
    return min(rounds * a / (2 * sigma * sigma) + math.log(1 / delta) / (a - 1) for a in ORDERS)


def sigma_for(eps, rounds, delta=DELTA):
    lo, hi = 1e-3, 1e4
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if epsilon(mid, rounds, delta) > eps:
            lo = mid
        else:
            hi = mid
    return hi


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=common.DEFAULT_DATA)
    ap.add_argument("--datasets", default="ml-100k,ml-latest-small")
    ap.add_argument("--shards", default="2,4,8")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epsilons", default="1,4,8,inf")
    ap.add_argument("--privacy-shards", type=int, default=4)
    ap.add_argument("--clip", type=float, default=0.5)
    ap.add_argument("--no-mllib", action="store_true")
    ap.add_argument("--mllib-regs", default="0.001,0.01,0.1,1,10")
    ap.add_argument("--mllib-alphas", default="1,10,40")
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
    from chorus.spark import train_sharded
    from pyspark.sql import SparkSession
    chorus.set_progress(False)

    spark = (SparkSession.builder.master("local[2]").appName("bench-sharded")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", "2").config("spark.driver.memory", "2g")
             .config("spark.executorEnv.CHORUS_LIBRARY", chorus.library_path()).getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    shard_counts = [int(x) for x in args.shards.split(",") if x]
    epsilons = [float(x) for x in args.epsilons.split(",") if x]
    datasets = []
    try:
        for name in [d for d in args.datasets.split(",") if d]:
            u, i, w, t = load(args.data, name)
            train, test = split(u, i, w, t)
            users = sorted(test)
            tu, ti, tw, tt = u[train], i[train], w[train], t[train]
            df = spark.createDataFrame([(int(a), int(b), float(c), int(d)) for a, b, c, d in zip(tu, ti, tw, tt)],
                                       "user_id long, item_id long, weight double, timestamp long").cache()
            df.count()
            ds = {"dataset": name, "ratings": int(u.size), "train": int(train.sum()), "test_users": len(users),
                  "users": int(np.unique(u).size), "items": int(np.unique(i).size), "rows": []}

            def record(row):
                row["load_after"] = os.getloadavg()[0]
                ds["rows"].append(row)
                print(json.dumps({"dataset": name, **row}), flush=True)

            before = os.getloadavg()[0]
            t0 = time.perf_counter()
            with chorus.Engine() as single:
                single.add_interactions(tu, ti, tw, tt)
                single.fit(threads=2)
                seconds = time.perf_counter() - t0
                record({"kind": "single", "shards": 1, "rounds": 0, "seconds": seconds, "load_before": before,
                        "ndcg": engine_ndcg(single, users, test), "ndcg_als": engine_ndcg(single, users, test, "als"),
                        "agents": single.agents})
            fit = dict(threads=1)
            for n in shard_counts:
                before = os.getloadavg()[0]
                t0 = time.perf_counter()
                # The merged model after each round of the same run (scored outside the timing).
                per_round = []
                paused = [0.0]

                def on_round(r, e):
                    t1 = time.perf_counter()
                    per_round.append({"round": r, "ndcg": engine_ndcg(e, users, test),
                                      "seconds": t1 - t0 - paused[0]})
                    paused[0] += time.perf_counter() - t1
                with train_sharded(spark, df, n_shards=n, rounds=args.rounds, fit_params=fit, on_round=on_round) as merged:
                    seconds = time.perf_counter() - t0 - paused[0]
                    record({"kind": "sharded", "shards": n, "rounds": args.rounds, "seconds": seconds, "load_before": before,
                            "ndcg": engine_ndcg(merged, users, test), "ndcg_als": engine_ndcg(merged, users, test, "als"),
                            "per_round": per_round, "agents": merged.agents})
            for eps in epsilons:
                before = os.getloadavg()[0]
                privacy = None
                sigma = 0.0
                if math.isfinite(eps):
                    sigma = sigma_for(eps, args.rounds)
                    privacy = dict(noise_multiplier=sigma, clip_norm=args.clip, delta=DELTA)
                t0 = time.perf_counter()
                with train_sharded(spark, df, n_shards=args.privacy_shards, rounds=args.rounds,
                                   fit_params=dict(threads=1, agents=["als"]), privacy=privacy) as merged:
                    seconds = time.perf_counter() - t0
                    spent = merged.privacy_spent
                    record({"kind": "private", "shards": args.privacy_shards, "rounds": args.rounds, "target_epsilon": eps,
                            "noise_multiplier": sigma, "clip": args.clip if privacy else 0.0,
                            "epsilon": spent.epsilon if spent else math.inf, "seconds": seconds, "load_before": before,
                            "ndcg": engine_ndcg(merged, users, test), "ndcg_als": engine_ndcg(merged, users, test, "als")})
            if not args.no_mllib:
                grid = [(float(r), float(a)) for a in args.mllib_alphas.split(",") if a
                        for r in args.mllib_regs.split(",") if r]
                record(mllib_tuned(spark, tu, ti, tw, tt, df, users, test, grid))
            df.unpersist()
            datasets.append(ds)
    finally:
        spark.stop()

    import pyspark
    result = {"benchmark": "sharded", "settings": vars(args), "k": K, "delta": DELTA, "datasets": datasets,
              "pyspark": pyspark.__version__, "java_home": os.environ.get("JAVA_HOME"),
              "provenance": prov.finish().as_dict()}
    common.write_results(HERE, result, render, json_out=args.json_out, write=not args.no_write)


def mllib_tuned(spark, tu, ti, tw, tt, df, users, test, grid):
    """MLlib's setting chosen by NDCG@10 on validation (the temporal hold-out of the training split),
    then refit on the whole training split and scored once on test."""
    vmask, vtest = split(tu, ti, tw, tt)
    vusers = sorted(vtest)
    vdf = spark.createDataFrame([(int(a), int(b), float(c)) for a, b, c in zip(tu[vmask], ti[vmask], tw[vmask])],
                                "user_id long, item_id long, weight double").cache()
    vdf.count()
    points = []
    for reg, alpha in grid:
        r = mllib_score(vdf, vusers, vtest, reg, alpha)
        points.append({"reg": reg, "alpha": alpha, "ndcg": r["ndcg"], "seconds": r["seconds"]})
        print(json.dumps({"mllib_validation": points[-1]}), flush=True)
    vdf.unpersist()
    best = max(points, key=lambda p: p["ndcg"])  # the first of equals, in grid order
    row = mllib_score(df, users, test, best["reg"], best["alpha"])
    return {"kind": "mllib", "reg": best["reg"], "alpha": best["alpha"], "validation_ndcg": best["ndcg"],
            "validation_users": len(vusers), "validation_train": int(vmask.sum()), "grid": points, **row}


def mllib_score(df, users, test, reg, alpha):
    """MLlib ALS fitted on `df`, NDCG@10 on `test` with each user's `df` items masked."""
    import numpy as np
    from pyspark.ml.recommendation import ALS
    before = os.getloadavg()[0]
    t0 = time.perf_counter()
    als = ALS(rank=64, maxIter=15, regParam=reg, alpha=alpha, implicitPrefs=True, seed=42, userCol="user_id",
              itemCol="item_id", ratingCol="weight", coldStartStrategy="drop")
    model = als.fit(df)
    uf = {r.id: np.array(r.features, dtype=np.float32) for r in model.userFactors.collect()}
    seconds = time.perf_counter() - t0
    items = model.itemFactors.collect()
    item_ids = np.array([r.id for r in items], dtype=np.int64)
    Y = np.stack([np.array(r.features, dtype=np.float32) for r in items])
    index = {int(x): j for j, x in enumerate(item_ids)}
    seen = {}
    for r in df.select("user_id", "item_id").collect():
        seen.setdefault(r.user_id, []).append(index[r.item_id])
    tops = []
    for uu in users:
        s = Y @ uf[uu]
        s[seen.get(uu, [])] = -np.inf
        tops.append(item_ids[np.argsort(-s, kind="stable")[:K]].tolist())
    return {"seconds": seconds, "load_before": before, "ndcg": ndcg_of(tops, users, test)}


def render(r):
    L = ["# Sharded training on Spark: merged NDCG@10 against the single fit, privacy, MLlib ALS", "",
         "Recorded by `bench/sharded/run.py`; do not edit by hand (rerun it).", ""]
    L += common.provenance_banner(r.get("provenance")) + [""]
    s = r["settings"]
    L += [f"PySpark {r['pyspark']}, `local[2]` (2 cores shared with other work); the per-user temporal split of "
          f"`chorus eval` (20% held out), NDCG@10 over every user with a held-out item. Sharded: users hashed to "
          f"shards, {s['rounds']} rounds (each shard fits again from the broadcast merged model), default fit "
          f"parameters, 1 thread per task; single: the same fit on the driver with 2 threads. Times are wall "
          "seconds of the whole job (Spark's overhead included).", ""]
    for ds in r["datasets"]:
        rows = ds["rows"]
        single = next(x for x in rows if x["kind"] == "single")
        L += [f"## {ds['dataset']}", "",
              f"{ds['ratings']:,} ratings ({ds['users']:,} users, {ds['items']:,} items); {ds['train']:,} in train, "
              f"{ds['test_users']:,} test users.", "",
              "| model | NDCG@10 | vs single | ALS alone | NDCG@10 after each round | seconds | load |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
        for x in rows:
            load = f"{x['load_before']:.1f}-{x['load_after']:.1f}"
            if x["kind"] == "single":
                L.append(f"| single fit | {x['ndcg']:.4f} | 1.000 | {x['ndcg_als']:.4f} | | {x['seconds']:.1f} | {load} |")
            elif x["kind"] == "sharded":
                rounds = ", ".join(f"{p['ndcg']:.4f}" for p in x["per_round"])
                L.append(f"| {x['shards']} shards x {x['rounds']} rounds | {x['ndcg']:.4f} | {x['ndcg'] / single['ndcg']:.3f} | "
                         f"{x['ndcg_als']:.4f} | {rounds} | {x['seconds']:.1f} | {load} |")
            elif x["kind"] == "mllib" and "grid" in x:
                L.append(f"| Spark MLlib ALS (implicitPrefs, rank 64; regParam {x['reg']:g}, alpha {x['alpha']:g} chosen "
                         f"on validation) | {x['ndcg']:.4f} | {x['ndcg'] / single['ndcg']:.3f} | | | {x['seconds']:.1f} | {load} |")
            elif x["kind"] == "mllib":  # a record from before the tuning: one row per regParam, on test
                L.append(f"| Spark MLlib ALS (implicitPrefs, rank 64, regParam {x['reg']}) | {x['ndcg']:.4f} | "
                         f"{x['ndcg'] / single['ndcg']:.3f} | | | {x['seconds']:.1f} | {load} |")
        for x in rows:
            if x["kind"] == "mllib" and "grid" in x:
                pts = ", ".join(f"{p['reg']:g}/{p['alpha']:g}: {p['ndcg']:.4f}" for p in x["grid"])
                L += ["", f"MLlib's setting was chosen by NDCG@10 on a validation split of the training split alone (each "
                      f"user's latest 20% of training rows: {x['validation_train']:,} rows to fit, {x['validation_users']:,} "
                      f"validation users), then refit on the whole training split and scored once on test. Validation "
                      f"NDCG@10 by regParam/alpha: {pts}."]
        priv = [x for x in rows if x["kind"] == "private"]
        if priv:
            L += ["", f"Differential privacy ({priv[0]['shards']} shards x {priv[0]['rounds']} rounds, agents ALS + "
                  f"popularity; clip C = {s['clip']}, delta = {r['delta']}; epsilon as the merged engine's accountant "
                  "reports it after the last round):", "",
                  "| target epsilon | noise multiplier | epsilon reported | NDCG@10 (blend) | ALS alone | seconds |",
                  "| --- | --- | --- | --- | --- | --- |"]
            for x in priv:
                eps = "inf" if not math.isfinite(x["target_epsilon"]) else f"{x['target_epsilon']:g}"
                rep = "inf (no noise)" if not math.isfinite(x["epsilon"]) else f"{x['epsilon']:.3f}"
                L.append(f"| {eps} | {x['noise_multiplier']:.3f} | {rep} | {x['ndcg']:.4f} | {x['ndcg_als']:.4f} | {x['seconds']:.1f} |")
            L += ["", "The guarantee covers the ALS item-factor sums; popularity (in the blend) is rebuilt from the "
                  "union of the shards' interactions and is not private, so the ALS-alone column is the private model's accuracy."]
        L.append("")
    L += ["```", r["provenance"]["command"] if r.get("provenance") else "", "```", ""]
    return "\n".join(L)


if __name__ == "__main__":
    main()
