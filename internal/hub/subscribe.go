package hub

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Broker subscriptions. An instance subscribes each topic once, however many of its
// connections need it. A connect storm (thousands of handshakes a second: every client of an
// instance that restarted) must not queue each handshake behind the broker round trip of the
// one before, so a change of what is wanted is recorded at once and one goroutine
// (subscribeLoop) sends the changes in order, up to maxSubscribeBatch topics per command. Only
// a caller that needs a topic live waits for its confirmation (a hello, a join: what is
// published after it must arrive); a topic already live costs no wait.

// maxSubscribeBatch bounds the topics of one subscribe or unsubscribe sent to the broker.
const maxSubscribeBatch = 1000

// topicSub is a topic the instance subscribes to (or is subscribing to).
type topicSub struct {
	ready chan struct{} // closed once the broker confirmed it, or failed to (err)
	err   error         // set before ready is closed
}

type subOp struct {
	topic string
	sub   *topicSub // nil: unsubscribe
}

// subscriptions are the instance's wanted topics and the changes not yet sent to the broker.
type subscriptions struct {
	mu     sync.Mutex
	topics map[string]*topicSub
	queue  []subOp
	kick   chan struct{} // one buffered signal: the queue has work
	// failed are the topics whose subscription the broker failed (Redis down for longer than
	// a subscribe waits), for the audit to ask for again (takeFailed): only a change of the
	// connections that need a topic asked for it otherwise, and the users topic, subscribed
	// once by New, never (an instance started while Redis was down never heard user.updated).
	failed map[string]struct{}
}

// takeFailed returns the topics whose subscription failed since the last call.
func (s *subscriptions) takeFailed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	topics := slices.Collect(maps.Keys(s.failed))
	s.failed = nil
	return topics
}

// reconcile brings the wanted subscriptions of topics in line with what the local
// connections need, without waiting for the broker. It is called after every change, without
// mu held; calls may come in any order, since each applies the state of the moment. It
// returns the wanted topics' subscriptions, for await.
func (h *Hub) reconcile(topics ...string) []*topicSub {
	s := &h.subs
	var waits []*topicSub
	s.mu.Lock()
	h.mu.Lock()
	for _, t := range topics {
		want := h.wantsLocked(t)
		cur := s.topics[t]
		switch {
		case want && cur == nil:
			cur = &topicSub{ready: make(chan struct{})}
			s.topics[t] = cur
			s.queue = append(s.queue, subOp{topic: t, sub: cur})
		case !want && cur != nil:
			delete(s.topics, t)
			s.queue = append(s.queue, subOp{topic: t})
		}
		if want {
			waits = append(waits, cur)
		}
	}
	h.mu.Unlock()
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return waits
}

// await waits until the broker confirmed the subscriptions, so that anything published to
// them from now on is delivered here.
func (h *Hub) await(ctx context.Context, subs []*topicSub) error {
	for _, s := range subs {
		select {
		case <-s.ready:
			if s.err != nil {
				return s.err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// subscribeLoop sends the queued changes to the broker, in order, in batches. It ends with the
// hub.
func (h *Hub) subscribeLoop() {
	s := &h.subs
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-s.kick:
		}
		for h.ctx.Err() == nil {
			s.mu.Lock()
			if len(s.queue) == 0 {
				s.queue = nil // let a storm's backing array go
				s.mu.Unlock()
				break
			}
			// The leading run of one kind, at most maxSubscribeBatch.
			subscribe := s.queue[0].sub != nil
			n := 1
			for n < len(s.queue) && n < maxSubscribeBatch && (s.queue[n].sub != nil) == subscribe {
				n++
			}
			batch := make([]subOp, n)
			copy(batch, s.queue)
			s.queue = s.queue[n:]
			s.mu.Unlock()

			topics := make([]string, n)
			for i, op := range batch {
				topics[i] = op.topic
			}
			ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
			if subscribe {
				h.subscribed(batch, h.broker.Subscribe(ctx, topics...))
			} else if err := h.broker.Unsubscribe(ctx, topics...); err != nil && h.ctx.Err() == nil {
				h.log.Warn("unsubscribe", "topics", n, "err", err)
			}
			cancel()
		}
	}
}

// subscribed settles a batch: each waiter learns the outcome; a failed topic is no longer
// wanted, so that the next reconcile that needs it tries again, the audit's among them.
func (h *Hub) subscribed(batch []subOp, err error) {
	if err != nil {
		if h.ctx.Err() == nil {
			h.log.Warn("subscribe", "topics", len(batch), "err", err)
		}
		h.subs.mu.Lock()
		for _, op := range batch {
			if h.subs.topics[op.topic] == op.sub {
				delete(h.subs.topics, op.topic)
				if h.subs.failed == nil {
					h.subs.failed = map[string]struct{}{}
				}
				h.subs.failed[op.topic] = struct{}{}
			}
		}
		h.subs.mu.Unlock()
	}
	for _, op := range batch {
		op.sub.err = err
		close(op.sub.ready)
	}
}

func (h *Hub) wantsLocked(topic string) bool {
	if topic == usersTopic {
		return true
	}
	kind, id, _ := strings.Cut(topic, ".")
	n, _ := strconv.ParseInt(id, 10, 64)
	if kind == "chat" {
		return h.chats[n] != nil
	}
	u := h.users[n]
	return u != nil
}
