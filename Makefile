# Chorus build, test and demo entry points. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
SWIFT ?= swift
PYTHON ?= python3
DATA ?= ../shared/data
RELEASE := .build/release
LIB := $(RELEASE)/libchorus.so
CLI := build/chorus
CC ?= cc
CFLAGS_HOST := -std=c99 -Wall -Werror -pedantic -Iinclude

.PHONY: setup lib cli demo wheel test test-swift test-c test-cpp test-cli test-wheel test-c-sanitize test-c-tsan test-swift-tsan test-python bench-setup bench-als bench-recommend bench-encoder clean

setup:
	@./scripts/setup.sh

# Release library with the Swift runtime linked in: hosts need no Swift toolchain.
lib: setup
	$(SWIFT) build -c release -Xswiftc -static-stdlib --product chorus

cli: setup
	$(SWIFT) build -c release -Xswiftc -static-stdlib --product chorus-cli
	@mkdir -p build && cp $(RELEASE)/chorus-cli $(CLI)

demo: lib cli
	$(CLI) demo --data $(DATA)

# The command line (Tests/cli/test_cli.sh): help, flags, errors, completion, real runs on small data (~10 s).
test-cli: cli
	./Tests/cli/test_cli.sh $(CLI)

test: test-swift test-swift-tsan test-c test-cpp test-c-sanitize test-c-tsan test-python test-cli test-wheel fuzz-replay fuzz-smoke

test-swift: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# The Swift tests under ThreadSanitizer, in their own build path. Measured here: 5.4 min from scratch with two
# other builds running (load 5: build ~2.5 min, run ~3.2 min); 4.4 min on a quieter machine. Any report stops
# the run (halt_on_error) and fails the target. One suppression, of Swift copy-on-write's known false positive
# (Tests/tsan-suppressions.txt says why and how it was checked not to hide a real race).
TSAN_SUPPRESSIONS := $(abspath Tests/tsan-suppressions.txt)
test-swift-tsan: setup
	$(SWIFT) build --build-tests --sanitize=thread --build-path .build/swift-tsan
	TSAN_OPTIONS="halt_on_error=1 suppressions=$(TSAN_SUPPRESSIONS)" $(SWIFT) test --skip-build --sanitize=thread --build-path .build/swift-tsan

# The C host test (Tests/c/README.md): every file listed by name, so a new program in Tests/c is not swept in.
CAPI_TEST_SOURCES := Tests/c/main.c Tests/c/harness.c Tests/c/fixtures.c Tests/c/test_library.c \
  Tests/c/test_engine_data.c Tests/c/test_fit.c Tests/c/test_recommend.c Tests/c/test_snapshots.c \
  Tests/c/test_texts.c Tests/c/test_kg.c Tests/c/test_metadata.c Tests/c/test_feedback.c Tests/c/test_learning.c \
  Tests/c/test_merge.c

# The stress test (Tests/c/test_stress.c): 8 threads making every kind of call on one engine.
STRESS_TEST_SOURCES := Tests/c/test_stress.c Tests/c/harness.c Tests/c/fixtures.c
STRESS_ITERATIONS ?= 40

test-c: lib
	@mkdir -p build
	$(CC) $(CFLAGS_HOST) $(CAPI_TEST_SOURCES) -o build/test_capi -L$(RELEASE) -lchorus -Wl,-rpath,$(abspath $(RELEASE)) -lm
	$(CC) $(CFLAGS_HOST) $(STRESS_TEST_SOURCES) -o build/test_stress -L$(RELEASE) -lchorus -Wl,-rpath,$(abspath $(RELEASE)) -lm -lpthread
	$(CC) $(CFLAGS_HOST) Tests/c/test_abi_hygiene.c Tests/c/harness.c -o build/test_abi_hygiene -L$(RELEASE) -lchorus -Wl,-rpath,$(abspath $(RELEASE)) -lm
	$(CC) $(CFLAGS_HOST) examples/c/quickstart.c -o build/quickstart -L$(RELEASE) -lchorus -Wl,-rpath,$(abspath $(RELEASE))
	./build/test_capi
	./build/test_abi_hygiene VERSION
	./build/test_stress $(STRESS_ITERATIONS)
	./build/quickstart
	./Tests/c/check_exports.sh $(LIB) include/chorus.h
	./Tests/c/check_ldd.sh $(LIB)

# The C host tests again under AddressSanitizer + UndefinedBehaviorSanitizer (the host side of the contract).
test-c-sanitize: lib
	@mkdir -p build
	$(CC) $(CFLAGS_HOST) -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
	  $(CAPI_TEST_SOURCES) -o build/test_capi_asan -L$(RELEASE) -lchorus -Wl,-rpath,$(abspath $(RELEASE)) -lm
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ./build/test_capi_asan
	$(CC) $(CFLAGS_HOST) -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
	  Tests/c/test_abi_hygiene.c Tests/c/harness.c -o build/test_abi_hygiene_asan -L$(RELEASE) -lchorus -Wl,-rpath,$(abspath $(RELEASE)) -lm
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ./build/test_abi_hygiene_asan VERSION

