package hub

import (
	"strconv"
	"testing"
)

// TestPresenceMemoryIsBounded: a connection remembers the last presence it sent per user, to
// send each change once; however many users it hears of, that memory stays under maxPresence,
// and a change is still sent.
func TestPresenceMemoryIsBounded(t *testing.T) {
	// An outbox whose writer "runs": frames stay queued for the test to count.
	c := &conn{h: &Hub{}, out: &outbox{limit: 1 << 30, writing: true}, presence: map[int64]bool{}}
	for id := int64(1); id <= 2*maxPresence+5; id++ {
		c.deliverPresence(0, id, true, []byte(`{"type":"presence"}`))
	}
	if n := len(c.presence); n > maxPresence {
		t.Errorf("%d presence states remembered, want at most %d", n, maxPresence)
	}
	before := c.out.len()
	c.deliverPresence(0, 2*maxPresence+5, true, []byte(`{"type":"presence"}`))
	c.deliverPresence(0, 2*maxPresence+5, false, []byte(`{"type":"presence","off":`+strconv.Itoa(1)+`}`))
	if got := c.out.len() - before; got != 1 {
		t.Errorf("%d frames for one repeat and one change, want 1", got)
	}
}
