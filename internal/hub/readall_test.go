package hub_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/wschat/chat/internal/broker"
)

// TestReadAllNeverGoesBack: chat.read_all only ever raises a device's mark, whatever order two
// marks reach the stream in. Ben's send raises the chat's mark to 3 and its event (the message
// with the mark) is held back; Cid's read mark then raises it to 4, and its chat.read_all,
// which follows message 4, goes out at once. When Ben's message arrives its mark, 3, is
// older than what Ann's device has: it used to be sent after the 4 (an outside audit's
// clients saw 8, then 7), and a client that took marks as they came showed messages read by
// everyone as unread by someone again.
func TestReadAllNeverGoesBack(t *testing.T) {
	t.Parallel()
	g := &gateBroker{Broker: broker.NewMemory()}
	s := startServer(t, serverConfig{Broker: g})
	ann, ben, cid := s.NewUser(t, "Ann"), s.NewUser(t, "Ben"), s.NewUser(t, "Cid")
	id := s.Group(t, ann, "G", false, ben, cid) // seq 1; everyone has read it
	for _, body := range []string{"2", "3", "4"} {
		s.Send(t, ann, id, body) // Ann's mark: 4
	}
	ctx := t.Context()
	mark := func(u *testUser, seq int64) {
		t.Helper()
		if _, err := s.Svc.MarkRead(ctx, u.P(), id, seq); err != nil {
			t.Fatal(err)
		}
	}
	mark(cid, 3)
	mark(ben, 2) // read by everyone: 2
	c, _ := s.DialHello(t, ann)
	c.Bind(t)
	readAll := func(f frame) int64 {
		var d struct {
			ReadAllSeq int64 `json:"read_all_seq"`
		}
		json.Unmarshal(f.Data, &d)
		return d.ReadAllSeq
	}

	g.close()
	s.Send(t, ben, id, "5") // Ben's mark: 5; read by everyone: 3, held back with the message
	mark(cid, 4)            // read by everyone: 4
	if got := readAll(c.NextOf("chat.read_all", 10*time.Second)); got != 4 {
		t.Fatalf("chat.read_all %d, want 4", got)
	}
	g.open(t)
	c.NextOf("message.new", 10*time.Second)
	for _, f := range c.UntilPong("after") {
		if f.Type == "chat.read_all" {
			t.Errorf("chat.read_all %d after 4", readAll(f))
		}
	}
}
