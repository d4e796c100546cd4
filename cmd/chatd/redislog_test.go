package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wschat/chat/internal/testlog"
)

// TestRedisLogBounded: while Redis is down, go-redis's own line for each command that cannot
// dial goes to the server's log, as a warning of its format, a line a second at most.
func TestRedisLogBounded(t *testing.T) {
	var buf testlog.Buffer
	logRedisTo(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { logRedisTo(slog.New(slog.DiscardHandler)) })

	// A port nothing listens on: every command fails to dial, once (as the broker's client).
	c := redis.NewClient(&redis.Options{Addr: freeAddr(t), MaxRetries: -1, DialerRetries: 1})
	defer c.Close()
	const commands = 50
	began := time.Now()
	for range commands {
		if err := c.Ping(context.Background()).Err(); err == nil {
			t.Fatal("PING answered on a port nothing listens on")
		}
	}
	elapsed := time.Since(began)

	logged := strings.TrimSpace(buf.String())
	lines := strings.Split(logged, "\n")
	if logged == "" {
		t.Fatalf("%d failed dials logged nothing to the server's log", commands)
	}
	// One line, and one more for each second that passed since.
	if most := 1 + int(elapsed/time.Second); len(lines) > most {
		t.Errorf("%d failed dials in %v logged %d lines, want at most %d:\n%s", commands, elapsed, len(lines), most, buf.String())
	}
	for _, l := range lines {
		if !strings.Contains(l, "level=WARN") || !strings.Contains(l, `msg="redis client"`) || !strings.Contains(l, "failed to dial") {
			t.Errorf("line %q: want a warning \"redis client\" with go-redis's detail", l)
		}
	}
}
