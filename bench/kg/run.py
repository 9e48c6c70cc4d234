#!/usr/bin/env python3
"""Knowledge-graph embeddings: Chorus (`chorus kg train`) against PyKEEN, and link-prediction quality
next to the published figures.

    python3 bench/kg/run.py speed   [--data DIR] [--dataset wn18rr] [--models rotate,transe,distmult,complex]
                                    [--dim 100] [--batch 512] [--negatives 64] [--lr 0.001] [--threads 2]
                                    [--minutes 4] [--check-sample 200] [--check-every 1]
    python3 bench/kg/run.py quality [--data DIR] [--only NAME,...] [--other-minutes 3]
                                    [--rotate-minutes 35 | --rotate-epochs 400] [--rotate-decay-at 0.75] [--rotate-share 16]
    python3 bench/kg/run.py init    [--data DIR] [--model complex] [--ranges 0.101,0.202,0.404]

speed: time to the same validation quality. Each model is trained by both libraries with the same
dimension, batch size, negatives per positive (uniform), optimiser (Adam) and learning rate, thread
count (torch.set_num_threads), loss and regulariser (none), entity constraint and no subsampling
weights; PyKEEN's settings are read back from its objects and checked against Chorus's before a
row counts. What cannot be made equal (initialisation; PyKEEN corrupts a side per negative, Chorus
per positive) is why the figure is a time to quality, not a time per epoch: every --check-every
epochs both score the same --check-sample triples of valid.txt (evenly spaced), filtered, realistic
rank for ties, each with its own evaluator, outside the training time; each trains for --minutes
of training time (PyKEEN first; Chorus stops once it passes PyKEEN's best). The target is 0.95 x
the lower of the two best validation MRRs but never below LEARNED_MRR (0.01; an untrained model
scores ~0.0003), and the figure the training time each took to first reach it; when PyKEEN does
not reach it in its budget, the ratio is a lower bound (budget / Chorus's time). test.txt is not
touched.

quality: `chorus kg train` per dataset and model under its budget (QUALITY: a number of epochs,
RotatE's with a learning-rate decay where validation plateaus; --other-minutes / --rotate-minutes: wall time instead), scoring
a sample of valid.txt every few epochs and keeping the best (validation chooses the epoch), then
filtered MRR / Hits@k on test once, next to the RotatE paper's Table 5.

init: the default initialisation range of a model, chosen on valid.txt: each of its QUALITY rows
(both datasets, their settings and epoch budgets) trained once per range of --ranges, each keeping
its best check on the valid sample (--split none: test.txt is not touched); the range with the
highest mean best-valid MRR over the datasets is the choice (at an end of the grid: widen it).

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
# steps cut to fit a 2-core budget; the learning rate raised from 5e-5 accordingly), each with its
# budget: epochs, and how many positives share a draw of negatives. The budgets are costs, not choices
# of quality: about 4-5 minutes of training on 2 quiet cores for TransE, DistMult and ComplEx (earlier
# rows ran 3 wall-time minutes, which a loaded machine shortens). Every `check` epochs the run scores
# CHECK_SAMPLE triples of valid.txt and keeps the best-scoring model (`--keep-best`): validation chooses
# the epochs, and test.txt is scored once, on that model. RotatE's learning rate is divided by 10 once
# (as the authors' code does half-way): where validation says (`plateau`: after that many checks without
# a gain of PLATEAU_DELTA in valid MRR; the next such plateau ends the run, `epochs` only caps it), or,
# in rows recorded before the rule, after a fixed share `decay_at` of the epochs.
CHECK_SAMPLE = {"wn18rr": 1000, "fb15k-237": 2000}
# The smallest valid-MRR gain that counts as progress: about the check-to-check wobble of FB15k-237's
# flat stretches before and after its step (0.0003-0.005 on 2,000 triples, run of 0d62bfb).
PLATEAU_DELTA = 0.001

QUALITY = [
    ("wn18rr", "rotate", ["--dim", "200", "--batch", "512", "--negatives", "256", "--gamma", "6", "--temperature", "0.5", "--lr", "0.001"],
     dict(epochs=400, plateau=3, share=16, check=20)),
    ("fb15k-237", "rotate", ["--dim", "500", "--batch", "1024", "--negatives", "256", "--gamma", "9", "--temperature", "1.0", "--lr", "0.001",
                             "--filter-negatives"],
     dict(epochs=300, plateau=3, share=16, check=10)),
    ("wn18rr", "transe", ["--dim", "100", "--batch", "512", "--negatives", "64", "--loss", "margin", "--margin", "1", "--lr", "0.001"], dict(epochs=1000, check=25)),
    ("wn18rr", "distmult", ["--dim", "200", "--batch", "512", "--negatives", "64", "--regularizer", "n3", "--reg-weight", "5e-6", "--lr", "0.002"],
     dict(epochs=150, check=5)),
    ("wn18rr", "complex", ["--dim", "100", "--batch", "512", "--negatives", "64", "--regularizer", "n3", "--reg-weight", "5e-6", "--lr", "0.002"],
     dict(epochs=150, check=5)),
    ("fb15k-237", "transe", ["--dim", "100", "--batch", "1024", "--negatives", "64", "--loss", "margin", "--margin", "1", "--lr", "0.001"],
     dict(epochs=400, check=10)),
    ("fb15k-237", "distmult", ["--dim", "200", "--batch", "1024", "--negatives", "64", "--regularizer", "n3", "--reg-weight", "1e-5", "--lr", "0.001"],
     dict(epochs=100, check=4)),
    ("fb15k-237", "complex", ["--dim", "100", "--batch", "1024", "--negatives", "64", "--regularizer", "n3", "--reg-weight", "1e-5", "--lr", "0.001"],
     dict(epochs=100, check=4)),
]


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", nargs="?", choices=["speed", "quality", "init"], help="required unless --render")
    ap.add_argument("--data", default=common.DEFAULT_DATA, help="folder holding wn18rr/ and fb15k-237/ (default %(default)s)")
    ap.add_argument("--dataset", default="wn18rr", help="speed: the dataset (default %(default)s)")
    ap.add_argument("--models", default="rotate,transe,distmult,complex", help="speed: models to compare")
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--negatives", type=int, default=64)
    ap.add_argument("--minutes", type=float, default=4.0, help="speed: training-time budget per library and model")
    ap.add_argument("--check-sample", type=int, default=200, help="speed: validation triples per check (evenly spaced; PyKEEN takes ~30 s to score 200 with RotatE)")
    ap.add_argument("--check-every", type=int, default=1, help="speed: epochs between checks")
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    # The quality budgets default to each row's recorded one (QUALITY); these override them.
    ap.add_argument("--rotate-minutes", type=float, help="quality: wall-time budget per RotatE run")
    ap.add_argument("--rotate-epochs", type=int, help="quality: the most epochs per RotatE run")
    ap.add_argument("--rotate-decay-at", type=float, help="quality: a fixed step instead of the plateau rule: the share "
                    "of the epochs after which the learning rate is divided by 10 (0: no decay)")
    ap.add_argument("--rotate-share", type=int, help="quality: RotatE runs share each draw of negatives among "
                    "this many positives (--share-negatives; 1: each its own)")
    ap.add_argument("--other-minutes", type=float, help="quality: budget per TransE/DistMult/ComplEx run")
    ap.add_argument("--only", default="", help="quality: comma-separated dataset/model pairs to run (e.g. wn18rr/rotate)")
    ap.add_argument("--model", default="complex", help="init: the model whose default init range is chosen")
    ap.add_argument("--ranges", default="0.101,0.202,0.404", help="init: the ranges tried (comma-separated)")
    ap.add_argument("--no-checks", action="store_true", help="quality: no validation checks (the last epoch's model is scored)")
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


def known_triples(data_dir, name):
    """The triples of one split whose entities and relation appear in train.txt, in file order (the
    ones `chorus kg train` ranks), and how many the split holds in all."""
    def read(split):
        with open(os.path.join(data_dir, split), newline="") as f:
            return [tuple(line.rstrip("\r\n").split("\t")) for line in f if line.strip()]
    train = read("train.txt")
    entities = {h for h, _, _ in train} | {t for _, _, t in train}
    relations = {r for _, r, _ in train}
    split = read(name)
    return [t for t in split if t[0] in entities and t[2] in entities and t[1] in relations], len(split)


def check_sample(valid, m):
    return valid if m <= 0 or m >= len(valid) else [valid[i * len(valid) // m] for i in range(m)]


def pykeen_run(data_dir, model_name, args, stop_at=None):
    """Trains one PyKEEN model with Chorus's settings for --minutes of training time, scoring the
    check triples every --check-every epochs; returns its settings as read back, and the checks."""
    import torch
    torch.set_num_threads(args.threads)
    from pykeen.evaluation import RankBasedEvaluator
    from pykeen.losses import MarginRankingLoss, NSSALoss, SoftplusLoss
    from pykeen.models import ComplEx, DistMult, RotatE, TransE
    from pykeen.training import SLCWATrainingLoop
    from pykeen.training.callbacks import TrainingCallback
    from pykeen.triples import TriplesFactory

    train = TriplesFactory.from_path(os.path.join(data_dir, "train.txt"))
    mapped = lambda name: TriplesFactory.from_path(os.path.join(data_dir, name), entity_to_id=train.entity_to_id,
                                                   relation_to_id=train.relation_to_id).mapped_triples
    valid, test = mapped("valid.txt"), mapped("test.txt")
    sample = check_sample(known_triples(data_dir, "valid.txt")[0], args.check_sample)
    checks_t = torch.tensor([[train.entity_to_id[h], train.relation_to_id[r], train.entity_to_id[t]] for h, r, t in sample], dtype=torch.long)
    common_kw = dict(triples_factory=train, embedding_dim=args.dim, random_seed=args.seed)
    if model_name == "rotate":
        model = RotatE(loss=NSSALoss(margin=6.0, adversarial_temperature=0.5), **common_kw)
    elif model_name == "transe":
        # Bordes et al.'s unit entities: PyKEEN's default constrainer, Chorus's default for TransE.
        model = TransE(scoring_fct_norm=1, loss=MarginRankingLoss(margin=1.0), **common_kw)
    elif model_name == "distmult":
        # PyKEEN's defaults add an L2 regulariser and unit entities; Chorus runs with neither here.
        model = DistMult(loss=SoftplusLoss(), regularizer=None, entity_constrainer=None, **common_kw)
    else:
        model = ComplEx(loss=SoftplusLoss(), regularizer=None, **common_kw)
    optimizer = torch.optim.Adam(model.get_grad_params(), lr=args.lr)
    loop = SLCWATrainingLoop(model=model, triples_factory=train, optimizer=optimizer, negative_sampler="basic",
                             negative_sampler_kwargs=dict(num_negs_per_pos=args.negatives, corruption_scheme=("head", "tail")))
    evaluator = RankBasedEvaluator(filtered=True)

    class Checks(TrainingCallback):
        def __init__(self):
            super().__init__()
            self.start = time.perf_counter()
            self.excluded = 0.0
            self.rows, self.epoch_seconds = [], []
            self.last = self.start

        def post_epoch(self, epoch, epoch_loss, **kwargs):
            now = time.perf_counter()
            self.epoch_seconds.append(now - self.last)
            trained = now - self.start - self.excluded
            over = trained >= args.minutes * 60
            if epoch % args.check_every == 0 or over:
                res = evaluator.evaluate(model, checks_t, additional_filter_triples=[train.mapped_triples, valid, test],
                                         batch_size=256, use_tqdm=False)
                mrr = float(res.get_metric("both.realistic.inverse_harmonic_mean_rank"))
                h10 = float(res.get_metric("both.realistic.hits_at_10"))
                self.rows.append({"epoch": epoch, "train_seconds": trained, "mrr": mrr, "hits10": h10})
                print(f"  pykeen epoch {epoch}: loss {epoch_loss:.5f}, valid MRR {mrr:.4f} ({trained:.1f} s trained)", flush=True)
                if stop_at is not None and mrr >= stop_at:
                    over = True
            self.excluded += time.perf_counter() - now
            self.last = time.perf_counter()
            if over:
                self.training_loop._should_stop = True

    checks = Checks()
    loop.train(triples_factory=train, num_epochs=100000, batch_size=args.batch, use_tqdm=False, callbacks=[checks])
    import importlib.metadata
    from pykeen.sampling import negative_sampler_resolver
    sampler = negative_sampler_resolver.make(loop.negative_sampler, pos_kwargs=loop.negative_sampler_kwargs,
                                             mapped_triples=train.mapped_triples, num_entities=train.num_entities,
                                             num_relations=train.num_relations)
    ent = model.entity_representations[0]
    rel = model.relation_representations[0]
    settings = {
        "model": type(model).__name__, "loss": " ".join(repr(model.loss).split()),
        # Real floats per entity (a complex weight counts two).
        "entity_floats": ent._embeddings.weight.numel() // ent._embeddings.weight.shape[0] * (2 if ent._embeddings.weight.is_complex() else 1),
        "entity_regularizer": repr(getattr(ent, "regularizer", None)), "relation_regularizer": repr(getattr(rel, "regularizer", None)),
        "entity_constrainer": (lambda c: getattr(c, "__name__", repr(c)))(getattr(ent, "constrainer", None)),
        "optimizer": type(loop.optimizer).__name__, "lr": loop.optimizer.param_groups[0]["lr"],
        # The sampler as the training data loader makes it (pykeen.triples.instances), from the loop's own hint and kwargs.
        "negatives": sampler.num_negs_per_pos, "sampler": type(sampler).__name__, "corruption": list(sampler.corruption_scheme),
        "torch_threads": torch.get_num_threads(),
    }
    return {"version": importlib.metadata.version("pykeen"), "torch": torch.__version__, "settings": settings,
            "epoch_seconds": checks.epoch_seconds, "checks": checks.rows}


def check_pykeen_settings(model, s, args):
    """What a row's PyKEEN model must have been (read back from its objects): Chorus's settings."""
    problems = []
    dims = {"rotate": 2 * args.dim, "complex": 2 * args.dim}.get(model, args.dim)   # complex models: real and imaginary floats
    if s["entity_floats"] != dims:
        problems.append(f"{s['entity_floats']} floats per entity, expected {dims}")
    if model in ("distmult", "complex") and (s["entity_regularizer"] != "None" or s["relation_regularizer"] != "None"):
        problems.append(f"regularizers {s['entity_regularizer']} / {s['relation_regularizer']}, expected none")
    if model == "distmult" and s["entity_constrainer"] != "None":
        problems.append(f"entity constrainer {s['entity_constrainer']}, expected none")
    if model == "transe" and "normalize" not in s["entity_constrainer"]:
        problems.append(f"entity constrainer {s['entity_constrainer']}, expected unit entities")
    if s["optimizer"] != "Adam" or abs(s["lr"] - args.lr) > 1e-12:
        problems.append(f"optimizer {s['optimizer']} lr {s['lr']}")
    if s["negatives"] != args.negatives:
        problems.append(f"{s['negatives']} negatives per positive")
    if s["torch_threads"] != args.threads:
        problems.append(f"{s['torch_threads']} torch threads")
    return problems


CHORUS_LOSS = {"rotate": ["--loss", "adversarial", "--temperature", "0.5", "--gamma", "6"],
               "transe": ["--loss", "margin", "--margin", "1", "--norm", "1"],
               "distmult": ["--loss", "logistic", "--regularizer", "none"],
               "complex": ["--loss", "logistic", "--regularizer", "none"]}
PYKEEN_LOSS = {"rotate": "NSSALoss(margin=6, adversarial_temperature=0.5)", "transe": "MarginRankingLoss(margin=1), L1, unit entities",
               "distmult": "SoftplusLoss, no regularizer, no entity constraint", "complex": "SoftplusLoss, no regularizer"}


# The lowest validation MRR that counts as learned (wn18rr: 40x an untrained model's ~0.0003): a
# target below it would time how fast a library stays at chance.
LEARNED_MRR = 0.01


def time_to(checks, target):
    """Training seconds (and epoch) at the first check reaching `target`, or None."""
    for c in checks:
        if c["mrr"] >= target:
            return c["train_seconds"], c["epoch"]
    return None


def speed(args):
    data_dir = os.path.join(args.data, args.dataset)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            load0 = os.getloadavg()
            pk = pykeen_run(data_dir, model, args)
            problems = check_pykeen_settings(model, pk["settings"], args)
            if problems:
                sys.exit(f"{model}: PyKEEN's settings are not Chorus's: " + "; ".join(problems))
            pk_best = max((c["mrr"] for c in pk["checks"]), default=0.0)
            learned = pk_best >= LEARNED_MRR
            # TransE keeps its default unit entities (as PyKEEN's); no subsampling weights (PyKEEN has none).
            extra = ["--dim", str(args.dim), "--batch", str(args.batch), "--negatives", str(args.negatives),
                     "--lr", str(args.lr), "--sampling", "uniform", "--optimizer", "adam", "--no-subsampling",
                     "--split", "none", "--check-every", str(args.check_every), "--check-sample", str(args.check_sample)]
            extra += CHORUS_LOSS[model]
            # Chorus stops once past PyKEEN's best, or, when PyKEEN did not learn, once past the floor.
            extra += ["--stop-at-mrr", repr(max(pk_best, LEARNED_MRR))]
            ch = run_chorus(data_dir, model, extra, 100000, args.threads, args.seed, os.path.join(tmp, f"{model}.json"), minutes=args.minutes)
            load1 = os.getloadavg()
            ch_checks = [{"epoch": c["epoch"], "train_seconds": c["train_seconds"], "mrr": c["metrics"]["both"]["mrr"],
                          "hits10": c["metrics"]["both"]["hits10"]} for c in ch["checks"]]
            ch_best = max((c["mrr"] for c in ch_checks), default=0.0)
            # A time to quality needs a quality: never below the floor. A library that does not reach
            # the target within its budget gives the other's ratio a lower bound (budget / its time).
            target = max(LEARNED_MRR, 0.95 * min(ch_best, pk_best))
            c_t, p_t = time_to(ch_checks, target), time_to(pk["checks"], target)
            budget_s = args.minutes * 60
            row = {"model": model, "chorus": dict(ch, checks=ch_checks), "pykeen": pk, "target_mrr": target,
                   "chorus_best": ch_best, "pykeen_best": pk_best, "chorus_seconds_to_target": c_t, "pykeen_seconds_to_target": p_t,
                   "speedup": (p_t[0] / c_t[0]) if c_t and p_t and c_t[0] > 0 else None,
                   # PyKEEN never reached the target in its budget: at least budget / Chorus's time.
                   "speedup_at_least": (budget_s / c_t[0]) if c_t and not p_t and c_t[0] > 0 else None,
                   "chorus_epoch_seconds": statistics.median(ch["epoch_seconds"][1:] or ch["epoch_seconds"]),
                   "pykeen_epoch_seconds": statistics.median(pk["epoch_seconds"][1:] or pk["epoch_seconds"]),
                   "loadavg": [load0[0], load1[0]], "driver": common.command_line(),
                   "date": common.machine_facts()["date"], "provenance": PROV.finish().as_dict()}
            rows.append(row)
            print(f"{model}: target valid MRR {target:.4f}: Chorus {c_t}, PyKEEN {p_t} -> {row['speedup']}", flush=True)
            if not args.no_write:   # record each model as it finishes
                save(args.mode, speed_section(args, rows))
    return speed_section(args, rows)


def speed_section(args, rows):
    return {"command": common.command_line(), "machine": machine(), "dataset": args.dataset,
            "settings": {"dim": args.dim, "batch": args.batch, "negatives": args.negatives, "minutes": args.minutes,
                         "check_sample": args.check_sample, "check_every": args.check_every,
                         "lr": args.lr, "threads": args.threads, "seed": args.seed}, "rows": rows}


def unseen_test_triples(data_dir):
    """Test triples naming an entity or relation absent from train.txt (excluded from the metrics), and all."""
    known, total = known_triples(data_dir, "test.txt")
    return total - len(known), total


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
                    budget = dict(minutes=args.rotate_minutes, share=budget.get("share", 1), check=budget.get("check"))
                if args.rotate_epochs is not None:
                    budget = dict(epochs=args.rotate_epochs, plateau=budget.get("plateau"), share=budget.get("share", 1),
                                  check=budget.get("check"))
                if args.rotate_decay_at is not None:   # a fixed step instead of the plateau rule
                    budget.pop("plateau", None)
                    budget["decay_at"] = args.rotate_decay_at
                if args.rotate_share is not None:
                    budget["share"] = args.rotate_share
            elif args.other_minutes is not None:
                budget = dict(minutes=args.other_minutes, check=budget.get("check"))
            minutes, epochs = budget.get("minutes"), budget.get("epochs", 100000)
            if budget.get("share", 1) > 1:
                extra = extra + ["--share-negatives", str(budget["share"])]
            if "epochs" in budget:
                decay = int(round(epochs * budget.get("decay_at", 0)))
                if 0 < decay < epochs:
                    extra = extra + ["--lr-decay-epochs", str(decay), "--lr-decay-factor", "0.1"]
            if budget.get("check") and not args.no_checks:
                # Validation picks the epochs: the best check's model is the one scored on test.
                extra = extra + ["--check-every", str(budget["check"]), "--check-sample", str(CHECK_SAMPLE.get(dataset, 1000)), "--keep-best"]
                if budget.get("plateau"):
                    extra = extra + ["--plateau-checks", str(budget["plateau"]), "--plateau-delta", f"{PLATEAU_DELTA:g}",
                                     "--plateau-decays", "1", "--lr-decay-factor", "0.1"]
            rep = run_chorus(os.path.join(args.data, dataset), model, extra, epochs, args.threads, args.seed,
                             os.path.join(tmp, f"{dataset}-{model}.json"), minutes=minutes)
            unseen, total = unseen_test_triples(os.path.join(args.data, dataset))
            rep.update(dataset=dataset, minutes=minutes, loadavg=os.getloadavg()[0], test_unseen=unseen, test_triples=total,
                       provenance=PROV.finish().as_dict())
            rows.append(rep)
            if not args.no_write:   # record each run as it finishes: a long session may be cut short
                save(args.mode, {"command": common.command_line(), "machine": machine(), "rows": rows})
    return {"command": common.command_line(), "machine": machine(), "rows": rows}


def init_range(args):
    """Each QUALITY row of --model trained once per --ranges value, scored on its valid sample only."""
    ranges = [float(r) for r in args.ranges.split(",") if r]
    if not ranges or any(not r > 0 for r in ranges):
        sys.exit("--ranges takes positive numbers separated by commas")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dataset, model, extra, recorded in QUALITY:
            if model != args.model:
                continue
            for r in ranges:
                checks = ["--check-every", str(recorded["check"]), "--check-sample", str(CHECK_SAMPLE.get(dataset, 1000)), "--keep-best",
                          "--split", "none", "--init-range", f"{r:g}"]
                rep = run_chorus(os.path.join(args.data, dataset), model, extra + checks, recorded["epochs"], args.threads, args.seed,
                                 os.path.join(tmp, f"{dataset}-{model}-{r:g}.json"))
                best = max(rep["checks"], key=lambda c: c["metrics"]["both"]["mrr"])
                rows.append(dict(dataset=dataset, model=model, init_range=r, epochs=recorded["epochs"], chosen_epoch=rep.get("chosen_epoch"),
                                 valid_mrr=best["metrics"]["both"]["mrr"], valid_h10=best["metrics"]["both"]["hits10"],
                                 check_triples=rep["check_triples"], train_seconds=rep["train_seconds"], command=rep["command"],
                                 loadavg=os.getloadavg()[0], provenance=PROV.finish().as_dict()))
                if not args.no_write:   # record each run as it finishes: a long session may be cut short
                    save(args.mode, init_section(args.model, rows))
    return init_section(args.model, rows)


def init_section(model, rows):
    """The init section from its runs: the ranges tried, each one's mean best-valid MRR over the
    datasets (ranges run on every dataset only), and the choice."""
    ranges = sorted({r["init_range"] for r in rows})
    datasets = sorted({r["dataset"] for r in rows})
    mean = {r: statistics.mean(x["valid_mrr"] for x in rows if x["init_range"] == r) for r in ranges
            if all(any(x["init_range"] == r and x["dataset"] == d for x in rows) for d in datasets)}
    chosen = max(mean, key=mean.get) if mean else None
    order = {d: i for i, (d, m, _, _) in enumerate(QUALITY) if m == model}
    rows = sorted(rows, key=lambda x: (order.get(x["dataset"], 99), x["init_range"]))
    return {"command": common.command_line(), "machine": machine(), "model": model, "ranges": ranges,
            "mean_valid_mrr": {f"{r:g}": v for r, v in mean.items()}, "chosen": chosen, "rows": rows}


def budget(row):
    """A run's budget: its wall-time limit, or its epochs and learning-rate schedule (fixed or on a plateau)."""
    shared = f"; negatives shared by {row['negative_sharing']}" if row.get("negative_sharing", 1) > 1 else ""
    if row.get("filter_negatives") or "--filter-negatives" in row.get("command", ""):
        shared += "; known facts left out of the negatives"
    if row.get("minutes"):
        return f"{row['minutes']:g} min{shared}"
    decay = row.get("lr_decay_epochs") or []
    plateau = row.get("plateau")
    if plateau:
        steps = f" (after {', '.join(map(str, plateau['decay_epochs']))})" if plateau["decay_epochs"] else ""
        return (f"up to {row['epochs']} epochs; lr /10 after {plateau['checks']} checks without a valid-MRR gain of "
                f"{plateau['delta']:g}{steps}, the next such plateau ends the run{shared}")
    return f"{row['epochs']} epochs" + (f", lr /10 after {', '.join(map(str, decay))}" if decay else "") + shared


