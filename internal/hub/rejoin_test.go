package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/hub"
)

// rejoinBroker loses the news of one user's leave of one chat (all it publishes, on the
// user's channel and the chat's, while losing is set: chat.removed, the system message, the
// read-all mark that follows it) and holds that user's next chat.added until let go: what
// Redis can do to events on different channels.
type rejoinBroker struct {
	broker.Broker
	user, chat int64
	mu         sync.Mutex
	losing     bool
	held       [][2]string
}

func (b *rejoinBroker) Publish(ctx context.Context, topic string, payload []byte) error {
	b.mu.Lock()
	ours := topic == fmt.Sprintf("user.%d", b.user) || topic == fmt.Sprintf("chat.%d", b.chat)
	switch {
	case ours && b.losing:
		b.mu.Unlock()
		return nil
	case topic == fmt.Sprintf("user.%d", b.user) && bytes.Contains(payload, []byte(`"t":"chat.added"`)):
		b.held = append(b.held, [2]string{topic, string(payload)})
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	return b.Broker.Publish(ctx, topic, payload)
}

// lose loses what is published while f runs (the memory broker publishes before a call of
// the service returns).
func (b *rejoinBroker) lose(f func()) {
	b.mu.Lock()
	b.losing = true
	b.mu.Unlock()
	f()
	b.mu.Lock()
	b.losing = false
	b.mu.Unlock()
}

func (b *rejoinBroker) letGo(t *testing.T) {
	b.mu.Lock()
	held := b.held
	b.held = nil
	b.mu.Unlock()
	if len(held) != 1 {
		t.Fatalf("%d chat.added held, want 1", len(held))
	}
	if err := b.Broker.Publish(context.Background(), held[0][0], []byte(held[0][1])); err != nil {
		t.Fatal(err)
	}
}

// TestRejoinWhileCatchingUp: a member who leaves a group and is invited back, whose device's
// stream of the group is filling a gap from the store when the invitation's chat.added comes
// (the leave's news lost, the invitation's message ahead of its chat.added), keeps getting the
// group's messages. The read from the store brought the leave's system message, which ended
// the stream of a membership already renewed: the device had chat.added and then nothing more
// of the group, for as long as it stayed connected (the hub still counted it in).
func TestRejoinWhileCatchingUp(t *testing.T) {
	t.Parallel()
	b := &rejoinBroker{Broker: broker.NewMemory()}
	st := newStall()
	// No audit: it could read seq 3 for the stream before the invitation, as below.
	s := startServer(t, serverConfig{Broker: b, Hub: hub.Options{AuditEvery: time.Hour},
		WrapStore: func(s chat.Store) chat.Store { return &stallingStore{Store: s, history: st} }})
	ann, leo := s.NewUser(t, "Ann"), s.NewUser(t, "Leo")
	id := s.Group(t, ann, "G", false, leo) // seq 1
	s.Send(t, ann, id, "two")
	b.user, b.chat = leo.ID, id
	c, _ := s.DialHello(t, leo)
	c.Bind(t)
	ctx := context.Background()

	// Every news of the leave (seq 3) is lost, the read-all mark that follows it too: a
	// stream that heard of it would read seq 3 from the store when the hub's reorderer gave
	// up waiting for the message (reorderWait), before the invitation if that came later
	// (a busy machine), and end at the leave, rightly, with nothing left for the stall. So
	// the only news of the chat after seq 2 is the invitation's, and the stream's gap read is
	// made after the invitation is committed.
	b.lose(func() {
		if err := s.Svc.Leave(ctx, leo.P(), id); err != nil { // seq 3
			t.Error(err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	st.arm()
	if _, err := s.Svc.Invite(ctx, ann.P(), id, leo.ID); err != nil { // seq 4, its chat.added held
		t.Fatal(err)
	}
	st.waitEntered(t, "the gap before the invitation's message")
	b.letGo(t)
	c.NextOf("chat.added", 10*time.Second)
	st.free()

	five := s.Send(t, ann, id, "five")
	for {
		f := c.NextOf("message.new", 10*time.Second)
		var d chat.MessageData
		json.Unmarshal(f.Data, &d)
		if d.Message.ChatID == id && d.Message.Seq < five.Seq {
			t.Errorf("message %d, history of the membership the device was told of at seq 4", d.Message.Seq)
		}
		if d.Message.ChatID == id && d.Message.Seq == five.Seq {
			return
		}
	}
}
