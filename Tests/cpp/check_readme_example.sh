#!/usr/bin/env bash
# check_readme_example.sh README FILE
# The README shows FILE as it is: the first fenced block after the first line of README naming
# `FILE` must equal FILE byte for byte (so the quickstart users copy is the one `make test` builds).
# Exits 0 when equal, 1 with a diff when not, 2 on usage errors.
set -uo pipefail
if [ $# -ne 2 ] || [ ! -f "$1" ] || [ ! -f "$2" ]; then
  echo "usage: $0 README FILE" >&2
  exit 2
fi
block=$(awk -v name="\`$2\`" '
  !named && index($0, name) { named = 1; next }
  named && !inside && /^```/ { inside = 1; next }
  inside && /^```/ { exit }
  inside { print }
' "$1")
if [ -z "$block" ]; then
  echo "check_readme_example: $1 has no fenced block after a line naming \`$2\`"
  exit 1
fi
if ! diff -u --label "$2" --label "$1 (block after \`$2\`)" "$2" <(printf '%s\n' "$block"); then
  echo "check_readme_example: the block in $1 differs from $2"
  exit 1
fi
echo "check_readme_example: $1 shows $2 as it is"
