#!/usr/bin/env python3
"""Ranking quality against peers: Chorus (each agent alone and the coordinator's blend) next to
implicit's ALS, BPR and item-kNN, EASE and SASRec, all on exactly the split Chorus evaluates on.

    python3 bench/quality/run.py [--data DIR] [--datasets ml-100k ml-latest-small]
                                 [--chorus build/chorus] [--chorus-args "..."] [--seeds 3] [--no-write]
                                 [--grid full|small] [--peer-cache FILE] [--json-out FILE]

Per dataset:
  1. `chorus eval --export-split TMP/<dataset>-seedS --json ... --seed S` for each seed S (default
     settings, plus --chorus-args) gives Chorus's rows (mean +- sd over the seeds) and writes the split
     it used (train.csv: user,item,weight,timestamp in the original order; test.csv: user,item, the
     relevant held-out pairs); the same with `--texts off --facts off` (interactions only, its own
     table), and one `--cold-items` run.
  2. Each peer is tuned on a validation split carved from train.csv only (each training user's
     latest 10%, TemporalSplit's rule), by validation NDCG@10 over a grid widened at its edges
     (SPACES); the chosen setting is refitted on all of train.csv (the stochastic peers once per seed)
     and scored on test.csv with the metric definitions of Sources/ChorusEval/Metrics.swift
     (re-implemented below, cross-checked against Chorus's own popularity row).
Writes bench/quality/results.md and results.json (unless --no-write). See bench/quality/README.md.
"""

import os

