#!/usr/bin/env bash
# The web client with a heavy account, in Chromium (an outside audit's scripts, kept to rerun
# its numbers; docs/PERFORMANCE.md, "The web client"). Builds chatd from this checkout, starts
# it on a free port with a fresh data dir (embedded SQLite, rate limits off), builds the
# account over the API (setup.mjs: 1,000 chats, a 5,000-message group, a 301-member group),
# then prints:
#   trace.mjs: layout time of 10 keystrokes and of 10 messages into the open chat (CDP trace)
#   burst.mjs other: 20 messages/s for 20 s into other chats while typing: redraws, main-thread
#     time, keystroke-to-frame latency (two runs)
#   burst.mjs open: the same into the open chat
#   burst.mjs unread: the same with more unread than a first load fetches (1,100 sent first)
#   load.mjs: a first load: names asked for one by one, chat list draws, long tasks
# Needs what the browser tests need (chromium, node; npm install in e2e/browser).
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work" setup.json' EXIT
(cd ../../.. && go build -o "$work/chatd" ./cmd/chatd)
[ -d ../node_modules/playwright-core ] || (cd .. && npm install --no-audit --no-fund >/dev/null)
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
export PERF_URL=http://127.0.0.1:$port
CHAT_ADDR=127.0.0.1:$port CHAT_DATA_DIR="$work/data" CHAT_RATE_LIMITS=off CHAT_PASSWORD_COST=test "$work/chatd" >"$work/chatd.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do curl -fsS "$PERF_URL/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
node setup.mjs | tail -n 1
node trace.mjs | grep -E 'TYPING|MSGS'
node burst.mjs other
node burst.mjs open
node burst.mjs unread
node load.mjs
