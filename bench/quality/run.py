#!/usr/bin/env python3
"""Ranking quality against peers: Chorus (each agent alone and the coordinator's blend) next to
implicit's ALS and BPR, EASE and item-kNN, all on exactly the split Chorus evaluates on.

    python3 bench/quality/run.py [--data DIR] [--datasets ml-100k ml-latest-small]
                                 [--chorus build/chorus] [--chorus-args "..."] [--seeds 3] [--no-write]
                                 [--peer-cache FILE] [--json-out FILE]

Per dataset:
  1. `chorus eval --export-split TMP/<dataset> --json TMP/<dataset>.json` (default settings, plus
     --chorus-args) gives Chorus's rows and writes the split it used (train.csv: user,item,weight,
     timestamp in the original order; test.csv: user,item, the relevant held-out pairs).
  2. Each peer is tuned on a validation split carved from train.csv only (each training user's
     latest 10%, TemporalSplit's rule), by validation NDCG@10 over a fixed grid; the chosen setting
     is refitted on all of train.csv and scored on test.csv with the metric definitions of
     Sources/ChorusEval/Metrics.swift (re-implemented below, cross-checked against Chorus's own
     popularity row).
Writes bench/quality/results.md and results.json (unless --no-write). See bench/quality/README.md.
"""

import os

# implicit's documented setting: OpenBLAS's own thread pool off (implicit warns otherwise); set
# before numpy loads OpenBLAS. EASE raises it to --threads inside its own block (threadpoolctl).
if "OPENBLAS_NUM_THREADS" not in os.environ:
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ["_BENCH_SET_OPENBLAS_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import common  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from scipy.linalg import lapack  # noqa: E402
import threadpoolctl  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# implicit's CosineRecommender normalises into a COO matrix and then warns about its own conversion.
warnings.filterwarnings("ignore", message="Method expects CSR input")
DATASETS = ("ml-100k", "ml-latest-small")

# The grids (documented in README.md and recorded in results.json). Tuning metric: validation NDCG@10.
GRIDS = {
    # c_ui = 1 + alpha * w_ui (Hu et al., as Chorus), fed to implicit as its input with its alpha = 1.0;
    # w = 1 (binary) or w = the rating: both are searched. Widened from regularization {0.01, 0.1, 1} x
    # alpha {1, 5, 20}: on that grid the choice sat at its edges (ml-100k: regularization 1, alpha 1,
    # factors 32), and a wider trial run chose regularization 10-30 and alpha 0.25-0.5, for +7% (ml-100k)
    # and +15% (ml-latest-small) test NDCG@10. Regularization 0.01 and alpha 20 were never chosen.
    "implicit-als": [dict(weights=w, factors=f, regularization=r, alpha=a, iterations=15)
                     for w in ("binary", "rating") for f in (32, 64, 128) for r in (0.1, 1.0, 10.0, 100.0)
                     for a in (0.25, 1, 5)],
    # binary input (BPR only uses which items were interacted with). The iteration counts are read
    # off one fit per setting (factors after epoch 25, 50, 100: identical to separate fits with the
    # same seed, as implicit's SGD has a constant learning rate). Trimmed from {100, 300} for time:
    # in trial runs on ml-100k, 300 iterations scored below 100 in all 12 settings, and 200 never
    # beat the best of 25 / 50 / 100 either.
    "implicit-bpr": [dict(factors=f, learning_rate=lr, regularization=r, iterations=it)
                     for f in (32, 64, 128) for lr in (0.01, 0.05) for r in (0.001, 0.01) for it in (25, 50, 100)],
    # binary X; B = I - P diag(1/diag(P)), P = (X^T X + lambda I)^-1, diag(B) = 0.
    "ease": [dict(lam=lam) for lam in (50, 100, 200, 500, 1000, 2000)],
    # implicit's CosineRecommender on the binarised matrix; score = x_u^T S (S: K neighbours per item).
    # K 10 added to the brief's {20, 50, 100, 200}: a first run chose K 20 on ml-latest-small.
    "item-knn": [dict(K=k) for k in (10, 20, 50, 100, 200)],
}
STOCHASTIC = ("implicit-als", "implicit-bpr")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=common.DEFAULT_DATA,
                    help="folder holding ml-100k/ and ml-latest-small/ (default %(default)s)")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--chorus", default=os.path.join(common.REPO, "build", "chorus"),
                    help="the Chorus CLI (make cli; default %(default)s)")
    ap.add_argument("--chorus-args", default="", help="extra arguments for `chorus eval`, one string (default: none)")
    ap.add_argument("--diversity", default="0.1,0.3,0.5,0.7,0.9",
                    help="MMR knob values for the accuracy/diversity curve (`chorus eval --diversity`; default %(default)s; '' = none)")
    ap.add_argument("--no-cold-items", action="store_true",
                    help="skip the second `chorus eval --cold-items` run that measures cold-item recall")
    ap.add_argument("--peers", nargs="+", default=list(GRIDS), choices=list(GRIDS))
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--validation", type=float, default=0.1,
                    help="share of each training user's latest interactions held out for tuning (default %(default)s)")
    ap.add_argument("--threads", type=int, default=2, help="implicit num_threads; BLAS threads inside EASE (default %(default)s)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--seeds", type=int, default=3,
                    help="the tuned ALS and BPR are refitted with seeds seed..seed+N-1 and their test metrics "
                         "averaged (tuning uses seed only) (default %(default)s)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not rewrite results.md/json")
    common.add_record_flag(ap)
    ap.add_argument("--json-out", metavar="FILE",
                    help="also write the whole result (results.json's layout) to FILE; with --no-write, only there")
    ap.add_argument("--peer-cache", metavar="FILE",
                    help="reuse each peer's tuned result from FILE when the split (train.csv and test.csv by sha256), "
                         "the grid and the settings match, and add the ones computed in this run to it "
                         "(bench/arch/compare.py: the peers do not change between two Chorus builds). Default: none, "
                         "every peer tuned afresh")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite results.md from the recorded results.json (no run; after a change to the report layout)")
    return ap.parse_args()


