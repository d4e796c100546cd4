package hub

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// A connection's memory is bounded in bytes, not frames: a frame may be 40 bytes or 24 KiB
// (4,000 characters that JSON escapes six-fold), so a frame count bounds nothing. Every frame
// counts against its connection's budget from the moment it is queued until the writer has
// written it (frames in flight count: a writer blocked on a client that does not read holds
// them). Live events never wait: a frame that would exceed the budget closes the connection
// with 1013 (the client reconnects and syncs). Work the client asked for (sync, catching up
// from the store) waits for room instead, so it produces frames only as fast as the socket
// drains them. Across the instance, the hub adds up every connection's bytes; beyond its
// budget the connections holding the most are closed with 1013 (hub.shed).

// frameOverhead is what a queued frame costs beyond its bytes (its slice header and share of
// the queue's array), so that many tiny frames cannot exceed the budget unseen.
const frameOverhead = 32

func cost(f []byte) int64 { return int64(len(f)) + frameOverhead }

// outbox is a connection's queue of encoded frames, bounded by limit bytes queued and in
// flight.
type outbox struct {
	mu     sync.Mutex
	frames [][]byte
	bytes  int64 // queued and being written
	limit  int64
	total  *atomic.Int64 // the hub's sum over every outbox (nil in tests that build one)
	// totalLimit is the instance's budget: work that waits for room also waits while the
	// instance holds more than half of it.
	totalLimit int64
	writing    bool // a writer goroutine runs
	closed     bool
	writers    sync.WaitGroup
	// room is signalled when bytes drop, for work that waits for room (waitRoom).
	room chan struct{}
}

// newOutbox returns an outbox that holds what is queued until start: a connection's first
// frame must be its hello, while its chats' events may already arrive.
func newOutbox(limit int64, total *atomic.Int64, totalLimit int64) *outbox {
	o := &outbox{limit: limit, total: total, totalLimit: totalLimit, writing: true, room: make(chan struct{}, 1)}
	o.writers.Add(1) // the writer that start lets run
	return o
}

// start puts first ahead of what is queued; the caller then starts the writer. The first
// frame (hello) is taken whatever its size.
func (o *outbox) start(first []byte) {
	o.mu.Lock()
	o.frames = append([][]byte{first}, o.frames...)
	o.addLocked(cost(first))
	o.mu.Unlock()
}

// discard gives up a connection that never started: nothing is written.
func (o *outbox) discard() {
	o.abandon()
	o.writers.Done()
}

type pushed int

const (
	pushQueued      pushed = iota // a writer runs and will take it
	pushStartWriter               // queued; the caller must start a writer
	pushFull                      // refused: the client is too slow
	pushClosed                    // dropped: the connection is ending
)

// push queues fs, all or none: it refuses them when they would take the outbox past its
// budget. A frame larger than the whole budget is still taken when nothing else waits (a big
// hello or message must not make a connection unusable).
func (o *outbox) push(fs ...[]byte) pushed {
	o.mu.Lock()
	defer o.mu.Unlock()
	var n int64
	for _, f := range fs {
		n += cost(f)
	}
	switch {
	case o.closed:
		return pushClosed
	case o.bytes > 0 && o.bytes+n > o.limit:
		return pushFull
	}
	return o.queueLocked(fs)
}

// pushAll queues frames whose room was waited for (waitRoom): they are taken whatever the
// budget says, since the wait bounded them.
func (o *outbox) pushAll(fs [][]byte) pushed {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return pushClosed
	}
	return o.queueLocked(fs)
}

// queueLocked queues fs, and reports whether a writer is to be started for them.
func (o *outbox) queueLocked(fs [][]byte) pushed {
	for _, f := range fs {
		o.frames = append(o.frames, f)
		o.addLocked(cost(f))
	}
	if o.writing {
		return pushQueued
	}
	o.writing = true
	o.writers.Add(1) // under mu and before closed: close's Wait never races it
	return pushStartWriter
}

func (o *outbox) addLocked(n int64) {
	o.bytes += n
	if o.total != nil {
		o.total.Add(n)
	}
}

// waitRoom waits until need more bytes fit in half the budget (the other half stays free for
// live events), or nothing is queued, and until the instance holds less than half of its own
// budget (so that many sockets syncing at once wait rather than get shed); it fails when ctx
// ends.
func (o *outbox) waitRoom(ctx context.Context, need int64) error {
	for {
		o.mu.Lock()
		fits := o.bytes == 0 || o.bytes+need <= o.limit/2
		closed := o.closed
		o.mu.Unlock()
		if closed {
			return context.Canceled
		}
		crowded := o.total != nil && o.totalLimit > 0 && o.total.Load()+need > o.totalLimit/2
		if fits && !crowded {
			return nil
		}
		var poll <-chan time.Time
		if fits { // waiting for other sockets' writers, which do not wake this one
			poll = time.After(20 * time.Millisecond)
		}
		select {
		case <-o.room:
		case <-poll:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// reserve counts n bytes of work in progress (a send in flight) against the budget, waiting
// until they fit (or nothing else is counted); release gives them back. It fails when ctx
// ends.
func (o *outbox) reserve(ctx context.Context, n int64) error {
	for {
		o.mu.Lock()
		if o.closed {
			o.mu.Unlock()
			return context.Canceled
		}
		if o.bytes == 0 || o.bytes+n <= o.limit {
			o.addLocked(n)
			o.mu.Unlock()
			return nil
		}
		o.mu.Unlock()
		select {
		case <-o.room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (o *outbox) release(n int64) {
	o.mu.Lock()
	o.addLocked(-n)
	o.mu.Unlock()
	o.signalRoom()
}

// pageFor is how many messages the next read of a sync or catch-up asks for: as many as fit
// in half the budget at the size of the last page's frames (avg), between 4 and pageSize, so
// that a page of big messages is small.
func (o *outbox) pageFor(avg int64) int {
	if avg <= 0 {
		return 16
	}
	return int(min(max(o.limit/2/avg, 4), pageSize))
}

// next returns every queued frame, leaving spare (emptied) as the queue; when there is none
// it returns nil and the writer must end. The frames stay counted until written.
func (o *outbox) next(spare [][]byte) [][]byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.frames) == 0 {
		o.writing = false
		return nil
	}
	out := o.frames
	o.frames = spare[:0]
	return out
}

// written releases the budget of frames the writer took (written or given up).
func (o *outbox) written(fs [][]byte) {
	var n int64
	for _, f := range fs {
		n += cost(f)
	}
	o.mu.Lock()
	o.addLocked(-n)
	o.mu.Unlock()
	o.signalRoom()
}

// signalRoom wakes work that waits for room (waitRoom, reserve).
func (o *outbox) signalRoom() {
	select {
	case o.room <- struct{}{}:
	default:
	}
}

// abandon drops what is queued and ends the writer (the connection is ending).
func (o *outbox) abandon() {
	o.mu.Lock()
	o.dropLocked()
	o.writing = false
	o.mu.Unlock()
}

func (o *outbox) dropLocked() {
	var n int64
	for _, f := range o.frames {
		n += cost(f)
	}
	o.addLocked(-n)
	o.frames = nil
	o.signalRoom()
}

// close refuses every later frame and waits for the writer to end.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.dropLocked()
	o.mu.Unlock()
	o.writers.Wait()
}

func (o *outbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.frames)
}

// queued is the bytes queued and in flight.
func (o *outbox) queued() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.bytes
}
