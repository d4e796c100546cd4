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

// TestFrameAboutALeftChatDuringHello: while a connection's hello is built, a read.updated of
// a chat that the first read of the chat list had (the stream exists) but that the user left
// before the hello was finished must not reach the client: the hello does not list the
// chat, so nothing about it may follow. One about a chat the hello lists goes out after it.
func TestFrameAboutALeftChatDuringHello(t *testing.T) {
	c := &conn{h: &Hub{opts: Options{PresenceEvery: time.Hour, QueueBytes: 1 << 20}}, ctx: context.Background(),
		out: &outbox{limit: 1 << 30, writing: true}, streams: map[int64]*stream{}, settingUp: true}
	c.follow(1, chat.ChatHead{Seq: 5}) // listed by the first read, left meanwhile
	c.follow(2, chat.ChatHead{Seq: 5}) // listed and kept
	c.enqueueAbout(1, chat.EventReadUpdated, []byte(`{"type":"read.updated","data":{"chat_id":1}}`))
	c.enqueueAbout(2, chat.EventReadUpdated, []byte(`{"type":"read.updated","data":{"chat_id":2}}`))
	if n := c.out.len(); n != 0 {
		t.Fatalf("%d frames queued before the hello was built, want 0", n)
	}
	c.unfollow(1) // the second read of the list no longer has chat 1
	c.finishSetup(map[int64]int64{2: 5}, nil)
	if n := c.out.len(); n != 1 {
		t.Fatalf("%d frames after the hello, want 1 (chat 2's read.updated)", n)
	}
	if got := string(c.out.frames[0]); got != `{"type":"read.updated","data":{"chat_id":2}}` {
		t.Errorf("frame after the hello: %s", got)
	}
	if c.heldBytes != 0 {
		t.Errorf("heldBytes %d after the hello, want 0", c.heldBytes)
	}
	c.enqueueAbout(1, chat.EventReadUpdated, []byte(`{"type":"read.updated","data":{"chat_id":1}}`))
	if n := c.out.len(); n != 1 {
		t.Errorf("a frame about a chat not followed was queued (%d frames)", n)
	}
}
