#!/usr/bin/env bash
# Runs libFuzzer harnesses of the instrumented chorus-fuzz binary one after another (Tests/fuzz/README.md).
#
#   Tests/fuzz/run.sh [--bin PATH] [--runs N] [--max-time SECONDS] [--out DIR] [HARNESS...]
#
# Each harness starts from the committed seeds (Tests/fuzz/corpus/<harness>) plus the corpus it grew
# before (OUT/corpus/<harness>, out of git), where libFuzzer adds what it finds. Logs go to
# OUT/logs/<harness>.log, crashing inputs to OUT/artifacts/. Prints one summary line per harness
# (executions, exec/s, corpus, cov/ft) and exits non-zero when any harness found a crash.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=.build/fuzz/release/chorus-fuzz
RUNS=1000000
MAX_TIME=0
OUT=build/fuzz
HARNESSES=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --max-time) MAX_TIME=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) HARNESSES+=("$1"); shift ;;
  esac
done
# The harnesses and their -max_len (Sources/chorus-fuzz/Harnesses.swift, Harness.maxLength).
declare -A MAX_LEN=([engine-snapshot]=65536 [graph-snapshot]=16384 [safetensors]=16384 [config]=4096
                    [tokenizer]=4096 [movielens]=4096 [triples]=4096 [api]=4096)
ALL=(engine-snapshot graph-snapshot safetensors config tokenizer movielens triples api)
[ ${#HARNESSES[@]} -gt 0 ] || HARNESSES=("${ALL[@]}")

mkdir -p "$OUT/logs" "$OUT/artifacts"
failed=0
for h in "${HARNESSES[@]}"; do
  [ -n "${MAX_LEN[$h]:-}" ] || { echo "unknown harness $h (one of: ${ALL[*]})" >&2; exit 2; }
  mkdir -p "$OUT/corpus/$h"
  log="$OUT/logs/$h.log"
  # The binary defines a custom mutator (for the snapshot harnesses), which turns libFuzzer's length
  # control off by default; the other harnesses, whose mutator is libFuzzer's own, keep it.
  case $h in *-snapshot) extra=() ;; *) extra=(-len_control=100) ;; esac
  start=$(date +%s)
  set +e
  # detect_leaks: the leak check runs at exit; malloc_limit_mb bounds any one allocation (a hostile
  # count that allocates gigabytes is a finding too); -timeout flags a hang.
  # SWIFT_BACKTRACE: a trap goes straight to libFuzzer's handler (the Swift backtracer's memory reads trip ASan).
  CHORUS_FUZZ_TARGET=$h SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
    "$BIN" "$OUT/corpus/$h" "Tests/fuzz/corpus/$h" -runs="$RUNS" -max_total_time="$MAX_TIME" \
    -max_len="${MAX_LEN[$h]}" -timeout=25 -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 "${extra[@]}" \
    -artifact_prefix="$OUT/artifacts/$h-" > "$log" 2>&1
  status=$?
  set -e
  seconds=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  final=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -E 's/^#[0-9]+ +[A-Z]+ +//')
  units=$(find "$OUT/corpus/$h" -type f | wc -l)
  printf '%-16s status %s, %s executions in %ss (%s exec/s), grown corpus %s files; last: %s\n' \
    "$h" "$status" "${execs:-?}" "$seconds" "${rate:-?}" "$units" "${final:-?}"
  if [ "$status" -ne 0 ]; then
    failed=1
    echo "  $h FAILED: see $log; reproduce with: CHORUS_FUZZ_TARGET=$h $BIN <artifact> (or .build/debug/chorus-fuzz replay $h <artifact>)" >&2
    grep -E 'ERROR|Fatal error|SUMMARY|artifact' "$log" | head -5 >&2 || true
  fi
done
exit $failed
