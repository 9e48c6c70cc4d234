#!/usr/bin/env bash
# Builds jemalloc from Debian's source package into .deps/jemalloc/lib/libchjemalloc.a.
#
# Why not Debian's libjemalloc.so.2: it is built with initial-exec TLS (2.6 KB of static TLS), and
# glibc refuses to dlopen such a library into a process that is already running ("cannot allocate
# memory in static TLS block"), which is exactly how Python's ctypes loads libchorus.so. So we build
# the same source (Debian's jemalloc 5.3.0) with general-dynamic TLS and a `chjem_` symbol prefix,
# and link it statically: its names cannot collide with the host's malloc, and libchorus.so still
# loads anywhere.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/.deps/jemalloc"
[ -f "$out/lib/libchjemalloc.a" ] && exit 0
work="$root/.deps/jemalloc-src"
rm -rf "$work" && mkdir -p "$work" "$out/lib"
cd "$work"
if ! apt-get source --download-only jemalloc >/dev/null 2>&1; then
  echo "build-jemalloc: 'apt-get source jemalloc' failed; run scripts/setup.sh (it enables deb-src)" >&2
  exit 1
fi
tar xjf jemalloc_*.orig.tar.bz2
cd jemalloc-*/
echo "build-jemalloc: configuring and building jemalloc $(cut -d- -f1 VERSION) (about a minute)..."
./configure --with-jemalloc-prefix=chjem_ --with-private-namespace=chjem_priv_ \
  --disable-initial-exec-tls --disable-cxx --disable-shared --disable-doc >/dev/null
make -j"$(nproc)" build_lib_static >/dev/null
cp lib/libjemalloc_pic.a "$out/lib/libchjemalloc.a"
rm -rf "$work"
echo "build-jemalloc: $out/lib/libchjemalloc.a"
