#!/usr/bin/env bash
# bench/pgsend.sh: what one call of send_messages costs PostgreSQL, for the function as it is
# (the newest migration) and as it was before migration 00013 (its Down section: the single
# statement of 00011), alternated in the same run. On a fresh database of its own (dropped at
# the end) with one chat of two members, pgbench -M prepared calls the function with one send,
# then five, then twenty (PGSEND_SIZES="1 5 20"), for PGSEND_SECONDS (5) each, PGSEND_ROUNDS (2) times per version; the CPU of
# every postgres process (from /proc, the reaped backends included through the postmaster's
# children's times) divided by the calls is the cost per call, commit included. Other use of
# the same PostgreSQL server counts too: run it on a quiet machine.
#
#   bash bench/pgsend.sh          # needs pgbench (Debian: in the postgresql package) and a
#                                 # local PostgreSQL (CLUSTER_PG, as scripts/cluster.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
PG=${CLUSTER_PG:-postgres://postgres@127.0.0.1:5432}
DB=chat_pgsend_$$
SECONDS_EACH=${PGSEND_SECONDS:-5}
ROUNDS=${PGSEND_ROUNDS:-2}
MIGRATION=internal/store/migrations/00013_send_procedure.sql
command -v pgbench > /dev/null || { echo "pgbench is missing: it comes with PostgreSQL's server package (apt-get install -y postgresql)" >&2; exit 1; }
command -v pgrep > /dev/null || { echo "pgrep is missing: apt-get install -y procps" >&2; exit 1; }

tmp=$(mktemp -d)
cleanup() {
  psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB" > /dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
psql -q "$PG/postgres" -c "CREATE DATABASE $DB" > /dev/null
go build -o "$tmp/chatd" ./cmd/chatd
CHAT_DATABASE_URL="$PG/$DB?sslmode=disable" CHAT_DATA_DIR=$tmp/data "$tmp/chatd" migrate > "$tmp/migrate.log" 2>&1 ||
  { cat "$tmp/migrate.log" >&2; exit 1; }
# Ids far above the demo data's (the migrations add demo users and chats).
psql -q -v ON_ERROR_STOP=1 "$PG/$DB" > /dev/null <<'SQL'
INSERT INTO users (id, email, name, name_fold, password_hash, created_at) VALUES
  (900001, 'a@pgsend', 'A', 'a', 'x', 0), (900002, 'b@pgsend', 'B', 'b', 'x', 0);
INSERT INTO chats (id, kind, title, created_at, activity_at, member_count) VALUES (900001, 'group', 'pgsend', 0, 0, 2);
INSERT INTO members (chat_id, user_id, role, joined_at) VALUES (900001, 900001, 'owner', 0), (900001, 900002, 'member', 0);
SQL

# The two versions of the function, taken from the migration: its Up and its Down.
awk '/^-- \+goose Up/ {u = 1} /^-- \+goose Down/ {u = 0} u' "$MIGRATION" | grep -v '^-- +' > "$tmp/now.sql"
awk '/^-- \+goose Down/ {d = 1} d' "$MIGRATION" | grep -v '^-- +' > "$tmp/before.sql"

body="'$(printf 'x%.0s' $(seq 100))'"
script() { # N: a call storing N sends of the chat, each under a fresh client id
  local n=$1 i chats=() senders=() clients=() bodies=() ats=()
  for ((i = 1; i <= n; i++)); do
    chats+=(900001) senders+=($((900001 + i % 2))) clients+=("'p' || :r || '-' || :client_id || '-$i'") bodies+=("$body") ats+=(1764700000000)
  done
  local IFS=,
  printf '\\set r random(1, 2000000000)\nSELECT count(*) FROM send_messages(ARRAY[%s]::bigint[], ARRAY[%s]::bigint[], ARRAY[%s]::text[], ARRAY[%s]::text[], ARRAY[%s]::bigint[]);\n' \
    "${chats[*]}" "${senders[*]}" "${clients[*]}" "${bodies[*]}" "${ats[*]}"
}
SIZES=${PGSEND_SIZES:-1 5 20}
for n in $SIZES; do script "$n" > "$tmp/send$n.sql"; done

ticks() { # CPU ticks of every postgres process and of the children it reaped: total, system
  local t=0 s=0 p f
  for p in $(pgrep -x postgres); do
    read -r -a f < "/proc/$p/stat" 2> /dev/null || continue
    t=$((t + f[13] + f[14] + f[15] + f[16])) s=$((s + f[14] + f[16]))
  done
  echo "$t $s"
}
hz=$(getconf CLK_TCK)
measure() { # VERSION SCRIPT
  local a b n lat
  read -r -a a <<< "$(ticks)"
  out=$(pgbench -n -M prepared -c 1 -T "$SECONDS_EACH" -f "$tmp/$2.sql" "$PG/$DB" 2>&1)
  read -r -a b <<< "$(ticks)"
  n=$(awk '/number of transactions actually processed/ {split($NF, x, "/"); print x[1]}' <<< "$out")
  lat=$(awk '/latency average/ {print $4}' <<< "$out")
  [ -n "$n" ] && [ "$n" -gt 0 ] || { echo "$out" >&2; exit 1; }
  printf '%-7s %-6s %7d calls  latency %6s ms  postgres CPU %5d us/call (system %4d us)\n' "$1" "$2" "$n" "$lat" \
    $(((b[0] - a[0]) * 1000000 / hz / n)) $(((b[1] - a[1]) * 1000000 / hz / n))
}
for ((r = 1; r <= ROUNDS; r++)); do
  for v in before now; do
    psql -q -v ON_ERROR_STOP=1 "$PG/$DB" -f "$tmp/$v.sql" > /dev/null
    for n in $SIZES; do measure "$v" "send$n"; done
  done
done
