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
