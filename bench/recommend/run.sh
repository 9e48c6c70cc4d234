#!/usr/bin/env bash
# Recommend latency/throughput benchmark: builds libchorus.so (make lib), compiles the C driver,
# runs it and the Python-binding driver on MovieLens ml-latest-small, and writes
# bench/recommend/results.md. Run from anywhere:
#
#     bench/recommend/run.sh [--data DIR] [--passes N] [--no-build] [--no-write] [--not-for-the-record]
#
# DIR is the folder that holds ml-latest-small/ (default ../shared/data from the repository root).
# A tree with uncommitted changes is refused unless --not-for-the-record (the results then say so).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
data=../shared/data
passes=17   # 17 x 610 users = 10,370 timed calls: p99 is not the 6th-slowest call
build=1
write=1
record=1
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --passes) passes=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-write) write=0; shift ;;
    --not-for-the-record) record=0; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
ratings="$data/ml-latest-small/ratings.csv"
[ -f "$ratings" ] || { echo "run.sh: $ratings not found (pass --data DIR)" >&2; exit 1; }
cc=${CC:-cc}
python=${PYTHON:-python3}
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | head -3)
if [ "$write" = 1 ] && [ "$record" = 1 ] && [ -n "$dirty" ]; then
  echo "refusing to record: the tree has uncommitted changes ($(echo "$dirty" | head -1));" \
       "commit first, or pass --not-for-the-record to write results marked as such" >&2
  exit 2
fi

if [ "$build" = 1 ]; then
  make lib >&2
fi
mkdir -p build
$cc -std=c99 -O2 -Wall -Werror -pedantic -Iinclude bench/recommend/bench_recommend.c \
  -o build/bench_recommend -L.build/release -lchorus -Wl,-rpath,"$root/.build/release" -lm

load_before=$(cut -d' ' -f1 /proc/loadavg)
echo "== C ABI (build/bench_recommend) ==" >&2
c_out=$(./build/bench_recommend --passes "$passes" --markdown --movies "$data/ml-latest-small/movies.csv" "$ratings")
echo "$c_out"
echo >&2
echo "== Python binding (bench/recommend/bench_python.py) ==" >&2
py_out=$(CHORUS_LIBRARY="$root/.build/release/libchorus.so" PYTHONPATH="$root/bindings/python" \
  $python bench/recommend/bench_python.py --passes "$passes" "$ratings")
echo "$py_out"
load_after=$(cut -d' ' -f1 /proc/loadavg)

[ "$write" = 1 ] || exit 0
args="bench/recommend/run.sh"
[ "$data" != ../shared/data ] && args="$args --data $data"
[ "$passes" != 17 ] && args="$args --passes $passes"
[ "$record" = 0 ] && args="$args --not-for-the-record"
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$dirty" ] && rev="$rev (with uncommitted changes)"
banner="Recorded from commit \`$(git rev-parse HEAD 2>/dev/null | cut -c1-12)\`; load average $load_before before, $load_after after.
Ran \`.build/release/libchorus.so\` (sha256 \`$(sha256sum .build/release/libchorus.so | cut -c1-16)…\`, modified $(date -u -r .build/release/libchorus.so '+%Y-%m-%d %H:%M:%S UTC')) and \`build/bench_recommend\` (sha256 \`$(sha256sum build/bench_recommend | cut -c1-16)…\`)."
[ -n "$dirty" ] && banner="> **NOT FOR THE RECORD**: the tree had uncommitted changes.

$banner"
cat > bench/recommend/results.md <<MD
# Recommend latency and throughput (ml-latest-small)

Recorded by \`bench/recommend/run.sh\`; do not edit by hand (rerun it).

$banner

## Reproduce

\`\`\`
$args
\`\`\`

(from the repository root, after \`bench/setup.sh\`). It builds the library with \`make lib\` (release,
\`-static-stdlib\`), compiles \`bench/recommend/bench_recommend.c\` with \`$cc -std=c99 -O2\`, and runs
\`build/bench_recommend --passes $passes --movies $data/ml-latest-small/movies.csv $ratings\` and
\`bench/recommend/bench_python.py --passes $passes $ratings\` one after the other.

## Machine

- date: $(date -u '+%Y-%m-%d %H:%M UTC')
- nproc: $(nproc); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); kernel $(uname -r)
- $(swift --version 2>/dev/null | head -1); $(${cc} --version | head -1); Python $($python -c 'import platform; print(platform.python_version())')
- repository revision: $rev
- load average (1 min) before / after: $load_before / $load_after

## Settings

- data: \`$ratings\`, all ratings (weight = the rating, timestamps as given), one engine per driver.
- fit: \`chorus_engine_fit(engine, NULL)\` (Python: \`engine.fit()\`), every default: 64 factors, 15
  iterations, regularization 0.01, alpha 1, all CPUs ($(nproc) threads), 10% validation hold-out for the blend.
- queries: k = 10, seen items excluded, no allow/deny list; blend = the coordinator's weighted blend of
  every agent, "als" = \`params.agent = "als"\`. Users: every distinct user of the file.
- single-user latency: one call per user, one untimed warm-up pass over all users first, then $passes timed
  pass(es); each call timed alone with CLOCK_MONOTONIC; percentiles by nearest rank. Single calls run on the
  calling thread (the engine parallelises a call only from 64 users up).
- batch: all users in one \`chorus_engine_recommend\` call (the engine splits it over all CPUs), best of 5.
- noise: on the 2-core VM these were recorded on, back-to-back runs of this script moved the p50s by up to
  about 25% (the VM's speed drifts); compare figures within one run, and read single outliers in p99/max
  as interference.
- memory: \`getrusage(RUSAGE_SELF).ru_maxrss\` of the C driver (whole process: data arrays included) before
  and after fit; \`chorus_engine_get_stats\`: \`model_bytes\` (the fitted model's numeric buffers),
  jemalloc's \`stats.allocated\` / \`stats.resident\` for the library's own allocator (Swift arrays use the
  system malloc and are not in these two).

## C ABI (\`bench/recommend/bench_recommend.c\`)

$c_out

## Python binding (\`bench/recommend/bench_python.py\`)

$py_out
MD
echo "wrote bench/recommend/results.md" >&2
