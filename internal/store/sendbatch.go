package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// Group commit. A send takes its chat's counters (the next seq, the read-all mark) under the
// chat's row lock, held until it commits, so a chat's sends are stored one transaction after
// another however many instances send, and seqs are gapless in commit order. What a busy chat
// waits for is how long that lock is held: on PostgreSQL one call of a server-side function in
// one round trip and its commit (send_messages, migrations 00005 and 00013: the lock, the
// idempotency lookup, the membership check, the insert, the senders' read marks and the
// read-all mark; sendpg.go), on SQLite one immediate transaction (sendsqlite.go). Sends wait
// in one queue per chat, and a few committers (maxCommitters) store what is queued: each
// takes the queues of up to maxCommitChats ready chats (up to maxSendBatch sends of each,
// maxBatchSends in all), stores them in one call and answers every caller once it has
// committed. A lone send is a batch of one; under load a batch is whatever queued while the
// previous one committed, so a chat's throughput grows with its load while nothing is answered
// before its commit.
//
// One batch of a chat is in flight at a time (per instance), so its sends are stored in queue
// order: a connection that sends A then B sees seq(A) < seq(B). A second batch of the chat
// sent while the first commits would gain little and cost order. On another database
// connection it would wait for the chat's lock like the first, and whichever got the lock
// first would take the lower seqs: seq would still follow commit order (the lock sees to that)
// but no longer queue order. Pipelined on the same connection, PostgreSQL would run it after
// the first commits, so order would hold; but it could never share the first's commit (the
// lock serializes them), it would save only the round trip between one commit and the next
// call while storing fewer sends per commit, and if the first failed its senders' retries
// would land after the second. Letting the next batch grow while the current one commits
// gives the same throughput without those costs. Instances keep a queue each; the lock orders
// their batches, and a connection's sends all go through one instance.

const (
	// maxSendBatch bounds the sends of one chat stored in one call.
	maxSendBatch = 500
	// maxBatchSends bounds the sends of one call, over all its chats.
	maxBatchSends = 1000
	// maxCommitChats bounds the chats stored in one call.
	maxCommitChats = 64
	// maxCommitters bounds the calls in flight at once on one instance: enough to keep the
	// database busy, few enough that queued sends wait for the next call (and share it)
	// rather than for a pooled connection.
	maxCommitters = 4
)

// sendQueues holds the per-chat queues; its zero value is ready to use.
type sendQueues struct {
	mu         sync.Mutex
	chats      map[int64]*sendQueue // chats with sends queued or being stored
	ready      []*sendQueue         // chats with sends queued and no committer, oldest first
	committers int
	batches    int64 // calls made: how far sends share them (tests read it)
}

type sendQueue struct {
	chatID  int64
	pending []*sendReq
	busy    bool // a committer is storing this chat's sends
	ready   bool // in sendQueues.ready
}

// sendReq is one queued send; the committer sets out or err and closes done.
type sendReq struct {
	ctx  context.Context
	nm   chat.NewMessage
	out  chat.Sent
	err  error
	done chan struct{}
}

// chatSends are the sends of one chat stored together, in queue order.
type chatSends struct {
	chatID int64
	reqs   []*sendReq
}

// SendMessage implements chat.Store: it queues the send behind the chat's others and waits
// for the commit that stores it.
func (s *Store) SendMessage(ctx context.Context, nm chat.NewMessage) (chat.Sent, error) {
	return s.QueueMessage(ctx, nm)()
}

// QueueMessage queues a send and returns at once; wait waits for the commit that stores it and
// answers as SendMessage would. Sends to a chat queued one after another get their seqs in that
// order, so a connection with several sends in flight keeps them in the order it read them by
// queueing each before reading the next. The caller must call wait.
func (s *Store) QueueMessage(ctx context.Context, nm chat.NewMessage) (wait func() (chat.Sent, error)) {
	req := &sendReq{ctx: ctx, nm: nm, done: make(chan struct{})}
	q := &s.sends
	q.mu.Lock()
	if q.chats == nil {
		q.chats = map[int64]*sendQueue{}
	}
	cq := q.chats[nm.ChatID]
	if cq == nil {
		cq = &sendQueue{chatID: nm.ChatID}
		q.chats[nm.ChatID] = cq
	}
	cq.pending = append(cq.pending, req)
	if !cq.busy && !cq.ready {
		cq.ready = true
		q.ready = append(q.ready, cq)
	}
	start := q.committers < maxCommitters
	if start {
		q.committers++
	}
	q.mu.Unlock()
	if start {
		go s.commitQueued()
	}
	return func() (chat.Sent, error) {
		select {
		case <-req.done:
			return req.out, req.err
		case <-ctx.Done():
			// The committer may still store it; a retry with the same client id finds it.
			return chat.Sent{}, wrap(ctx.Err())
		}
	}
}

