#!/usr/bin/env python3
"""What private learning from feedback costs (issue 19): `chorus replay` on MovieLens with the learning
coordinator learning plainly and under differential privacy at epsilon 8, 4 and 1.

    python3 bench/online/privacy/run.py [--data ../shared/data] [--datasets ml-100k,ml-latest-small]
                                        [--seeds 3] [--epsilons 8,4,1] [--limit N] [--jobs 2]
                                        [--no-write] [--not-for-the-record] [--render [OUT]]

The protocol is bench/online/replay.py's: fit on the first half of the ratings by time, stream the
rest; before each event the user is served a slate of 10, a hit when it holds their next positive
item (rating >= 4); hit rates are reported over the stream after its first 20% (the part the replay
record reports). Per dataset and seed:
- plain: the online overlay with the fitted coordinator (`online`), and learning without privacy
  (`linucb`, `policy`);
- clip only: LinUCB learning privately with a clip no contribution reaches and no noise (epsilon
  infinite): what keeping private feedback out of the shared statistics (popularity, transitions, new
  items) costs by itself;
- private: LinUCB (clip 1) and the policy (clip 0.01) at each epsilon, the noise multiplier set by
  the accountant for the releases the stream makes (one per 1,000 closed slates), delta 1e-5.
The clips and the bandits' noise ridge were chosen on a validation replay (ml-100k, fit on the first
30% by time, the next 20,000 events: Sources/ChorusAgents/PrivateLearning.swift), not on this one.

Writes bench/online/privacy/results.json and results.md. Refused from a tree with uncommitted changes
(bench/common.py) unless --not-for-the-record.
"""

import argparse
import concurrent.futures as cf
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.dirname(HERE))
import common  # noqa: E402
from replay import default_cli, mean_sd  # noqa: E402  (the replay benchmark's, same binary and statistics)

CLIP = {"linucb": 1.0, "policy": 0.01}


def configurations(epsilons):
    """(name, mode list, extra flags) of every replay one dataset and seed need."""
    out = [("plain", "online,linucb,policy", []), ("clip only", "linucb", ["--clip-norm", "1e9"])]
    for e in epsilons:
        for mode in ("linucb", "policy"):
            out.append((f"epsilon {e:g}", mode, ["--clip-norm", f"{CLIP[mode]:g}", "--epsilon", f"{e:g}"]))
    return out


def run(args, dataset, seed, name, modes, extra, tmp):
    out_json = os.path.join(tmp, f"{dataset}-{seed}-{name.replace(' ', '_')}-{modes.replace(',', '_')}.json")
    cmd = [args.cli, "replay", "--data", os.path.join(args.data, dataset), "--seed", str(seed), "--modes", modes,
           "--json", out_json, "--quiet"] + extra
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(map(shlex.quote, cmd))} failed ({p.returncode}):\n{p.stderr}")
    with open(out_json) as f:
        result = json.load(f)
    shown = [c.replace(tmp, "<tmp>") for c in cmd]
    shown = [os.path.relpath(c, common.REPO) if os.path.isabs(c) and c.startswith(common.REPO) else c for c in shown]
    result["command"] = " ".join(shlex.quote(c) for c in shown)
    result["wall_seconds"] = time.perf_counter() - t
    rows = []
    stop = min((w["start"] for w in result["windows"] if w["start"] >= result["replayed_events"] * 0.2),
               default=result["replayed_events"])
    for m in result["modes"]:
        rep = [w for w, b in zip(m["windows"], result["windows"]) if b["start"] >= stop]
        hits, scored = sum(w["hits"] for w in rep), sum(w["scored"] for w in rep)
        rows.append({"dataset": dataset, "seed": seed, "config": name, "mode": m["mode"], "hit_rate": hits / scored if scored else None,
                     "full_stream_hit_rate": m["hit_rate"], "privacy": m.get("privacy"), "command": result["command"],
                     "clip_norm": result.get("clip_norm"), "epsilon_asked": result.get("epsilon")})
    print(f"{dataset} seed {seed} {name} ({modes}): " + ", ".join(f"{r['mode']} {r['hit_rate']:.4f}" for r in rows), flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=common.DEFAULT_DATA)
    ap.add_argument("--datasets", default="ml-100k,ml-latest-small")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epsilons", default="8,4,1")
    ap.add_argument("--limit", type=int, default=None, help="stop each replay after N streamed events")
    ap.add_argument("--cli", default=default_cli())
    ap.add_argument("--jobs", type=int, default=2, help="replays in parallel")
    ap.add_argument("--no-write", action="store_true")
    common.add_record_flag(ap)
    common.add_render_flags(ap)
    args = ap.parse_args()
    if args.render:
        return common.render_mode(args, HERE, render)
    if not os.path.isfile(args.cli):
        raise SystemExit(f"{args.cli}: no such binary (make cli)")
    prov = common.Provenance([args.cli])
    if not args.no_write:
        prov.check_record(args.not_for_the_record)
    epsilons = [float(x) for x in args.epsilons.split(",")]
    jobs = [(d, s, n, m, x) for d in args.datasets.split(",") for s in range(1, args.seeds + 1) for (n, m, x) in configurations(epsilons)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="chorus-privacy-") as tmp, cf.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for part in pool.map(lambda j: run(args, *j, tmp), jobs):
            rows += part
    settings = {k: v for k, v in vars(args).items() if k not in ("render", "render_from", "json_out", "no_write", "not_for_the_record")}
    settings["cli"] = os.path.relpath(args.cli, common.REPO) if args.cli.startswith(common.REPO) else args.cli
    settings["data"] = os.path.relpath(args.data, common.REPO) if os.path.isabs(args.data) else args.data
    settings["clips"] = CLIP
    result = {"benchmark": "online-privacy", "settings": settings, "rows": rows, "provenance": prov.finish().as_dict()}
    common.write_results(HERE, result, render, indent=1, json_out=args.json_out, write=not args.no_write)


