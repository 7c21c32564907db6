#!/usr/bin/env bash
# Drives `gemma serve` with clients the C# tests do not use: the official `openai` JS SDK, LangChain's ChatOpenAI and
# the Vercel AI SDK's OpenAI-compatible provider
# (versions pinned in scripts/js-client/package.json), plus raw HTTP edge cases; prints one PASS/FAIL line per check
# and exits 1 when any fails. Needs node and npm with registry access, so it is NOT part of CI (which stays hermetic).
#
#   scripts/check-js-client.sh                     # builds gemma, serves the demo model on a free port, runs the checks
#   scripts/check-js-client.sh http://host:port/   # checks a server already running (GEMMA_API_KEY = its key)
#   GEMMA=path/to/gemma scripts/check-js-client.sh # serves with that executable (e.g. the Native AOT binary)
#   OPENAI_JS=6.30.1 scripts/check-js-client.sh    # another openai SDK version (7.x declares node >= 22)
#   GEMMA_CAPTURE=dir scripts/check-js-client.sh   # also writes every request body the SDKs send to dir/
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${GEMMA_JS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gemma-js-client}
mkdir -p "$work"
cp "$root/scripts/js-client/package.json" "$root/scripts/js-client/check.mjs" "$work/"
(cd "$work" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
if [ -n "${OPENAI_JS:-}" ]; then (cd "$work" && npm install --no-audit --no-fund --loglevel=error --no-save "openai@$OPENAI_JS" >/dev/null); fi

server_pid=
cleanup() { if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

if [ $# -ge 1 ]; then
  url=$1
  key=${GEMMA_API_KEY:-none}
else
  if [ -z "${GEMMA:-}" ]; then
    dotnet build "$root/Gemma.Cli/Gemma.Cli.csproj" -c Release -v q -nologo >/dev/null
    gemma=(dotnet "$root/Gemma.Cli/bin/Release/net10.0/gemma.dll")
  else
    gemma=("$GEMMA")
  fi
  key=check-js-$RANDOM$RANDOM
  log=$(mktemp)
  "${gemma[@]}" serve --port 0 --api-key "$key" --context 1024 -t "${GEMMA_THREADS:-2}" 2>"$log" &
  server_pid=$!
  url=
  for _ in $(seq 1 600); do
    url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+/' "$log" | head -n1 || true)
    if [ -n "$url" ] && grep -q 'ready — ' "$log"; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then cat "$log" >&2; exit 1; fi
    sleep 0.2
  done
  grep -q 'ready — ' "$log" || { echo "gemma serve did not get ready:" >&2; cat "$log" >&2; exit 1; }
fi

GEMMA_BASE_URL=$url GEMMA_API_KEY=$key node "$work/check.mjs"
