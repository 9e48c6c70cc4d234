#!/usr/bin/env python3
"""Replay evaluation of online learning (issue 17): `chorus replay` on MovieLens for several seeds,
and Vowpal Wabbit's conditional contextual bandit on the candidates the online mode exports.

    python3 bench/online/replay.py [--data ../shared/data] [--datasets ml-100k,ml-latest-small]
                                   [--seeds 3] [--limit N] [--cli PATH] [--jobs 2] [--no-vw]
                                   [--vw-configs "--squarecb --gamma_scale 10;..."] [--validation 0.2]
                                   [--no-write] [--not-for-the-record] [--render [OUT]]

Per dataset and seed s (1..--seeds): `chorus replay --seed s --export-candidates` runs every mode
(frozen, online, refit, popularity, random, and the learning coordinator's linucb, thompson, policy) over
the second half of the ratings by time, and writes the
online mode's candidate set for each scored event. Vowpal Wabbit (`bench/online/setup.sh` installs it)
then replays the same events: at each scored event it fills a slate of k slots from the same
candidates with the same features (`--ccb_explore_adf`, slot j choosing among the candidates slots
< j left), is rewarded per slot (cost -1 when the slot holds the user's true next positive item, else
0), and learns from that before the next event. Its exploration setting is chosen among
--vw-configs on the first --validation share of the stream (seed 1), never on the reported part:
every hit rate reported is over the rest of the stream (the first 20% = windows 1-4 of 20 are
the validation part); the full-stream figure of the Chorus modes is also kept.

Writes bench/online/results.json, results.md and replay-<dataset>.png (hit rate per window, mean over
seeds). Refused from a tree with uncommitted changes (bench/common.py) unless --not-for-the-record.
"""

import argparse
import concurrent.futures as cf
import json
import os
import shlex
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import common  # noqa: E402

MODES = ["frozen", "online", "refit", "popularity", "random"]
DEFAULT_CONFIGS = "--squarecb --gamma_scale 10;--squarecb --gamma_scale 100;--squarecb --gamma_scale 1000"


def default_cli():
    for p in (os.path.join(common.REPO, ".build", "release", "chorus-cli"), os.path.join(common.REPO, "build", "chorus")):
        if os.path.isfile(p):
            return p
    return os.path.join(common.REPO, ".build", "release", "chorus-cli")


def read_candidates(path):
    """The candidate export of `chorus replay` (format: bench/online/README.md) -> (k, feature names,
    records (position, user, target, chorus hit, item ids (numpy int64), features (n x F float32)))."""
    import numpy as np

    with open(path, "rb") as f:
        b = f.read()
    if b[:8] != b"CHRCAND1":
        raise SystemExit(f"{path}: not a candidate export (magic {b[:8]!r})")
    k, nf = struct.unpack_from("<II", b, 8)
    off, names = 16, []
    for _ in range(nf):
        (n,) = struct.unpack_from("<H", b, off)
        names.append(b[off + 2:off + 2 + n].decode())
        off += 2 + n
    head = struct.Struct("<qqqqqBI")
    records = []
    while off < len(b):
        pos, user, _item, _ts, target, hit, n = head.unpack_from(b, off)
        off += head.size
        items = np.frombuffer(b, dtype="<i8", count=n, offset=off)
        off += 8 * n
        feats = np.frombuffer(b, dtype="<f4", count=n * nf, offset=off).reshape(n, nf)
        off += 4 * n * nf
        records.append((pos, user, target, hit, items, feats))
    return k, names, records


def vw_replay(path, config, seed, stop=None):
    """Vowpal Wabbit's ccb_explore_adf over the export: returns {position: hit} for every scored event
    before `stop` (a stream position; None = all) and the seconds it took."""
    from vowpalwabbit import pyvw

    k, _names, records = read_candidates(path)
    vw = pyvw.Workspace(f"--ccb_explore_adf {config} --random_seed {seed} -b 22 --quiet")
    t = time.perf_counter()
    hits = {}
    for pos, user, target, _hit, items, feats in records:
        if stop is not None and pos >= stop:
            break
        shared = f"ccb shared |u u{user}"
        actions = ["ccb action |f " + " ".join(f"f{j}:{v:.5g}" for j, v in enumerate(row) if v) + f" |i i{item}"
                   for item, row in zip(items.tolist(), feats.tolist())]
        slots = min(k, len(actions))
        pred = vw.predict([shared] + actions + ["ccb slot |"] * slots)
        chosen = [s[0] for s in pred]  # per slot (action, probability), the sampled action first
        slate = [int(items[a]) for a, _p in chosen]
        hits[pos] = target in slate
        labels = [f"ccb slot {a}:{-1 if int(items[a]) == target else 0}:{max(p, 1e-6):.6g} |" for a, p in chosen]
        vw.learn([shared] + actions + labels)
    vw.finish()
    return hits, time.perf_counter() - t


