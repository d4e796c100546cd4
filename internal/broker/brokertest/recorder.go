// Package brokertest is the behaviour suite that every broker.Broker and broker.Presence must
// pass, so that the memory and the Redis implementations cannot drift apart.
package brokertest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Wait bounds every wait of the suite. It is generous because the suite runs under -race
// against a real server; a passing test never waits for it.
const Wait = 5 * time.Second

// Delivery is one call of Handler.Deliver.
type Delivery struct {
	Topic   string
	Payload string
}

// Recorder is a broker.Handler that records what it is given and lets a test wait for it.
type Recorder struct {
	notify chan struct{} // capacity 1: something was recorded

	mu           sync.Mutex
	deliveries   []Delivery
	resubscribes int
	closed       bool // set by MarkClosed: any call after it is a bug in the broker
	late         []string
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{notify: make(chan struct{}, 1)}
}

// Deliver records a delivery. It copies payload, as the contract asks.
func (r *Recorder) Deliver(topic string, payload []byte) {
	r.mu.Lock()
	r.deliveries = append(r.deliveries, Delivery{Topic: topic, Payload: string(bytes.Clone(payload))})
	if r.closed {
		r.late = append(r.late, fmt.Sprintf("Deliver(%q, %q)", topic, payload))
	}
	r.mu.Unlock()
	r.signal()
}

// Resubscribed counts the call.
func (r *Recorder) Resubscribed() {
	r.mu.Lock()
	r.resubscribes++
	if r.closed {
		r.late = append(r.late, "Resubscribed()")
	}
	r.mu.Unlock()
	r.signal()
}

func (r *Recorder) signal() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// MarkClosed records that the broker's Close has returned; CheckNotCalledAfterClose then
// reports any later call.
func (r *Recorder) MarkClosed() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
}

// CheckNotCalledAfterClose fails the test for every call made after MarkClosed.
func (r *Recorder) CheckNotCalledAfterClose(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, call := range r.late {
		t.Errorf("handler called after Close returned: %s", call)
	}
}

// Deliveries returns a copy of what was delivered so far.
func (r *Recorder) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.deliveries...)
}

// Resubscribes returns how often Resubscribed was called.
func (r *Recorder) Resubscribes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resubscribes
}

// WaitFor waits until topic/payload is delivered and returns every delivery up to and
// including it. Publishing it last makes it a fence: anything published before it that was
// going to be delivered has been.
func (r *Recorder) WaitFor(t testing.TB, topic, payload string) []Delivery {
	t.Helper()
	var got []Delivery
	r.WaitUntil(t, fmt.Sprintf("delivery of %q on %q", payload, topic), func(ds []Delivery, _ int) bool {
		for i, d := range ds {
			if d.Topic == topic && d.Payload == payload {
				got = append([]Delivery(nil), ds[:i+1]...)
				return true
			}
		}
		return false
	})
	return got
}

// WaitUntil waits until done holds for the deliveries and the Resubscribed count so far, and
// fails the test after Wait.
func (r *Recorder) WaitUntil(t testing.TB, what string, done func(ds []Delivery, resubscribes int) bool) {
	t.Helper()
	deadline := time.NewTimer(Wait)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok := done(r.deliveries, r.resubscribes)
		n, resubs := len(r.deliveries), r.resubscribes
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.notify:
		case <-deadline.C:
			t.Fatalf("waited %v for %s; got %d deliveries, %d resubscribes", Wait, what, n, resubs)
		}
	}
}
