#!/usr/bin/env python3
"""bench/recommend's results: results.json from one run of bench/recommend/run.sh, and results.md rendered
from it (run.sh calls this; do not edit either by hand).

    python3 bench/recommend/report.py record --c C.json --python PY.json --command "bench/recommend/run.sh ..."
        --load-before X --load-after Y --cc-version "..." [--no-write] [--json-out FILE] [--not-for-the-record]
    python3 bench/recommend/report.py --render [OUT] [--from FILE]

`record` takes the JSON of `build/bench_recommend --json` and of `bench_python.py --json`, adds the machine
and the provenance (bench/common.py: commit, binaries, load), writes results.json and renders results.md
from it; with --no-write it prints the rendered report instead. `--render` renders results.md from the
committed results.json (to stdout, or OUT), running nothing.
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import common  # noqa: E402

K = 10


def c_section(c):
    """The C driver's figures as `bench_recommend --markdown` prints them."""
    L = [f"- library {c['library']}; data {c['ratings']}: {c['interactions']} interactions, {c['users']} users, {c['items']} items",
         f"- chorus_engine_add_interactions {c['add_interactions_s']:.3f} s; chorus_engine_fit (defaults) {c['fit_s']:.3f} s"]
    if c["movie_texts"]:
        L.append(f"- chorus_engine_set_item_texts: {c['movie_texts']} movie texts in {c['set_item_texts_s']:.2f} s; encoder: {c['encoder']}")
    L += ["- blend weights:" + "".join(f" {name}={w:.3f}" for name, w in c["blend_weights"].items()), "",
          f"| single-user recommend, k={K}, seen excluded | calls | p50 (us) | p90 (us) | p99 (us) | max (us) | mean (us) | "
          "p50 per pass, min-max (us) | p99 per pass, min-max (us) |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    rows = [("coordinator, all agents", "blend"), ("coordinator + a natural-language query (encoded per call)", "blend_query"),
            ('agent "als" alone', "als")]
    for label, name in rows:
        x = c["latency"].get(name)
        if x:
            L.append(f"| {label} | {x['calls']} | {x['p50_us']:.1f} | {x['p90_us']:.1f} | {x['p99_us']:.1f} | {x['max_us']:.1f} | "
                     f"{x['mean_us']:.1f} | {x['pass_p50_us'][0]:.1f}-{x['pass_p50_us'][1]:.1f} | "
                     f"{x['pass_p99_us'][0]:.1f}-{x['pass_p99_us'][1]:.1f} |")
    L += ["", f"| batch recommend, all {c['measured_users']} users in one call, k={K} | best of 5 (ms) | users/s |", "| --- | --- | --- |",
          f"| blend | {c['batch_s']['blend'] * 1e3:.2f} | {c['batch_users_per_s']['blend']:.0f} |",
          f"| agent \"als\" alone | {c['batch_s']['als'] * 1e3:.2f} | {c['batch_users_per_s']['als']:.0f} |",
          "", "| memory | MiB |", "| --- | --- |",
          f"| peak RSS before fit (ru_maxrss) | {c['rss_kib']['before_fit'] / 1024:.1f} |",
          f"| peak RSS after fit (ru_maxrss) | {c['rss_kib']['after_fit'] / 1024:.1f} |",
          f"| model_bytes (chorus_engine_get_stats) | {c['model_bytes'] / 1048576:.2f} |",
          f"| allocator_allocated_bytes (jemalloc) | {c['allocator_allocated_bytes'] / 1048576:.2f} |",
          f"| allocator_resident_bytes (jemalloc) | {c['allocator_resident_bytes'] / 1048576:.2f} |"]
    return L


def python_section(out):
    """bench_python.py's figures (its markdown output, and the Python section of results.md)."""
    n = out["measured_users"]
    L = [f"- binding `chorus` from {out['binding']}, library {out['library']} at {out['library_path']}; "
         f"fit (defaults) {out['fit_s']:.3f} s", "",
         "| single-user `engine.recommend(user, k=10)` | calls | p50 (us) | p90 (us) | p99 (us) | max (us) | mean (us) |",
         "| --- | --- | --- | --- | --- | --- | --- |"]
    for label, name in (("blend (popularity + als)", "blend"), ('agent "als" alone', "als")):
        s = out["latency"][name]
        L.append(f"| {label} | {s['n']} | {s['p50']:.1f} | {s['p90']:.1f} | {s['p99']:.1f} | {s['max']:.1f} | {s['mean']:.1f} |")
    L += ["", f"| batch `engine.recommend(all {n} users, k=10)` | best of 5 (ms) | users/s |", "| --- | --- | --- |"]
    for label, name in (("blend", "blend"), ('agent "als" alone', "als")):
        best = out["batch_s"][name]
        L.append(f"| {label} | {best * 1e3:.2f} | {n / best:.0f} |")
    return L



