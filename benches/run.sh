#!/usr/bin/env bash
# ragsnap benchmarks (`make bench`, after `make setup`). See benches/README.md for what each
# number means and the results measured on the reference machine.
#
#   bash benches/run.sh                 # everything: ingest embed rebuild index query scale, then tables
#   bash benches/run.sh embed           # one part (several may be named); missing inputs are made
#   bash benches/run.sh embed-head      # only the ragsnap-vs-Python embedding rows
#   bash benches/run.sh models          # embedding throughput of each fetched model (BENCH_MODELS)
#   bash benches/run.sh report          # print the tables from the last results only
#
# Inputs made on demand (all under the git-ignored benches/.data/):
#   corpus     Debian's python3.11-doc pages (installed with apt-get when missing), copied to
#              .data/pydoc so the rebuild bench can edit 1% of them
#   venv       benches/.venv with the pinned Python tools of benches/requirements.txt
#   sample     5,000 prose chunks for the embedding bench (made by the ingest part)
#   store      .data/store, the python3.11-doc store (made by the rebuild part)
#
# Sizes can be lowered for a quick smoke run (numbers then mean nothing), e.g.
#   BENCH_DATA=/tmp/smoke REBUILD_PAGES=40 EMBED_TEXTS=100 EMBED_EXPLORE=50 SYNTH_N=5000 QUERIES=100 \
#     bash benches/run.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
DATA="${BENCH_DATA:-$HERE/.data}"
RESULTS="$DATA/results"
VENV="$HERE/.venv"
PY="$VENV/bin/python"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release"
DOC_HTML="${DOC_HTML:-/usr/share/doc/python3.11/html}"  # another unpacked copy may be named
CORPUS="$DATA/pydoc"
STORE="$DATA/store"
SAMPLE="$DATA/embed-texts.json"
export RAGSNAP_CACHE="${RAGSNAP_CACHE:-$ROOT/.cache/runtime}"
MODEL_DIR="$RAGSNAP_CACHE/models/minilm-l6-int8"

EMBED_TEXTS="${EMBED_TEXTS:-5000}"        # texts of the headline embedding runs
EMBED_EXPLORE="${EMBED_EXPLORE:-1000}"    # texts of the batch / opt-level / process exploration
SYNTH_N="${SYNTH_N:-100000}"              # synthetic index size
HNSW_M="${HNSW_M:-16}"
HNSW_EFC="${HNSW_EFC:-200}"
QUERIES="${QUERIES:-1000}"
REBUILD_PAGES="${REBUILD_PAGES:-}"         # empty: every page (smoke runs may take the first N)

log() { printf '\n== %s  [load %s]\n' "$*" "$(cut -d' ' -f1-3 /proc/loadavg)" >&2; }
die() { echo "benches/run.sh: $*" >&2; exit 1; }

# Run a command, append its JSON lines to results/<part>.jsonl, and echo them.
record() {
  local part="$1"; shift
  local out
  out="$("$@")" || die "failed: $*"
  printf '%s\n' "$out" | grep '^{' | tee -a "$RESULTS/$part.jsonl" >&2
}

# ---------------------------------------------------------------------------------------------
ensure_runtime() {
  [[ -f "$MODEL_DIR/model.onnx" && -f "$RAGSNAP_CACHE/onnxruntime/libonnxruntime.so.1.31.1" ]] \
    || die "runtime pieces missing under $RAGSNAP_CACHE: run \`make setup\` first"
}

ensure_corpus() {
  [[ -f "$CORPUS/.complete" ]] && return  # already copied (the system package may be gone since)
  if [[ ! -d "$DOC_HTML" ]]; then
    log "installing Debian's python3.11-doc"
    local sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq python3.11-doc >/dev/null \
      || die "could not install python3.11-doc"
  fi
  if [[ ! -f "$CORPUS/.complete" ]]; then
    log "copying the python3.11-doc pages to $CORPUS"
    rm -rf "$CORPUS"; mkdir -p "$CORPUS"
    (cd "$DOC_HTML" && find . -name '*.html' -type f -print0 | xargs -0 cp --parents -t "$CORPUS")
    touch "$CORPUS/.complete"
  fi
}

