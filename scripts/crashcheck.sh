#!/usr/bin/env bash
# Kills an embedded chatd (SQLite, in-process broker) with SIGKILL under a send load, starts it
# again on the same data directory and checks what it kept (docs/PERFORMANCE.md, "Embedded
# mode"): every acknowledged message under its seq, id and client id, seqs without holes or
# repeats, read marks at least the last confirmed ones, read_all_seq the smallest member's mark
# (scripts/crashcheck), then PRAGMA integrity_check on the file (needs the sqlite3 CLI).
#
#   scripts/crashcheck.sh [SECONDS] [ROUNDS]    the load runs SECONDS (default 5) before the
#                                               kill; PORT=18961 and DIR (a temp dir) by default
set -euo pipefail
cd "$(dirname "$0")/.."
S=${1:-5}; ROUNDS=${2:-1}; PORT=${PORT:-18961}; DIR=${DIR:-$(mktemp -d)}
go build -o "$DIR/chatd" ./cmd/chatd
go build -o "$DIR/crashcheck" ./scripts/crashcheck
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; true' EXIT
start() {
	env CHAT_DATA_DIR="$DIR/data" CHAT_ADDR=127.0.0.1:$PORT CHAT_RATE_LIMITS=off CHAT_PASSWORD_COST=test \
		CHAT_LOG_LEVEL=warn CHAT_LIMIT_WS_FRAMES=20000/4s "$DIR/chatd" >> "$DIR/chatd.log" 2>&1 &
	PID=$!
	for _ in $(seq 100); do curl -sf "127.0.0.1:$PORT/readyz" > /dev/null && return; sleep 0.1; done
	echo "chatd did not start: $DIR/chatd.log"; exit 1
}
for round in $(seq "$ROUNDS"); do
	rm -rf "$DIR/data"
	start
	"$DIR/crashcheck" -url "http://127.0.0.1:$PORT" -state "$DIR/state" load 2> "$DIR/load.log" &
	LOAD=$!
	sleep "$S"
	kill -9 $PID; wait $PID 2>/dev/null || true
	wait $LOAD || true
	start
	"$DIR/crashcheck" -url "http://127.0.0.1:$PORT" -state "$DIR/state" check
	kill $PID; wait $PID 2>/dev/null || true; PID=
	echo "round $round: integrity_check: $(sqlite3 "$DIR/data/chat.db" 'PRAGMA integrity_check')"
done
