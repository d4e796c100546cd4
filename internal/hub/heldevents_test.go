package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/hub"
)

// lateEvents holds back every message.new and member.left while closed; open publishes the
// member.left events held and loses the messages (the store has them).
type lateEvents struct {
	broker.Broker
	mu     sync.Mutex
	closed bool
	held   [][2]string
}

func (b *lateEvents) Publish(ctx context.Context, topic string, payload []byte) error {
	b.mu.Lock()
	if b.closed && (bytes.Contains(payload, []byte(`"t":"message.new"`)) || bytes.Contains(payload, []byte(`"t":"member.left"`))) {
		b.held = append(b.held, [2]string{topic, string(payload)})
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	return b.Broker.Publish(ctx, topic, payload)
}

func (b *lateEvents) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}

func (b *lateEvents) open(tb testing.TB) {
	b.mu.Lock()
	held := b.held
	b.closed, b.held = false, nil
	b.mu.Unlock()
	for _, p := range held {
		if bytes.Contains([]byte(p[1]), []byte(`"t":"member.left"`)) {
			if err := b.Broker.Publish(context.Background(), p[0], []byte(p[1])); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// TestEventHeldDuringCatchUpFollowsItsMessage: a chat event that reaches a connection ahead of
// its message (the broker lost the message) is held while the store fills the gap; the page
// read from the store may hold later messages too, and the event must come right after its
// own message, not after the whole page (member.left after the next message's member.joined,
// say). It came after the page.
func TestEventHeldDuringCatchUpFollowsItsMessage(t *testing.T) {
	t.Parallel()
	b := &lateEvents{Broker: broker.NewMemory()}
	s := startServer(t, serverConfig{Broker: b, Hub: hub.Options{AuditEvery: time.Hour}})
	owner, leaver := s.NewUser(t, "Owner"), s.NewUser(t, "Leaver")
	id := s.Group(t, owner, "Team", false, leaver)
	c := s.Dial(t, owner)
	c.UntilPong("settled")

	b.close()
	if err := s.Svc.Leave(t.Context(), leaver.P(), id); err != nil {
		t.Fatal(err)
	}
	after := s.Send(t, owner, id, "after the leave")
	b.open(t)

	var got []frame
	for {
		f := c.Next(30 * time.Second)
		got = append(got, f)
		if f.Type == chat.EventMessageNew {
			var d chat.MessageData
			json.Unmarshal(f.Data, &d)
			if d.Message.Seq == after.Seq {
				break
			}
		}
	}
	got = append(got, c.UntilPong("end")...)
	var order []string
	for _, f := range got {
		switch f.Type {
		case chat.EventMessageNew:
			var d chat.MessageData
			json.Unmarshal(f.Data, &d)
			if d.Message.Event != nil {
				order = append(order, d.Message.Event.Type)
			} else {
				order = append(order, "text")
			}
		case chat.EventMemberLeft:
			order = append(order, "member.left")
		}
	}
	want := []string{chat.SysMemberLeft, "member.left", "text"}
	if len(order) != len(want) || order[0] != want[0] || order[1] != want[1] || order[2] != want[2] {
		t.Fatalf("got %v (%s); want %v", order, raws(got), want)
	}
}