# implicit's documented setting: OpenBLAS's own thread pool off (implicit warns otherwise); set
# before numpy loads OpenBLAS. EASE raises it to --threads inside its own block (threadpoolctl).
if "OPENBLAS_NUM_THREADS" not in os.environ:
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ["_BENCH_SET_OPENBLAS_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import itertools  # noqa: E402
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
sys.path.insert(0, HERE)  # sasrec.py
# implicit's CosineRecommender normalises into a COO matrix and then warns about its own conversion.
warnings.filterwarnings("ignore", message="Method expects CSR input")
DATASETS = ("ml-100k", "ml-latest-small")

# The search spaces (documented in README.md; every grid actually searched is recorded in results.json).
# Tuning metric: validation NDCG@10. "axes": the starting grid (the cartesian product of the values, in
# this order). "widen": per parameter, (values below, values above), each list going further out: when
# the validation-chosen value of a parameter sits at the lowest (highest) value of its axis, the next
# value below (above) is added to that axis alone, the new slice of the grid is tuned, and so on until no
# chosen value sits at an edge, or the next step would pass the parameter's limit ("limits": why the
# search stops there; recorded with the result).
SPACES = {
    # c_ui = 1 + alpha * w_ui (Hu et al., as Chorus), fed to implicit as its input with its alpha = 1.0;
    # w = 1 (binary) or w = the rating: both are searched. The starting grid was itself widened once by
    # hand from regularization {0.01, 0.1, 1} x alpha {1, 5, 20} (its choice sat at those edges).
    # Iterations fixed at 15 (Chorus's ALS default; implicit's CG converges in that many sweeps).
    "implicit-als": {
        "axes": {"weights": ["binary", "rating"], "factors": [32, 64, 128], "regularization": [0.1, 1.0, 10.0, 100.0],
                 "alpha": [0.25, 1, 5], "iterations": [15]},
        "widen": {"factors": ([16, 8], [256]), "regularization": ([0.01, 0.001], [300.0, 1000.0]),
                  "alpha": ([0.1, 0.05, 0.02, 0.01], [10, 20])},
        "limits": {"factors": "factors above 256 not searched: too slow for a 2-core machine, and Chorus's own "
                              "ALS runs 64 factors", "alpha": "alpha below 0.01 not searched",
                   "regularization": "regularization outside 0.001 ... 1000 not searched"},
    },
    # binary input (BPR only uses which items were interacted with). The iteration counts are read off one
    # fit per setting of the other parameters (factors after epoch 25, 50, 100, ...: identical to separate
    # fits with the same seed, as implicit's SGD has a constant learning rate).
    "implicit-bpr": {
        "axes": {"factors": [32, 64, 128], "learning_rate": [0.01, 0.05], "regularization": [0.001, 0.01],
                 "iterations": [25, 50, 100]},
        "widen": {"factors": ([16, 8], [256]), "learning_rate": ([0.005, 0.0025, 0.001], [0.1, 0.2]),
                  "regularization": ([0.0001, 0.00001], [0.1, 1.0]), "iterations": ([10], [200, 400])},
        "limits": {"factors": "factors outside 8 ... 256 not searched", "learning_rate": "learning rate outside 0.001 ... 0.2 not searched",
                   "regularization": "regularization outside 1e-5 ... 1 not searched",
                   "iterations": "iterations outside 10 ... 400 not searched"},
    },
    # binary X; B = I - P diag(1/diag(P)), P = (X^T X + lambda I)^-1, diag(B) = 0.
    "ease": {
        "axes": {"lam": [50, 100, 200, 500, 1000, 2000]},
        "widen": {"lam": ([20, 10, 5, 2], [5000, 10000, 20000, 50000])},
        "limits": {"lam": "lambda outside 2 ... 50000 not searched"},
    },
    # implicit's CosineRecommender on the binarised matrix; score = x_u^T S (S: K neighbours per item).
    # K 500 and 1000 are in the starting grid: on ml-100k, validation NDCG@10 is 0.1220 at K 50, lower at
    # 100 and 200, and 0.1237 at 500 (a development run): not unimodal, so the edge rule alone misses it.
    "item-knn": {
        "axes": {"K": [10, 20, 50, 100, 200, 500, 1000]},
        "widen": {"K": ([5, 2, 1], [2000, 5000])},
        "limits": {"K": "K = 1 is the smallest neighbourhood; K above 5000 not searched (more than either catalogue)"},
    },
    # SASRec (bench/quality/sasrec.py): 2 blocks, 1 head, max length --sasrec-maxlen (50), Adam lr
    # 0.001, batch 128, full-softmax cross-entropy; the number of epochs is chosen by early stopping on the
    # validation carve-out (evaluated every --sasrec-eval-every epochs), hidden size and dropout on the grid.
    "sasrec": {
        "axes": {"hidden": [32, 64], "dropout": [0.2, 0.5]},
        "widen": {"hidden": ([16], [128]), "dropout": ([0.1], [0.7])},
        "limits": {"hidden": "hidden size outside 16 ... 128 not searched (cost: full softmax on 2 cores)",
                   "dropout": "dropout outside 0.1 ... 0.7 not searched"},
    },
}
# A small starting grid for trying the pipeline (--grid small): the same widening rules.
SMALL_AXES = {
    "implicit-als": {"weights": ["binary"], "factors": [64], "regularization": [10.0], "alpha": [0.25, 1], "iterations": [15]},
    "implicit-bpr": {"factors": [32], "learning_rate": [0.01], "regularization": [0.001], "iterations": [25, 50]},
    "ease": {"lam": [100, 500]},
    "item-knn": {"K": [20, 50]},
    "sasrec": {"hidden": [32], "dropout": [0.2]},
}
SASREC_FIXED = {"blocks": 2, "heads": 1, "lr": 0.001, "batch": 128}
STOCHASTIC = ("implicit-als", "implicit-bpr", "sasrec")


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
    ap.add_argument("--peers", nargs="+", default=list(SPACES), choices=list(SPACES))
    ap.add_argument("--grid", choices=("full", "small"), default="full",
                    help="starting grids: full (the record) or small (a few settings, to try the pipeline); "
                         "both are widened at their edges (default %(default)s)")
    ap.add_argument("--no-widen", action="store_true", help="search the starting grids only (do not widen at edges)")
    ap.add_argument("--sasrec-maxlen", type=int, default=50, help="SASRec: the latest N items of each sequence (default %(default)s)")
    ap.add_argument("--sasrec-max-epochs", type=int, default=200,
                    help="SASRec: most epochs of a tuning fit (early stopping usually ends it sooner) (default %(default)s)")
    ap.add_argument("--sasrec-eval-every", type=int, default=5,
                    help="SASRec: validation NDCG every N epochs while tuning (default %(default)s)")
    ap.add_argument("--sasrec-patience", type=int, default=3,
                    help="SASRec: stop after N validations without improvement (default %(default)s)")
    ap.add_argument("--no-interactions-only", action="store_true",
                    help="skip the second Chorus configuration (`chorus eval --texts off --facts off`)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--validation", type=float, default=0.1,
                    help="share of each training user's latest interactions held out for tuning (default %(default)s)")
    ap.add_argument("--threads", type=int, default=2, help="implicit num_threads; BLAS threads inside EASE (default %(default)s)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--seeds", type=int, default=3,
                    help="Chorus runs with --seed seed..seed+N-1, and the tuned stochastic peers (ALS, BPR, SASRec) "
                         "are refitted with the same seeds; test metrics are mean +- sd over them (tuning uses "
                         "seed only) (default %(default)s)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not rewrite results.md/json")
    common.add_record_flag(ap)
    ap.add_argument("--json-out", metavar="FILE",
                    help="also write the whole result (results.json's layout) to FILE; with --no-write, only there")
    ap.add_argument("--peer-cache", metavar="FILE",
                    help="reuse each peer's tuned result from FILE when the split (train.csv and test.csv by sha256), "
                         "the grid and the settings match, and add the ones computed in this run to it (SASRec's grid "
                         "points and every final fit too, as each finishes: a run cut short resumes there) "
                         "(bench/arch/compare.py: the peers do not change between two Chorus builds). Default: none, "
                         "every peer tuned afresh")
    common.add_render_flags(ap, json_out=False)
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


def fit_sasrec(task, p, seed, threads):
    """SASRec trained on every training sequence for p["epochs"] epochs (chosen on validation)."""
    import sasrec

    scorer, _, _ = sasrec.train(task.seqs, task.n_items, p, seed, threads, p["epochs"])
    return scorer


FITTERS = {"implicit-als": fit_als, "implicit-bpr": fit_bpr, "ease": fit_ease, "item-knn": fit_knn, "sasrec": fit_sasrec}


def sequences(u, i, t, n_users):
    """Per dense user, the dense items of its rows ordered by timestamp, ties by position in train.csv."""
    seqs = [[] for _ in range(n_users)]
    for r in np.lexsort((np.arange(len(u)), t, u)).tolist():
        seqs[u[r]].append(int(i[r]))
    return seqs


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


def sasrec_params(point, args):
    """A SASRec grid point with the fixed settings (sasrec.py's hyper-parameters)."""
    return dict(point, maxlen=args.sasrec_maxlen, **SASREC_FIXED)


def tuning_fits(peer, task, points, args):
    """(grid point, params to refit with, scorer or None, fit seconds, validation metrics or None) for
    each grid point, in order. BPR: one fit per setting of the other parameters, read off at each
    iteration count (fit seconds = time to that epoch). SASRec: one early-stopped fit per point; the
    chosen epoch count joins the params and its validation metrics are returned."""
    if peer == "implicit-bpr":
        groups = {}
        for p in points:
            groups.setdefault(tuple((k, v) for k, v in p.items() if k != "iterations"), []).append(p["iterations"])
        for key, its in groups.items():
            base = dict(key, iterations=max(its))
            for n, scorer, secs in fit_bpr(task, base, args.seed, args.threads, snapshots=sorted(its)):
                yield dict(key, iterations=n), dict(key, iterations=n), scorer, secs, None
        return
    if peer == "sasrec":
        import sasrec
        for point in points:
            params = sasrec_params(point, args)
            part = partial_key(args, "point", point)
            if part and part in args.partial[0]:
                hit = args.partial[0][part]
                print(f"    sasrec {params}: reused from the peer cache (fitted {hit['recorded']})", flush=True)
                args.resumed_seconds += hit["result"]["seconds"]   # counted in the tuning time as if fitted now
                yield point, hit["result"]["params"], None, hit["result"]["seconds"], hit["result"]["validation"]
                continue
            best = {}

            def score(scorer):
                res = evaluate(task, scorer, args.k)
                if res["ndcg"] > best.get("ndcg", -1.0):
                    best.clear(); best.update(res)
                return res["ndcg"]
            ts = time.perf_counter()
            _, history, epoch = sasrec.train(task.seqs, task.n_items, params, args.seed, args.threads,
                                             args.sasrec_max_epochs, evaluate=score, eval_every=args.sasrec_eval_every,
                                             patience=args.sasrec_patience,
                                             log=lambda m: print(m, flush=True))
            secs = time.perf_counter() - ts
            store_partial(args, part, {"params": dict(params, epochs=epoch), "seconds": secs, "validation": dict(best, history=history)})
            yield point, dict(params, epochs=epoch), None, secs, dict(best, history=history)
        return
    for p in points:
        ts = time.perf_counter()
        scorer = FITTERS[peer](task, p, args.seed, args.threads)
        yield p, p, scorer, time.perf_counter() - ts, None


def start_axes(peer, args):
    axes = SMALL_AXES[peer] if args.grid == "small" else SPACES[peer]["axes"]
    return {k: list(v) for k, v in axes.items()}


def grid_points(axes):
    keys = list(axes)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(axes[k] for k in keys))]


