#!/usr/bin/env bash
# Freeze a small store of the current on-disk format under snapshots/compat/v<N>/, for the
# compatibility tests of every later version. Run once per released format version, then commit;
# never regenerate an existing version's folder.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=${1:?format version, e.g. 1}
BIN=${2:-$ROOT/target/release/ragsnap}
OUT="$ROOT/snapshots/compat/v$VERSION"
if [ -e "$OUT/store" ]; then echo "$OUT/store exists; frozen snapshots are never regenerated" >&2; exit 1; fi
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# A graph index even for this small corpus, so the frozen snapshot covers the HNSW artifact.
cat > "$WORK/ragsnap.toml" <<'TOML'
[index]
exact_below = 50
TOML
"$BIN" --config "$WORK/ragsnap.toml" --store "$WORK/store" rebuild --source "$ROOT/fixtures/site" --url-prefix "https://docs.tidewater.example/" -q
mkdir -p "$OUT/store"
cp "$WORK/store/catalog.sqlite" "$OUT/store/"
cp -r "$WORK/store/snapshots" "$OUT/store/"
"$BIN" --store "$OUT/store" show --json > "$OUT/manifest-summary.json"
rm -rf "$OUT/store/leases" "$OUT/store/catalog.sqlite-shm" "$OUT/store/catalog.sqlite-wal"
echo "frozen format v$VERSION store in $OUT"
