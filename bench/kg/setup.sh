#!/bin/sh
# Peer for bench/kg/run.py: PyKEEN, from the default PyPI index (never part of the test path).
# torch is pinned to the version already installed so that pip does not swap in another build
# (PyKEEN accepts any torch >= 2.0); without a torch, pip installs the default wheel.
set -eu
python=${PYTHON:-python3}
if $python -c 'import pykeen, torch' 2>/dev/null; then
  echo "bench/kg setup: $($python -c 'import importlib.metadata as m, torch; print("pykeen", m.version("pykeen") + ", torch", torch.__version__)') already installed"
  exit 0
fi
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
if torch_version=$($python -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null); then
  echo "torch==$torch_version" > "$constraints"
  echo "bench/kg setup: installing pykeen (PyPI), keeping torch $torch_version..."
else
  echo "bench/kg setup: installing pykeen and torch (PyPI)..."
fi
$python -m pip install -q --disable-pip-version-check pykeen -c "$constraints"
echo "bench/kg setup: $($python -c 'import importlib.metadata as m, torch; print("pykeen", m.version("pykeen") + ", torch", torch.__version__)')"
