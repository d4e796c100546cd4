#!/usr/bin/env bash
# make bench: the standard load suite (cmd/chatbench suite) against the local cluster of
# scripts/cluster.sh (3 instances behind nginx on 127.0.0.1:8080, PostgreSQL, Redis), started
# afresh for the run on a benchmark database of its own and stopped afterwards (BENCH_KEEP=1
# keeps it). Writes bench/results/<date>-<host>.json and its charts, and updates the tables
# of docs/PERFORMANCE.md.
#
#   bench/run.sh [chatbench suite flags]      e.g. bench/run.sh -only fanout-200,chats
#                                             (steps: idle, onegroup, fanout-200, fanout-1000,
#                                             reactions, chats, onechat, reconnect; reactions is
#                                             the reaction storm in a 1000-member group:
#                                             -reactions-rate toggles/s, default 30)
#   bench/run.sh soak [chatbench soak flags]  make soak: 30 minutes of churn against the same
#                                             cluster; bench/results/<date>-<host>-soak.json,
#                                             and the instances' warnings and errors counted
#   bench/run.sh anchor [chatbench anchor flags]
#                                             make bench-anchor: the fanout points against this
#                                             checkout's cluster (2 instances, as Centrifugo runs 2
#                                             nodes) and against Centrifugo, both running, the
#                                             servers taking turns point by point (fanout-200,
#                                             fanout-1000, onechat: ANCHOR_POINTS), so that each
#                                             pair is measured minutes apart, not a whole run;
#                                             ANCHOR_ALTERNATE=0 runs every point of one server,
#                                             then the other's;
#                                             bench/results/<date>-<host>-anchor-<label>.json and the
#                                             side-by-side table of docs/PERFORMANCE.md. Settings:
#                                             ANCHOR_BEFORE=<commit> also runs chatd built from that
#                                             commit (label "before", on its own, first);
#                                             ANCHOR_RUNS="before chat centrifugo" picks the runs;
#                                             CENTRIFUGO_BIN (default
#                                             $(go env GOPATH)/bin/centrifugo); ANCHOR_DIR (default
#                                             ../shared/anchors/centrifugo: config and scripts);
#                                             BENCH_SERVER_GOMAXPROCS=N runs the servers of
#                                             either anchor (not the tool) with GOMAXPROCS=N.
#   bench/run.sh ab REV_A REV_B [chatbench anchor flags]
#                                             two builds of chatd measured in turn on the same
#                                             points, for a change's before and after: REV a
#                                             commit, or . for the working tree; each run on a
#                                             fresh cluster (2 instances) and database; AB_ROUNDS
#                                             rounds (default 2) of A then B; e.g. bench/run.sh ab
#                                             HEAD~1 . -only fanout-1000. Results:
#                                             bench/results/<date>-<host>-ab-<HHMM>-<rev>-r<round>.json
#                                             (HHMM: the run's start, UTC)
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

# build_chatd REV OUT: chatd built from commit REV (its tree, not this checkout's) into OUT.
build_chatd() {
  local src
  src=$(mktemp -d)
  git archive "$1" | tar -x -C "$src"
  (cd "$src" && $GO build -o "$2" ./cmd/chatd)
  rm -rf "$src"
}

# Every connection is a file: 10,000 idle connections need more than the usual 1024.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p bin
$GO build -o bin/chatbench ./cmd/chatbench

