#!/usr/bin/env python3
"""Knowledge-graph embeddings: Chorus (`chorus kg train`) against PyKEEN, and link-prediction quality
next to the published figures.

    python3 bench/kg/run.py speed   [--data DIR] [--dataset wn18rr] [--models rotate,transe,distmult,complex]
                                    [--dim 100] [--batch 512] [--negatives 64] [--epochs 3] [--threads 2]
    python3 bench/kg/run.py quality [--data DIR] [--only NAME,...] [--other-minutes 3]
                                    [--rotate-minutes 35 | --rotate-epochs 400 [--rotate-decay-at 0.75]] [--rotate-share 16]

speed: each model is trained by both libraries with the same dimension, batch size, negatives per
positive, optimiser (Adam), learning rate, epochs and thread count (torch.set_num_threads), and the
same kind of loss; the epoch time is the median of the epochs after the first (the first carries
set-up and warm-up in PyKEEN). Both models are then evaluated on the test split, filtered, with the
realistic rank for ties, by each library's own evaluator, in the same run.

quality: `chorus kg train` per dataset and model under the budget its recorded row used (QUALITY:
wall-time minutes, or a fixed number of epochs with a learning-rate decay), then filtered MRR /
Hits@k on test, next to the RotatE paper's Table 5.

Each mode rewrites its own section of bench/kg/results.json and re-renders bench/kg/results.md
(unless --no-write); `--render [OUT]` re-renders results.md from results.json without running anything.
See bench/README.md.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import common  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CLI = os.path.join(common.REPO, ".build", "release", "chorus-cli")

# Sun et al. 2019 (RotatE, ICLR), Table 5: FB15k-237 and WN18RR, filtered. TransE's row is the one the
# paper takes from Nguyen et al. 2018; DistMult and ComplEx rows from Dettmers et al. 2018.
PUBLISHED = {
    ("wn18rr", "transe"): dict(mr=3384, mrr=0.226, h1=None, h3=None, h10=0.501, source="RotatE Table 5 (from Nguyen et al. 2018)"),
    ("wn18rr", "distmult"): dict(mr=5110, mrr=0.43, h1=0.39, h3=0.44, h10=0.49, source="RotatE Table 5 (from Dettmers et al. 2018)"),
    ("wn18rr", "complex"): dict(mr=5261, mrr=0.44, h1=0.41, h3=0.46, h10=0.51, source="RotatE Table 5 (from Dettmers et al. 2018)"),
    ("wn18rr", "rotate"): dict(mr=3340, mrr=0.476, h1=0.428, h3=0.492, h10=0.571, source="RotatE Table 5"),
    ("fb15k-237", "transe"): dict(mr=357, mrr=0.294, h1=None, h3=None, h10=0.465, source="RotatE Table 5 (from Nguyen et al. 2018)"),
    ("fb15k-237", "distmult"): dict(mr=254, mrr=0.241, h1=0.155, h3=0.263, h10=0.419, source="RotatE Table 5 (from Dettmers et al. 2018)"),
    ("fb15k-237", "complex"): dict(mr=339, mrr=0.247, h1=0.158, h3=0.275, h10=0.428, source="RotatE Table 5 (from Dettmers et al. 2018)"),
    ("fb15k-237", "rotate"): dict(mr=177, mrr=0.338, h1=0.241, h3=0.375, h10=0.533, source="RotatE Table 5"),
}

# Quality runs: scaled-down versions of the RotatE authors' best_config.sh (dimension, negatives and
# steps cut to fit a 2-core budget; the learning rate raised from 5e-5 accordingly), each with the
# budget its recorded row used: wall-time minutes, or epochs with the learning rate divided by 10
# after `decay_at` of them, and how many positives share a draw of negatives.
QUALITY = [
    ("wn18rr", "rotate", ["--dim", "200", "--batch", "512", "--negatives", "256", "--gamma", "6", "--temperature", "0.5", "--lr", "0.001"],
     dict(epochs=400, decay_at=0.75, share=16)),
    ("fb15k-237", "rotate", ["--dim", "500", "--batch", "1024", "--negatives", "256", "--gamma", "9", "--temperature", "1.0", "--lr", "0.001",
                             "--filter-negatives"],
     dict(epochs=160, decay_at=0.75, share=16)),
    ("wn18rr", "transe", ["--dim", "100", "--batch", "512", "--negatives", "64", "--loss", "margin", "--margin", "1", "--lr", "0.001"], dict(minutes=3)),
    ("wn18rr", "distmult", ["--dim", "200", "--batch", "512", "--negatives", "64", "--regularizer", "n3", "--reg-weight", "5e-6", "--lr", "0.002"],
     dict(minutes=3)),
    ("wn18rr", "complex", ["--dim", "100", "--batch", "512", "--negatives", "64", "--regularizer", "n3", "--reg-weight", "5e-6", "--lr", "0.002"],
     dict(minutes=3)),
    ("fb15k-237", "transe", ["--dim", "100", "--batch", "1024", "--negatives", "64", "--loss", "margin", "--margin", "1", "--lr", "0.001"],
     dict(minutes=3)),
    ("fb15k-237", "distmult", ["--dim", "200", "--batch", "1024", "--negatives", "64", "--regularizer", "n3", "--reg-weight", "1e-5", "--lr", "0.001"],
     dict(minutes=3)),
    ("fb15k-237", "complex", ["--dim", "100", "--batch", "1024", "--negatives", "64", "--regularizer", "n3", "--reg-weight", "1e-5", "--lr", "0.001"],
     dict(minutes=3)),
]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", nargs="?", choices=["speed", "quality"], help="required unless --render")
    ap.add_argument("--data", default=common.DEFAULT_DATA, help="folder holding wn18rr/ and fb15k-237/ (default %(default)s)")
    ap.add_argument("--dataset", default="wn18rr", help="speed: the dataset (default %(default)s)")
    ap.add_argument("--models", default="rotate,transe,distmult,complex", help="speed: models to compare")
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--negatives", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    # The quality budgets default to each row's recorded one (QUALITY); these override them.
    ap.add_argument("--rotate-minutes", type=float, help="quality: wall-time budget per RotatE run")
    ap.add_argument("--rotate-epochs", type=int, help="quality: a fixed number of epochs per RotatE run "
                    "instead of a wall-time budget (the learning-rate schedule needs the length in advance)")
    ap.add_argument("--rotate-decay-at", type=float, help="quality, with --rotate-epochs: the share of the "
                    "epochs after which the learning rate is divided by 10 (0: no decay; default 0.75)")
    ap.add_argument("--rotate-share", type=int, help="quality: RotatE runs share each draw of negatives among "
                    "this many positives (--share-negatives; 1: each its own)")
    ap.add_argument("--other-minutes", type=float, help="quality: budget per TransE/DistMult/ComplEx run")
    ap.add_argument("--only", default="", help="quality: comma-separated dataset/model pairs to run (e.g. wn18rr/rotate)")
    ap.add_argument("--cli", default=CLI, help="the chorus-cli binary (default %(default)s); a copy lets a long run "
                    "go on while the tree is rebuilt")
    ap.add_argument("--no-write", action="store_true")
    common.add_record_flag(ap)
    common.add_render_flags(ap)
    args = ap.parse_args()
    if not args.mode and not args.render:
        ap.error("a mode (speed or quality) is required")
    return args


def run_chorus(data_dir, model, extra, epochs, threads, seed, out_json, minutes=None):
    cmd = [ARGS.cli, "kg", "train", "--data", data_dir, "--model", model, "--epochs", str(epochs),
           "--threads", str(threads), "--seed", str(seed), "--json", out_json] + extra
    if minutes:
        cmd += ["--max-minutes", str(minutes)]
    shown = [CLI if a == ARGS.cli else a for a in cmd]
    print("$ " + " ".join(os.path.relpath(a, common.REPO) if a.startswith(common.REPO) else a for a in shown), flush=True)
    t0 = time.perf_counter()
    # Stream the per-epoch lines as they come: a quality run can take over an hour.
    proc = subprocess.Popen(cmd, cwd=common.REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
    stderr = proc.stderr.read()
    proc.wait()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"chorus kg train failed ({proc.returncode}):\n{stderr}")
    with open(out_json) as f:
        report = json.load(f)
    report["wall_seconds"] = wall
    report["command"] = " ".join(os.path.relpath(a, common.REPO) if a.startswith(common.REPO) else a
                                 for a in shown if a != out_json).replace(" --json", "")
    return report


def pykeen_run(data_dir, model_name, args):
    """Trains and evaluates one PyKEEN model with the same settings; returns epoch times and metrics."""
    import torch
    torch.set_num_threads(args.threads)
    from pykeen.evaluation import RankBasedEvaluator
    from pykeen.losses import MarginRankingLoss, NSSALoss, SoftplusLoss
    from pykeen.models import ComplEx, DistMult, RotatE, TransE
    from pykeen.training import SLCWATrainingLoop
    from pykeen.training.callbacks import TrainingCallback
    from pykeen.triples import TriplesFactory

    train = TriplesFactory.from_path(os.path.join(data_dir, "train.txt"))
    valid = TriplesFactory.from_path(os.path.join(data_dir, "valid.txt"), entity_to_id=train.entity_to_id, relation_to_id=train.relation_to_id)
    test = TriplesFactory.from_path(os.path.join(data_dir, "test.txt"), entity_to_id=train.entity_to_id, relation_to_id=train.relation_to_id)
    if model_name == "rotate":
        model = RotatE(triples_factory=train, embedding_dim=args.dim, loss=NSSALoss(margin=6.0, adversarial_temperature=0.5), random_seed=args.seed)
    elif model_name == "transe":
        model = TransE(triples_factory=train, embedding_dim=args.dim, scoring_fct_norm=1, loss=MarginRankingLoss(margin=1.0), random_seed=args.seed)
    elif model_name == "distmult":
        model = DistMult(triples_factory=train, embedding_dim=args.dim, loss=SoftplusLoss(), random_seed=args.seed)
    else:
        model = ComplEx(triples_factory=train, embedding_dim=args.dim, loss=SoftplusLoss(), random_seed=args.seed)
    optimizer = torch.optim.Adam(model.get_grad_params(), lr=args.lr)

    class Clock(TrainingCallback):
        def __init__(self):
            super().__init__()
            self.last = time.perf_counter()
            self.times, self.losses = [], []

        def post_epoch(self, epoch, epoch_loss, **kwargs):
            now = time.perf_counter()
            self.times.append(now - self.last)
            self.losses.append(float(epoch_loss))
            self.last = now
            print(f"  pykeen epoch {epoch}: loss {epoch_loss:.5f} ({self.times[-1]:.2f} s)", flush=True)

    clock = Clock()
    loop = SLCWATrainingLoop(model=model, triples_factory=train, optimizer=optimizer, negative_sampler="basic",
                             negative_sampler_kwargs=dict(num_negs_per_pos=args.negatives, corruption_scheme=("head", "tail")))
    loop.train(triples_factory=train, num_epochs=args.epochs, batch_size=args.batch, use_tqdm=False, callbacks=[clock])
    t0 = time.perf_counter()
    evaluator = RankBasedEvaluator(filtered=True)
    res = evaluator.evaluate(model, test.mapped_triples, additional_filter_triples=[train.mapped_triples, valid.mapped_triples],
                             batch_size=256, use_tqdm=False)
    eval_seconds = time.perf_counter() - t0
    get = lambda m: float(res.get_metric(f"both.realistic.{m}"))
    import importlib.metadata
    return {
        "version": importlib.metadata.version("pykeen"), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "epoch_seconds": clock.times, "losses": clock.losses, "eval_seconds": eval_seconds,
        "test_triples_ranked": int(test.num_triples),
        "metrics": {"mrr": get("inverse_harmonic_mean_rank"), "mr": get("arithmetic_mean_rank"),
                    "hits1": get("hits_at_1"), "hits3": get("hits_at_3"), "hits10": get("hits_at_10")},
    }


CHORUS_LOSS = {"rotate": ["--loss", "adversarial", "--temperature", "0.5", "--gamma", "6"],
               "transe": ["--loss", "margin", "--margin", "1", "--norm", "1"],
               "distmult": ["--loss", "logistic", "--regularizer", "none"],
               "complex": ["--loss", "logistic", "--regularizer", "none"]}
PYKEEN_LOSS = {"rotate": "NSSALoss(margin=6, adversarial_temperature=0.5)", "transe": "MarginRankingLoss(margin=1), L1",
               "distmult": "SoftplusLoss", "complex": "SoftplusLoss"}


def speed(args):
    data_dir = os.path.join(args.data, args.dataset)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            extra = ["--dim", str(args.dim), "--batch", str(args.batch), "--negatives", str(args.negatives),
                     "--lr", str(args.lr), "--sampling", "uniform", "--optimizer", "adam"] + CHORUS_LOSS[model]
            load0 = os.getloadavg()
            ch = run_chorus(data_dir, model, extra, args.epochs, args.threads, args.seed, os.path.join(tmp, f"{model}.json"))
            pk = pykeen_run(data_dir, model, args)
            load1 = os.getloadavg()
            c_ep = statistics.median(ch["epoch_seconds"][1:] or ch["epoch_seconds"])
            p_ep = statistics.median(pk["epoch_seconds"][1:] or pk["epoch_seconds"])
            row = {"model": model, "chorus": ch, "pykeen": pk, "chorus_epoch_seconds": c_ep, "pykeen_epoch_seconds": p_ep,
                   "speedup": p_ep / c_ep, "loadavg": [load0[0], load1[0]], "driver": common.command_line(),
                   "date": common.machine_facts()["date"], "provenance": PROV.finish().as_dict()}
            rows.append(row)
            print(f"{model}: Chorus {c_ep:.2f} s/epoch, PyKEEN {p_ep:.2f} s/epoch -> {p_ep / c_ep:.2f}x; "
                  f"MRR Chorus {ch['metrics']['both']['mrr']:.4f}, PyKEEN {pk['metrics']['mrr']:.4f}", flush=True)
            if not args.no_write:   # record each model as it finishes
                save(args.mode, speed_section(args, rows))
    return speed_section(args, rows)


def speed_section(args, rows):
    return {"command": common.command_line(), "machine": common.machine_facts(), "dataset": args.dataset,
            "settings": {"dim": args.dim, "batch": args.batch, "negatives": args.negatives, "epochs": args.epochs,
                         "lr": args.lr, "threads": args.threads, "seed": args.seed}, "rows": rows}


def unseen_test_triples(data_dir):
    """Test triples naming an entity or relation absent from train.txt (excluded from the metrics)."""
    def read(name):
        with open(os.path.join(data_dir, name), newline="") as f:
            return [tuple(line.rstrip("\r\n").split("\t")) for line in f if line.strip()]
    train = read("train.txt")
    entities = {h for h, _, _ in train} | {t for _, _, t in train}
    relations = {r for _, r, _ in train}
    test = read("test.txt")
    return sum(1 for h, r, t in test if h not in entities or t not in entities or r not in relations), len(test)


def quality(args):
    only = set(filter(None, args.only.split(",")))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dataset, model, extra, recorded in QUALITY:
            if only and f"{dataset}/{model}" not in only:
                continue
            budget = dict(recorded)
            if model == "rotate":
                if args.rotate_minutes is not None:
                    budget = dict(minutes=args.rotate_minutes, share=budget.get("share", 1))
                if args.rotate_epochs is not None:
                    budget = dict(epochs=args.rotate_epochs, decay_at=budget.get("decay_at", 0.75), share=budget.get("share", 1))
                if args.rotate_decay_at is not None:
                    budget["decay_at"] = args.rotate_decay_at
                if args.rotate_share is not None:
                    budget["share"] = args.rotate_share
            elif args.other_minutes is not None:
                budget = dict(minutes=args.other_minutes)
            minutes, epochs = budget.get("minutes"), budget.get("epochs", 100000)
            if budget.get("share", 1) > 1:
                extra = extra + ["--share-negatives", str(budget["share"])]
            if "epochs" in budget:
                decay = int(round(epochs * budget.get("decay_at", 0)))
                if 0 < decay < epochs:
                    extra = extra + ["--lr-decay-epochs", str(decay), "--lr-decay-factor", "0.1"]
            rep = run_chorus(os.path.join(args.data, dataset), model, extra, epochs, args.threads, args.seed,
                             os.path.join(tmp, f"{dataset}-{model}.json"), minutes=minutes)
            unseen, total = unseen_test_triples(os.path.join(args.data, dataset))
            rep.update(dataset=dataset, minutes=minutes, loadavg=os.getloadavg()[0], test_unseen=unseen, test_triples=total,
                       provenance=PROV.finish().as_dict())
            rows.append(rep)
            if not args.no_write:   # record each run as it finishes: a long session may be cut short
                save(args.mode, {"command": common.command_line(), "machine": common.machine_facts(), "rows": rows})
    return {"command": common.command_line(), "machine": common.machine_facts(), "rows": rows}


def budget(row):
    """A run's budget: its wall-time limit, or its fixed epochs and learning-rate schedule."""
    shared = f"; negatives shared by {row['negative_sharing']}" if row.get("negative_sharing", 1) > 1 else ""
    if row.get("filter_negatives") or "--filter-negatives" in row.get("command", ""):
        shared += "; known facts left out of the negatives"
    if row.get("minutes"):
        return f"{row['minutes']:g} min{shared}"
    decay = row.get("lr_decay_epochs") or []
    return f"{row['epochs']} epochs" + (f", lr /10 after {', '.join(map(str, decay))}" if decay else "") + shared