def render(r):
    """results.md from the results JSON alone (`--render` re-renders the committed one)."""
    m, s, c = r["machine"], r["settings"], r["c"]
    small = []
    if s["users"] or s["max_texts"]:
        small = ["> **A small check, not a record**: " + "; ".join(
            ([f"latency and batch over the first {s['users']} users only"] if s["users"] else [])
            + ([f"the first {s['max_texts']} movie texts only"] if s["max_texts"] else [])) + ".", ""]
    L = ["# Recommend latency and throughput (ml-latest-small)", "",
         "Recorded by `bench/recommend/run.sh`; do not edit by hand (rerun it).", ""]
    L += small + common.provenance_banner(r["provenance"]) + [""]
    L += ["## Reproduce", "", "```", r["command"], "```", "",
          "(from the repository root, after `bench/setup.sh`). It builds the library with `make lib` (release,",
          f"`-static-stdlib`), compiles `bench/recommend/bench_recommend.c` with `{s['cc']} -std=c99 -O2`, and runs",
          f"`{s['c_command']}` and", f"`{s['python_command']}` one after the other.", "",
          "## Machine", "",
          f"- date: {m['date']}",
          f"- nproc: {m['nproc']}; CPU: {m['cpu_model']}; memory: {m['memory_gib']} GiB; kernel {m['kernel']}",
          f"- {m['swift']}; {s['cc_version']}; Python {m['python']}",
          f"- repository revision: {m['git_revision']}",
          f"- load average (1 min) before / after: {r['loadavg_before']} / {r['loadavg_after']}", "",
          "## Settings", "",
          f"- data: `{s['ratings']}`, all ratings (weight = the rating, timestamps as given), one engine per driver.",
          "- fit: `chorus_engine_fit(engine, NULL)` (Python: `engine.fit()`), every default: 64 factors, 15",
          f"  iterations, regularization 0.01, alpha 1, all CPUs ({m['nproc']} threads), 10% validation hold-out for the blend.",
          "- queries: k = 10, seen items excluded, no allow/deny list; blend = the coordinator's weighted blend of",
          "  every agent, \"als\" = `params.agent = \"als\"`. Users: every distinct user of the file"
          + (f" (here the first {s['users']} by id)." if s["users"] else "."),
          f"- single-user latency: one call per user, one untimed warm-up pass over all users first, then {s['passes']} timed",
          "  pass(es); each call timed alone with CLOCK_MONOTONIC; percentiles by nearest rank. Single calls run on the",
          "  calling thread (the engine parallelises a call only from 64 users up).",
          "- batch: all users in one `chorus_engine_recommend` call (the engine splits it over all CPUs), best of 5.",
          "- noise: on the 2-core VM these were recorded on, back-to-back runs of this script moved the p50s by up to",
          "  about 25% (the VM's speed drifts); compare figures within one run, and read single outliers in p99/max",
          "  as interference.",
          "- memory: `getrusage(RUSAGE_SELF).ru_maxrss` of the C driver (whole process: data arrays included) before",
          "  and after fit; `chorus_engine_get_stats`: `model_bytes` (the fitted model's numeric buffers),",
          "  jemalloc's `stats.allocated` / `stats.resident` for the library's own allocator (Swift arrays use the",
          "  system malloc and are not in these two).", "",
          "## C ABI (`bench/recommend/bench_recommend.c`)", ""]
    L += c_section(c)
    L += ["", "## Python binding (`bench/recommend/bench_python.py`)", ""]
    L += python_section(r["python"])
    return "\n".join(L) + "\n"


def record(args):
    lib = os.path.join(common.REPO, ".build", "release", "libchorus.so")
    driver = os.path.join(common.REPO, "build", "bench_recommend")
    prov = common.Provenance([lib, driver])
    if not args.no_write:
        prov.check_record(args.not_for_the_record)
    prov.command = args.command          # the run, not this step of it
    prov.finish()
    if args.load_before is not None:   # the 1-minute load around the whole run, as run.sh read it
        prov.load_before, prov.load_after = [args.load_before], [args.load_after]
    with open(args.c) as f:
        c = json.load(f)
    with open(args.python) as f:
        py = json.load(f)
    ratings = os.path.relpath(args.ratings, common.REPO) if args.ratings.startswith(common.REPO + os.sep) else args.ratings
    extra = (f" --users {args.users}" if args.users else "")
    settings = {"passes": args.passes, "users": args.users, "max_texts": args.max_texts, "ratings": ratings,
                "cc": args.cc, "cc_version": args.cc_version,
                "c_command": f"build/bench_recommend --passes {args.passes} --movies {args.movies} {ratings}" + extra
                             + (f" --max-texts {args.max_texts}" if args.max_texts else ""),
                "python_command": f"bench/recommend/bench_python.py --passes {args.passes} {ratings}" + extra}
    c = dict(c, ratings=ratings)
    result = {"benchmark": "recommend", "command": args.command, "machine": common.machine_facts(), "settings": settings,
              "loadavg_before": args.load_before, "loadavg_after": args.load_after,
              "c": c, "python": py, "provenance": prov.as_dict()}
    common.write_results(HERE, result, render, indent=2, json_out=args.json_out, write=not args.no_write)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", nargs="?", choices=["record"], help="record (run.sh); or --render")
    ap.add_argument("--c", help="bench_recommend --json output")
    ap.add_argument("--python", help="bench_python.py --json output")
    ap.add_argument("--command", default="bench/recommend/run.sh")
    ap.add_argument("--ratings", default="")
    ap.add_argument("--movies", default="")
    ap.add_argument("--passes", type=int, default=1)
    ap.add_argument("--users", type=int, default=0)
    ap.add_argument("--max-texts", type=int, default=0)
    ap.add_argument("--cc", default="cc")
    ap.add_argument("--cc-version", default="")
    ap.add_argument("--load-before", type=float)
    ap.add_argument("--load-after", type=float)
    ap.add_argument("--no-write", action="store_true")
    common.add_record_flag(ap)
    common.add_render_flags(ap)
    args = ap.parse_args()
    if args.render:
        return common.render_mode(args, HERE, render)
    if args.step != "record" or not (args.c and args.python):
        ap.error("record needs --c and --python (or pass --render)")
    record(args)


if __name__ == "__main__":
    main()
