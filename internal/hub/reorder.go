package hub

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// Message events reach an instance out of seq order all the time: instances publish what
// they committed independently, and the sends committed together in one batch are published
// by as many goroutines. Each connection would heal every such gap from the store (a pause,
// a goroutine and a query per gap). The hub therefore puts each chat's events back in order
// before the fan-out: an event that arrives ahead of its predecessor waits up to reorderWait
// for it. Only a gap that outlasts the wait (an event the broker really lost) reaches the
// connections, which heal it from the store as before. This is an optimization only: the
// connections still drop repeats and heal gaps themselves.
//
// A chat's other events (read marks, members joining and leaving) name the message they
// follow (envelope.At); one that comes ahead of that message waits for it here too, and goes
// out right behind it, so that connections rarely see an event before its message (they would
// hold it and read the store).
//
// A chat's changes (message.updated, reaction.updated) are put back in rev order the same
// way (admitChange): one that arrives ahead of its predecessor's rev waits up to reorderWait,
// then each goes out as an event of the message it follows.

const (
	// reorderWait is long enough for the other instances' publishes on a busy machine: with
	// 25 ms, fanout-200 through nginx gave 100-700 gap heals (store reads, each pausing 100
	// connections) per 40 s, from predecessors published 25-50 ms late; with 100 ms, none.
	// Only an event the broker really lost (a failed publish, an instance that died between
	// its commit and its publish) makes its successors wait the whole of it.
	reorderWait = 100 * time.Millisecond
	// maxEarly bounds the events held for one chat; beyond it they go out as they are.
	maxEarly = 1024
	// reorderIdle: after this long without events the next expected seq is forgotten.
	reorderIdle = 2 * time.Second
)

type reorderer struct {
	mu    sync.Mutex
	chats map[int64]*chatOrder
	// release fans events out; called without mu held, in seq order for each call.
	release func(es []*envelope)
	// held, if set, is told how long each message held for a predecessor waited, as it is
	// released (called with mu held: it must be quick).
	held func(d time.Duration)
	// clock is the time (nil: time.Now); tests set it.
	clock func() time.Time
}

func (r *reorderer) now() time.Time {
	if r.clock != nil {
		return r.clock()
	}
	return time.Now()
}

// armLocked makes sure a timer will look at the chat's held events within d. One timer
// serves all of them: when it fires, expire gives up only if the oldest has waited
// reorderWait, and otherwise sets the timer again for the rest of that wait.
func (r *reorderer) armLocked(co *chatOrder, chatID int64, d time.Duration) {
	if co.timer == nil {
		co.timer = time.AfterFunc(d, func() { r.expire(chatID) })
	}
}

// oldestHeld is when the longest-held event began waiting (zero when none waits).
func (co *chatOrder) oldestHeld() time.Time {
	var t time.Time
	see := func(e *envelope) {
		if t.IsZero() || e.heldAt.Before(t) {
			t = e.heldAt
		}
	}
	for _, e := range co.early {
		see(e)
	}
	for _, e := range co.earlyRev {
		see(e)
	}
	for _, e := range co.events {
		see(e)
	}
	return t
}

type chatOrder struct {
	next   int64 // the seq expected next; 0 when unknown
	early  map[int64]*envelope
	events []*envelope // events that follow a message not yet released
	timer  *time.Timer
	last   time.Time
	// The same for changes, by rev.
	nextRev  int64
	earlyRev map[int64]*envelope
	lastRev  time.Time
}

// waiting reports whether the chat holds anything (and so needs its timer).
func (co *chatOrder) waiting() bool {
	return len(co.early) > 0 || len(co.events) > 0 || len(co.earlyRev) > 0
}

// admit takes a chat's message event and returns the events that may be fanned out now,
// in seq order.
func (r *reorderer) admit(e *envelope, now time.Time) []*envelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.chats == nil {
		r.chats = map[int64]*chatOrder{}
	}
	co := r.chats[e.ChatID]
	if co == nil {
		co = &chatOrder{}
		r.chats[e.ChatID] = co
	}
	if now.Sub(co.last) > reorderIdle && len(co.early) == 0 {
		co.next = 0
	}
	co.last = now
	switch {
	case co.next == 0 || e.Seq == co.next:
		out := []*envelope{e}
		co.next = e.Seq + 1
		for {
			x, ok := co.early[co.next]
			if !ok {
				break
			}
			r.observeHold(x, now)
			out = append(out, x)
			delete(co.early, co.next)
			co.next++
		}
		out = co.withEventsLocked(out)
		if !co.waiting() && co.timer != nil {
			co.timer.Stop()
			co.timer = nil
		}
		return out
	case e.Seq < co.next: // late, or a repeat: the connections know what they have sent
		return []*envelope{e}
	}
	if co.early == nil {
		co.early = map[int64]*envelope{}
	}
	e.heldAt = now
	co.early[e.Seq] = e
	if len(co.early) >= maxEarly {
		return r.flushLocked(co, now)
	}
	r.armLocked(co, e.ChatID, reorderWait)
	return nil
}