mode=suite
if [ "${1:-}" = soak ] || [ "${1:-}" = anchor ] || [ "${1:-}" = ab ]; then
  mode=$1
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
# depend on how much is stored, so each run starts from the same empty database). One
# connection sends 2,000 messages a second in the one-chat shape: the per-connection frame
# limit is raised for it. scripts/cluster.sh passes CHAT_* variables on to the instances it
# starts.
export CLUSTER_RATE_LIMITS=off CHAT_PASSWORD_COST=test CHAT_LOG_LEVEL=warn
export CHAT_LIMIT_WS_FRAMES=${BENCH_WS_FRAMES:-20000/4s}
export CLUSTER_DB=${BENCH_DB:-chat_bench} CLUSTER_PREFIX=${BENCH_PREFIX:-chat-bench}
PG=${CLUSTER_PG:-postgres://postgres@127.0.0.1:5432}
REDIS=${CLUSTER_REDIS:-127.0.0.1:6379}
if [ "$mode" = anchor ] || [ "$mode" = ab ]; then
  N=${CLUSTER_N:-2}
  export CLUSTER_N=$N
fi

# server_env runs a command that starts servers, with GOMAXPROCS=$BENCH_SERVER_GOMAXPROCS when
# that is set (for the servers only: the load tool keeps every core). Both anchors get it.
server_env() {
  if [ -n "${BENCH_SERVER_GOMAXPROCS:-}" ]; then
    GOMAXPROCS=$BENCH_SERVER_GOMAXPROCS "$@"
  else
    "$@"
  fi
}

# start_cluster starts the cluster afresh: a new database, no Redis keys.
start_cluster() {
  if [ -d "$DIR" ]; then
    say "stopping the cluster to start it afresh for the benchmark"
    bash scripts/cluster.sh down
  fi
  psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS \"$CLUSTER_DB\"" > /dev/null
  redis-cli -h "${REDIS%:*}" -p "${REDIS##*:}" --scan --pattern "$CLUSTER_PREFIX:*" | xargs -r redis-cli -h "${REDIS%:*}" -p "${REDIS##*:}" del > /dev/null
  server_env bash scripts/cluster.sh up

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
  start_analyze
}

# A PostgreSQL without autovacuum (CI machines often run so) never analyzes the benchmark's
# tables as they grow from empty, and plans made while they were small stay cached: the search
# indexer's foreign-key check then reads all of messages per message it indexes (PERFORMANCE.md,
# "What indexing costs sends"). The run then analyzes its database every 10 s, as autovacuum's
# analyze would, says so on its output, and in the anchor's results (analyze_note, added to
# chatd's server build). BENCH_VACUUM=1 makes it VACUUM (ANALYZE) instead, which also clears
# the dead row versions that every moved read mark leaves (autovacuum would vacuum the small,
# busy members table about once a minute).
analyze_pid=""
analyze_note=""
start_analyze() {
  if [ "$(psql -At "$PG/postgres" -c 'SHOW autovacuum')" = on ]; then
    return
  fi
  local cmd=ANALYZE what=analyzed
  if [ "${BENCH_VACUUM:-}" = 1 ]; then
    cmd="VACUUM (ANALYZE)" what="vacuumed and analyzed"
  fi
  say "PostgreSQL's autovacuum is off: $cmd of $CLUSTER_DB every 10 s"
  local parent=$$
  (while sleep 10 && kill -0 "$parent" 2>/dev/null; do
    psql -q "$PG/$CLUSTER_DB" -c "$cmd" > /dev/null 2>&1 || break
  done) &
  analyze_pid=$!
  analyze_note="; database $what every 10 s (the server's autovacuum is off)"
}

stop_analyze() {
  if [ -n "$analyze_pid" ]; then
    kill "$analyze_pid" 2>/dev/null || true
    analyze_pid=""
  fi
}

stop_cluster() {
  stop_analyze
  if [ "${BENCH_KEEP:-}" = 1 ]; then
    say "the benchmark cluster keeps running (database $CLUSTER_DB); make cluster-down stops it"
  else
    bash scripts/cluster.sh down > /dev/null
    say "cluster stopped; make cluster starts the usual one"
  fi
}

metrics=""
for ((i = 1; i <= N; i++)); do
  metrics+="${metrics:+,}http://127.0.0.1:$((BASE_PORT + i - 1))/metrics"
done
status=0
if [ "$mode" = anchor ]; then
  stem=bench/results/$(date -u +%F)-$(hostname -s)-anchor
  runs=${ANCHOR_RUNS:-${ANCHOR_BEFORE:+before }chat centrifugo}
  files=()
  tmp=$(mktemp -d)
  centro=$DIR-centrifugo
  cbin=${CENTRIFUGO_BIN:-$($GO env GOPATH)/bin/centrifugo}
  trap 'rm -rf "$tmp"' EXIT
  args=("$@")
  chat_build="chatd built from $(git describe --always --dirty)"
  # points_chat LABEL BUILD-NOTE [chatbench anchor flags]: points against the running cluster.
  points_chat() {
    local label=$1 note=$2
    shift 2
    bin/chatbench anchor -label "$label" -server-build "$note" -url "http://$LISTEN" -metrics "$metrics" \
      -procs chatd,nginx,postgres,redis-server -json "$stem-$label.json" "$@" "${args[@]}" || status=$?
  }
  # anchor_chat LABEL BUILD-NOTE [CHATD]: every point against the cluster, running CHATD if given.
  anchor_chat() {
    CLUSTER_CHATD=${3:-} start_cluster
    points_chat "$1" "$2$analyze_note"
    files+=("$stem-$1.json")
    stop_cluster
  }
  # anchor_before: every point against chatd built from ANCHOR_BEFORE.
  anchor_before() {
    [ -n "${ANCHOR_BEFORE:-}" ] || { say "ANCHOR_BEFORE=<commit> names the build to measure as before"; exit 1; }
    say "building chatd from $ANCHOR_BEFORE"
    build_chatd "$ANCHOR_BEFORE" "$tmp/chatd-before"
    anchor_chat before "chatd built from $(git rev-parse --short "$ANCHOR_BEFORE")" "$tmp/chatd-before"
  }
  start_centrifugo() {
    [ -x "$cbin" ] || { say "no Centrifugo at $cbin: go install github.com/centrifugal/centrifugo/v6@v6.9.1, or set CENTRIFUGO_BIN"; exit 1; }
    # The anchor's folder may be read-only: its scripts keep their state in a copy.
    rm -rf "$centro" && cp -r "${ANCHOR_DIR:-../shared/anchors/centrifugo}" "$centro" && chmod -R u+w "$centro"
    CENTRO_DIR=$centro CENTRIFUGO_BIN=$cbin server_env bash "$centro/start.sh"
  }
  stop_centrifugo() { CENTRO_DIR=$centro CENTRIFUGO_BIN=$cbin bash "$centro/stop.sh"; }
  # points_centrifugo [chatbench anchor flags]: points against the running Centrifugo.
  points_centrifugo() {
    bin/chatbench anchor -centrifugo "$centro/config.json" -label centrifugo \
      -server-build "Centrifugo $($GO version -m "$cbin" | awk '$1 == "mod" {print $3}'), 2 nodes on Redis behind nginx" \
      -url http://127.0.0.1:8090 -metrics http://127.0.0.1:9100/metrics,http://127.0.0.1:9101/metrics \
      -procs centrifugo,nginx,redis-server -json "$stem-centrifugo.json" "$@" "${args[@]}" || status=$?
  }
  for run in $runs; do
    case $run in
      before | chat | centrifugo) ;;
      *) say "unknown run $run (before, chat, centrifugo)"; exit 1 ;;
    esac
  done
  # What Centrifugo needs is checked before anything starts: a missing binary found after the
  # cluster had started left the cluster running.
  if [[ " $runs " == *" centrifugo "* ]]; then
    [ -x "$cbin" ] || { say "no Centrifugo at $cbin: go install github.com/centrifugal/centrifugo/v6@v6.9.1, or set CENTRIFUGO_BIN"; exit 1; }
    [ -f "${ANCHOR_DIR:-../shared/anchors/centrifugo}/start.sh" ] ||
      { say "no anchor configuration at ${ANCHOR_DIR:-../shared/anchors/centrifugo} (its start.sh, stop.sh and config.json): set ANCHOR_DIR"; exit 1; }
  fi
  alternate=${ANCHOR_ALTERNATE:-1}
  if [ "$alternate" = 1 ] && [[ " $runs " == *" chat "* && " $runs " == *" centrifugo "* ]]; then
    # Both servers run; each point is measured on one, then at once on the other.
    if [[ " $runs " == *" before "* ]]; then anchor_before; fi
    rm -f "$stem-chat.json" "$stem-centrifugo.json"
    start_cluster
    start_centrifugo
    for point in ${ANCHOR_POINTS:-fanout-200 fanout-1000 onechat}; do
      points_chat chat "$chat_build$analyze_note" -only "$point" -append
      points_centrifugo -only "$point" -append
    done
    stop_centrifugo
    stop_cluster
    files+=("$stem-chat.json" "$stem-centrifugo.json")
  else
    for run in $runs; do
      case $run in
        before) anchor_before ;;
        chat) anchor_chat chat "$chat_build" ;;
        centrifugo)
          start_centrifugo
          points_centrifugo
          files+=("$stem-centrifugo.json")
          stop_centrifugo
          ;;
      esac
    done
  fi
  bin/chatbench anchor-table -doc docs/PERFORMANCE.md "${files[@]}" || status=$?
  exit $status
