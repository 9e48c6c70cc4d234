#!/usr/bin/env python3
"""ALS fit benchmark: Chorus's ImplicitALS against implicit's AlternatingLeastSquares (CPU,
conjugate gradient), same data, same split, same objective, measured in the same run.

    python3 bench/als/run.py [--data DIR] [--repeat 3] [--seeds 20] [--threads 2] [--no-write]

Round r (r = 0 .. max(repeat, seeds) - 1) fits implicit, then Chorus (chorus-bench als, one warm-up
fit, then one timed fit), both with seed + r; the two libraries alternate, so background load
hits both alike. Fit time: median over rounds. NDCG@10: each round's factors scored by the same
Python code, mean over rounds (a single seed's NDCG moves by about +-3% on this data).

Writes bench/als/results.md and bench/als/results.json (unless --no-write); `--render [OUT]` re-renders
results.md from results.json without running anything. See bench/README.md.
"""

import os

# implicit's documented best setting: OpenBLAS's own thread pool off (implicit warns otherwise).
# Set before numpy loads OpenBLAS. An explicit value in the environment wins.
if "OPENBLAS_NUM_THREADS" not in os.environ:
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ["_BENCH_SET_OPENBLAS_NUM_THREADS"] = "1"

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import common  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import threadpoolctl  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=common.DEFAULT_DATA, help="folder holding ml-latest-small/ (default %(default)s)")
    ap.add_argument("--dataset", default="ml-latest-small")
    ap.add_argument("--repeat", type=int, default=3, help="timed rounds, at least (median fit time reported)")
    ap.add_argument("--seeds", type=int, default=20,
                    help="NDCG@10 is the mean over this many seeds (seed, seed+1, ...); rounds = max(repeat, seeds), "
                         "each round fits both libraries once, timed (default %(default)s)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--regularization", type=float, default=0.01)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--chorus-bench", default=os.path.join(common.REPO, ".build", "release", "chorus-bench"))
    ap.add_argument("--chorus-openblas-threads", default="unset",
                    help="OPENBLAS_NUM_THREADS for the chorus-bench process; 'unset' (the default) runs Chorus "
                         "as a host would, with OpenBLAS's own default. Chorus calls BLAS only for the f x f "
                         "Gram matrix once per half-sweep (default %(default)s)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not rewrite results.md/json")
    common.add_record_flag(ap)
    common.add_render_flags(ap)
    return ap.parse_args()


def split_data(args):
    path = os.path.join(args.data, args.dataset, "ratings.csv")
    if not os.path.exists(path):
        sys.exit(f"run.py: {path} not found (pass --data DIR, the folder that holds {args.dataset}/)")
    users, items, ratings, times = common.load_ratings(path)
    held = common.temporal_holdout(users, times, fraction=args.test_fraction)
    return path, users, items, ratings, held


def dense_ids(values):
    """Dense indices in order of first appearance (as chorus-bench assigns them)."""
    index = {}
    out = np.empty(len(values), dtype=np.int64)
    for r, v in enumerate(values.tolist()):
        out[r] = index.setdefault(v, len(index))
    ids = np.empty(len(index), dtype=np.int64)
    for v, i in index.items():
        ids[i] = v
    return out, ids


def fit_implicit(C, args, seed):
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(factors=args.factors, regularization=args.regularization, alpha=1.0,
                                    iterations=args.iterations, num_threads=args.threads,
                                    random_state=seed, calculate_training_loss=False)
    t = time.perf_counter()  # CLOCK_MONOTONIC on Linux
    model.fit(C, show_progress=False)
    elapsed = time.perf_counter() - t
    return elapsed, np.asarray(model.user_factors), np.asarray(model.item_factors), model.use_cg