def render(r):
    s = r["settings"]
    lines = ["# Private learning from feedback: the replay's hit@10 at epsilon 8, 4, 1", "",
             "Recorded by `bench/online/privacy/run.py`; do not edit by hand (rerun it).", ""]
    lines += common.provenance_banner(r.get("provenance"))
    lines += ["", f"Protocol of `bench/online/replay.py`: fit on the first half of the ratings by time, stream the rest, a slate "
              f"of 10 before each event, a hit when it holds the user's next positive item; hit@10 over the stream after its first "
              f"20%, mean ± sd over {s['seeds']} seeds" + (f", first {s['limit']} streamed events only" if s.get("limit") else "")
              + ". Private: clip C = " + ", ".join(f"{v:g} ({k})" for k, v in s["clips"].items())
              + ", a release per 1,000 closed slates, the noise multiplier set by the accountant for the stream's releases, "
              "delta 1e-5; epsilon as the engine's accountant reports it after the stream. 'clip only' learns privately "
              "without noise (epsilon infinite): the cost of keeping private feedback out of the shared statistics alone.", ""]
    for dataset in s["datasets"].split(","):
        rows = [x for x in r["rows"] if x["dataset"] == dataset]
        if not rows:
            continue
        lines += [f"## {dataset}", "", "| learning | privacy | hit@10 | vs plain | epsilon reported | releases |", "| --- | --- | --- | --- | --- | --- |"]
        base = {}
        order = [("plain", "online"), ("plain", "linucb"), ("clip only", "linucb")] + \
                [(f"epsilon {e:g}", "linucb") for e in map(float, s["epsilons"].split(","))] + [("plain", "policy")] + \
                [(f"epsilon {e:g}", "policy") for e in map(float, s["epsilons"].split(","))]
        for config, mode in order:
            sel = [x for x in rows if x["config"] == config and x["mode"] == mode]
            if not sel:
                continue
            m, sd = mean_sd([x["hit_rate"] for x in sel])
            if config == "plain":
                base[mode] = m
            ref = base.get(mode if mode != "online" else "online")
            vs = f"{m / ref:.3f}" if ref and config != "plain" else ("1.000" if config == "plain" else "-")
            eps = [x["privacy"]["epsilon"] for x in sel if x.get("privacy")]
            rel = [x["privacy"]["releases"] for x in sel if x.get("privacy")]
            eps_text = "-" if not eps else ("inf" if any(e is None or e == float("inf") for e in eps) else f"{max(eps):.3f}")
            lines.append(f"| {mode if mode != 'online' else 'online overlay, fitted coordinator (no learning)'} | {config if config != 'plain' else 'none'} | "
                         f"{m:.4f} ± {sd:.4f} | {vs} | {eps_text} | {'-' if not rel else max(rel)} |")
        lines.append("")
    cmds = sorted({x["command"] for x in r["rows"] if x["seed"] == 1 and x["dataset"] == s["datasets"].split(",")[0]})
    lines += ["Commands (seed 1, first dataset; the others differ in --seed and --data):", "", "```"] + cmds + ["```", "",
              "```", "python3 bench/online/privacy/run.py", "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
