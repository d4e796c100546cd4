package hub

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func seqsOf(es []*envelope) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

// TestReorder: events that arrive ahead of their predecessor wait for it and then go out in
// order; a predecessor that never comes is given up after reorderWait, and what was held goes
// out in order for the connections to heal the gap.
func TestReorder(t *testing.T) {
	var mu sync.Mutex
	var expired []int64
	r := &reorderer{release: func(es []*envelope) {
		mu.Lock()
		expired = append(expired, seqsOf(es)...)
		mu.Unlock()
	}}
	msg := func(seq int64) *envelope { return &envelope{Type: "message.new", ChatID: 7, Seq: seq} }
	now := time.Now()
	steps := []struct {
		seq  int64
		want []int64
	}{
		{5, []int64{5}}, // the first seq seen is taken as it is
		{6, []int64{6}},
		{8, nil}, // ahead of 7: held
		{9, nil},
		{7, []int64{7, 8, 9}},
		{6, []int64{6}}, // a repeat passes: the connections drop it
		{10, []int64{10}},
	}
	for _, s := range steps {
		if got := seqsOf(r.admit(msg(s.seq), now)); !slices.Equal(got, s.want) && !(len(got) == 0 && len(s.want) == 0) {
			t.Fatalf("admit %d: released %v, want %v", s.seq, got, s.want)
		}
	}
	// 11 is lost: 13 and 12 wait, then go out in order.
	if got := r.admit(msg(13), now); len(got) != 0 {
		t.Fatalf("admit 13: released %v, want nothing yet", seqsOf(got))
	}
	if got := r.admit(msg(12), now); len(got) != 0 {
		t.Fatalf("admit 12: released %v, want nothing yet", seqsOf(got))
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		got := slices.Clone(expired)
		mu.Unlock()
		if len(got) > 0 {
			if !slices.Equal(got, []int64{12, 13}) {
				t.Fatalf("expired %v, want [12 13]", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("held events never released")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// After the gap, delivery goes on from 14.
	if got := seqsOf(r.admit(msg(14), now)); !slices.Equal(got, []int64{14}) {
		t.Fatalf("admit 14: released %v", got)
	}
	// A chat quiet for long forgets where it was.
	if got := seqsOf(r.admit(msg(40), now.Add(reorderIdle+time.Second))); !slices.Equal(got, []int64{40}) {
		t.Fatalf("admit 40 after a pause: released %v", got)
	}
	r.forget(7)
	if len(r.chats) != 0 {
		t.Fatal("forget kept the chat")
	}
}

func revsOf(es []*envelope) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Rev
	}
	return out
}

// TestReorderChanges: changes that arrive ahead of their predecessor's rev wait for it and go
// out in rev order; a change also waits for the message it follows; a missing rev is given up
// after reorderWait.
func TestReorderChanges(t *testing.T) {
	var mu sync.Mutex
	var expired []int64
	r := &reorderer{release: func(es []*envelope) {
		mu.Lock()
		expired = append(expired, revsOf(es)...)
		mu.Unlock()
	}}
	change := func(rev, at int64) *envelope {
		return &envelope{Type: "reaction.updated", ChatID: 7, Rev: rev, At: at}
	}
	now := time.Now()
	r.admit(&envelope{Type: "message.new", ChatID: 7, Seq: 3}, now)
	steps := []struct {
		rev, at int64
		want    []int64
	}{
		{10, 3, []int64{10}}, // the first rev seen is taken as it is
		{12, 3, nil},         // ahead of 11: held
		{11, 3, []int64{11, 12}},
		{11, 3, []int64{11}}, // a repeat passes: the connections drop it
		{13, 4, nil},         // follows message 4, not released yet
	}
	for _, s := range steps {
		if got := revsOf(r.admitChange(change(s.rev, s.at), now)); !slices.Equal(got, s.want) && !(len(got) == 0 && len(s.want) == 0) {
			t.Fatalf("admit rev %d: released %v, want %v", s.rev, got, s.want)
		}
	}
	if got := r.admit(&envelope{Type: "message.new", ChatID: 7, Seq: 4}, now); len(got) != 2 || got[1].Rev != 13 {
		t.Fatalf("message 4 released %v, want it and then rev 13", revsOf(got))
	}
	// 14 is lost: 15 waits, then goes out.
	if got := r.admitChange(change(15, 4), now); len(got) != 0 {
		t.Fatalf("admit rev 15: released %v, want nothing yet", revsOf(got))
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		got := slices.Clone(expired)
		mu.Unlock()
		if len(got) > 0 {
			if !slices.Equal(got, []int64{15}) {
				t.Fatalf("expired %v, want [15]", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("held changes never released")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := revsOf(r.admitChange(change(16, 4), now)); !slices.Equal(got, []int64{16}) {
		t.Fatalf("admit rev 16 after the gap: released %v", got)
	}
}

// TestReorderHolds: the observer hears how long each message held for its predecessor waited,
// once per held message, whether the predecessor came or was given up; a message that came in
// order is not reported.
func TestReorderHolds(t *testing.T) {
	var mu sync.Mutex
	var holds []time.Duration
	released := make(chan []int64, 4)
	r := &reorderer{
		release: func(es []*envelope) { released <- seqsOf(es) },
		held: func(d time.Duration) {
			mu.Lock()
			holds = append(holds, d)
			mu.Unlock()
		},
	}
	msg := func(seq int64) *envelope { return &envelope{Type: "message.new", ChatID: 9, Seq: seq} }
	t0 := time.Now()
	r.admit(msg(1), t0)
	r.admit(msg(3), t0)                         // held from t0
	r.admit(msg(4), t0.Add(2*time.Millisecond)) // held from t0+2ms
	if got := seqsOf(r.admit(msg(2), t0.Add(7*time.Millisecond))); !slices.Equal(got, []int64{2, 3, 4}) {
		t.Fatalf("admit 2: released %v", got)
	}
	mu.Lock()
	got := slices.Clone(holds)
	mu.Unlock()
	if want := []time.Duration{7 * time.Millisecond, 5 * time.Millisecond}; !slices.Equal(got, want) {
		t.Fatalf("holds %v, want %v (2 came in order and is not one)", got, want)
	}
	// 5 never comes: 6 is released when the wait runs out, and its hold is about reorderWait.
	r.admit(msg(6), time.Now())
	select {
	case seqs := <-released:
		if !slices.Equal(seqs, []int64{6}) {
			t.Fatalf("expired %v, want [6]", seqs)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("held message never released")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(holds) != 3 || holds[2] < reorderWait {
		t.Fatalf("holds %v: want a third of at least %v", holds, reorderWait)
	}
}

// TestReorderStaleTimer: the chat's one timer, set for a change whose predecessor then came,
// must not give up on a change held later before that one has waited reorderWait. (It did: a
// reaction storm healed every connection's revs from the store a few times a second whatever
// the wait, 4,000 reads with one instance.) The same for messages.
func TestReorderStaleTimer(t *testing.T) {
	var mu sync.Mutex
	var released []int64
	// The fake clock is read by timers that fire meanwhile (expire sets one again while the
	// oldest held has not waited long enough): an atomic.
	var clk atomic.Int64
	clk.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clk.Load()) }
	advance := func(d time.Duration) { clk.Add(int64(d)) }
	r := &reorderer{
		release: func(es []*envelope) {
			mu.Lock()
			released = append(released, revsOf(es)...)
			mu.Unlock()
		},
		clock: now,
	}
	defer r.forget(7)
	change := func(rev int64) *envelope {
		return &envelope{Type: "reaction.updated", ChatID: 7, At: 1, Rev: rev}
	}
	r.admitChange(change(1), now())
	r.admitChange(change(3), now()) // ahead of 2: held, and the chat's timer set
	if got := revsOf(r.admitChange(change(2), now())); !slices.Equal(got, []int64{2, 3}) {
		t.Fatalf("admit 2: released %v, want [2 3]", got)
	}
	advance(reorderWait - 10*time.Millisecond)
	r.admitChange(change(5), now()) // ahead of 4, held from now
	advance(10 * time.Millisecond)
	r.expire(7) // the timer set for 3 fires: 5 has waited 10 ms
	mu.Lock()
	early := slices.Clone(released)
	mu.Unlock()
	if len(early) != 0 {
		t.Fatalf("the timer of a change already released gave up on 5 after 10 ms: released %v", early)
	}
	if got := revsOf(r.admitChange(change(4), now())); !slices.Equal(got, []int64{4, 5}) {
		t.Fatalf("admit 4: released %v, want [4 5]", got)
	}
	// Once the oldest held has waited reorderWait, the timer gives up on it.
	r.admitChange(change(7), now())
	advance(reorderWait)
	r.expire(7)
	mu.Lock()
	if !slices.Equal(released, []int64{7}) {
		t.Fatalf("after reorderWait released %v, want [7]", released)
	}
	mu.Unlock()

	// Messages: 12 held, its predecessor came, the timer left running; 14 held just before
	// the timer fires must wait on.
	var out []int64
	m := &reorderer{release: func(es []*envelope) {
		mu.Lock()
		out = append(out, seqsOf(es)...)
		mu.Unlock()
	}, clock: now}
	defer m.forget(8)
	msg := func(seq int64) *envelope { return &envelope{Type: "message.new", ChatID: 8, Seq: seq} }
	m.admit(msg(10), now())
	m.admit(msg(12), now())
	m.admit(msg(11), now())
	advance(reorderWait - time.Millisecond)
	m.admit(msg(14), now())
	advance(time.Millisecond)
	m.expire(8)
	mu.Lock()
	defer mu.Unlock()
	if len(out) != 0 {
		t.Fatalf("gave up on message 14 after 1 ms: released %v", out)
	}
}
