package hub_test

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/client"
	"github.com/wschat/chat/internal/hub"
)

// recording is a broker that remembers which topics are subscribed.
type recording struct {
	broker.Broker
	mu   sync.Mutex
	subs map[string]int // how many times each topic was subscribed, net of unsubscribes
}

func (r *recording) Subscribe(ctx context.Context, topics ...string) error {
	r.mu.Lock()
	for _, t := range topics {
		r.subs[t]++
	}
	r.mu.Unlock()
	return r.Broker.Subscribe(ctx, topics...)
}

func (r *recording) Unsubscribe(ctx context.Context, topics ...string) error {
	r.mu.Lock()
	for _, t := range topics {
		r.subs[t]--
	}
	r.mu.Unlock()
	return r.Broker.Unsubscribe(ctx, topics...)
}

func (r *recording) topics() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for t, n := range r.subs {
		if n < 0 || n > 1 {
			out = append(out, "BAD:"+t)
		}
		if n == 1 {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// waitTopics waits until the subscribed topics are exactly want.
func (r *recording) waitTopics(t *testing.T, want ...string) {
	t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := r.topics()
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscribed topics = %v, want %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dial(t *testing.T, c *client.Client) *client.Conn {
	t.Helper()
	conn, err := c.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Await(context.Background(), "hello"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestSubscriptionsFollowConnectionsAndMembership: a topic is subscribed while a local connection
// needs it, once however many need it, and dropped when the last one goes. The "users" topic
// (user.updated, rare) is subscribed for the hub's whole life.
func TestSubscriptionsFollowConnectionsAndMembership(t *testing.T) {
	r := &recording{Broker: broker.NewMemory(), subs: map[string]int{}}
	url, _ := newServer(t, r, hub.Options{InstanceID: "test", OfflineGrace: 50 * time.Millisecond})
	third := login(t, url, "third@example.com") // member of General (2) and Random (3)

	a := dial(t, third)
	r.waitTopics(t, "users", "user.3", "chat.2", "chat.3")
	b := dial(t, third) // a second device subscribes nothing new
	r.waitTopics(t, "users", "user.3", "chat.2", "chat.3")

	second := login(t, url, "second@example.com") // General (2) and the private chat (1)
	s := dial(t, second)
	r.waitTopics(t, "users", "user.3", "chat.2", "chat.3", "user.2", "chat.1")

	// Leaving Random drops its topic; third is its only local member.
	if err := third.Do(context.Background(), http.MethodPost, "/api/v1/chats/3/leave", nil, nil); err != nil {
		t.Fatal(err)
	}
	r.waitTopics(t, "users", "user.3", "chat.2", "user.2", "chat.1")
	// Second joins Random: subscribed again.
	if err := second.Do(context.Background(), http.MethodPost, "/api/v1/chats/3/join", nil, nil); err != nil {
		t.Fatal(err)
	}
	r.waitTopics(t, "users", "user.3", "chat.2", "user.2", "chat.1", "chat.3")

	a.Close()
	r.waitTopics(t, "users", "user.3", "chat.2", "user.2", "chat.1", "chat.3") // b is still there
	b.Close()
	r.waitTopics(t, "users", "chat.2", "user.2", "chat.1", "chat.3") // third is gone after the grace period
	s.Close()
	r.waitTopics(t, "users")
}
