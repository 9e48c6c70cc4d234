#!/usr/bin/env bash
# test_cli.sh CLI — the command line (Sources/chorus-cli) as users and scripts call it: every
# subcommand's --help lists every flag the Makefile, README, bench scripts and earlier releases use;
# usage errors exit 2 and name the flag; failures exit 1 naming the command; `--name=value`, values
# starting with a dash and repeated options parse as before; shell completion scripts; and real
# runs of demo, eval and kg train / eval on small data. Prints "N passed, M failed".
set -uo pipefail
if [ $# -ne 1 ] || [ ! -x "$1" ]; then
  echo "usage: $0 CLI" >&2
  exit 2
fi
cli=$1
here=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/chorus-cli-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "  FAILED: $*"; }

# run WANT_RC ARGS...: runs the CLI, keeps stdout/stderr in $tmp/out, $tmp/err; checks the exit code.
run() {
  local want=$1; shift
  "$cli" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ "$rc" -eq "$want" ]; then ok; else bad "chorus $* exited $rc, want $want: $(head -c 400 "$tmp/err")"; fi
}

# has FILE TEXT...: each TEXT occurs in FILE (fixed string).
has() {
  local file=$1; shift
  for t in "$@"; do
    if grep -qF -- "$t" "$tmp/$file"; then ok; else bad "$file of the last run lacks '$t'"; fi
  done
}

# flags FLAG...: each FLAG starts a line of the last run's help (the option itself, not a longer one).
flags() {
  for f in "$@"; do
    if grep -qE -- "^  $f( |$)" "$tmp/out"; then ok; else bad "--help of the last run does not list $f"; fi
  done
}

echo "help"
run 0 --help
has out "eval" "replay" "demo" "kg"
run 0 help kg train
has out "--data <dir>"
fit_flags=(--factors --iterations --regularization --alpha --threads --seed --half-life-days --validation --texts
           --encoder --facts --agents --bpr-epochs --log)
run 0 eval --help
flags "${fit_flags[@]}" --data --dataset --k --holdout --min-rating --export-split --json --diversity --cold-items
run 0 demo --help
flags "${fit_flags[@]}" --data --demo-data --users --k
run 0 replay --help
flags --data --dataset --train-fraction --k --min-rating --modes --refit-every --windows --limit --seed --threads --factors \
  --iterations --agents --bpr-epochs --json --export-candidates --quiet
run 0 demo -h
run 0 kg --help
has out "train" "eval"
run 0 kg train --help
flags --data --model --dim --epochs --batch --negatives --share-negatives --lr --lr-decay-epochs --lr-decay-factor \
  --gamma --init-range --loss --margin --temperature --sampling --optimizer --regularizer --reg-weight --norm \
  --no-subsampling --filter-negatives --threads --seed --split --max-minutes --save --json
run 0 kg eval --help
flags --data --load --split --threads --json

echo "usage errors: exit 2, the flag named"
run 2 demo --k 0
has err "--k" "1...1000"
run 2 demo --k=abc
has err "--k"
run 2 eval --holdout 1
has err "--holdout"
run 2 eval --texts maybe
has err "--texts" "on" "off"
run 2 eval --dataset ml-1m
has err "--dataset"
run 2 eval --cold-items --texts off
has err "--cold-items"
run 2 eval --diversity 0.1,2
has err "--diversity"
run 2 eval --no-such-flag
has err "--no-such-flag"
run 2 eval stray-word
has err "stray-word"
run 2 demo --users 1,x
has err "--users"
run 2 demo --factors
has err "--factors"
run 2 kg train
has err "--data"
run 2 kg train --data x --model nonsense
has err "--model" "nonsense"
run 2 kg train --data x --lr-decay-epochs 3,2
has err "--lr-decay-epochs" "ascending"
run 2 kg train --data x --loss hinge
has err "--loss"
run 2 kg eval --data x
has err "--load"
run 2 kg eval --data x --load y --split none
has err "--split"
run 2 frobnicate
run 2 replay --modes online,bandit
has err "--modes" "bandit" "frozen, online, refit, popularity, random, linucb, thompson, policy"
run 2 replay --train-fraction 1
has err "--train-fraction"
run 2 replay --refit-every 0
has err "--refit-every"
run 2 replay --limit 0
has err "--limit"
run 2 replay --modes frozen --export-candidates x.bin
has err "--export-candidates" "online"

