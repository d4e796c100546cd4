#!/usr/bin/env bash
# make bench: the standard load suite (cmd/chatbench suite) against the local cluster of
# scripts/cluster.sh (3 instances behind nginx on 127.0.0.1:8080, PostgreSQL, Redis), started
# here if it is not running. Writes bench/results/<date>-<host>.json and its charts, and
# updates the tables of docs/PERFORMANCE.md.
#
#   bench/run.sh [chatbench suite flags]      e.g. bench/run.sh -only fanout-200,chats
#
# make bench-smoke (bench/run.sh smoke) runs the tool for a few seconds against an embedded
# instance it starts itself, and fails on any lost or duplicated delivery.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${CLUSTER_DIR:-${TMPDIR:-/tmp}/chat-cluster}
LISTEN=${CLUSTER_LISTEN:-127.0.0.1:8080}
BASE_PORT=${CLUSTER_BASE_PORT:-18081}
N=${CLUSTER_N:-3}
GO=${GO:-go}

say() { printf 'bench: %s\n' "$*"; }

# Every connection is a file: 10,000 idle connections need more than the usual 1024.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p bin
$GO build -o bin/chatbench ./cmd/chatbench

if [ "${1:-}" = smoke ]; then
  shift
  tmp=$(mktemp -d)
  trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
  $GO build -o "$tmp/chatd" ./cmd/chatd
  port=$((20000 + RANDOM % 20000))
  CHAT_ADDR=127.0.0.1:$port CHAT_DATA_DIR=$tmp/data CHAT_RATE_LIMITS=off CHAT_PASSWORD_COST=test \
    CHAT_LOG_LEVEL=warn "$tmp/chatd" > "$tmp/chatd.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/healthz" > /dev/null 2>&1 && break
    sleep 0.1
  done
  bin/chatbench smoke -url "http://127.0.0.1:$port" "$@"
  exit
fi

# The suite registers thousands of users and sends thousands of messages a second: the
# instances must run without rate limits and with cheap password hashes. scripts/cluster.sh
# passes CHAT_* variables on to the instances it starts.
export CLUSTER_RATE_LIMITS=off CHAT_PASSWORD_COST=test
running_ok=1
for ((i = 1; i <= N; i++)); do
  pidf=$DIR/chatd$i.pid
  if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
    env=$(tr '\0' '\n' < "/proc/$(cat "$pidf")/environ" 2>/dev/null || true)
    if ! grep -qx 'CHAT_RATE_LIMITS=off' <<< "$env" || ! grep -qx 'CHAT_PASSWORD_COST=test' <<< "$env"; then
      running_ok=0
    fi
  fi
done
if [ $running_ok = 0 ]; then
  say "the running cluster has rate limits on or full-cost password hashes: restarting it for the benchmark"
  bash scripts/cluster.sh down
fi
bash scripts/cluster.sh up

metrics=""
for ((i = 1; i <= N; i++)); do
  metrics+="${metrics:+,}http://127.0.0.1:$((BASE_PORT + i - 1))/metrics"
done
say "suite against http://$LISTEN (metrics: $metrics); open files: $(ulimit -n)"
# reconnect kills the first instance and starts it again afterwards.
bin/chatbench suite -url "http://$LISTEN" -metrics "$metrics" \
  -kill-cmd "kill -9 \$(cat '$DIR/chatd1.pid')" \
  -restart-cmd "bash scripts/cluster.sh up > /dev/null" "$@"
