package hub_test

// Pipelined sends (issue 12): a connection may have several sends in flight, each
// acknowledged as it commits; its messages to a chat keep the order it sent them in; read
// marks, typing and sync do not wait behind sends.

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/hub"
)

// gatedStore holds every queued send until the gate opens, and counts the sends queued.
type gatedStore struct {
	chat.Store
	queued atomic.Int64
	gate   chan struct{}
	once   sync.Once
}

func (g *gatedStore) QueueMessage(ctx context.Context, m chat.NewMessage) func() (chat.Sent, error) {
	g.queued.Add(1)
	wait := g.Store.QueueMessage(ctx, m)
	return func() (chat.Sent, error) {
		<-g.gate
		return wait()
	}
}

func (g *gatedStore) open() { g.once.Do(func() { close(g.gate) }) }

var fastFrames = hub.Options{FramesPerSecond: 1e6, FrameBurst: 1 << 20}

// TestSendsArePipelined: while the first sends wait for their commit, the connection goes on
// reading: more sends are queued (up to the in-flight bound), the other members hear its
// typing and its sync is answered; once the commits come, every send is acknowledged.
func TestSendsArePipelined(t *testing.T) {
	t.Parallel()
	g := &gatedStore{gate: make(chan struct{})}
	defer g.open()
	s := startServer(t, serverConfig{Hub: fastFrames, WrapStore: func(st chat.Store) chat.Store { g.Store = st; return g }})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	id := s.Group(t, ann, "G", false, ben)
	ac, bc := s.Dial(t, ann), s.Dial(t, ben)

	const sends = 10
	for i := range sends {
		ac.Send("message.send", fmt.Sprintf("m%d", i), map[string]any{"chat_id": id, "client_id": fmt.Sprintf("c%d", i), "body": "pipelined"})
	}
	ac.Send("typing", "t", map[string]any{"chat_id": id})
	ac.Send("sync", "s", map[string]any{"cursors": map[string]int64{}})
	deadline := time.Now().Add(20 * time.Second)
	for g.queued.Load() < sends {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sends were queued while the first waited for its commit", g.queued.Load(), sends)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if f := bc.NextOf("typing", 20*time.Second); chatOf(f) != id {
		t.Fatalf("typing: %s", f.Raw)
	}
	if f := ac.NextOf("sync.done", 20*time.Second); string(f.Ref) != `"s"` {
		t.Fatalf("sync.done: %s", f.Raw)
	}
	g.open()
	got := ac.UntilPong("after")
	if acks := ofType(got, "message.ack"); len(acks) != sends {
		t.Fatalf("%d acks, want %d: %s", len(acks), sends, raws(got))
	}
}

// TestPipelinedSendsKeepTheirOrder: a connection sends 300 messages to one chat without
// waiting; each is acknowledged with its ref, and their seqs follow the order they were sent
// in, on both databases. The other member receives them in that order.
func TestPipelinedSendsKeepTheirOrder(t *testing.T) {
	t.Parallel()
	for _, pg := range []bool{false, true} {
		name := map[bool]string{false: "sqlite", true: "postgres"}[pg]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, serverConfig{Postgres: pg, Hub: fastFrames})
			ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
			id := s.Group(t, ann, "G", false, ben)
			ac, bc := s.Dial(t, ann), s.Dial(t, ben)
			const n = 300
			for i := range n {
				ac.Send("message.send", fmt.Sprintf("m%03d", i), map[string]any{"chat_id": id, "client_id": fmt.Sprintf("c%03d", i), "body": fmt.Sprintf("%03d", i)})
			}
			got := ac.UntilPong("done")
			seqOf := map[string]int64{}
			for _, f := range ofType(got, "message.ack") {
				var d struct{ Message chat.Message }
				json.Unmarshal(f.Data, &d)
				var ref string
				json.Unmarshal(f.Ref, &ref)
				seqOf[ref] = d.Message.Seq
			}
			if len(seqOf) != n {
				t.Fatalf("%d acks, want %d (%d errors)", len(seqOf), n, len(ofType(got, "error")))
			}
			for i := 1; i < n; i++ {
				if a, b := seqOf[fmt.Sprintf("m%03d", i-1)], seqOf[fmt.Sprintf("m%03d", i)]; a >= b {
					t.Fatalf("message %d got seq %d, message %d seq %d: not in the order sent", i-1, a, i, b)
				}
			}
			for i := range n {
				f := bc.NextOf("message.new", 30*time.Second)
				var d struct{ Message chat.Message }
				json.Unmarshal(f.Data, &d)
				if want := fmt.Sprintf("%03d", i); d.Message.Body != want {
					t.Fatalf("the other member's message %d is %q, want %q", i, d.Message.Body, want)
				}
			}
		})
	}
}
