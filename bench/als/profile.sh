#!/usr/bin/env bash
# Where Chorus's ALS fit spends its time, and what the profile's suggested changes would buy:
#   1. perf profile of `chorus-bench als` (self time per symbol);
#   2. `chorus-bench kernels`: the hot kernels against alternatives;
# Findings are written up by hand in bench/als/PROFILE.md. Needs perf (linux-perf) for step 1.
#
#     bench/als/profile.sh [--data DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
data=../shared/data
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data=$2; shift 2 ;;
    *) echo "profile.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
swift build -c release -Xswiftc -static-stdlib --product chorus-bench >&2
bin=.build/release/chorus-bench
tmp=$(mktemp -d /tmp/chorus-profile-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
python3 - "$data/ml-latest-small/ratings.csv" "$tmp" <<'PY'
import sys
sys.path.insert(0, "bench")
import common
u, i, r, t = common.load_ratings(sys.argv[1])
h = common.temporal_holdout(u, t, 0.2)
with open(sys.argv[2] + "/train.csv", "w") as f:
    f.writelines(f"{a},{b},{c:g}\n" for a, b, c, x in zip(u.tolist(), i.tolist(), r.tolist(), h) if not x)
with open(sys.argv[2] + "/test.csv", "w") as f:
    f.writelines(f"{a},{b}\n" for a, b, x in zip(u.tolist(), i.tolist(), h) if x)
PY
args=(als --train "$tmp/train.csv" --test "$tmp/test.csv" --out-dir "$tmp" --threads 2)

echo "== 1. perf: self time of chorus-bench als --repeat 3 (top symbols) =="
if command -v perf >/dev/null; then
  perf record -q -o "$tmp/perf.data" -F 4000 -g "$bin" "${args[@]}" --repeat 3 >/dev/null 2>&1
  perf report -i "$tmp/perf.data" --no-children --sort symbol --stdio 2>/dev/null \
    | grep -E '^ +[0-9.]+%' | head -8 | sed -E 's/ +- +- +$//; s/ {2,}/ /g' || true
else
  echo "(perf not installed: apt-get install linux-perf)"
fi

echo
echo "== 2. chorus-bench kernels =="
"$bin" kernels

