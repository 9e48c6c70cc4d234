#!/usr/bin/env bash
# Installs the replay benchmark's peer (never needed by the tests): Vowpal Wabbit's Python package
# (`vowpalwabbit` on PyPI), which bench/online/replay.py runs on the candidates `chorus replay` exports.
# Idempotent: does nothing when it imports already.
set -euo pipefail
python=${PYTHON:-python3}
if ! $python -c 'import vowpalwabbit, numpy, matplotlib' 2>/dev/null; then
  echo "bench/online setup: installing vowpalwabbit numpy matplotlib (PyPI)..."
  $python -m pip install -q --disable-pip-version-check vowpalwabbit numpy matplotlib
fi
$python -c 'import vowpalwabbit, numpy; from importlib.metadata import version as v; print("bench/online setup: vowpalwabbit", v("vowpalwabbit"), "numpy", numpy.__version__)'