def run_chorus(args, dataset, seed, tmp):
    out_json = os.path.join(tmp, f"{dataset}-{seed}.json")
    export = os.path.join(tmp, f"{dataset}-{seed}.cand")
    cmd = [args.cli, "replay", "--data", os.path.join(args.data, dataset), "--seed", str(seed), "--k", str(args.k),
           "--windows", str(args.windows), "--json", out_json, "--quiet"]
    if not args.no_vw:
        cmd += ["--export-candidates", export]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(map(shlex.quote, cmd))} failed ({p.returncode}):\n{p.stderr}")
    print(p.stdout, flush=True)
    with open(out_json) as f:
        result = json.load(f)
    result["wall_seconds"] = time.perf_counter() - t
    shown = [c.replace(tmp, "<tmp>") for c in cmd]
    shown = [os.path.relpath(c, common.REPO) if os.path.isabs(c) and c.startswith(common.REPO) else c for c in shown]
    result["command"] = " ".join(shlex.quote(c) for c in shown)
    return result, export


def window_rates(hits_by_pos, windows):
    """Per window of the chorus JSON ({start, end}): (hits, scored)."""
    out = []
    for w in windows:
        vals = [h for p, h in hits_by_pos.items() if w["start"] <= p < w["end"]]
        out.append({"hits": int(sum(vals)), "scored": len(vals), "hit_rate": (sum(vals) / len(vals)) if vals else None})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=common.DEFAULT_DATA)
    ap.add_argument("--datasets", default="ml-100k,ml-latest-small")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--windows", type=int, default=20)
    ap.add_argument("--validation", type=float, default=0.2, help="share of the stream that chooses VW's exploration")
    ap.add_argument("--limit", type=int, default=None, help="stop each replay after N streamed events")
    ap.add_argument("--cli", default=default_cli())
    ap.add_argument("--jobs", type=int, default=2, help="Vowpal Wabbit runs in parallel")
    ap.add_argument("--no-vw", action="store_true", help="Chorus modes only")
    ap.add_argument("--vw-configs", default=DEFAULT_CONFIGS, help="exploration settings tried on the validation part, ';'-separated")
    ap.add_argument("--no-write", action="store_true")
    common.add_record_flag(ap)
    common.add_render_flags(ap)
    args = ap.parse_args()
    if args.render:
        return common.render_mode(args, HERE, render)
    if not args.no_vw:
        try:
            import vowpalwabbit  # noqa: F401
        except ImportError:
            raise SystemExit("vowpalwabbit is not installed: run bench/online/setup.sh (or pass --no-vw)")
    if not os.path.isfile(args.cli):
        raise SystemExit(f"{args.cli}: no such binary (make cli)")
    prov = common.Provenance([args.cli])
    if not args.no_write:
        prov.check_record(args.not_for_the_record)
    configs = [c.strip() for c in args.vw_configs.split(";") if c.strip()]
    seeds = list(range(1, args.seeds + 1))
    runs = []
    with tempfile.TemporaryDirectory(prefix="chorus-replay-") as tmp, cf.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        # 1. Every Chorus replay (they use every core), then 2. Vowpal Wabbit on their exports, --jobs at a time.
        datasets = args.datasets.split(",")
        results, exports = {}, {}
        for dataset in datasets:
            for seed in seeds:
                results[dataset, seed], exports[dataset, seed] = run_chorus(args, dataset, seed, tmp)
        if args.no_vw:
            runs = [{"dataset": d, "seed": s, "chorus": results[d, s], "vw": None} for d in datasets for s in seeds]
        else:
            stops, futures = {}, {}
            for dataset in datasets:
                first = results[dataset, seeds[0]]
                # The validation part: whole windows, the first --validation share of the stream.
                stops[dataset] = min((w["start"] for w in first["windows"] if w["start"] >= first["replayed_events"] * args.validation),
                                     default=first["replayed_events"])
                # Exploration chosen on the validation part of the first seed's stream.
                futures[dataset] = {c: pool.submit(vw_replay, exports[dataset, seeds[0]], c, seeds[0], stops[dataset]) for c in configs}
            full = {}
            for dataset in datasets:
                validation = []
                for c, fu in futures[dataset].items():
                    hits, secs = fu.result()
                    validation.append({"config": c, "hit_rate": sum(hits.values()) / max(1, len(hits)), "scored": len(hits), "seconds": secs})
                    print(f"{dataset} VW validation {c}: hit@{args.k} {validation[-1]['hit_rate']:.4f} over {len(hits)} events", flush=True)
                best = max(validation, key=lambda v: v["hit_rate"])["config"]
                for s in seeds:
                    full[dataset, s] = (best, validation, pool.submit(vw_replay, exports[dataset, s], best, s))
            for dataset in datasets:
                stop = stops[dataset]
                for s in seeds:
                    best, validation, fu = full[dataset, s]
                    hits, secs = fu.result()
                    os.remove(exports[dataset, s])
                    r = results[dataset, s]
                    reported = [h for p, h in hits.items() if p >= stop]
                    vw = {"args": f"--ccb_explore_adf {best} --random_seed {s} -b 22", "config": best, "validation": validation,
                          "validation_end": stop, "seconds": secs, "hits": int(sum(reported)), "scored": len(reported),
                          "hit_rate": sum(reported) / max(1, len(reported)), "windows": window_rates(hits, r["windows"])}
                    print(f"{dataset} seed {s} VW {best}: hit@{args.k} {vw['hit_rate']:.4f} after the validation part ({secs:.0f} s)",
                          flush=True)
                    runs.append({"dataset": dataset, "seed": s, "chorus": r, "vw": vw})
    settings = {k: v for k, v in vars(args).items() if k not in ("render", "render_from", "json_out", "no_write", "not_for_the_record")}
    settings["cli"] = os.path.relpath(args.cli, common.REPO) if args.cli.startswith(common.REPO) else args.cli
    settings["data"] = os.path.relpath(args.data, common.REPO) if os.path.isabs(args.data) else args.data
    from importlib.metadata import version
    peers = {} if args.no_vw else {"vowpalwabbit": version("vowpalwabbit")}
    result = {"benchmark": "online-replay", "settings": settings, "peers": peers, "runs": runs, "provenance": prov.finish().as_dict()}
    md = common.write_results(HERE, result, render, indent=1, json_out=args.json_out, write=not args.no_write)
    if not args.no_write:
        plot(result, HERE)


