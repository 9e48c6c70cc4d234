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


class Provenance:
    """Where a recorded figure comes from, so a reader can tie it to a commit and rerun it.

    A driver makes one when it starts, naming the binaries (and library) it will run; that takes
    the commit, whether the tree is clean, the exact command, the machine, the load average and each
    binary's path, size, modification time and sha256. `finish()` adds the load after the run.
    `check_record(allowed)` is called before writing results: a run from a tree with uncommitted
    changes, or with a binary older than the commit it claims, is refused (exit 2) unless the caller
    passed --not-for-the-record, and then every written file says so (`banner()`).
    """

    def __init__(self, binaries=()):
        self.commit = run_text(["git", "rev-parse", "HEAD"]) or "unknown"
        self.dirty = run_text(["git", "status", "--porcelain", "--untracked-files=no"]).splitlines()
        try:
            self.commit_time = int(run_text(["git", "log", "-1", "--format=%ct"]) or 0)
        except ValueError:
            self.commit_time = 0
        self.command = command_line()
        self.machine = machine_facts()
        self.load_before = list(os.getloadavg())
        self.load_after = None
        self.binaries = []
        for b in binaries:
            path = os.path.abspath(b)
            st = os.stat(path)
            self.binaries.append({
                "path": os.path.relpath(path, REPO) if path.startswith(REPO + os.sep) else path,
                "bytes": st.st_size,
                "modified": datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
                "sha256": sha256(path),
                "older_than_commit": bool(self.commit_time) and st.st_mtime < self.commit_time,
            })
        self.not_for_the_record = False

    def finish(self):
        self.load_after = list(os.getloadavg())
        return self

    def problems(self):
        """Why this run cannot be recorded (empty when it can)."""
        out = []
        if self.dirty:
            out.append(f"the tree has uncommitted changes ({len(self.dirty)} files, e.g. {self.dirty[0].strip()})")
        for b in self.binaries:
            if b["older_than_commit"]:
                out.append(f"{b['path']} is older than commit {self.commit[:10]}: rebuild it from this commit")
        return out

    def check_record(self, not_for_the_record):
        """Exits with status 2 when the run may not be recorded and the caller did not allow it."""
        problems = self.problems()
        if problems and not not_for_the_record:
            for p in problems:
                print(f"refusing to record: {p}", file=sys.stderr)
            print("commit first (and rebuild), or pass --not-for-the-record to write results marked as such",
                  file=sys.stderr)
            sys.exit(2)
        self.not_for_the_record = bool(problems)

    def as_dict(self):
        return {"commit": self.commit, "clean": not self.dirty, "not_for_the_record": self.not_for_the_record,
                "problems": self.problems(), "command": self.command, "machine": self.machine,
                "loadavg_before": self.load_before, "loadavg_after": self.load_after, "binaries": self.binaries}

    def banner(self):
        return provenance_banner(self.as_dict())


def provenance_banner(p):
    """Markdown lines for the top of a results file, from `Provenance.as_dict()` (kept in the
    results JSON, so a re-render from the JSON says the same)."""
    if not p:
        return ["> Recorded before runs kept their provenance (commit, binaries, load): not tied to a commit."]
    lines = []
    if p.get("not_for_the_record"):
        lines += ["> **NOT FOR THE RECORD**: " + "; ".join(p.get("problems", [])) + ".", ""]
    load = lambda l: "n/a" if l is None else f"{l[0]:.2f}"
    lines.append(f"Recorded from commit `{p['commit'][:12]}`{'' if p['clean'] else ' (with uncommitted changes)'} "
                 f"with `{p['command']}`; load average {load(p['loadavg_before'])} before, {load(p['loadavg_after'])} after.")
    for b in p.get("binaries", []):
        lines.append(f"Ran `{b['path']}` ({b['bytes']} bytes, modified {b['modified']}, sha256 `{b['sha256'][:16]}…`).")
    return lines


def add_record_flag(parser):
    parser.add_argument("--not-for-the-record", action="store_true",
                        help="write results even from a tree with uncommitted changes (or a stale binary); "
                             "they are marked NOT FOR THE RECORD")


class LegacyRecord(Exception):
    """A results JSON recorded before its driver kept everything results.md shows: it cannot be
    re-rendered (`--render` exits 3 with the reason; bench/check.py reports it as not checkable yet)."""


def add_render_flags(parser, json_out=True):
    """--render [OUT] and --from FILE (re-render results.md from a results JSON, running nothing), and
    --json-out FILE (the whole result also written there; with --no-write, only there)."""
    parser.add_argument("--render", nargs="?", const="-", metavar="OUT",
                        help="run nothing: render results.md from the committed results.json (or --from FILE) "
                             "to OUT (default: stdout); exit 3 when that JSON predates the current layout")
    parser.add_argument("--from", dest="render_from", metavar="FILE",
                        help="with --render: the results JSON to render (default: results.json beside the driver)")
    if json_out:
        parser.add_argument("--json-out", metavar="FILE",
                            help="also write the whole result (results.json's layout) to FILE; with --no-write, only there")


def render_mode(args, here, render):
    """Handles --render: reads the JSON, renders it with `render(result) -> str`, writes OUT or stdout."""
    src = args.render_from or os.path.join(here, "results.json")
    shown = os.path.relpath(src, REPO) if src.startswith(REPO + os.sep) else src
    if not os.path.isfile(src):
        print(f"{shown}: no results JSON to render", file=sys.stderr)
        sys.exit(3)
    import json
    with open(src) as f:
        result = json.load(f)
    try:
        text = render(result)
    except LegacyRecord as e:
        print(f"cannot render {shown}: {e}", file=sys.stderr)
        sys.exit(3)
    if args.render == "-":
        sys.stdout.write(text)
    else:
        with open(args.render, "w") as f:
            f.write(text)
        print(f"rendered {args.render} from {shown}", file=sys.stderr)


def write_results(here, result, render, indent=2, json_out=None, write=True):
    """Writes results.json, then results.md rendered from what was written (the JSON read back), so that
    `--render` reproduces results.md byte for byte from results.json. With `json_out`, the JSON also
    goes there. With write=False (--no-write) the markdown is printed instead. Returns it."""
    import json
    text = json.dumps(result, indent=indent, default=str) + "\n"
    md = render(json.loads(text))
    if json_out:
        with open(json_out, "w") as f:
            f.write(text)
        print(f"wrote {json_out}")
    if not write:
        print(md)  # --no-write: the report this run would have written
    else:
        with open(os.path.join(here, "results.json"), "w") as f:
            f.write(text)
        with open(os.path.join(here, "results.md"), "w") as f:
            f.write(md)
        print(f"wrote {os.path.relpath(os.path.join(here, 'results.md'), REPO)} and results.json")
    return md


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
