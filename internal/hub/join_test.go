package hub_test

// A user who joins a chat is told by chat.added, which reaches each instance through the broker
// and is followed off the delivery goroutine. Until then the user's connections there do not
// follow the chat, but the user may already act in it from another device or this one: what
// comes in that window must reach the user's devices once, and after chat.added.

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// holdFollows makes the hub wait before it follows any chat.added of chatID until the
// returned func is called.
func holdFollows(s *testServer, chatID int64) (release func()) {
	gate := make(chan struct{})
	s.Hub.BeforeFollow(func(_, id int64) {
		if id == chatID {
			<-gate
		}
	})
	return func() { close(gate) }
}

// TestOwnSendsBeforeChatAddedAreNotEchoed: a connection that sends into a chat its user just
// joined, before chat.added has reached its instance, gets each message once, as message.ack:
// the catch-up after chat.added reads them from the store, and sent them again as message.new.
func TestOwnSendsBeforeChatAddedAreNotEchoed(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	owner, joiner := s.NewUser(t, "Owner"), s.NewUser(t, "Joiner")
	g := s.Group(t, owner, "Open", true)
	s.Send(t, owner, g, "before")
	c := s.Dial(t, joiner)
	release := holdFollows(s, g)
	if _, err := s.Svc.Join(context.Background(), joiner.P(), g); err != nil {
		t.Fatal(err)
	}
	var own []int64
	for i := range 3 {
		got := c.RoundTrip("message.send", strconv.Itoa(i), map[string]any{"chat_id": g, "client_id": "j" + strconv.Itoa(i), "body": "hi"})
		acks := ofType(got, "message.ack")
		if len(acks) != 1 {
			t.Fatalf("send %d: %s, want one message.ack", i, raws(got))
		}
		var m msg
		json.Unmarshal(acks[0].Data, &m)
		own = append(own, m.Message.Seq)
	}
	release()
	c.NextOf(chat.EventChatAdded, 10*time.Second)
	after := s.Send(t, owner, g, "after") // comes after any echo of the joiner's own
	for {
		f := c.NextOf(chat.EventMessageNew, 10*time.Second)
		var m msg
		json.Unmarshal(f.Data, &m)
		if m.Message.Seq == after.Seq {
			break
		}
		t.Errorf("message.new of seq %d, one of the connection's own %v (acked before chat.added)", m.Message.Seq, own)
	}
}

// TestReadMarkBeforeChatAddedComesAfterIt: a read mark of the joiner's (from another device)
// that reaches an instance before it has followed the chat's chat.added is sent there after
// chat.added: it was dropped (the connection did not follow the chat yet), or, once the
// connection followed it, sent ahead of chat.added, whose older mark then undid it.
func TestReadMarkBeforeChatAddedComesAfterIt(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	owner, joiner := s.NewUser(t, "Owner"), s.NewUser(t, "Joiner")
	g := s.Group(t, owner, "Open", true)
	c := s.Dial(t, joiner)
	release := holdFollows(s, g)
	if _, err := s.Svc.Join(context.Background(), joiner.P(), g); err != nil {
		t.Fatal(err)
	}
	last := s.Send(t, owner, g, "after the join")
	if _, err := s.Svc.MarkRead(context.Background(), joiner.P(), g, last.Seq); err != nil {
		t.Fatal(err)
	}
	release()
	var order []string
	for len(order) < 2 {
		f := c.Next(10 * time.Second)
		switch f.Type {
		case chat.EventChatAdded, chat.EventReadUpdated:
			order = append(order, f.Type)
		}
		if f.Type == chat.EventReadUpdated {
			var d struct {
				LastReadSeq int64 `json:"last_read_seq"`
				UnreadCount int   `json:"unread_count"`
			}
			json.Unmarshal(f.Data, &d)
			if d.LastReadSeq != last.Seq || d.UnreadCount != 0 {
				t.Errorf("read.updated %s, want mark %d and nothing unread", f.Data, last.Seq)
			}
		}
	}
	if order[0] != chat.EventChatAdded {
		t.Errorf("frames %v, want chat.added first", order)
	}
}

// sendsBetween is a store whose UserByID, which a join calls between adding the member and
// reading the chat for chat.added, first runs do (once).
type sendsBetween struct {
	chat.Store
	do func()
}

