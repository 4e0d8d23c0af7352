#!/usr/bin/env bash
# Make (once) the cached virtual environment holding moto's S3 server, which the object-storage
# tests start on 127.0.0.1. Nothing is installed into the system Python.
#
#   scripts/s3_test_server.sh            create .cache/s3-venv if missing; print its python
#   scripts/s3_test_server.sh --check    exit 0 when the venv is usable, 1 otherwise
#
# The version is pinned here; a changed pin makes a new venv (the pin is part of the folder name).
set -euo pipefail
MOTO_VERSION="5.2.5"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${RAGSNAP_S3_VENV_CACHE:-$ROOT/.cache}"
VENV="$CACHE/s3-venv-moto-$MOTO_VERSION"
PY="$VENV/bin/python"

usable() { [ -x "$PY" ] && "$PY" -c 'import moto, moto.server, flask' >/dev/null 2>&1; }

if [ "${1:-}" = "--check" ]; then
  usable && exit 0 || exit 1
fi
if ! usable; then
  rm -rf "$VENV.tmp"
  "${PYTHON:-python3}" -m venv "$VENV.tmp" >&2
  "$VENV.tmp/bin/python" -m pip install -q --disable-pip-version-check "moto[s3,server]==$MOTO_VERSION" >&2
  rm -rf "$VENV"
  mv "$VENV.tmp" "$VENV"
  # venv scripts record their folder; the python binary itself does not mind the rename.
fi
echo "$PY"