def tune(peer, val, args):
    """Grid search on the validation carve-out, widened at its edges: after each round, every numeric
    parameter whose chosen value is the lowest (highest) of its axis gets the next value below (above)
    from SPACES[peer]["widen"], and the new points of the grid (the cartesian product of the widened
    axes, minus those already fitted) are tuned; until no chosen value sits at an edge or the next step
    is past the parameter's limit. Returns (every point's result in the order fitted, the best, the
    rounds, the edges left, seconds)."""
    spec = SPACES[peer]
    axes = start_axes(peer, args)
    results, done, rounds, t0 = [], set(), [], time.perf_counter()
    while True:
        todo = [p for p in grid_points(axes) if json.dumps(p, sort_keys=True) not in done]
        for point, params, scorer, fit_s, pre in tuning_fits(peer, val, todo, args):
            res = pre if pre is not None else evaluate(val, scorer, args.k)
            done.add(json.dumps(point, sort_keys=True))
            entry = {"point": point, "params": params, "val_ndcg": res["ndcg"], "val_recall": res["recall"],
                     "fit_seconds": fit_s, "round": len(rounds)}
            if pre is not None and "history" in pre:
                entry["history"] = pre["history"]
            results.append(entry)
            print(f"  {peer} {params}: validation NDCG@{args.k} {res['ndcg']:.4f} Recall {res['recall']:.4f} ({fit_s:.1f} s)", flush=True)
        best = max(results, key=lambda g: g["val_ndcg"])  # first best in the order fitted on ties
        widened, left = [], []
        new_axes = {k: list(v) for k, v in axes.items()}
        for key, values in axes.items():
            if len(values) < 2 or any(isinstance(v, str) for v in values):
                continue
            v, lo, hi = best["point"][key], min(values), max(values)
            # The next value out: from the full starting grid (when searching the small one) and the widening lists.
            below, above = spec["widen"].get(key, ([], []))
            candidates = set(spec["axes"][key]) | set(below) | set(above)
            for side, end, nxt in (("lowest", lo, max((x for x in candidates if x < lo), default=None)),
                                   ("highest", hi, min((x for x in candidates if x > hi), default=None))):
                if v != end:
                    continue
                if nxt is None or args.no_widen:
                    why = "not widened (--no-widen)" if args.no_widen and nxt is not None else \
                        "limit: " + spec["limits"].get(key, "no further value")
                    left.append(f"{key}={v} ({side}; {why})")
                else:
                    new_axes[key] = sorted(values + [nxt])
                    widened.append(f"{key} {nxt}")
        rounds.append({"axes": {k: list(v) for k, v in axes.items()}, "new_points": len(todo), "chosen": best["point"],
                       "val_ndcg": best["val_ndcg"], "widened": widened})
        if widened:
            print(f"  {peer}: chose {best['point']} at an edge; widening {', '.join(widened)}", flush=True)
        if not widened:
            return results, best, rounds, left, time.perf_counter() - t0
        axes = new_axes


def peer_cache_key(args, dataset, split, peer):
    """What a peer's tuned result depends on (--peer-cache): the split's bytes, its search space (starting
    grid, widening rules), the tuning and refit settings, and the versions of the libraries it runs on
    (SASRec: its fixed settings, early stopping and torch's version too). As JSON text with sorted keys."""
    import implicit

    key = {"dataset": dataset, "train_sha256": split["train_sha256"], "test_sha256": split["test_sha256"],
           "peer": peer, "axes": start_axes(peer, args), "widen": None if args.no_widen else SPACES[peer]["widen"],
           "k": args.k, "validation": args.validation, "threads": args.threads, "seed": args.seed,
           "seeds": args.seeds if peer in STOCHASTIC else 1,
           "implicit": implicit.__version__, "numpy": np.__version__, "scipy": scipy.__version__}
    if peer == "sasrec":
        import torch

        key.update(sasrec=sasrec_params({}, args), max_epochs=args.sasrec_max_epochs, eval_every=args.sasrec_eval_every,
                   patience=args.sasrec_patience, torch=torch.__version__,
                   code=common.sha256(os.path.join(HERE, "sasrec.py")))
    return json.dumps(key, sort_keys=True)


