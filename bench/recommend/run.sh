#!/usr/bin/env bash
# Recommend latency/throughput benchmark: builds libchorus.so (make lib), compiles the C driver,
# runs it and the Python-binding driver on MovieLens ml-latest-small, and writes
# bench/recommend/results.json (both drivers' --json output, the machine, the provenance) and
# bench/recommend/results.md rendered from it by bench/recommend/report.py. Run from anywhere:
#
#     bench/recommend/run.sh [--data DIR] [--passes N] [--users N] [--max-texts N] [--no-build] [--no-write]
#                            [--not-for-the-record] [--json-out FILE]
#
# DIR is the folder that holds ml-latest-small/ (default ../shared/data from the repository root).
# --users N / --max-texts N: the first N users measured / N movie texts given (a quick check, not a record).
# --no-write prints the report instead of writing it. `python3 bench/recommend/report.py --render`
# re-renders results.md from results.json without running anything.
# A tree with uncommitted changes is refused unless --not-for-the-record (the results then say so).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
data=../shared/data
passes=17   # 17 x 610 users = 10,370 timed calls: p99 is not the 6th-slowest call
build=1
write=1
record=1
users=0
max_texts=0
json_out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --passes) passes=$2; shift 2 ;;
    --users) users=$2; shift 2 ;;
    --max-texts) max_texts=$2; shift 2 ;;
    --json-out) json_out=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-write) write=0; shift ;;
    --not-for-the-record) record=0; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ "$write" = 1 ] && { [ "$users" != 0 ] || [ "$max_texts" != 0 ]; }; then
  echo "run.sh: --users / --max-texts make a quick check, not a record: pass --no-write" >&2
  exit 2
fi
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
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
small=()
[ "$users" != 0 ] && small+=(--users "$users")
echo "== C ABI (build/bench_recommend) ==" >&2
c_small=("${small[@]}")
[ "$max_texts" != 0 ] && c_small+=(--max-texts "$max_texts")
./build/bench_recommend --passes "$passes" --json --movies "$data/ml-latest-small/movies.csv" "${c_small[@]}" "$ratings" > "$tmp/c.json"
echo "== Python binding (bench/recommend/bench_python.py) ==" >&2
CHORUS_LIBRARY="$root/.build/release/libchorus.so" PYTHONPATH="$root/bindings/python" \
  $python bench/recommend/bench_python.py --passes "$passes" --json "${small[@]}" "$ratings" > "$tmp/py.json"
load_after=$(cut -d' ' -f1 /proc/loadavg)

args="bench/recommend/run.sh"
[ "$data" != ../shared/data ] && args="$args --data $data"
[ "$passes" != 17 ] && args="$args --passes $passes"
[ "$users" != 0 ] && args="$args --users $users"
[ "$max_texts" != 0 ] && args="$args --max-texts $max_texts"
[ "$record" = 0 ] && args="$args --not-for-the-record"
report=(--c "$tmp/c.json" --python "$tmp/py.json" --command "$args" --ratings "$ratings"
        --movies "$data/ml-latest-small/movies.csv" --passes "$passes" --users "$users" --max-texts "$max_texts"
        --cc "$cc" --cc-version "$($cc --version | head -1)" --load-before "$load_before" --load-after "$load_after")
[ -n "$json_out" ] && report+=(--json-out "$json_out")
[ "$write" = 1 ] || report+=(--no-write)
[ "$record" = 0 ] && report+=(--not-for-the-record)
$python bench/recommend/report.py record "${report[@]}"
