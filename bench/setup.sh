#!/usr/bin/env bash
# Installs the benchmark peers and their Python dependencies (never needed by the tests):
# implicit (the ALS peer), threadpoolctl (to record BLAS thread pools), scipy, numpy.
# The project's own build dependencies come from scripts/setup.sh (make setup).
# Idempotent: does nothing when everything imports already.
set -euo pipefail
python=${PYTHON:-python3}
if $python -c 'import implicit, threadpoolctl, scipy, numpy' 2>/dev/null; then
  $python -c 'import implicit, threadpoolctl, scipy, numpy; print(f"bench setup: implicit {implicit.__version__}, scipy {scipy.__version__}, numpy {numpy.__version__}, threadpoolctl {threadpoolctl.__version__} already installed")'
  exit 0
fi
echo "bench setup: installing implicit threadpoolctl scipy numpy (PyPI)..."
$python -m pip install -q --disable-pip-version-check implicit threadpoolctl scipy numpy
$python -c 'import implicit, threadpoolctl, scipy, numpy; print(f"bench setup: implicit {implicit.__version__}, scipy {scipy.__version__}, numpy {numpy.__version__}, threadpoolctl {threadpoolctl.__version__}")'
