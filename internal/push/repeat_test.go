package push_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
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
			ps := pushtest.Start(t)
			s := testserver.Start(t, testserver.Config{Postgres: db == "postgres"})
			var ahead time.Duration
			w, err := push.New(s.Store, s.Hub, push.Options{PrivateKey: testserver.PushKey, Delay: time.Hour, AllowPrivate: true,
				Instance: "by-hand", Now: func() time.Time { return time.Now().Add(ahead) }})
			if err != nil {
				t.Fatal(err)
			}
			ps.VAPIDKey = w.PublicKey()
			ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
			p := s.Private(t, ann, ben)
			sub := ps.Subscribe()
			if err := w.Subscribe(ctx, ben.P(), chat.PushSubscription{Endpoint: sub.Endpoint, P256dh: sub.P256dh, Auth: sub.Auth}); err != nil {
				t.Fatal(err)
			}
			step := func() {
				t.Helper()
				for w.Step(ctx) {
				}
			}
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
			ahead = 2 * time.Hour
			step()
			if got := seqs(); len(got) != 1 || got[0] != m1.Seq {
				t.Fatalf("pushes %v, want one of seq %d", got, m1.Seq)
			}

			ahead = 0
			m2 := send(t, s, ann, p, "two")
			step() // queued, due in an hour
			if err := s.Svc.DeleteMessage(ctx, ann.P(), p, m2.Seq); err != nil {
				t.Fatal(err)
			}
			ahead = 4 * time.Hour
			step()
			if got := seqs(); len(got) != 1 {
				t.Errorf("after the newer message was deleted: pushes of seqs %v, want only the first (%d)", got, m1.Seq)
			}

			ahead = 0
			m3 := send(t, s, ann, p, "three")
			step()
			ahead = 6 * time.Hour
			step()
			if got := seqs(); len(got) == 0 || got[len(got)-1] != m3.Seq {
				t.Errorf("pushes of seqs %v, want the last of %d", got, m3.Seq)
			}
		})
	}
}
