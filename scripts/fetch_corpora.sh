#!/usr/bin/env bash
# Fetch the multi-generator development set (eval/corpora/sites.toml) without installing
# anything: each Debian documentation package is downloaded with `apt-get download` into
# .cache/corpora/<package>/deb/, unpacked with `dpkg-deb -x` into .cache/corpora/<package>/, and
# its version written to .cache/corpora/<package>/VERSION. Then every site's page folder is built
# (hard links to the pages its subset rule selects; see sites.toml). A second run downloads and
# unpacks nothing.
#
#   scripts/fetch_corpora.sh [SITE...]     (no SITE: every site in the manifest)
#
# Prints one line per site: name, package, version, generator, page folder, pages (tab-separated).
# Set RAGSNAP_CORPORA_DIR to use another cache folder.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${RAGSNAP_CORPORA_DIR:-$ROOT/.cache/corpora}
SITES="$ROOT/eval/corpora/sites.py"
PYTHON=${PYTHON:-python3}
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null \
  || { echo "fetch_corpora: needs apt-get and dpkg-deb (a Debian or Ubuntu machine)" >&2; exit 1; }
packages=$("$PYTHON" "$SITES" packages "$@")
mkdir -p "$CACHE"
# One fetch at a time: a second run waits for the first rather than unpacking beside it.
exec 9>"$CACHE/.lock"
flock 9
updated=
for pkg in $packages; do
  dest="$CACHE/$pkg"
  if [ -f "$dest/VERSION" ] && [ -f "$dest/.unpacked" ]; then continue; fi
  mkdir -p "$dest/deb"
  if ! ls "$dest/deb/${pkg}"_*.deb >/dev/null 2>&1; then
    echo "fetch_corpora: downloading $pkg" >&2
    if ! (cd "$dest/deb" && apt-get download "$pkg" >/dev/null 2>&1); then
      if [ -z "$updated" ]; then
        # A fresh machine may have no package lists yet.
        updated=1
        (apt-get update -qq || sudo -n apt-get update -qq) >/dev/null 2>&1 || true
      fi
      (cd "$dest/deb" && apt-get download "$pkg" >/dev/null 2>&1) || {
        echo "fetch_corpora: could not download $pkg with apt-get download. Check that the Debian" \
          "bookworm 'main' archive is in the apt sources and run 'apt-get update', or put" \
          "${pkg}_<version>_all.deb (or _amd64.deb) in $dest/deb/ by hand." >&2
        exit 1
      }
    fi
  fi
  debs=("$dest/deb/${pkg}"_*.deb)
  if [ ${#debs[@]} -ne 1 ]; then
    echo "fetch_corpora: $pkg: expected one .deb in $dest/deb/, found ${#debs[@]}; delete the stale ones" >&2
    exit 1
  fi
  dpkg-deb -x "${debs[0]}" "$dest" || {
    echo "fetch_corpora: $pkg: dpkg-deb -x failed on ${debs[0]}; delete it and run again to download it afresh" >&2
    exit 1
  }
  dpkg-deb -f "${debs[0]}" Version >"$dest/VERSION"
  touch "$dest/.unpacked"
done
"$PYTHON" "$SITES" materialise --cache "$CACHE" "$@"
