#!/usr/bin/env bash
# check_wheel.sh WHEEL_DIR
# The wheel `make wheel` built works on a machine that has neither the Swift toolchain nor the
# system's OpenBLAS / Fortran runtime: it is installed into a fresh virtual environment (numpy and
# pandas for the quickstart from the package index), and from a directory outside the repository, with a clean environment (no
# LD_LIBRARY_PATH, PYTHONPATH or CHORUS_LIBRARY):
# - the installed libchorus.so resolves every dependency (ldd) to the wheel's own chorus.libs/ or
#   to what manylinux promises (libc, libm, libstdc++, libgcc_s), nothing from /opt;
# - a process that loaded it has OpenBLAS, libgfortran and libquadmath mapped from chorus.libs/ and
#   nothing of Swift's (/proc/self/maps);
# - examples/python/quickstart.py runs, in a private mount namespace (unshare -m, when permitted:
#   as root) where /opt (the Swift toolchain), the system's OpenBLAS, libgfortran and libquadmath
#   are hidden, else as it is (said so).
# Prints "N passed, M failed"; exits 1 if anything failed.
set -uo pipefail
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 WHEEL_DIR" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/../../.." && pwd)
python=${PYTHON:-python3}
shopt -s nullglob
wheels=("$1"/*manylinux*.whl)
if [ ${#wheels[@]} -ne 1 ]; then
  echo "check_wheel: expected one manylinux wheel in $1, found ${#wheels[@]}" >&2
  exit 1
fi
wheel=$(cd "$(dirname "${wheels[0]}")" && pwd)/$(basename "${wheels[0]}")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/chorus-wheel-check-XXXXXX")
case "$tmp" in "$root"/*) echo "check_wheel: TMPDIR is inside the repository" >&2; exit 2 ;; esac
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "  FAILED: $*"; }

echo "check_wheel: $(basename "$wheel") ($(stat -c %s "$wheel") bytes)"
listing=$("$python" -m zipfile -l "$wheel")
for f in chorus/libchorus.so chorus/_capi.py chorus.libs/libopenblas chorus.libs/libgfortran chorus.libs/libquadmath; do
  if grep -qF "$f" <<<"$listing"; then ok; else bad "the wheel holds no $f"; fi
done

# A fresh virtual environment; the wheel with its dependency (numpy) from the package index, and
# pandas, which the quickstart's DataFrame needs (an optional integration, not a dependency).
"$python" -m venv "$tmp/venv" || { echo "check_wheel: python -m venv failed" >&2; exit 1; }
if "$tmp/venv/bin/pip" install -q --disable-pip-version-check "$wheel" pandas; then ok; else bad "pip install $wheel pandas"; fi
site=$("$tmp/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')
installed=$site/chorus/libchorus.so
[ -f "$installed" ] && ok || bad "no $installed"

# What the dynamic loader resolves for the installed library.
deps=$(env -i PATH=/usr/bin:/bin ldd "$installed" 2>&1)
while read -r line; do
  name=$(awk '{print $1}' <<<"$line")
  path=$(sed -n 's/.*=> \([^ ]*\).*/\1/p' <<<"$line")
  case "$name" in
    linux-vdso*|/lib64/ld-linux*|libc.so.6|libm.so.6|libstdc++.so.6|libgcc_s.so.1|libpthread.so.0|libdl.so.2) ok ;;
    *) if [[ -n "$path" && "$(readlink -f "$path")" == "$(readlink -f "$site/chorus.libs")/"* ]]; then ok
       else bad "ldd: $line (not from the wheel's chorus.libs)"; fi ;;
  esac
  [[ "$line" == *"not found"* || "$line" == *"/opt/"* || "${line,,}" == *swift* ]] && bad "ldd: $line"
done <<<"$deps"

