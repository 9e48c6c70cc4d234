#!/usr/bin/env python3
"""Markdown rows for bench/fuzz/results.md from the logs of a fuzzing run (Tests/fuzz/run.sh).

    python3 bench/fuzz/summarize.py [build/fuzz] [--json FILE]
    python3 bench/fuzz/summarize.py --render [OUT] --from FILE

One row per harness log: executions, seconds, exec/s, corpus units and size, cov and ft from
libFuzzer's last status line, peak RSS, and the outcome (DONE, or the first error line).
--json FILE also writes the rows (and the commit and machine: bench/common.py) as JSON; --render
prints the same table from such a file, running nothing. (bench/fuzz/results.md itself is written by
hand around these rows, so make bench-check cannot check it: see bench/fuzz/README.md.)
"""
import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import common  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

ORDER = ["engine-snapshot", "graph-snapshot", "safetensors", "config", "tokenizer", "movielens", "triples", "api"]


def summarize(path):
    text = open(path, errors="replace").read()
    stat = dict(re.findall(r"^stat::(\w+):\s*(\d+)", text, re.M))
    status = re.findall(r"^#(\d+)\s+(\w+)\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)", text, re.M)
    done = re.search(r"^Done (\d+) runs in (\d+) second", text, re.M)
    error = re.search(r"^(==\d+==\s*ERROR.*|.*Fatal error.*|SUMMARY:.*)$", text, re.M)
    last = status[-1] if status else None
    return {
        "executions": stat.get("number_of_executed_units", done.group(1) if done else "?"),
        "seconds": done.group(2) if done else "?",
        "rate": stat.get("average_exec_per_sec", "?"),
        "cov": last[2] if last else "?",
        "ft": last[3] if last else "?",
        "corpus": f"{last[4]} / {last[5]}" if last else "?",
        "rss": stat.get("peak_rss_mb", "?"),
        "outcome": error.group(1).strip()[:120] if error else ("DONE" if done else "unfinished"),
    }


def render(result):
    L = ["| harness | executions | seconds | exec/s | corpus (units / size) | cov | ft | peak RSS MB | outcome |",
         "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |"]
    for r in result["rows"]:
        L.append(f"| {r['harness']} | {r['executions']} | {r['seconds']} | {r['rate']} | {r['corpus']} | {r['cov']} | {r['ft']} | "
                 f"{r['rss']} | {r['outcome']} |")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", default="build/fuzz", help="the fuzzing run's output folder (holding logs/)")
    ap.add_argument("--json", metavar="FILE", help="also write the rows as JSON to FILE")
    common.add_render_flags(ap, json_out=False)
    args = ap.parse_args()
    if args.render:
        return common.render_mode(args, HERE, render)
    rows = []
    for h in ORDER:
        log = os.path.join(args.out, "logs", h + ".log")
        if os.path.exists(log):
            rows.append(dict(harness=h, **summarize(log)))
    if not rows:
        sys.exit(f"summarize.py: no harness logs under {os.path.join(args.out, 'logs')}")
    result = {"benchmark": "fuzz", "log_dir": args.out, "rows": rows, "provenance": common.Provenance().finish().as_dict()}
    sys.stdout.write(render(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
