#!/usr/bin/env bash
# Builds one side for bench/arch/compare.py: the release libchorus.so, chorus-cli and chorus-bench of
# the Chorus tree TREE (as the Makefile builds them: -c release -Xswiftc -static-stdlib), copied to
# OUT/lib/libchorus.so, OUT/chorus-cli, OUT/chorus-bench, with OUT/COMMIT (commit, clean or not,
# toolchain, sha256 of each file). TREE needs its .deps (make setup, or a symlink to another tree's).
#
#     bench/arch/build_side.sh TREE OUT
set -euo pipefail
[ $# -eq 2 ] || { sed -n '2,7p' "$0" >&2; exit 2; }
tree=$(cd "$1" && pwd)
out=$2
[ -f "$tree/Package.swift" ] || { echo "build_side.sh: $tree is not a Chorus tree" >&2; exit 1; }
[ -f "$tree/.deps/jemalloc/lib/libchjemalloc.a" ] || { echo "build_side.sh: $tree/.deps has no jemalloc (make setup)" >&2; exit 1; }
cd "$tree"
for product in chorus chorus-cli chorus-bench; do
  swift build -c release -Xswiftc -static-stdlib --product "$product"
done
mkdir -p "$out/lib"
cp .build/release/libchorus.so "$out/lib/"
cp .build/release/chorus-cli .build/release/chorus-bench "$out/"
changes=$(git status --porcelain --untracked-files=no | wc -l)
{
  echo "commit: $(git rev-parse HEAD)"
  echo "tree: $tree ($(git rev-parse --abbrev-ref HEAD)); uncommitted changes to tracked files: $changes"
  echo "built: $(date -u '+%Y-%m-%d %H:%M UTC') with $(swift --version 2>&1 | head -1)"
  echo "commands: swift build -c release -Xswiftc -static-stdlib --product chorus | chorus-cli | chorus-bench"
  (cd "$out" && sha256sum lib/libchorus.so chorus-cli chorus-bench)
} > "$out/COMMIT"
cat "$out/COMMIT"
