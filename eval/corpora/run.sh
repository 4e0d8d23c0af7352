#!/usr/bin/env bash
# make corpora: chunk every site of the multi-generator development set (sites.toml) and the
# bundled fixture site with the release build, check the chunks (check.py), and write
# target/corpora/report.md (and report.json). See eval/corpora/README.md.
#
#   eval/corpora/run.sh [SITE...]         (no SITE: every site, and the fixture site)
#
# Chunks come from `ragsnap chunk --source DIR --json` when the binary has that option, and from
# the interim dumper `corpus_dump` (eval/corpus_dump.rs: the rebuild's read, sanitise,
# boilerplate and chunk stages) otherwise; CORPORA_CHUNKER=dump|cli forces one.
#
# Environment: CARGO, CARGO_TARGET_DIR, PYTHON, RAGSNAP_CACHE (default .cache/runtime),
# CORPORA_OUT (default target/corpora), CORPORA_STRICT=1 to exit 1 when a site misses a "done"
# threshold, CORPORA_NO_BUILD=1 to use the binaries already built, RAGSNAP_BIN to use another
# ragsnap binary.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CARGO="${CARGO:-cargo}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
PYTHON="${PYTHON:-python3}"
OUT="${CORPORA_OUT:-$ROOT/target/corpora}"
export RAGSNAP_CACHE="${RAGSNAP_CACHE:-$ROOT/.cache/runtime}"

# 1. The packages and the page folders (downloads only what is missing).
sites="$(bash "$ROOT/scripts/fetch_corpora.sh" "$@")"

# 2. The release binaries.
if [[ -z "${CORPORA_NO_BUILD:-}" ]]; then
    (cd "$ROOT" && "$CARGO" build --release -q -p ragsnap-cli -p ragsnap-eval)
fi
RAGSNAP="${RAGSNAP_BIN:-$TARGET/release/ragsnap}"
DUMP="$TARGET/release/corpus_dump"
chunker="${CORPORA_CHUNKER:-}"
if [[ -z "$chunker" ]]; then
    if "$RAGSNAP" chunk --help 2>/dev/null | grep -q -- '--source'; then chunker=cli; else chunker=dump; fi
fi
# The model's own token counter, as the rebuild uses, when the command makes it optional.
cli_extra=()
if [[ "$chunker" == cli ]] && "$RAGSNAP" chunk --help 2>/dev/null | grep -q -- '--model-tokens'; then
    cli_extra=(--model-tokens)
fi
case "$chunker" in
    cli) [[ -x "$RAGSNAP" ]] || { echo "corpora: $RAGSNAP is missing; build it or unset CORPORA_NO_BUILD" >&2; exit 1; } ;;
    dump) [[ -x "$DUMP" ]] || { echo "corpora: $DUMP is missing; build it or unset CORPORA_NO_BUILD" >&2; exit 1; } ;;
    *) echo "corpora: CORPORA_CHUNKER must be cli or dump, not $chunker" >&2; exit 2 ;;
esac

# 3. Chunk every site into $OUT/jsonl/<site>.jsonl, its page folder in <site>.root.
rm -rf "$OUT/jsonl"
mkdir -p "$OUT/jsonl" "$OUT/logs"
if [[ $# -eq 0 ]]; then
    fixture_pages=$(find "$ROOT/fixtures/site" -type f ! -name '.*' | wc -l)
    sites="$sites"$'\n'"$(printf 'fixture\t-\t(in the repository)\thand-written fixture site\t%s\t%s' "$ROOT/fixtures/site" "$fixture_pages")"
fi
versions=""
while IFS=$'\t' read -r name package version generator folder pages; do
    [[ -n "$name" ]] || continue
    start=$(date +%s)
    log="$OUT/logs/$name.log"
    # Exit 1 with output means some pages failed: they are counted by the checker (a page of
    # the folder missing from the output is a page without chunks). No output is a failure.
    set +e
    if [[ "$chunker" == cli ]]; then
        "$RAGSNAP" chunk --source "$folder" --json "${cli_extra[@]}" >"$OUT/jsonl/$name.jsonl" 2>"$log"
    else
        "$DUMP" --source "$folder" --out "$OUT/jsonl/$name.jsonl" 2>"$log"
    fi
    crc=$?
    set -e
    if [[ $crc -gt 1 || ! -s "$OUT/jsonl/$name.jsonl" ]]; then
        echo "corpora: $name: the chunker failed (exit $crc), see $log" >&2
        exit 1
    elif [[ $crc -eq 1 ]]; then
        echo "corpora: $name: some pages failed, see $log" >&2
    fi
    printf '%s\n' "$folder" >"$OUT/jsonl/$name.root"
    secs=$(( $(date +%s) - start ))
    echo "corpora: $name: $(wc -l <"$OUT/jsonl/$name.jsonl") documents in ${secs}s" >&2
    versions+="| $name | $package | $version | $generator | $pages | ${secs} s |"$'\n'
done <<<"$sites"

# 4. Check, and write the report.
strict=()
[[ -n "${CORPORA_STRICT:-}" ]] && strict=(--strict)
set +e
"$PYTHON" "$ROOT/eval/corpora/check.py" --all "$OUT/jsonl" --markdown-out "$OUT/table.md" \
    --json-out "$OUT/report.json" "${strict[@]}" >/dev/null
rc=$?
set -e
[[ $rc -le 1 && -f "$OUT/table.md" ]] || { echo "corpora: check.py failed (exit $rc)" >&2; exit 1; }
{
    echo "# Corpus check"
    echo
    echo "Run $(date -u +%Y-%m-%dT%H:%MZ) at commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'),"
    echo "chunks from \`$([[ $chunker == cli ]] && echo 'ragsnap chunk --source DIR --json' || echo 'corpus_dump --source DIR')\`."
    echo
    echo "| site | package | version | generator | pages | chunking time |"
    echo "|---|---|---|---|---:|---:|"
    printf '%s' "$versions"
    echo
    cat "$OUT/table.md"
} >"$OUT/report.md"
echo "corpora: wrote $OUT/report.md" >&2
exit $rc
