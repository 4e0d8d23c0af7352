#!/usr/bin/env bash
# Make (once) the cached virtual environments the Python package needs, and print the python of
# the one asked for. Nothing is installed into the system Python; every version is pinned here
# and is part of the folder name, so a changed pin makes a new environment.
#
#   scripts/python_venv.sh build   maturin, which builds the wheel (`make python`)
#   scripts/python_venv.sh test    pytest and the two frameworks the adapters plug into
#
# An environment is used only once its `.complete` marker exists: an interrupted install is
# thrown away and made again on the next call.
set -euo pipefail
MATURIN_VERSION="1.16.0"
PYTEST_VERSION="9.2.0"
LANGCHAIN_CORE_VERSION="1.8.1"
LLAMA_INDEX_CORE_VERSION="0.14.25"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${RAGSNAP_PY_VENV_CACHE:-$ROOT/.cache}"
case "${1:-}" in
  build)
    VENV="$CACHE/py-build-venv-maturin-$MATURIN_VERSION"
    PKGS=("maturin==$MATURIN_VERSION")
    ;;
  test)
    VENV="$CACHE/py-test-venv-pytest-$PYTEST_VERSION-lc-$LANGCHAIN_CORE_VERSION-li-$LLAMA_INDEX_CORE_VERSION"
    PKGS=("pytest==$PYTEST_VERSION" "langchain-core==$LANGCHAIN_CORE_VERSION" "llama-index-core==$LLAMA_INDEX_CORE_VERSION")
    ;;
  *)
    echo "usage: scripts/python_venv.sh build|test" >&2
    exit 2
    ;;
esac

if [ ! -f "$VENV/.complete" ]; then
  mkdir -p "$CACHE"
  # Two test runs sharing the cache make it once: the second waits for the first.
  exec 9>"$VENV.lock"
  flock 9
  if [ ! -f "$VENV/.complete" ]; then
    rm -rf "$VENV"
    "${PYTHON:-python3}" -m venv "$VENV" >&2
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PKGS[@]}" >&2
    touch "$VENV/.complete"
  fi
  exec 9>&-
fi
echo "$VENV/bin/python"
