"""Helpers shared by the bench/ drivers: machine facts, the MovieLens loader, the temporal split.

Standard library + numpy only. The split is the Python twin of
Sources/ChorusCore/TemporalHoldOut.swift and must stay in step with it.
"""

import datetime
import hashlib
import math
import os
import platform
import shlex
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.normpath(os.path.join(REPO, "..", "shared", "data"))


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_text(cmd, cwd=REPO):
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def machine_facts():
    """nproc, CPU model, memory, kernel, toolchain and repository revision."""
    mem_kib = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kib = int(line.split()[1])
    except OSError:
        pass
    rev = run_text(["git", "rev-parse", "--short", "HEAD"]) or "unknown"
    dirty = run_text(["git", "status", "--porcelain", "--untracked-files=no"])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "swift": (run_text(["swift", "--version"]).splitlines() or ["unknown"])[0],
        "git_revision": rev + (" (with uncommitted changes)" if dirty else ""),
    }


def command_line():
    """The command that ran this script, as one could paste it (from the repository root)."""
    env = []
    for name in ("OPENBLAS_NUM_THREADS",):
        if name in os.environ and os.environ.get("_BENCH_SET_" + name) != "1":
            env.append(f"{name}={os.environ[name]}")
    script = os.path.relpath(os.path.abspath(sys.argv[0]), REPO)
    return " ".join(env + ["python3", script] + [shlex.quote(a) for a in sys.argv[1:]])


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_ratings(path):
    """ratings.csv (header, LF or CRLF) -> (users int64, items int64, ratings float32, timestamps int64),
    in file order."""
    import numpy as np

    users, items, ratings, times = [], [], [], []
    with open(path, newline="") as f:
        header = f.readline()
        if not header.lower().startswith("userid"):
            raise SystemExit(f"{path}: expected the MovieLens header userId,movieId,rating,timestamp")
        for line in f:
            line = line.strip()
            if not line:
                continue
            u, i, r, t = line.split(",")
            users.append(int(u)); items.append(int(i)); ratings.append(float(r)); times.append(int(t))
    return (np.array(users, dtype=np.int64), np.array(items, dtype=np.int64),
            np.array(ratings, dtype=np.float32), np.array(times, dtype=np.int64))


def temporal_holdout(users, timestamps, fraction=0.2, minimum_rows=3):
    """Per-user temporal hold-out, as Sources/ChorusCore/TemporalHoldOut.swift: each user's latest
    `fraction` of rows (by timestamp, ties by file position) are held out; at least one row stays
    in train; users with fewer than max(2, minimum_rows) rows stay whole in train.
    Returns a bool array, True = held out."""
    import numpy as np

    held = np.zeros(len(users), dtype=bool)
    rows_of = {}
    for row, u in enumerate(users.tolist()):
        rows_of.setdefault(u, []).append(row)
    for rows in rows_of.values():
        if len(rows) < max(2, minimum_rows):
            continue
        rows.sort(key=lambda r: (timestamps[r], r))
        # Swift's .rounded() rounds half away from zero (Python's round() would round half to even).
        n = min(len(rows) - 1, max(1, int(math.floor(len(rows) * fraction + 0.5))))
        held[rows[-n:]] = True
    return held


def ndcg_at_k(user_factors, item_factors, item_ids, train_csr, relevant, k=10):
    """Mean NDCG@k (binary relevance, log2 discount, ideal over min(k, |relevant|)) over the users
    in `relevant` (dense user index -> set of original item ids; held-out items missing from the
    train catalogue count in the ideal but can never be retrieved). `item_ids[i]` is the original
    id of dense item i. Each user's train items are excluded from the ranking; ties go to the
    lower item index. Same definition as ChorusEval's RankingMetrics.ndcg."""
    import numpy as np

    discounts = 1.0 / np.log2(np.arange(k) + 2.0)
    total = 0.0
    for u, rel in relevant.items():
        scores = item_factors @ user_factors[u]
        scores[train_csr.indices[train_csr.indptr[u]:train_csr.indptr[u + 1]]] = -np.inf
        top = np.argsort(-scores, kind="stable")[:k]
        hits = np.array([int(item_ids[i]) in rel for i in top], dtype=bool)
        dcg = float(discounts[:len(top)][hits].sum())
        idcg = float(discounts[:min(k, len(rel))].sum())
        total += dcg / idcg
    return total / max(1, len(relevant))
