#!/usr/bin/env python3
"""Approximate top-10 by inner product over a large item matrix: Chorus's `IVFIndex` against faiss's
IndexIVFFlat (METRIC_INNER_PRODUCT), same data, same nlist and nprobe, same k-means budget, same
thread count, same run (issue 16: an approximate index for catalogues past ~100k items).

    python3 bench/ivf/run.py [--items 1000000] [--dim 64] [--data mixture,normal] [--components 4096]
                             [--sigma 0.7] [--nprobe 1,4,16,64,128] [--sample-per-list 64] [--threads 2]
                             [--no-write] [--not-for-the-record]

Data (seeded, float32), both by default (`--data mixture,normal`): `mixture` draws `--components`
centres from a standard normal and each item and query from a uniformly chosen centre plus
N(0, sigma^2) noise per coordinate; `normal` draws every vector from a standard normal. An inverted file only helps
when the vectors have structure: on the normal data no partition of the space holds a query's top
10 in a few cells, and recall at a given nprobe stays low for any IVF (results.md shows it).

Both indexes: nlist = `--lists` (default round(sqrt(items)), Chorus's default), spherical k-means
(faiss sets `cp.spherical` for inner product; recorded), `--iterations` Lloyd iterations on
`--sample-per-list` x nlist sampled items (faiss: `cp.niter`, `cp.max_points_per_centroid`), seeded.
Build = k-means + assigning and copying every item (faiss: train + add). Single queries: each of
`--singles` queries searched alone (p50); batch: the first `--batch` queries in one call (best of
`--repeats`). Recall@k: the share of the exact top k (faiss IndexFlatIP over the batch queries: an
independent exact search) that each index returns, mean over the batch. Chorus's own exact search
(`ExactTopK`) runs in the same process for the speed-up and its agreement with IndexFlatIP.

Chorus runs twice: with its own copy of the rows laid out by list (as IndexIVFFlat), then sharing
the item matrix (`IVFIndex(sharing:)`, rows read by index: the engine's serving index, which holds
no copy of an agent's item factors); the second's results must equal the first's.

Writes bench/ivf/results.md and results.json, both data sets in one file (refused from a dirty tree:
bench/common.py); `--render [OUT]` re-renders results.md from results.json without running anything.
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


def make_data(args, data, np):
    """(items, queries) float32, seeded."""
    rng = np.random.default_rng(args.seed)
    nq = max(args.batch, args.singles)
    if data == "normal":
        return (rng.standard_normal((args.items, args.dim), dtype=np.float32),
                rng.standard_normal((nq, args.dim), dtype=np.float32))
    centres = rng.standard_normal((args.components, args.dim), dtype=np.float32)

    def draw(n):
        out = np.empty((n, args.dim), dtype=np.float32)
        step = 1 << 18
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            out[lo:hi] = centres[rng.integers(0, args.components, hi - lo)]
            out[lo:hi] += np.float32(args.sigma) * rng.standard_normal((hi - lo, args.dim), dtype=np.float32)
        return out

    return draw(args.items), draw(nq)


def recall(found, exact, k):
    import numpy as np
    return float(np.mean([len(set(a[a >= 0]) & set(b)) / k for a, b in zip(found, exact)]))


def run_one(args, data, nlist, nprobes):
    """One data set: Chorus (chorus-bench ivf) then faiss, on the same files; recall against IndexFlatIP."""
    import faiss
    import numpy as np

    items, queries = make_data(args, data, np)
    with tempfile.TemporaryDirectory() as tmp:
        ip, qp = os.path.join(tmp, "items.f32"), os.path.join(tmp, "queries.f32")
        items.tofile(ip)
        queries.tofile(qp)
        cmd = [BENCH, "ivf", "--items", ip, "--queries", qp, "--dim", str(args.dim), "--k", str(args.k),
               "--threads", str(args.threads), "--lists", str(nlist), "--iterations", str(args.iterations),
               "--sample-per-list", str(args.sample_per_list), "--seed", str(args.seed), "--nprobe", args.nprobe,
               "--singles", str(args.singles), "--batch", str(args.batch), "--repeats", str(args.repeats), "--out-dir", tmp]
        chorus = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        read = lambda name: np.fromfile(os.path.join(tmp, name), dtype=np.int32).reshape(args.batch, args.k)
        chorus_ids = {p: read(f"ivf_nprobe{p}.i32") for p in nprobes}
        chorus_exact = read("exact.i32")
        variants = {}
        for storage in ("shared", "sq8"):
            out_dir = os.path.join(tmp, storage)
            os.mkdir(out_dir)
            cmd[cmd.index("--out-dir") + 1] = out_dir
            v = json.loads(subprocess.run(cmd + ["--storage", storage], check=True, capture_output=True, text=True).stdout)
            v["same_results"] = all(np.array_equal(chorus_ids[p], np.fromfile(os.path.join(out_dir, f"ivf_nprobe{p}.i32"),
                                                                              dtype=np.int32).reshape(args.batch, args.k))
                                    for p in nprobes)
            variants[storage] = v

    faiss.omp_set_num_threads(args.threads)
    flat = faiss.IndexFlatIP(args.dim)
    flat.add(items)
    _, truth = flat.search(queries[:args.batch], args.k)
    del flat

    quantizer = faiss.IndexFlatIP(args.dim)
    index = faiss.IndexIVFFlat(quantizer, args.dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = args.iterations
    index.cp.max_points_per_centroid = args.sample_per_list
    index.cp.min_points_per_centroid = min(index.cp.min_points_per_centroid, args.sample_per_list)
    index.cp.seed = args.seed
    spherical = bool(index.cp.spherical)
    t = time.perf_counter()
    index.train(items)
    index.add(items)
    faiss_build = time.perf_counter() - t
    faiss_rows = []
    for p in nprobes:
        index.nprobe = p
        singles = []
        for i in range(args.singles):
            t = time.perf_counter()
            index.search(queries[i:i + 1], args.k)
            singles.append(time.perf_counter() - t)
        best = float("inf")
        for _ in range(args.repeats):
            t = time.perf_counter()
            _, ids = index.search(queries[:args.batch], args.k)
            best = min(best, time.perf_counter() - t)
        faiss_rows.append({"nprobe": p, "single_p50_ms": float(np.median(singles)) * 1e3,
                           "single_min_ms": float(np.min(singles)) * 1e3, "batch_best_ms": best * 1e3,
                           "recall": recall(ids, truth, args.k)})
    sizes = np.array([index.invlists.list_size(i) for i in range(nlist)])
    for row in chorus["nprobe"]:
        row["recall"] = recall(chorus_ids[row["nprobe"]], truth, args.k)
    faiss_row = {"version": faiss.__version__, "spherical": spherical, "build_s": faiss_build,
                 "list_size_min": int(sizes.min()), "list_size_median": int(np.median(sizes)), "list_size_max": int(sizes.max()),
                 "nprobe": faiss_rows}
    return {"data": data, "chorus": chorus, "chorus_shared": variants["shared"], "chorus_sq8": variants["sq8"], "faiss": faiss_row,
            "exact_agreement": recall(chorus_exact, truth, args.k)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--data", default="mixture,normal", help="data sets, in order: mixture, normal or both")
    ap.add_argument("--components", type=int, default=4096)
    ap.add_argument("--sigma", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--lists", type=int, default=None, help="nlist (default round(sqrt(items)))")
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--sample-per-list", type=int, default=64)
    ap.add_argument("--nprobe", default="1,4,16,64,128")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--singles", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    common.add_record_flag(ap)
    common.add_render_flags(ap)
    args = ap.parse_args()
    if args.render:
        return common.render_mode(args, HERE, render)
    datasets = args.data.split(",")
    for d in datasets:
        if d not in ("mixture", "normal"):
            ap.error(f"--data: unknown data set '{d}' (mixture, normal)")
    nlist = args.lists or max(1, round(args.items ** 0.5))
    nprobes = [int(x) for x in args.nprobe.split(",")]

    prov = common.Provenance([BENCH])
    if not args.no_write:
        prov.check_record(args.not_for_the_record)
    runs = [run_one(args, d, nlist, nprobes) for d in datasets]
    settings = {k: v for k, v in vars(args).items() if k not in ("render", "render_from", "json_out")}
    settings["lists"] = nlist
    result = {"benchmark": "ivf", "settings": settings, "runs": runs, "provenance": prov.finish().as_dict()}
    print(json.dumps(result, indent=2, default=str))
    common.write_results(HERE, result, render, indent=2, json_out=args.json_out, write=not args.no_write)


def render(r):
    s = r["settings"]
    L = ["# Approximate top-k by inner product: Chorus IVFIndex against faiss IndexIVFFlat", "",
         "Recorded by `bench/ivf/run.py`; do not edit by hand (rerun it).", ""]
    L += common.provenance_banner(r.get("provenance")) + [""]
    first = r["runs"][0]["faiss"]
    L += [f"{s['items']:,} items x {s['dim']} float32, seed {s['seed']}; top {s['k']}, {s['threads']} threads, faiss {first['version']}.",
          f"Both indexes: {s['lists']} lists, spherical k-means (faiss `cp.spherical` = {first['spherical']}), {s['iterations']} "
          f"iterations on {s['sample_per_list']} sampled items per list, nprobe as listed. Recall@{s['k']}: the share of the exact "
          f"top {s['k']} (faiss IndexFlatIP) returned, over the batch queries; one query alone: p50 of {s['singles']}; the batch "
          f"in one call: best of {s['repeats']}.", ""]
    for run in r["runs"]:
        c, f = run["chorus"], run["faiss"]
        if run["data"] == "mixture":
            L += [f"## Clustered: a Gaussian mixture ({s['components']} centres ~ N(0, 1), noise sigma {s['sigma']} per coordinate)", ""]
        else:
            L += ["## Unstructured: standard normal vectors", "",
                  "No partition of the space holds a query's top 10 in a few lists here: any IVF needs a large share of the "
                  "lists for good recall (faiss's too). Shown for contrast, not as a target.", ""]
        L += ["| | Chorus | faiss | Chorus / faiss |", "| --- | --- | --- | --- |",
              f"| build (k-means + add), s | {c['build_s']:.2f} | {f['build_s']:.2f} | {c['build_s'] / f['build_s']:.2f}x |",
              f"| list sizes min / median / max | {c['list_size_min']} / {c['list_size_median']} / {c['list_size_max']} | "
              f"{f['list_size_min']} / {f['list_size_median']} / {f['list_size_max']} | |",
              f"| bytes held | {c['bytes'] / 2**20:.0f} MiB | | |", "",
              "| nprobe | Chorus recall | faiss recall | Chorus one query (ms) | faiss one query (ms) | Chorus / faiss | "
              f"Chorus {c['batch']} queries (ms) | faiss {c['batch']} queries (ms) | Chorus / faiss |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for cr, fr in zip(c["nprobe"], f["nprobe"]):
            L.append(f"| {cr['nprobe']} | {cr['recall']:.4f} | {fr['recall']:.4f} | {cr['single_p50_ms']:.3f} | {fr['single_p50_ms']:.3f} | "
                     f"{cr['single_p50_ms'] / fr['single_p50_ms']:.2f}x | {cr['batch_best_ms']:.2f} | {fr['batch_best_ms']:.2f} | "
                     f"{cr['batch_best_ms'] / fr['batch_best_ms']:.2f}x |")
        L += ["", f"Exact search (`ExactTopK`, same process): one query p50 {c['exact_single_p50_ms']:.2f} ms, {c['batch']} queries "
              f"{c['exact_batch_best_ms']:.1f} ms; its top {s['k']} agree with IndexFlatIP's at {run['exact_agreement']:.4f}.", ""]
        for key, what in (("chorus_shared", "Sharing the item matrix instead (`IVFIndex(sharing:)`: rows read by index, no copy)"),
                          ("chorus_sq8", "Sharing it and scanning an 8-bit copy of the rows (`IVFIndex(sharing:quantized: true)`, "
                                         "the engine's serving index: the few items that can be in the top k rescored exactly)")):
            sh = run.get(key)
            if not sh:
                continue
            L += [f"{what}: {sh['bytes'] / 2**20:.0f} MiB held instead of {c['bytes'] / 2**20:.0f}; results "
                  f"{'identical to' if sh['same_results'] else 'DIFFERENT from'} the copy's at every nprobe.", "",
                  f"| nprobe | one query (ms) | one query, copy (ms) | / copy | {c['batch']} queries (ms) | "
                  f"{c['batch']} queries, copy (ms) | / copy |", "| --- | --- | --- | --- | --- | --- | --- |"]
            for sr, cr in zip(sh["nprobe"], c["nprobe"]):
                L.append(f"| {sr['nprobe']} | {sr['single_p50_ms']:.3f} | {cr['single_p50_ms']:.3f} | "
                         f"{sr['single_p50_ms'] / cr['single_p50_ms']:.2f}x | {sr['batch_best_ms']:.2f} | {cr['batch_best_ms']:.2f} | "
                         f"{sr['batch_best_ms'] / cr['batch_best_ms']:.2f}x |")
            L.append("")
    return "\n".join(L)


if __name__ == "__main__":
    main()
