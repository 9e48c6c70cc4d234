#!/usr/bin/env python3
"""Scale on one machine: Chorus's full fit, its stages, peak memory, recommend latency and
throughput, and single-interaction adds, on seeded synthetic implicit data of growing size, each
against implicit's ALS in the same run (issue 16).

    python3 bench/scale/run.py [--sizes 1M,5M,20M] [--threads 2] [--no-write] [--not-for-the-record]

Data (`generate`): users uniform, items Zipf(1.1) over the catalogue (a power law, as real
catalogues have), binary weights, timestamps in order. Sizes: 1M interactions on 50k users x 20k
items, 5M on 250k x 100k, 20M on 1M x 1M. Every measurement runs in a fresh worker process
(`--worker`) so that its peak RSS (getrusage ru_maxrss) is its own:

- chorus-fit: the default `Engine.fit` (every agent, validation, coordinator), time per stage
  from the progress callback; then single-user recommend (blend, seen excluded, k = 10) p50/p99
  over `--calls` users, and batch recommend (users/s);
- chorus-als: the ALS agent alone (`fit(agents=["als"])`: popularity, always trained, and ALS),
  the reference a full fit is compared with;
- implicit-als: implicit.cpu.als.AlternatingLeastSquares, the same factors, regularisation,
  alpha (as implicit's input confidence 1 + alpha * w), iterations and threads, OPENBLAS_NUM_THREADS=1
  (implicit's documented setting); `recommend` single and batch, and `partial_fit_users` for one
  user's new interaction (its incremental update);
- adds: `bench/scale/adds.c` (C ABI) appending one interaction per call to an engine holding the
  size's data: mean and worst microseconds per add.

Writes bench/scale/results.md and results.json (refused from a dirty tree: bench/common.py); `--render [OUT]`
re-renders results.md from results.json without running anything. `--sizes 100k` (5k users x 2k items)
checks the pipeline in seconds; it is not a record.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import common  # noqa: E402

SIZES = {  # interactions: (users, items)
    "100k": (100_000, 5_000, 2_000),  # a small check of the whole pipeline (make bench-check), not a record
    "1M": (1_000_000, 50_000, 20_000),
    "5M": (5_000_000, 250_000, 100_000),
    "20M": (20_000_000, 1_000_000, 1_000_000),
}
LIB = os.path.join(common.REPO, ".build", "release", "libchorus.so")
ADDS_BIN = os.path.join(common.REPO, "build", "bench_scale_adds")


def generate(size, seed=42):
    """(users, items, timestamps) int64 arrays: users uniform, items Zipf(1.1) by rank."""
    import numpy as np

    n, n_users, n_items = SIZES[size]
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, size=n, dtype=np.int64)
    p = 1.0 / np.arange(1, n_items + 1, dtype=np.float64) ** 1.1
    cdf = np.cumsum(p / p.sum())
    items = np.searchsorted(cdf, rng.random(n), side="right").astype(np.int64)
    items = np.minimum(items, n_items - 1)
    # Shuffle the ids so popularity is not the id order.
    perm = rng.permutation(n_items).astype(np.int64)
    items = perm[items]
    timestamps = np.arange(n, dtype=np.int64) + 1_600_000_000
    return users, items, timestamps


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(q * len(s) + 0.999999) - 1))]


def worker(args):
    """One measurement in this process; prints one JSON object."""
    import numpy as np

    t_gen = time.perf_counter()
    users, items, ts = generate(args.size)
    out = {"what": args.worker, "size": args.size, "generate_seconds": time.perf_counter() - t_gen}
    probe_users = np.unique(users)[: args.calls]
    if args.worker in ("chorus-fit", "chorus-als"):
        sys.path.insert(0, os.path.join(common.REPO, "bindings", "python"))
        import chorus

        engine = chorus.Engine(hashing_encoder=True)
        t0 = time.perf_counter()
        engine.add_interactions(users, items, None, ts)
        out["add_seconds"] = time.perf_counter() - t0
        stages, last = [], [time.perf_counter(), None]

        def progress(stage, fraction):
            now = time.perf_counter()
            if stage != last[1]:
                if last[1] is not None:
                    stages.append({"stage": last[1], "seconds": now - last[0]})
                last[0], last[1] = now, stage
            return False

        kw = {"agents": ["als"]} if args.worker == "chorus-als" else {}
        t0 = time.perf_counter()
        engine.fit(factors=args.factors, iterations=args.iterations, regularization=args.regularization,
                   alpha=args.alpha, threads=args.threads, progress=progress, **kw)
        out["fit_seconds"] = time.perf_counter() - t0
        if last[1] is not None:
            stages.append({"stage": last[1], "seconds": time.perf_counter() - last[0]})
        out["stages"] = stages
        out["agents"] = engine.agents
        lat = []
        for u in probe_users[: min(200, len(probe_users))]:  # warm-up
            engine.recommend(int(u), k=10)
        for u in probe_users:
            t = time.perf_counter()
            engine.recommend(int(u), k=10)
            lat.append(time.perf_counter() - t)
        out["recommend_p50_ms"] = 1e3 * percentile(lat, 0.5)
        out["recommend_p99_ms"] = 1e3 * percentile(lat, 0.99)
        out["recommend_calls"] = len(lat)
        batch = probe_users[: min(len(probe_users), 2000)]
        best = min(_timed(lambda: engine.recommend(batch, k=10)) for _ in range(3))
        out["batch_users_per_second"] = len(batch) / best
    elif args.worker == "implicit-als":
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        import implicit
        import scipy.sparse as sp

        n, n_users, n_items = SIZES[args.size]
        m = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=(n_users, n_items))
        m.sum_duplicates()
        m.data = 1 + args.alpha * m.data  # Chorus's confidence, given to implicit as its input
        model = implicit.cpu.als.AlternatingLeastSquares(factors=args.factors, regularization=args.regularization,
                                                         alpha=1.0, iterations=args.iterations, use_cg=True,
                                                         num_threads=args.threads, random_state=42)
        t0 = time.perf_counter()
        model.fit(m, show_progress=False)
        out["fit_seconds"] = time.perf_counter() - t0
        out["version"] = implicit.__version__
        lat = []
        for u in probe_users[:200]:
            model.recommend(int(u), m[int(u)], N=10)
        for u in probe_users:
            t = time.perf_counter()
            model.recommend(int(u), m[int(u)], N=10)
            lat.append(time.perf_counter() - t)
        out["recommend_p50_ms"] = 1e3 * percentile(lat, 0.5)
        out["recommend_p99_ms"] = 1e3 * percentile(lat, 0.99)
        out["recommend_calls"] = len(lat)
        batch = probe_users[: min(len(probe_users), 2000)]
        best = min(_timed(lambda: model.recommend(batch, m[batch], N=10)) for _ in range(3))
        out["batch_users_per_second"] = len(batch) / best
        # One user's new interaction folded in: implicit's incremental update.
        u = int(probe_users[0])
        cols = np.union1d(m[u].indices, [int(items[0])])
        row = sp.csr_matrix((np.full(len(cols), 1 + args.alpha, dtype=np.float32), (np.zeros(len(cols), dtype=np.int64), cols)),
                            shape=(1, n_items))
        pf = []
        for _ in range(50):
            t = time.perf_counter()
            model.partial_fit_users([u], row)
            pf.append(time.perf_counter() - t)
        out["partial_fit_user_p50_ms"] = 1e3 * percentile(pf, 0.5)
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["interaction_array_mib"] = (users.nbytes + items.nbytes + ts.nbytes) / 2**20
    print(json.dumps(out, default=str))


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run_worker(args, what, size):
    env = dict(os.environ, CHORUS_LIBRARY=os.environ.get("CHORUS_LIBRARY", LIB))
    if what == "implicit-als":
        env["OPENBLAS_NUM_THREADS"] = "1"
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", what, "--size", size, "--threads", str(args.threads),
           "--calls", str(args.calls), "--factors", str(args.factors), "--iterations", str(args.iterations),
           "--regularization", str(args.regularization), "--alpha", str(args.alpha)]
    print(f"{size} {what}...", flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return {"what": what, "size": size, "error": r.stderr.strip()[-2000:]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_adds(args, size):
    """--adds single adds after the size's data is held (the C driver, bench/scale/adds.c)."""
    os.makedirs(os.path.dirname(ADDS_BIN), exist_ok=True)  # build/ is not in a fresh clone
    subprocess.run(["cc", "-std=c99", "-O2", "-I" + os.path.join(common.REPO, "include"), os.path.join(HERE, "adds.c"),
                    "-o", ADDS_BIN, "-L" + os.path.dirname(LIB), "-lchorus", "-Wl,-rpath," + os.path.dirname(LIB)], check=True)
    n, n_users, n_items = SIZES[size]
    r = subprocess.run([ADDS_BIN, str(n), str(n_users), str(n_items), str(args.adds)], capture_output=True, text=True)
    if r.returncode != 0:
        return {"error": r.stderr.strip()}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1M,5M,20M")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calls", type=int, default=10_000, help="single-user recommend calls measured (default %(default)s)")
    ap.add_argument("--adds", type=int, default=1_000_000, help="single adds measured (default %(default)s)")
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--regularization", type=float, default=0.01)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--no-write", action="store_true")
    common.add_record_flag(ap)
    common.add_render_flags(ap)
    ap.add_argument("--worker", choices=["chorus-fit", "chorus-als", "implicit-als"], help=argparse.SUPPRESS)
    ap.add_argument("--size", choices=list(SIZES), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    if args.render:
        return common.render_mode(args, HERE, render)
    prov = common.Provenance([LIB])
    if not args.no_write:
        prov.check_record(args.not_for_the_record)
    rows = []
    for size in args.sizes.split(","):
        row = {"size": size, "interactions": SIZES[size][0], "users": SIZES[size][1], "items": SIZES[size][2]}
        for what in ("implicit-als", "chorus-als", "chorus-fit"):
            row[what] = run_worker(args, what, size)
            print(json.dumps(row[what], default=str)[:400], flush=True)
        row["adds"] = run_adds(args, size)
        print(row["adds"], flush=True)
        rows.append(row)
    settings = {k: v for k, v in vars(args).items() if k not in ("render", "render_from", "json_out")}
    result = {"benchmark": "scale", "settings": settings, "rows": rows, "provenance": prov.finish().as_dict()}
    common.write_results(HERE, result, render, indent=2, json_out=args.json_out, write=not args.no_write)


def render(r):
    L = ["# Scale on one machine: Chorus against implicit ALS", "",
         "Recorded by `bench/scale/run.py`; do not edit by hand (rerun it).", ""]
    L += common.provenance_banner(r.get("provenance")) + [""]
    L += ["| size | users x items | implicit ALS fit (s) | Chorus ALS agent fit (s) | Chorus full fit (s) | full fit / implicit | "
          "stages (s) | peak RSS MiB (implicit / Chorus full) | recommend p50 / p99 ms (implicit / Chorus) | batch users/s (implicit / Chorus) | "
          "single add µs mean / worst |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in r["rows"]:
        i, a, c, ad = row["implicit-als"], row["chorus-als"], row["chorus-fit"], row["adds"]
        if any("error" in x for x in (i, a, c)):
            L.append(f"| {row['size']} | error: " + "; ".join(x.get("error", "")[:200] for x in (i, a, c) if "error" in x) + " |")
            continue
        stages = ", ".join(f"{s['stage']} {s['seconds']:.1f}" for s in c["stages"])
        L.append(f"| {row['size']} | {row['users']:,} x {row['items']:,} | {i['fit_seconds']:.1f} | {a['fit_seconds']:.1f} | "
                 f"{c['fit_seconds']:.1f} | **{c['fit_seconds'] / i['fit_seconds']:.1f}x** | {stages} | "
                 f"{i['peak_rss_mib']:.0f} / {c['peak_rss_mib']:.0f} | {i['recommend_p50_ms']:.2f} / {i['recommend_p99_ms']:.2f} — "
                 f"{c['recommend_p50_ms']:.2f} / {c['recommend_p99_ms']:.2f} | {i['batch_users_per_second']:.0f} / "
                 f"{c['batch_users_per_second']:.0f} | {ad.get('mean_us', float('nan')):.2f} / {ad.get('worst_us', float('nan')):.0f} |")
    s = r["settings"]
    L += ["", f"Settings: factors {s['factors']}, iterations {s['iterations']}, regularisation {s['regularization']}, "
          f"alpha {s['alpha']}, {s['threads']} threads; implicit with OPENBLAS_NUM_THREADS=1 (its documented setting), "
          "CG solver, confidence 1 + alpha * w as its input; Chorus with the hashing encoder (no texts). "
          f"Single-user recommend over {s['calls']} users (after 200 warm-up calls), k = 10, seen items excluded; batch: 2,000 users "
          "in one call, best of 3. implicit's `partial_fit_users` for one user's new interaction: "
          + ", ".join(f"{row['size']} {row['implicit-als'].get('partial_fit_user_p50_ms', float('nan')):.2f} ms" for row in r["rows"]) + ".",
          "", "```", r["provenance"]["command"] if r.get("provenance") else "", "```", ""]
    return "\n".join(L)


if __name__ == "__main__":
    main()