def run_chorus(train_csv, test_csv, out_dir, args, seed):
    cmd = [args.chorus_bench, "als", "--train", train_csv, "--test", test_csv, "--out-dir", out_dir,
           "--factors", str(args.factors), "--iterations", str(args.iterations),
           "--regularization", str(args.regularization), "--alpha", str(args.alpha),
           "--threads", str(args.threads), "--seed", str(seed), "--warmup", "1", "--repeat", "1"]
    env = dict(os.environ)
    env.pop("_BENCH_SET_OPENBLAS_NUM_THREADS", None)
    if args.chorus_openblas_threads == "unset":
        env.pop("OPENBLAS_NUM_THREADS", None)  # Chorus as a host would run it
    else:
        env["OPENBLAS_NUM_THREADS"] = args.chorus_openblas_threads
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"run.py: chorus-bench failed ({out.returncode}):\n{out.stderr}")
    report = json.loads(out.stdout)
    nu, ni = report["users"], report["items"]
    U = np.fromfile(os.path.join(out_dir, "user_factors.f32"), dtype="<f4").reshape(nu, args.factors)
    V = np.fromfile(os.path.join(out_dir, "item_factors.f32"), dtype="<f4").reshape(ni, args.factors)
    uids = np.loadtxt(os.path.join(out_dir, "user_ids.txt"), dtype=np.int64, ndmin=1)
    iids = np.loadtxt(os.path.join(out_dir, "item_ids.txt"), dtype=np.int64, ndmin=1)
    return report, U, V, uids, iids, cmd


def chorus_split(path, args, tmp):
    """The row numbers TemporalHoldOut.split (the library's own code) holds out."""
    out = os.path.join(tmp, "held.txt")
    res = subprocess.run([args.chorus_bench, "holdout", "--ratings", path, "--fraction", str(args.test_fraction),
                          "--out", out], capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"run.py: chorus-bench holdout failed ({res.returncode}):\n{res.stderr}")
    return np.loadtxt(out, dtype=np.int64, ndmin=1)


def reorder(factors, their_ids, our_ids):
    pos = {int(v): i for i, v in enumerate(their_ids.tolist())}
    return factors[[pos[int(v)] for v in our_ids.tolist()]]