def summary(result):
    """Per dataset: per mode (chorus modes, then vw) the list over seeds of (reported-part hit rate,
    full-stream hit rate or None) and the compute figures."""
    out = {}
    for run in result["runs"]:
        d = out.setdefault(run["dataset"], {"modes": {}, "seeds": [], "chorus": []})
        d["seeds"].append(run["seed"])
        d["chorus"].append(run["chorus"])
        c = run["chorus"]
        stop = run["vw"]["validation_end"] if run["vw"] else min(
            (w["start"] for w in c["windows"] if w["start"] >= c["replayed_events"] * result["settings"]["validation"]),
            default=c["replayed_events"])
        for m in c["modes"]:
            rep = [w for w, b in zip(m["windows"], c["windows"]) if b["start"] >= stop]
            hits, scored = sum(w["hits"] for w in rep), sum(w["scored"] for w in rep)
            d["modes"].setdefault(m["mode"], []).append({"reported": hits / scored if scored else None, "full": m["hit_rate"],
                                                         "serve": m["serve_seconds"], "feed": m["feed_seconds"],
                                                         "refit": m["refit_seconds"], "refits": m["refits"],
                                                         "fold": m.get("fold_seconds")})
        if run["vw"]:
            d["modes"].setdefault("vw", []).append({"reported": run["vw"]["hit_rate"], "full": None, "seconds": run["vw"]["seconds"]})
    return out


def has_fold(d):
    """Whether the runs report the engine's fold-in seconds (`chorus replay` from 2026-12-04 on)."""
    return all(x.get("fold") is not None for rows in d["modes"].values() for x in rows if "serve" in x)