# The C++ wrapper (Tests/cpp/README.md): include/chorus.hpp's test and the C++ quickstart, built strict, the test
# again under AddressSanitizer + UndefinedBehaviorSanitizer; the README's C++ block must be the quickstart file.
CXX ?= g++
CXXFLAGS_HOST := -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude

test-cpp: lib
	@mkdir -p build
	$(CXX) $(CXXFLAGS_HOST) Tests/cpp/test_cpp.cpp -o build/test_cpp -L$(RELEASE) -lchorus -Wl,-rpath,$(abspath $(RELEASE))
	$(CXX) $(CXXFLAGS_HOST) examples/cpp/quickstart.cpp -o build/quickstart_cpp -L$(RELEASE) -lchorus -Wl,-rpath,$(abspath $(RELEASE))
	$(CXX) $(CXXFLAGS_HOST) -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
	  Tests/cpp/test_cpp.cpp -o build/test_cpp_asan -L$(RELEASE) -lchorus -Wl,-rpath,$(abspath $(RELEASE))
	./build/test_cpp
	./build/quickstart_cpp | grep -q '^  item 11 '
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ./build/test_cpp_asan
	./Tests/cpp/check_readme_example.sh README.md examples/cpp/quickstart.cpp

# ThreadSanitizer, C side (Tests/c/README.md): the library built with --sanitize=thread in its own build path
# (the Swift runtime linked dynamically: with -static-stdlib, TSan cannot see the runtime's swift_once and reports
# every lazily initialised global as raced), the stress test built with the
# toolchain's clang -fsanitize=thread (its TSan runtime intercepts libdispatch, hence -ldispatch -lBlocksRuntime),
# run until the first report. Measured here: 1.8 min from scratch at load 4 (build 75 s, run ~30 s).
TSAN_CC ?= clang
TSAN_LIB_DIR := .build/tsan/release
SWIFT_RUNTIME_DIR = $(shell $(SWIFT) -print-target-info | $(PYTHON) -c 'import json, sys; print(json.load(sys.stdin)["paths"]["runtimeLibraryPaths"][0])')

test-c-tsan: setup
	$(SWIFT) build -c release --build-path .build/tsan --sanitize=thread --product chorus
	@mkdir -p build
	$(TSAN_CC) $(CFLAGS_HOST) -g -O1 -fno-omit-frame-pointer -fsanitize=thread $(STRESS_TEST_SOURCES) -o build/test_stress_tsan \
	  -L$(TSAN_LIB_DIR) -lchorus -Wl,-rpath,$(abspath $(TSAN_LIB_DIR)) \
	  -L$(SWIFT_RUNTIME_DIR) -ldispatch -lBlocksRuntime -Wl,-rpath,$(SWIFT_RUNTIME_DIR) -lm -lpthread
	TSAN_OPTIONS="halt_on_error=1 suppressions=$(TSAN_SUPPRESSIONS)" ./build/test_stress_tsan $(STRESS_ITERATIONS)

# The CLI too: tests/test_report.py draws a report from a real `chorus eval --json` run.
test-python: lib cli
	CHORUS_LIBRARY=$(abspath $(LIB)) PYTHONPATH=bindings/python $(PYTHON) -m pytest -q bindings/python/tests