echo "failures: exit 1, the command named"
run 1 kg train --data "$tmp/none" --gamma -1.5      # a value starting with a dash is a value
has err "chorus kg train: error:" "train.txt"
run 1 kg eval --data "$tmp/none" --load "$tmp/none.chorus"
has err "chorus kg eval: error:"
run 1 eval --data "$tmp/none"
has err "chorus eval: error:"
run 1 demo --data "$tmp/none" --demo-data "$tmp/none"
has err "chorus demo: error:"
run 1 replay --data "$tmp/none"
has err "chorus replay: error:" "no such directory"

echo "shell completion"
for shell in bash zsh fish; do
  run 0 --generate-completion-script "$shell"
  has out "chorus" "cold-items" "filter-negatives"
done
"$cli" --generate-completion-script bash >"$tmp/chorus.bash" 2>/dev/null
if bash -n "$tmp/chorus.bash"; then ok; else bad "the bash completion script does not parse"; fi
# The script completes the subcommands and a subcommand's flags.
# Captured first, then searched: `... | grep -q` under pipefail fails whenever grep exits before the
# writer is done (SIGPIPE), which made this check flaky.
completions=$(bash -c "source '$tmp/chorus.bash'; COMP_WORDS=(chorus ev); COMP_CWORD=1; COMP_LINE='chorus ev'; COMP_POINT=9; \
            _chorus; printf '%s\n' \"\${COMPREPLY[@]}\"" 2>/dev/null || true)
if grep -qx eval <<<"$completions"; then ok; else bad "bash completion of 'chorus ev'"; fi

echo "runs"
demo=$here/examples/data/demo
# The Makefile's demo flag set on the shipped catalogue; --name=value and a repeated option (last wins).
run 0 demo --data "$demo" --k=5 --k 3 --encoder hashing
has out "Data      demo" "Why #1" "blend" "Blend weights"
if grep -qE '^ +4\. ' "$tmp/out"; then bad "demo showed more than --k 3 items"; else ok; fi
# --agents without content: no search part (it needs the query agent), and no failure.
run 0 demo --data "$demo" --k 3 --encoder hashing --agents als,bpr
has out "A new user with no ratings" "Blend weights"
if grep -q "searches" "$tmp/out"; then bad "demo searched without the query agent"; else ok; fi
run 0 eval --data "$demo" --k 5 --holdout 0.25 --min-rating 3.5 --diversity 0.3 --cold-items --encoder hashing \
  --facts off --agents als,bpr,content --half-life-days 30 --validation 0.2 --factors 8 --iterations 3 --regularization 0.1 --alpha 2 \
  --threads 1 --seed 7 --bpr-epochs 5 --export-split "$tmp/split" --json "$tmp/eval.json"