def render(results):
    out = ["# Knowledge-graph embeddings: Chorus vs PyKEEN, and quality against the published figures",
           "", "Recorded by `bench/kg/run.py`; do not edit by hand (rerun it).", ""]
    s = results.get("speed")
    if s and "minutes" not in s["settings"]:
        out += ["## Epoch time against PyKEEN", "", "An earlier form of this table (per-epoch time at unequal settings) was withdrawn; "
                "rerun `python3 bench/kg/run.py speed`.", ""]
    elif s:
        st, m = s["settings"], s["machine"]
        out += ["## Time to the same validation MRR against PyKEEN (same run)", "",
                f"{s['dataset']}, dimension {st['dim']}, batch {st['batch']}, {st['negatives']} uniform negatives per positive, "
                f"Adam lr {st['lr']}, no regulariser, no subsampling weights, {st['threads']} threads on both sides "
                f"(`torch.set_num_threads`); PyKEEN's settings read back from its objects and checked against these. Each library "
                f"trains for up to {st['minutes']:g} minutes of training time (PyKEEN first; Chorus stops once it passes PyKEEN's best), "
                f"scoring every {st['check_every']} epoch(s) the same {st['check_sample']} evenly spaced triples of valid.txt "
                "(filtered against train + valid + test, realistic rank for ties, each library's own evaluator; not counted as training time). "
                f"Target: 0.95 x the lower of the two best validation MRRs, and never below {LEARNED_MRR} (an untrained model scores ~0.0003: "
                "a lower target would time how long a library stays at chance); the figure is the training time to the first check at or "
                "above it, and where PyKEEN does not reach it within its budget, the ratio is at least the budget over Chorus's time. "
                "Initialisation and the side corrupted per negative cannot be made equal, hence a time to quality and not a time per epoch; "
                "test.txt is not used.", "",
                "| model | loss | target valid MRR | Chorus: time (epoch) | PyKEEN: time (epoch) | PyKEEN / Chorus | best valid MRR Chorus / PyKEEN "
                "| s/epoch Chorus / PyKEEN | load avg before/after |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        fmt = lambda t: f"{t[0]:.1f} s ({t[1]})" if t else "not reached"
        for r in s["rows"]:
            ratio = (f"**{r['speedup']:.1f}x**" if r.get("speedup") else
                     f"**> {r['speedup_at_least']:.0f}x** (PyKEEN short of it in {st['minutes']:g} min)" if r.get("speedup_at_least") else "n/a")
            out.append(f"| {r['model']} | {' '.join(CHORUS_LOSS[r['model']])} / {PYKEEN_LOSS[r['model']]} | {r['target_mrr']:.4f} | "
                       f"{fmt(r['chorus_seconds_to_target'])} | {fmt(r['pykeen_seconds_to_target'])} | {ratio} | "
                       f"{r['chorus_best']:.4f} / {r['pykeen_best']:.4f} | {r['chorus_epoch_seconds']:.2f} / {r['pykeen_epoch_seconds']:.2f} | "
                       f"{r['loadavg'][0]:.2f} / {r['loadavg'][1]:.2f} |")
        curves = []
        for r in s["rows"]:
            for who in ("chorus", "pykeen"):
                pts = ", ".join(f"{c['train_seconds']:.0f} s {c['mrr']:.3f}" for c in r[who]["checks"])
                curves.append(f"- {r['model']}, {'Chorus' if who == 'chorus' else 'PyKEEN'}: {pts}")
        out += ["", "Validation MRR by training time:", ""] + curves
        out += ["", "PyKEEN settings as read back: " + "; ".join(
            f"{r['model']}: " + ", ".join(f"{k} {v}" for k, v in r["pykeen"]["settings"].items()) for r in s["rows"]) + ".", ""]
        drivers = sorted({r.get("driver", s["command"]) for r in s["rows"]})
        out += ["Commands (the driver, then the Chorus side of each row):", "", "```"]
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
                "to hold against the published one. Load average: the 1-minute figure when the run ended (the machine is shared). "
                "Validation chooses: every few epochs a run scores a sample of valid.txt (" + ", ".join(f"{d} {n}" for d, n in CHECK_SAMPLE.items())
                + " triples, evenly spaced) and keeps its best model, which alone is scored on test; a row \"not chosen\" was recorded "
                "before the checks existed and scores its last epoch. A RotatE budget \"up to N epochs\" lets validation also "
                "choose when the learning rate drops and when the run ends (a plateau of the checks); N only caps it.", "",
                "| dataset | model | budget | epochs run | chosen on valid: epoch (valid MRR) | train time | MRR (known entities) | MRR, all test | published MRR | MR | H@1 | H@3 | H@10 | H@10, all test | published H@10 | load avg |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        counts = {r["dataset"]: (r["test_unseen"], r["test_triples"]) for r in q["rows"] if r.get("test_triples")}
        for r in q["rows"]:
            pub = PUBLISHED[(r["dataset"], r["model"])]
            mm = r["metrics"]["both"]
            unseen, total = counts.get(r["dataset"], (0, 0))  # the same files for every row of a dataset
            share = 1 - unseen / total if total else float("nan")
            chosen = r.get("chosen_epoch")
            best = max((c["metrics"]["both"]["mrr"] for c in r.get("checks", [])), default=None)
            picked = f"{chosen} ({best:.4f})" if chosen and best is not None else "not chosen (last epoch)"
            out.append(f"| {r['dataset']} | {r['model']} | {budget(r)} | {r['epochs_run']} | {picked} | {r['train_seconds'] / 60:.1f} min | "
                       f"{mm['mrr']:.4f} | **{mm['mrr'] * share:.4f}** | {pub['mrr']} | {mm['mr']:.0f} | {mm['hits1']:.4f} | {mm['hits3']:.4f} | "
                       f"{mm['hits10']:.4f} | {mm['hits10'] * share:.4f} | {pub['h10']} | {r.get('loadavg', float('nan')):.1f} |")
        out += ["", row_provenance(q["rows"])]
        out += ["", "Commands (the driver, then each run's exact settings):", "", "```"] + q.get("commands", [q["command"]]) + [r["command"] for r in q["rows"]] + ["```", "",
                f"Machine: {m['date']}, nproc {m['nproc']}, {m['cpu_model']}, {m['swift']}, revision {m['git_revision']}.", ""]
    i = results.get("init")
    if i:
        m = i["machine"]
        ends = i["chosen"] in (min(i["ranges"]), max(i["ranges"]))
        out += [f"## The default initialisation range of {i['model']}, chosen on valid", "",
                f"Each {i['model']} quality row above (its settings and epoch budget) trained once per range (embeddings drawn uniformly "
                "in ± the range), keeping its best check on the valid sample; test.txt is not touched. The default is the range with "
                "the highest mean best-valid MRR over the datasets"
                + (" (at an end of the grid: it should be widened)." if ends else " (inside the grid)."), "",
                "| dataset | init range | best valid MRR (epoch) | valid H@10 | train time | load avg |", "| --- | --- | --- | --- | --- | --- |"]
        for r in i["rows"]:
            out.append(f"| {r['dataset']} | {r['init_range']:g} | {r['valid_mrr']:.4f} ({r['chosen_epoch']}) | {r['valid_h10']:.4f} | "
                       f"{r['train_seconds'] / 60:.1f} min | {r['loadavg']:.1f} |")
        out += ["", "Mean best-valid MRR: " + ", ".join(f"{k} {v:.4f}" for k, v in i["mean_valid_mrr"].items())
                + (f"; chosen: **{i['chosen']:g}**." if i["chosen"] is not None else "; nothing chosen (a dataset is missing)."), "",
                row_provenance(i["rows"]), "", "Commands (the driver, then each run):", "", "```"] + i.get("commands", [i["command"]])
        out += [r["command"] for r in i["rows"]] + ["```", "",
                f"Machine: {m['date']}, nproc {m['nproc']}, {m['cpu_model']}, {m['swift']}, revision {m['git_revision']}.", ""]
    return "\n".join(out)


ARGS = None
PROV = None
MACHINE_AT_START = None


def machine():
    """The machine facts as they were when the run started: the run writes results.json after each
    row, so a later look at the tree would see it modified by the run itself."""
    return dict(MACHINE_AT_START, date=common.machine_facts()["date"]) if MACHINE_AT_START else common.machine_facts()


def row_provenance(rows):
    """One line naming the commit (and binary) each kept row was recorded from; rows from before
    provenance was kept, or not for the record, say so."""
    parts = []
    for r in rows:
        p = r.get("provenance")
        name = f"{r.get('dataset', '')}/{r['model']}".lstrip("/") + (f" {r['init_range']:g}" if "init_range" in r else "")
        if not p:
            parts.append(f"{name}: no provenance (recorded before runs kept it; not tied to a commit)")
        else:
            b = p["binaries"][0] if p.get("binaries") else None
            parts.append(f"{name}: commit `{p['commit'][:10]}`" + (f", `{b['path']}` sha256 `{b['sha256'][:12]}`" if b else "")
                         + (" — **NOT FOR THE RECORD** (" + "; ".join(p.get("problems", [])) + ")" if p.get("not_for_the_record") else ""))
    return "Rows recorded from: " + "; ".join(parts) + "."


def main():
    global ARGS, PROV, MACHINE_AT_START
    args = ARGS = parse_args()
    if args.render:
        return common.render_mode(args, HERE, render)
    if not os.path.exists(args.cli):
        sys.exit(f"{args.cli} not found: build it with `swift build -c release --product chorus-cli`")
    MACHINE_AT_START = common.machine_facts()
    PROV = common.Provenance([args.cli])
    if not args.no_write:
        PROV.check_record(args.not_for_the_record)
    section = speed(args) if args.mode == "speed" else quality(args) if args.mode == "quality" else init_range(args)
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
    if mode == "init" and results.get("init", {}).get("model") == section["model"]:
        # Ranges run earlier for the same model stay (a run with more --ranges widens the grid).
        fresh = {(r["dataset"], r["init_range"]) for r in section["rows"]}
        kept = [r for r in results["init"]["rows"] if (r["dataset"], r["init_range"]) not in fresh]
        commands = sorted(set(results["init"].get("commands", [results["init"]["command"]]) + [section["command"]]))
        section = dict(init_section(section["model"], kept + section["rows"]), commands=commands)
    results[mode] = section
    text = json.dumps(results, indent=2) + "\n"
    with open(path, "w") as f:
        f.write(text)
    with open(os.path.join(HERE, "results.md"), "w") as f:
        f.write(render(json.loads(text)))  # from what results.json holds: `--render` gives the same bytes
    print(f"wrote {os.path.relpath(os.path.join(HERE, 'results.md'), common.REPO)} and results.json")


if __name__ == "__main__":
    main()
