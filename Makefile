# The two commands that matter: `make run` and `make test` (see README.md).
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: run build test test-go test-browser vet fmt clean

## run: serve the embedded default (SQLite + in-process broker) at http://127.0.0.1:8080
run:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/chatd

## build: build bin/chatd
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/chatd ./cmd/chatd

## test: every test: Go (race detector, SQLite, PostgreSQL, Redis) and the browser suite
test: vet test-go test-browser

test-go:
	$(GO) test -race -count=1 -timeout 10m ./...

## test-browser: the web client in headless Chromium (needs chromium and node; see README)
test-browser:
	bash e2e/browser/run.sh

vet:
	@test -z "$$(gofmt -l cmd internal)" || (echo "gofmt needed:"; gofmt -l cmd internal; exit 1)
	$(GO) vet ./...

fmt:
	gofmt -w cmd internal

clean:
	rm -rf bin data test-output
