package hub_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/hub"
)

// TestPing: the server pings every PingEvery; a client that answers stays, one that does not
// (it never reads, so it never sends a pong) is closed after PongWait. The pong wait is long
// enough for a client on a busy machine to answer in time.
func TestPing(t *testing.T) {
	url, h := newServer(t, broker.NewMemory(), hub.Options{InstanceID: "test", PingEvery: 100 * time.Millisecond, PongWait: 3 * time.Second})
	alive, err := login(t, url, "first@example.com").Dial(context.Background()) // reads, so it answers pings
	if err != nil {
		t.Fatal(err)
	}
	defer alive.Close()
	second := login(t, url, "second@example.com")
	mute, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(url, "http")+"/api/v1/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": []string{"Bearer " + second.Token()}}})
	if err != nil {
		t.Fatal(err)
	}
	defer mute.CloseNow()
	deadline := time.Now().Add(10 * time.Second)
	for h.Stats().Connections.Load() != 2 { // both set up
		if time.Now().After(deadline) {
			t.Fatalf("%d connections, want 2", h.Stats().Connections.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	deadline = time.Now().Add(20 * time.Second)
	for h.Stats().Connections.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections after 20 s; want the silent one closed", h.Stats().Connections.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // several more pings
	if alive.Dropped() || h.Stats().Connections.Load() != 1 {
		t.Fatalf("the client that answers pings was closed (dropped %v, %d connections)", alive.Dropped(), h.Stats().Connections.Load())
	}
}
