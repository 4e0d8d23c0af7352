#!/usr/bin/env bash
# The `make demo` walk-through: index the bundled fixture site, ask three questions (two
# answered, one refused by the similarity floor), change a page and rebuild (only the changed
# chunks are embedded), roll back to the first snapshot, verify.
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
echo
echo "demo finished: store in $STORE"
