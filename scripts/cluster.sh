#!/usr/bin/env bash
# A local cluster without Docker: N chatd instances (default 3) on 127.0.0.1:18081.., sharing a
# local PostgreSQL database and the local Redis (under their own key prefix), behind nginx on
# 127.0.0.1:8080. nginx runs from a configuration generated in the state directory, never the
# system's. Running `up` again starts only what is not running.
#
#   scripts/cluster.sh up | down | status | logs [-f] | nginx-conf DIR LISTEN UPSTREAM[,UPSTREAM...]
#   (make cluster, make cluster-down, make cluster-status, make cluster-logs)
#
# Settings (environment):
#   CLUSTER_N=3                     instances
#   CLUSTER_DIR=/tmp/chat-cluster   state: binary, logs, pid files, nginx config, JWT secret
#   CLUSTER_LISTEN=127.0.0.1:8080   nginx
#   CLUSTER_BASE_PORT=18081         first instance port
#   CLUSTER_PG=postgres://postgres@127.0.0.1:5432   PostgreSQL server (as a superuser)
#                                   (a Unix socket: postgres://postgres@%2Fvar%2Frun%2Fpostgresql:5432)
#   CLUSTER_DB=chat_cluster         database, created if missing
#   CLUSTER_REDIS=127.0.0.1:6379    Redis
#   CLUSTER_PREFIX=chat-cluster     Redis key and channel prefix
#   CLUSTER_RATE_LIMITS=on          off for load tests
#   CLUSTER_DEMO=on                 the demo users (first@, second@, third@example.com, password
#                                   "password") can sign in: CHAT_DEMO; off locks them for good
#   CLUSTER_PPROF_BASE_PORT=        e.g. 6061: instance i serves pprof on 127.0.0.1:6061+i-1
#   CLUSTER_S3=off                  on: uploaded files go to an S3-compatible gateway (Versity's,
#                                   built once by scripts/versitygw.sh) on CLUSTER_S3_ADDR; off:
#                                   to the directory CLUSTER_DIR/files, shared by the instances
#   CLUSTER_S3_ADDR=127.0.0.1:18090 the gateway's address
#   CLUSTER_CHATD=                  a chatd binary to run instead of building this checkout's
#                                   (e.g. an older build, to measure before and after a change)
set -euo pipefail

cd "$(dirname "$0")/.."
N=${CLUSTER_N:-3}
DIR=${CLUSTER_DIR:-${TMPDIR:-/tmp}/chat-cluster}
LISTEN=${CLUSTER_LISTEN:-127.0.0.1:8080}
BASE_PORT=${CLUSTER_BASE_PORT:-18081}
PG=${CLUSTER_PG:-postgres://postgres@127.0.0.1:5432}
DB=${CLUSTER_DB:-chat_cluster}
REDIS=${CLUSTER_REDIS:-127.0.0.1:6379}
PREFIX=${CLUSTER_PREFIX:-chat-cluster}
RATE_LIMITS=${CLUSTER_RATE_LIMITS:-on}
DEMO=${CLUSTER_DEMO:-on}
PPROF_BASE_PORT=${CLUSTER_PPROF_BASE_PORT:-}
S3=${CLUSTER_S3:-off}
S3_ADDR=${CLUSTER_S3_ADDR:-127.0.0.1:18090}
CHATD=${CLUSTER_CHATD:-}
BIN=$DIR/bin/chatd
NGINX_DIR=$DIR/nginx
SETSID=$(command -v setsid || true)

say() { printf 'cluster: %s\n' "$*"; }
die() { printf 'cluster: %s\n' "$*" >&2; exit 1; }

# need CMD PACKAGES: fail with the install command when a program is missing.
need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is not installed; install it with: apt-get install -y $2"
}

nginx_bin() {
  local p
  for p in "$(command -v nginx 2>/dev/null || true)" /usr/sbin/nginx /usr/local/sbin/nginx; do
    if [ -n "$p" ] && [ -x "$p" ]; then echo "$p"; return; fi
  done
  die "nginx is not installed; install it with: apt-get install -y nginx"
}

# alive PIDFILE: the process of the pid file runs and is ours (not a recycled pid).
alive() {
  local pid
  [ -f "$1" ] || return 1
  pid=$(cat "$1")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  case "$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)" in
    *"$2"*) return 0 ;;
  esac
  return 1
}