def render(results):
    out = ["# Knowledge-graph embeddings: Chorus vs PyKEEN, and quality against the published figures",
           "", "Recorded by `bench/kg/run.py`; do not edit by hand (rerun it).", ""]
    s = results.get("speed")
    if s:
        st, m = s["settings"], s["machine"]
        out += ["## Epoch time and MRR against PyKEEN (same run)", "",
                f"{s['dataset']}, dimension {st['dim']}, batch {st['batch']}, {st['negatives']} negatives per positive, "
                f"Adam lr {st['lr']}, {st['epochs']} epochs, {st['threads']} threads on both sides (`torch.set_num_threads`). "
                "Epoch time: median of the epochs after the first. MRR / Hits@10: test split, filtered against "
                "train + valid + test, realistic rank for ties (each library's own evaluator); after the same number of epochs.", "",
                "| model | loss (Chorus / PyKEEN) | Chorus s/epoch | PyKEEN s/epoch | speed-up | MRR Chorus | MRR PyKEEN | H@10 Chorus | H@10 PyKEEN | load avg before/after |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in s["rows"]:
            c, p = r["chorus"], r["pykeen"]
            out.append(f"| {r['model']} | {' '.join(CHORUS_LOSS[r['model']])} / {PYKEEN_LOSS[r['model']]} | {r['chorus_epoch_seconds']:.2f} | "
                       f"{r['pykeen_epoch_seconds']:.2f} | **{r['speedup']:.2f}x** | {c['metrics']['both']['mrr']:.4f} | {p['metrics']['mrr']:.4f} | "
                       f"{c['metrics']['both']['hits10']:.4f} | {p['metrics']['hits10']:.4f} | {r['loadavg'][0]:.2f} / {r['loadavg'][1]:.2f} |")
        per_epoch = "; ".join(
            f"{r['model']} Chorus {', '.join(f'{t:.2f}' for t in r['chorus']['epoch_seconds'])}, PyKEEN "
            f"{', '.join(f'{t:.2f}' for t in r['pykeen']['epoch_seconds'])}" for r in s["rows"])
        drivers = sorted({r.get("driver", s["command"]) for r in s["rows"]})
        out += ["", "Per epoch (s): " + per_epoch, "",
                "Commands (the driver, then the Chorus side of each row):", "", "```"]
        out += drivers + [r["chorus"]["command"] for r in s["rows"]] + ["```", ""]
        out += ["Rows measured at: " + ", ".join(f"{r['model']} {r.get('date', m['date'])}" for r in s["rows"]) + ".", "",
                row_provenance(s["rows"]), "",
                f"PyKEEN {s['rows'][0]['pykeen']['version']} on torch {s['rows'][0]['pykeen']['torch']} (CPU). "
                f"Machine: {m['date']}, nproc {m['nproc']}, {m['cpu_model']}, {m['swift']}, revision {m['git_revision']}.", ""]
    q = results.get("quality")
    if q:
        m = q["machine"]
        out += ["## Quality: filtered link prediction on test, against the published figures", "",
                "Published: Sun et al. 2019 (RotatE), Table 5 (its TransE row is quoted from Nguyen et al. 2018, DistMult and ComplEx "
                "from Dettmers et al. 2018). Chorus: `chorus kg train` under a budget of wall time or of epochs (then with the "
                "wall time it took) on this shared 2-core machine; "
                "metrics use the realistic rank for ties; test triples naming an entity absent from train are excluded "
                "(counted by the driver from the files: " + ", ".join(sorted({f"{r['dataset']} {r['test_unseen']} of {r['test_triples']}"
                for r in q["rows"] if "test_unseen" in r})) + "). The RotatE rows' published figures were cross-checked "
                "against the paper's results as listed on paperswithcode.com; the other rows are quoted from Table 5 "
                "and were not re-checked here. The papers' code ranks those triples too (every entity of every split has an "
                "embedding, one never trained but as a negative), so they count there, almost surely as misses: the column "
                "\"MRR, all test\" counts them as misses (MRR and H@10 scaled by the share of test triples evaluated), the figure "
                "to hold against the published one. Load average: the 1-minute figure when the run ended (the machine is shared).", "",
                "| dataset | model | budget | epochs run | train time | MRR (known entities) | MRR, all test | published MRR | MR | H@1 | H@3 | H@10 | H@10, all test | published H@10 | load avg |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        counts = {r["dataset"]: (r["test_unseen"], r["test_triples"]) for r in q["rows"] if r.get("test_triples")}
        for r in q["rows"]:
            pub = PUBLISHED[(r["dataset"], r["model"])]
            mm = r["metrics"]["both"]
            unseen, total = counts.get(r["dataset"], (0, 0))  # the same files for every row of a dataset
            share = 1 - unseen / total if total else float("nan")
            out.append(f"| {r['dataset']} | {r['model']} | {budget(r)} | {r['epochs_run']} | {r['train_seconds'] / 60:.1f} min | "
                       f"{mm['mrr']:.4f} | **{mm['mrr'] * share:.4f}** | {pub['mrr']} | {mm['mr']:.0f} | {mm['hits1']:.4f} | {mm['hits3']:.4f} | "
                       f"{mm['hits10']:.4f} | {mm['hits10'] * share:.4f} | {pub['h10']} | {r.get('loadavg', float('nan')):.1f} |")
        out += ["", row_provenance(q["rows"])]
        out += ["", "Commands (the driver, then each run's exact settings):", "", "```"] + q.get("commands", [q["command"]]) + [r["command"] for r in q["rows"]] + ["```", "",
                f"Machine: {m['date']}, nproc {m['nproc']}, {m['cpu_model']}, {m['swift']}, revision {m['git_revision']}.", ""]
    return "\n".join(out)


ARGS = None
PROV = None


def row_provenance(rows):
    """One line naming the commit (and binary) each kept row was recorded from; rows from before
    provenance was kept, or not for the record, say so."""
    parts = []
    for r in rows:
        p = r.get("provenance")
        name = f"{r.get('dataset', '')}/{r['model']}".lstrip("/")
        if not p:
            parts.append(f"{name}: no provenance (recorded before runs kept it; not tied to a commit)")
        else:
            b = p["binaries"][0] if p.get("binaries") else None
            parts.append(f"{name}: commit `{p['commit'][:10]}`" + (f", `{b['path']}` sha256 `{b['sha256'][:12]}`" if b else "")
                         + (" — **NOT FOR THE RECORD** (" + "; ".join(p.get("problems", [])) + ")" if p.get("not_for_the_record") else ""))
    return "Rows recorded from: " + "; ".join(parts) + "."


def main():
    global ARGS, PROV
    args = ARGS = parse_args()
    if args.render:
        return common.render_mode(args, HERE, render)
    if not os.path.exists(args.cli):
        sys.exit(f"{args.cli} not found: build it with `swift build -c release --product chorus-cli`")
    PROV = common.Provenance([args.cli])
    if not args.no_write:
        PROV.check_record(args.not_for_the_record)
    section = speed(args) if args.mode == "speed" else quality(args)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({args.mode: section}, f, indent=2)
            f.write("\n")
    print(render({args.mode: section}))
    if not args.no_write:
        save(args.mode, section)


def save(mode, section):
    path = os.path.join(HERE, "results.json")
    results = {}
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    if mode == "speed" and "speed" in results and results["speed"]["settings"] == section["settings"] \
            and results["speed"]["dataset"] == section["dataset"]:
        # Same settings: models measured by an earlier run stay (`--models` refreshes single rows).
        fresh = {r["model"] for r in section["rows"]}
        section = dict(section, rows=[r for r in results["speed"]["rows"] if r["model"] not in fresh] + section["rows"])
    if mode == "quality" and "quality" in results:
        # Runs of other (dataset, model) pairs recorded earlier stay: `--only` refreshes single rows.
        fresh = {(r["dataset"], r["model"]) for r in section["rows"]}
        kept = [r for r in results["quality"]["rows"] if (r["dataset"], r["model"]) not in fresh]
        order = {(d, m): i for i, (d, m, _, _) in enumerate(QUALITY)}
        section = dict(section, rows=sorted(kept + section["rows"], key=lambda r: order.get((r["dataset"], r["model"]), 99)),
                       commands=sorted(set(results["quality"].get("commands", [results["quality"]["command"]]) + [section["command"]])))
    results[mode] = section
    text = json.dumps(results, indent=2) + "\n"
    with open(path, "w") as f:
        f.write(text)
    with open(os.path.join(HERE, "results.md"), "w") as f:
        f.write(render(json.loads(text)))  # from what results.json holds: `--render` gives the same bytes
    print(f"wrote {os.path.relpath(os.path.join(HERE, 'results.md'), common.REPO)} and results.json")


if __name__ == "__main__":
    main()