has out "MMR 0.30" "content" "popularity half-life 30 days" "ALS factors 8, iterations 3, regularization 0.1000, alpha 2.00"
if [ -s "$tmp/split/train.csv" ] && [ -s "$tmp/split/test.csv" ]; then ok; else bad "--export-split wrote no split"; fi
if python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['k'] == 5 and len(d['rows']) > 3; \
assert d['agents'][:3] == ['popularity', 'als', 'bpr'] and len(d['blend_weights']) == len(d['agents']); \
assert [(r['kind'], r['mmr']) for r in d['rows'] if r['name'].startswith('blend MMR')] == [('mmr', 0.3)]" "$tmp/eval.json"; then ok
else bad "--json wrote no result rows"; fi
# --log: the engine's log lines on stderr (the library itself never prints), here BPR's validation checks.
run 0 eval --data "$demo" --k 5 --encoder hashing --facts off --agents bpr --factors 4 --iterations 2 --threads 1 --log debug
has err "[debug] bpr: epoch 5, validation NDCG@10" "[info] bpr: " "epochs chosen on validation"
run 2 eval --data "$demo" --log loud
has err "--log" "debug, info or warning"
mkdir -p "$tmp/kg"
for i in $(seq 0 39); do printf 'e%d\tnext\te%d\ne%d\tpair\te%d\n' $i $(((i + 1) % 40)) $i $(((i + 20) % 40)); done >"$tmp/kg/train.txt"
printf 'e0\tnext\te1\ne5\tpair\te25\n' >"$tmp/kg/valid.txt"
printf 'e3\tnext\te4\ne7\tpair\te27\nnew\tnext\te1\n' >"$tmp/kg/test.txt"
run 0 kg train --data "$tmp/kg" --model TransE --dim 8 --epochs 3 --batch 16 --negatives 4 --share-negatives 2 \
  --lr 0.01 --lr-decay-epochs 2 --lr-decay-factor 0.5 --gamma 4 --init-range 0.5 --loss margin --margin 2 \
  --sampling bernoulli --optimizer adagrad --regularizer l2 --reg-weight 1e-4 --norm 2 --no-subsampling \
  --filter-negatives --threads 1 --seed 3 --split valid --max-minutes 5 --save "$tmp/kg.chorus" --json "$tmp/kg.json"
has out "Model     transe, dim 8, 3 epochs" "epoch 3/3" "valid.txt" "Saved"
run 0 kg eval --data "$tmp/kg" --load "$tmp/kg.chorus" --split test --threads 1 --json "$tmp/kg-eval.json"
has out "Model     transe, dim 8" "test.txt"
if grep -q '"mrr"' "$tmp/kg-eval.json" && grep -q '"epochs_run": 3' "$tmp/kg.json"; then ok; else bad "kg --json files"; fi
# Validation checks: every 2 epochs and after the last, on 1 of valid.txt's 2 triples, outside the training time;
# --stop-at-mrr ends training at the first check that reaches it (a MRR of 0 always does).
run 0 kg train --data "$tmp/kg" --model DistMult --dim 8 --epochs 5 --batch 16 --negatives 4 --threads 1 --split none \
  --check-every 2 --check-sample 1 --json "$tmp/kg-checks.json"
has out "check after epoch 2: valid MRR" "check after epoch 4" "check after epoch 5" "1 triples"
if python3 -c "import json,sys; d=json.load(open(sys.argv[1])); c=d['checks']; assert [x['epoch'] for x in c] == [2, 4, 5]; \
assert d['check_triples'] == 1 and d['epochs_run'] == 5 and 0 < c[0]['metrics']['both']['mrr'] <= 1; \
assert c[0]['train_seconds'] <= c[1]['train_seconds'] <= d['train_seconds']" "$tmp/kg-checks.json"; then ok
else bad "kg train --check-every: checks in --json"; fi
run 0 kg train --data "$tmp/kg" --model DistMult --dim 8 --epochs 5 --batch 16 --negatives 4 --threads 1 --split none \
  --check-every 1 --stop-at-mrr 0.000001 --json "$tmp/kg-stop.json"
has out "reached after epoch 1"
if grep -q '"epochs_run": 1' "$tmp/kg-stop.json"; then ok; else bad "kg train --stop-at-mrr did not stop"; fi
run 0 kg train --data "$tmp/kg" --model DistMult --dim 8 --epochs 4 --batch 16 --negatives 4 --threads 1 --split valid \
  --check-every 1 --keep-best --json "$tmp/kg-best.json"
has out "Kept      the model of epoch"
if python3 -c "import json,sys; d=json.load(open(sys.argv[1])); c=d['checks']; best=max(c, key=lambda x: (x['metrics']['both']['mrr'], -x['epoch'])); \
assert d['chosen_epoch'] == best['epoch'] and d['metrics'] == best['metrics']" "$tmp/kg-best.json"; then ok
else bad "kg train --keep-best: the reported model is not the best check's"; fi
# A plateau no check can leave (a gain of a whole MRR point): the first check sets the best, the second
# decays the learning rate, the third ends training.
run 0 kg train --data "$tmp/kg" --model DistMult --dim 8 --epochs 9 --batch 16 --negatives 4 --threads 1 --split none \
  --check-every 1 --plateau-checks 1 --plateau-delta 1 --plateau-decays 1 --json "$tmp/kg-plateau.json"
