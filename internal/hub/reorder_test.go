package hub

import (
	"slices"
	"sync"
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
