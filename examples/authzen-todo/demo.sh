#!/usr/bin/env bash
# `make demo`, HTTP part: serve a copy of this workspace with a fresh API key and show a working
# AuthZEN evaluation with curl. On a terminal it serves until Ctrl-C (DEMO_SECONDS bounds it);
# elsewhere (CI, scripts) it stops after the example.
set -euo pipefail
VENV=${VENV:-.venv}
PORT=${DEMO_PORT:-8181}
DIR=.vigil/demo/authzen-todo
rm -rf "$DIR" && mkdir -p "$(dirname "$DIR")" && cp -r examples/authzen-todo "$DIR" && rm -f "$DIR/demo.sh"
KEY=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))')
VIGIL_API_KEYS="$KEY" "$VENV/bin/vigil" serve --workspace "$DIR" --port "$PORT" 2>"$DIR/server.log" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 $PID 2>/dev/null || { cat "$DIR/server.log"; exit 1; }
  sleep 0.1
done
BODY='{"subject":{"type":"user","id":"CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"},"action":{"name":"can_update_todo"},"resource":{"type":"todo","id":"42","properties":{"ownerID":"morty@the-citadel.com"}}}'
CURL="curl -s -X POST http://127.0.0.1:$PORT/access/v1/evaluation -H 'Authorization: Bearer $KEY' -H 'Content-Type: application/json' -H 'X-Request-ID: demo-1' -d '$BODY'"
echo
echo "vigil serve is running on http://127.0.0.1:$PORT (workspace $DIR, log $DIR/server.log)."
echo "Morty (editor) updating his own todo:"
echo
echo "  $CURL"
echo
eval "$CURL"
echo
echo
echo "Metadata: curl -s http://127.0.0.1:$PORT/.well-known/authzen-configuration   Metrics: curl -s http://127.0.0.1:$PORT/metrics"
if [ -n "${DEMO_SECONDS:-}" ]; then
  sleep "$DEMO_SECONDS"
elif [ -t 0 ] && [ -t 1 ]; then
  echo "Ctrl-C stops the server."; wait $PID
else
  echo "(not a terminal: stopping the server; run 'vigil serve' yourself to keep one up)"
fi
