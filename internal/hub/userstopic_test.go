package hub_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/testserver"
)

// refusing is a broker whose subscriptions fail while down is set, as Redis's do while it is
// unreachable for longer than a subscribe waits. It remembers what it subscribed.
type refusing struct {
	broker.Broker
	down atomic.Bool
	mu   sync.Mutex
	subs map[string]bool
}

func (r *refusing) Subscribe(ctx context.Context, topics ...string) error {
	if r.down.Load() {
		return errors.New("broker unreachable")
	}
	if err := r.Broker.Subscribe(ctx, topics...); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range topics {
		r.subs[t] = true
	}
	return nil
}

func (r *refusing) subscribed(topic string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.subs[topic]
}

// TestTopicsSubscribedAfterBrokerDown: an instance whose subscriptions failed (it started while
// Redis was down, and a device connected to it meanwhile) subscribes them once it can, while
// the device stays connected: the users topic, the device's user's and its chat's. Each was
// subscribed when the instance started or the device connected, and never again: a rename on
// another instance never reached the device, and its chat's messages came only from the
// audit's reads of the store.
func TestTopicsSubscribedAfterBrokerDown(t *testing.T) {
	t.Parallel()
	db := "sqlite://" + filepath.Join(t.TempDir(), "shared.db")
	bus := broker.NewMemoryBus()
	presence := broker.NewMemoryPresence(time.Now)
	a := testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: bus.Instance(), Presence: presence, Hub: hubOptions("a")})
	late := &refusing{Broker: bus.Instance(), subs: map[string]bool{}}
	late.down.Store(true)
	opts := hubOptions("b")
	opts.AuditEvery = 50 * time.Millisecond
	b := testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: late, Presence: presence, Hub: opts})
	x, y := a.NewUser(t, "X"), a.NewUser(t, "Y")
	id := a.Group(t, x, "G", false, y)
	c := b.Dial(t, a.Login(t, y))
	late.down.Store(false)

	deadline := time.Now().Add(10 * time.Second)
	for _, topic := range []string{"users", "user." + strconv.FormatInt(y.ID, 10), "chat." + strconv.FormatInt(id, 10)} {
		for !late.subscribed(topic) {
			if time.Now().After(deadline) {
				t.Fatalf("%s not subscribed 10 s after the broker came back", topic)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if _, err := a.Svc.Rename(t.Context(), x.P(), "Xavier"); err != nil {
		t.Fatal(err)
	}
	c.NextOf("user.updated", 10*time.Second)
}
