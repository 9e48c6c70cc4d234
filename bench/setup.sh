#!/usr/bin/env bash
# Installs the benchmark peers and their Python dependencies (never needed by the tests):
# implicit (the ALS/BPR/item-kNN peers), faiss-cpu (the exact top-k peer of bench/topk), threadpoolctl (to record BLAS thread pools), scipy, numpy,
# and PyTorch CPU (the SASRec peer of bench/quality, torch==2.13.0+cpu; an installed torch is kept).
# The project's own build dependencies come from scripts/setup.sh (make setup).
# Idempotent: does nothing when everything imports already.
set -euo pipefail
python=${PYTHON:-python3}
report='import implicit, faiss, threadpoolctl, scipy, numpy, torch; print(f"bench setup: implicit {implicit.__version__}, faiss {faiss.__version__}, scipy {scipy.__version__}, numpy {numpy.__version__}, threadpoolctl {threadpoolctl.__version__}, torch {torch.__version__}")'
if $python -c 'import implicit, faiss, threadpoolctl, scipy, numpy, torch' 2>/dev/null; then
  $python -c "$report" | sed 's/$/ (already installed)/'
  exit 0
fi
if ! $python -c 'import implicit, faiss, threadpoolctl, scipy, numpy' 2>/dev/null; then
  echo "bench setup: installing implicit faiss-cpu threadpoolctl scipy numpy (PyPI)..."
  $python -m pip install -q --disable-pip-version-check implicit faiss-cpu threadpoolctl scipy numpy
fi
if ! $python -c 'import torch' 2>/dev/null; then
  echo "bench setup: installing torch==2.13.0+cpu..."
  $python -m pip install -q --disable-pip-version-check torch==2.13.0+cpu
fi
$python -c "$report"
