#!/usr/bin/env bash
# Make the Python 3.11 HTML documentation (Debian package python3.11-doc) available for the
# ingest test and the benchmarks, without installing anything: the .deb is downloaded with
# `apt-get download` and unpacked with `dpkg-deb -x` into the git-ignored .cache/corpus/.
# Prints the path of the HTML folder.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/.cache/corpus/python3.11-doc"
HTML="$DEST/usr/share/doc/python3.11/html"
if [ -f "$HTML/library/functools.html" ]; then echo "$HTML"; exit 0; fi
if [ -z "${RAGSNAP_CORPUS_NO_SYSTEM:-}" ] && [ -f /usr/share/doc/python3.11/html/library/functools.html ]; then echo /usr/share/doc/python3.11/html; exit 0; fi
mkdir -p "$DEST/deb"
cd "$DEST/deb"
if ! ls python3.11-doc_*.deb >/dev/null 2>&1; then
  if ! apt-get download python3.11-doc >/dev/null 2>&1; then
    # A fresh machine may have no package lists yet.
    (apt-get update -qq || sudo apt-get update -qq) >/dev/null 2>&1 || true
    apt-get download python3.11-doc >/dev/null 2>&1 || { echo "fetch_corpus: could not download python3.11-doc with apt-get; install it (apt-get install python3.11-doc) or set RAGSNAP_PYDOC_HTML" >&2; exit 1; }
  fi
fi
dpkg-deb -x python3.11-doc_*.deb "$DEST"
[ -f "$HTML/library/functools.html" ] || { echo "fetch_corpus: unpacked python3.11-doc but $HTML/library/functools.html is missing" >&2; exit 1; }
echo "$HTML"
