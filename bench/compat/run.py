"""chorus.compat.implicit beside implicit's own ALS, on MovieLens 100k, judged by implicit's own
evaluation (train_test_split, ranking_metrics_at_k) with the same code for both models.

    OPENBLAS_NUM_THREADS=1 CHORUS_LIBRARY=.build/release/libchorus.so PYTHONPATH=bindings/python \\
        python3 bench/compat/run.py [--data ../shared/data] [--threads 2] [--iterations 15] [--no-write]

Writes bench/compat/results.json and results.md rendered from it (refused from a dirty tree:
bench/common.py); --no-write prints the report instead; `--render [OUT]` re-renders results.md from
results.json without running anything.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import common  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=common.DEFAULT_DATA)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--no-write", action="store_true")
    common.add_record_flag(ap)
    common.add_render_flags(ap)
    args = ap.parse_args()
    if args.render:
        return common.render_mode(args, HERE, render)

    import numpy as np
    import scipy.sparse as sp
    import implicit
    from implicit.als import AlternatingLeastSquares as ImplicitALS
    from implicit.evaluation import ranking_metrics_at_k, train_test_split
    from threadpoolctl import threadpool_limits

    import chorus
    from chorus.compat.implicit import AlternatingLeastSquares as ChorusALS

    prov = common.Provenance([chorus.library_path()])
    if not args.no_write:
        prov.check_record(args.not_for_the_record)
    path = os.path.join(args.data, "ml-100k", "u.data")
    raw = np.loadtxt(path, dtype=np.int64)
    users, items, ratings = raw[:, 0] - 1, raw[:, 1] - 1, raw[:, 2].astype(np.float32)
    matrix = sp.csr_matrix((ratings, (users, items)), shape=(users.max() + 1, items.max() + 1))
    train, test = train_test_split(matrix, train_percentage=0.8, random_state=42)
    print(f"ml-100k: {matrix.shape[0]} users x {matrix.shape[1]} items, {train.nnz} train / {test.nnz} test", flush=True)
    kw = dict(factors=args.factors, iterations=args.iterations, regularization=0.01, num_threads=args.threads, random_state=42)
    models = {
        "implicit ALS": lambda: ImplicitALS(**kw),
        "chorus compat, ALS only": lambda: ChorusALS(**kw, agents=["als"]),
        "chorus compat, full blend": lambda: ChorusALS(**kw),
    }
    rows = []
    for name, make in models.items():
        with threadpool_limits(1, "blas"):
            model = make()
            t0 = time.perf_counter()
            model.fit(train, show_progress=False)
            t1 = time.perf_counter()
            m = ranking_metrics_at_k(model, train, test, K=10, show_progress=False)
            t2 = time.perf_counter()
        rows.append({"model": name, "fit_seconds": t1 - t0, "eval_seconds": t2 - t1,
                     **{k: float(m[k]) for k in ("precision", "map", "ndcg", "auc")}})
        print(f"{name}: fit {t1 - t0:.1f} s, ndcg@10 {m['ndcg']:.4f}", flush=True)
    result = {"benchmark": "compat-implicit", "command": common.command_line(), "machine": common.machine_facts(),
              "data": {"path": os.path.relpath(path, common.REPO), "sha256": common.sha256(path),
                       "users": int(matrix.shape[0]), "items": int(matrix.shape[1]), "train": int(train.nnz), "test": int(test.nnz)},
              "settings": {"factors": args.factors, "iterations": args.iterations, "regularization": 0.01,
                           "threads": args.threads, "random_state": 42, "blas_threads": 1, "K": 10},
              "versions": {"implicit": implicit.__version__, "chorus": chorus.library_version(), "numpy": np.__version__},
              "rows": rows, "provenance": prov.finish().as_dict()}
    common.write_results(HERE, result, render, indent=2, json_out=args.json_out, write=not args.no_write)


def render(r):
    """results.md from the results JSON alone (`--render` re-renders the committed one)."""
    s, d, m = r["settings"], r["data"], r["machine"]
    L = ["# chorus.compat.implicit beside implicit's ALS (ml-100k, implicit's own evaluation)", "",
         "Recorded by `bench/compat/run.py`; do not edit by hand (rerun it).", ""]
    L += common.provenance_banner(r["provenance"]) + [""]
    L += [f"`{d['path']}` (sha256 `{d['sha256'][:16]}…`): {d['users']} users x {d['items']} items, ratings as confidences; "
          f"implicit's `train_test_split(train_percentage=0.8, random_state=42)`: {d['train']} train / {d['test']} test; "
          f"all three scored by implicit's `ranking_metrics_at_k(K={s['K']})`. {s['factors']} factors, {s['iterations']} iterations, "
          f"regularization {s['regularization']}, {s['threads']} threads, BLAS limited to {s['blas_threads']} thread "
          f"(threadpoolctl); implicit {r['versions']['implicit']}, Chorus {r['versions']['chorus']}.", "",
          "| model | fit s | eval s | precision@10 | map@10 | ndcg@10 | auc@10 |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for x in r["rows"]:
        L.append(f"| {x['model']} | {x['fit_seconds']:.1f} | {x['eval_seconds']:.1f} | {x['precision']:.4f} | {x['map']:.4f} | "
                 f"{x['ndcg']:.4f} | {x['auc']:.4f} |")
    L += ["", "```", r["command"], "```", "",
          f"Machine: {m['date']}, nproc {m['nproc']}, {m['cpu_model']}, Python {m['python']}, revision {m['git_revision']}.", ""]
    return "\n".join(L)


if __name__ == "__main__":
    main()
