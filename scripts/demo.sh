#!/usr/bin/env bash
# The `make demo` walk-through: index the bundled fixture site, ask three questions (two
# answered, one refused by the similarity floor), change a page and rebuild (only the changed
# chunks are embedded), roll back to the first snapshot, verify; then serve the store over HTTP,
# ask it one question and stop it.
set -euo pipefail
RAGSNAP=${1:?path to the ragsnap binary}
STORE=${2:?store folder}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SITE="$ROOT/target/demo-site"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
rs() { echo "\$ ragsnap $*"; "$RAGSNAP" --store "$STORE" "$@"; }

rm -rf "$STORE" "$SITE"
mkdir -p "$(dirname "$SITE")"
cp -r "$ROOT/fixtures/site" "$SITE"

step "1. Build the first snapshot from the fixture site"
rs rebuild --source "$SITE" --url-prefix "https://docs.tidewater.example/"
FIRST=$("$RAGSNAP" --store "$STORE" snapshots --json | python3 -c 'import json,sys; print([s["id"] for s in json.load(sys.stdin) if s["is_head"]][0])')

step "2. Three questions"
rs query "How many times does a failed job get retried, and how long is the wait between attempts?" -k 3
rs query "How do I rotate the TLS certificate without restarting the server?" -k 3
set +e
rs query "What is a good recipe for sourdough bread?" -k 3
code=$?
set -e
if [ "$code" -ne 3 ]; then echo "expected exit code 3 (no confident match), got $code" >&2; exit 1; fi
echo "(exit code 3: refused by the similarity floor, as intended)"

step "3. Change one page and rebuild: only its changed chunks are embedded"
python3 - "$SITE/guide/retries.html" <<'PY'
import sys
p = sys.argv[1]
s = open(p, encoding="utf-8").read()
marker = "</main>" if "</main>" in s else "</article>"
extra = ("<h2>Retry budgets per tenant</h2><p>Since 2.2 each tenant can be given a retry budget: "
         "once a tenant's failed jobs have used the budget for the hour, further retries wait in the "
         "dead-letter queue until the next hour starts.</p>")
open(p, "w", encoding="utf-8").write(s.replace(marker, extra + marker, 1))
PY
rs rebuild --source "$SITE" --url-prefix "https://docs.tidewater.example/"
rs snapshots

step "4. Roll back to the first snapshot"
rs rollback --to "$FIRST" --reason "demo: back to the first build"
rs snapshots

step "5. Verify every snapshot"
rs verify --all

step "6. Who did what: the audit log"
rs history

step "7. Serve the store over HTTP, ask one question, stop"
SERVE_OUT="$(dirname "$STORE")/demo-serve.out"
"$RAGSNAP" --store "$STORE" serve --listen 127.0.0.1:0 >"$SERVE_OUT" &
SERVE_PID=$!
trap 'kill "$SERVE_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  grep -q "listening on" "$SERVE_OUT" && break
  kill -0 "$SERVE_PID" 2>/dev/null || { echo "ragsnap serve exited early" >&2; exit 1; }
  sleep 0.1
done
URL=$(grep -o 'http://[0-9.:]*' "$SERVE_OUT" | head -n 1)
[ -n "$URL" ] || { echo "ragsnap serve did not say where it listens" >&2; exit 1; }
cat "$SERVE_OUT"
echo "POST $URL/v1/query (what curl -s $URL/v1/query -d '{\"query\": \"How long is the wait between retries?\", \"k\": 2}' sends)"
python3 - "$URL" <<'PY'
import json, sys, urllib.request
base = sys.argv[1]
req = urllib.request.Request(base + "/v1/query", data=json.dumps(
    {"query": "How long is the wait between retries?", "k": 2}).encode(), headers={"Content-Type": "application/json"})
a = json.load(urllib.request.urlopen(req, timeout=30))
print(f"snapshot {a['snapshot_id']}  outcome {a['outcome']}")
for h in a["hits"]:
    print(f"  {h['score']:.3f}  {h['source_path']}  [{' > '.join(h['header_path'])}]")
ready = json.load(urllib.request.urlopen(base + "/readyz", timeout=10))
print(f"readyz: ready={ready['ready']}")
PY
kill "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
trap - EXIT

echo
echo "demo finished: store in $STORE"
