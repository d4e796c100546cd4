package hub

import (
	"context"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// TestPresenceMemoryIsBounded: a connection remembers the last presence it sent per user, to
// send each change once; however many users it hears of, that memory stays under maxPresence,
// and a change is still sent.
func TestPresenceMemoryIsBounded(t *testing.T) {
	// An outbox whose writer "runs": frames stay queued for the test to count. The flush is
	// called by the test, not by the timer.
	c := &conn{h: &Hub{opts: Options{PresenceEvery: time.Hour}}, ctx: context.Background(),
		out: &outbox{limit: 1 << 30, writing: true}, presence: map[int64]bool{}}
	on := func(id int64, online bool) {
		c.deliverPresence(0, chat.PresenceState{UserID: id, Online: online}, []byte(`{"type":"presence"}`))
	}
	for id := int64(1); id <= 2*maxPresence+5; id++ {
		on(id, true)
		if id%1000 == 0 {
			c.flushPresence()
		}
	}
	c.flushPresence()
	if n := len(c.presence); n > maxPresence {
		t.Errorf("%d presence states remembered, want at most %d", n, maxPresence)
	}
	before := c.out.len()
	on(2*maxPresence+5, true)
	c.flushPresence()
	on(2*maxPresence+5, false)
	c.flushPresence()
	if got := c.out.len() - before; got != 1 {
		t.Errorf("%d frames for one repeat and one change, want 1", got)
	}
}

// TestPresenceIsCoalesced: changes collected between two flushes go out as one frame to a
// client that subscribed, with the last state of each user; a flap cancels out.
func TestPresenceIsCoalesced(t *testing.T) {
	c := &conn{h: &Hub{opts: Options{PresenceEvery: time.Hour}}, ctx: context.Background(),
		out: &outbox{limit: 1 << 30, writing: true}, batched: true}
	for id := int64(1); id <= 100; id++ {
		c.deliverPresence(0, chat.PresenceState{UserID: id, Online: true}, nil)
	}
	c.flushPresence()
	c.deliverPresence(0, chat.PresenceState{UserID: 7, Online: false}, nil)
	c.deliverPresence(0, chat.PresenceState{UserID: 7, Online: true}, nil) // back before the flush
	c.deliverPresence(0, chat.PresenceState{UserID: 8, Online: false}, nil)
	c.flushPresence()
	if got := c.out.len(); got != 2 {
		t.Errorf("%d presence frames for two intervals, want 2", got)
	}
}

// TestFrameCountsFitFrameTypes: every counted frame type has its counter (a type added to
// FrameTypes without growing FrameCounts made "other" count out of range: a panic).
func TestFrameCountsFitFrameTypes(t *testing.T) {
	var f FrameCounts
	if len(f) != len(FrameTypes) {
		t.Fatalf("FrameCounts has %d counters for %d FrameTypes", len(f), len(FrameTypes))
	}
	for _, typ := range append(FrameTypes, "never-heard-of") {
		f.Add(typ)
	}
}
