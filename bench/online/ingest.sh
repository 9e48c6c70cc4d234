#!/usr/bin/env bash
# Builds bench/online/ingest.c against the release library and runs it RUNS times (default 7) with
# the given flags, printing each run and the medians (the spread between runs on 2 cores is wide).
#   bench/online/ingest.sh [RUNS] [ingest.c flags ...]   e.g. bench/online/ingest.sh 7 --ingest-threads 1
# The ratings default to ../shared/data/ml-latest-small/ratings.csv (CHORUS_RATINGS overrides).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-7}; shift || true
ratings=${CHORUS_RATINGS:-../shared/data/ml-latest-small/ratings.csv}
make -s lib >/dev/null
mkdir -p build
cc -std=c99 -O2 -Wall -Werror -pedantic -Iinclude bench/online/ingest.c -o build/bench_ingest \
   -L.build/release -lchorus -Wl,-rpath,"$PWD/.build/release" -lm -lpthread
echo "\$ bench/online/ingest.sh $runs $*"
echo "commit $(git rev-parse --short=12 HEAD)$(git diff --quiet HEAD || echo ' (with uncommitted changes)'); load $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$runs"); do build/bench_ingest --no-refit "$@" "$ratings"; done | tee /dev/stderr | python3 -c '
import re, statistics, sys
rate, idle, under, after = [], [], [], []
for line in sys.stdin:
    m = re.search(r"= (\d+) events/s", line)
    if m: rate.append(int(m.group(1)))
    m = re.search(r"p50 (\d+) us, p99 (\d+) us", line)
    if m:
        (under if "during" in line else after if "after" in line else idle).append((int(m.group(1)), int(m.group(2))))
med = lambda xs: statistics.median(xs) if xs else float("nan")
print(f"medians over {len(rate)} runs: {med(rate):.0f} events/s (min {min(rate)}, max {max(rate)})")
for name, xs in (("idle", idle), ("during ingest", under), ("idle after", after)):
    if xs: print(f"  recommend {name}: p50 {med([a for a, _ in xs]):.0f} us, p99 {med([b for _, b in xs]):.0f} us (p99 {min(b for _, b in xs)}-{max(b for _, b in xs)})")
'
echo "load after $(cut -d' ' -f1-3 /proc/loadavg)"
