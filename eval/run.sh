#!/usr/bin/env bash
# make eval: build the question set, index the Python 3.11 documentation with the real ragsnap
# binary, and measure dense, lexical and hybrid retrieval. See eval/README.md.
#
# EVAL_MODEL=NAME measures a catalogued model (`ragsnap models`; fetch it first) with its own
# store, $EVAL_DIR/store-NAME, and results in $EVAL_DIR/results-NAME.{md,json}; unset, the
# default model with $EVAL_DIR/store as before. EVAL_PAGE_SHARE=N keeps only the pages whose
# path's sha256 starts with a hex digit below 16/N (a fixed subset, the same for every model;
# questions about other pages are dropped by the evaluator); its corpus and stores live in
# $EVAL_DIR/share-N/.
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
SHARE="${EVAL_PAGE_SHARE:-1}"
if ! [[ "$SHARE" =~ ^(1|2|4|8|16)$ ]]; then
    echo "eval: EVAL_PAGE_SHARE must be 1, 2, 4, 8 or 16 (got $SHARE)" >&2
    exit 2
fi
if [[ "$SHARE" != 1 ]]; then
    WORK="$WORK/share-$SHARE"
fi
MODEL="${EVAL_MODEL:-}"
STORE_NAME="store${MODEL:+-$MODEL}"
RESULTS_NAME="results${MODEL:+-$MODEL}"
if [[ -n "$MODEL" ]]; then
    export RAGSNAP_MODEL="$MODEL"
    unset RAGSNAP_MODEL_DIR
fi
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
if [[ "$SHARE" != 1 ]]; then
    # Keep a page when the first hex digit of sha256(path) is below 16 / SHARE.
    listing="$(printf '%s\n' "$listing" | "$PYTHON" -c 'import hashlib, sys
n = 16 // int(sys.argv[1])
for line in sys.stdin:
    p = line.rstrip("\n")
    if p and int(hashlib.sha256(p.encode()).hexdigest()[0], 16) < n:
        print(p)' "$SHARE")"
fi
stamp="$(printf '%s\n' "$listing" | (cd "$HTML" && xargs sha256sum) | sha256sum | cut -c1-16)"
if [[ "$(cat "$WORK/corpus.stamp" 2>/dev/null)" != "$stamp" ]]; then
    rm -rf "$CORPUS" "$WORK"/store "$WORK"/store-* "$WORK"/store*.stamp
    mkdir -p "$CORPUS"
    (cd "$HTML" && printf '%s\n' "$listing" | xargs cp --parents -t "$CORPUS")
    echo "$stamp" > "$WORK/corpus.stamp"
fi

# 3. The real binary and the evaluator.
# EVAL_BIN=DIR runs the ragsnap and ragsnap-eval binaries in DIR instead of building them.
if [[ -n "${EVAL_BIN:-}" ]]; then
    BIN="$EVAL_BIN"
else
    CARGO_TARGET_DIR="$TARGET" "$CARGO" build --release -p ragsnap-cli -p ragsnap-eval
    BIN="$TARGET/release"
fi

# 4. The store (rebuilt only when the corpus changed; the embedding cache makes a rebuild cheap).
#    A store whose snapshots carry no refusal calibration (built before it existed) is rebuilt.
STORE="$WORK/$STORE_NAME"
if [[ -d "$STORE/snapshots" ]] && ! grep -qs '"refusal"' "$STORE"/snapshots/*/MANIFEST.json; then
    EVAL_REBUILD=1
fi
if [[ "${EVAL_REBUILD:-0}" == 1 || "$(cat "$STORE.stamp" 2>/dev/null)" != "$stamp" ]]; then
    "$BIN/ragsnap" --store "$STORE" rebuild --force --allow-model-change --source "$CORPUS" \
        --url-prefix https://docs.python.org/3.11/ --json > "$WORK/rebuild${MODEL:+-$MODEL}.json"
    echo "$stamp" > "$STORE.stamp"
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
"$BIN/ragsnap-eval" --store "$STORE" --questions "$WORK/questions.jsonl" \
    --offtopic "$ROOT/eval/offtopic.txt" --refusal "$WORK/refusal.jsonl" --hubs "$WORK/hubs.txt" \
    --json "$WORK/$RESULTS_NAME.json" ${EVAL_ARGS:-} | tee "$WORK/$RESULTS_NAME.md"
echo "eval: results in $WORK/$RESULTS_NAME.md and $WORK/$RESULTS_NAME.json" >&2
