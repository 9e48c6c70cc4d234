#!/usr/bin/env python3
"""Before / after: two builds of Chorus measured on this machine in one run, for a change that must
not alter behaviour (the architecture refactor). See bench/arch/README.md.

    python3 bench/arch/compare.py --before DIR --after DIR
        [--only quality recommend swift] [--datasets ml-100k ml-latest-small] [--no-cold-items]
        [--quality-repeat 1] [--rounds 5] [--passes 3] [--data DIR] [--out DIR] [--work DIR] [--merge]

A side DIR holds chorus-cli, lib/libchorus.so (or libchorus.so), optionally chorus-bench, and
optionally COMMIT (a note whose first 40-hex word is the commit built); --before-cli, --before-lib,
--before-bench, --before-commit, --before-include (and the same for --after) name them one by one.

Phases (--only picks some; "latency" and "fit" are names for "recommend"):
  quality    bench/quality/run.py --chorus <side's CLI> per side (the path `make bench-quality`
             takes), the peers tuned once and reused for both sides through --peer-cache when the
             split is the same; ratios blend / best tuned peer, every Chorus row compared.
  recommend  bench/recommend/bench_recommend.c compiled against each side's library, --rounds
             processes per side, alternating (before, after, after, before, ...): recommend p50/p99
             for the blend, the blend with a query and "als" alone; fit time; peak RSS; digests of
             every user's top 10.
  swift      `chorus-bench latency` per side (when both sides have chorus-bench): p50/p99 of every
             agent alone and the coordinator, Swift API, from a snapshot each side writes itself.

Writes OUT/results.md and OUT/results.json (OUT defaults to bench/arch; --no-write prints results.md
instead; --render [OUT] renders OUT/results.md from OUT/results.json, running nothing); logs and intermediate files
go to WORK (default bench/arch/work, which git ignores), the peer cache included.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import common  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SIDES = ("before", "after")
PHASES = ("quality", "recommend", "swift")
DATASETS = ("ml-100k", "ml-latest-small")
# The per-row figures `chorus eval --json` reports, compared between the sides.
ROW_METRICS = ("recall", "ndcg", "hit_rate", "mrr", "coverage", "diversity", "weight")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for side in SIDES:
        ap.add_argument(f"--{side}", metavar="DIR", help=f"the {side} side's folder (layout above)")
        ap.add_argument(f"--{side}-cli", metavar="PATH", help="its chorus-cli (default DIR/chorus-cli)")
        ap.add_argument(f"--{side}-lib", metavar="PATH", help="its libchorus.so (default DIR/lib/libchorus.so, else DIR/libchorus.so)")
        ap.add_argument(f"--{side}-bench", metavar="PATH", help="its chorus-bench (default DIR/chorus-bench when present)")
        ap.add_argument(f"--{side}-commit", metavar="SHA", help="the commit it was built from (default: read from DIR/COMMIT)")
        ap.add_argument(f"--{side}-include", metavar="DIR",
                        help="the chorus.h folder to compile bench_recommend.c against (default: this tree's include/)")
    ap.add_argument("--only", nargs="+", default=list(PHASES), choices=list(PHASES) + ["latency", "fit"],
                    help="phases to run (default: all)")
    ap.add_argument("--data", default=common.DEFAULT_DATA, help="folder holding ml-100k/ and ml-latest-small/ (default %(default)s)")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS, help="quality: datasets (default both)")
    ap.add_argument("--no-cold-items", action="store_true", help="quality: skip the second `chorus eval --cold-items` run per dataset")
    ap.add_argument("--quality-repeat", type=int, default=1,
                    help="quality: runs per side (Chorus only; the peers come from the cache); > 1 checks that a side "
                         "repeats its own figures (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=5, help="recommend and swift: processes per side, alternating (default %(default)s)")
    ap.add_argument("--passes", type=int, default=3, help="recommend and swift: timed passes over every user per process (default %(default)s)")
    ap.add_argument("--users", type=int, default=0,
                    help="recommend: measure the first N users only (bench_recommend --users; a quick check, not a record)")
    ap.add_argument("--max-texts", type=int, default=0,
                    help="recommend: give the engine the first N movie texts only (a quick check, not a record)")
    ap.add_argument("--out", default=HERE, help="where results.md and results.json go (default %(default)s)")
    ap.add_argument("--work", default=os.path.join(HERE, "work"), help="logs, builds of the C driver, the peer cache (default %(default)s)")
    ap.add_argument("--merge", action="store_true",
                    help="keep the phases this run does not measure from OUT/results.json, when its binaries are the same")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    ap.add_argument("--no-write", action="store_true", help="print results.md instead of writing OUT/results.md and results.json")
    common.add_render_flags(ap)
    args = ap.parse_args()
    if args.render:
        return args
    args.only = sorted({"recommend" if p in ("latency", "fit") else p for p in args.only}, key=PHASES.index)
    if args.rounds < 1 or args.passes < 1 or args.quality_repeat < 1:
        ap.error("--rounds, --passes and --quality-repeat must be >= 1")
    if (args.users or args.max_texts) and not args.no_write:
        ap.error("--users / --max-texts make a quick check, not a record: pass --no-write")
    return args


# ---------------------------------------------------------------------------------------------
# Sides


def resolve_side(args, side):
    """The files of one side, checked, with their sha256 and the commit they were built from."""
    def opt(name):
        return getattr(args, f"{side}_{name}")

    root = getattr(args, side)

    def pick(explicit, *candidates):
        if explicit:
            return os.path.abspath(explicit)
        for c in candidates:
            if root and os.path.exists(os.path.join(root, c)):
                return os.path.abspath(os.path.join(root, c))
        return None
    s = {"label": side, "dir": os.path.abspath(root) if root else None,
         "cli": pick(opt("cli"), "chorus-cli"),
         "lib": pick(opt("lib"), os.path.join("lib", "libchorus.so"), "libchorus.so"),
         "bench": pick(opt("bench"), "chorus-bench"),
         "include": os.path.abspath(opt("include") or os.path.join(common.REPO, "include"))}
    for key in ("cli", "lib"):
        if not s[key] or not os.path.isfile(s[key]):
            sys.exit(f"compare.py: {side}: no {key} (pass --{side} DIR or --{side}-{key} PATH)")
    if s["bench"] and not os.path.isfile(s["bench"]):
        sys.exit(f"compare.py: {side}: {s['bench']} not found")
    if not os.path.isfile(os.path.join(s["include"], "chorus.h")):
        sys.exit(f"compare.py: {side}: {s['include']}/chorus.h not found")
    s["commit"] = opt("commit")
    note = os.path.join(root, "COMMIT") if root else None
    if not s["commit"] and note and os.path.isfile(note):
        with open(note) as f:
            m = re.search(r"\b[0-9a-f]{40}\b", f.read())
        s["commit"] = m.group(0) if m else None
    s["commit"] = s["commit"] or "unknown"
    s["sha256"] = {k: common.sha256(s[k]) for k in ("cli", "lib", "bench") if s[k]}
    return s


def clean_env():
    """The environment for the measured processes: no library path that could override the rpath."""
    env = dict(os.environ)
    for name in ("LD_LIBRARY_PATH", "LD_PRELOAD", "CHORUS_LIBRARY"):
        env.pop(name, None)
    return env


def load():
    return [round(x, 2) for x in os.getloadavg()]


def now():
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def median(xs):
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------------------------------------
# Quality: bench/quality/run.py per side, peers through the cache


def run_quality(args, sides):
    phase = {"started": now(), "load_before": load(), "runs": {s: [] for s in SIDES}}
    cache = os.path.join(args.work, "peer-cache.json")
    t0 = time.perf_counter()
    for rep in range(args.quality_repeat):
        for side in SIDES:
            out = os.path.join(args.work, f"quality-{side}-{rep + 1}.json")
            logf = os.path.join(args.work, f"quality-{side}-{rep + 1}.log")
            cmd = [sys.executable, os.path.join(common.REPO, "bench", "quality", "run.py"), "--data", args.data,
                   "--chorus", sides[side]["cli"], "--datasets", *args.datasets, "--no-write",
                   "--json-out", out, "--peer-cache", cache] + (["--no-cold-items"] if args.no_cold_items else [])
            log(f"quality {side} run {rep + 1}: {' '.join(shlex.quote(c) for c in cmd)} > {logf}")
            ts, la = time.perf_counter(), load()
            with open(logf, "w") as f:
                rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=common.REPO, env=clean_env()).returncode
            if rc != 0:
                sys.exit(f"compare.py: bench/quality/run.py failed ({rc}) for {side}; see {logf}")
            with open(out) as f:
                r = json.load(f)
            phase["runs"][side].append(summarise_quality(r, wall=time.perf_counter() - ts, load_before=la,
                                                         load_after=load(), log=logf))
            for d in phase["runs"][side][-1]["datasets"]:
                log("quality {}: {} NDCG ratio {:.4f}, Recall ratio {:.4f}".format(
                    side, d["dataset"], d["ratios"]["ndcg"]["ratio"], d["ratios"]["recall"]["ratio"]))
    phase.update(seconds=time.perf_counter() - t0, load_after=load(), finished=now(),
                 command_per_side=("python3 bench/quality/run.py --data DATA --chorus <side>/chorus-cli --datasets "
                                   + " ".join(args.datasets) + " --no-write --json-out WORK/quality-<side>-<n>.json "
                                   "--peer-cache WORK/peer-cache.json" + (" --no-cold-items" if args.no_cold_items else "")),
                 comparison=compare_quality(phase["runs"]))
    return phase


def summarise_quality(r, **extra):
    """What the comparison needs from one run.py result: per dataset the split's checksums, every
    Chorus row (main and cold-item runs), the peers' figures and the ratios."""
    out = dict(extra, runtime_seconds=r["runtime_seconds"], datasets=[])
    for d in r["datasets"]:
        rows = {row["name"]: {m: row.get(m) for m in ROW_METRICS} for row in d["chorus"]["report"]["rows"]}
        for row in (d.get("chorus_cold_items") or {}).get("rows", []):
            rows[row["name"]] = {m: row.get(m) for m in ROW_METRICS}
        out["datasets"].append({
            "dataset": d["dataset"], "train_sha256": d["data"]["train_sha256"], "test_sha256": d["data"]["test_sha256"],
            "rows": rows, "ratios": d["ratios"],
            "peers": {n: {"ndcg": p["ndcg"], "recall": p["recall"], "params": p["params"],
                          "cached_from": p.get("cached_from")} for n, p in d["peers"].items()},
            "chorus_fit_seconds": d["chorus"]["report"].get("fit_seconds"),
            "chorus_eval_wall_seconds": d["chorus"]["wall_seconds"],
            "text_encoding_seconds": d["chorus"].get("text_encoding_seconds"),
            "half_life_days": d["chorus"].get("half_life_days"),
            "coordinator": next((ln.strip() for ln in d["chorus"]["stdout"].splitlines() if "coordinator:" in ln), None)})
    return out