func (s *sendsBetween) UserByID(ctx context.Context, id int64) (chat.User, error) {
	if f := s.do; f != nil {
		s.do = nil
		f()
	}
	return s.Store.UserByID(ctx, id)
}

// TestChatAddedCountsMessagesAfterTheJoin: chat.added tells the joiner the chat as they see it,
// unread count included: messages sent between the join and the read of the chat are in its
// last seq, so they never come live, and chat.added said 0 unread.
func TestChatAddedCountsMessagesAfterTheJoin(t *testing.T) {
	t.Parallel()
	wrapped := &sendsBetween{}
	s := startServer(t, serverConfig{WrapStore: func(st chat.Store) chat.Store { wrapped.Store = st; return wrapped }})
	owner, joiner := s.NewUser(t, "Owner"), s.NewUser(t, "Joiner")
	g := s.Group(t, owner, "Open", true)
	c := s.Dial(t, joiner)
	wrapped.do = func() {
		for _, body := range []string{"one", "two"} {
			if _, _, err := s.Svc.Send(context.Background(), owner.P(), chat.SendInput{ChatID: g, Body: body, ClientID: body}); err != nil {
				t.Error(err)
			}
		}
	}
	d, err := s.Svc.Join(context.Background(), joiner.P(), g)
	if err != nil {
		t.Fatal(err)
	}
	if d.UnreadCount != 2 {
		t.Fatalf("the join's answer: %d unread, want 2 (the test's sends did not come between)", d.UnreadCount)
	}
	f := c.NextOf(chat.EventChatAdded, 10*time.Second)
	var added struct {
		Chat chat.ChatSummary `json:"chat"`
	}
	json.Unmarshal(f.Data, &added)
	if got := added.Chat; got.UnreadCount != 2 || got.LastSeq != d.LastSeq || got.MyLastReadSeq != d.MyLastReadSeq {
		t.Errorf("chat.added: last seq %d, mark %d, %d unread; want %d, %d, 2", got.LastSeq, got.MyLastReadSeq, got.UnreadCount, d.LastSeq, d.MyLastReadSeq)
	}
}

// TestChatEventsWhileAJoinIsFollowed: the chat's events that reach the instance after a
// joiner's chat.added did, and before the instance has set the joiner's connections up to
// follow the chat (follow queued behind others, or waiting for a subscription), reach those
// connections too, each right after the message it follows. They went to the chat's followers
// only, so the joiner's device got the owner's leave and the handover as messages, but no
// member.left and no member.role (an outside audit saw it in 1 to 3 of 30 joins racing the
// last member's leave).
func TestChatEventsWhileAJoinIsFollowed(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	owner, watcher, joiner := s.NewUser(t, "Owner"), s.NewUser(t, "Watcher"), s.NewUser(t, "Joiner")
	g := s.Group(t, owner, "Open", true, watcher)
	w := s.Dial(t, watcher) // follows the chat on this instance: its events reach the instance
	c := s.Dial(t, joiner)
	w.UntilPong("settled")
	c.UntilPong("settled")
	release := holdFollows(s, g)
	if _, err := s.Svc.Join(t.Context(), joiner.P(), g); err != nil {
		t.Fatal(err)
	}
	if err := s.Svc.Leave(t.Context(), owner.P(), g); err != nil {
		t.Fatal(err)
	}
	// The watcher has them: the instance has fanned them out.
	w.NextOf("member.left", 10*time.Second)
	w.NextOf("member.role", 10*time.Second)
	release()

	var got []string
	for len(got) == 0 || got[len(got)-1] != "member.role" {
		f := c.Next(10 * time.Second)
		if chatOf(f) != g {
			continue
		}
		name := f.Type
		if f.Type == "message.new" {
			var d chat.MessageData
			json.Unmarshal(f.Data, &d)
			if d.Message.Event != nil {
				name += " " + d.Message.Event.Type
			}
		}
		got = append(got, name)
	}
	want := []string{"chat.added", "message.new member_left", "member.left", "message.new owner_transferred", "member.role"}
	if !slices.Equal(got, want) {
		t.Errorf("the joiner's device: %q, want %q", got, want)
	}
}
