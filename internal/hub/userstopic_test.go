package hub_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/testserver"
)

// refusing is a broker whose subscriptions fail while down is set, as Redis's do while it is
// unreachable.
type refusing struct {
	broker.Broker
	down atomic.Bool
}

func (r *refusing) Subscribe(ctx context.Context, topics ...string) error {
	if r.down.Load() {
		return errors.New("broker unreachable")
	}
	return r.Broker.Subscribe(ctx, topics...)
}

// TestUsersTopicAfterBrokerDownAtStart: an instance that started while the broker could not
// subscribe (Redis down) subscribes the users topic once it can: its connections get
// user.updated from the other instances. The topic was subscribed once, at the start, and
// never again: a rename on another instance never reached them.
func TestUsersTopicAfterBrokerDownAtStart(t *testing.T) {
	t.Parallel()
	db := "sqlite://" + filepath.Join(t.TempDir(), "shared.db")
	bus := broker.NewMemoryBus()
	presence := broker.NewMemoryPresence(time.Now)
	a := testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: bus.Instance(), Presence: presence, Hub: hubOptions("a")})
	late := &refusing{Broker: bus.Instance()}
	late.down.Store(true)
	opts := hubOptions("b")
	opts.AuditEvery = 50 * time.Millisecond
	b := testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: late, Presence: presence, Hub: opts})
	late.down.Store(false)

	x, y := a.NewUser(t, "X"), a.NewUser(t, "Y")
	a.Group(t, x, "G", false, y)
	c := b.Dial(t, a.Login(t, y))
	if _, err := a.Svc.Rename(t.Context(), x.P(), "Xavier"); err != nil {
		t.Fatal(err)
	}
	c.NextOf("user.updated", 10*time.Second)
}
