package push_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/wschat/chat/internal/blob"
	"github.com/wschat/chat/internal/hub"
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
// which does not run: the test steps it (step, pushes) on a clock that ahead moves. A device
// that leaves is offline at once (no OfflineGrace): a test waits for it (waitOnline), not for
// a grace to pass.
type byHand struct {
	s        *testserver.Server
	ps       *pushtest.Server
	w        *push.Service
	ann, ben *testserver.User
	chat     int64
	sub      *pushtest.Subscription
	ahead    time.Duration
}

// byHandOption changes the test server's configuration (withFiles).
type byHandOption func(*testing.T, *testserver.Config)

// withFiles turns files on, stored in a directory of the test's.
func withFiles(t *testing.T, cfg *testserver.Config) {
	t.Helper()
	blobs, err := blob.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Blobs = blobs
}

func newByHand(t *testing.T, db string, opts ...byHandOption) *byHand {
	t.Helper()
	h := &byHand{ps: pushtest.Start(t)}
	cfg := testserver.Config{Postgres: db == "postgres", PushByHand: true,
		Hub: hub.Options{OfflineGrace: time.Millisecond},
		Push: &push.Options{Delay: time.Hour, Subject: "mailto:ops@chat.test", AllowPrivate: true,
			Instance: "by-hand", Now: func() time.Time { return time.Now().Add(h.ahead) }}}
	for _, o := range opts {
		o(t, &cfg)
	}
	h.s = testserver.Start(t, cfg)
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

// pass lets the push delay pass, and three more: the worker queues what was sent, at the
// time it was sent (a message is queued only while it is fresh), then is stepped two delays
// on, when every push queued is due, and five delays on, when anything that would come after
// them (a job due again, a retry) would have come. The clock is then back at the time.
func (h *byHand) pass() {
	h.ahead = 0
	h.step()
	h.ahead = 2 * time.Hour
	h.step()
	h.ahead = 5 * time.Hour
	h.step()
	h.ahead = 0
}

// pushes lets the push delay pass (pass) and returns the pushes sub got, failing the test
// unless there are n.
func (h *byHand) pushes(t *testing.T, sub *pushtest.Subscription, n int) []pushtest.Push {
	t.Helper()
	h.pass()
	got := h.ps.To(sub)
	if len(got) < n {
		t.Fatalf("got %d pushes, want %d: %v", len(got), n, payloads(got))
	}
	if len(got) > n {
		t.Errorf("got %d pushes, want %d: %v", len(got), n, payloads(got))
	}
	return got
}

// waitOnline waits until the server's presence marks u online (a socket's hello comes
// before its mark) or offline (a socket's close is seen after it is closed).
func (h *byHand) waitOnline(t *testing.T, u *testserver.User, online bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for h.s.Hub.Online(context.Background(), []int64{u.ID})[u.ID] != online {
		if time.Now().After(deadline) {
			t.Fatalf("user %d: online is not %v", u.ID, online)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
