package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/chat"
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

// TestSlowConsumerIsDropped: a client that does not read is closed with 1013 once the frames
// waiting for it pass its byte budget, while the others keep receiving. Nothing races the
// clock: the writer of the silent client blocks when the kernel's socket buffers are full,
// and from then on every message adds to its queue, so a bounded number of messages (the
// buffers and the budget over the frame size) must drop it.
func TestSlowConsumerIsDropped(t *testing.T) {
	const budget = 64 << 10
	s := startServer(t, serverConfig{Hub: onlyBudgetsClose(hub.Options{QueueBytes: budget}), NoSearchIndexer: true})
	ann, fast, slow := s.NewUser(t, "Ann"), s.NewUser(t, "Fast"), s.NewUser(t, "Slow")
	id := s.Group(t, ann, "G", false, fast, slow)
	fc := s.Dial(t, fast)
	sc := s.Stall(t, slow) // never reads: frames pile up in the socket buffers, then in its queue

	body := strings.Repeat("字", chat.MaxBodyChars) // 12,000 bytes of UTF-8
	frameSize := len(body) + 200
	limit := (socketBuffers(t) + budget) / frameSize * 2
	sent := 0
	for s.Hub.Stats().SlowDropped.Load() == 0 {
		if sent++; sent > limit {
			t.Fatalf("the silent client was not dropped after %d messages of %d bytes (budget %d)", sent-1, frameSize, budget)
		}
		if _, _, err := s.Svc.Send(t.Context(), ann.P(), chat.SendInput{ChatID: id, Body: body, ClientID: itoa(sent)}); err != nil {
			t.Fatal(err)
		}
		// The fast client gets each message before the next is sent: the fan-out has then
		// queued it for the silent one too, so a busy machine cannot make the count run ahead.
		fc.NextOf("message.new", 30*time.Second)
	}
	if got := s.Hub.Stats().QueuedPeak.Load(); got > 2*(budget+int64(frameSize)) {
		t.Errorf("%d bytes were queued at the peak for two clients with a budget of %d each", got, budget)
	}
	// Reading now, the silent client finds some of its frames, then the close: 1013.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if _, _, err := sc.WS.Read(ctx); err != nil {
			if got := websocket.CloseStatus(err); got != websocket.StatusTryAgainLater {
				t.Errorf("silent client: %v; want close status 1013", err)
			}
			break
		}
	}
	// The fast one got everything and still gets messages.
	s.Send(t, ann, id, "after")
	if n := messagesUntil(t, fc, "after"); n != 1 {
		t.Errorf("the fast client got %d messages, want %d", sent+n, sent+1)
	}
}

// messagesUntil counts the message.new frames c receives up to the one whose body is last.
func messagesUntil(t *testing.T, c *wsConn, last string) int {
	t.Helper()
	for n := 1; ; n++ {
		f := c.NextOf("message.new", 30*time.Second)
		var d struct{ Message struct{ Body string } }
		json.Unmarshal(f.Data, &d)
		if d.Message.Body == last {
			return n
		}
	}
}

// onlyBudgetsClose lets nothing but the byte budgets close a socket that never reads: on a
// busy machine the messages that fill a budget may take longer than a write's timeout or a
// ping's wait, and a socket closed by either would leave a test counting sheds waiting for
// good (a CI run at load 10 sent 6,476 messages for a second shed that could not come).
func onlyBudgetsClose(o hub.Options) hub.Options {
	o.WriteTimeout, o.PingEvery, o.PongWait = time.Hour, time.Hour, time.Hour
	return o
}

// socketBuffers is the most the kernel may buffer on one loopback connection: the sender's
// and the receiver's TCP buffers at their largest.
func socketBuffers(t *testing.T) int {
	total := 0
	for _, f := range []string{"/proc/sys/net/ipv4/tcp_wmem", "/proc/sys/net/ipv4/tcp_rmem"} {
		b, err := os.ReadFile(f)
		fields := strings.Fields(string(b))
		n := 0
		if err == nil && len(fields) == 3 {
			n, err = strconv.Atoi(fields[2])
		}
		if err != nil || n == 0 {
			n = 8 << 20 // not Linux: a generous guess
		}
		total += n
	}
	return total
}

func itoa(i int) string { return fmt.Sprint(i) }

// TestStalledSocketIsReset: a client that stops reading is cut once a write has waited
// WriteTimeout, and the cut is a reset: a polite close left what the kernel still held for it
// (its send buffer, megabytes) queued for minutes. Nothing races the clock: a write waits only
// once the socket buffers are full, which a bounded number of messages does.
func TestStalledSocketIsReset(t *testing.T) {
	o := onlyBudgetsClose(hub.Options{QueueBytes: 1 << 30})
	o.WriteTimeout = 200 * time.Millisecond
	s := startServer(t, serverConfig{Hub: o, NoSearchIndexer: true})
	ann, slow := s.NewUser(t, "Ann"), s.NewUser(t, "Slow")
	id := s.Group(t, ann, "G", false, slow)
	sc := s.Stall(t, slow)
	for deadline := time.Now().Add(30 * time.Second); s.Hub.Stats().Connections.Load() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the silent client's connection was not counted in 30 s")
		}
	}

	body := strings.Repeat("字", chat.MaxBodyChars)
	limit := socketBuffers(t) / len(body) * 2
	// Past the buffers a write waits, and the cut comes WriteTimeout later: the messages sent
	// meanwhile (as many as the machine sends in that time) are not counted against it.
	for sent := 1; sent <= limit && s.Hub.Stats().Connections.Load() == 1; sent++ {
		if _, _, err := s.Svc.Send(t.Context(), ann.P(), chat.SendInput{ChatID: id, Body: body, ClientID: itoa(sent)}); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); s.Hub.Stats().Connections.Load() == 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the silent client was not cut 30 s after %d messages of %d bytes", limit, len(body))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if _, _, err := sc.WS.Read(ctx); err != nil {
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("the cut socket ended with %v, want a reset (ECONNRESET)", err)
			}
			break
		}
	}
}