ensure_venv() {
  if [[ ! -x "$PY" ]] || ! cmp -s "$HERE/requirements.txt" "$VENV/.requirements.txt"; then
    log "making $VENV (pinned: benches/requirements.txt)"
    rm -rf "$VENV"
    "${PYTHON:-python3}" -m venv "$VENV"
    "$PY" -m pip install -q --disable-pip-version-check -r "$HERE/requirements.txt"
    cp "$HERE/requirements.txt" "$VENV/.requirements.txt"
  fi
}

ensure_build() {
  if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
    log "cargo build --release -p ragsnap-benches -p ragsnap-cli (target $TARGET)"
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release --quiet -p ragsnap-benches -p ragsnap-cli)
  fi
}

setup() {
  mkdir -p "$RESULTS"
  ensure_runtime
  ensure_corpus
  # Only the Python reference tools need the venv; the other scripts use the standard library.
  if [[ -n "${STDLIB_ONLY:-}" && ! -x "$PY" ]]; then PY="${PYTHON:-python3}"; else ensure_venv; fi
  ensure_build
}

ensure_sample() {
  [[ -f "$SAMPLE" ]] && return
  log "making the embedding sample (model-token chunking of the corpus)"
  record sample "$BIN/bench_ingest" --corpus "$CORPUS" --threads 2 --tokens model --reps 1 \
    --dump-sample "$SAMPLE" --sample 5000
}

ensure_store() {
  [[ -f "$STORE/catalog.sqlite" ]] && return
  log "no store yet: running the rebuild part first"
  part_rebuild
}

# ---------------------------------------------------------------------------------------------
part_ingest() {
  : >"$RESULTS/ingest.jsonl"
  find "$CORPUS/" -name '*.html' -type f | LC_ALL=C sort >"$DATA/pages.txt"  # "/": $CORPUS may be a symlink
  for t in 1 2; do
    log "ingest: ragsnap, approx_token_count, $t thread(s), median of 3"
    RAYON_NUM_THREADS=$t record ingest "$BIN/bench_ingest" --corpus "$CORPUS" --threads $t --tokens approx --reps 3
  done
  for t in 1 2; do
    log "ingest: ragsnap, model tokenizer through chunk_doc (what rebuild uses), $t thread(s), 1 run"
    RAYON_NUM_THREADS=$t record ingest "$BIN/bench_ingest" --corpus "$CORPUS" --threads $t --tokens model --reps 1
  done
  for t in 1 2; do
    log "ingest: ragsnap, model tokenizer through chunk_doc_cached (per-word counts), $t thread(s), median of 3"
    RAYON_NUM_THREADS=$t record ingest "$BIN/bench_ingest" --corpus "$CORPUS" --threads $t --tokens model-cached \
      --reps 3
  done
  for p in 1 2; do
    log "ingest: trafilatura + MarkdownHeaderTextSplitter, $p process(es)"
    record ingest "$PY" "$HERE/python/ingest_ref.py" --pages "$DATA/pages.txt" --procs $p
  done
  if [[ ! -f "$SAMPLE" ]]; then ensure_sample; fi
}

embed_pair() {  # threads batch opt limit [extra rust args]
  local t=$1 b=$2 o=$3 n=$4; shift 4
  RAYON_NUM_THREADS=$t record embed "$BIN/bench_embed" --texts "$SAMPLE" --limit "$n" \
    --threads $t --batch $b --opt $o --dump "$DATA/vectors-rust.f32" "$@"
  RAYON_NUM_THREADS=$t record embed "$PY" "$HERE/python/embed_ref.py" --model-dir "$MODEL_DIR" \
    --texts "$SAMPLE" --limit "$n" --threads $t --batch $b --opt $o --compare "$DATA/vectors-rust.f32" "$@"
}

