package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/client"
	"github.com/wschat/chat/internal/hub"
)

// lossy is a broker that loses and reorders message events on purpose: of every five
// message.new payloads it drops the second, and holds the fourth back until after the fifth.
type lossy struct {
	broker.Broker
	mu   sync.Mutex
	n    int
	held []func()
}

func (l *lossy) Publish(ctx context.Context, topic string, payload []byte) error {
	if !bytes.Contains(payload, []byte(`"t":"message.new"`)) {
		return l.Broker.Publish(ctx, topic, payload)
	}
	l.mu.Lock()
	l.n++
	n := l.n
	switch n % 5 {
	case 2:
		l.mu.Unlock()
		return nil // lost
	case 4:
		l.held = append(l.held, func() { l.Broker.Publish(ctx, topic, payload) })
		l.mu.Unlock()
		return nil
	}
	var release []func()
	if n%5 == 0 {
		release, l.held = l.held, nil
	}
	l.mu.Unlock()
	err := l.Broker.Publish(ctx, topic, payload)
	for _, f := range release {
		f() // the held event arrives after a later one
	}
	return err
}

func newServer(t *testing.T, b broker.Broker, opts ...hub.Options) (string, *hub.Hub) {
	t.Helper()
	cfg := serverConfig{Broker: b}
	if len(opts) > 0 {
		cfg.Hub = opts[0]
	}
	s := startServer(t, cfg)
	return s.URL, s.Hub
}

func login(t *testing.T, url, email string) *client.Client {
	t.Helper()
	c := client.New(url)
	if err := c.Login(context.Background(), email, "password"); err != nil {
		t.Fatal(err)
	}
	return c
}

type msg struct {
	Message struct {
		Seq      int64  `json:"seq"`
		ClientID string `json:"client_id"`
	} `json:"message"`
}

// collect reads message.new frames of chat 2 until it has want of them or time runs out.
func collect(t *testing.T, conn *client.Conn, want int) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var seqs []int64
	for len(seqs) < want {
		f, err := conn.Next(ctx)
		if err != nil {
			t.Fatalf("after %d messages: %v", len(seqs), err)
		}
		if f.Type != "message.new" {
			continue
		}
		var m msg
		json.Unmarshal(f.Data, &m)
		seqs = append(seqs, m.Message.Seq)
	}
	// Nothing more may come: no duplicates after the last one.
	quiet, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	for {
		f, err := conn.Next(quiet)
		if err != nil {
			break
		}
		if f.Type == "message.new" {
			t.Fatalf("an extra message.new after %d: %s", want, f.Data)
		}
	}
	return seqs
}

// TestGapHealing: whatever the broker loses or reorders, every connection of every member gets
// every message once and in seq order.
func TestGapHealing(t *testing.T) {
	b := &lossy{Broker: broker.NewMemory()}
	url, _ := newServer(t, b)
	sender := login(t, url, "first@example.com")
	var readers []*client.Conn
	for _, email := range []string{"second@example.com", "third@example.com", "second@example.com"} {
		conn, err := login(t, url, email).Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Await(context.Background(), "hello"); err != nil {
			t.Fatal(err)
		}
		readers = append(readers, conn)
	}
	const n = 40
	for i := range n {
		err := sender.Do(context.Background(), http.MethodPost, "/api/v1/chats/2/messages",
			map[string]string{"body": "m", "client_id": "g" + string(rune('a'+i%26)) + string(rune('a'+i/26))}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	// The general chat starts at seq 4: the 40 messages are 5..44. The last of them may sit in
	// the lossy broker's hand, so one more message flushes it.
	if err := sender.Do(context.Background(), http.MethodPost, "/api/v1/chats/2/messages", map[string]string{"body": "flush", "client_id": "flush"}, nil); err != nil {
		t.Fatal(err)
	}
	for i, conn := range readers {
		got := collect(t, conn, n+1)
		for j, seq := range got {
			if want := int64(5 + j); seq != want {
				t.Fatalf("reader %d: message %d has seq %d, want %d (all: %v)", i, j, seq, want, got)
			}
		}
	}
}

// TestSlowConsumerIsDropped: a client that does not read is closed with 1013 while the others
// keep receiving.
func TestSlowConsumerIsDropped(t *testing.T) {
	url, h := newServer(t, broker.NewMemory(), hub.Options{InstanceID: "test", SendQueue: 8})
	sender := login(t, url, "first@example.com")
	fast, err := login(t, url, "third@example.com").Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	var fastGot sync.WaitGroup
	fastGot.Add(1)
	go func() { // the fast client reads everything and notices the last message
		defer fastGot.Done()
		for f := range fast.Frames() {
			if f.Type == "message.new" && bytes.Contains(f.Data, []byte(`"after"`)) {
				return
			}
		}
	}()
	second := login(t, url, "second@example.com")
	slow, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(url, "http")+"/api/v1/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": []string{"Bearer " + second.Token()}}})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow() // never read: frames pile up in the socket buffers, then in the queue

	body := strings.Repeat("x", 3900)
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	deadline := time.Now().Add(60 * time.Second)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				mu.Lock()
				sent++
				mu.Unlock()
				if err := sender.Do(context.Background(), http.MethodPost, "/api/v1/chats/2/messages",
					map[string]string{"body": body, "client_id": fmt.Sprintf("s%d-%d", w, i)}, nil); err != nil {
					t.Error(err)
					return
				}
				if h.Stats().SlowDropped.Load() > 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	if h.Stats().SlowDropped.Load() == 0 {
		t.Fatalf("the slow client was not dropped after %d messages", sent)
	}
	// Reading now, the slow client finds its frames, then the close: 1013.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		if _, _, err := slow.Read(ctx); err != nil {
			if got := websocket.CloseStatus(err); got != websocket.StatusTryAgainLater {
				t.Errorf("slow client: %v; want close status 1013", err)
			}
			break
		}
	}
	// The fast one still gets messages.
	if err := sender.Do(context.Background(), http.MethodPost, "/api/v1/chats/2/messages", map[string]string{"body": "after", "client_id": "after"}, nil); err != nil {
		t.Fatal(err)
	}
	fastGot.Wait()
}

func itoa(i int) string { return fmt.Sprint(i) }