fi

if [ "$mode" = ab ]; then
  [ $# -ge 2 ] || { say "usage: bench/run.sh ab REV_A REV_B [chatbench anchor flags] (REV: a commit, or . for the working tree)"; exit 1; }
  revs=("$1" "$2")
  shift 2
  rounds=${AB_ROUNDS:-2}
  [[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { say "AB_ROUNDS=$rounds: want a whole number of rounds, at least 1"; exit 1; }
  # The run's start time is in the names, so that a second A/B of the same builds (other
  # points, another day's machine) does not overwrite the first's results.
  stem=bench/results/$(date -u +%F)-$(hostname -s)-ab-$(date -u +%H%M)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  labels=() bins=() notes=()
  for i in 0 1; do
    rev=${revs[$i]}
    if [ "$rev" = . ]; then
      label="worktree-$(git rev-parse --short HEAD)"
      note="chatd built from $(git describe --always --dirty)"
      say "building chatd from the working tree"
      $GO build -o "$tmp/chatd-$i" ./cmd/chatd
    else
      short=$(git rev-parse --short "$rev^{commit}") || { say "$rev is not a commit"; exit 1; }
      label=$short
      note="chatd built from $short"
      say "building chatd from $rev ($short)"
      build_chatd "$short" "$tmp/chatd-$i"
    fi
    labels+=("$label") bins+=("$tmp/chatd-$i") notes+=("$note")
  done
  [ "${labels[0]}" != "${labels[1]}" ] || labels[1]+="-b"
  for ((r = 1; r <= rounds; r++)); do
    for i in 0 1; do
      say "round $r of $rounds: ${labels[$i]}"
      CLUSTER_CHATD=${bins[$i]} start_cluster
      bin/chatbench anchor -label "${labels[$i]}" -server-build "${notes[$i]}$analyze_note" -url "http://$LISTEN" \
        -metrics "$metrics" -procs chatd,nginx,postgres,redis-server -json "$stem-${labels[$i]}-r$r.json" "$@" || status=$?
      stop_cluster
    done
  done
  exit $status
fi

start_cluster
say "suite against http://$LISTEN (metrics: $metrics); open files: $(ulimit -n)"
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
stop_cluster
exit $status
