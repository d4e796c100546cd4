package redisbroker_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/wschat/chat/internal/broker/brokertest"
	"github.com/wschat/chat/internal/broker/redisbroker"
)

// TestSubscribeStorm: a connect storm subscribes thousands of topics at once, in one big call
// (sent as SUBSCRIBE commands of at most 1000 channels) and in many concurrent small ones,
// every one confirmed within the callers' deadline, and each topic delivers.
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
	if err := b.Subscribe(ctx(t), big...); err != nil {
		t.Fatalf("subscribe %d topics in one call: %v", len(big), err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2000)
	for i := range 2000 {
		wg.Go(func() {
			// Each handshake: its own user topic and the topic every one of them shares.
			if err := b.Subscribe(ctx(t), fmt.Sprintf("user.%d", i), "chat.0"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent subscribe: %v", err)
	}
	for _, topic := range []string{"chat.2499", "user.1999", "chat.0"} {
		if err := b.Publish(ctx(t), topic, []byte("hi "+topic)); err != nil {
			t.Fatal(err)
		}
		rec.WaitFor(t, topic, "hi "+topic)
	}
}
