#!/usr/bin/env bash
# Prints the path of Versity's S3 gateway (versitygw, Apache-2.0), the S3-compatible server of
# the tests and of `CLUSTER_S3=on make cluster`. When it is missing it is built with
# `go install` (about 4 minutes on a 2-core machine) into $(go env GOPATH)/bin, once: the binary
# is kept there and found next time. The test set-up (internal/testdb) does the same, under
# the same lock, so parallel runs build it once.
set -euo pipefail
VERSITYGW=github.com/versity/versitygw/cmd/versitygw@v1.8.0

if p=$(command -v versitygw 2>/dev/null); then echo "$p"; exit 0; fi
bin="$(go env GOPATH | cut -d: -f1)/bin/versitygw"
if [ ! -x "$bin" ]; then
  lock="${TMPDIR:-/tmp}/chat-versitygw-install.lock"
  exec 9>"$lock"
  command -v flock >/dev/null 2>&1 && flock 9
  if [ ! -x "$bin" ]; then
    echo "versitygw: building $VERSITYGW (about 4 minutes)" >&2
    # Built beside its place and renamed into it: whoever finds the file finds all of it (the
    # tests look for it before they take the lock).
    mkdir -p "$(dirname "$bin")"
    tmp=$(mktemp -d "$(dirname "$bin")/.versitygw.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    GOBIN="$tmp" GOFLAGS=-mod=mod go install "$VERSITYGW" >&2
    mv "$tmp/versitygw" "$bin"
  fi
fi
echo "$bin"