embed_head() {
  for t in 1 2; do
    log "embed: $EMBED_TEXTS texts, $t thread(s), batch 32, opt 3, bucketed: ragsnap then Python"
    embed_pair $t 32 3 "$EMBED_TEXTS"
  done
  # ragsnap's default for bulk embedding: one single-threaded session per core (bulk_sessions = 0).
  log "embed: $EMBED_TEXTS texts, ragsnap default for rebuilds: 2 single-threaded sessions"
  RAYON_NUM_THREADS=2 record embed "$BIN/bench_embed" --texts "$SAMPLE" --limit "$EMBED_TEXTS" \
    --threads 1 --bulk-sessions 2 --batch 32 --opt 3
  # On a shared 2-core machine the load can change between two sequential runs; with one
  # thread each, both can also run at the same time, one core each, under the same load.
  log "embed: $EMBED_TEXTS texts, 1 thread, ragsnap and Python at the same time (one core each)"
  local rs="$DATA/embed-concurrent-rust.json" py="$DATA/embed-concurrent-python.json"
  RAYON_NUM_THREADS=1 "$BIN/bench_embed" --texts "$SAMPLE" --limit "$EMBED_TEXTS" --threads 1 --batch 32 \
    --opt 3 >"$rs" &
  local pid=$!
  RAYON_NUM_THREADS=1 "$PY" "$HERE/python/embed_ref.py" --model-dir "$MODEL_DIR" --texts "$SAMPLE" \
    --limit "$EMBED_TEXTS" --threads 1 --batch 32 --opt 3 >"$py"
  wait $pid || die "concurrent ragsnap embed failed"
  for f in "$rs" "$py"; do
    "$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); r["concurrent"]=True; print(json.dumps(r))' "$f" \
      | tee -a "$RESULTS/embed.jsonl" >&2
  done
}

# `embed-head`: only the ragsnap-vs-Python rows (re-run them alone when the load was uneven).
part_embed-head() {
  ensure_sample
  [[ -f "$RESULTS/embed.jsonl" ]] && grep -v '"texts": *'"$EMBED_TEXTS"'[,}]' "$RESULTS/embed.jsonl" \
    | grep -v '"texts":'"$EMBED_TEXTS"'[,}]' >"$RESULTS/embed.jsonl.keep" || true
  mv -f "$RESULTS/embed.jsonl.keep" "$RESULTS/embed.jsonl" 2>/dev/null || : >"$RESULTS/embed.jsonl"
  embed_head
}

part_embed() {
  ensure_sample
  : >"$RESULTS/embed.jsonl"
  embed_head
  # Exploration, ragsnap only, on the first $EMBED_EXPLORE texts of the same sample, 2 threads.
  local x=(--texts "$SAMPLE" --limit "$EMBED_EXPLORE")
  for b in 32 16 64; do
    log "embed: batch $b, 2 threads, $EMBED_EXPLORE texts"
    RAYON_NUM_THREADS=2 record embed "$BIN/bench_embed" "${x[@]}" --threads 2 --batch $b --opt 3
  done
  log "embed: naive batching (the sample's shuffled order), 2 threads, $EMBED_EXPLORE texts"
  RAYON_NUM_THREADS=2 record embed "$BIN/bench_embed" "${x[@]}" --threads 2 --batch 32 --opt 3 --naive
  for o in 0 1 2; do
    log "embed: graph optimisation level $o, 2 threads, $EMBED_EXPLORE texts"
    RAYON_NUM_THREADS=2 record embed "$BIN/bench_embed" "${x[@]}" --threads 2 --batch 32 --opt $o
  done
  log "embed: 2 processes x 1 thread, $EMBED_EXPLORE texts"
  RAYON_NUM_THREADS=1 record embed "$BIN/bench_embed" "${x[@]}" --procs 2 --threads 1 --batch 32 --opt 3
}

part_rebuild() {
  : >"$RESULTS/rebuild.jsonl"
  local work="$DATA/rebuild-src"
  rm -rf "$STORE" "$work"
  if [[ -n "$REBUILD_PAGES" ]]; then
    mkdir -p "$work"
    (cd "$CORPUS" && find . -name '*.html' -type f | LC_ALL=C sort | head -n "$REBUILD_PAGES" \
      | xargs cp --parents -t "$work")
  else
    cp -r "$CORPUS" "$work"; rm -f "$work/.complete"
  fi
  log "rebuild: full (empty store, empty embedding cache)"
  rebuild_once full "$work"
  # 1% of the pages (every 100th in sorted order) get a new paragraph in their main content.
  local changed=0
  while IFS= read -r f; do
    sed -i '0,/role="main">/s//role="main"><p>Benchmark edit: this page changed for the incremental rebuild.<\/p>/' "$f"
    changed=$((changed + 1))
  done < <(find "$work" -name '*.html' -type f | LC_ALL=C sort | awk 'NR % 100 == 1')
  log "rebuild: incremental ($changed pages changed)"
  rebuild_once incremental "$work" "$changed"
}

