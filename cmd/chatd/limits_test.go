package main

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/wschat/chat/internal/client"
)

// TestReadLimitSparesWebSocket: CHAT_LIMIT_READS_USER reaches the REST reads, and a user who
// spent their read budget still gets their hello and their sync: the WebSocket endpoint's own
// reads are not counted.
func TestReadLimitSparesWebSocket(t *testing.T) {
	t.Parallel()
	inst := start(t, map[string]string{"CHAT_RATE_LIMITS": "on", "CHAT_LIMIT_READS_USER": "3/1h"})
	first := signIn(t, inst, "first@example.com")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		if err := first.Do(ctx, http.MethodGet, "/api/v1/chats", nil, nil); err != nil {
			t.Fatalf("read %d: %v", i+1, err)
		}
	}
	var ce *client.Error
	if err := first.Do(ctx, http.MethodGet, "/api/v1/chats/1/messages", nil, nil); !errors.As(err, &ce) || ce.Status != http.StatusTooManyRequests || ce.Code != "rate_limited" {
		t.Fatalf("4th read: %v, want 429 rate_limited", err)
	}

	for round := range 2 { // a reconnect too
		dev := connect(t, first)
		if len(dev.hello.Chats) != 3 {
			t.Fatalf("round %d: hello lists %d chats, want the demo's 3", round, len(dev.hello.Chats))
		}
		dev.send("sync", "s", map[string]any{"cursors": map[string]int64{"1": 0, "2": 0, "3": 0}})
		n := 0
		for dev.await2("message.new", "sync.done").Type == "message.new" {
			n++
		}
		if n != 10 { // the demo's 3 + 4 + 3 messages
			t.Errorf("round %d: sync sent %d messages, want 10", round, n)
		}
		dev.conn.Close()
	}
}
