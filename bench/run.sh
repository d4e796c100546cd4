#!/usr/bin/env bash
# make bench: the standard load suite (cmd/chatbench suite) against the local cluster of
# scripts/cluster.sh (3 instances behind nginx on 127.0.0.1:8080, PostgreSQL, Redis), started
# afresh for the run on a benchmark database of its own and stopped afterwards (BENCH_KEEP=1
# keeps it). Writes bench/results/<date>-<host>.json and its charts, and updates the tables
# of docs/PERFORMANCE.md.
#
#   bench/run.sh [chatbench suite flags]      e.g. bench/run.sh -only fanout-200,chats
#   bench/run.sh soak [chatbench soak flags]  make soak: 30 minutes of churn against the same
#                                             cluster; bench/results/<date>-<host>-soak.json,
#                                             and the instances' warnings and errors counted
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

mode=suite
if [ "${1:-}" = soak ]; then
  mode=soak
  shift
fi

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
# instances run without rate limits, with cheap password hashes and quiet logs, on a database
# and Redis prefix of their own, made afresh for every run (the chat list and history queries
# depend on how much is stored, so each run starts from the same empty database).
# scripts/cluster.sh passes CHAT_* variables on to the instances it starts.
export CLUSTER_RATE_LIMITS=off CHAT_PASSWORD_COST=test CHAT_LOG_LEVEL=warn
export CLUSTER_DB=${BENCH_DB:-chat_bench} CLUSTER_PREFIX=${BENCH_PREFIX:-chat-bench}
PG=${CLUSTER_PG:-postgres://postgres@127.0.0.1:5432}
REDIS=${CLUSTER_REDIS:-127.0.0.1:6379}
if [ -d "$DIR" ]; then
  say "stopping the cluster to start it afresh for the benchmark"
  bash scripts/cluster.sh down
fi
psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS \"$CLUSTER_DB\"" > /dev/null
redis-cli -h "${REDIS%:*}" -p "${REDIS##*:}" --scan --pattern "$CLUSTER_PREFIX:*" | xargs -r redis-cli -h "${REDIS%:*}" -p "${REDIS##*:}" del > /dev/null
bash scripts/cluster.sh up

# 10,000 idle WebSockets through nginx take 20,000 of its connections (client and upstream
# sides), more than deploy/nginx's worker_connections allow: raise it in this cluster's
# generated configuration only (the open-file limit raised above is inherited by nginx).
conf=$DIR/nginx/nginx.conf
if grep -qE 'worker_connections [0-9]{1,4};' "$conf"; then
  sed -i -E 's/worker_connections [0-9]+;/worker_connections 16384;/' "$conf"
  nginx=$(command -v nginx || echo /usr/sbin/nginx)
  "$nginx" -p "$DIR/nginx" -c "$conf" -e "$DIR/nginx/error.log" -s reload
  sleep 1
  say "nginx: worker_connections 16384 for the benchmark"
fi

metrics=""
for ((i = 1; i <= N; i++)); do
  metrics+="${metrics:+,}http://127.0.0.1:$((BASE_PORT + i - 1))/metrics"
done
say "suite against http://$LISTEN (metrics: $metrics); open files: $(ulimit -n)"
status=0
if [ "$mode" = soak ]; then
  # The instances log warnings and errors only (CHAT_LOG_LEVEL=warn): whatever they logged
  # during the soak is listed afterwards, grouped by message.
  for ((i = 1; i <= N; i++)); do wc -l < "$DIR/chatd$i.log" > "$DIR/chatd$i.log.soak-start"; done
  out=bench/results/$(date -u +%F)-$(hostname -s)-soak.json
  bin/chatbench soak -url "http://$LISTEN" -metrics "$metrics" -users 3000 -rate 300 -reads 50 -churn 10 \
    -d 30m -interval 30s -json "$out" "$@" || status=$?
  logged=$(for ((i = 1; i <= N; i++)); do
    tail -n +"$(( $(cat "$DIR/chatd$i.log.soak-start") + 1 ))" "$DIR/chatd$i.log"
  done | grep -E 'level=(WARN|ERROR)' | sed -E 's/^time=[^ ]+ //; s/ instance=[^ ]+//; s/[0-9]+/N/g' \
    | sort | uniq -c | sort -rn | head -40 || true)
  say "instance log lines at WARN or above during the soak: ${logged:-none}"
else
  # reconnect kills the first instance and starts it again afterwards.
  bin/chatbench suite -url "http://$LISTEN" -metrics "$metrics" \
    -kill-cmd "kill -9 \$(cat '$DIR/chatd1.pid')" \
    -restart-cmd "bash scripts/cluster.sh up > /dev/null" "$@" || status=$?
fi
if [ "${BENCH_KEEP:-}" = 1 ]; then
  say "the benchmark cluster keeps running (database $CLUSTER_DB); make cluster-down stops it"
else
  bash scripts/cluster.sh down > /dev/null
  say "cluster stopped; make cluster starts the usual one"
fi
exit $status