has out "learning rate x0.1 after epoch 2" "on a plateau after epoch 3: training ends"
if python3 -c "import json,sys; d=json.load(open(sys.argv[1])); \
assert d['epochs_run'] == 3 and d['lr_decay_epochs'] == [2] and d['plateau']['decay_epochs'] == [2]" "$tmp/kg-plateau.json"; then ok
else bad "kg train --plateau-checks: decay and stop in --json"; fi
run 1 kg train --data "$tmp/kg" --keep-best
has err "--keep-best needs --check-every"
run 1 kg train --data "$tmp/kg" --plateau-checks 2
has err "--plateau-checks needs --check-every"
run 2 kg train --data "$tmp/kg" --check-every -1
run 2 kg train --data "$tmp/kg" --stop-at-mrr 2

echo "replay"
# A MovieLens-format fixture where the answer is clear: 60 users each rate a run of consecutive items
# (item j, then j+1, ...) of a 40-item ring, interleaved in time, all rated 5. Once a user's latest item
# is fed, its successor is the next target: session and item-kNN see it; a random slate of 3 rarely does.
mkdir -p "$tmp/ml"
python3 - "$tmp/ml" <<'PY'
import random, sys
rng = random.Random(5)
rows = []
for u in range(1, 61):
    start = rng.randrange(40)
    for j in range(12):
        rows.append((u, 1 + (start + j) % 40, 5.0, 1_000_000 + j * 1000 + rng.randrange(900)))
with open(sys.argv[1] + "/ratings.csv", "w") as f:
    f.write("userId,movieId,rating,timestamp\n")
    for r in rows:
        f.write("%d,%d,%.1f,%d\n" % r)
with open(sys.argv[1] + "/movies.csv", "w") as f:
    f.write("movieId,title,genres\n")
    for i in range(1, 41):
        f.write("%d,Movie %d (2000),Drama\n" % (i, i))
PY
small=(--factors 4 --iterations 3 --bpr-epochs 2 --threads 1)
run 0 replay --data "$tmp/ml" --k 3 --windows 4 --refit-every 0.5 --seed 3 "${small[@]}" --json "$tmp/replay.json" \
  --export-candidates "$tmp/cand.bin"
has out "frozen" "online" "refit" "popularity" "random" "linucb" "thompson" "policy" "Hit rate per window"
has err "online"   # progress on stderr
if python3 - "$tmp/replay.json" "$tmp/cand.bin" <<'PY'
import json, struct, sys
d = json.load(open(sys.argv[1]))
modes = {m["mode"]: m for m in d["modes"]}
assert list(modes) == ["frozen", "online", "refit", "popularity", "random", "linucb", "thompson", "policy"], list(modes)
assert d["k"] == 3 and d["seed"] == 3 and d["train_events"] == 360 and d["replayed_events"] == 360, d
for m in modes.values():
    assert len(m["windows"]) == 4 and sum(w["scored"] for w in m["windows"]) == m["scored"] == 360, m
    assert sum(w["hits"] for w in m["windows"]) == m["hits"]
assert modes["refit"]["refits"] == 1 and modes["refit"]["refit_seconds"] > 0 and modes["frozen"]["fed"] == 0
assert modes["online"]["fed"] == 360
# Fed modes fold users in (counted by the engine, part of serve and feed); the frozen mode never does.
assert modes["online"]["folds"] > 0 and modes["online"]["fold_seconds"] > 0, modes["online"]
assert modes["frozen"]["folds"] == 0 and modes["frozen"]["fold_seconds"] == 0 and modes["frozen"]["placements"] == 0
# The learning modes learn from the same stream: far above a random slate too.
for m in ("linucb", "thompson", "policy"):
    assert modes[m]["fed"] == 360 and modes[m]["hit_rate"] > 0.2, (m, modes[m]["hit_rate"])