// admitChange takes a chat's change (message.updated, reaction.updated) and returns what may
// be fanned out now: the changes that follow in rev order, each as an event of its message.
func (r *reorderer) admitChange(e *envelope, now time.Time) []*envelope {
	r.mu.Lock()
	if r.chats == nil {
		r.chats = map[int64]*chatOrder{}
	}
	co := r.chats[e.ChatID]
	if co == nil {
		co = &chatOrder{}
		r.chats[e.ChatID] = co
	}
	if now.Sub(co.lastRev) > reorderIdle && len(co.earlyRev) == 0 {
		co.nextRev = 0
	}
	co.lastRev = now
	var ready []*envelope
	switch {
	case co.nextRev == 0 || e.Rev == co.nextRev:
		ready = append(ready, e)
		co.nextRev = e.Rev + 1
		for {
			x, ok := co.earlyRev[co.nextRev]
			if !ok {
				break
			}
			ready = append(ready, x)
			delete(co.earlyRev, co.nextRev)
			co.nextRev++
		}
	case e.Rev < co.nextRev: // late, or a repeat: the connections know what they have sent
		ready = append(ready, e)
	default:
		if co.earlyRev == nil {
			co.earlyRev = map[int64]*envelope{}
		}
		e.heldAt = now
		co.earlyRev[e.Rev] = e
		if len(co.earlyRev) >= maxEarly {
			ready = co.flushRevLocked()
		} else {
			r.armLocked(co, e.ChatID, reorderWait)
		}
	}
	var out []*envelope
	for _, x := range ready {
		out = append(out, r.admitEventLocked(x, now)...)
	}
	r.mu.Unlock()
	return out
}

// flushRevLocked gives up waiting for a missing rev: the changes held go out in rev order.
func (co *chatOrder) flushRevLocked() []*envelope {
	out := make([]*envelope, 0, len(co.earlyRev))
	for _, e := range co.earlyRev {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *envelope) int { return cmp.Compare(a.Rev, b.Rev) })
	clear(co.earlyRev)
	if n := len(out); n > 0 {
		co.nextRev = out[n-1].Rev + 1
	}
	return out
}

// admitEvent takes a chat event that follows message e.At and returns what may be fanned out
// now.
func (r *reorderer) admitEvent(e *envelope, now time.Time) []*envelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.admitEventLocked(e, now)
}

func (r *reorderer) admitEventLocked(e *envelope, now time.Time) []*envelope {
	co := r.chats[e.ChatID]
	if co == nil || co.next == 0 || e.At < co.next || len(co.events) >= maxEarly {
		return []*envelope{e}
	}
	if e.heldAt.IsZero() { // a change released in rev order keeps the time it began waiting
		e.heldAt = now
	}
	co.events = append(co.events, e)
	r.armLocked(co, e.ChatID, reorderWait)
	return nil
}

// withEventsLocked puts the waiting events whose message is among msgs (released in seq
// order) right behind it.
func (co *chatOrder) withEventsLocked(msgs []*envelope) []*envelope {
	if len(co.events) == 0 {
		return msgs
	}
	slices.SortStableFunc(co.events, func(a, b *envelope) int { return cmp.Compare(a.At, b.At) })
	out := make([]*envelope, 0, len(msgs)+len(co.events))
	k := 0
	for _, m := range msgs {
		out = append(out, m)
		for k < len(co.events) && co.events[k].At <= m.Seq {
			out = append(out, co.events[k])
			k++
		}
	}
	co.events = append(co.events[:0], co.events[k:]...)
	return out
}

// expire gives up waiting for a chat's missing event once the oldest event held has waited
// reorderWait: what was held goes out in order, and the connections heal the gap from the
// store. The timer may have been set for an event that is gone already (its predecessor came):
// then the events held now have waited less, and the timer is set again for the rest of the
// oldest one's wait (giving up on them early would cost every connection a read of the store).
func (r *reorderer) expire(chatID int64) {
	now := r.now()
	r.mu.Lock()
	var out []*envelope
	if co := r.chats[chatID]; co != nil {
		co.timer = nil // this one has fired
		switch oldest := co.oldestHeld(); {
		case oldest.IsZero(): // nothing waits
		case now.Sub(oldest) < reorderWait:
			r.armLocked(co, chatID, reorderWait-now.Sub(oldest))
		default:
			changes := co.flushRevLocked()
			out = r.flushLocked(co, now)
			out = append(out, changes...) // after every message held: the connections heal the rest
		}
	}
	r.mu.Unlock()
	if len(out) > 0 {
		r.release(out)
	}
}

// observeHold reports how long a message waited for its predecessor.
func (r *reorderer) observeHold(e *envelope, now time.Time) {
	if r.held != nil && !e.heldAt.IsZero() {
		r.held(now.Sub(e.heldAt))
	}
}

// flushLocked gives up waiting for a chat's missing message: what was held goes out in order.
func (r *reorderer) flushLocked(co *chatOrder, now time.Time) []*envelope {
	out := make([]*envelope, 0, len(co.early))
	for _, e := range co.early {
		r.observeHold(e, now)
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *envelope) int { return int(a.Seq - b.Seq) })
	clear(co.early)
	if n := len(out); n > 0 {
		co.next = out[n-1].Seq + 1
	}
	out = co.withEventsLocked(out)
	out = append(out, co.events...) // their message never came: the connections read it
	co.events = nil
	if co.timer != nil {
		co.timer.Stop()
		co.timer = nil
	}
	return out
}

// forget drops a chat's state when the instance stops following it.
func (r *reorderer) forget(chatID int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if co := r.chats[chatID]; co != nil {
		if co.timer != nil {
			co.timer.Stop()
		}
		delete(r.chats, chatID)
	}
}