def partial_key(args, kind, what):
    """The peer cache's key of one piece of a peer's tuning (a SASRec grid point, a final fit's seed):
    kept as it finishes, so a run cut short resumes there (None without --peer-cache)."""
    partial = getattr(args, "partial", None)
    return partial and partial[1] + f"|{kind}|" + json.dumps(what, sort_keys=True)


def store_partial(args, key, result):
    if key:
        args.partial[0][key] = {"recorded": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "result": result}
        store_peer_cache(args.peer_cache, args.partial[0])


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
    report, _, meta = run_chorus(args, dataset, tmp, ["--cold-items", "--seed", str(args.seed)], "-cold")
    rows = [r for r in report["rows"] if "(cold items" in r["name"]]
    if not rows:
        print(f"{dataset}: chorus eval --cold-items reported no cold-item rows (fewer cold items than k?)", flush=True)
    command = " ".join(shlex.quote(c.replace(tmp, "$TMP")) for c in meta["command"])
    return {"rows": rows, "command": command, "wall_seconds": meta["wall_seconds"]}


METRICS = ("recall", "ndcg", "hit_rate", "mrr", "coverage")


def aggregate_reports(reports):
    """One report from the seeds' `chorus eval` reports: every row's metrics (and blend weight, ILD) as
    the mean over seeds, with `<metric>_sd` (sample standard deviation; 0 for one seed) and the per-seed
    values of NDCG and Recall."""
    first = reports[0]
    rows = []
    for r0 in first["rows"]:
        per = [next((x for x in rep["rows"] if x["name"] == r0["name"]), None) for rep in reports]
        if any(x is None for x in per):
            sys.exit(f"run.py: row {r0['name']!r} missing from some seed's chorus eval report")
        row = dict(r0)
        for m in METRICS + ("weight", "diversity"):
            vals = [x.get(m) for x in per]
            if any(v is None for v in vals):
                continue
            row[m] = statistics.mean(vals)
            row[m + "_sd"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        row["per_seed"] = {m: [x[m] for x in per] for m in ("ndcg", "recall")}
        rows.append(row)
    return dict(first, rows=rows, fit_seconds=statistics.median(r["fit_seconds"] for r in reports),
                fit_seconds_per_seed=[r["fit_seconds"] for r in reports])


def run_chorus_seeds(args, dataset, tmp, extra, tag, seeds):
    """`chorus eval ... --seed S` for every seed; the split must be the same each time (it does not
    depend on the seed). Returns (aggregated report, split directory, meta, per-seed reports)."""
    reports, metas, sums, split_dir = [], [], set(), None
    for seed in seeds:
        report, sd, meta = run_chorus(args, dataset, tmp, list(extra) + ["--seed", str(seed)], f"{tag}-seed{seed}")
        reports.append(report)
        metas.append(meta)
        sums.add((common.sha256(os.path.join(sd, "train.csv")), common.sha256(os.path.join(sd, "test.csv"))))
        split_dir = split_dir or sd
    if len(sums) != 1:
        sys.exit(f"run.py: chorus eval exported different splits for different seeds on {dataset}")
    enc = [m["text_encoding_seconds"] for m in metas if m["text_encoding_seconds"] is not None]
    meta = {"seeds": list(seeds),
            "commands": [" ".join(shlex.quote(c.replace(tmp, "$TMP")) for c in m["command"]) for m in metas],
            "wall_seconds": [m["wall_seconds"] for m in metas],
            "half_life_days": [m["half_life_days"] for m in metas],
            "text_encoding_seconds": statistics.median(enc) if enc else None,
            "split_sha256": sorted(sums)[0],
            "stdout": metas[0]["stdout"]}  # the first seed's output (bench/arch/compare.py reads the coordinator line)
    return aggregate_reports(reports), split_dir, meta, reports


def ratios_of(blend, peers):
    out = {}
    for metric in ("ndcg", "recall"):
        name = max(peers, key=lambda n: peers[n][metric]) if peers else None
        if name:
            ratio = blend[metric] / peers[name][metric]
            out[metric] = {"best_peer": name, "peer": peers[name][metric], "peer_sd": peers[name].get(metric + "_sd", 0.0),
                           "blend": blend[metric], "blend_sd": blend.get(metric + "_sd", 0.0),
                           "ratio": ratio, "target": 1.05, "met": ratio >= 1.05}
    return out


def run_dataset(args, dataset, tmp):
    seeds = [args.seed + s for s in range(args.seeds)]
    extra = ["--diversity", args.diversity] if args.diversity else []
    report, split_dir, chorus, per_seed = run_chorus_seeds(args, dataset, tmp, extra, "", seeds)
    io = None
    if not args.no_interactions_only:
        io_report, _, io_meta, _ = run_chorus_seeds(args, dataset, tmp, ["--texts", "off", "--facts", "off"], "-io", seeds)
        if io_meta["split_sha256"] != chorus["split_sha256"]:
            sys.exit(f"run.py: the interactions-only run exported a different split on {dataset}")
        io = {"report": io_report, **io_meta}
    cold = None if args.no_cold_items else run_cold_items(args, dataset, tmp)
    u_raw, i_raw, w, t, te_u, te_i = load_export(split_dir)
    u, user_ids, user_pos = dense_ids(u_raw)
    i, item_ids, item_pos = dense_ids(i_raw)
    n_users, n_items = len(user_ids), len(item_ids)
    for rep in [report] + ([io["report"]] if io else []):
        if rep.get("catalogue") not in (None, n_items):
            sys.exit(f"run.py: Chorus's catalogue ({rep['catalogue']}) != the training items of the split ({n_items})")

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
    test.seqs = sequences(u, i, t, n_users)
    cold_pairs = sum(n - len(s) for s, n in relevant.values())

    keep, val_rel = carve_validation(u, i, w, t, args.validation)
    val = Task(u[keep], i[keep], w[keep], n_users, n_items, val_rel)
    val.seqs = sequences(u[keep], i[keep], t[keep], n_users)
    print(f"split: train {len(u)} rows ({n_users} users x {n_items} items), test {len(te_u)} pairs over "
          f"{len(relevant)} users ({cold_pairs} on items absent from train); validation carve-out: "
          f"{int((~keep).sum())} rows held out, {len(val_rel)} validation users", flush=True)

    # Cross-check of the metric code: Chorus's popularity agent re-implemented on the same split
    # (against the first seed's run; the popularity agent does not depend on the seed).
    check = None
    hl = chorus["half_life_days"][0]
    if hl is None:
        print("metric cross-check skipped: no popularity half-life found in chorus eval's output", flush=True)
    else:
        pop = evaluate(test, popularity_scores(test, i, w, t, hl * 86400), args.k)
        row = next((r for r in per_seed[0]["rows"] if r["name"] == "popularity"), None)
        if row:
            check = {"half_life_days": hl, "python": pop,
                     "chorus": {m: row[m] for m in METRICS},
                     "max_abs_difference": max(abs(pop[m] - row[m]) for m in METRICS)}
            print(f"metric cross-check (popularity, half-life {hl:g} d): Python NDCG "
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
        args.partial, args.resumed_seconds = ((cache, key) if cache is not None else None), 0.0
        grid_results, best, rounds, left, tuning_s = tune(peer, val, args)
        tuning_s += args.resumed_seconds
        peer_seeds = seeds if peer in STOCHASTIC else seeds[:1]
        runs, fit_times = [], []
        for seed in peer_seeds:
            part = partial_key(args, "final", {"params": best["params"], "seed": seed})
            if part and part in cache:
                hit = cache[part]
                print(f"{peer}: final fit with seed {seed} reused from the peer cache (fitted {hit['recorded']})", flush=True)
                fit_times.append(hit["result"]["seconds"]); runs.append(hit["result"]["metrics"])
                continue
            ts = time.perf_counter()
            scorer = fit(test, best["params"], seed, args.threads)
            fit_times.append(time.perf_counter() - ts)
            runs.append(evaluate(test, scorer, args.k))
            store_partial(args, part, {"seconds": fit_times[-1], "metrics": runs[-1]})
        metrics = {m: statistics.mean(r[m] for r in runs) for m in METRICS}
        metrics.update({m + "_sd": statistics.stdev(r[m] for r in runs) if len(runs) > 1 else 0.0 for m in METRICS})
        metrics["users"] = runs[0]["users"]
        peers[peer] = {"params": best["params"], "point": best["point"], "val_ndcg": best["val_ndcg"], "seeds": peer_seeds,
                       "per_seed": runs, "fit_seconds": statistics.median(fit_times), "tuning_seconds": tuning_s,
                       "grid_edges": left, "rounds": rounds, "searched_axes": rounds[-1]["axes"],
                       "grid": grid_results, **metrics}
        print(f"{peer}: chose {best['params']} (validation NDCG {best['val_ndcg']:.4f}); test NDCG@{args.k} "
              f"{metrics['ndcg']:.4f} Recall {metrics['recall']:.4f} HR {metrics['hit_rate']:.4f} "
              f"(fit {statistics.median(fit_times):.1f} s, tuning {tuning_s:.0f} s, {len(grid_results)} settings in "
              f"{len(rounds)} rounds; edges left: {', '.join(left) or 'none'})", flush=True)
        if cache is not None:
            # The whole result replaces its pieces.
            for k in [k for k in cache if k.startswith(key + "|")]:
                del cache[k]
            cache[key] = {"recorded": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "result": peers[peer]}
            store_peer_cache(args.peer_cache, cache)

    blend = next(r for r in report["rows"] if r["name"] == "blend")
    ratios = ratios_of(blend, peers)
    io_ratios = ratios_of(next(r for r in io["report"]["rows"] if r["name"] == "blend"), peers) if io else {}
    for label, rs in (("Chorus", ratios), ("Chorus interactions only", io_ratios)):
        for metric, r in rs.items():
            print(f"{dataset}: {metric} {label} blend {r['blend']:.4f} / {r['best_peer']} {r['peer']:.4f} = {r['ratio']:.3f} "
                  f"(target >= 1.05: {'met' if r['met'] else 'NOT met'})", flush=True)

    return {
        "dataset": dataset,
        "data": {"train_rows": int(len(u)), "users": n_users, "items": n_items, "test_pairs": int(len(te_u)),
                 "test_users": len(relevant), "cold_test_pairs": cold_pairs,
                 "validation_rows": int((~keep).sum()), "validation_users": len(val_rel), **split_sums},
        "chorus": {"report": report, **chorus},
        "chorus_per_seed": per_seed,
        "chorus_interactions_only": io,
        "chorus_cold_items": cold,
        "peers": peers,
        "ratios": ratios,
        "ratios_interactions_only": io_ratios,
        "metric_check": check,
    }


def torch_version():
    try:
        import torch
        return torch.__version__
    except ImportError:
        return None


def explicit_command(args):
    """This run's command with every option spelled out (defaults included), so that a later change of
    a default cannot change what the recorded command runs."""
    q = shlex.quote
    c = ["python3", "bench/quality/run.py", "--data", q(args.data), "--datasets", *args.datasets,
         "--chorus", q(args.chorus), "--seed", str(args.seed), "--seeds", str(args.seeds), "--peers", *args.peers,
         "--grid", args.grid, "--k", str(args.k), "--validation", str(args.validation), "--threads", str(args.threads),
         "--diversity", q(args.diversity), "--sasrec-maxlen", str(args.sasrec_maxlen),
         "--sasrec-max-epochs", str(args.sasrec_max_epochs), "--sasrec-eval-every", str(args.sasrec_eval_every),
         "--sasrec-patience", str(args.sasrec_patience)]
    if args.chorus_args:
        c += ["--chorus-args", q(args.chorus_args)]
    for flag in ("no_widen", "no_interactions_only", "no_cold_items", "not_for_the_record"):
        if getattr(args, flag):
            c.append("--" + flag.replace("_", "-"))
    if args.peer_cache:
        c += ["--peer-cache", q(args.peer_cache)]
    return " ".join(c)


def main():
    args = parse_args()
    if args.render:
        return common.render_mode(args, HERE, render_md)
    if not os.path.isdir(args.data):
        sys.exit(f"run.py: data folder {args.data} not found (pass --data DIR, the folder holding ml-100k/ and ml-latest-small/)")
    for d in args.datasets:
        if not os.path.isdir(os.path.join(args.data, d)):
            sys.exit(f"run.py: {os.path.join(args.data, d)} not found (pass --data DIR, the folder holding {d}/)")
    if not (os.path.isfile(args.chorus) and os.access(args.chorus, os.X_OK)):
        sys.exit(f"run.py: {args.chorus} not found or not executable; build it with `make cli` (or pass --chorus)")
    clash = {"--seed", "--texts", "--facts", "--json", "--export-split"} & {a.split("=")[0] for a in shlex.split(args.chorus_args)}
    if clash:
        sys.exit(f"run.py: --chorus-args may not set {', '.join(sorted(clash))} (the script sets them per run)")
    if args.seeds < 1:
        sys.exit("run.py: --seeds must be >= 1")
    if "sasrec" in args.peers:
        try:
            import torch  # noqa: F401
        except ImportError:
            sys.exit("run.py: the sasrec peer needs torch (bench/setup.sh installs it), or leave it out with --peers")
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
                     "grid": args.grid, "widen": not args.no_widen,
                     "spaces": {p: dict(SPACES[p], axes=start_axes(p, args)) for p in args.peers},
                     "sasrec": sasrec_params({}, args) if "sasrec" in args.peers else None,
                     "sasrec_early_stopping": {"max_epochs": args.sasrec_max_epochs, "eval_every": args.sasrec_eval_every,
                                               "patience": args.sasrec_patience} if "sasrec" in args.peers else None,
                     "interactions_only": not args.no_interactions_only, "cold_items": not args.no_cold_items,
                     "diversity": args.diversity},
        "explicit_command": explicit_command(args),
        "versions": {"implicit": implicit.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
                     "threadpoolctl": threadpoolctl.__version__, "torch": torch_version()},
        "threadpoolctl": pools,
        "datasets": results,
        "provenance": prov.finish().as_dict(),
    }
    print(f"\ntotal {result['runtime_seconds']:.0f} s")
    common.write_results(HERE, result, render_md, indent=2, json_out=args.json_out, write=not args.no_write)


