package hub

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestOutbox: frames wait until start puts the first frame ahead of them; then the writer
// takes them in order; an empty outbox ends the writer, and the next frame asks for a new one;
// a closed one drops.
func TestOutbox(t *testing.T) {
	o := newOutbox(1<<20, nil, 0)
	for i := range 3 {
		if got := o.push([]byte{byte(i + 1)}); got != pushQueued {
			t.Fatalf("push %d: %v, want queued", i, got)
		}
	}
	o.start([]byte{0})
	got := o.next(nil)
	if len(got) != 4 || got[0][0] != 0 || got[1][0] != 1 || got[3][0] != 3 {
		t.Fatalf("took %v, want [0 1 2 3]", got)
	}
	o.written(got)
	if o.next(nil) != nil {
		t.Fatal("an empty outbox gave frames")
	}
	o.writers.Done() // the writer ended
	if got := o.push([]byte{5}); got != pushStartWriter {
		t.Fatalf("push after the writer ended: %v, want a new writer", got)
	}
	o.abandon()
	o.writers.Done()
	o.close()
	if got := o.push([]byte{6}); got != pushClosed {
		t.Fatalf("push after close: %v", got)
	}
}

// TestOutboxBudget: the budget is in bytes, queued and in flight: a frame that would pass it
// is refused, frames the writer took still count until written, a frame larger than the whole
// budget is taken when nothing waits, and the instance's total follows every change.
func TestOutboxBudget(t *testing.T) {
	var total atomic.Int64
	const limit = 10 * (100 + frameOverhead)
	o := newOutbox(limit, &total, 0)
	o.start(nil) // a zero-byte hello: only its overhead
	frame := bytes.Repeat([]byte("x"), 100)
	pushed := 0
	for o.push(frame) != pushFull {
		if pushed++; pushed > 100 {
			t.Fatal("the outbox never refused a frame")
		}
	}
	if want := 9; pushed != want { // the hello's overhead took the tenth slot
		t.Fatalf("took %d frames of 100 bytes in a budget of %d, want %d", pushed, limit, want)
	}
	if got, want := total.Load(), o.queued(); got != want || got > limit {
		t.Fatalf("instance total %d, outbox %d, budget %d", got, want, limit)
	}
	inFlight := o.next(nil) // the writer took everything and is blocked writing it
	if got := o.push(frame); got != pushFull {
		t.Fatalf("push while the taken frames are unwritten: %v, want full", got)
	}
	o.written(inFlight)
	if total.Load() != 0 || o.queued() != 0 {
		t.Fatalf("after writing: instance total %d, outbox %d, want 0", total.Load(), o.queued())
	}
	huge := bytes.Repeat([]byte("y"), 2*limit)
	if got := o.push(huge); got != pushQueued {
		t.Fatalf("a frame larger than the budget into an empty outbox: %v, want queued", got)
	}
	if got := o.push(frame); got != pushFull {
		t.Fatalf("a frame behind one larger than the budget: %v, want full", got)
	}
	o.writers.Done() // the test was the writer
	o.close()
	if total.Load() != 0 {
		t.Fatalf("after close the instance total is %d, want 0", total.Load())
	}
}

// TestOutboxWaitRoom: work that waits for room (a sync) waits until the queue is under half
// the budget, wakes when the writer has written, and gives up when the connection ends.
func TestOutboxWaitRoom(t *testing.T) {
	o := newOutbox(1000, nil, 0)
	o.start(bytes.Repeat([]byte("h"), 600))
	taken := o.next(nil)
	done := make(chan error, 1)
	go func() { done <- o.waitRoom(context.Background(), 0) }()
	select {
	case err := <-done:
		t.Fatalf("waitRoom returned (%v) with 632 of 1000 bytes in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	o.written(taken)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waitRoom did not wake when the frames were written")
	}
	o.push(bytes.Repeat([]byte("z"), 700))
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- o.waitRoom(ctx, 0) }()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("waitRoom succeeded on a full outbox after its context ended")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waitRoom did not end with its context")
	}
}