def row_difference(a, b):
    """Largest |a - b| over the metrics of the rows both runs have, and the rows only one has."""
    worst, where = 0.0, None
    for name in a.keys() & b.keys():
        for m in ROW_METRICS:
            x, y = a[name].get(m), b[name].get(m)
            if x is None and y is None:
                continue
            if x is None or y is None:
                return float("inf"), f"{name} {m}: only one side reports it", []
            if abs(x - y) > worst:
                worst, where = abs(x - y), f"{name} {m}: {x:.6f} vs {y:.6f}"
    return worst, where, sorted(a.keys() ^ b.keys())


def compare_quality(runs):
    """Per dataset: are the splits the same, how far apart are the rows (between sides, and within a
    side when it ran more than once)."""
    out = []
    first = {s: {d["dataset"]: d for d in runs[s][0]["datasets"]} for s in SIDES}
    for name in first["before"]:
        b, a = first["before"][name], first["after"].get(name)
        if a is None:
            continue
        diff, where, only = row_difference(b["rows"], a["rows"])
        c = {"dataset": name, "same_split": (b["train_sha256"], b["test_sha256"]) == (a["train_sha256"], a["test_sha256"]),
             "max_row_difference": diff, "largest_at": where, "rows_on_one_side": only, "rows": len(b["rows"]),
             "same_peer_figures": all(b["peers"][p]["ndcg"] == a["peers"].get(p, {}).get("ndcg") for p in b["peers"])}
        for s in SIDES:
            reps = [next(d for d in run["datasets"] if d["dataset"] == name) for run in runs[s]]
            c[f"{s}_repeat_max_difference"] = max((row_difference(reps[0]["rows"], r["rows"])[0] for r in reps[1:]), default=None)
        out.append(c)
    return out