# ---------------------------------------------------------------------------------------------


def fmt_params(p):
    return ", ".join(f"{k} {v}" for k, v in p.items())


def pm(row, m, bold=False):
    """mean +- sd (sd over seeds when there is more than one)."""
    b = "**" if bold else ""
    sd = row.get(m + "_sd")
    return f"{b}{row[m]:.4f}{b}" + (f" ± {sd:.4f}" if sd is not None and len(row.get("seeds", [0, 0])) > 1 else "")


def chorus_rows(rep, seeds, s, ch, label):
    lines = []
    for r in filter(is_main_row, rep["rows"]):
        r = dict(r, seeds=seeds)
        name = f"**Chorus blend{label}**" if r["name"] == "blend" else f"Chorus {r['name']} (alone)"
        if r["name"] == "blend":
            setting = (f"`chorus eval{label and ' --texts off --facts off'}`{(' ' + s['chorus_args']) if s['chorus_args'] else ''}, "
                       f"seeds {', '.join(str(x) for x in seeds)}; blend weights on its own validation hold-out")
            fit = f"{rep['fit_seconds']:.2f}"
            if ch.get("text_encoding_seconds") is not None:
                fit += f" (+ {ch['text_encoding_seconds']:.1f} text encoding)"
        else:
            setting = f"blend weight {r['weight']:.3f}" if r.get("weight") is not None else ""
            hls = [h for h in ch.get("half_life_days", []) if h is not None]
            if r["name"] == "popularity" and hls:
                hl = sorted(set(hls))
                setting += "; " + ", ".join(f"half-life {h:g} d" if h > 0 else "no decay" for h in hl)
            fit = "(in blend)"
        blend = r["name"] == "blend"
        lines.append(f"| {name} | {pm(r, 'recall', blend)} | {pm(r, 'ndcg', blend)} | {pm(r, 'hit_rate')} | {pm(r, 'mrr')} | "
                     f"{pm(r, 'coverage')} | {setting} | | {fit} |")
    return lines