# ---------------------------------------------------------------------------------------------
# Data: the exported split, dense indices, the validation carve-out


def load_export(split_dir):
    """train.csv (user,item,weight,timestamp, original order) and test.csv (user,item)."""
    for name in ("train.csv", "test.csv"):
        if not os.path.isfile(os.path.join(split_dir, name)):
            sys.exit(f"run.py: chorus eval did not write {os.path.join(split_dir, name)}")
    tr = np.loadtxt(os.path.join(split_dir, "train.csv"), delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    te = np.loadtxt(os.path.join(split_dir, "test.csv"), delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    users, items = tr[:, 0].astype(np.int64), tr[:, 1].astype(np.int64)
    return users, items, tr[:, 2].astype(np.float32), tr[:, 3].astype(np.int64), te[:, 0], te[:, 1]


def dense_ids(values):
    """Dense indices in order of first appearance, and the original id of each index."""
    index = {}
    out = np.empty(len(values), dtype=np.int64)
    for r, v in enumerate(values.tolist()):
        out[r] = index.setdefault(v, len(index))
    return out, np.array(list(index.keys()), dtype=np.int64), index


class Task:
    """A training matrix and the relevant items of the users to score. Built from dense user and
    item indices (of the full training split); items outside the training catalogue count in
    |relevant| only (they can never be hits)."""

    def __init__(self, u, i, w, n_users, n_items, relevant):
        W = sp.csr_matrix((w.astype(np.float32), (u, i)), shape=(n_users, n_items), dtype=np.float32)
        W.sum_duplicates()
        self.W = W                                    # weights (ratings), duplicates summed
        self.X = W.copy()
        self.X.data[:] = 1.0                          # binarised
        self.users = np.array(sorted(relevant), dtype=np.int64)
        self.relevant = [relevant[x] for x in self.users.tolist()]  # (set of dense items, |relevant|)
        self.n_items = n_items

    def weights(self, kind):
        return self.X if kind == "binary" else self.W


def carve_validation(u, i, w, t, fraction):
    """TemporalSplit's rule on the training rows: each user's latest round(n * fraction) rows
    (timestamp, ties by position), clamped to 1 ... n-1, held out; users with n < 2 stay whole.
    Held-out items the user also has in the remaining rows are dropped (never recommendable)."""
    held = common.temporal_holdout(u, t, fraction=fraction, minimum_rows=2)
    keep = ~held
    pairs = set(zip(u[keep].tolist(), i[keep].tolist()))
    relevant = {}
    for uu, ii in zip(u[held].tolist(), i[held].tolist()):
        if (uu, ii) not in pairs:
            relevant.setdefault(uu, set()).add(ii)
    return keep, {uu: (s, len(s)) for uu, s in relevant.items()}


# ---------------------------------------------------------------------------------------------
# Metrics: Sources/ChorusEval/Metrics.swift, vectorised


def evaluate(task, score_batch, k=10, batch=256):
    """Mean Recall@k (hits / min(k, |rel|)), NDCG@k (binary, log2 discount, ideal over
    min(k, |rel|)), HR@k, MRR@k over task.users, and catalogue coverage@k (distinct recommended
    items / training catalogue). Each user's training items are excluded; ties go to the lower
    item index; a user whose every item is excluded gets a shorter list."""
    disc = 1.0 / np.log2(np.arange(k) + 2.0)
    recall = ndcg = hr = mrr = 0.0
    recommended = set()
    X = task.X
    for start in range(0, len(task.users), batch):
        us = task.users[start:start + batch]
        S = np.asarray(score_batch(us), dtype=np.float32)
        if S.shape != (len(us), task.n_items):
            raise RuntimeError(f"scores of shape {S.shape}, expected {(len(us), task.n_items)}")
        S = np.nan_to_num(S, nan=-np.inf)
        seen = X[us]
        S[np.repeat(np.arange(len(us)), np.diff(seen.indptr)), seen.indices] = -np.inf
        top = np.argsort(-S, axis=1, kind="stable")[:, :k]
        valid = np.take_along_axis(S, top, axis=1) > -np.inf
        for row, (rel, n_rel) in enumerate(task.relevant[start:start + batch]):
            lst = top[row][valid[row]].tolist()
            recommended.update(lst)
            hits = np.array([x in rel for x in lst], dtype=bool)
            nh = int(hits.sum())
            recall += nh / min(k, n_rel)
            ndcg += float(disc[:len(lst)][hits].sum()) / float(disc[:min(k, n_rel)].sum())
            if nh:
                hr += 1.0
                mrr += 1.0 / (int(np.argmax(hits)) + 1)
    n = max(1, len(task.users))
    return {"recall": recall / n, "ndcg": ndcg / n, "hit_rate": hr / n, "mrr": mrr / n,
            "coverage": len(recommended) / task.n_items, "users": len(task.users)}


# ---------------------------------------------------------------------------------------------
# Peers: fit(task, params, seed, threads) -> score_batch(user indices) -> dense scores


def fit_als(task, p, seed, threads):
    from implicit.cpu.als import AlternatingLeastSquares

    C = task.weights(p["weights"]).copy()
    C.data = (1.0 + p["alpha"] * C.data).astype(np.float32)
    m = AlternatingLeastSquares(factors=p["factors"], regularization=p["regularization"], alpha=1.0,
                                iterations=p["iterations"], num_threads=threads, random_state=seed,
                                calculate_training_loss=False)
    m.fit(C, show_progress=False)
    U, V = np.asarray(m.user_factors), np.asarray(m.item_factors)
    return lambda us: U[us] @ V.T


def fit_bpr(task, p, seed, threads, snapshots=None):
    """One fit of p["iterations"] epochs; with `snapshots` (a list of epoch counts), returns
    [(epochs, scorer, seconds to that epoch)] read off the same fit instead."""
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    m = BayesianPersonalizedRanking(factors=p["factors"], learning_rate=p["learning_rate"],
                                    regularization=p["regularization"], iterations=p["iterations"],
                                    num_threads=threads, random_state=seed)
    taken, t0 = [], time.perf_counter()

    def callback(epoch, *_):  # epoch is 0-based
        if snapshots and epoch + 1 in snapshots:
            taken.append((epoch + 1, np.array(m.user_factors), np.array(m.item_factors), time.perf_counter() - t0))
    m.fit(task.X, show_progress=False, callback=callback if snapshots else None)
    scorer = (lambda U, V: (lambda us: U[us] @ V.T))  # item bias folded in (U[:, -1] = 1)
    if snapshots:
        return [(n, scorer(U, V), s) for n, U, V, s in taken]
    return scorer(np.asarray(m.user_factors), np.asarray(m.item_factors))


class EaseGram:
    """X^T X of a task, computed once for the whole lambda grid."""

    def __init__(self):
        self.key, self.G = None, None


def fit_ease(task, p, seed, threads, cache=EaseGram()):
    with threadpool_limits(limits=threads, user_api="blas"):
        if cache.key is not task:
            cache.key, cache.G = task, (task.X.T @ task.X).toarray().astype(np.float64)
        G = cache.G.copy()
        G[np.diag_indices_from(G)] += p["lam"]
        L, info = lapack.dpotrf(G, lower=1, clean=0, overwrite_a=1)
        if info != 0:
            raise RuntimeError(f"EASE: Cholesky failed (info {info})")
        P, info = lapack.dpotri(L, lower=1, overwrite_c=1)
        if info != 0:
            raise RuntimeError(f"EASE: inverse failed (info {info})")
        del G, L
        P = np.tril(P) + np.tril(P, -1).T
        B = (P / (-np.diag(P))[None, :]).astype(np.float32)
        del P
        np.fill_diagonal(B, 0.0)
    X = task.X

    def score(us):
        with threadpool_limits(limits=threads, user_api="blas"):
            return X[us].toarray() @ B
    return score


def fit_knn(task, p, seed, threads):
    from implicit.nearest_neighbours import CosineRecommender

    m = CosineRecommender(K=p["K"], num_threads=threads)
    m.fit(task.X, show_progress=False)
    S, X = m.similarity.tocsr(), task.X
    return lambda us: (X[us] @ S).toarray()


FITTERS = {"implicit-als": fit_als, "implicit-bpr": fit_bpr, "ease": fit_ease, "item-knn": fit_knn}


def popularity_scores(task, i_dense, w, t, half_life_seconds):
    """Chorus's PopularityAgent: sum over interactions of weight * 2^(-age / half-life) (age from
    the newest training interaction; no decay when half-life <= 0), log1p, float32."""
    w = w.astype(np.float64)
    if half_life_seconds > 0:
        w = w * np.exp2(-np.maximum(0, t.max() - t) / half_life_seconds)
    counts = np.bincount(i_dense, weights=w, minlength=task.n_items)
    s = np.log1p(counts).astype(np.float32)
    return lambda us: np.broadcast_to(s, (len(us), task.n_items)).copy()


# ---------------------------------------------------------------------------------------------


def run_chorus(args, dataset, tmp, extra=(), tag=""):
    split_dir, json_path = os.path.join(tmp, dataset + tag), os.path.join(tmp, dataset + tag + ".json")
    cmd = [args.chorus, "eval", "--data", args.data, "--dataset", dataset, "--export-split", split_dir,
           "--json", json_path] + list(extra) + shlex.split(args.chorus_args)
    print(f"\n== {dataset}: {' '.join(shlex.quote(c) for c in cmd)}", flush=True)
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    sys.stdout.write(out.stdout)
    if out.returncode != 0:
        sys.exit(f"run.py: chorus eval failed ({out.returncode}):\n{out.stderr}")
    with open(json_path) as f:
        report = json.load(f)
    # "popularity half-life 365 days", "... none (no decay)", "... no decay"
    m = re.search(r"popularity half-life (?:(\d+(?:\.\d+)?) days?|(none|no decay))", out.stdout)
    half_life_days = None if not m else (0.0 if m.group(2) else float(m.group(1)))
    enc = re.search(r"encoded in ([0-9.]+) s", out.stdout)
    return report, split_dir, {"command": cmd, "stdout": out.stdout, "wall_seconds": wall,
                               "half_life_days": half_life_days,
                               "text_encoding_seconds": float(enc.group(1)) if enc else None}


def tuning_fits(peer, task, args):
    """(params, scorer, fit seconds) for every grid setting, in grid order. BPR: one fit per setting
    of the other parameters, read off at each iteration count (fit seconds = time to that epoch)."""
    grid = GRIDS[peer]
    if peer != "implicit-bpr":
        for p in grid:
            ts = time.perf_counter()
            scorer = FITTERS[peer](task, p, args.seed, args.threads)
            yield p, scorer, time.perf_counter() - ts
        return
    groups = {}
    for p in grid:
        groups.setdefault(tuple((k, v) for k, v in p.items() if k != "iterations"), []).append(p["iterations"])
    for key, its in groups.items():
        base = dict(key, iterations=max(its))
        for n, scorer, secs in fit_bpr(task, base, args.seed, args.threads, snapshots=sorted(its)):
            yield dict(key, iterations=n), scorer, secs


def edges(peer, chosen):
    """The hyper-parameters whose chosen value sits at an end of its (numeric) grid range."""
    out = []
    for key, value in chosen.items():
        values = sorted({g[key] for g in GRIDS[peer]}, key=lambda v: (isinstance(v, str), v))
        if len(values) > 1 and not isinstance(value, str) and value in (values[0], values[-1]):
            out.append(f"{key}={value} ({'lowest' if value == values[0] else 'highest'})")
    return out


def peer_cache_key(args, dataset, split, peer):
    """What a peer's tuned result depends on (--peer-cache): the split's bytes, its grid, the tuning and
    refit settings, and the versions of the libraries it runs on. As JSON text with sorted keys."""
    import implicit

    return json.dumps({"dataset": dataset, "train_sha256": split["train_sha256"], "test_sha256": split["test_sha256"],
                       "peer": peer, "grid": GRIDS[peer], "k": args.k, "validation": args.validation,
                       "threads": args.threads, "seed": args.seed, "seeds": args.seeds if peer in STOCHASTIC else 1,
                       "implicit": implicit.__version__, "numpy": np.__version__, "scipy": scipy.__version__},
                      sort_keys=True)


def load_peer_cache(path):
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)["entries"]


def store_peer_cache(path, entries):
    """Written whole to a temporary file, then renamed: a run cut short leaves the previous cache."""
    with open(path + ".tmp", "w") as f:
        json.dump({"about": "bench/quality/run.py --peer-cache: tuned peer results by split and settings",
                   "entries": entries}, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)


def is_main_row(row):
    """The rows of the plain run: each agent alone and the blend (not the MMR or cold-item rows)."""
    return " MMR " not in row["name"] and "(cold items" not in row["name"]


def run_cold_items(args, dataset, tmp):
    """A second `chorus eval`, with --cold-items: every movie gets its text and facts, including movies
    that appear only in the test split, and each test user's relevant cold movies are ranked among all
    cold movies. Kept apart from the main run, whose catalogue is the training items only (as the peers')."""
    report, _, meta = run_chorus(args, dataset, tmp, ["--cold-items"], "-cold")
    rows = [r for r in report["rows"] if "(cold items" in r["name"]]
    if not rows:
        print(f"{dataset}: chorus eval --cold-items reported no cold-item rows (fewer cold items than k?)", flush=True)
    command = " ".join(shlex.quote(c.replace(tmp, "$TMP")) for c in meta["command"])
    return {"rows": rows, "command": command, "wall_seconds": meta["wall_seconds"]}


def run_dataset(args, dataset, tmp):
    extra = ["--diversity", args.diversity] if args.diversity else []
    report, split_dir, chorus = run_chorus(args, dataset, tmp, extra)
    cold = None if args.no_cold_items else run_cold_items(args, dataset, tmp)
    u_raw, i_raw, w, t, te_u, te_i = load_export(split_dir)
    u, user_ids, user_pos = dense_ids(u_raw)
    i, item_ids, item_pos = dense_ids(i_raw)
    n_users, n_items = len(user_ids), len(item_ids)
    if report.get("catalogue") not in (None, n_items):
        sys.exit(f"run.py: Chorus's catalogue ({report['catalogue']}) != the training items of the split ({n_items})")

    # Test: relevant pairs by user; items absent from train count in |relevant| only.
    rel_raw = {}
    for uu, ii in zip(te_u.tolist(), te_i.tolist()):
        rel_raw.setdefault(uu, set()).add(ii)
    missing = [x for x in rel_raw if x not in user_pos]
    if missing:
        sys.exit(f"run.py: {len(missing)} test users have no training rows (e.g. {missing[:3]}); not expected")
    relevant = {user_pos[uu]: ({item_pos[x] for x in s if x in item_pos}, len(s)) for uu, s in rel_raw.items()}
    split_sums = {"train_sha256": common.sha256(os.path.join(split_dir, "train.csv")),
                  "test_sha256": common.sha256(os.path.join(split_dir, "test.csv"))}
    test = Task(u, i, w, n_users, n_items, relevant)
    cold_pairs = sum(n - len(s) for s, n in relevant.values())

    keep, val_rel = carve_validation(u, i, w, t, args.validation)
    val = Task(u[keep], i[keep], w[keep], n_users, n_items, val_rel)
    print(f"split: train {len(u)} rows ({n_users} users x {n_items} items), test {len(te_u)} pairs over "
          f"{len(relevant)} users ({cold_pairs} on items absent from train); validation carve-out: "
          f"{int((~keep).sum())} rows held out, {len(val_rel)} validation users", flush=True)

    # Cross-check of the metric code: Chorus's popularity agent re-implemented on the same split.
    check = None
    if chorus["half_life_days"] is None:
        print("metric cross-check skipped: no popularity half-life found in chorus eval's output", flush=True)
    else:
        pop = evaluate(test, popularity_scores(test, i, w, t, chorus["half_life_days"] * 86400), args.k)
        row = next((r for r in report["rows"] if r["name"] == "popularity"), None)
        if row:
            check = {"half_life_days": chorus["half_life_days"], "python": pop,
                     "chorus": {m: row[m] for m in ("recall", "ndcg", "hit_rate", "mrr", "coverage")},
                     "max_abs_difference": max(abs(pop[m] - row[m]) for m in ("recall", "ndcg", "hit_rate", "mrr", "coverage"))}
            print(f"metric cross-check (popularity, half-life {chorus['half_life_days']:g} d): Python NDCG "
                  f"{pop['ndcg']:.4f} Recall {pop['recall']:.4f} vs Chorus {row['ndcg']:.4f} {row['recall']:.4f}; "
                  f"max |difference| over the five metrics {check['max_abs_difference']:.1e}", flush=True)

    peers = {}
    cache = load_peer_cache(args.peer_cache) if args.peer_cache else None
    for peer in args.peers:
        if cache is not None:
            key = peer_cache_key(args, dataset, split_sums, peer)
            hit = cache.get(key)
            if hit:
                peers[peer] = dict(hit["result"], cached_from=hit["recorded"])
                p = peers[peer]
                print(f"{peer}: reused from the peer cache {args.peer_cache} (recorded {hit['recorded']}): chose "
                      f"{p['params']}; test NDCG@{args.k} {p['ndcg']:.4f} Recall {p['recall']:.4f}", flush=True)
                continue
        fit = FITTERS[peer]
        grid_results = []
        t0 = time.perf_counter()
        for p, scorer, fit_s in tuning_fits(peer, val, args):
            res = evaluate(val, scorer, args.k)
            grid_results.append({"params": p, "val_ndcg": res["ndcg"], "val_recall": res["recall"], "fit_seconds": fit_s})
            print(f"  {peer} {p}: validation NDCG@{args.k} {res['ndcg']:.4f} Recall {res['recall']:.4f} ({fit_s:.1f} s)", flush=True)
        tuning_s = time.perf_counter() - t0
        best = max(grid_results, key=lambda g: g["val_ndcg"])  # first best in grid order on ties
        seeds = [args.seed + s for s in range(args.seeds if peer in STOCHASTIC else 1)]
        runs, fit_times = [], []
        for seed in seeds:
            ts = time.perf_counter()
            scorer = fit(test, best["params"], seed, args.threads)
            fit_times.append(time.perf_counter() - ts)
            runs.append(evaluate(test, scorer, args.k))
        metrics = {m: statistics.mean(r[m] for r in runs) for m in ("recall", "ndcg", "hit_rate", "mrr", "coverage")}
        metrics["users"] = runs[0]["users"]
        peers[peer] = {"params": best["params"], "val_ndcg": best["val_ndcg"], "seeds": seeds,
                       "per_seed": runs, "ndcg_sd": statistics.stdev(r["ndcg"] for r in runs) if len(runs) > 1 else 0.0,
                       "recall_sd": statistics.stdev(r["recall"] for r in runs) if len(runs) > 1 else 0.0,
                       "fit_seconds": statistics.median(fit_times), "tuning_seconds": tuning_s,
                       "grid_edges": edges(peer, best["params"]), "grid": grid_results, **metrics}
        print(f"{peer}: chose {best['params']} (validation NDCG {best['val_ndcg']:.4f}); test NDCG@{args.k} "
              f"{metrics['ndcg']:.4f} Recall {metrics['recall']:.4f} HR {metrics['hit_rate']:.4f} "
              f"(fit {statistics.median(fit_times):.1f} s, tuning {tuning_s:.0f} s)", flush=True)
        if cache is not None:
            cache[key] = {"recorded": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "result": peers[peer]}
            store_peer_cache(args.peer_cache, cache)

    blend = next(r for r in report["rows"] if r["name"] == "blend")
    ratios = {}
    for metric in ("ndcg", "recall"):
        name = max(peers, key=lambda n: peers[n][metric]) if peers else None
        if name:
            ratio = blend[metric] / peers[name][metric]
            ratios[metric] = {"best_peer": name, "peer": peers[name][metric], "blend": blend[metric],
                              "ratio": ratio, "target": 1.05, "met": ratio >= 1.05}
    for metric, r in ratios.items():
        print(f"{dataset}: {metric} blend {r['blend']:.4f} / {r['best_peer']} {r['peer']:.4f} = {r['ratio']:.3f} "
              f"(target >= 1.05: {'met' if r['met'] else 'NOT met'})", flush=True)

    chorus_out = dict(chorus)
    chorus_out["command"] = " ".join(shlex.quote(c.replace(tmp, "$TMP")) for c in chorus["command"])
    return {
        "dataset": dataset,
        "data": {"train_rows": int(len(u)), "users": n_users, "items": n_items, "test_pairs": int(len(te_u)),
                 "test_users": len(relevant), "cold_test_pairs": cold_pairs,
                 "validation_rows": int((~keep).sum()), "validation_users": len(val_rel), **split_sums},
        "chorus": {"report": report, **chorus_out},
        "chorus_cold_items": cold,
        "peers": peers,
        "ratios": ratios,
        "metric_check": check,
    }


def main():
    args = parse_args()
    if args.render_only:
        with open(os.path.join(HERE, "results.json")) as f:
            result = json.load(f)
        with open(os.path.join(HERE, "results.md"), "w") as f:
            f.write(render_md(result))
        print(f"rewrote {os.path.relpath(os.path.join(HERE, 'results.md'), common.REPO)} from results.json")
        return
    if not os.path.isdir(args.data):
        sys.exit(f"run.py: data folder {args.data} not found (pass --data DIR, the folder holding ml-100k/ and ml-latest-small/)")
    for d in args.datasets:
        if not os.path.isdir(os.path.join(args.data, d)):
            sys.exit(f"run.py: {os.path.join(args.data, d)} not found (pass --data DIR, the folder holding {d}/)")
    if not (os.path.isfile(args.chorus) and os.access(args.chorus, os.X_OK)):
        sys.exit(f"run.py: {args.chorus} not found or not executable; build it with `make cli` (or pass --chorus)")
    prov = common.Provenance([args.chorus])
    if not args.no_write:
        prov.check_record(args.not_for_the_record)
    import implicit

    facts = common.machine_facts()
    chorus_sha = common.sha256(args.chorus)
    chorus_mtime = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(args.chorus)))
    load_before = os.getloadavg()
    uptime_before = common.run_text(["uptime"])
    t0 = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="chorus-bench-quality-") as tmp:
        for d in args.datasets:
            results.append(run_dataset(args, d, tmp))
    pools = threadpoolctl.threadpool_info()
    result = {
        "benchmark": "ranking-quality",
        "command": common.command_line(),
        "make": "make bench-quality",
        "machine": dict(facts, loadavg_before=load_before, loadavg_after=os.getloadavg(),
                        uptime_before=uptime_before, uptime_after=common.run_text(["uptime"])),
        "runtime_seconds": time.perf_counter() - t0,
        "settings": {"k": args.k, "validation": args.validation, "threads": args.threads, "seed": args.seed,
                     "seeds": args.seeds, "chorus": os.path.relpath(os.path.abspath(args.chorus), common.REPO),
                     "chorus_sha256": chorus_sha, "chorus_mtime": chorus_mtime,
                     "chorus_args": args.chorus_args, "peers": args.peers, "peer_cache": args.peer_cache,
                     "python_OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
                     "grids": {p: GRIDS[p] for p in args.peers}},
        "versions": {"implicit": implicit.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
                     "threadpoolctl": threadpoolctl.__version__},
        "threadpoolctl": pools,
        "datasets": results,
        "provenance": prov.finish().as_dict(),
    }
    print(f"\ntotal {result['runtime_seconds']:.0f} s")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        print(f"wrote {args.json_out}")
    if args.no_write:
        return
    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    with open(os.path.join(HERE, "results.md"), "w") as f:
        f.write(render_md(result))
    print(f"wrote {os.path.relpath(os.path.join(HERE, 'results.md'), common.REPO)} and results.json")