def mean_sd(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None
    m = sum(xs) / len(xs)
    sd = (sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5 if len(xs) > 1 else 0.0
    return m, sd


def fmt(m, sd=None, digits=4):
    if m is None:
        return "-"
    return f"{m:.{digits}f}" + (f" ± {sd:.{digits}f}" if sd is not None else "")


def render(r):
    s = r["settings"]
    k = s["k"]
    L = ["# Replay: online learning against frozen, refit, popularity, random and Vowpal Wabbit", "",
         "Recorded by `bench/online/replay.py`; do not edit by hand (rerun it).", ""]
    L += common.provenance_banner(r.get("provenance"))
    L += ["", f"Each dataset's ratings sorted by time, the first half fitted on (interactions only, `FitParameters` defaults), "
          f"the rest streamed event by event; before each event its user gets a slate of {k}, rewarded when it holds the "
          f"user's next rating >= 4; then the event is fed (modes that learn). Hit@{k} is over the stream after its first "
          f"{s['validation']:.0%} (where Vowpal Wabbit's exploration was chosen); `full` is the whole stream. "
          f"Mean ± standard deviation over seeds {', '.join(str(x) for x in range(1, s['seeds'] + 1))}"
          + (f"; each replay stopped after {s['limit']:,} events (--limit)" if s.get("limit") else "") + ".", ""]
    if r.get("peers"):
        L += ["Peer: " + ", ".join(f"{k_} {v}" for k_, v in r["peers"].items()) + "."]
        L += [""]
    for dataset, d in summary(r).items():
        first = d["chorus"][0]
        L += [f"## {dataset}", "",
              f"{first['ratings']:,} ratings: {first['train_events']:,} fitted on, {first['replayed_events']:,} replayed; "
              f"agents {', '.join(first['fit']['agents'])}; fit {fmt(mean_sd([c['fit']['seconds'] for c in d['chorus']])[0], None, 1)} s.", "",
              f"| mode | hit@{k} | per seed | full stream | serve s | feed s | refit s (refits) |" + (" fold-ins s |" if has_fold(d) else ""),
              "| --- | --- | --- | --- | --- | --- | --- |" + (" --- |" if has_fold(d) else "")]
        for mode, rows in d["modes"].items():
            m, sd = mean_sd([x["reported"] for x in rows])
            per = ", ".join(fmt(x["reported"]) for x in rows)
            full = fmt(*mean_sd([x["full"] for x in rows])) if rows[0]["full"] is not None else "-"
            if mode == "vw":
                vw0 = next(run["vw"] for run in r["runs"] if run["dataset"] == dataset)
                L.append(f"| Vowpal Wabbit (`{vw0['config']}`) | {fmt(m, sd)} | {per} | - | {fmt(mean_sd([x['seconds'] for x in rows])[0], None, 1)} (all) | - | - |"
                         + (" - |" if has_fold(d) else ""))
            else:
                L.append(f"| {mode} | {fmt(m, sd)} | {per} | {full} | {fmt(mean_sd([x['serve'] for x in rows])[0], None, 1)} | "
                         f"{fmt(mean_sd([x['feed'] for x in rows])[0], None, 1)} | "
                         f"{fmt(mean_sd([x['refit'] for x in rows])[0], None, 1)} ({rows[0]['refits']}) |"
                         + (f" {fmt(mean_sd([x['fold'] for x in rows])[0], None, 2)} |" if has_fold(d) else ""))
        L.append("")
        ratio = lambda a, b: [x["reported"] / y["reported"] if x["reported"] and y["reported"] else None
                              for x, y in zip(d["modes"].get(a, []), d["modes"].get(b, []))]
        lines = []
        pairs = [("online", "frozen"), ("refit", "frozen")]
        pairs += [(a, b) for a in ("online", "linucb", "thompson", "policy") for b in ("refit", "vw")]
        for a, b in pairs:
            if a in d["modes"] and b in d["modes"]:
                m, sd = mean_sd(ratio(a, b))
                lines.append(f"{a}/{b} {fmt(m, sd, 2)}x")
        if "refit" in d["modes"]:
            re = mean_sd([x["serve"] + x["feed"] + x["refit"] for x in d["modes"]["refit"]])[0]
            for a in ("online", "linucb", "thompson", "policy"):
                if a in d["modes"]:
                    on = mean_sd([x["serve"] + x["feed"] for x in d["modes"][a]])[0]
                    lines.append(f"compute (serve + feed + refits) refit {re:.1f} s vs {a} {on:.1f} s: {re / on:.1f}x")
            # What learning costs beyond serving a fixed model: a mode's serve + feed + refits minus the
            # frozen mode's serve (fold-ins run lazily inside serve, at the user's next request).
            if "frozen" in d["modes"]:
                base = mean_sd([x["serve"] for x in d["modes"]["frozen"]])[0]
                rl = re - base
                for a in ("online", "linucb", "thompson", "policy"):
                    if a in d["modes"]:
                        fl = mean_sd([x["serve"] + x["feed"] for x in d["modes"][a]])[0] - base
                        if fl > 0:
                            lines.append(f"learning compute (beyond frozen serving) refit {rl:.1f} s vs {a} {fl:.1f} s: {rl / fl:.1f}x")
            # The model's updates alone, measured inside the engine: feed + fold-ins of users and
            # placements of new items (wherever they ran) + refits. Serving with the overlay (more
            # history, new items in the catalogue) is not counted here: the refit mode serves it too.
            if has_fold(d):
                ru = mean_sd([x["feed"] + x["fold"] + x["refit"] for x in d["modes"]["refit"]])[0]
                for a in ("online", "linucb", "thompson", "policy"):
                    if a in d["modes"]:
                        ou = mean_sd([x["feed"] + x["fold"] for x in d["modes"][a]])[0]
                        if ou > 0:
                            lines.append(f"model updates (feed + fold-ins + refits) refit {ru:.1f} s vs {a} {ou:.1f} s: {ru / ou:.1f}x")
        L += ["Ratios of hit@%d (per seed, then mean ± sd): " % k + "; ".join(lines) + ".", ""]
        vw0 = next((run["vw"] for run in r["runs"] if run["dataset"] == dataset and run["vw"]), None)
        if vw0:
            L += [f"Vowpal Wabbit's exploration, chosen on the first {vw0['validation_end']:,} streamed events of seed 1: "
                  + "; ".join(f"`{v['config']}` {v['hit_rate']:.4f}" for v in vw0["validation"]) + ".", ""]
        L += [f"![hit rate over time, {dataset}](replay-{dataset}.png)", ""]
    L += ["Chorus ran as: " + "; ".join(f"`{run['chorus']['command']}`" for run in r["runs"] if run["seed"] == 1) + " (and so on per seed).", ""]
    return "\n".join(L)


def plot(r, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {}
    for run in r["runs"]:
        by.setdefault(run["dataset"], []).append(run)
    for dataset, runs in by.items():
        fig, ax = plt.subplots(figsize=(8, 4.5))
        windows = runs[0]["chorus"]["windows"]
        x = [(w["start"] + w["end"]) / 2 for w in windows]
        series = {m["mode"]: [] for m in runs[0]["chorus"]["modes"]}
        if runs[0]["vw"]:
            series["vw"] = []
        for i in range(len(windows)):
            for mode in series:
                vals = []
                for run in runs:
                    ws = run["vw"]["windows"] if mode == "vw" else next(m["windows"] for m in run["chorus"]["modes"] if m["mode"] == mode)
                    if ws[i]["hit_rate"] is not None:
                        vals.append(ws[i]["hit_rate"])
                series[mode].append(sum(vals) / len(vals) if vals else float("nan"))
        for mode, ys in series.items():
            ax.plot(x, ys, marker="o", markersize=3, label="Vowpal Wabbit (ccb)" if mode == "vw" else mode)
        if runs[0]["vw"]:
            ax.axvline(runs[0]["vw"]["validation_end"], color="grey", linestyle=":", linewidth=1)
            ax.text(runs[0]["vw"]["validation_end"], ax.get_ylim()[1] * 0.97, " VW validation ends", fontsize=8, va="top", color="grey")
        ax.set_xlabel("streamed events")
        ax.set_ylabel(f"hit@{r['settings']['k']} (mean over {len(runs)} seeds)")
        ax.set_title(f"Replay on {dataset}: hit rate over time")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = os.path.join(out_dir, f"replay-{dataset}.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        print(f"wrote {os.path.relpath(path, common.REPO)}")


if __name__ == "__main__":
    main()