# `rebuild-incremental`: the incremental row alone, on a copy of the store and source the last
# `rebuild` part left (so the query benchmark's store is not touched). A first, unrecorded run
# brings head up to the current tool (e.g. per-document chunk keys), then 1% of the pages get a
# second edit and the timed run follows. The full row stays the one from the last `rebuild` run.
part_rebuild-incremental() {
  [[ -d "$STORE/snapshots" && -d "$DATA/rebuild-src" ]] || die "run 'bash benches/run.sh rebuild' first"
  local store="$DATA/store-incremental" work="$DATA/rebuild-src-incremental"
  rm -rf "$store" "$work"
  cp -r "$STORE" "$store"; cp -r "$DATA/rebuild-src" "$work"
  log "rebuild-incremental: warm-up run on a copy of the store (not recorded)"
  STORE="$store" rebuild_once warmup "$work" >/dev/null 2>&1
  local changed=0
  while IFS= read -r f; do
    sed -i '0,/role="main">/s//role="main"><p>Second benchmark edit: the incremental rebuild reads this page again.<\/p>/' "$f"
    changed=$((changed + 1))
  done < <(find "$work" -name '*.html' -type f | LC_ALL=C sort | awk 'NR % 100 == 1')
  log "rebuild-incremental: $changed pages changed"
  grep -v -e '"label": "incremental"' -e '"label": "warmup"' "$RESULTS/rebuild.jsonl" >"$RESULTS/rebuild.jsonl.keep" || true
  mv -f "$RESULTS/rebuild.jsonl.keep" "$RESULTS/rebuild.jsonl"
  STORE="$store" rebuild_once incremental "$work" "$changed"
  rm -rf "$store" "$work"
}