# ---------------------------------------------------------------------------------------------


def fmt_params(p):
    return ", ".join(f"{k} {v}" for k, v in p.items())


def render_dataset(d, s):
    rep, ch = d["chorus"]["report"], d["chorus"]
    k = rep.get("k", s["k"])
    lines = [f"## {d['dataset']}", "",
             f"Train {d['data']['train_rows']:,} interactions ({d['data']['users']:,} users x {d['data']['items']:,} items); "
             f"test {d['data']['test_pairs']:,} relevant pairs over {d['data']['test_users']:,} users, "
             f"{d['data']['cold_test_pairs']:,} of them on items absent from train (misses for everyone). "
             f"Validation carve-out for the peers' tuning: {d['data']['validation_rows']:,} training rows held out, "
             f"{d['data']['validation_users']:,} validation users.", "",
             f"| recommender | Recall@{k} | NDCG@{k} | HR@{k} | MRR@{k} | Cov@{k} | setting (chosen on validation) | val NDCG@{k} | fit (s) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in filter(is_main_row, rep["rows"]):
        name = "**Chorus blend**" if r["name"] == "blend" else f"Chorus {r['name']} (alone)"
        if r["name"] == "blend":
            setting = f"default `chorus eval`{(' ' + s['chorus_args']) if s['chorus_args'] else ''}; blend weights on its own validation hold-out"
            fit = f"{rep['fit_seconds']:.2f}"
            if ch.get("text_encoding_seconds") is not None:
                fit += f" (+ {ch['text_encoding_seconds']:.1f} text encoding)"
        else:
            setting = f"blend weight {r['weight']:.3f}" if r.get("weight") is not None else ""
            if r["name"] == "popularity" and ch.get("half_life_days") is not None:
                hl = ch["half_life_days"]
                setting += f"; half-life {hl:g} d" if hl > 0 else "; no decay"
            fit = "(in blend)"
        b = "**" if r["name"] == "blend" else ""
        lines.append(f"| {name} | {b}{r['recall']:.4f}{b} | {b}{r['ndcg']:.4f}{b} | {r['hit_rate']:.4f} | {r['mrr']:.4f} | "
                     f"{r['coverage']:.4f} | {setting} | | {fit} |")
    for name, p in d["peers"].items():
        sd = f" +- {p['ndcg_sd']:.4f}" if len(p["seeds"]) > 1 else ""
        rsd = f" +- {p['recall_sd']:.4f}" if len(p["seeds"]) > 1 else ""
        lines.append(f"| {name} | {p['recall']:.4f}{rsd} | {p['ndcg']:.4f}{sd} | {p['hit_rate']:.4f} | {p['mrr']:.4f} | "
                     f"{p['coverage']:.4f} | {fmt_params(p['params'])} | {p['val_ndcg']:.4f} | {p['fit_seconds']:.2f} |")
    lines.append("")
    for metric, label in (("ndcg", f"NDCG@{k}"), ("recall", f"Recall@{k}")):
        r = d["ratios"].get(metric)
        if r:
            lines.append(f"- **{label}: Chorus blend / best peer ({r['best_peer']}) = {r['blend']:.4f} / {r['peer']:.4f} = "
                         f"{r['ratio']:.3f}** (target >= {r['target']:.2f}: **{'met' if r['met'] else 'not met'}**)")
    e = [f"{n}: {', '.join(p['grid_edges'])}" for n, p in d["peers"].items() if p["grid_edges"]]
    lines.append(f"- Chosen settings at an end of their grid: {'; '.join(e) if e else 'none'}.")
    cached = [f"{n} ({p['cached_from']})" for n, p in d["peers"].items() if p.get("cached_from")]
    if cached:
        lines.append("- Reused from the peer cache (`--peer-cache`; same split, grid and settings), recorded: "
                     + ", ".join(cached) + ".")
    lines.append("- Tuning time (whole grid, on the validation carve-out): "
                 + ", ".join(f"{n} {p['tuning_seconds']:.0f} s ({len(p['grid'])} settings)" for n, p in d["peers"].items()) + ".")
    c = d.get("metric_check")
    if c:
        lines.append(f"- Metric cross-check: Chorus's popularity agent re-implemented in Python (sum of weights x "
                     f"2^(-age/half-life), {'half-life ' + format(c['half_life_days'], 'g') + ' d' if c['half_life_days'] > 0 else 'no decay'} "
                     f"as Chorus chose) and scored by this script: "
                     f"NDCG@{k} {c['python']['ndcg']:.4f} vs Chorus's {c['chorus']['ndcg']:.4f}, Recall@{k} "
                     f"{c['python']['recall']:.4f} vs {c['chorus']['recall']:.4f}; largest difference over Recall, NDCG, "
                     f"HR, MRR, coverage {c['max_abs_difference']:.1e}.")
    lines.append(f"- Chorus ran as `{ch['command']}` ({ch['wall_seconds']:.0f} s wall, text encoding included).")
    lines.append("")
    lines += render_diversity(rep, k) + render_cold(d.get("chorus_cold_items"), k)
    return "\n".join(lines)


def render_diversity(rep, k):
    """The accuracy/diversity curve: the blend at each MMR knob value of the main run."""
    curve = [(0.0, r) for r in rep["rows"] if r["name"] == "blend"]
    curve += [(float(r["name"].split(" MMR ")[1]), r) for r in rep["rows"] if r["name"].startswith("blend MMR ")]
    if len(curve) < 2:
        return []
    lines = [f"### Accuracy / diversity trade-off (Chorus blend, MMR re-ranking)", "",
             "MMR picks each next item by (1 - λ) · relevance - λ · max cosine to the items already picked, over the "
             "items' sentence vectors; ILD@k = mean 1 - cosine over the pairs of each list (same vectors); "
             "Cov@k = distinct recommended items / catalogue.", "",
             f"| MMR λ | NDCG@{k} | Recall@{k} | ILD@{k} | Cov@{k} |", "| --- | --- | --- | --- | --- |"]
    for lam, r in curve:
        ild = f"{r['diversity']:.4f}" if r.get("diversity") is not None else "-"
        lines.append(f"| {lam:g} | {r['ndcg']:.4f} | {r['recall']:.4f} | {ild} | {r['coverage']:.4f} |")
    return lines + [""]


def render_cold(cold, k):
    """Cold-item recall from the `--cold-items` run."""
    if not cold or not cold["rows"]:
        return []
    label = cold["rows"][0]["name"].split("(cold items: ")[1].rstrip(")")
    lines = [f"### Cold items ({label})", "",
             "Items with no training interaction, known only by their text (title, genres) and facts (genres, decade). "
             "Each test user's relevant cold items are ranked among all cold items; the peers score such items 0 "
             "(they learn from interactions only), so their cold-item recall is 0 by construction.", "",
             f"| recommender | Recall@{k} | NDCG@{k} | HR@{k} |", "| --- | --- | --- | --- |"]
    for r in cold["rows"]:
        name = r["name"].split(" (cold items")[0]
        name = "**Chorus blend**" if name == "blend" else f"Chorus {name} (alone)"
        lines.append(f"| {name} | {r['recall']:.4f} | {r['ndcg']:.4f} | {r['hit_rate']:.4f} |")
    lines += ["", f"- Run as `{cold['command']}` ({cold['wall_seconds']:.0f} s wall).", ""]
    return lines


def render_md(r):
    m, s, v = r["machine"], r["settings"], r["versions"]
    pools = "\n".join(
        f"| {p.get('user_api')} | {p.get('internal_api')} | {p.get('num_threads')} | {p.get('version')} | "
        f"{p.get('threading_layer', '')} | `{os.path.basename(p.get('filepath', ''))}` |" for p in r["threadpoolctl"])
    grids = "\n".join(f"  - {p}: {len(g)} settings: " + grid_text(p) for p, g in s["grids"].items())
    summary = []
    for d in r["datasets"]:
        for metric, label in (("ndcg", "NDCG@10"), ("recall", "Recall@10")):
            x = d["ratios"].get(metric)
            if x:
                summary.append(f"| {d['dataset']} | {label} | {x['blend']:.4f} | {x['best_peer']} {x['peer']:.4f} | "
                               f"{x['ratio']:.3f} | {'met' if x['met'] else 'not met'} |")
    return f"""# Ranking quality: Chorus vs implicit ALS / BPR, EASE, item-kNN

Recorded by `bench/quality/run.py`; do not edit by hand (rerun it: `make bench-quality`).

{chr(10).join(common.provenance_banner(r.get('provenance')))}

Every recommender is scored on the split `chorus eval` itself uses (exported with `--export-split`),
with the same metric definitions. Peers are tuned on a validation carve-out of the training split only,
then refitted on the whole training split; the test split is touched once per peer.

## Summary: Chorus blend / best peer (target >= 1.05)

| dataset | metric | Chorus blend | best peer | ratio | target |
| --- | --- | --- | --- | --- | --- |
{chr(10).join(summary)}

{chr(10).join(render_dataset(d, s) for d in r["datasets"])}
## Reproduce

```
make bench-quality
```

which builds the CLI (`make cli`), installs the peers (`bench/setup.sh`) and runs, from the repository root:

```
{r['command']}
```

Total runtime of this run: {r['runtime_seconds']:.0f} s.

## Settings

- Split (Chorus's `TemporalSplit`, exported by `chorus eval --export-split`): per user, the latest 20% of
  interactions (timestamp, ties by file position; h = round(0.2 n) clamped to 1 ... n-1; users with n < 2
  stay in train) are held out; every held-out interaction is relevant, except repeats of a training pair.
  Test users: every user with >= 1 relevant item. Relevant items absent from train stay as misses.
- Metrics (Sources/ChorusEval/Metrics.swift, re-implemented in `evaluate`): k = {s['k']}; Recall@k = hits /
  min(k, |relevant|); NDCG@k binary relevance, log2 discount, ideal DCG over min(k, |relevant|); HR@k = share
  of users with a hit; MRR@k = mean reciprocal rank of the first hit within k; Cov@k = distinct items in all
  top-k lists / training catalogue. Each user's training items are excluded; ties go to the lower item index
  (first appearance in train.csv). Means over test users.
- Peer tuning: validation = each training user's latest {int(100 * s['validation'])}% of training interactions (the same rule,
  h = round({s['validation']} n) clamped to 1 ... n-1, users with n < 2 kept whole), relevant = those not repeating a
  remaining pair; every grid setting is fitted on the rest and scored by validation NDCG@{s['k']}; the best (first in grid
  order on ties) is refitted on the whole training split and scored once on test. Tuning uses seed {s['seed']};
  the refits of the stochastic peers (implicit-als, implicit-bpr) use seeds {s['seed']} ... {s['seed'] + s['seeds'] - 1}
  and report the mean (+- sd over seeds). Fit time: the median refit on the whole training split.
- Grids:
{grids}
- Chorus: one `chorus eval` run with its defaults (every agent at its default setting; the popularity half-life
  and the coordinator chosen by the fit on its own validation hold-out of the training data, which never sees the
  test split; every CPU as worker threads; seed 42){'; extra arguments: `' + s['chorus_args'] + '`' if s['chorus_args'] else ''}.
  The agents' rows are each agent alone; "weight" is its share in the blend as `chorus eval` reports it. Chorus's
  fit time is the whole engine fit (every agent and the coordinator); the sentence encoding of the movie texts
  is reported apart. Single seed (its ALS moves by a few percent between seeds, see bench/als/results.md).
- Threads: implicit `num_threads={s['threads']}`; this Python process ran with OPENBLAS_NUM_THREADS={s['python_OPENBLAS_NUM_THREADS']}
  (implicit's documented setting), raised to {s['threads']} with threadpoolctl inside EASE's fit and scoring (dense BLAS).

## Machine

- date: {m['date']}
- nproc: {m['nproc']}; CPU: {m['cpu_model']}; memory: {m['memory_gib']} GiB; kernel {m['kernel']}
- uptime before: `{m['uptime_before']}`; after: `{m['uptime_after']}`{load_note(m)}
- {m['swift']}; Python {m['python']}; implicit {v['implicit']}, numpy {v['numpy']}, scipy {v['scipy']}, threadpoolctl {v['threadpoolctl']}
- repository revision: {m['git_revision']}; Chorus CLI `{s['chorus']}` built {s['chorus_mtime']}, sha256 `{s['chorus_sha256'][:16]}…`

threadpoolctl in the Python process (end of run):

| user_api | internal_api | num_threads | version | threading_layer | library |
| --- | --- | --- | --- | --- | --- |
{pools}
"""


def load_note(m):
    load = max(m["loadavg_before"][0], m["loadavg_after"][0])
    if load <= (m.get("nproc") or 1):
        return ""
    return (f"\n- the machine was shared (1-minute load up to {load:.1f} on {m['nproc']} CPUs): fit, tuning and wall times"
            f" are inflated accordingly; the quality figures are not affected (apart from the run-to-run noise of"
            f" implicit's multi-threaded SGD/CG)")


def grid_text(peer):
    g = GRIDS[peer]
    keys = list(g[0].keys())
    return "; ".join(f"{key} {{{', '.join(str(x) for x in sorted({p[key] for p in g}, key=lambda v: (isinstance(v, str), v)))}}}"
                     for key in keys)


if __name__ == "__main__":
    main()
