package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/wschat/chat/internal/broker/redisbroker"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/httpapi"
)

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestReadyzHidesInternals: /readyz with the database or the broker unreachable answers 503
// with a plain reason; the DSN, user, database name and address that the drivers' errors
// carry go to the log only (they were in the body).
func TestReadyzHidesInternals(t *testing.T) {
	t.Parallel()
	addr := closedAddr(t)
	dsn := "postgres://leakuser:leakpass@" + addr + "/leakdb?sslmode=disable&connect_timeout=2"
	pgPing := func(ctx context.Context) error {
		c, err := pgx.Connect(ctx, dsn)
		if err == nil {
			c.Close(ctx)
		}
		return err
	}
	rb, err := redisbroker.New(redisbroker.Options{URL: "redis://:leakpass@" + addr + "/0", Prefix: "leakprefix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rb.Close() })
	ok := func(context.Context) error { return nil }
	for _, c := range []struct {
		part   string
		checks []httpapi.ReadyCheck
	}{
		{"database", []httpapi.ReadyCheck{{Part: "database", Check: pgPing}, {Part: "broker", Check: ok}}},
		{"broker", []httpapi.ReadyCheck{{Part: "database", Check: ok}, {Part: "broker", Check: rb.Ping}}},
	} {
		t.Run(c.part, func(t *testing.T) {
			logs := &lockedBuffer{}
			log := slog.New(slog.NewTextHandler(logs, nil))
			srv := httptest.NewServer(httpapi.NewServer(nil, log, httpapi.Options{Ready: c.checks}))
			defer srv.Close()
			res, err := http.Get(srv.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			var p problem
			if res.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(body, &p) != nil || p.Code != chat.CodeUnavailable {
				t.Fatalf("got %d %s, want 503 unavailable", res.StatusCode, body)
			}
			if want := "not ready: the " + c.part + " is unreachable"; p.Detail != want {
				t.Errorf("detail %q, want %q", p.Detail, want)
			}
			_, port, _ := net.SplitHostPort(addr)
			for _, leak := range []string{"leakuser", "leakpass", "leakdb", "leakprefix", port, "127.0.0.1", "dial", "tcp"} {
				if strings.Contains(string(body), leak) {
					t.Errorf("the 503 body reveals %q: %s", leak, body)
				}
			}
			if !strings.Contains(logs.String(), port) {
				t.Errorf("the log does not say what failed: %s", logs.String())
			}
		})
	}
}
