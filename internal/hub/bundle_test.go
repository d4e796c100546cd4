package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/wschat/chat/internal/broker"
)

// countingBroker counts the broker messages by the type of their first event.
type countingBroker struct {
	broker.Broker
	mu     sync.Mutex
	byType map[string]int
}

func (c *countingBroker) Publish(ctx context.Context, topic string, payload []byte) error {
	var h struct {
		T string `json:"t"`
	}
	if i := bytes.IndexByte(payload, '\n'); i > 0 {
		json.Unmarshal(payload[:i], &h)
	}
	c.mu.Lock()
	c.byType[h.T]++
	c.mu.Unlock()
	return c.Broker.Publish(ctx, topic, payload)
}

func (c *countingBroker) count(typ string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byType[typ]
}

// TestSendEffectsTravelTogether: a send's message, the sender's new read mark and the chat's
// new read-all mark go out as one broker message, and still reach every device as their own
// frames, in that order.
func TestSendEffectsTravelTogether(t *testing.T) {
	cb := &countingBroker{Broker: broker.NewMemory(), byType: map[string]int{}}
	s := startServer(t, serverConfig{Broker: cb})
	a, b := s.NewUser(t, "Ann"), s.NewUser(t, "Bob")
	g := s.Group(t, a, "Pair", false, b)
	a1, a2, b1 := s.Dial(t, a), s.Dial(t, s.Login(t, a)), s.Dial(t, b)
	before := cb.count("message.new")

	type msg struct {
		Message struct {
			Seq int64 `json:"seq"`
		} `json:"message"`
		LastReadSeq int64 `json:"last_read_seq"`
		ReadAllSeq  int64 `json:"read_all_seq"`
	}
	parse := func(f frame) msg {
		var m msg
		if err := json.Unmarshal(f.Data, &m); err != nil {
			t.Fatalf("%s: %v", f.Raw, err)
		}
		return m
	}
	// until returns the frames up to and including the first of typ (other than pongs).
	until := func(c *wsConn, typ string) []frame {
		var got []frame
		for {
			f := c.Next(5 * time.Second)
			if f.Type == "presence" || f.Type == "pong" {
				continue
			}
			got = append(got, f)
			if f.Type == typ {
				return got
			}
		}
	}

	got := a1.RoundTrip("message.send", "s1", map[string]any{"chat_id": g, "client_id": "c1", "body": "hello"})
	acks := ofType(got, "message.ack")
	if len(acks) != 1 {
		t.Fatalf("sender got %s, want one message.ack", got)
	}
	seqA := parse(acks[0]).Message.Seq
	// The sending device has the message (message.ack); it learns the read mark too, before
	// or after the pong that ended the round trip.
	marks := ofType(got, "read.updated")
	if len(marks) == 0 {
		marks = until(a1, "read.updated")
	}
	if len(marks) != 1 || parse(marks[0]).LastReadSeq != seqA {
		t.Fatalf("Ann's first device got %s, want one read.updated to %d", marks, seqA)
	}
	// Ann's other device: the message, then her read mark at it.
	fs := until(a2, "read.updated")
	if len(fs) != 2 || fs[0].Type != "message.new" || parse(fs[0]).Message.Seq != seqA || parse(fs[1]).LastReadSeq != seqA {
		t.Fatalf("Ann's other device got %s, want message.new %d then read.updated to %d", fs, seqA, seqA)
	}
	if fs := until(b1, "message.new"); len(fs) != 1 || parse(fs[0]).Message.Seq != seqA {
		t.Fatalf("Bob got %s, want message.new %d", fs, seqA)
	}

	// Bob answers: he read everything, so Ann's message is now read by all.
	b1.RoundTrip("message.send", "s2", map[string]any{"chat_id": g, "client_id": "c2", "body": "hi"})
	for name, c := range map[string]*wsConn{"Ann's first device": a1, "Ann's second device": a2} {
		fs := until(c, "chat.read_all")
		if len(fs) != 2 || fs[0].Type != "message.new" || parse(fs[0]).Message.Seq != seqA+1 || parse(fs[1]).ReadAllSeq != seqA {
			t.Fatalf("%s got %s, want message.new %d then chat.read_all %d", name, fs, seqA+1, seqA)
		}
	}
	if n := cb.count("message.new") - before; n != 2 {
		t.Errorf("%d broker messages led by message.new for two sends, want 2", n)
	}
	if n, m := cb.count("read.updated"), cb.count("chat.read_all"); n != 0 || m != 0 {
		t.Errorf("separate broker messages: %d read.updated, %d chat.read_all; want them with their message", n, m)
	}
}
