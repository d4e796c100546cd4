#!/usr/bin/env bash
# The resident memory of one chatd around one 25 MiB upload (docs/PERFORMANCE.md, "Upload
# memory"). Builds chatd, starts it on a fresh data directory with the given extra environment
# (e.g. CHAT_FILES_URL=s3+http://key:secret@127.0.0.1:7070/bucket), uploads a small file to
# warm up, then 25 MiB of random bytes, and prints VmRSS before and after and the peak (VmHWM).
#
#   scripts/upload-rss.sh [VAR=value ...]      PORT=18941 by default
set -euo pipefail
cd "$(dirname "$0")/.."
D=$(mktemp -d); PORT=${PORT:-18941}
go build -o "$D/chatd" ./cmd/chatd
head -c $((25 * 1024 * 1024)) /dev/urandom > "$D/big.bin"
env CHAT_DATA_DIR="$D" CHAT_ADDR=127.0.0.1:$PORT CHAT_PASSWORD_COST=test CHAT_LOG_LEVEL=warn "$@" "$D/chatd" > "$D/log" 2>&1 &
PID=$!
trap 'kill $PID; wait $PID 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 100); do curl -sf "localhost:$PORT/healthz" >/dev/null && break; sleep 0.1; done
TOKEN=$(curl -s -X POST "localhost:$PORT/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d '{"email":"first@example.com","password":"password"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
curl -s -o /dev/null -H "Authorization: Bearer $TOKEN" -F "file=@go.sum" "localhost:$PORT/api/v1/chats/2/files"
before=$(awk '/VmRSS/{print $2}' "/proc/$PID/status")
curl -s -o /dev/null -w 'upload: %{http_code} in %{time_total} s\n' -H "Authorization: Bearer $TOKEN" \
  -F "file=@$D/big.bin" "localhost:$PORT/api/v1/chats/2/files"
after=$(awk '/VmRSS/{print $2}' "/proc/$PID/status")
hwm=$(awk '/VmHWM/{print $2}' "/proc/$PID/status")
echo "RSS before ${before} KiB, after ${after} KiB, peak (VmHWM) ${hwm} KiB, growth $((hwm - before)) KiB"
