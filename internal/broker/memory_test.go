package broker_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/broker/brokertest"
)

// perTest returns the value made by newValue for t, making it on first use, so that the
// instances of one test share a backend and those of different tests do not.
func perTest[V any](newValue func() V) func(t *testing.T) V {
	var mu sync.Mutex
	values := make(map[*testing.T]V)
	return func(t *testing.T) V {
		mu.Lock()
		defer mu.Unlock()
		v, ok := values[t]
		if !ok {
			v = newValue()
			values[t] = v
			t.Cleanup(func() {
				mu.Lock()
				delete(values, t)
				mu.Unlock()
			})
		}
		return v
	}
}

func TestMemory(t *testing.T) {
	bus := perTest(broker.NewMemoryBus)
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		return bus(t).Instance()
	})
}

func TestMemoryPresence(t *testing.T) {
	table := perTest(func() *broker.MemoryPresence { return broker.NewMemoryPresence(time.Now) })
	brokertest.RunPresence(t, func(t *testing.T, instance string) broker.Presence {
		return table(t).Instance(instance)
	})
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestMemoryPresenceTTLBoundary(t *testing.T) {
	ctx := t.Context()
	clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := broker.NewMemoryPresence(clock.Now)
	b := a.Instance("b")
	if err := a.SetOnline(ctx, 10*time.Second, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.SetOnline(ctx, 20*time.Second, 1); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		advance time.Duration
		want    bool
	}{
		{9 * time.Second, true},
		{time.Second, true}, // a has expired at 10s, b holds until 20s
		{10*time.Second - time.Nanosecond, true},
		{time.Nanosecond, false}, // exactly at b's expiry: gone
	}
	for _, tt := range tests {
		clock.Add(tt.advance)
		got, err := a.Online(ctx, []int64{1})
		if err != nil {
			t.Fatal(err)
		}
		if got[1] != tt.want {
			t.Errorf("at %v: online = %v, want %v", clock.Now().Format(time.TimeOnly), got[1], tt.want)
		}
	}
}

// blockingHandler holds every Deliver until release is closed.
type blockingHandler struct {
	*brokertest.Recorder
	release chan struct{}
}

func (h blockingHandler) Deliver(topic string, payload []byte) {
	<-h.release
	h.Recorder.Deliver(topic, payload)
}

func TestMemorySlowHandlerDoesNotBlockPublish(t *testing.T) {
	ctx := t.Context()
	m := broker.NewMemory()
	h := blockingHandler{Recorder: brokertest.NewRecorder(), release: make(chan struct{})}
	if err := m.Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Subscribe(ctx, "chat.1"); err != nil {
		t.Fatal(err)
	}

	// The first payload is taken by the blocked handler, the next MemoryQueueLen fill the
	// queue, the rest are dropped. None of it may block.
	const n = broker.MemoryQueueLen + 50
	published := make(chan error, 1)
	go func() {
		for i := range n {
			if err := m.Publish(ctx, "chat.1", []byte(strconv.Itoa(i))); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	select {
	case err := <-published:
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
	case <-time.After(brokertest.Wait):
		t.Fatal("Publish blocked on a slow handler")
	}

	close(h.release)
	h.WaitUntil(t, "Resubscribed", func(_ []brokertest.Delivery, resubscribes int) bool { return resubscribes > 0 })
	got := h.Deliveries()
	if len(got) < broker.MemoryQueueLen || len(got) > broker.MemoryQueueLen+1 {
		t.Errorf("delivered %d before Resubscribed, want the queue (%d) and maybe the one in hand", len(got), broker.MemoryQueueLen)
	}
	last := -1
	for _, d := range got {
		i, _ := strconv.Atoi(d.Payload)
		if i <= last {
			t.Fatalf("delivered %d after %d: what was queued must come in order", i, last)
		}
		last = i
	}

	// Delivery goes on, and Resubscribed came once.
	if err := m.Publish(ctx, "chat.1", []byte("later")); err != nil {
		t.Fatal(err)
	}
	h.WaitFor(t, "chat.1", "later")
	if got := h.Resubscribes(); got != 1 {
		t.Errorf("Resubscribed called %d times, want 1", got)
	}
}

func TestMemorySubscribeBeforeStart(t *testing.T) {
	m := broker.NewMemory()
	defer m.Close()
	if err := m.Subscribe(context.Background(), "chat.1"); err == nil {
		t.Error("Subscribe before Start: no error")
	}
}
