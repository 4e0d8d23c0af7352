#!/usr/bin/env bash
# The Python package's tests (`make python-test`, run by `make test`): build a wheel of
# crates/ragsnap-py + python/ with maturin, install it into the cached test venv, run pytest.
#
# The wheel is built with the dev profile: it reuses the dependencies `cargo test` has just
# compiled (only pyo3 and crates/ragsnap-py are built again, for maturin's extension-module
# feature), where a release build compiles the whole tree. Measured on the shared 2-core machine
# (load about 10): dev wheel 43 s, release wheel from a cold release folder 15 min 35 s.
# `make python` builds the release wheel.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="$TARGET/wheels-dev"
export RAGSNAP_CACHE="${RAGSNAP_CACHE:-$ROOT/.cache/runtime}"

BUILD_PY="$(bash "$ROOT/scripts/python_venv.sh" build)"
TEST_PY="$(bash "$ROOT/scripts/python_venv.sh" test)"
rm -f "$OUT"/ragsnap-*.whl
(cd "$ROOT/python" && "$(dirname "$BUILD_PY")/maturin" build --profile dev --out "$OUT" >&2)
WHEEL="$(ls "$OUT"/ragsnap-*.whl)"
"$TEST_PY" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "$WHEEL"
# From the tests folder, so `import ragsnap` is the installed wheel, never python/ragsnap.
cd "$ROOT/python/tests"
RAGSNAP_WHEEL="$WHEEL" RAGSNAP_REPO="$ROOT" "$TEST_PY" -m pytest -q -p no:cacheprovider "$@" .