# The quickstart, from outside the repository, with a clean environment and (where permitted) the
# toolchain and the system's BLAS and Fortran runtime hidden.
mkdir -p "$tmp/run"
cp "$root/examples/python/quickstart.py" "$tmp/run/"
cat >"$tmp/run/maps.py" <<'PY'
import os, chorus
with chorus.Engine() as e:  # loads the library and runs OpenBLAS through a fit
    e.add_interactions([1, 1, 2, 2, 3, 3], [10, 11, 10, 12, 11, 12])
    e.fit(factors=2, iterations=3, threads=1)
print("library", chorus.library_path())
for line in open("/proc/self/maps"):
    parts = line.split()
    if len(parts) >= 6 and any(k in parts[5] for k in ("openblas", "gfortran", "quadmath", "swift", "/opt/")):
        print("mapped", parts[5])
PY
hide=""
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
if unshare -m true 2>/dev/null; then
  # Files first (their real paths, through the alternatives links), then whole directories.
  hide="true"
  for f in /usr/lib/$multiarch/libgfortran.so.5 /usr/lib/$multiarch/libquadmath.so.0 /usr/lib/$multiarch/libopenblas.so.0; do
    [ -e "$f" ] && hide="$hide && mount --bind /dev/null $(readlink -f "$f")"
  done
  for d in /opt /usr/lib/$multiarch/openblas-pthread /usr/lib/$multiarch/openblas-openmp /usr/lib/$multiarch/openblas-serial; do
    [ -d "$d" ] && hide="$hide && mount -t tmpfs none $d"
  done
  echo "check_wheel: running with /opt and the system's OpenBLAS, libgfortran and libquadmath hidden (unshare -m)"
else
  echo "check_wheel: unshare -m not permitted here: running without hiding system libraries (the maps check still holds)"
fi
in_env() {
  local cmd="cd '$tmp/run' && exec env -i PATH=/usr/bin:/bin HOME='$tmp' '$tmp/venv/bin/python' $*"
  if [ -n "$hide" ]; then unshare -m --propagation private sh -c "$hide && $cmd"; else sh -c "$cmd"; fi
}
if in_env quickstart.py >"$tmp/quickstart.out" 2>&1; then ok; else bad "quickstart.py: $(tail -5 "$tmp/quickstart.out")"; fi
grep -q "same after a reload: True" "$tmp/quickstart.out" && ok || bad "quickstart output: $(cat "$tmp/quickstart.out")"
if in_env maps.py >"$tmp/maps.out" 2>&1; then ok; else bad "maps.py: $(tail -5 "$tmp/maps.out")"; fi
grep -qx "library $site/chorus/libchorus.so" "$tmp/maps.out" && ok || bad "maps.py loaded $(grep ^library "$tmp/maps.out")"
for lib in openblas gfortran quadmath; do
  grep -q "^mapped $site/chorus.libs/lib$lib" "$tmp/maps.out" && ok || bad "lib$lib is not mapped from chorus.libs"
done
# Only the wheel's copies: nothing from /opt or the system's BLAS (numpy's own OpenBLAS lives in numpy.libs).
if grep "^mapped" "$tmp/maps.out" | grep -v "^mapped $site/" | grep -q .; then
  bad "mapped from elsewhere: $(grep '^mapped' "$tmp/maps.out" | grep -v "^mapped $site/")"
else ok; fi
# Control: the hiding is real. The tree's own library (linked against the system's OpenBLAS) must
# fail to load in the same namespace.
tree_lib=$root/.build/release/libchorus.so
if [ -n "$hide" ] && [ -f "$tree_lib" ]; then
  if in_env -c "\"import ctypes; ctypes.CDLL('$tree_lib')\"" >"$tmp/control.out" 2>&1; then
    bad "control: $tree_lib loaded with the system's OpenBLAS hidden: the hiding does not work"
  elif grep -q "libopenblas" "$tmp/control.out"; then ok
  else bad "control: unexpected failure: $(tail -3 "$tmp/control.out")"; fi
fi
echo "--- quickstart (outside the repository, clean environment) ---"
cat "$tmp/quickstart.out"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
