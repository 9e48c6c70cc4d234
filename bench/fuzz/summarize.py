#!/usr/bin/env python3
"""Markdown rows for bench/fuzz/results.md from the logs of a fuzzing run (Tests/fuzz/run.sh).

    python3 bench/fuzz/summarize.py [build/fuzz]

One row per harness log: executions, seconds, exec/s, corpus units and size, cov and ft from
libFuzzer's last status line, peak RSS, and the outcome (DONE, or the first error line).
"""
import os
import re
import sys

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


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "build/fuzz"
    print("| harness | executions | seconds | exec/s | corpus (units / size) | cov | ft | peak RSS MB | outcome |")
    print("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |")
    for h in ORDER:
        log = os.path.join(out, "logs", h + ".log")
        if not os.path.exists(log):
            continue
        r = summarize(log)
        print(f"| {h} | {r['executions']} | {r['seconds']} | {r['rate']} | {r['corpus']} | {r['cov']} | {r['ft']} | {r['rss']} | {r['outcome']} |")


if __name__ == "__main__":
    main()
