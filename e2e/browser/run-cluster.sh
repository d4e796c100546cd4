#!/usr/bin/env bash
# The browser suite of the scaled topology: starts a private cluster with scripts/cluster.sh
# (2 chatd instances + nginx on the local PostgreSQL and Redis), runs cluster/*.test.js in
# Debian's Chromium against it, then stops the cluster, drops its database and deletes its Redis
# keys. Everything is its own: a temporary state directory, free ports, a database
# chat_e2e_<random> and a Redis prefix chat-e2e-<random>; the default cluster (make cluster:
# /tmp/chat-cluster, port 8080, database chat_cluster) is never touched.
#
#   bash e2e/browser/run-cluster.sh                           # every cluster suite
#   bash e2e/browser/run-cluster.sh cluster/chat.test.js      # some suites
#   CLUSTER_PG=postgres://postgres@host:5432 CLUSTER_REDIS=host:6379 bash e2e/browser/run-cluster.sh
#
# Needs nginx, psql/pg_isready, redis-cli, a running PostgreSQL and Redis, Chromium and node.
# Without PostgreSQL, Redis or nginx it is skipped; with CI=true it fails instead.
# The tests find the cluster through CHAT_E2E_BASE_URL (nginx) and CHAT_E2E_INSTANCES (the
# instances, comma-separated, in order).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

say() { printf 'run-cluster.sh: %s\n' "$*"; }
# unavailable REASON: a missing service skips the suite, except in CI where it fails it.
unavailable() {
  if [ "${CI:-}" = true ]; then
    say "$1 (CI=true: failing instead of skipping)" >&2
    exit 1
  fi
  say "skipped: $1" >&2
  exit 0
}

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  say "no Chromium at $CHROMIUM (install it: apt-get update && apt-get install -y chromium)" >&2
  exit 1
fi
export CHROMIUM

PG="${CLUSTER_PG:-postgres://postgres@127.0.0.1:5432}"
REDIS="${CLUSTER_REDIS:-127.0.0.1:6379}"
rhost=${REDIS%:*} rport=${REDIS##*:}
nginx_found=
for p in "$(command -v nginx 2>/dev/null || true)" /usr/sbin/nginx /usr/local/sbin/nginx; do
  if [ -n "$p" ] && [ -x "$p" ]; then nginx_found=$p; break; fi
done
[ -n "$nginx_found" ] || unavailable "nginx is not installed (apt-get install -y nginx)"
for c in psql pg_isready; do
  command -v "$c" >/dev/null 2>&1 || unavailable "$c is not installed (apt-get install -y postgresql-client)"
done
command -v redis-cli >/dev/null 2>&1 || unavailable "redis-cli is not installed (apt-get install -y redis-tools)"
pg_isready -q -d "$PG/postgres" || unavailable "PostgreSQL is not answering at $PG"
[ "$(redis-cli -h "$rhost" -p "$rport" ping 2>/dev/null)" = PONG ] || unavailable "Redis is not answering on $REDIS"

# run.sh and run-cluster.sh run side by side in make test: one npm ci at a time, and neither
# starts on a node_modules the other is still installing.
(
  flock 9
  if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/axe-core ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
) 9>"${TMPDIR:-/tmp}/chat-e2e-npm-ci.lock"

# Free ports: two consecutive ones for the instances, one for nginx, held together while chosen.
# They are picked below the kernel's ephemeral range, so that no outgoing connection (of a load
# test next door, say) takes one of them between here and the moment the instances listen.
read -r base_port listen_port < <(node -e '
const fs = require("fs"), net = require("net");
let low = 32768;
try { low = Number(fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]) || low; } catch {}
// Not 18000-18999 either: make cluster (18081..) and its neighbours live there.
const pick = () => {
  if (low <= 12000) return 0;
  for (;;) { const p = 10000 + Math.floor(Math.random() * (low - 10003)); if (p < 17990 || p >= 19000) return p; }
};
const listen = (p) => new Promise((ok, no) => { const s = net.createServer(); s.once("error", no); s.listen(p, "127.0.0.1", () => ok(s)); });
(async () => {
  for (let i = 0; i < 100; i++) {
    const held = [];
    try {
      held.push(await listen(pick()));
      const base = held[0].address().port;
      held.push(await listen(base + 1));
      held.push(await listen(pick()));
      console.log(base, held[2].address().port);
      return held.forEach((s) => s.close());
    } catch { held.forEach((s) => s.close()); }
  }
  process.exit(1);
})();') || true
[ -n "${listen_port:-}" ] || { say "found no free ports" >&2; exit 1; }

rnd="$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
work="$(mktemp -d)"
chmod 755 "$work" # nginx workers run as nobody when we are root
export CLUSTER_DIR="$work/cluster"
export CLUSTER_N=2
export CLUSTER_LISTEN="127.0.0.1:$listen_port"
export CLUSTER_BASE_PORT="$base_port"
export CLUSTER_PG="$PG"
export CLUSTER_DB="chat_e2e_$rnd"
export CLUSTER_REDIS="$REDIS"
export CLUSTER_PREFIX="chat-e2e-$rnd"
export CLUSTER_RATE_LIMITS=off
export NGINX_WORKERS=1

# The instances inherit the environment: none of the caller's CHAT_* settings, cheap password
# hashing (CHAT_PASSWORD_COST is not one of cluster.sh's settings, so it comes from here).
log_level="${CHAT_LOG_LEVEL:-warn}"
while read -r v; do unset "$v"; done < <(compgen -e | grep '^CHAT_' || true)
export CHAT_PASSWORD_COST=test
export CHAT_LOG_LEVEL="$log_level"

export CHAT_E2E_BASE_URL="http://$CLUSTER_LISTEN"
export CHAT_E2E_INSTANCES="http://127.0.0.1:$base_port,http://127.0.0.1:$((base_port + 1))"

cleanup() {
  local rc=$?
  set +e
  bash "$repo/scripts/cluster.sh" down >>"$work/down.log" 2>&1 || { rc=1; cat "$work/down.log" >&2; }
  psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS \"$CLUSTER_DB\" WITH (FORCE)" >/dev/null ||
    { rc=1; say "could not drop database $CLUSTER_DB" >&2; }
  redis-cli -h "$rhost" -p "$rport" --scan --pattern "$CLUSTER_PREFIX:*" 2>/dev/null |
    xargs -r redis-cli -h "$rhost" -p "$rport" del >/dev/null
  if [ "$rc" -ne 0 ]; then
    local f
    for f in "$CLUSTER_DIR"/chatd*.log "$CLUSTER_DIR"/migrate.log "$CLUSTER_DIR"/nginx/error.log; do
      [ -s "$f" ] || continue
      echo "--- last lines of $f ---" >&2
      tail -n 30 "$f" >&2
    done
    say "state kept in $work" >&2
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# cluster.sh's own output names make targets of the default cluster: keep it in a file.
say "starting 2 instances and nginx (scripts/cluster.sh up)"
if ! bash "$repo/scripts/cluster.sh" up >"$work/up.log" 2>&1; then
  cat "$work/up.log" >&2
  exit 1
fi
say "cluster on $CHAT_E2E_BASE_URL (instances $CHAT_E2E_INSTANCES, database $CLUSTER_DB, prefix $CLUSTER_PREFIX)"

if [ $# -eq 0 ]; then set -- cluster/*.test.js; fi
status=0
node --test --test-concurrency=1 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$work/cluster.tap" "$@" || status=1
awk '/^# pass /{p+=$3} /^# fail /{f+=$3} END{printf "browser (cluster): %d passed, %d failed\n", p, f}' "$work/cluster.tap"
exit "$status"
