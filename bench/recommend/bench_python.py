#!/usr/bin/env python3
"""Recommend latency and throughput through the Python binding (bindings/python, `import chorus`):
the Python-side twin of bench_recommend.c, on the same data with the same fit (defaults).

    PYTHONPATH=bindings/python python3 bench/recommend/bench_python.py [--passes N] [--users N] [--json] ratings.csv

- single-user latency, k = 10, seen excluded, `engine.recommend(user_id)`: every user once after
  a warm-up pass, blend and agent "als" alone (p50 / p90 / p99 / max, microseconds);
- batch throughput: `engine.recommend(all_users)` in one call, best of 5 (users/s).
Prints markdown tables, or with --json one JSON object (bench/recommend/run.sh records it in results.json,
and bench/recommend/report.py renders it into results.md). --users N measures the first N users only (a
quick check, not a record).
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import common  # noqa: E402
sys.path.insert(0, HERE)
import report  # noqa: E402  (the Python section of results.md)

sys.path.insert(0, os.path.join(common.REPO, "bindings", "python"))
import numpy as np  # noqa: E402
import chorus  # noqa: E402


def percentile(sorted_values, q):
    """Nearest rank, as bench_recommend.c."""
    n = len(sorted_values)
    rank = min(n, max(1, int(q * n + 0.999999)))
    return sorted_values[rank - 1]


def single_user(engine, users, passes, agent):
    for u in users:  # warm-up pass
        engine.recommend(int(u), k=10, agent=agent)
    lat = []
    for _ in range(passes):
        for u in users:
            u = int(u)
            t = time.perf_counter()
            engine.recommend(u, k=10, agent=agent)
            lat.append((time.perf_counter() - t) * 1e6)
    lat.sort()
    return {"n": len(lat), "p50": percentile(lat, 0.5), "p90": percentile(lat, 0.9),
            "p99": percentile(lat, 0.99), "max": lat[-1], "mean": sum(lat) / len(lat)}


def batch(engine, users, agent, rounds=5):
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        ids, _scores = engine.recommend(users, k=10, agent=agent)
        best = min(best, time.perf_counter() - t)
    assert ids.shape == (len(users), 10)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ratings", nargs="?", default=os.path.join(common.DEFAULT_DATA, "ml-latest-small", "ratings.csv"))
    ap.add_argument("--passes", type=int, default=1)
    ap.add_argument("--users", type=int, default=0, help="measure the first N distinct users only (0: all)")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of markdown")
    args = ap.parse_args()

    users, items, ratings, times = common.load_ratings(args.ratings)
    distinct = np.unique(users)
    if args.users > 0:
        distinct = distinct[:args.users]
    out = {"passes": args.passes, "measured_users": int(len(distinct)), "latency": {}, "batch_s": {}}
    with chorus.Engine() as engine:
        engine.add_interactions(users, items, ratings, times)
        t = time.perf_counter()
        engine.fit()
        out["fit_s"] = time.perf_counter() - t
        out["binding"] = os.path.relpath(os.path.dirname(chorus.__file__), common.REPO)
        out["library"] = chorus.library_version()
        out["library_path"] = os.path.relpath(chorus.library_path(), common.REPO)
        for name, agent in (("blend", None), ("als", "als")):
            out["latency"][name] = single_user(engine, distinct, args.passes, agent)
        for name, agent in (("blend", None), ("als", "als")):
            out["batch_s"][name] = batch(engine, distinct, agent)
    if args.json:
        print(json.dumps(out))
    else:
        print("\n".join(report.python_section(out)))


if __name__ == "__main__":
    main()
