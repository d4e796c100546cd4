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
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wschat/chat/internal/broker/redisbroker"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/httpapi"
	"github.com/wschat/chat/internal/store"
	"github.com/wschat/chat/internal/testlog"
	"github.com/wschat/chat/internal/testserver"
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
			logs := &testlog.Buffer{}
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

// TestReadWaitsBoundedUnderATableLock (PostgreSQL): with a session holding the chats table
// (psql's LOCK TABLE), the chat list is answered 503 unavailable with Retry-After once it has
// waited the store's lock timeout (CHAT_DB_LOCK_TIMEOUT), not when the session lets go (it
// answered after 24 s, the time the table was held). /readyz stays 200 meanwhile: the
// database answers.
func TestReadWaitsBoundedUnderATableLock(t *testing.T) {
	t.Parallel()
	ts := testserver.Start(t, testserver.Config{Postgres: true, Store: store.Options{LockTimeout: 50 * time.Millisecond}})
	u := ts.NewUser(t, "U")
	ts.Group(t, u, "G", false)
	ctx := context.Background()
	holder, err := ts.Store.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(ctx, `LOCK TABLE chats IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan testserver.Reply, 1)
	go func() { done <- ts.Call(t, "GET", "/api/v1/chats", u.Token, nil, nil) }()
	var r testserver.Reply
	select {
	case r = <-done:
	case <-time.After(time.Minute): // only a hang gets here
		holder.Rollback()
		r = <-done
		t.Fatalf("the chat list waited for the table: %d %s", r.Status, r.Body)
	}
	if r.Status != http.StatusServiceUnavailable || r.Code() != chat.CodeUnavailable || r.Header.Get("Retry-After") == "" {
		t.Errorf("the chat list with the table held: %d %s (Retry-After %q), want 503 unavailable with Retry-After",
			r.Status, r.Body, r.Header.Get("Retry-After"))
	}
	if r := ts.Call(t, "GET", "/readyz", "", nil, nil); r.Status != http.StatusOK {
		t.Errorf("/readyz with the table held: %d %s, want 200", r.Status, r.Body)
	}
	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}
	if r := ts.Call(t, "GET", "/api/v1/chats", u.Token, nil, nil); r.Status != http.StatusOK {
		t.Errorf("the chat list once the table is free: %d %s", r.Status, r.Body)
	}
}

// TestReadyzWhileStopping: once the instance has begun to stop (Stopping, at SIGTERM),
// /readyz answers 503 unavailable "not ready: the server is stopping" though the database and
// the broker answer, so that a load balancer sends it nothing new while it drains (it answered
// 200 until the listener closed); /healthz and the rest stay served.
func TestReadyzWhileStopping(t *testing.T) {
	t.Parallel()
	ok := func(context.Context) error { return nil }
	api := httpapi.NewServer(nil, slog.New(slog.DiscardHandler), httpapi.Options{
		Ready: []httpapi.ReadyCheck{{Part: "database", Check: ok}, {Part: "broker", Check: ok}}})
	srv := httptest.NewServer(api)
	defer srv.Close()
	get := func(path string) (int, []byte) {
		t.Helper()
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, body
	}
	if status, body := get("/readyz"); status != http.StatusOK {
		t.Fatalf("/readyz before the stop: %d %s, want 200", status, body)
	}
	api.Stopping()
	status, body := get("/readyz")
	var p problem
	if status != http.StatusServiceUnavailable || json.Unmarshal(body, &p) != nil || p.Code != chat.CodeUnavailable {
		t.Fatalf("/readyz once stopping: %d %s, want 503 unavailable", status, body)
	}
	if want := "not ready: the server is stopping"; p.Detail != want {
		t.Errorf("detail %q, want %q", p.Detail, want)
	}
	if status, body := get("/healthz"); status != http.StatusOK {
		t.Errorf("/healthz once stopping: %d %s, want 200 (the process is alive)", status, body)
	}
}
