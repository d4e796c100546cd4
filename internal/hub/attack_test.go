package hub_test

// Attacks on the real-time layer's memory, as an account holder would make them (issue 11):
// sockets that never read while asking for as much as they can. Each test reproduces the
// attack and checks the bound the server now guarantees (docs/SECURITY.md).

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/hub"
)

// seedHeavyChat fills a group with n messages of 4,000 control characters, each of which JSON
// writes as six bytes: 24 KiB a message.new frame.
func seedHeavyChat(t *testing.T, s *testServer, owner *testUser, n int, members ...*testUser) int64 {
	t.Helper()
	id := s.Group(t, owner, "Heavy", false, members...)
	body := strings.Repeat("\x01", chat.MaxBodyChars)
	for i := range n {
		if _, _, err := s.Svc.Send(t.Context(), owner.P(), chat.SendInput{ChatID: id, Body: body, ClientID: "seed-" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// TestSyncFloodIsBounded: one account opens 16 sockets that never read, each asking again and
// again for the whole history of a chat of 500 messages of 24 KiB (12 MiB). Before the byte
// budget this took the heap up by about 57 MB a socket. Now each socket holds at most its
// budget (a sync waits for room, reading pages of at most half the budget, instead of
// buffering), and the sync requests beyond one running and one waiting are refused.
func TestSyncFloodIsBounded(t *testing.T) {
	const budget = hub.DefaultQueueBytes
	const sockets = 16
	s := startServer(t, serverConfig{Hub: onlyBudgetsClose(hub.Options{QueueBytes: budget}), NoSearchIndexer: true})
	owner, attacker := s.NewUser(t, "Owner"), s.NewUser(t, "Attacker")
	id := seedHeavyChat(t, s, owner, 500, attacker)
	const frame = 6*chat.MaxBodyChars + 300

	before := heapInUse()
	conns := make([]*wsConn, sockets)
	for i := range conns {
		conns[i] = s.Stall(t, s.Login(t, attacker))
	}
	for round := range 20 {
		for _, c := range conns {
			c.Send("sync", fmt.Sprintf("s%d", round), map[string]any{"cursors": map[string]int64{strconv.FormatInt(id, 10): int64(round)}})
		}
	}
	// Wait until the syncs have filled what they may (the writers are blocked by then), or
	// long enough that a machine of any speed has done the work. A slower machine queues less,
	// which the bound below also holds for.
	deadline := time.Now().Add(30 * time.Second)
	for s.Hub.Queued() < sockets*budget/4 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)

	// A page read from the store is at most half the budget (4 messages if they are bigger).
	perSocket := int64(budget + 4*frame)
	if got := s.Hub.Stats().QueuedPeak.Load(); got > sockets*perSocket {
		t.Errorf("%d bytes queued at the peak for %d sockets, want at most %d (budget and a page each)", got, sockets, sockets*perSocket)
	}
	grown := heapInUse() - before
	t.Logf("heap grew by %.1f MiB for %d sockets (queued now %.1f MiB, peak %.1f MiB)", float64(grown)/(1<<20), sockets,
		float64(s.Hub.Queued())/(1<<20), float64(s.Hub.Stats().QueuedPeak.Load())/(1<<20))
	if limit := sockets*perSocket + 16<<20; grown > limit {
		t.Errorf("the heap grew by %d bytes, want at most %d", grown, limit)
	}
}

// TestInstanceBudgetShedsTheSlowest: when the bytes queued for all of an instance's sockets
// pass its budget, the sockets holding the most are closed with 1013; a client that reads
// keeps its socket and every message.
func TestInstanceBudgetShedsTheSlowest(t *testing.T) {
	const total = 1 << 20
	s := startServer(t, serverConfig{Hub: onlyBudgetsClose(hub.Options{QueueBytes: 64 << 20, QueueTotal: total}), NoSearchIndexer: true})
	owner, reader := s.NewUser(t, "Owner"), s.NewUser(t, "Reader")
	silent := []*testUser{s.NewUser(t, "Silent1"), s.NewUser(t, "Silent2")}
	id := s.Group(t, owner, "G", false, append([]*testUser{reader}, silent...)...)
	rc := s.Dial(t, reader)
	var stalled []*wsConn
	for _, u := range silent {
		stalled = append(stalled, s.Stall(t, u))
	}
	body := strings.Repeat("字", chat.MaxBodyChars)
	limit := (socketBuffers(t)+total)/len(body)*2 + 10
	sent := 0
	for s.Hub.Stats().Shed.Load() < int64(len(silent)) {
		if sent++; sent > limit {
			t.Fatalf("%d silent sockets shed after %d messages, want %d", s.Hub.Stats().Shed.Load(), sent-1, len(silent))
		}
		s.Send(t, owner, id, body)
		// The reader gets each message before the next is sent: the fan-out has then queued
		// it for every socket, so a busy machine cannot make the count run ahead of it.
		rc.NextOf("message.new", 30*time.Second)
	}
	// Each is closed, with 1013 when its close frame gets through: behind the bytes the socket
	// never read, it may not within the close's time on a busy machine (the client then sees
	// the connection end without one, -1). What it must never be is any other code.
	for i, c := range stalled {
		if got := closeCode(t, c); got != websocket.StatusTryAgainLater && got != -1 {
			t.Errorf("silent socket %d: close %d, want 1013 (or none at all)", i, got)
		}
	}
	s.Send(t, owner, id, "after")
	if n := messagesUntil(t, rc, "after"); n != 1 {
		t.Errorf("the reading client got %d messages, want %d", sent+n, sent+1)
	}
}

// closeCode reads a socket that never read until the server's close.
func closeCode(t *testing.T, c *wsConn) websocket.StatusCode {
	t.Helper()
	for {
		if _, _, err := c.WS.Read(t.Context()); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}