# mypy --strict on the Python examples against the binding's annotations (also a test in test-python).
.PHONY: typecheck-python
typecheck-python: setup
	MYPYPATH=bindings/python $(PYTHON) -m mypy --strict --config-file bindings/python/pyproject.toml examples/python/*.py

# A portable wheel of the Python binding (scripts/build-wheel.sh): libchorus.so with OpenBLAS, the Fortran
# runtime and quadmath bundled by auditwheel repair, tagged manylinux; ~10 s once the library is built.
WHEEL_DIR := build/wheel

wheel: lib
	PYTHON=$(PYTHON) ./scripts/build-wheel.sh $(LIB) $(WHEEL_DIR)

# The wheel installed into a fresh virtual environment, the quickstart run from outside the repository with
# the toolchain and the system's BLAS hidden (bindings/python/tests/check_wheel.sh); ~15 s.
test-wheel: wheel
	PYTHON=$(PYTHON) ./bindings/python/tests/check_wheel.sh $(WHEEL_DIR)

# Fuzzing (Tests/fuzz/README.md): libFuzzer harnesses over every entry point that parses bytes or
# takes sizes from the caller, built with coverage + AddressSanitizer into its own build path.
FUZZ_BUILD := .build/fuzz
FUZZ_BIN := $(FUZZ_BUILD)/release/chorus-fuzz
FUZZ_RUNS ?= 1000000
FUZZ_MAX_TIME ?= 0
FUZZ_SMOKE_RUNS ?= 2000
FUZZ_HARNESSES ?=
.PHONY: fuzz-build fuzz fuzz-smoke fuzz-replay fuzz-seeds

fuzz-build: setup
	CHORUS_FUZZ=1 $(SWIFT) build -c release --build-path $(FUZZ_BUILD) --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address --product chorus-fuzz

# FUZZ_RUNS executions per harness (FUZZ_MAX_TIME seconds caps each; 0 = no cap), one harness at a time.
fuzz: fuzz-build
	./Tests/fuzz/run.sh --bin $(FUZZ_BIN) --runs $(FUZZ_RUNS) --max-time $(FUZZ_MAX_TIME) $(FUZZ_HARNESSES)

# A short pass of each harness (make test, CI).
fuzz-smoke: fuzz-build
	./Tests/fuzz/run.sh --bin $(FUZZ_BIN) --runs $(FUZZ_SMOKE_RUNS) --out build/fuzz-smoke $(FUZZ_HARNESSES)

# The committed corpora (seeds and past findings) through the plain build's replay driver, and the
# snapshot mutator's own check.
fuzz-replay: setup
	$(SWIFT) build --product chorus-fuzz
	.build/debug/chorus-fuzz replay-all Tests/fuzz/corpus
	.build/debug/chorus-fuzz check-mutator Tests/fuzz/corpus/engine-snapshot/seed-full.chorus 2000
	.build/debug/chorus-fuzz check-mutator Tests/fuzz/corpus/graph-snapshot/seed-rotate.chorus 2000

# Regenerates the seed corpora from the library's own writers (commit the result).
fuzz-seeds: setup
	$(SWIFT) build --product chorus-fuzz
	rm -rf build/fuzz-seeds && mkdir -p build && .build/debug/chorus-fuzz seeds build/fuzz-seeds
	for d in build/fuzz-seeds/*; do rm -rf Tests/fuzz/corpus/$$(basename $$d)/seed-*; \
	  for f in $$d/*; do mkdir -p Tests/fuzz/corpus/$$(basename $$d); cp $$f Tests/fuzz/corpus/$$(basename $$d)/seed-$$(basename $$f); done; done

# Benchmarks (bench/README.md): peers are installed here, never in the test path.
bench-setup:
	./bench/setup.sh

bench-als: setup bench-setup
	$(SWIFT) build -c release -Xswiftc -static-stdlib --product chorus-bench
	$(PYTHON) bench/als/run.py --data $(DATA)

bench-recommend: lib bench-setup
	CC=$(CC) PYTHON=$(PYTHON) bench/recommend/run.sh --data $(DATA) --no-build

# Ranking quality against implicit ALS / BPR, EASE, item-kNN and SASRec, on the split `chorus eval`
# exports (bench/quality/README.md). About 2.5 hours on 2 cores (SASRec's tuning on ml-latest-small is
# most of it); `--peer-cache bench/quality/peer-cache.json` reuses the peers tuned by an earlier run.
.PHONY: bench-quality
bench-quality: cli bench-setup
	$(PYTHON) bench/quality/run.py --data $(DATA) --chorus $(CLI)

# Knowledge-graph embeddings: epoch time against PyKEEN (same run; installed by bench/kg/setup.sh)
# and filtered link prediction next to the published figures (bench/README.md). Hours on 2 cores:
# the RotatE rows train for the budgets recorded in bench/kg/results.md.
.PHONY: bench-kg
bench-kg: cli
	./bench/kg/setup.sh
	$(PYTHON) bench/kg/run.py speed --data $(DATA) --cli $(CLI)
	$(PYTHON) bench/kg/run.py quality --data $(DATA) --cli $(CLI)

# Scale: synthetic 1M / 5M / 20M interactions against implicit ALS (bench/scale/run.py; 20M needs
# about 5 GiB and 20 minutes on 2 cores: SIZES=1M for a first look).
.PHONY: bench-scale
SIZES ?= 1M,5M,20M
# Single-user recommend calls per size (a 1M-item catalogue's dense scan takes ~20 ms a call).
CALLS ?= 2000
.PHONY: bench-topk
bench-topk: bench-setup
	$(SWIFT) build -c release --product chorus-bench
	$(PYTHON) bench/topk/run.py

.PHONY: bench-ivf
bench-ivf: bench-setup
	$(SWIFT) build -c release --product chorus-bench
	$(PYTHON) bench/ivf/run.py

bench-scale: lib bench-setup
	$(PYTHON) bench/scale/run.py --sizes $(SIZES) --calls $(CALLS)

# Every results.md re-rendered from its results.json (byte for byte), then a clean clone of HEAD built (release)
# and every driver run at a small size with --no-write (bench/check.py; bench/README.md). Not part of `make test`;
# peers not installed by the benchmark set-up are reported as skipped. About 10-15 minutes on 2 cores.
.PHONY: bench-check
bench-check: bench-setup
	$(PYTHON) bench/check.py --data $(abspath $(DATA))

# Peers: sentence-transformers (PyTorch) and ONNX Runtime, installed by bench/encoder/setup.sh.
bench-encoder: lib
	./bench/encoder/setup.sh
	CHORUS_LIBRARY=$(abspath $(LIB)) PYTHONPATH=bindings/python HF_HUB_OFFLINE=1 $(PYTHON) bench/encoder/run.py

clean:
	rm -rf .build build
