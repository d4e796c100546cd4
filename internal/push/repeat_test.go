package push_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/wschat/chat/internal/push"
	"github.com/wschat/chat/internal/pushtest"
	"github.com/wschat/chat/internal/testserver"
)

// TestPushNoRepeatAfterDelete: a message already pushed is not pushed again when the newer
// message whose job came after it is deleted before that job is due; nothing is pushed, and
// the next message is. The second push of the first message (same seq and body) showed again
// with renotify. A worker stepped by hand, with a clock of its own.
func TestPushNoRepeatAfterDelete(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			h := newByHand(t, db)
			s, ps, sub, ann, p := h.s, h.ps, h.sub, h.ann, h.chat
			step := h.step
			seqs := func() []int64 {
				var out []int64
				for _, g := range ps.To(sub) {
					var pl push.Payload
					if err := json.Unmarshal(g.Payload, &pl); err != nil {
						t.Fatalf("payload %s: %v", g.Payload, err)
					}
					out = append(out, pl.Seq)
				}
				return out
			}
			m1 := send(t, s, ann, p, "one")
			step() // queued, due in an hour
			h.ahead = 2 * time.Hour
			step()
			if got := seqs(); len(got) != 1 || got[0] != m1.Seq {
				t.Fatalf("pushes %v, want one of seq %d", got, m1.Seq)
			}

			h.ahead = 0
			m2 := send(t, s, ann, p, "two")
			step() // queued, due in an hour
			if err := s.Svc.DeleteMessage(ctx, ann.P(), p, m2.Seq); err != nil {
				t.Fatal(err)
			}
			h.ahead = 4 * time.Hour
			step()
			if got := seqs(); len(got) != 1 {
				t.Errorf("after the newer message was deleted: pushes of seqs %v, want only the first (%d)", got, m1.Seq)
			}

			h.ahead = 0
			m3 := send(t, s, ann, p, "three")
			step()
			h.ahead = 6 * time.Hour
			step()
			if got := seqs(); len(got) == 0 || got[len(got)-1] != m3.Seq {
				t.Errorf("pushes of seqs %v, want the last of %d", got, m3.Seq)
			}
		})
	}
}

// byHand is a private chat of Ann and Ben on db whose pushes to Ben (sub, subscribed over HTTP
// as a browser does) go to a push service of the test's, through the server's push worker,
// which does not run: the test steps it (step) on a clock that ahead moves.
type byHand struct {
	s        *testserver.Server
	ps       *pushtest.Server
	w        *push.Service
	ann, ben *testserver.User
	chat     int64
	sub      *pushtest.Subscription
	ahead    time.Duration
}

func newByHand(t *testing.T, db string) *byHand {
	t.Helper()
	h := &byHand{ps: pushtest.Start(t)}
	h.s = testserver.Start(t, testserver.Config{Postgres: db == "postgres", PushByHand: true,
		Push: &push.Options{Delay: time.Hour, Subject: "mailto:ops@chat.test", AllowPrivate: true,
			Instance: "by-hand", Now: func() time.Time { return time.Now().Add(h.ahead) }}})
	h.w = h.s.Push
	h.ps.VAPIDKey = h.w.PublicKey()
	h.ann, h.ben = h.s.NewUser(t, "Ann"), h.s.NewUser(t, "Ben")
	h.chat = h.s.Private(t, h.ann, h.ben)
	h.sub = subscribe(t, h.s, h.ps, h.ben)
	return h
}

// step runs the worker until it finds nothing to do.
func (h *byHand) step() {
	for h.w.Step(context.Background()) {
	}
}
