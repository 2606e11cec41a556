#!/usr/bin/env bash
# A long schemathesis run over a real `lookalike serve` (tests/service/test_schema_fuzz.py runs a
# short one): no 5xx, every answer conforms to /openapi.json.
#   bash scripts/fuzz-service.sh [EXAMPLES_PER_OPERATION]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-.venv/bin}"
WORK="$(mktemp -d)"
PORT="${PORT:-18765}"
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$BIN/lookalike" serve --db "$WORK/db.sqlite" --storage "$WORK/files" --port "$PORT" >"$WORK/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 60); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.5; done
KEY="$("$BIN/lookalike" keys create --tenant fuzz --db "$WORK/db.sqlite" 2>/dev/null)"
cd "$WORK"
"$BIN/schemathesis" run "http://127.0.0.1:$PORT/openapi.json" -H "Authorization: Bearer $KEY" \
    --checks not_a_server_error,response_schema_conformance --max-examples "${1:-500}"
if grep -qi "internal server error\|Traceback" serve.log; then
    echo "the server logged an internal error:" >&2; grep -i -A20 "Traceback" serve.log >&2; exit 1
fi