# ---------------------------------------------------------------------------------------------
# Recommend: the C driver per side, alternating rounds


def build_driver(args, side):
    """bench_recommend.c compiled against the side's header, linked to its library (rpath to it)."""
    exe = os.path.join(args.work, f"bench_recommend-{side['label']}")
    libdir = os.path.dirname(side["lib"])
    # A copy named libchorus.so in its own folder when the library has another name.
    if os.path.basename(side["lib"]) != "libchorus.so":
        libdir = os.path.join(args.work, f"lib-{side['label']}")
        os.makedirs(libdir, exist_ok=True)
        shutil.copy2(side["lib"], os.path.join(libdir, "libchorus.so"))
    cmd = [args.cc, "-std=c99", "-O2", "-Wall", "-Werror", "-pedantic", f"-I{side['include']}",
           os.path.join(common.REPO, "bench", "recommend", "bench_recommend.c"), "-o", exe,
           f"-L{libdir}", "-lchorus", f"-Wl,-rpath,{libdir}", "-lm"]
    subprocess.run(cmd, check=True)
    ldd = subprocess.run(["ldd", exe], capture_output=True, text=True, env=clean_env()).stdout
    m = re.search(r"libchorus\.so => (\S+)", ldd)
    resolved = os.path.realpath(m.group(1)) if m else None
    if resolved != os.path.realpath(os.path.join(libdir, "libchorus.so")):
        sys.exit(f"compare.py: {exe} resolves libchorus.so to {resolved}, not {libdir}/libchorus.so")
    return exe, " ".join(shlex.quote(c) for c in cmd), resolved


