package hub_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/wschat/chat/internal/broker"
)

// readAllOf is the mark of a chat.read_all frame.
func readAllOf(f frame) int64 {
	var d struct {
		ReadAllSeq int64 `json:"read_all_seq"`
	}
	json.Unmarshal(f.Data, &d)
	return d.ReadAllSeq
}

// seqOf is the seq of a message.new frame.
func seqOf(f frame) int64 {
	var d struct {
		Message struct {
			Seq int64 `json:"seq"`
		} `json:"message"`
	}
	json.Unmarshal(f.Data, &d)
	return d.Message.Seq
}

// readMarks is the world of the read-mark tests: Ann, Ben and Cid in group G, whose messages
// 2 to 4 Ann sent (her mark: 4; everyone has read 1), on a broker that can hold events back;
// mark sets a member's read mark in G.
func readMarks(t *testing.T) (s *testServer, g *gateBroker, ann, ben, cid *testUser, id int64, mark func(u *testUser, seq int64)) {
	g = &gateBroker{Broker: broker.NewMemory()}
	s = startServer(t, serverConfig{Broker: g})
	ann, ben, cid = s.NewUser(t, "Ann"), s.NewUser(t, "Ben"), s.NewUser(t, "Cid")
	id = s.Group(t, ann, "G", false, ben, cid)
	for _, body := range []string{"2", "3", "4"} {
		s.Send(t, ann, id, body)
	}
	mark = func(u *testUser, seq int64) {
		t.Helper()
		if _, err := s.Svc.MarkRead(t.Context(), u.P(), id, seq); err != nil {
			t.Fatal(err)
		}
	}
	return s, g, ann, ben, cid, id, mark
}

// TestReadAllFollowsTheChatsLastMessage: a read mark's chat.read_all comes after every
// message committed before the mark, not right after the message of the mark. Ben's send
// raises the chat's mark to 3 and its event (the message with the mark) is held back; Cid's
// read mark then raises it to 4. Ann's device gets message 5 first, then 4: the read mark
// followed message 4 and went out ahead of 5, and 5's older mark, 3, came after it (an
// outside audit's clients saw 8, then 7, which the connection now drops: see
// TestReadAllNeverGoesBack). And a member who left before a read mark is not told of it:
// Ben's device, whose stream had not yet reached his leave when Cid read, got her mark,
// committed after his leave.
func TestReadAllFollowsTheChatsLastMessage(t *testing.T) {
	t.Parallel()
	s, g, ann, ben, cid, id, mark := readMarks(t)

	t.Run("after a send", func(t *testing.T) {
		mark(cid, 3)
		mark(ben, 2) // read by everyone: 2
		c, _ := s.DialHello(t, ann)
		c.Bind(t)
		g.close()
		s.Send(t, ben, id, "5") // Ben's mark: 5; read by everyone: 3, held back with the message
		mark(cid, 4)            // read by everyone: 4
		var seqs []int64
		for {
			f := c.Next(10 * time.Second)
			if f.Type == "message.new" {
				seqs = append(seqs, seqOf(f))
			}
			if f.Type == "chat.read_all" {
				if got := readAllOf(f); got != 4 {
					t.Fatalf("chat.read_all %d, want 4", got)
				}
				break
			}
		}
		if len(seqs) != 1 || seqs[0] != 5 {
			t.Fatalf("messages before chat.read_all 4: %v, want [5]", seqs)
		}
		g.open(t)
		for _, f := range c.UntilPong("after") {
			if f.Type == "chat.read_all" || f.Type == "message.new" {
				t.Errorf("%s after chat.read_all 4: %s", f.Type, f.Raw)
			}
		}
	})

	t.Run("after a leave", func(t *testing.T) {
		s.Send(t, ann, id, "6") // Ann's mark: 6, Ben's 5, Cid's 4
		mark(ben, 6)
		a, _ := s.DialHello(t, ann)
		a.Bind(t)
		b, _ := s.DialHello(t, ben)
		b.Bind(t)
		g.closeFor("message.", "chat.removed")
		if err := s.Svc.Leave(t.Context(), ben.P(), id); err != nil { // seq 7
			t.Fatal(err)
		}
		mark(cid, 6) // read by everyone (Ann and Cid): 6
		f := a.NextOf("chat.read_all", 10*time.Second)
		if got := readAllOf(f); got != 6 {
			t.Fatalf("Ann's chat.read_all %d, want 6", got)
		}
		g.open(t)
		for {
			f := b.Next(10 * time.Second)
			if f.Type == "chat.removed" {
				break
			}
			if f.Type == "chat.read_all" {
				t.Errorf("Ben's device after his leave: %s", f.Raw)
			}
		}
	})
}

// TestReadAllNeverGoesBack: chat.read_all only ever raises a device's mark, whatever order two
// marks reach the stream in. Two read marks committed one after the other with no message
// between follow the same message; Cid's raises the chat's mark to 3 and is held back, Ben's
// then raises it to 4. When Cid's arrives, 3 is older than what Ann's device has: a client
// that took marks as they came would show messages read by everyone as unread by someone
// again.
func TestReadAllNeverGoesBack(t *testing.T) {
	t.Parallel()
	s, g, ann, ben, cid, _, mark := readMarks(t)
	mark(ben, 3)
	mark(cid, 2) // read by everyone: 2
	c, _ := s.DialHello(t, ann)
	c.Bind(t)

	g.closeFor("chat.read_all")
	mark(cid, 4) // read by everyone: 3, held back
	g.pass()
	mark(ben, 4) // read by everyone: 4
	if got := readAllOf(c.NextOf("chat.read_all", 10*time.Second)); got != 4 {
		t.Fatalf("chat.read_all %d, want 4", got)
	}
	g.open(t)
	for _, f := range c.UntilPong("after") {
		if f.Type == "chat.read_all" {
			t.Errorf("chat.read_all %d after 4", readAllOf(f))
		}
	}
}
