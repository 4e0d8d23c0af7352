# ragsnap — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
CARGO ?= cargo
CACHE := $(CURDIR)/.cache/runtime
export RAGSNAP_CACHE := $(CACHE)
DEMO_STORE := $(CURDIR)/target/demo-store
RAGSNAP := $(CURDIR)/target/release/ragsnap

.PHONY: setup build demo test lint bench eval corpora corpora-selftest clean-store help
.PHONY: python python-test

help:
	@echo "make demo   fetch the runtime, build, index the bundled fixtures, query, roll back, verify"
	@echo "make test   fetch the runtime, fmt + clippy + all tests"
	@echo "make bench  benchmarks (see benches/README.md)"
	@echo "make corpora  chunk the multi-generator development set and check it (eval/corpora/README.md)"

## Catalogued models fetched besides the default (`make setup MODELS="minilm-l6-qint8 paraphrase-minilm-l3"`;
## `ragsnap models` lists them). `make test` fetches TEST_MODELS too (the quantized variant, made
## locally from the default: about 60 MB of pinned tool wheels, once).
MODELS ?=
TEST_MODELS ?= minilm-l6-qint8

## Fetch and verify ONNX Runtime and the default model (pinned by sha256) into .cache/runtime,
## and unpack Debian's python3.11-doc (the real-corpus test and the benchmarks) into .cache/corpus,
## and make the cached venv of the S3-API test server (moto, pinned) under .cache/.
setup:
	@$(PYTHON) scripts/fetch_runtime.py --cache "$(CACHE)"
	@$(PYTHON) scripts/fetch_models.py --cache "$(CACHE)" $(MODELS)
	@bash scripts/fetch_corpus.sh >/dev/null
	@bash scripts/s3_test_server.sh >/dev/null || echo "make setup: could not build the S3 test server's venv (.cache/s3-venv-*); the S3 tests will be skipped" >&2

build:
	$(CARGO) build --release -p ragsnap-cli

demo: setup build
	@bash scripts/demo.sh "$(RAGSNAP)" "$(DEMO_STORE)"

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: setup lint corpora-selftest
	@$(PYTHON) scripts/fetch_models.py --cache "$(CACHE)" --quiet $(TEST_MODELS) || echo "make test: could not fetch $(TEST_MODELS); the tests that need them are skipped" >&2
	$(CARGO) test --workspace --all-targets --no-fail-fast
	$(CARGO) test --workspace --doc
	@$(MAKE) --no-print-directory python-test

bench: setup
	@bash benches/run.sh

## Retrieval evaluation on the Python 3.11 docs (eval/README.md); the first run embeds ~22k chunks.
eval: setup
	@bash eval/run.sh

## The multi-generator development set (eval/corpora/README.md): fetch the Debian documentation
## packages into .cache/corpora, chunk every site, check the chunks, write target/corpora/report.md.
corpora: setup
	@bash eval/corpora/run.sh

## The corpus checker's own test (a few seconds, standard library only); part of `make test`.
corpora-selftest:
	@$(PYTHON) eval/corpora/check.py --self-test

clean-store:
	rm -rf "$(DEMO_STORE)"

## The Python package (crates/ragsnap-py + python/, python/README.md): a release wheel in
## target/wheels/, built by maturin from the cached venv scripts/python_venv.sh makes.
python:
	@rm -f target/wheels/ragsnap-*.whl
	@MATURIN="$$(dirname "$$(bash scripts/python_venv.sh build)")/maturin"; \
	cd python && "$$MATURIN" build --release --out "$(CURDIR)/target/wheels"

## The Python package's pytest suite (part of `make test`): a dev-profile wheel, installed into
## the cached test venv (pinned pytest, langchain-core, llama-index-core), against a store that
## the suite builds from fixtures/site with ragsnap.rebuild.
python-test: setup
	@bash scripts/python_test.sh
