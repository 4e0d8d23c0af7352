#!/usr/bin/env bash
# make eval: build the question set, index the Python 3.11 documentation with the real ragsnap
# binary, and measure dense, lexical and hybrid retrieval. See eval/README.md.
#
# Environment: PYDOC_HTML (default /usr/share/doc/python3.11/html), EVAL_DIR (default
# target/eval), CARGO, CARGO_TARGET_DIR, EVAL_REBUILD=1 to rebuild the store even when the
# corpus has not changed, EVAL_ARGS for extra ragsnap-eval arguments (e.g. --sweep),
# EVAL_FOREIGN_SITES (default "nodejs erlang cmake": the development-set manuals whose identifiers
# make the "foreign" unanswerable questions; fetched by scripts/fetch_corpora.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HTML="${PYDOC_HTML:-/usr/share/doc/python3.11/html}"
WORK="${EVAL_DIR:-$ROOT/target/eval}"
CARGO="${CARGO:-cargo}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
PYTHON="${PYTHON:-python3}"

if [[ ! -f "$HTML/genindex-all.html" ]]; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "eval: installing Debian's python3.11-doc (the corpus)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11-doc >/dev/null
    else
        echo "eval: $HTML/genindex-all.html is missing: apt-get install python3.11-doc (or set PYDOC_HTML)" >&2
        exit 1
    fi
fi
mkdir -p "$WORK"

# 1. Questions, from the back-of-book index (deterministic).
"$PYTHON" "$ROOT/eval/make_questions.py" --index "$HTML/genindex-all.html" --out "$WORK/questions.jsonl"

# 2. The corpus: every HTML page except the index pages themselves (genindex*, py-modindex,
#    search), and without _sources/ (the reST text of every page again) or _static/.
CORPUS="$WORK/corpus"
listing="$(cd "$HTML" && find . -name '*.html' -not -name 'genindex*' -not -name 'py-modindex.html' \
    -not -name 'search.html' -not -path './_*' | LC_ALL=C sort)"
stamp="$(printf '%s\n' "$listing" | (cd "$HTML" && xargs sha256sum) | sha256sum | cut -c1-16)"
if [[ "$(cat "$WORK/corpus.stamp" 2>/dev/null)" != "$stamp" ]]; then
    rm -rf "$CORPUS" "$WORK/store" "$WORK/store.stamp"
    mkdir -p "$CORPUS"
    (cd "$HTML" && printf '%s\n' "$listing" | xargs cp --parents -t "$CORPUS")
    echo "$stamp" > "$WORK/corpus.stamp"
fi

# 3. The real binary and the evaluator.
CARGO_TARGET_DIR="$TARGET" "$CARGO" build --release -p ragsnap-cli -p ragsnap-eval
BIN="$TARGET/release"

# 4. The store (rebuilt only when the corpus changed; the embedding cache makes a rebuild cheap).
#    A store whose snapshots carry no refusal calibration (built before it existed) is rebuilt.
if [[ -d "$WORK/store/snapshots" ]] && ! grep -qs '"refusal"' "$WORK"/store/snapshots/*/MANIFEST.json; then
    EVAL_REBUILD=1
fi
if [[ "${EVAL_REBUILD:-0}" == 1 || "$(cat "$WORK/store.stamp" 2>/dev/null)" != "$stamp" ]]; then
    "$BIN/ragsnap" --store "$WORK/store" rebuild --force --source "$CORPUS" --url-prefix https://docs.python.org/3.11/ \
        --json > "$WORK/rebuild.json"
    echo "$stamp" > "$WORK/store.stamp"
fi

# 5. Unanswerable questions (off-topic, identifiers of other manuals absent from the corpus, near
#    misses), split into tuning and held-back halves. The other manuals come from the development
#    set's Debian packages (downloaded once into .cache/corpora/).
foreign_args=()
# shellcheck disable=SC2086
while IFS=$'\t' read -r _name _pkg _ver _gen folder _pages; do
    [[ -n "${folder:-}" ]] && foreign_args+=(--foreign "$folder")
done < <(bash "$ROOT/scripts/fetch_corpora.sh" ${EVAL_FOREIGN_SITES:-nodejs erlang cmake})
if [[ ${#foreign_args[@]} -eq 0 ]]; then
    echo "eval: no other manual could be fetched; the foreign-identifier set will be empty" >&2
fi
"$PYTHON" "$ROOT/eval/make_refusal_sets.py" --corpus "$CORPUS" "${foreign_args[@]}" --out "$WORK/refusal.jsonl"

# 6. The hub pages (tables of contents, indexes) as the chunker recognises them: they are not
#    indexed, and the report counts how many top-10 results came from them (0 unless the store
#    was built by an older chunker).
"$BIN/ragsnap" chunk --source "$CORPUS" --json 2>/dev/null \
    | "$PYTHON" -c 'import json, sys
for line in sys.stdin:
    d = json.loads(line)
    if d.get("hub"):
        print(d["source"])' > "$WORK/hubs.txt"

# 7. Measure.
# shellcheck disable=SC2086
"$BIN/ragsnap-eval" --store "$WORK/store" --questions "$WORK/questions.jsonl" \
    --offtopic "$ROOT/eval/offtopic.txt" --refusal "$WORK/refusal.jsonl" --hubs "$WORK/hubs.txt" --json "$WORK/results.json" \
    ${EVAL_ARGS:-} | tee "$WORK/results.md"
echo "eval: results in $WORK/results.md and $WORK/results.json" >&2
