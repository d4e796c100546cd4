package hub_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// TestMentionsLive: a mention sent over one socket reaches every device of the mentioned
// member with its mentions (a non-member's dropped), the hello counts it unread, and a read
// on one device brings unread_mentions down on the others.
func TestMentionsLive(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	ann, ben, eve := s.NewUser(t, "Ann"), s.NewUser(t, "Ben"), s.NewUser(t, "Eve")
	g := s.Group(t, ann, "Team", false, ben)
	p := s.Private(t, ann, ben)
	a := s.Dial(t, ann)
	b1, b2 := s.Dial(t, ben), s.Dial(t, ben)

	msg := func(f frame) chat.Message {
		var d chat.MessageData
		if err := json.Unmarshal(f.Data, &d); err != nil {
			t.Fatalf("%s: %v", f.Raw, err)
		}
		return d.Message
	}
	var seqs []int64
	for i, body := range []string{"@Ben @Eve one", "@Ben two"} {
		got := a.RoundTrip("message.send", "m", map[string]any{"chat_id": g, "client_id": []string{"c1", "c2"}[i], "body": body,
			"mentions": []int64{ben.ID, eve.ID}})
		if acks := ofType(got, "message.ack"); len(acks) != 1 {
			t.Fatalf("send %d: %s", i, got)
		}
		for _, c := range []*wsConn{b1, b2} {
			m := msg(c.NextOf("message.new", 10*time.Second))
			if !slices.Equal(m.Mentions, []int64{ben.ID}) || m.MentionAll {
				t.Errorf("Ben's message.new: mentions %v, want only Ben (Eve is no member)", m.Mentions)
			}
			seqs = append(seqs, m.Seq)
		}
	}

	helloChat := func(f frame) (unread, mentions int64) {
		var d struct {
			Chats []struct {
				ID             int64 `json:"id"`
				UnreadCount    int64 `json:"unread_count"`
				UnreadMentions int64 `json:"unread_mentions"`
			} `json:"chats"`
		}
		if err := json.Unmarshal(f.Data, &d); err != nil {
			t.Fatal(err)
		}
		for _, c := range d.Chats {
			if c.ID == g {
				return c.UnreadCount, c.UnreadMentions
			}
		}
		t.Fatalf("hello without chat %d: %s", g, f.Raw)
		return 0, 0
	}
	_, hello := s.DialHello(t, ben)
	if u, m := helloChat(hello); u != 2 || m != 2 {
		t.Errorf("hello: unread_count %d, unread_mentions %d, want 2 and 2", u, m)
	}

	read := func(seq, wantUnread, wantMentions int64) {
		t.Helper()
		b1.Send("read", "r", map[string]any{"chat_id": g, "seq": seq})
		for _, c := range []*wsConn{b1, b2} {
			var d chat.ReadUpdatedData
			f := c.NextOf("read.updated", 10*time.Second)
			if err := json.Unmarshal(f.Data, &d); err != nil {
				t.Fatal(err)
			}
			if d.ChatID != g || d.LastReadSeq != seq || d.UnreadCount != wantUnread || d.UnreadMentions != wantMentions {
				t.Errorf("read.updated %s, want seq %d, unread_count %d, unread_mentions %d", f.Raw, seq, wantUnread, wantMentions)
			}
		}
	}
	read(seqs[0], 1, 1)
	read(seqs[2], 0, 0)

	// @all in a private chat is refused with its own code.
	got := a.RoundTrip("message.send", "all", map[string]any{"chat_id": p, "client_id": "c3", "body": "@all", "mention_all": true})
	if code, _ := errorOf(got, "all"); code != chat.CodeMentionAllRefused {
		t.Errorf("@all in a private chat: %s, want error %s", got, chat.CodeMentionAllRefused)
	}
}