def alternating(rounds):
    """(round, side) in the order before, after | after, before | before, after ...: each side goes
    first in half of the rounds, so a drift of the machine's speed hits both alike."""
    for r in range(rounds):
        for side in (SIDES if r % 2 == 0 else SIDES[::-1]):
            yield r, side


def run_recommend(args, sides):
    phase = {"started": now(), "load_before": load(), "rounds": [], "drivers": {}}
    ml = os.path.join(args.data, "ml-latest-small")
    for side in SIDES:
        exe, cmd, resolved = build_driver(args, sides[side])
        phase["drivers"][side] = {"exe": exe, "compile": cmd, "libchorus": resolved}
    small = (["--users", str(args.users)] if args.users else []) + (["--max-texts", str(args.max_texts)] if args.max_texts else [])
    phase["command_per_process"] = (f"bench_recommend-<side> --json --passes {args.passes} --movies "
                                    f"{os.path.join(ml, 'movies.csv')} {' '.join(small + [''])}{os.path.join(ml, 'ratings.csv')}")
    t0 = time.perf_counter()
    for r, side in alternating(args.rounds):
        cmd = [phase["drivers"][side]["exe"], "--json", "--passes", str(args.passes),
               "--movies", os.path.join(ml, "movies.csv")] + small + [os.path.join(ml, "ratings.csv")]
        la, ts = load(), time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, env=clean_env())
        if p.returncode != 0:
            sys.exit(f"compare.py: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
        res = json.loads(p.stdout)
        res.update(round=r + 1, side=side, wall_s=time.perf_counter() - ts, load_before=la, load_after=load())
        phase["rounds"].append(res)
        lt = res["latency"]
        log(f"recommend round {r + 1} {side}: fit {res['fit_s']:.2f} s, blend p50/p99 {lt['blend']['p50_us']:.0f}/"
            f"{lt['blend']['p99_us']:.0f} us, als {lt['als']['p50_us']:.1f}/{lt['als']['p99_us']:.1f} us, "
            f"RSS after fit {res['rss_kib']['after_fit'] / 1024:.1f} MiB (load {la[0]})")
    phase.update(seconds=time.perf_counter() - t0, load_after=load(), finished=now(),
                 summary={s: summarise_recommend([x for x in phase["rounds"] if x["side"] == s]) for s in SIDES})
    return phase


RECOMMEND_FIGURES = {  # name -> (label, unit, getter)
    "blend_p50": ("recommend p50, blend (coordinator, all agents)", "us", lambda x: x["latency"]["blend"]["p50_us"]),
    "blend_p99": ("recommend p99, blend", "us", lambda x: x["latency"]["blend"]["p99_us"]),
    "als_p50": ('recommend p50, "als" alone', "us", lambda x: x["latency"]["als"]["p50_us"]),
    "als_p99": ('recommend p99, "als" alone', "us", lambda x: x["latency"]["als"]["p99_us"]),
    "query_p50": ("recommend p50, blend + a query encoded per call", "us", lambda x: x["latency"].get("blend_query", {}).get("p50_us")),
    "query_p99": ("recommend p99, blend + a query", "us", lambda x: x["latency"].get("blend_query", {}).get("p99_us")),
    "batch_blend": ("batch, all 610 users in one call, blend (best of 5)", "ms", lambda x: x["batch_s"]["blend"] * 1e3),
    "fit": ("fit, ml-latest-small, defaults (chorus_engine_fit)", "s", lambda x: x["fit_s"]),
    "texts": ("set_item_texts, 9,742 movie texts encoded", "s", lambda x: x["set_item_texts_s"]),
    "rss_fit": ("peak RSS after fit (ru_maxrss)", "MiB", lambda x: x["rss_kib"]["after_fit"] / 1024),
    "rss_end": ("peak RSS, whole process (ru_maxrss at exit)", "MiB", lambda x: x["rss_kib"]["end"] / 1024),
    "model": ("model_bytes (chorus_engine_get_stats)", "MiB", lambda x: x["model_bytes"] / 1048576),
}


def summarise_recommend(rounds):
    out = {}
    for name, (_, _, get) in RECOMMEND_FIGURES.items():
        xs = [v for v in (get(x) for x in rounds) if v is not None]
        out[name] = {"median": median(xs), "min": min(xs) if xs else None, "max": max(xs) if xs else None, "values": xs}
    digests = [json.dumps(x["digest"], sort_keys=True) for x in rounds]
    weights = [json.dumps(x["blend_weights"], sort_keys=True) for x in rounds]
    out["digest"] = rounds[0]["digest"] if rounds else None
    out["digest_stable"] = len(set(digests)) == 1
    out["blend_weights"] = rounds[0]["blend_weights"] if rounds else None
    out["weights_stable"] = len(set(weights)) == 1
    return out


# ---------------------------------------------------------------------------------------------
# Swift: chorus-bench latency per side


def run_swift(args, sides):
    phase = {"started": now(), "load_before": load(), "rounds": [], "snapshots": {}}
    ml = os.path.join(args.data, "ml-latest-small")
    for side in SIDES:
        snap = os.path.join(args.work, f"snapshot-{side}.chorus")
        if os.path.exists(snap):
            os.remove(snap)
        ts = time.perf_counter()
        cmd = [sides[side]["bench"], "latency", "--data", ml, "--snapshot", snap, "--passes", "1"]
        p = subprocess.run(cmd, capture_output=True, text=True, env=clean_env())
        if p.returncode != 0:
            sys.exit(f"compare.py: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
        phase["snapshots"][side] = {"path": snap, "bytes": os.path.getsize(snap), "sha256": common.sha256(snap),
                                    "fit_save_and_one_pass_s": time.perf_counter() - ts}
        log(f"swift {side}: snapshot {os.path.getsize(snap):,} bytes (fit, save, one untimed pass)")
    t0 = time.perf_counter()
    for r, side in alternating(args.rounds):
        cmd = [sides[side]["bench"], "latency", "--data", ml, "--snapshot", phase["snapshots"][side]["path"],
               "--passes", str(args.passes)]
        la = load()
        p = subprocess.run(cmd, capture_output=True, text=True, env=clean_env())
        if p.returncode != 0:
            sys.exit(f"compare.py: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
        phase["rounds"].append({"round": r + 1, "side": side, "load_before": la, "agents": json.loads(p.stdout)})
        c = phase["rounds"][-1]["agents"].get("coordinator", {})
        log(f"swift round {r + 1} {side}: coordinator p50/p99 {c.get('p50_us')}/{c.get('p99_us')} us (load {la[0]})")
    agents = list(phase["rounds"][0]["agents"]) if phase["rounds"] else []
    phase["summary"] = {s: {a: {q: median([x["agents"][a][q] for x in phase["rounds"] if x["side"] == s and a in x["agents"]])
                                for q in ("p50_us", "p99_us")} for a in agents} for s in SIDES}
    phase["command_per_process"] = (f"chorus-bench latency --data {ml} --snapshot WORK/snapshot-<side>.chorus "
                                    f"--passes {args.passes}")
    phase.update(seconds=time.perf_counter() - t0, load_after=load(), finished=now())
    return phase


# ---------------------------------------------------------------------------------------------
# Report


def ratio(a, b):
    return f"{b / a:.3f}" if a and b is not None else "-"


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "us":
        return f"{v:.1f}" if v < 100 else f"{v:.0f}"
    return f"{v:.2f}" if unit in ("s", "ms", "MiB") else f"{v}"


def yes(b):
    return "yes" if b else "**no**"


def render_md(r):
    sides, m = r["sides"], r["machine"]
    L = ["# Before / after: two builds of Chorus on one machine, one run", "",
         "Recorded by `bench/arch/compare.py` (see `bench/arch/README.md`); do not edit by hand (rerun it).", "",
         "| side | commit | chorus-cli | libchorus.so | chorus-bench |", "| --- | --- | --- | --- | --- |"]
    for s in SIDES:
        x = sides[s]
        sha = {k: f"`{x['sha256'][k][:12]}`" for k in x["sha256"]}
        L.append(f"| {s} | `{x['commit']}` | `{x['cli']}` {sha['cli']} | `{x['lib']}` {sha['lib']} | "
                 + (f"`{x['bench']}` {sha['bench']}" if x.get("bench") else "-") + " |")
    L += ["", "## Summary", "",
          "| measure | before | after | after / before |", "| --- | --- | --- | --- |"]
    q = r["phases"].get("quality")
    if q:
        for d in q["runs"]["before"][0]["datasets"]:
            a = next((x for x in q["runs"]["after"][0]["datasets"] if x["dataset"] == d["dataset"]), None)
            for metric, label in (("ndcg", "NDCG@10"), ("recall", "Recall@10")):
                rb, ra = d["ratios"][metric], a["ratios"][metric] if a else None
                L.append(f"| {d['dataset']}: {label}, blend / best tuned peer | {rb['ratio']:.3f} "
                         f"({rb['blend']:.4f} / {rb['best_peer']} {rb['peer']:.4f}) | "
                         + (f"{ra['ratio']:.3f} ({ra['blend']:.4f} / {ra['best_peer']} {ra['peer']:.4f})" if ra else "-")
                         + f" | {ratio(rb['ratio'], ra['ratio'] if ra else None)} |")
        for c in q["comparison"]:
            L.append(f"| {c['dataset']}: every Chorus row ({c['rows']}: agents, blend, MMR, cold items) identical | | | "
                     f"{'yes' if c['max_row_difference'] == 0 and not c['rows_on_one_side'] else 'no: largest difference ' + format(c['max_row_difference'], '.2e') + ' (' + str(c['largest_at']) + ')'} |")
    rec = r["phases"].get("recommend")
    if rec:
        sb, sa = rec["summary"]["before"], rec["summary"]["after"]
        for name, (label, unit, _) in RECOMMEND_FIGURES.items():
            b, a = sb[name], sa[name]
            if b["median"] is None:
                continue
            L.append(f"| {label} ({unit}; median of {len(b['values'])}, range) | {fmt(b['median'], unit)} "
                     f"({fmt(b['min'], unit)}-{fmt(b['max'], unit)}) | {fmt(a['median'], unit)} "
                     f"({fmt(a['min'], unit)}-{fmt(a['max'], unit)}) | {ratio(b['median'], a['median'])} |")
        L.append(f"| every user's top 10 (ids and score bits; blend, blend + query, als) identical | | | "
                 f"{yes(sb['digest'] == sa['digest'])} |")
        L.append(f"| blend weights identical | | | {yes(sb['blend_weights'] == sa['blend_weights'])} |")
    sw = r["phases"].get("swift")
    if sw:
        for s in ("coordinator", "als"):
            b, a = sw["summary"]["before"].get(s), sw["summary"]["after"].get(s)
            if b and a:
                L.append(f"| chorus-bench latency, {s}, p50 / p99 (us; Swift API, from a snapshot; median of {len(sw['rounds']) // 2}) | "
                         f"{fmt(b['p50_us'], 'us')} / {fmt(b['p99_us'], 'us')} | {fmt(a['p50_us'], 'us')} / {fmt(a['p99_us'], 'us')} | "
                         f"{ratio(b['p50_us'], a['p50_us'])} / {ratio(b['p99_us'], a['p99_us'])} |")
        sn = sw["snapshots"]
        L.append(f"| snapshot file (hashing-encoder engine) bytes, identical | {sn['before']['bytes']:,} | {sn['after']['bytes']:,} | "
                 f"{'identical' if sn['before']['sha256'] == sn['after']['sha256'] else 'differ'} |")
    L.append("")
    if q:
        L += render_quality(q)
    if rec:
        L += render_recommend(rec)
    if sw:
        L += render_swift(sw)
    L += ["## Reproduce", "", "```", r["command"], "```", "",
          "from the repository root (`bench/setup.sh` first: the peers). Each phase's own command is listed in its section.", "",
          "## Machine", "",
          f"- date: {r['started']} to {r['finished']} ({r['seconds'] / 60:.1f} min)",
          f"- nproc: {m['nproc']}; CPU: {m['cpu_model']}; memory: {m['memory_gib']} GiB; kernel {m['kernel']}",
          f"- {m['swift']}; Python {m['python']}; {m['cc']}",
          f"- driver (this tree) revision: {m['git_revision']}",
          f"- load average (1, 5, 15 min) before: {r['load_before']}; after: {r['load_after']}",
          f"- `uptime` before: `{r['uptime_before']}`; after: `{r['uptime_after']}`", ""]
    return "\n".join(L)


def merged_note(phase):
    if not phase.get("merged_from"):
        return []
    return [f"Carried over (`--merge`) from the run started {phase['merged_from']}, same binaries.", ""]


def render_quality(q):
    L = ["## Ranking quality (`bench/quality/run.py`, the path of `make bench-quality`)", "", *merged_note(q),
         f"{q['started']} to {q['finished']}, load {q['load_before']} before, {q['load_after']} after. Per side:", "",
         "```", q["command_per_side"], "```", "",
         "The peers (implicit ALS and BPR, EASE, item-kNN, each tuned on a validation carve-out of the training split) are "
         "tuned once, in the first run that needs them, and reused from the peer cache by every later run whose split "
         "(train.csv and test.csv, by sha256) is the same; a side whose split differed would have its peers tuned afresh.", "",
         "| dataset | side | run | blend NDCG@10 | blend Recall@10 | best peer NDCG / Recall | ratio NDCG / Recall | peers from | Chorus fit (s) | eval wall (s) | load before |",
         "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in SIDES:
        for i, run in enumerate(q["runs"][s]):
            for d in run["datasets"]:
                rn, rr = d["ratios"]["ndcg"], d["ratios"]["recall"]
                cached = {p["cached_from"] for p in d["peers"].values()}
                src = "tuned in this run" if cached == {None} else "cache, " + ", ".join(sorted(c for c in cached if c))
                fit = f"{d['chorus_fit_seconds']:.1f}" if d["chorus_fit_seconds"] is not None else "-"
                L.append(f"| {d['dataset']} | {s} | {i + 1} | {rn['blend']:.4f} | {rr['blend']:.4f} | "
                         f"{rn['best_peer']} {rn['peer']:.4f} / {rr['best_peer']} {rr['peer']:.4f} | "
                         f"{rn['ratio']:.3f} / {rr['ratio']:.3f} | {src} | {fit} | {d['chorus_eval_wall_seconds']:.0f} | {run['load_before'][0]} |")
    L += ["", "Chorus's fit and eval times are from runs that do not alternate (each side's runs in turn, the peers tuned "
          "inside the first): indicative only; the recommend section below times the fit in alternating rounds.",
          "", "| dataset | same split | same peer figures | rows compared | largest row difference before / after | rows on one side only | before repeats itself | after repeats itself |",
          "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in q["comparison"]:
        rep = {s: ("-" if c[f"{s}_repeat_max_difference"] is None else
                   ("exactly" if c[f"{s}_repeat_max_difference"] == 0 else f"within {c[f'{s}_repeat_max_difference']:.2e}"))
               for s in SIDES}
        L.append(f"| {c['dataset']} | {yes(c['same_split'])} | {yes(c['same_peer_figures'])} | {c['rows']} | "
                 f"{c['max_row_difference']:.2e}{' (' + c['largest_at'] + ')' if c['largest_at'] else ''} | "
                 f"{', '.join(c['rows_on_one_side']) or 'none'} | {rep['before']} | {rep['after']} |")
    L += ["", "Rows compared: Recall, NDCG, HR, MRR, coverage, ILD and blend weight of every row `chorus eval --json` "
          "reports (each agent alone, the blend, the blend re-ranked by MMR at each knob value, and the cold-item rows).", ""]
    for s in SIDES:
        for d in q["runs"][s][0]["datasets"]:
            if d.get("coordinator"):
                L.append(f"- {s}, {d['dataset']}: `{d['coordinator']}`")
    return L + [""]


def render_recommend(rec):
    L = ["## Recommend latency, fit time, memory (`bench/recommend/bench_recommend.c` through the C ABI)", "", *merged_note(rec),
         f"{rec['started']} to {rec['finished']}, load {rec['load_before']} before, {rec['load_after']} after. "
         "One process per round and side, alternating (before, after | after, before | ...). Each process loads all of "
         "ml-latest-small (weights = ratings, timestamps), gives the 9,742 movies their texts (all-MiniLM-L6-v2), fits "
         "with every default (2 threads), then times single-user recommend calls (k = 10, seen excluded, one call per "
         "user, one untimed warm-up pass, then the timed passes; nearest-rank percentiles), batch calls, and reads "
         "`ru_maxrss`.", "", "```"]
    for s in SIDES:
        L.append(rec["drivers"][s]["compile"])
    L += [rec["command_per_process"], "```", "",
          "| round | side | load | fit (s) | texts (s) | blend p50 | blend p99 | als p50 | als p99 | query p50 | query p99 | batch blend (ms) | RSS after fit (MiB) | RSS end (MiB) |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for x in rec["rounds"]:
        lt = x["latency"]
        qq = lt.get("blend_query", {})
        L.append(f"| {x['round']} | {x['side']} | {x['load_before'][0]} | {x['fit_s']:.2f} | {x['set_item_texts_s']:.1f} | "
                 f"{lt['blend']['p50_us']:.0f} | {lt['blend']['p99_us']:.0f} | {lt['als']['p50_us']:.1f} | {lt['als']['p99_us']:.1f} | "
                 f"{fmt(qq.get('p50_us'), 'us')} | {fmt(qq.get('p99_us'), 'us')} | {x['batch_s']['blend'] * 1e3:.1f} | "
                 f"{x['rss_kib']['after_fit'] / 1024:.1f} | {x['rss_kib']['end'] / 1024:.1f} |")
    L += ["", "Latencies in microseconds; calls per figure: 610 users x the passes (the query row: one pass)."]
    for s in SIDES:
        sm = rec["summary"][s]
        w = ", ".join(f"{k} {v:.3f}" for k, v in (sm["blend_weights"] or {}).items())
        L.append(f"- {s}: blend weights {w}; digests {'the same in every round' if sm['digest_stable'] else '**differ between rounds**'}: "
                 + ", ".join(f"{k} `{v}`" for k, v in (sm["digest"] or {}).items()))
    return L + [""]


def render_swift(sw):
    L = ["## Per-agent latency (`chorus-bench latency`: Swift API, one thread, from a snapshot)", "", *merged_note(sw),
         f"{sw['started']} to {sw['finished']}, load {sw['load_before']} before, {sw['load_after']} after. Each side first "
         "fits the engine (hashing encoder for the texts) and writes its own snapshot (untimed); then rounds alternate "
         "as above:", "", "```", sw["command_per_process"], "```", "",
         "| agent | before p50 / p99 (us) | after p50 / p99 (us) | after / before p50 |", "| --- | --- | --- | --- |"]
    for a, b in sw["summary"]["before"].items():
        x = sw["summary"]["after"].get(a, {})
        L.append(f"| {a} | {fmt(b['p50_us'], 'us')} / {fmt(b['p99_us'], 'us')} | {fmt(x.get('p50_us'), 'us')} / {fmt(x.get('p99_us'), 'us')} | "
                 f"{ratio(b['p50_us'], x.get('p50_us'))} |")
    L += ["", f"Medians over {sum(1 for x in sw['rounds'] if x['side'] == 'before')} processes per side, each "
          "p50/p99 of its own passes (chorus-bench's percentiles: index n/2 and n*99/100 of the sorted times)."]
    return L + [""]


# ---------------------------------------------------------------------------------------------


def main():
    args = parse_args()
    if args.render:
        return common.render_mode(args, args.out, render_md)
    sides = {s: resolve_side(args, s) for s in SIDES}
    if "swift" in args.only and not all(sides[s]["bench"] for s in SIDES):
        log("swift: skipped (a side has no chorus-bench)")
        args.only = [p for p in args.only if p != "swift"]
    for d in (["ml-latest-small"] + (args.datasets if "quality" in args.only else [])):
        if not os.path.isdir(os.path.join(args.data, d)):
            sys.exit(f"compare.py: {os.path.join(args.data, d)} not found (pass --data DIR)")
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    for s in SIDES:
        log(f"{s}: commit {sides[s]['commit']}; cli {sides[s]['cli']}; lib {sides[s]['lib']}; bench {sides[s]['bench']}")

    facts = common.machine_facts()
    facts["cc"] = (common.run_text([args.cc, "--version"]).splitlines() or ["cc unknown"])[0]
    result = {"benchmark": "before-after", "command": common.command_line(), "started": now(), "load_before": load(),
              "uptime_before": common.run_text(["uptime"]), "machine": facts, "sides": sides,
              "settings": {"data": os.path.abspath(args.data), "datasets": args.datasets, "cold_items": not args.no_cold_items,
                           "quality_repeat": args.quality_repeat, "rounds": args.rounds, "passes": args.passes,
                           "phases": args.only},
              "phases": {}}
    t0 = time.perf_counter()
    runners = {"quality": run_quality, "recommend": run_recommend, "swift": run_swift}
    for phase in args.only:
        result["phases"][phase] = runners[phase](args, sides)
        write(args, result, t0, partial=True)
    write(args, result, t0, partial=False)


def write(args, result, t0, partial):
    """results.json and results.md in OUT, rewritten after every phase (a run cut short keeps what it measured)."""
    result = dict(result, finished=now(), seconds=time.perf_counter() - t0, load_after=load(),
                  uptime_after=common.run_text(["uptime"]), partial=partial)
    path = os.path.join(args.out, "results.json")
    if args.merge and os.path.isfile(path):
        with open(path) as f:
            old = json.load(f)
        same = all(old["sides"][s]["sha256"] == result["sides"][s]["sha256"] for s in SIDES)
        for phase, v in old.get("phases", {}).items():
            if phase not in result["phases"] and same:
                result["phases"][phase] = dict(v, merged_from=v.get("merged_from") or old.get("started"))
    result["phases"] = {p: result["phases"][p] for p in PHASES if p in result["phases"]}
    if partial and args.no_write:
        return
    common.write_results(args.out, result, render_md, indent=1, json_out=None if partial else args.json_out,
                         write=not args.no_write)
    if not partial and not args.no_write:
        log(f"wrote {os.path.join(args.out, 'results.md')} and results.json ({result['seconds'] / 60:.1f} min)")


if __name__ == "__main__":
    main()
