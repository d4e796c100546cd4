# The two commands that matter: `make run` and `make test` (see README.md).
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# -trimpath for every go command make runs, and the scripts and tests it starts (go build of
# chatd in e2e/browser/run.sh, scripts/cluster.sh and e2e/failover): without it Go's build
# cache keys our packages by the checkout's directory, so a fresh clone compiled and vetted all
# of them again (about 180 CPU-s of make test on a 2-core machine whose cache was warm from
# another checkout; docs/PERFORMANCE.md, "The test suite's cost"). Binaries name files by
# module path instead of this machine's directories.
export GOFLAGS := -trimpath $(filter-out -trimpath,$(GOFLAGS))

.PHONY: run build test test-go test-browser test-browser-single test-browser-cluster vet fmt clean screenshot generate

## run: serve the embedded default (SQLite + in-process broker) at http://127.0.0.1:8080
run:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/chatd

## build: build bin/chatd
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/chatd ./cmd/chatd

## test: every test: Go (race detector, SQLite, PostgreSQL, Redis) and the browser suites.
## After vet, the three parts run side by side (each on servers, databases and ports of its
## own): the browser suites mostly wait on Chromium, the Go tests use the cores. Each part's
## output is shown when it ends.
test: vet
	@$(MAKE) --no-print-directory -j3 --output-sync=target test-go test-browser-single test-browser-cluster

## test-go: the Go tests under the race detector. go test runs the test binaries in the order
## given, -p (the number of cores) at a time: the packages whose tests take longest go first, so
## that the short ones fill in at the end instead of a long one starting last.
## The race detector also turns on checkptr, which checks every unsafe.Pointer conversion at run
## time; it is off for modernc.org's SQLite and libc (C translated to Go, unsafe throughout),
## where it cost about a fifth of the Go tests' CPU (this target on a 2-core machine: 444 -> 358
## CPU-s, internal/hub alone 68 -> 47). Our packages keep it; every memory access is still
## watched for races.
SLOW_TESTS = ./cmd/chatd ./e2e/failover ./internal/hub ./internal/httpapi ./internal/client
RACE_GCFLAGS = -gcflags='modernc.org/...=-d=checkptr=0'
test-go:
	$(GO) test -race $(RACE_GCFLAGS) -count=1 -timeout 15m $(SLOW_TESTS) ./...

## test-browser: the web client in headless Chromium (needs chromium and node; see README), and
## one suite against a private 2-instance cluster behind nginx (needs nginx, PostgreSQL, Redis)
test-browser:
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-browser-single test-browser-cluster

test-browser-single:
	bash e2e/browser/run.sh

test-browser-cluster:
	bash e2e/browser/run-cluster.sh

## screenshot: remake docs/screenshot-chat.png (the demo data of a fresh chatd, in Chromium), and
## the main screens light and dark, narrow and wide, into test-output/screenshots/ (pictures to
## look at: not in make test, whose suites check those screens' pages already)
screenshot:
	bash e2e/browser/run.sh --script screenshot.js
	bash e2e/browser/run.sh screenshots.test.js

## generate: refresh the committed brotli and gzip copies of the web client and /docs files
generate:
	$(GO) generate ./internal/web ./internal/docsui

## vet: gofmt and go vet. go vet compiles every package it checks, the standard library and
## the dependencies included: with test-go's flags (-race, RACE_GCFLAGS) that is the build the
## race tests use next. On a clean machine vet and the race build took 432 CPU-s together
## instead of 780.
vet:
	@test -z "$$(gofmt -l cmd internal deploy e2e)" || (echo "gofmt needed:"; gofmt -l cmd internal deploy e2e; exit 1)
	$(GO) vet -race $(RACE_GCFLAGS) ./...

fmt:
	gofmt -w cmd internal deploy e2e

clean:
	rm -rf bin data test-output

# The scaled topology on this machine, without Docker: N chatd (CLUSTER_N=3) on 127.0.0.1:18081..,
# local PostgreSQL (database chat_cluster) and Redis (prefix chat-cluster), nginx on
# 127.0.0.1:8080 from a config generated in CLUSTER_DIR (/tmp/chat-cluster). See docs/SCALING.md.
.PHONY: cluster cluster-down cluster-logs cluster-status

## cluster: start (or complete) the local cluster; running it again starts no duplicates
cluster:
	bash scripts/cluster.sh up

## cluster-down: stop the local cluster (instances say 1012 to their clients)
cluster-down:
	bash scripts/cluster.sh down

## cluster-logs: follow the instances' and nginx's logs
cluster-logs:
	bash scripts/cluster.sh logs -f

## cluster-status: which processes run, their readiness, Redis channels and users online
cluster-status:
	bash scripts/cluster.sh status

# Load tests: cmd/chatbench against the local cluster; see docs/PERFORMANCE.md.
.PHONY: bench bench-smoke bench-anchor soak

## bench: the standard load suite (starts the cluster if needed); results in bench/results, tables in docs/PERFORMANCE.md
bench:
	bash bench/run.sh

## bench-anchor: the fanout points against this checkout's cluster and against Centrifugo (ANCHOR_BEFORE=<commit> adds an older build); side-by-side table in docs/PERFORMANCE.md
bench-anchor:
	bash bench/run.sh anchor

## soak: 30 minutes of churning connections, chats and REST reads against the cluster (not in CI); memory over time in bench/results
soak:
	bash bench/run.sh soak

## bench-smoke: a few seconds of tiny load on an embedded instance; fails on any lost or duplicated delivery
bench-smoke:
	bash bench/run.sh smoke

# Fuzzing (docs/SECURITY.md): `make test` runs every target's seeds and testdata/fuzz corpus;
# this runs the fuzzer itself for FUZZTIME per target. A failing input lands in the package's
# testdata/fuzz/<target>/ and stays there as a regression test.
FUZZTIME ?= 10s
FUZZ = $(GO) test -run '^$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s
.PHONY: fuzz

## fuzz: run each fuzz target for FUZZTIME (default 10s): WebSocket frames and sync cursors, HTTP bodies, JWTs, input rules
fuzz:
	$(FUZZ) -fuzz '^FuzzFrame$$' ./internal/hub
	$(FUZZ) -fuzz '^FuzzSyncCursors$$' ./internal/hub
	$(FUZZ) -fuzz '^FuzzRequestBody$$' ./internal/httpapi
	$(FUZZ) -fuzz '^FuzzVerify$$' ./internal/auth
	$(FUZZ) -fuzz '^FuzzValidation$$' ./internal/chat
