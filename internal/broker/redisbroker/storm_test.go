package redisbroker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wschat/chat/internal/broker/brokertest"
	"github.com/wschat/chat/internal/broker/redisbroker"
)

// TestSubscribeStorm: thousands of topics subscribed in one call (the hub batches a connect
// storm's topics so; sent as SUBSCRIBE commands of at most 1000 channels), and many concurrent
// small calls besides, each confirmed, and each topic delivers. Speed is the hub's test
// (TestConnectStormBatchesSubscriptions); the deadline here is generous.
func TestSubscribeStorm(t *testing.T) {
	url := sharedRedis(t)
	b := newBroker(t, redisbroker.Options{URL: url, Prefix: testPrefix(t)})
	rec := brokertest.NewRecorder()
	if err := b.Start(ctx(t), rec); err != nil {
		t.Fatal(err)
	}
	big := make([]string, 2500)
	for i := range big {
		big[i] = fmt.Sprintf("chat.%d", i)
	}
	long, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := b.Subscribe(long, big...); err != nil {
		t.Fatalf("subscribe %d topics in one call: %v", len(big), err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 500)
	for i := range 500 {
		wg.Go(func() {
			// Each handshake: its own user topic and the topic every one of them shares.
			if err := b.Subscribe(long, fmt.Sprintf("user.%d", i), "chat.0"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent subscribe: %v", err)
	}
	for _, topic := range []string{"chat.2499", "user.499", "chat.0"} {
		if err := b.Publish(ctx(t), topic, []byte("hi "+topic)); err != nil {
			t.Fatal(err)
		}
		rec.WaitFor(t, topic, "hi "+topic)
	}
}