def main():
    args = parse_args()
    if args.render:
        return common.render_mode(args, HERE, render_md)
    if not os.access(args.chorus_bench, os.X_OK):
        sys.exit(f"run.py: {args.chorus_bench} not found; build it with "
                 "swift build -c release -Xswiftc -static-stdlib --product chorus-bench")
    facts = common.machine_facts()
    prov = common.Provenance([args.chorus_bench])
    if not args.no_write:
        prov.check_record(args.not_for_the_record)
    import implicit

    path, users, items, ratings, held = split_data(args)
    tr = ~held
    u_tr, i_tr, w_tr = users[tr], items[tr], ratings[tr]
    u_dense, user_ids = dense_ids(u_tr)
    i_dense, item_ids = dense_ids(i_tr)
    n_users, n_items = len(user_ids), len(item_ids)
    W = sp.csr_matrix((w_tr, (u_dense, i_dense)), shape=(n_users, n_items), dtype=np.float32)
    # implicit uses its (alpha-scaled) input as c_ui directly; Chorus uses c_ui = 1 + alpha * w_ui.
    # Feeding implicit C = 1 + alpha * w with its alpha = 1 gives both the same objective.
    C = W.copy()
    C.data = (1.0 + args.alpha * C.data).astype(np.float32)
    user_pos = {int(u): i for i, u in enumerate(user_ids.tolist())}
    relevant = {}
    for u, i in zip(users[held].tolist(), items[held].tolist()):
        relevant.setdefault(user_pos[u], set()).add(int(i))

    print(f"data: {path}: {len(users)} ratings; train {tr.sum()} ({n_users} users x {n_items} items), "
          f"test {held.sum()} ({len(relevant)} users)", flush=True)

    rounds = max(args.repeat, args.seeds)
    load_before = os.getloadavg()
    imp_times, cho_times, imp_ndcg, cho_ndcg, swift_ndcg = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="chorus-bench-als-") as tmp:
        train_csv, test_csv = os.path.join(tmp, "train.csv"), os.path.join(tmp, "test.csv")
        with open(train_csv, "w") as f:
            f.write("user,item,weight\n")
            f.writelines(f"{u},{i},{w:g}\n" for u, i, w in zip(u_tr.tolist(), i_tr.tolist(), w_tr.tolist()))
        with open(test_csv, "w") as f:
            f.write("user,item\n")
            f.writelines(f"{u},{i}\n" for u, i in zip(users[held].tolist(), items[held].tolist()))

        split_ok = bool(np.array_equal(np.flatnonzero(held), chorus_split(path, args, tmp)))
        print(f"split identical to the library's TemporalHoldOut.split: {split_ok}", flush=True)
        fit_implicit(C, args, args.seed)  # warm-up (imports, first-touch allocations); not timed
        pools = threadpoolctl.threadpool_info()  # every BLAS implicit's fit loaded
        print(f"{rounds} rounds (implicit {implicit.__version__}, then Chorus, seed {args.seed} + round):", flush=True)
        for r in range(rounds):
            seed = args.seed + r
            t_imp, iU, iV, use_cg = fit_implicit(C, args, seed)
            report, cU, cV, c_uids, c_iids, chorus_cmd = run_chorus(train_csv, test_csv, tmp, args, seed)
            cU = reorder(cU, c_uids, user_ids)
            cV = reorder(cV, c_iids, item_ids)
            imp_times.append(t_imp)
            cho_times.append(report["fit_seconds"][0])
            imp_ndcg.append(common.ndcg_at_k(iU, iV, item_ids, W, relevant, k=10))
            cho_ndcg.append(common.ndcg_at_k(cU, cV, item_ids, W, relevant, k=10))
            swift_ndcg.append(report.get("ndcg_at_k"))
            print(f"  round {r} seed {seed}: implicit {t_imp:.3f}s NDCG {imp_ndcg[-1]:.4f} | "
                  f"chorus {cho_times[-1]:.3f}s NDCG {cho_ndcg[-1]:.4f} (Swift {swift_ndcg[-1]:.4f})", flush=True)
    load_after = os.getloadavg()

    imp_med, cho_med = statistics.median(imp_times), statistics.median(cho_times)
    ratio = cho_med / imp_med
    ratio_min = min(cho_times) / min(imp_times)
    ratio_paired = statistics.median(c / i for c, i in zip(cho_times, imp_times))
    ndcg_imp, ndcg_cho = statistics.mean(imp_ndcg), statistics.mean(cho_ndcg)
    sd = (lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0)
    ndcg_rel = (ndcg_cho - ndcg_imp) / ndcg_imp
    cross = max(abs(a - b) for a, b in zip(swift_ndcg, cho_ndcg))
    checks = {
        "time_ratio_le_1": ratio <= 1.0,
        "ndcg_within_2pct": abs(ndcg_rel) <= 0.02,
        "swift_python_ndcg_agree": cross <= 1e-4,
        "split_matches_TemporalHoldOut_swift": split_ok,
    }
    chorus_cmd = [a if a != tmp else "$TMP" for a in chorus_cmd]
    chorus_cmd = [a.replace(tmp, "$TMP") for a in chorus_cmd]
    chorus_cmd[0] = os.path.relpath(chorus_cmd[0], common.REPO)
    chorus_cmd[chorus_cmd.index("--seed") + 1] = f"{args.seed}+r"

    result = {
        "benchmark": "als-fit",
        "command": common.command_line(),
        "machine": dict(facts, loadavg_before=load_before, loadavg_after=load_after),
        "data": {"path": os.path.relpath(path, common.REPO), "sha256": common.sha256(path),
                 "ratings": int(len(users)), "train": int(tr.sum()), "test": int(held.sum()),
                 "users": n_users, "items": n_items, "test_users": len(relevant)},
        "settings": {"factors": args.factors, "iterations": args.iterations, "regularization": args.regularization,
                     "alpha": args.alpha, "threads": args.threads, "seed": args.seed, "rounds": rounds,
                     "repeat": args.repeat, "seeds": args.seeds,
                     "test_fraction": args.test_fraction, "implicit_use_cg": bool(use_cg),
                     "implicit_input": "C = 1 + alpha * rating (implicit alpha = 1.0)",
                     "chorus_input": "w = rating (c = 1 + alpha * w inside ImplicitALS)",
                     "python_OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
                     "chorus_OPENBLAS_NUM_THREADS": args.chorus_openblas_threads},
        "versions": {"implicit": implicit.__version__, "numpy": np.__version__, "scipy": scipy.__version__},
        "threadpoolctl": pools,
        "implicit": {"fit_seconds": imp_times, "median_seconds": imp_med,
                     "ndcg_at_10_per_seed": imp_ndcg, "ndcg_at_10": ndcg_imp, "ndcg_at_10_sd": sd(imp_ndcg)},
        "chorus": {"fit_seconds": cho_times, "median_seconds": cho_med,
                   "ndcg_at_10_per_seed": cho_ndcg, "ndcg_at_10": ndcg_cho, "ndcg_at_10_sd": sd(cho_ndcg),
                   "ndcg_at_10_swift_per_seed": swift_ndcg, "command": " ".join(chorus_cmd)},
        "ratio_chorus_over_implicit": ratio,
        "ratio_of_minimums": ratio_min,
        "ratio_median_of_rounds": ratio_paired,
        "ndcg_relative_difference": ndcg_rel,
        "swift_python_ndcg_max_difference": cross,
        "checks": checks,
        "provenance": prov.finish().as_dict(),
    }

    table = result_table(result)
    print()
    print("\n".join(table))
    print(f"\nratio chorus/implicit (median fit time): {ratio:.3f}  (target <= 1.0: {'ok' if checks['time_ratio_le_1'] else 'MISSED'})")
    print(f"  (secondary: ratio of fastest fits {ratio_min:.3f}; median of per-round ratios {ratio_paired:.3f})")
    print(f"NDCG@10 relative difference: {100 * ndcg_rel:+.2f}%  (target within 2%: {'ok' if checks['ndcg_within_2pct'] else 'MISSED'})")
    print(f"Chorus NDCG@10 cross-check, Swift RankingMetrics vs Python: max difference {cross:.2e}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")

    print()
    common.write_results(HERE, result, render_md, indent=2, json_out=args.json_out, write=not args.no_write)