rebuild_once() {  # label dir [changed]
  local label=$1 dir=$2 changed=${3:-0} t0 t1
  t0=$(date +%s.%N)
  (cd "$DATA" && "$BIN/ragsnap" --quiet --store "$STORE" rebuild --source "$dir" \
     --url-prefix https://docs.python.org/3.11/ --json) >"$DATA/rebuild-$label.json" \
    || die "ragsnap rebuild ($label) failed"
  t1=$(date +%s.%N)
  "$PY" - "$DATA/rebuild-$label.json" "$label" "$changed" "$t0" "$t1" <<'EOF' | tee -a "$RESULTS/rebuild.jsonl" >&2
import json, sys
rep = json.load(open(sys.argv[1]))
load = open("/proc/loadavg").read().split()[:3]
print(json.dumps({"bench": "rebuild", "label": sys.argv[2], "pages_changed": int(sys.argv[3]),
  "wall_secs": float(sys.argv[5]) - float(sys.argv[4]), "timings": rep["timings"],
  "files_seen": rep["files_seen"], "documents_indexed": rep["documents_indexed"], "chunks": rep["chunks"],
  "distinct_chunks": rep["distinct_chunks"], "cache_hits": rep["cache_hits"], "cache_misses": rep["cache_misses"],
  "index_kind": rep["index_kind"], "recall": rep["recall"], "ef_search": rep["ef_search"], "load": " ".join(load)}))
EOF
}

index_on() {  # data-dir label
  local d=$1 label=$2
  log "index ($label): ragsnap HnswIndex (hnsw_rs + DotDistance), M=$HNSW_M efc=$HNSW_EFC"
  record index "$BIN/bench_index" run --data "$d" --dist ragsnap --m $HNSW_M --efc $HNSW_EFC
  log "index ($label): hnswlib"
  record index "$PY" "$HERE/python/index_ref.py" --lib hnswlib --data "$d" --m $HNSW_M --efc $HNSW_EFC
  log "index ($label): faiss IndexHNSWFlat (inner product)"
  record index "$PY" "$HERE/python/index_ref.py" --lib faiss --data "$d" --m $HNSW_M --efc $HNSW_EFC
  log "index ($label): hnsw_rs search over ragsnap's DotDistance, counting distance evaluations"
  record index "$BIN/bench_index" run --data "$d" --dist fast --m $HNSW_M --efc $HNSW_EFC
}

part_index() {
  ensure_store
  : >"$RESULTS/index.jsonl"
  log "index: preparing vectors (real: the store's head snapshot; synthetic: $SYNTH_N clustered)"
  record index "$BIN/bench_index" prepare-real --store "$STORE" --out "$DATA/vec-real" --queries 1000
  [[ -f "$DATA/vec-synth-$SYNTH_N/meta.json" ]] \
    || record index "$BIN/bench_index" prepare-synth --out "$DATA/vec-synth-$SYNTH_N" --n "$SYNTH_N"
  index_on "$DATA/vec-real" real
  index_on "$DATA/vec-synth-$SYNTH_N" synthetic
}

part_query() {
  ensure_store
  : >"$RESULTS/query.jsonl"
  log "query: snapshot open (first in a new process, then warm)"
  record query "$BIN/bench_query" open --store "$STORE" --reps 10
  log "query: verify"
  record query "$BIN/bench_query" verify --store "$STORE" --reps 3
  log "query: rollback"
  record query "$BIN/bench_query" rollback --store "$STORE" --reps 3
  log "query: latency, single thread, $QUERIES queries"
  RAYON_NUM_THREADS=1 record query "$BIN/bench_query" latency --store "$STORE" --queries "$QUERIES"
  log "query: peak RSS of open + $QUERIES queries"
  RAYON_NUM_THREADS=1 record query "$BIN/bench_query" rss --store "$STORE" --queries "$QUERIES"
  log "query: ragsnap CLI, one query (process start to exit)"
  "$PY" - "$BIN/ragsnap" "$STORE" "$DATA" <<'EOF' | tee -a "$RESULTS/query.jsonl" >&2
import json, subprocess, sys, time
exe, store, cwd = sys.argv[1:4]
walls = []
for _ in range(3):
    t = time.perf_counter()
    subprocess.run([exe, "--quiet", "--store", store, "query", "how do I read a file line by line?"],
                   cwd=cwd, stdout=subprocess.DEVNULL, check=False)
    walls.append(time.perf_counter() - t)
print(json.dumps({"bench": "cli-query", "wall_secs": sorted(walls)[1], "runs": walls,
                  "load": " ".join(open("/proc/loadavg").read().split()[:3])}))
EOF
}

# `ragsnap serve` under load (benches/serve_load.py: 1, 4, 10 and 16x the concurrency limit, dense
# and hybrid, peak RSS per level) next to the in-process library asking the same questions in the
# same modes (bench_query inproc, 1 thread and as many threads as the limit), then publish and pull
# of the whole store through a local-folder remote.
part_serve() {
  ensure_store
  : >"$RESULTS/serve.jsonl"
  local q="$DATA/serve-queries.jsonl" limit; limit="$(nproc)"
  printf '%s\n' '{"question": "how do I read a file line by line?"}' \
    '{"question": "what does the walrus operator do?"}' '{"question": "how do I sort a dict by value?"}' \
    '{"question": "difference between a list and a tuple"}' '{"question": "how to start a subprocess and read its output"}' \
    '{"question": "parse command line arguments with subcommands"}' '{"question": "format a datetime as ISO 8601"}' \
    '{"question": "who won the 1998 football world cup?"}' >"$q"
  log "serve: the in-process library, same questions and modes (1 and $limit threads)"
  (cd "$DATA" && RAYON_NUM_THREADS=1 record serve "$BIN/bench_query" inproc --store "$STORE" --questions "$q" \
    --modes "${SERVE_MODES:-dense,hybrid}" --threads "1,$limit" --seconds "${SERVE_SECONDS:-15}")
  log "serve: load at 1, 4, 10 and 16x the concurrency limit ($limit)"
  (cd "$DATA" && record serve python3 "$HERE/serve_load.py" "$BIN/ragsnap" "$STORE" "$q" \
    --concurrency "$limit" --levels 1,4,10,16 --modes "${SERVE_MODES:-dense,hybrid}" --seconds "${SERVE_SECONDS:-15}")
  # The rebuild part leaves head = the 1%-changed build and HEAD~1 = the full one.
  log "serve: publish and pull through a local-folder remote (full snapshot, then the 1%-changed one)"
  rm -rf "$DATA/remote" "$DATA/replica"
  local t0 t1 t2 t3 t4
  t0=$(date +%s.%N); "$BIN/ragsnap" --store "$STORE" publish HEAD~1 --to "file://$DATA/remote" --json >"$DATA/publish.json"
  t1=$(date +%s.%N); "$BIN/ragsnap" --store "$DATA/replica" pull --from "file://$DATA/remote" --json >"$DATA/pull.json"
  t2=$(date +%s.%N); "$BIN/ragsnap" --store "$STORE" publish HEAD --to "file://$DATA/remote" --json >"$DATA/republish.json"
  t3=$(date +%s.%N); "$BIN/ragsnap" --store "$DATA/replica" pull --from "file://$DATA/remote" --json >"$DATA/repull.json"
  t4=$(date +%s.%N)
  python3 - "$DATA" "$t0" "$t1" "$t2" "$t3" "$t4" <<'EOF' | tee -a "$RESULTS/serve.jsonl" >&2
import json, sys
d, t0, t1, t2, t3, t4 = sys.argv[1], *map(float, sys.argv[2:])
pub, pull, pub2, pull2 = (json.load(open(f"{d}/{n}.json")) for n in ("publish", "pull", "republish", "repull"))
print(json.dumps({"bench": "publish-pull",
                  "full": {"publish_secs": round(t1 - t0, 2), "publish_bytes": pub["bytes_uploaded"],
                           "uploaded": pub["uploaded"], "pull_secs": round(t2 - t1, 2),
                           "pull_bytes": pull["bytes_downloaded"], "downloaded": pull["downloaded"]},
                  "changed_1pct": {"publish_secs": round(t3 - t2, 2), "publish_bytes": pub2["bytes_uploaded"],
                                   "uploaded": pub2["uploaded"], "already_there": pub2["already_there"],
                                   "pull_secs": round(t4 - t3, 2), "pull_bytes": pull2["bytes_downloaded"],
                                   "downloaded": pull2["downloaded"], "reused": pull2["reused"]}}))
EOF
}

# Per-query latency through the Python package against the library itself: the same store, the
# same questions, one intra-op thread each, dense and hybrid, in alternating rounds (the release
# wheel of `make python` is installed into benches/.venv).
part_python() {
  ensure_store
  : >"$RESULTS/python.jsonl"
  log "python: release wheel (make python), installed into $VENV"
  (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" make --no-print-directory python >&2)
  "$PY" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "$ROOT"/target/wheels/ragsnap-*.whl
  local q="$DATA/python-queries.json" rounds="${PY_ROUNDS:-3}"
  record python "$BIN/bench_modes" queries --store "$STORE" --n "${PY_QUERIES:-300}" --out "$q"
  for ((r = 1; r <= rounds; r++)); do
    for mode in dense hybrid; do
      log "python: round $r/$rounds, $mode: the library, then the Python package"
      RAYON_NUM_THREADS=1 record python "$BIN/bench_modes" latency --store "$STORE" --queries "$q" --mode "$mode"
      RAYON_NUM_THREADS=1 record python "$PY" "$HERE/python_latency.py" "$STORE" "$q" "$mode"
    done
  done
  "$PY" - "$RESULTS/python.jsonl" <<'EOF' | tee "$RESULTS/python.md" >&2
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"python-overhead"' in l]
print("| mode | Rust p50 ms | Python p50 ms | overhead p50 | Rust p99 ms | Python p99 ms | rounds |")
print("|---|---:|---:|---:|---:|---:|---:|")
for mode in ("dense", "hybrid"):
    side = {s: [r["latency_ms"] for r in rows if r["mode"] == mode and r["side"] == s] for s in ("rust", "python")}
    if not side["rust"] or not side["python"]:
        continue
    med = {s: {p: statistics.median(x[p] for x in side[s]) for p in ("p50", "p99")} for s in side}
    over = (med["python"]["p50"] / med["rust"]["p50"] - 1) * 100
    print(f"| {mode} | {med['rust']['p50']:.2f} | {med['python']['p50']:.2f} | {over:+.1f}% "
          f"| {med['rust']['p99']:.2f} | {med['python']['p99']:.2f} | {len(side['rust'])} |")
EOF
}

# The index stage alone at scale (benches/scale): a full build against a 1% update (added,
# removed) of it, recall@10 of each against exact search, peak RSS; one process per size.
# Builds only its own small package (the index crate), not the embedding runtime.
SCALE_SIZES="${SCALE_SIZES:-100000 500000}"
part_scale() {
  mkdir -p "$RESULTS"
  : >"$RESULTS/scale.jsonl"
  if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
    log "cargo build --release -p ragsnap-bench-scale"
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release --quiet -p ragsnap-bench-scale)
  fi
  for n in $SCALE_SIZES; do
    log "scale: $n vectors, full build then 1% added and 1% removed"
    record scale "$BIN/bench_scale" --n "$n" --m "$HNSW_M" --efc "$HNSW_EFC" --queries "${SCALE_QUERIES:-300}"
  done
  python3 - "$RESULTS/scale.jsonl" <<'EOF2'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def at(r, key):
    a = r[key]
    return f"{a['recall']:.3f} @ ef {a['ef']}" if a else "not reached"
def rec(curve, ef):
    return next((f"{x:.3f}" for e, x in curve if e == ef), "-")
print("| vectors | full build s | 1% added s (share) | 1% removed s (share) | recall@10 full / added / removed at ef 64 | first ef ≥ target: full / added / removed | peak RSS MiB |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['n']:,} | {r['build_secs']:.1f} | {r['add_secs']:.2f} ({100*r['add_share_of_build']:.1f}%) "
          f"| {r['remove_secs']:.2f} ({100*r['remove_share_of_build']:.1f}%) "
          f"| {rec(r['recall_full'], 64)} / {rec(r['recall_added'], 64)} / {rec(r['recall_removed'], 64)} "
          f"| {at(r, 'full_at_target')} / {at(r, 'added_at_target')} / {at(r, 'removed_at_target')} | {r['peak_rss_mib']:,.0f} |")
EOF2
}

# `models`: embedding throughput of each catalogued model, ragsnap against Python onnxruntime
# running the same file on the same texts (the first $MODELS_TEXTS texts of the sample), at 1
# and 2 threads. BENCH_MODELS names the models (default: every one fetched into the cache).
MODELS_TEXTS="${MODELS_TEXTS:-$EMBED_TEXTS}"
part_models() {
  ensure_sample
  : >"$RESULTS/models.jsonl"
  local models=(${BENCH_MODELS:-})
  if [[ ${#models[@]} -eq 0 ]]; then
    for d in "$RAGSNAP_CACHE"/models/*/; do
      [[ -f "$d/model.toml" && -f "$d/model.onnx" ]] && models+=("$(basename "$d")")
    done
  fi
  local m t dir
  for m in "${models[@]}"; do
    dir="$RAGSNAP_CACHE/models/$m"
    [[ -f "$dir/model.toml" ]] || die "model $m is not fetched: make setup MODELS=$m"
    for t in 1 2; do
      log "models: $m, $MODELS_TEXTS texts, $t thread(s), batch 32: ragsnap then Python"
      RAGSNAP_MODEL_DIR="$dir" RAYON_NUM_THREADS=$t "$BIN/bench_embed" --texts "$SAMPLE" --limit "$MODELS_TEXTS" \
        --threads $t --batch 32 --opt 3 --dump "$DATA/vectors-rust.f32" | grep '^{' | tag_model "$m"
      RAYON_NUM_THREADS=$t "$PY" "$HERE/python/embed_ref.py" --model-dir "$dir" --texts "$SAMPLE" \
        --limit "$MODELS_TEXTS" --threads $t --batch 32 --opt 3 --compare "$DATA/vectors-rust.f32" | tag_model "$m"
    done
  done
}

# Add "model": NAME to each JSON line on stdin and append them to results/models.jsonl.
tag_model() {
  "$PY" -c 'import json, sys
for line in sys.stdin:
    if line.startswith("{"):
        r = json.loads(line); r["model"] = sys.argv[1]; print(json.dumps(r))' "$1" | tee -a "$RESULTS/models.jsonl" >&2
}

report() {
  "$PY" "$HERE/python/report.py" "$RESULTS" | tee "$RESULTS/tables.md"
}

# ---------------------------------------------------------------------------------------------
main() {
  local parts=("$@")
  [[ ${#parts[@]} -gt 0 ]] || parts=(ingest embed rebuild index query scale)
  if [[ "${parts[*]}" == "report" ]]; then report; return; fi
  if [[ "${parts[*]}" == "scale" ]]; then part_scale; return; fi  # needs neither runtime nor corpus
  local started; started=$(date +%s)
  case " ${parts[*]} " in *" ingest "* | *" embed"* | *" index "*) ;; *) STDLIB_ONLY=1 ;; esac
  setup
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" >&2
  for p in "${parts[@]}"; do
    case "$p" in
      models) part_models ;;
      ingest | embed | embed-head | rebuild | rebuild-incremental | index | query | serve | scale) "part_$p" ;;
      python) part_python ;;
      report) ;;
      *) die "unknown part $p (ingest embed embed-head rebuild rebuild-incremental index query serve scale python models report)" ;;
    esac
  done
  log "done in $(( $(date +%s) - started )) s"
  report
}

main "$@"