# http_status HOST:PORT PATH: the status code of a GET, over bash's /dev/tcp (no curl needed).
http_status() {
  local host=${1%:*} port=${1##*:} line
  { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null || { echo 000; return; }
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" "$1" >&3
  IFS=' ' read -r -t 3 _ line _ <&3 || line=000
  exec 3<&- 3>&-
  echo "${line:-000}"
}

wait_http() { # HOST:PORT PATH SECONDS LOGFILE
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    [ "$(http_status "$1" "$2")" = 200 ] && return 0
    sleep 0.1
  done
  [ -n "${4:-}" ] && [ -f "$4" ] && tail -n 20 "$4" >&2
  die "http://$1$2 did not answer 200 within $3 s"
}

# render_nginx DIR LISTEN UPSTREAMS(comma-separated): the same files as deploy.Nginx.Write.
render_nginx() {
  local dir=$1 listen=$2 ups servers="" user_line="" daemon=${NGINX_DAEMON:-on} tpl d
  local workers=${NGINX_WORKERS:-$(nproc 2>/dev/null || echo auto)}
  IFS=, read -r -a ups <<< "$3"
  for u in "${ups[@]}"; do
    [ -n "$servers" ] && servers+=$'\n    '
    servers+="server $u max_fails=1 fail_timeout=5s;"
  done
  for u in "${ups[@]}"; do servers+=$'\n    '"server $u backup max_fails=0;"; done
  if [ "$(id -u)" = 0 ]; then
    # Workers must run as a user that exists: nobody, with its own group.
    user_line="user ${NGINX_WORKER_USER:-nobody $(id -gn nobody)};"
  fi
  for d in body proxy fastcgi uwsgi scgi; do mkdir -p "$dir/tmp/$d"; done
  tpl=$(<deploy/nginx/nginx.conf.template)
  tpl=${tpl//'${NGINX_PREFIX}'/"$dir"}
  tpl=${tpl//'${NGINX_USER}'/"$user_line"}
  tpl=${tpl//'${NGINX_DAEMON}'/"$daemon"}
  tpl=${tpl//'${NGINX_WORKERS}'/"$workers"}
  printf '%s\n' "$tpl" > "$dir/nginx.conf"
  tpl=$(<deploy/nginx/templates/chat.conf.template)
  tpl=${tpl//'${CHAT_LISTEN}'/"$listen"}
  tpl=${tpl//'${CHAT_UPSTREAM_SERVERS}'/"$servers"}
  printf '%s\n' "$tpl" > "$dir/chat.conf"
}

nginx_args() { echo -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -e "$NGINX_DIR/error.log"; }

addr_of() { echo "127.0.0.1:$((BASE_PORT + $1 - 1))"; }

up() {
  need psql postgresql-client
  need pg_isready postgresql-client
  need redis-cli redis-tools
  need go "golang (or Go from https://go.dev/dl)"
  local nginx pghost pgport rhost rport
  nginx=$(nginx_bin)
  pghost=$(sed -E 's#^[a-z]+://([^@/]*@)?([^:/?]+).*#\2#' <<< "$PG")
  pghost=$(printf '%b' "${pghost//%/\\x}") # a socket directory is percent-encoded: %2Fvar%2Frun%2Fpostgresql
  pgport=$(sed -nE 's#^[a-z]+://([^@/]*@)?[^:/?]+:([0-9]+).*#\2#p' <<< "$PG")
  pgport=${pgport:-5432}
  pg_isready -q -h "$pghost" -p "$pgport" ||
    die "PostgreSQL is not answering on $pghost:$pgport; install it with: apt-get install -y postgresql (then start it, e.g. pg_ctlcluster <version> main start)"
  rhost=${REDIS%:*} rport=${REDIS##*:}
  [ "$(redis-cli -h "$rhost" -p "$rport" ping 2>/dev/null)" = PONG ] ||
    die "Redis is not answering on $REDIS; install it with: apt-get install -y redis-server (then start it, e.g. redis-server --daemonize yes)"

  # nginx's port first: finding it taken after the instances started left them running.
  if ! alive "$NGINX_DIR/nginx.pid" nginx && [ "$(http_status "$LISTEN" /healthz)" != 000 ]; then
    die "something else listens on $LISTEN (make run?); stop it or set CLUSTER_LISTEN"
  fi

  mkdir -p "$DIR/bin" "$NGINX_DIR"
  if [ ! -s "$DIR/jwt-secret" ]; then
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DIR/jwt-secret")
    say "new JWT secret in $DIR/jwt-secret"
  fi
  # Web Push: every instance signs with the same VAPID key (a P-256 private key, base64url).
  # The scalar is bytes 8-39 of the key's DER (SEC1) encoding.
  if [ ! -s "$DIR/vapid-key" ] && command -v openssl >/dev/null 2>&1; then
    (umask 077; openssl ecparam -name prime256v1 -genkey -noout -outform DER 2>/dev/null |
      tail -c +8 | head -c 32 | base64 | tr '+/' '-_' | tr -d '=\n' > "$DIR/vapid-key")
    say "new VAPID key in $DIR/vapid-key"
  fi

  # Build only when an instance has to start: a running one keeps its binary until cluster-down.
  local i missing=0
  for ((i = 1; i <= N; i++)); do alive "$DIR/chatd$i.pid" "$BIN" || missing=1; done
  if [ $missing = 1 ] || [ ! -x "$BIN" ]; then
    if [ -n "$CHATD" ]; then
      say "using chatd $CHATD"
      cp -f "$CHATD" "$BIN.new"
    else
      say "building chatd"
      go build -ldflags "-X main.version=$(git describe --always --dirty 2>/dev/null || echo dev)" -o "$BIN.new" ./cmd/chatd
    fi
    mv -f "$BIN.new" "$BIN"
  fi

  if [ "$(psql "$PG/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
    psql -q "$PG/postgres" -c "CREATE DATABASE \"$DB\"" >/dev/null
    say "created database $DB"
  fi

  export CHAT_DATABASE_URL="$PG/$DB?sslmode=disable"
  export CHAT_REDIS_URL="redis://$REDIS/0"
  export CHAT_REDIS_PREFIX="$PREFIX"
  export CHAT_JWT_SECRET
  CHAT_JWT_SECRET=$(cat "$DIR/jwt-secret")
  export CHAT_TRUSTED_PROXIES=127.0.0.1
  export CHAT_RATE_LIMITS="$RATE_LIMITS"
  export CHAT_DEMO="$DEMO"
  if [ -s "$DIR/vapid-key" ]; then
    export CHAT_VAPID_PRIVATE_KEY
    CHAT_VAPID_PRIVATE_KEY=$(cat "$DIR/vapid-key")
  else
    say "no openssl: Web Push stays off (set CHAT_VAPID_PRIVATE_KEY in $DIR/vapid-key)"
  fi
  "$BIN" migrate >> "$DIR/migrate.log" 2>&1 || { tail -n 20 "$DIR/migrate.log" >&2; die "migration failed"; }

  # Files: every instance must see every file, so they share one store.
  export CHAT_FILES_URL="$DIR/files"
  if [ "$S3" = on ]; then
    s3_up
    CHAT_FILES_URL="s3+http://$S3_ADDR/chat-files"
    export CHAT_FILES_S3_ACCESS_KEY=chat-cluster CHAT_FILES_S3_SECRET_KEY
    CHAT_FILES_S3_SECRET_KEY=$(cat "$DIR/s3-secret")
  fi

  local addr ups=""
  for ((i = 1; i <= N; i++)); do
    addr=$(addr_of "$i")
    ups+="${ups:+,}$addr"
    if alive "$DIR/chatd$i.pid" "$BIN"; then
      say "chatd$i already running on $addr (pid $(cat "$DIR/chatd$i.pid"))"
      continue
    fi
    if [ "$(http_status "$addr" /healthz)" != 000 ]; then
      die "something else listens on $addr; stop it or set CLUSTER_BASE_PORT"
    fi
    # Its own session: a Ctrl-C in this terminal later does not reach it.
    pprof=""
    [ -n "$PPROF_BASE_PORT" ] && pprof=127.0.0.1:$((PPROF_BASE_PORT + i - 1))
    CHAT_ADDR=$addr CHAT_INSTANCE_ID=chatd$i CHAT_DATA_DIR="$DIR/data$i" CHAT_PPROF_ADDR=$pprof \
      $SETSID nohup "$BIN" serve >> "$DIR/chatd$i.log" 2>&1 < /dev/null &
    echo $! > "$DIR/chatd$i.pid"
    say "chatd$i starting on $addr (pid $!)"
  done
  for ((i = 1; i <= N; i++)); do
    wait_http "$(addr_of "$i")" /readyz 30 "$DIR/chatd$i.log"
  done

  render_nginx "$NGINX_DIR" "$LISTEN" "$ups"
  # shellcheck disable=SC2046
  "$nginx" -t -q $(nginx_args) || die "nginx rejected $NGINX_DIR/nginx.conf"
  if alive "$NGINX_DIR/nginx.pid" nginx; then
    "$nginx" $(nginx_args) -s reload
    say "nginx already running; configuration reloaded"
  else
    if [ "$(http_status "$LISTEN" /healthz)" != 000 ]; then
      die "something else listens on $LISTEN (make run?); stop it or set CLUSTER_LISTEN"
    fi
    "$nginx" $(nginx_args) || { tail -n 20 "$NGINX_DIR/error.log" >&2; die "nginx did not start"; }
    say "nginx starting on $LISTEN"
  fi
  wait_http "$LISTEN" /healthz 10 "$NGINX_DIR/error.log"

  cat <<EOF
cluster: up: http://$LISTEN  ($N instances: $ups; database $DB; Redis prefix $PREFIX)
  status:       make cluster-status
  logs:         make cluster-logs          ($DIR/*.log)
  pub/sub:      redis-cli -h $rhost -p $rport psubscribe '$PREFIX:*'
  stop:         make cluster-down
EOF
}

# s3_up starts the S3-compatible gateway over CLUSTER_DIR/s3 unless it runs.
s3_up() {
  local gw
  if [ ! -s "$DIR/s3-secret" ]; then
    (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DIR/s3-secret")
  fi
  if alive "$DIR/versitygw.pid" versitygw; then
    say "versitygw already running on $S3_ADDR (pid $(cat "$DIR/versitygw.pid"))"
    return
  fi
  gw=$(bash scripts/versitygw.sh)
  mkdir -p "$DIR/s3/data" "$DIR/s3/meta"
  $SETSID nohup "$gw" --access chat-cluster --secret "$(cat "$DIR/s3-secret")" --port "$S3_ADDR" \
    posix --sidecar "$DIR/s3/meta" "$DIR/s3/data" >> "$DIR/versitygw.log" 2>&1 < /dev/null &
  echo $! > "$DIR/versitygw.pid"
  local i
  for ((i = 0; i < 100; i++)); do
    [ "$(http_status "$S3_ADDR" /)" != 000 ] && { say "versitygw starting on $S3_ADDR (pid $!)"; return; }
    sleep 0.1
  done
  tail -n 20 "$DIR/versitygw.log" >&2
  die "versitygw did not start on $S3_ADDR"
}

down() {
  local f name pid i
  if alive "$NGINX_DIR/nginx.pid" nginx; then
    pid=$(cat "$NGINX_DIR/nginx.pid")
    kill -QUIT "$pid" # graceful: finish what is in flight
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid"
    say "nginx stopped"
  fi
  for f in "$DIR"/chatd*.pid; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .pid)
    if alive "$f" "$BIN"; then
      pid=$(cat "$f")
      kill -TERM "$pid" # graceful: clients are told 1012
      for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        say "$name did not stop within 15 s: killed"
      else
        say "$name stopped"
      fi
    fi
    rm -f "$f"
  done
  if alive "$DIR/versitygw.pid" versitygw; then
    kill -TERM "$(cat "$DIR/versitygw.pid")"
    rm -f "$DIR/versitygw.pid"
    say "versitygw stopped"
  fi
  say "down (state kept in $DIR: the database $DB, the files and the JWT secret stay)"
}

status() {
  local i addr f code
  for ((i = 1; i <= N; i++)); do
    addr=$(addr_of "$i") f=$DIR/chatd$i.pid
    if alive "$f" "$BIN"; then
      code=$(http_status "$addr" /readyz)
      printf 'chatd%-3s %-16s pid %-8s readyz %s\n' "$i" "$addr" "$(cat "$f")" "$code"
    else
      printf 'chatd%-3s %-16s down\n' "$i" "$addr"
    fi
  done
  if alive "$DIR/versitygw.pid" versitygw; then
    printf 'versitygw %-15s pid %s\n' "$S3_ADDR" "$(cat "$DIR/versitygw.pid")"
  fi
  if alive "$NGINX_DIR/nginx.pid" nginx; then
    printf 'nginx    %-16s pid %-8s healthz %s\n' "$LISTEN" "$(cat "$NGINX_DIR/nginx.pid")" "$(http_status "$LISTEN" /healthz)"
  else
    printf 'nginx    %-16s down\n' "$LISTEN"
  fi
  if command -v redis-cli >/dev/null 2>&1; then
    local rhost=${REDIS%:*} rport=${REDIS##*:}
    printf 'redis    %-16s %s channels subscribed, %s users online\n' "$REDIS" \
      "$(redis-cli -h "$rhost" -p "$rport" pubsub channels "$PREFIX:*" 2>/dev/null | grep -c . || true)" \
      "$(redis-cli -h "$rhost" -p "$rport" --scan --pattern "$PREFIX:presence:[0-9]*" 2>/dev/null | grep -c . || true)"
  fi
}

logs() {
  local files=()
  shopt -s nullglob
  files=("$DIR"/chatd*.log "$DIR"/migrate.log "$NGINX_DIR"/error.log "$NGINX_DIR"/access.log)
  [ ${#files[@]} -gt 0 ] || die "no logs in $DIR (make cluster first)"
  if [ "${1:-}" = -f ]; then
    exec tail -n 20 -F "${files[@]}"
  fi
  tail -n 50 "${files[@]}"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) status ;;
  logs) logs "${2:-}" ;;
  nginx-conf)
    [ $# -eq 4 ] || die "usage: $0 nginx-conf DIR LISTEN UPSTREAM[,UPSTREAM...]"
    mkdir -p "$2"
    render_nginx "$2" "$3" "$4"
    ;;
  *) die "usage: $0 up|down|status|logs [-f]|nginx-conf DIR LISTEN UPSTREAMS" ;;
esac