def peer_rows(d):
    lines = []
    for name, p in d["peers"].items():
        lines.append(f"| {name} | {pm(p, 'recall')} | {pm(p, 'ndcg')} | {pm(p, 'hit_rate')} | {pm(p, 'mrr')} | "
                     f"{pm(p, 'coverage')} | {fmt_params(p['params'])} | {p['val_ndcg']:.4f} | {p['fit_seconds']:.2f} |")
    return lines


def ratio_lines(ratios, k, who):
    lines = []
    for metric, label in (("ndcg", f"NDCG@{k}"), ("recall", f"Recall@{k}")):
        r = ratios.get(metric)
        if r:
            lines.append(f"- **{label}: {who} / best peer ({r['best_peer']}) = {r['blend']:.4f} / {r['peer']:.4f} = "
                         f"{r['ratio']:.3f}** (means over seeds; target >= {r['target']:.2f}: **{'met' if r['met'] else 'not met'}**)")
    return lines


def render_dataset(d, s):
    rep, ch = d["chorus"]["report"], d["chorus"]
    k = rep.get("k", s["k"])
    seeds = ch["seeds"]
    header = [f"| recommender | Recall@{k} | NDCG@{k} | HR@{k} | MRR@{k} | Cov@{k} | setting (chosen on validation) | val NDCG@{k} | fit (s) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines = [f"## {d['dataset']}", "",
             f"Train {d['data']['train_rows']:,} interactions ({d['data']['users']:,} users x {d['data']['items']:,} items); "
             f"test {d['data']['test_pairs']:,} relevant pairs over {d['data']['test_users']:,} users, "
             f"{d['data']['cold_test_pairs']:,} of them on items absent from train (misses for everyone). "
             f"Validation carve-out for the peers' tuning: {d['data']['validation_rows']:,} training rows held out, "
             f"{d['data']['validation_users']:,} validation users.", "",
             f"### Chorus (texts and facts, its default) against the peers", "",
             f"Mean ± sd over seeds {', '.join(str(x) for x in seeds)} for Chorus and the stochastic peers "
             f"({', '.join(n for n in d['peers'] if n in STOCHASTIC) or 'none run'}); EASE and item-kNN are deterministic.", ""]
    lines += header + chorus_rows(rep, seeds, s, ch, "") + peer_rows(d) + [""]
    lines += ratio_lines(d["ratios"], k, "Chorus blend")
    lines.append("- Chorus ran as: " + "; ".join(f"`{c}` ({w:.0f} s wall)" for c, w in zip(ch["commands"], ch["wall_seconds"])) + ".")
    lines.append("")
    io = d.get("chorus_interactions_only")
    if io:
        lines += [f"### Chorus on interactions only (`--texts off --facts off`) against the same peers", "",
                  "No movie texts and no facts: Chorus's agents see the same interactions (with timestamps) as the peers; "
                  "the content and knowledge-graph agents are absent. The peers' rows are the same fits as above.", ""]
        lines += header + chorus_rows(io["report"], io["seeds"], s, io, " (interactions only)") + peer_rows(d) + [""]
        lines += ratio_lines(d.get("ratios_interactions_only", {}), k, "Chorus blend (interactions only)")
        lines.append("- Chorus ran as: " + "; ".join(f"`{c}` ({w:.0f} s wall)" for c, w in zip(io["commands"], io["wall_seconds"])) + ".")
        lines.append("")
    lines += ["### Peer tuning: the grids searched", ""]
    for n, p in d["peers"].items():
        axes = "; ".join(f"{key} {{{', '.join(format(v, 'g') if not isinstance(v, str) else v for v in vals)}}}"
                         for key, vals in p["searched_axes"].items())
        widened = [f"round {j + 1}: +{', +'.join(r['widened'])}" for j, r in enumerate(p["rounds"]) if r["widened"]]
        lines.append(f"- {n}: {len(p['grid'])} settings in {len(p['rounds'])} round(s), {p['tuning_seconds']:.0f} s; searched "
                     f"{axes}" + (f" (widened at the edges, {'; '.join(widened)})" if widened else " (no widening needed)")
                     + f". Chosen value at an edge: {'; '.join(p['grid_edges']) if p['grid_edges'] else 'none'}."
                     + (f" Reused from the peer cache (recorded {p['cached_from']})." if p.get("cached_from") else ""))
        if n == "sasrec":
            lines[-1] += f" Epochs chosen by early stopping: {p['params'].get('epochs')}."
    lines.append("")
    c = d.get("metric_check")
    if c:
        lines.append(f"- Metric cross-check: Chorus's popularity agent re-implemented in Python (sum of weights x "
                     f"2^(-age/half-life), {'half-life ' + format(c['half_life_days'], 'g') + ' d' if c['half_life_days'] > 0 else 'no decay'} "
                     f"as Chorus chose) and scored by this script: "
                     f"NDCG@{k} {c['python']['ndcg']:.4f} vs Chorus's {c['chorus']['ndcg']:.4f}, Recall@{k} "
                     f"{c['python']['recall']:.4f} vs {c['chorus']['recall']:.4f}; largest difference over Recall, NDCG, "
                     f"HR, MRR, coverage {c['max_abs_difference']:.1e}.")
        lines.append("")
    lines += render_diversity(rep, k, seeds) + render_cold(d.get("chorus_cold_items"), k)
    return "\n".join(lines)


