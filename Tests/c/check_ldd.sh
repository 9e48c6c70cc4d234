#!/usr/bin/env bash
# check_ldd.sh LIB
# A host needs no Swift toolchain to load LIB: every library `ldd LIB` lists must be a Debian system
# library (a path under /lib or /usr/lib owned by a Debian package, when dpkg is there), apart from
# linux-vdso and the dynamic loader (ld-linux); nothing from /opt/swift, nothing with "swift" in its
# name, nothing "not found". Exits 0 when all pass, 1 when not, 2 on usage errors.
set -uo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 LIB" >&2
  exit 2
fi
lib=$1
[ -f "$lib" ] || { echo "check_ldd: no such file: $lib" >&2; exit 2; }
if ! out=$(ldd "$lib" 2>&1); then
  echo "check_ldd: ldd failed on $lib:" >&2
  printf '%s\n' "$out" >&2
  exit 1
fi

have_dpkg=0
command -v dpkg-query >/dev/null 2>&1 && have_dpkg=1

# Owned by a Debian package? Tries the path, its resolved target (alternatives), and its /usr twin
# (usrmerge: dpkg may know a file as /lib/... or as /usr/lib/...).
debian_owned() {
  local p=$1 c
  local real
  real=$(readlink -f "$p" 2>/dev/null || echo "$p")
  for c in "$p" "$real" "/usr${p#/usr}" "${p#/usr}" "/usr${real#/usr}" "${real#/usr}"; do
    [ -n "$c" ] || continue
    dpkg-query -S "$c" >/dev/null 2>&1 && return 0
  done
  return 1
}

bad=0 n=0
while IFS= read -r line; do
  [ -n "${line//[[:space:]]/}" ] || continue
  n=$((n + 1))
  entry=$(printf '%s' "$line" | sed 's/^[[:space:]]*//')
  name=${entry%% *}
  path=""
  if [[ $entry == *"=>"* ]]; then
    path=$(printf '%s' "${entry#*=> }" | awk '{ print $1 }')
  elif [[ $name == /* ]]; then
    path=$name
  fi
  reason=""
  if [[ $entry == *"not found"* ]]; then
    reason="not found"
  elif [[ ${entry,,} == *swift* ]]; then
    reason="a Swift library"
  elif [[ $name == linux-vdso.so* || $name == linux-gate.so* ]]; then
    :
  elif [[ $(basename "$name") == ld-linux* ]]; then
    :
  elif [ -z "$path" ]; then
    reason="no path"
  elif [[ $path == /opt/* ]]; then
    reason="under /opt"
  elif [[ $path != /lib/* && $path != /usr/lib/* ]]; then
    reason="not under /lib or /usr/lib"
  elif [ $have_dpkg -eq 1 ] && ! debian_owned "$path"; then
    reason="not owned by a Debian package (dpkg -S)"
  fi
  if [ -n "$reason" ]; then
    echo "check_ldd: $reason: $entry"
    bad=1
  fi
done <<< "$out"

if [ $n -eq 0 ]; then
  echo "check_ldd: ldd listed nothing for $lib"
  exit 1
fi
if [ $bad -ne 0 ]; then
  echo "check_ldd: FAILED; ldd $lib:"
  printf '%s\n' "$out"
  exit 1
fi
echo "check_ldd: ok ($n entries, all Debian system libraries)"
