#!/usr/bin/env python3
"""Exact top-10 by inner product over a large item matrix: Chorus's `ExactTopK` (the candidate
scan of factor agents) against faiss's IndexFlatIP, same data, same thread count, same run
(issue 16). Also a streaming read of the matrix: the memory-bandwidth floor of one scan.

    python3 bench/topk/run.py [--items 1000000] [--dim 64] [--batch 256] [--threads 2] [--no-write] [--not-for-the-record]

Data: item and query vectors drawn from a seeded standard normal (float32), written once to raw
files both sides read. Chorus: `chorus-bench topk` (release build). faiss: faiss-cpu from PyPI
(bench/setup.sh), `faiss.omp_set_num_threads(threads)`, its default settings otherwise. Single
queries: each of `--singles` queries searched alone (p50); batch: the first `--batch` queries in
one call (best of `--repeats`). Agreement: the share of faiss's batch top-10 ids that Chorus also
returns (both are exact; rounding can swap near-ties).

Writes bench/topk/results.md and results.json (refused from a dirty tree: bench/common.py); `--render [OUT]`
re-renders results.md from results.json without running anything.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import common  # noqa: E402

BENCH = os.path.join(common.REPO, ".build", "release", "chorus-bench")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--singles", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    common.add_record_flag(ap)
    common.add_render_flags(ap)
    args = ap.parse_args()
    if args.render:
        return common.render_mode(args, HERE, render)

    import faiss
    import numpy as np

    prov = common.Provenance([BENCH])
    if not args.no_write:
        prov.check_record(args.not_for_the_record)
    rng = np.random.default_rng(42)
    items = rng.standard_normal((args.items, args.dim), dtype=np.float32)
    nq = max(args.batch, args.singles)
    queries = rng.standard_normal((nq, args.dim), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        ip, qp, op = (os.path.join(tmp, n) for n in ("items.f32", "queries.f32", "ids.i32"))
        items.tofile(ip)
        queries.tofile(qp)
        cmd = [BENCH, "topk", "--items", ip, "--queries", qp, "--dim", str(args.dim), "--k", str(args.k),
               "--threads", str(args.threads), "--singles", str(args.singles), "--batch", str(args.batch),
               "--repeats", str(args.repeats), "--out", op]
        chorus = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        chorus_ids = np.fromfile(op, dtype=np.int32).reshape(args.batch, args.k)

    faiss.omp_set_num_threads(args.threads)
    index = faiss.IndexFlatIP(args.dim)
    index.add(items)
    singles = []
    for i in range(args.singles):
        t = time.perf_counter()
        index.search(queries[i:i + 1], args.k)
        singles.append(time.perf_counter() - t)
    best = float("inf")
    for _ in range(args.repeats):
        t = time.perf_counter()
        _, faiss_ids = index.search(queries[:args.batch], args.k)
        best = min(best, time.perf_counter() - t)
    agree = float(np.mean([len(set(a) & set(b)) / args.k for a, b in zip(chorus_ids, faiss_ids)]))
    faiss_row = {"version": faiss.__version__, "single_p50_ms": float(np.median(singles)) * 1e3,
                 "single_min_ms": float(np.min(singles)) * 1e3, "batch_best_ms": best * 1e3}
    settings = {k: v for k, v in vars(args).items() if k not in ("render", "render_from", "json_out")}
    result = {"benchmark": "topk", "settings": settings, "chorus": chorus, "faiss": faiss_row,
              "agreement": agree, "provenance": prov.finish().as_dict()}
    print(json.dumps(result, indent=2, default=str))
    common.write_results(HERE, result, render, indent=2, json_out=args.json_out, write=not args.no_write)


def render(r):
    c, f, s = r["chorus"], r["faiss"], r["settings"]
    bytes_ = s["items"] * s["dim"] * 4
    L = ["# Exact top-k by inner product: Chorus ExactTopK against faiss IndexFlatIP", "",
         "Recorded by `bench/topk/run.py`; do not edit by hand (rerun it).", ""]
    L += common.provenance_banner(r.get("provenance")) + [""]
    L += [f"{s['items']:,} items x {s['dim']} float32 ({bytes_ / 2**20:.0f} MiB), top {s['k']}, {s['threads']} threads, faiss {f['version']}.",
          f"Streaming read of the matrix (the floor of one scan): {c['read_best_ms']:.1f} ms ({c['read_gb_per_s']:.1f} GB/s).", "",
          "| | Chorus (ms) | faiss (ms) | Chorus / faiss |", "| --- | --- | --- | --- |",
          f"| one query, p50 of {s['singles']} | {c['single_p50_ms']:.2f} | {f['single_p50_ms']:.2f} | {c['single_p50_ms'] / f['single_p50_ms']:.2f}x |",
          f"| {s['batch']} queries in one call, best of {s['repeats']} | {c['batch_best_ms']:.1f} | {f['batch_best_ms']:.1f} | {c['batch_best_ms'] / f['batch_best_ms']:.2f}x |",
          "", f"Agreement of the batch's top {s['k']} ids: {r['agreement']:.4f} (both exact; rounding may swap near-ties).", ""]
    return "\n".join(L)


if __name__ == "__main__":
    main()