// commitQueued stores queued sends, a call at a time, until no chat is ready.
func (s *Store) commitQueued() {
	q := &s.sends
	for {
		q.mu.Lock()
		var taken []*sendQueue
		var groups []chatSends
		total := 0
		for len(taken) < len(q.ready) && len(taken) < maxCommitChats && total < maxBatchSends {
			cq := q.ready[len(taken)]
			cq.ready, cq.busy = false, true
			batch := cq.pending[:min(len(cq.pending), maxSendBatch, maxBatchSends-total)]
			cq.pending = cq.pending[len(batch):]
			total += len(batch)
			taken = append(taken, cq)
			groups = append(groups, chatSends{cq.chatID, batch})
		}
		if len(taken) == 0 {
			q.committers--
			q.mu.Unlock()
			return
		}
		q.ready = append(q.ready[:0], q.ready[len(taken):]...)
		q.batches++
		q.mu.Unlock()

		live := groups[:0]
		for _, g := range groups {
			reqs := g.reqs[:0:0]
			for _, r := range g.reqs {
				if r.ctx.Err() != nil { // its caller is gone: do not store what nobody waits for
					r.err = wrap(r.ctx.Err())
					r.answer()
					continue
				}
				reqs = append(reqs, r)
			}
			if len(reqs) > 0 {
				live = append(live, chatSends{g.chatID, reqs})
			}
		}
		if len(live) > 0 {
			s.sendBatch(live)
		}

		q.mu.Lock()
		for _, cq := range taken {
			cq.busy = false
			switch {
			case len(cq.pending) > 0:
				cq.ready = true
				q.ready = append(q.ready, cq)
			default:
				delete(q.chats, cq.chatID)
			}
		}
		q.mu.Unlock()
	}
}

// ObserveSendBatches makes the store report each call that stores queued sends: how many
// sends it held, how long it took (the call and its commit, not the sends' wait in the queue
// before it) and its error. A send's own latency is its queue wait plus this. Call it before
// the store is used.
func (s *Store) ObserveSendBatches(f func(sends int, d time.Duration, err error)) { s.onBatch = f }

// sendBatch stores the sends of several chats in one call, each chat's in queue order, and
// answers each caller as a lone send would have been answered: its message under the next
// seq, the message stored before under its client id (the first of the batch for a repeat
// within it), or not a member, or no such chat. An error of the call answers every caller.
func (s *Store) sendBatch(groups []chatSends) {
	slices.SortFunc(groups, func(a, b chatSends) int { return cmp.Compare(a.chatID, b.chatID) })
	// Callers wait for this commit; none of their contexts may cut it short for the others.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(groups[0].reqs[0].ctx), 15*time.Second)
	defer cancel()
	var err error
	start := time.Now()
	if s.dialect.name == postgres.name {
		err = s.sendBatchPG(ctx, groups)
	} else {
		err = s.sendBatchSQLite(ctx, groups)
	}
	if f := s.onBatch; f != nil {
		n := 0
		for _, g := range groups {
			n += len(g.reqs)
		}
		f(n, time.Since(start), err)
	}
	if err == nil {
		s.wakeSearch()
		s.sentReplies(ctx, groups)
		s.sentRepeats(ctx, groups)
	}
	for _, g := range groups {
		for _, r := range g.reqs {
			if err != nil {
				r.out, r.err = chat.Sent{}, err
			}
			r.answer()
		}
	}
}

// sentReplies adds to the stored messages that answer another the quote of it (ReplyTo),
// after the commit: the chat's lock is not held for it. If the read fails, those sends are
// answered with the error (their messages are stored: a retry with the same client id gets
// them); the others' answers stand.
func (s *Store) sentReplies(ctx context.Context, groups []chatSends) {
	for _, g := range groups {
		var reqs []*sendReq
		var msgs []chat.Message
		var seqs []int64
		for _, r := range g.reqs {
			if r.err == nil && r.out.Created && r.out.Message.ReplyToSeq > 0 {
				reqs, msgs, seqs = append(reqs, r), append(msgs, r.out.Message), append(seqs, r.out.Message.ReplyToSeq)
			}
		}
		if len(reqs) == 0 {
			continue
		}
		if err := fillReplies(ctx, s.db, g.chatID, seqs, msgs); err != nil {
			for _, r := range reqs {
				r.out, r.err = chat.Sent{}, fmt.Errorf("quotes of sent replies: %w", err)
			}
			continue
		}
		for i, r := range reqs {
			r.out.Message.ReplyTo = msgs[i].ReplyTo
		}
	}
}

// sentRepeats answers each repeat (a client id the chat already holds from the sender) with
// the message stored under it as it stands now, read as history reads it: its edits,
// reactions, reply quote and files, not only what the send's call returned. One read for a
// chat's repeats (a client that reconnects resends all it had in flight), after the commit.
// If the read fails, those sends are answered with the error (a later retry reads again); the
// others' answers stand.
func (s *Store) sentRepeats(ctx context.Context, groups []chatSends) {
	for _, g := range groups {
		var reqs []*sendReq
		var seqs []int64
		for _, r := range g.reqs {
			if r.err == nil && !r.out.Created {
				reqs, seqs = append(reqs, r), append(seqs, r.out.Message.Seq)
			}
		}
		if len(reqs) == 0 {
			continue
		}
		msgs, err := messagesAt(ctx, s.db, g.chatID, seqs)
		bySeq := make(map[int64]chat.Message, len(msgs))
		for _, m := range msgs {
			bySeq[m.Seq] = m
		}
		for _, r := range reqs {
			m, ok := bySeq[r.out.Message.Seq]
			switch {
			case err != nil:
				r.out, r.err = chat.Sent{}, fmt.Errorf("messages repeated by client id: %w", wrap(err))
			case !ok: // deleted with its chat meanwhile
				r.out, r.err = chat.Sent{}, chat.ErrNotFound
			default:
				r.out.Message = m
			}
		}
	}
}

// answer tells the send's result: first its Committed callback, in the batch's seq order,
// then whoever waits.
func (r *sendReq) answer() {
	if f := r.nm.Committed; f != nil {
		f(r.out, r.err)
	}
	close(r.done)
}