def render_diversity(rep, k, seeds):
    """The accuracy/diversity curve: the blend at each MMR knob value of the main run (means over seeds)."""
    curve = [(0.0, r) for r in rep["rows"] if r["name"] == "blend"]
    curve += [(float(r["name"].split(" MMR ")[1]), r) for r in rep["rows"] if r["name"].startswith("blend MMR ")]
    if len(curve) < 2:
        return []
    lines = [f"### Accuracy / diversity trade-off (Chorus blend, MMR re-ranking; means over seeds {', '.join(str(x) for x in seeds)})", "",
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
    """results.md from the results JSON alone (`--render` re-renders the committed one)."""
    if "explicit_command" not in r:
        raise common.LegacyRecord("it predates the seeds / widening / SASRec layout (recorded before the driver wrote "
                                  "explicit_command, spaces, seeds); rerun the benchmark to record it")
    m, s, v = r["machine"], r["settings"], r["versions"]
    pools = "\n".join(
        f"| {p.get('user_api')} | {p.get('internal_api')} | {p.get('num_threads')} | {p.get('version')} | "
        f"{p.get('threading_layer', '')} | `{os.path.basename(p.get('filepath', ''))}` |" for p in r["threadpoolctl"])
    grids = "\n".join(f"  - {p}: starting grid " + axes_text(sp_["axes"]) + "; widened at an edge with, below / above: "
                       + ("; ".join(f"{key} {{{', '.join(format(x, 'g') for x in lo)}}} / {{{', '.join(format(x, 'g') for x in hi)}}}"
                                    for key, (lo, hi) in sp_["widen"].items()) if s["widen"] else "(not widened: --no-widen)")
                       for p, sp_ in s["spaces"].items())
    summary = []
    for d in r["datasets"]:
        for cfg, rs in (("Chorus", d["ratios"]), ("Chorus, interactions only", d.get("ratios_interactions_only") or {})):
            for metric, label in (("ndcg", "NDCG@10"), ("recall", "Recall@10")):
                x = rs.get(metric)
                if x:
                    bsd = f" ± {x['blend_sd']:.4f}" if s["seeds"] > 1 else ""
                    psd = f" ± {x['peer_sd']:.4f}" if s["seeds"] > 1 and x["best_peer"] in STOCHASTIC else ""
                    summary.append(f"| {d['dataset']} | {cfg} | {label} | {x['blend']:.4f}{bsd} | "
                                   f"{x['best_peer']} {x['peer']:.4f}{psd} | "
                                   f"{x['ratio']:.3f} | {'met' if x['met'] else 'not met'} |")
    sas = s.get("sasrec")
    sas_line = ""
    if sas:
        es = s["sasrec_early_stopping"]
        sas_line = (f"\n- SASRec (bench/quality/sasrec.py, PyTorch {v.get('torch')} CPU, `torch.set_num_threads({s['threads']})`): "
                    f"{sas['blocks']} blocks, {sas['heads']} head, the latest {sas['maxlen']} items of each user's training "
                    f"sequence (timestamp order, ties by position in train.csv), full-softmax cross-entropy over the catalogue at every "
                    f"position, Adam lr {sas['lr']} (betas 0.9, 0.98), batch {sas['batch']}; epochs chosen by early stopping on "
                    f"validation NDCG@{s['k']} (every {es['eval_every']} epochs, patience {es['patience']}, at most {es['max_epochs']}), "
                    f"then refitted on the whole training split for that many epochs.")
    return f"""# Ranking quality: Chorus vs implicit ALS / BPR, EASE, item-kNN, SASRec

Recorded by `bench/quality/run.py`; do not edit by hand (rerun it: `make bench-quality`).

{chr(10).join(common.provenance_banner(r.get('provenance')))}

Every recommender is scored on the split `chorus eval` itself uses (exported with `--export-split`),
with the same metric definitions. Peers are tuned on a validation carve-out of the training split only,
then refitted on the whole training split; the test split is touched once per peer.

## Summary: Chorus blend / best peer (target >= 1.05)

Means ± sd over seeds {', '.join(str(s['seed'] + j) for j in range(s['seeds']))} (Chorus and the stochastic peers); ratio of the means.

| dataset | Chorus configuration | metric | Chorus blend | best peer | ratio | target |
| --- | --- | --- | --- | --- | --- | --- |
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

The same run with every option spelled out (defaults included, so a later change of a default does not change it):

```
{r.get('explicit_command', r['command'])}
```

The Chorus binary it ran is named (path, size, sha256) at the top of this file.

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
  the refits of the stochastic peers (implicit-als, implicit-bpr, sasrec) use seeds {s['seed']} ... {s['seed'] + s['seeds'] - 1}
  and report the mean ± sd over seeds. Fit time: the median refit on the whole training split.
- Grids ({s['grid']} starting grids): when the validation-chosen value of a parameter is the lowest (highest) of its
  axis, the next value below (above) is added to that axis and the new points of the grid are tuned, until no chosen
  value sits at an edge or the parameter's limit is reached (the grids searched, per dataset, are listed above;
  every point's validation score is in results.json):
{grids}{sas_line}
- Chorus: `chorus eval` with its defaults and `--seed S` for each seed {s['seed']} ... {s['seed'] + s['seeds'] - 1} (every agent at its
  default setting; the popularity half-life and the coordinator chosen by the fit on its own validation hold-out of the
  training data, which never sees the test split; every CPU as worker threads){'; extra arguments: `' + s['chorus_args'] + '`' if s['chorus_args'] else ''};
  {'and again with `--texts off --facts off` (interactions only, its own table); ' if s.get('interactions_only') else ''}the
  cold-item run uses seed {s['seed']} only. Rows are means ± sd over the seeds; the agents' rows are each agent alone;
  "weight" is its share in the blend as `chorus eval` reports it (mean). Chorus's fit time is the median whole engine
  fit (every agent and the coordinator); the sentence encoding of the movie texts is reported apart.
- Threads: implicit `num_threads={s['threads']}`; this Python process ran with OPENBLAS_NUM_THREADS={s['python_OPENBLAS_NUM_THREADS']}
  (implicit's documented setting), raised to {s['threads']} with threadpoolctl inside EASE's fit and scoring (dense BLAS);
  torch `set_num_threads({s['threads']})` for SASRec.

## Machine

- date: {m['date']}
- nproc: {m['nproc']}; CPU: {m['cpu_model']}; memory: {m['memory_gib']} GiB; kernel {m['kernel']}
- uptime before: `{m['uptime_before']}`; after: `{m['uptime_after']}`{load_note(m)}
- {m['swift']}; Python {m['python']}; implicit {v['implicit']}, numpy {v['numpy']}, scipy {v['scipy']}, threadpoolctl {v['threadpoolctl']}, torch {v.get('torch')}
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


def axes_text(axes):
    return "; ".join(f"{key} {{{', '.join(format(x, 'g') if not isinstance(x, str) else x for x in vals)}}}"
                     for key, vals in axes.items())


if __name__ == "__main__":
    main()