# The clear answer: the online mode finds the successor far more often than a random slate.
assert modes["random"]["hit_rate"] < 0.2 < 0.5 < modes["online"]["hit_rate"], {k: m["hit_rate"] for k, m in modes.items()}
b = open(sys.argv[2], "rb").read()
assert b[:8] == b"CHRCAND1"
k, f = struct.unpack_from("<II", b, 8)
assert k == 3 and f == 2 * len(d["fit"]["agents"]) + 2
off, names = 16, []
for _ in range(f):
    (n,) = struct.unpack_from("<H", b, off); names.append(b[off + 2:off + 2 + n].decode()); off += 2 + n
assert names[-2:] == ["activity", "warmth"] and names[0] == "popularity.score", names
records = hits = 0
while off < len(b):
    pos, user, item, ts, target, hit, n = struct.unpack_from("<qqqqqBI", b, off); off += 45
    items = struct.unpack_from("<%dq" % n, b, off); off += 8 * n + 4 * n * f
    hits += hit; records += 1
    assert n >= k and (hit == 0 or target in items)
assert off == len(b) and records == modes["online"]["exported"] == 360 and hits == modes["online"]["hits"]
PY
then ok; else bad "replay --json / --export-candidates"; fi
# Two processes replay the same stream alike. New items (61-90 arrive only in the second half) are
# placed from their users: their users were once taken in a Dictionary's per-process order, which
# changed BPR's sampled users and so the slates from run to run (411-420 hits over 4 runs).
mkdir -p "$tmp/nd"
python3 - "$tmp/nd" <<'PY'
import random, sys
rng = random.Random(7)
rows = []
for u in range(1, 81):
    base, nb = rng.randrange(60), rng.randrange(30)
    for j in range(10):
        rows.append((u, 1 + (base + j) % 60, float(rng.choice([3, 4, 5])), 1_000_000 + j * 100 + rng.randrange(90)))
    for j in range(10):
        rows.append((u, 61 + (nb + j) % 30, float(rng.choice([3, 4, 5])), 1_100_000 + j * 100 + rng.randrange(90)))
with open(sys.argv[1] + "/ratings.csv", "w") as f:
    f.write("userId,movieId,rating,timestamp\n")
    for r in rows:
        f.write("%d,%d,%.1f,%d\n" % r)
with open(sys.argv[1] + "/movies.csv", "w") as f:
    f.write("movieId,title,genres\n")
    for i in range(1, 91):
        f.write("%d,Movie %d (2000),Drama\n" % (i, i))
PY
for r in 1 2 3; do
  run 0 replay --data "$tmp/nd" --modes online --k 5 --factors 8 --iterations 3 --threads 1 --seed 3 --quiet --json "$tmp/nd/r$r.json"
done
if python3 -c "
import json, sys
runs = [json.load(open(p))['modes'][0] for p in sys.argv[1:]]
key = lambda m: (m['hits'], m['new_item_hits'], m['placements'], [w['hits'] for w in m['windows']])
assert runs[0]['placements'] > 0 and runs[0]['new_item_scored'] > 0, runs[0]
assert all(key(m) == key(runs[0]) for m in runs), [key(m)[:3] for m in runs]" "$tmp/nd/r1.json" "$tmp/nd/r2.json" "$tmp/nd/r3.json"
then ok; else bad "replay: the same stream replays alike in separate processes"; fi
run 0 replay --data "$tmp/ml" --modes random,frozen --limit 50 --windows 100 --quiet "${small[@]}" --json "$tmp/replay2.json"
if [ ! -s "$tmp/err" ] && python3 -c "import json,sys; d=json.load(open(sys.argv[1])); \
assert [m['mode'] for m in d['modes']] == ['random', 'frozen'] and len(d['windows']) == 50 and d['limit'] == 50" "$tmp/replay2.json"
then ok; else bad "replay --quiet / --limit / --modes"; fi
run 1 replay --data "$tmp/ml" --k 41 "${small[@]}"
has err "chorus replay: error:" "--k 41"
run 1 replay --data "$tmp/ml" --train-fraction 0.001 "${small[@]}"
has err "chorus replay: error:" "too few"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
