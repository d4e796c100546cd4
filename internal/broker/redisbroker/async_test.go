package redisbroker_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wschat/chat/internal/broker/redisbroker"
)

// TestPublishAsync: queued publishes reach Redis in the order they were queued, and each
// caller hears the outcome.
func TestPublishAsync(t *testing.T) {
	url := sharedRedis(t)
	prefix := testPrefix(t)
	deleteKeys(t, url, prefix)
	raw := rawClient(t, url)
	b := newBroker(t, redisbroker.Options{URL: url, Prefix: prefix, InstanceID: "async"})
	watch := raw.Subscribe(ctx(t), prefix+":chat.9")
	defer watch.Close()
	if _, err := watch.Receive(ctx(t)); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []error
	wg.Add(n)
	for i := range n {
		b.PublishAsync("chat.9", []byte(fmt.Sprint(i)), func(err error) {
			if err != nil {
				mu.Lock()
				failed = append(failed, err)
				mu.Unlock()
			}
			wg.Done()
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("not every publish was answered")
	}
	if len(failed) > 0 {
		t.Fatalf("%d publishes failed, the first: %v", len(failed), failed[0])
	}
	for i := range n {
		msg, err := watch.ReceiveMessage(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := msg.Payload, fmt.Sprint(i); got != want {
			t.Fatalf("message %d on the wire is %q: publishes out of order", i, got)
		}
	}
}

// TestCloseSendsQueuedPublishes: publishes queued when Close is called (the events of commits
// at the end of a graceful shutdown) still reach Redis, in order, before the broker stops.
func TestCloseSendsQueuedPublishes(t *testing.T) {
	url := sharedRedis(t)
	prefix := testPrefix(t)
	deleteKeys(t, url, prefix)
	raw := rawClient(t, url)
	b := newBroker(t, redisbroker.Options{URL: url, Prefix: prefix, InstanceID: "closing"})
	watch := raw.Subscribe(ctx(t), prefix+":chat.9")
	defer watch.Close()
	if _, err := watch.Receive(ctx(t)); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	for i := range n {
		b.PublishAsync("chat.9", []byte(fmt.Sprint(i)), func(error) {})
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		msg, err := watch.ReceiveMessage(ctx(t))
		if err != nil {
			t.Fatalf("after Close, %d of %d queued publishes arrived: %v", i, n, err)
		}
		if got, want := msg.Payload, fmt.Sprint(i); got != want {
			t.Fatalf("message %d on the wire is %q", i, got)
		}
	}
}
