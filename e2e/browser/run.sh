#!/usr/bin/env bash
# Browser tests of the web client: builds chatd, starts it on a free port with a fresh data
# directory, runs the node:test suites in Debian's Chromium against it, and stops it.
#
#   bash e2e/browser/run.sh                 # every suite
#   bash e2e/browser/run.sh tests/auth.test.js   # some suites
#   CHATD_BIN=/path/to/chatd bash e2e/browser/run.sh   # test a prebuilt binary
#   bash e2e/browser/run.sh --script screenshot.js       # run a script (not a suite) against a fresh chatd
#
# The tests find the server through CHAT_E2E_* variables; the reconnect test restarts it with
# the same binary, address and data directory (CHAT_E2E_BIN, CHAT_E2E_PID_FILE).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  echo "run.sh: no Chromium at $CHROMIUM (install it: apt-get update && apt-get install -y chromium)" >&2
  exit 1
fi
# run.sh and run-cluster.sh run side by side in make test: one npm ci at a time, and neither
# starts on a node_modules the other is still installing.
(
  flock 9
  if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/axe-core ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
) 9>"${TMPDIR:-/tmp}/chat-e2e-npm-ci.lock"

work="$(mktemp -d)"
export CHAT_E2E_BIN="$work/chatd"
export CHAT_E2E_PID_FILE="$work/chatd.pid"
export CHAT_E2E_LOG="$work/chatd.log"
export CHROMIUM

stop() {
  local rc=$?
  if [ -f "$CHAT_E2E_PID_FILE" ]; then
    pid="$(cat "$CHAT_E2E_PID_FILE")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -f "$CHAT_E2E_LOG" ]; then
    echo "--- last lines of the chatd log ($CHAT_E2E_LOG) ---" >&2
    tail -n 40 "$CHAT_E2E_LOG" >&2 || true
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap stop EXIT
trap 'exit 130' INT TERM

# The server embeds compressed copies of the client's files: stale ones would serve old code.
if [ -z "${CHATD_BIN:-}" ]; then
  (cd "$repo" && go run ./scripts/precompress -check -skip index.html,sw.js internal/web/static \
    && go run ./scripts/precompress -check internal/docsui/assets \
    && go run ./scripts/precompress -check -skip index.html,protocol.html internal/docsui/page)
fi

if [ -n "${CHATD_BIN:-}" ]; then
  cp "$CHATD_BIN" "$CHAT_E2E_BIN" # a prebuilt chatd, e.g. of another revision
else
  (cd "$repo" && go build -o "$CHAT_E2E_BIN" ./cmd/chatd)
fi

port="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
export CHAT_ADDR="127.0.0.1:$port"
export CHAT_DATA_DIR="$work/data"
export CHAT_RATE_LIMITS=off
export CHAT_PASSWORD_COST=test
export CHAT_LOG_LEVEL="${CHAT_LOG_LEVEL:-warn}"
export CHAT_E2E_BASE_URL="http://$CHAT_ADDR"
mkdir -p "$CHAT_DATA_DIR"

"$CHAT_E2E_BIN" >>"$CHAT_E2E_LOG" 2>&1 &
echo $! >"$CHAT_E2E_PID_FILE"

for i in $(seq 1 200); do
  if curl -fsS "$CHAT_E2E_BASE_URL/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$(cat "$CHAT_E2E_PID_FILE")" 2>/dev/null; then echo "run.sh: chatd exited" >&2; exit 1; fi
  if [ "$i" -eq 200 ]; then echo "run.sh: chatd not healthy after 10 s" >&2; exit 1; fi
  sleep 0.05
done
echo "run.sh: chatd on $CHAT_E2E_BASE_URL"

# Each group runs its suites, N at a time (node --test's file pool: the next file starts when one
# ends, in the order given), with node's spec reporter for people and TAP for the totals. Groups
# that share no data run side by side.
status=0
run_group() {
  local name=$1 n=$2
  shift 2
  node --test --test-concurrency="$n" \
    --test-reporter=spec --test-reporter-destination="$work/$name.out" \
    --test-reporter=tap --test-reporter-destination="$work/$name.tap" "$@"
}
show() {
  for name in "$@"; do cat "$work/$name.out"; done
}

if [ "${1:-}" = "--script" ]; then
  node "$2"
  exit $?
elif [ $# -gt 0 ]; then
  run_group picked 1 "$@" || status=1
  show picked
else
  # demo: the suites that use the demo users First, Second and Third and assert on their
  # badges and lists, one at a time. restart: the suite that restarts the server, alone at the
  # end. rest: everything else works on users and chats of its own, so its files run
  # CHAT_E2E_CONCURRENCY at a time (default 2), the longest first so that the last ones to
  # start are short. On a 2-core machine Chromium keeps the cores busy, and more files at once
  # only wait on each other and cost more CPU in all (docs/PERFORMANCE.md, "The test suite's
  # cost").
  demo=(tests/chat.test.js tests/devices.test.js tests/xss.test.js)
  restart=(tests/reconnect.test.js)
  longest=(tests/a11y.test.js tests/admin.test.js tests/changes.test.js tests/auth.test.js tests/files.test.js
    tests/history.test.js tests/compose.test.js tests/offline.test.js)
  rest=()
  for f in "${longest[@]}" tests/*.test.js; do
    case " ${demo[*]} ${restart[*]} ${rest[*]} " in *" $f "*) continue ;; esac
    [ -f "$f" ] && rest+=("$f")
  done
  run_group demo 1 "${demo[@]}" &
  demo_pid=$!
  run_group rest "${CHAT_E2E_CONCURRENCY:-2}" "${rest[@]}" || status=1
  wait "$demo_pid" || status=1
  show demo rest
  run_group restart 1 "${restart[@]}" || status=1
  show restart
fi

cat "$work"/*.tap | awk '/^# pass /{p+=$3} /^# fail /{f+=$3} END{printf "browser: %d passed, %d failed\n", p, f}'
exit "$status"