def result_table(r):
    """The result table, from the results JSON alone (printed, and the head of results.md)."""
    rounds = r["settings"]["rounds"]
    fmt = (lambda side: f"{min(side['fit_seconds']):.3f} / {side['median_seconds']:.3f} / {max(side['fit_seconds']):.3f}")
    i, c = r["implicit"], r["chorus"]
    return [
        f"| library | fit time min / median / max (s), {rounds} rounds | NDCG@10 mean +- sd over {rounds} seeds |",
        "| --- | --- | --- |",
        f"| implicit {r['versions']['implicit']} (CPU, CG) | {fmt(i)} | {i['ndcg_at_10']:.4f} +- {i['ndcg_at_10_sd']:.4f} |",
        f"| Chorus ImplicitALS | {fmt(c)} | {c['ndcg_at_10']:.4f} +- {c['ndcg_at_10_sd']:.4f} |",
    ]


def render_md(r):
    """results.md from the results JSON alone (`--render` re-renders the committed one)."""
    m, s, d = r["machine"], r["settings"], r["data"]
    table = result_table(r)
    pools = "\n".join(
        f"| {p.get('user_api')} | {p.get('internal_api')} | {p.get('num_threads')} | {p.get('version')} | "
        f"{p.get('threading_layer', '')} | `{os.path.basename(p.get('filepath', ''))}` |" for p in r["threadpoolctl"])
    return f"""# ALS fit: Chorus vs implicit

Recorded by `bench/als/run.py`; do not edit by hand (rerun it).

{chr(10).join(common.provenance_banner(r.get('provenance')))}

## Result

{chr(10).join(table)}

- **Fit-time ratio Chorus / implicit (medians): {r['ratio_chorus_over_implicit']:.3f}** (target <= 1.0: {'met' if r['checks']['time_ratio_le_1'] else 'missed'})
  - secondary, less sensitive to background load: ratio of the fastest fits {r['ratio_of_minimums']:.3f};
    median of the per-round ratios {r['ratio_median_of_rounds']:.3f}.
- **NDCG@10 Chorus vs implicit: {100 * r['ndcg_relative_difference']:+.2f}%** (target within 2%: {'met' if r['checks']['ndcg_within_2pct'] else 'missed'})
- Chorus's NDCG@10 was computed twice per round, by the Python code that scores implicit and by Swift
  (`chorus-bench als --test`, ChorusEval `RankingMetrics.ndcg`): largest difference {r['swift_python_ndcg_max_difference']:.1e}.
- Per round (seed {s['seed']} + r): implicit {', '.join(f'{t:.3f}' for t in r['implicit']['fit_seconds'])} s;
  Chorus {', '.join(f'{t:.3f}' for t in r['chorus']['fit_seconds'])} s.
  NDCG@10 implicit {', '.join(f'{x:.4f}' for x in r['implicit']['ndcg_at_10_per_seed'])};
  Chorus {', '.join(f'{x:.4f}' for x in r['chorus']['ndcg_at_10_per_seed'])}.
- Load average (1 min) before / after the run: {m['loadavg_before'][0]:.2f} / {m['loadavg_after'][0]:.2f}.

## Reproduce

```
{r['command']}
```

(from the repository root, after `bench/setup.sh` and
`swift build -c release -Xswiftc -static-stdlib --product chorus-bench`). The Chorus side ran, once per round r, as:

```
{'' if s['chorus_OPENBLAS_NUM_THREADS'] == 'unset' else 'OPENBLAS_NUM_THREADS=' + s['chorus_OPENBLAS_NUM_THREADS'] + ' '}{r['chorus']['command']}
```

## Machine

- date: {m['date']}
- nproc: {m['nproc']}; CPU: {m['cpu_model']}; memory: {m['memory_gib']} GiB; kernel {m['kernel']}
- {m['swift']}; Python {m['python']}; implicit {r['versions']['implicit']}, numpy {r['versions']['numpy']}, scipy {r['versions']['scipy']}
- repository revision: {m['git_revision']}

## Settings

- data: `{d['path']}` (sha256 `{d['sha256'][:16]}…`), {d['ratings']} ratings
- split: per-user temporal hold-out (Sources/ChorusCore/TemporalHoldOut.swift's rule, re-implemented in
  bench/common.py; identical row for row to the library's own `TemporalHoldOut.split`, run through
  `chorus-bench holdout`: {r['checks']['split_matches_TemporalHoldOut_swift']}): each user's latest
  {int(100 * s['test_fraction'])}% of ratings (by timestamp, ties by file order) to test, at least one kept in train,
  users with < 3 ratings all train. Train {d['train']} ratings ({d['users']} users x {d['items']} items);
  test {d['test']} ratings over {d['test_users']} users.
- model: {s['factors']} factors, {s['iterations']} iterations, regularization {s['regularization']},
  alpha {s['alpha']}, {s['threads']} threads, seed {s['seed']}; implicit `use_cg={s['implicit_use_cg']}` (its default,
  3 CG steps), Chorus 3 CG steps (its default). Both start from uniform [0, 0.01) factors (different generators).
- confidence: Chorus uses Hu et al.'s c_ui = 1 + alpha * w_ui with w = the rating; implicit multiplies its
  input by its alpha and uses the result as c_ui directly. implicit was therefore given C = 1 + alpha * rating
  with its own alpha = 1.0, so both minimise the same objective.
- timing: {s['rounds']} rounds in one run; each round fits implicit, then Chorus, with seed {s['seed']} + round, so the
  libraries alternate and background load hits both alike; median over rounds reported. One untimed warm-up
  fit each (implicit once per run, in-process; chorus-bench `--warmup 1` per round, as it is a fresh process).
  CLOCK_MONOTONIC (`time.perf_counter` / `clock_gettime`). Timed: the fit call only. implicit's includes
  its transpose to CSC-as-CSR and factor initialisation; Chorus's includes its confidence transform,
  transpose and initialisation. Building the input matrix (both) is not timed.
- BLAS threads: the Python process (implicit) ran with OPENBLAS_NUM_THREADS={s['python_OPENBLAS_NUM_THREADS']}, implicit's
  documented best setting (it warns otherwise); chorus-bench ran with OPENBLAS_NUM_THREADS {'unset (OpenBLAS default, as a host would run it)' if s['chorus_OPENBLAS_NUM_THREADS'] == 'unset' else '= ' + s['chorus_OPENBLAS_NUM_THREADS']}
  (Chorus uses BLAS only for the f x f Gram matrix, once per half-sweep; a check run showed no measurable
  difference between unset and 1).
- metric: NDCG@10, binary relevance (relevant = all of the user's held-out items), log2 discount, ideal over
  min(10, |relevant|), each user's train items excluded from the ranking, mean over the {d['test_users']} test users;
  the same Python function scores both models' factors; reported as the mean (+- sd) over the {s['rounds']} seeds, since
  one seed's NDCG moves by a few percent on this data.

threadpoolctl in the Python process (after implicit's warm-up fit):

| user_api | internal_api | num_threads | version | threading_layer | library |
| --- | --- | --- | --- | --- | --- |
{pools}
"""


if __name__ == "__main__":
    main()
