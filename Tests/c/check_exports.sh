#!/usr/bin/env bash
# check_exports.sh LIB HEADER
# The library's exported set must be the header and nothing else: compares every dynamic symbol
# DEFINED by LIB (nm -D --defined-only, all symbol types) with the chorus_* functions declared in
# HEADER. Prints both sets' differences; exits 0 when they are equal, 1 when not, 2 on usage errors.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 LIB HEADER" >&2
  exit 2
fi
lib=$1 header=$2
for f in "$lib" "$header"; do
  [ -f "$f" ] || { echo "check_exports: no such file: $f" >&2; exit 2; }
done

# Symbols defined by the library: `nm -D --defined-only`, every symbol type (functions, data, TLS,
# weak, unique, indirect), version suffix dropped. A lower-case type letter other than u/v/w/i is a
# LOCAL binding: some linkers leave such entries in .dynsym for relocations, but no other object can
# bind to them, so they are listed as a note and not counted as exports.
if ! nm_out=$(nm -D --defined-only "$lib"); then
  echo "check_exports: nm -D failed on $lib" >&2
  exit 2
fi
symbols=$(printf '%s\n' "$nm_out" | awk 'NF >= 3 { print $2, $3 } NF == 2 { print $1, $2 }' | sed 's/@.*//')
exported=$(printf '%s\n' "$symbols" | awk '$1 ~ /^[A-Zuvwi]$/ { print $2 }' | sort -u)
local_only=$(printf '%s\n' "$symbols" | awk '$1 ~ /^[a-z]$/ && $1 !~ /^[uvwi]$/ { print $2 }' | sort -u)

# Functions declared by the header: comments and preprocessor lines removed, then every
# `chorus_name(` (a function pointer typedef `(*chorus_fn)(` does not match: its name is followed by `)`).
declared=$(perl -0777 -ne '
  s{/\*.*?\*/}{ }gs;          # block comments
  s{//[^\n]*}{}g;             # line comments
  s{\\\n}{ }g;                # line continuations
  s{^[ \t]*#[^\n]*}{}mg;      # preprocessor lines
  print "$1\n" while /\b(chorus_[A-Za-z0-9_]*)\s*\(/g;
' "$header" | sort -u)

if [ -z "$declared" ]; then
  echo "check_exports: no chorus_* function found in $header" >&2
  exit 2
fi

only_lib=$(comm -23 <(printf '%s\n' "$exported" | sed '/^$/d') <(printf '%s\n' "$declared"))
only_header=$(comm -13 <(printf '%s\n' "$exported" | sed '/^$/d') <(printf '%s\n' "$declared"))

n_declared=$(printf '%s\n' "$declared" | wc -l)
n_exported=$(printf '%s\n' "$exported" | sed '/^$/d' | wc -l)
status=0
if [ -n "$only_lib" ]; then
  echo "check_exports: exported by $lib but not declared in $header:"
  printf '  %s\n' $only_lib
  status=1
fi
if [ -n "$only_header" ]; then
  echo "check_exports: declared in $header but not exported by $lib:"
  printf '  %s\n' $only_header
  status=1
fi
if [ -n "$local_only" ]; then
  echo "check_exports: note: $(printf '%s\n' "$local_only" | wc -l) LOCAL symbol(s) in .dynsym (not exported, not counted):"
  printf '  %s\n' $local_only
fi
if [ $status -eq 0 ]; then
  echo "check_exports: ok ($n_exported symbols exported = $n_declared functions declared)"
else
  echo "check_exports: FAILED ($n_exported exported, $n_declared declared)"
fi
exit $status
