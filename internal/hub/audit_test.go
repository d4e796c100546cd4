package hub_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/hub"
)

// sink is a broker that, once on is set, drops every chat event: what an instance that
// stopped between its commits and its publishes leaves behind.
type sink struct {
	broker.Broker
	on atomic.Bool
}

func (b *sink) Publish(ctx context.Context, topic string, payload []byte) error {
	if b.on.Load() && strings.HasPrefix(topic, "chat.") {
		return nil
	}
	return b.Broker.Publish(ctx, topic, payload)
}

// TestAuditHealsALostTail: a chat's newest message, edit and reaction whose events were lost,
// with nothing of the chat after them to show the gap, still reach a connected device: the
// audit finds its stream behind the chat's head and catches it up from the store. Before it,
// they reached the device only when it reconnected. While nothing is lost the audit reads
// nothing for any connection.
func TestAuditHealsALostTail(t *testing.T) {
	t.Parallel()
	const every = 300 * time.Millisecond
	b := &sink{Broker: broker.NewMemory()}
	s := startServer(t, serverConfig{Broker: b, Hub: hub.Options{AuditEvery: every}})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	id := s.Group(t, ann, "G", false, ben)
	c, hello := s.DialHello(t, ben)
	d := newDevice("Ben's device", c, id, hello)
	ctx := t.Context()

	// Delivered as usual: the audits that follow find nothing behind.
	first := s.Send(t, ann, id, "first")
	if _, err := s.Svc.React(ctx, ann.P(), id, first.Seq, "👍", true); err != nil {
		t.Fatal(err)
	}
	_, seq, rev := storeView(t, s, ann, id)
	d.catchUp(t, seq, rev)
	// (A busy machine may deliver an event later than an audit looks, which then reads the
	// store for it: harmless, and not what is checked here. Once the device has everything,
	// no audit may read anything.)
	before := s.Hub.Stats().AuditHeals.Load()
	time.Sleep(4 * every)
	if n := s.Hub.Stats().AuditHeals.Load() - before; n != 0 {
		t.Fatalf("the audit caught up %d streams while nothing was lost", n)
	}

	// Lost: a message, an edit and a reaction, the chat's last events.
	b.on.Store(true)
	second := s.Send(t, ann, id, "second")
	if _, err := s.Svc.EditMessage(ctx, ann.P(), id, first.Seq, "first, edited"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Svc.React(ctx, ben.P(), id, second.Seq, "🎉", true); err != nil {
		t.Fatal(err)
	}
	want, seq, rev := storeView(t, s, ann, id)
	d.catchUp(t, seq, rev)
	d.checkView(t, want)
	if n := s.Hub.Stats().AuditHeals.Load() - before; n < 1 {
		t.Errorf("the audit caught up %d streams, want the device's", n)
	}
}
