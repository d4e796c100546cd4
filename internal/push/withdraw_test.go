package push_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/push"
	"github.com/wschat/chat/internal/pushtest"
	"github.com/wschat/chat/internal/testserver"
)

// TestPushWithdraw: a push that was shown is withdrawn once the member reads the chat on
// another device, with one withdrawal however often it is read; nothing is withdrawn that
// was never shown (read before the delay, muted). On both databases, through the real push
// service, which decrypts the withdrawal. The cases run side by side, each on a server of its
// own whose worker it steps (newByHand).
func TestPushWithdraw(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()

			t.Run("read elsewhere after the push: one withdrawal", func(t *testing.T) {
				t.Parallel()
				h := newByHand(t, db)
				s, ann, ben, p, sub := h.s, h.ann, h.ben, h.chat, h.sub
				m := send(t, s, ann, p, "are you there?")
				h.pushes(t, sub, 1)
				// Read on the phone, over HTTP, then again on the laptop's socket, after the
				// withdrawal went.
				if r := s.Call(t, "POST", fmt.Sprintf("/api/v1/chats/%d/read", p), ben.Token, map[string]int64{"seq": m.Seq}, nil); r.Status >= 300 {
					t.Fatalf("read: %d %s", r.Status, r.Body)
				}
				h.step()
				if _, err := s.Svc.MarkRead(ctx, ben.P(), p, m.Seq); err != nil {
					t.Fatal(err)
				}
				got := h.pushes(t, sub, 2)
				var w push.WithdrawPayload
				if err := json.Unmarshal(got[1].Payload, &w); err != nil {
					t.Fatalf("withdrawal %s: %v", got[1].Payload, err)
				}
				tag := fmt.Sprintf("chat-%d", p)
				if want := (push.WithdrawPayload{Type: "withdraw", ChatID: p, Seq: m.Seq, Tag: tag}); w != want {
					t.Errorf("withdrawal %+v, want %+v", w, want)
				}
				if got[1].Topic != tag {
					t.Errorf("withdrawal's Topic %q, want %q (it replaces an undelivered push of the chat)", got[1].Topic, tag)
				}
				// A new message after the withdrawal is pushed again, and withdrawn again.
				m2 := send(t, s, ann, p, "still there?")
				h.pushes(t, sub, 3)
				if _, err := s.Svc.MarkRead(ctx, ben.P(), p, m2.Seq); err != nil {
					t.Fatal(err)
				}
				got = h.pushes(t, sub, 4)
				if err := json.Unmarshal(got[3].Payload, &w); err != nil || w.Type != "withdraw" || w.Seq != m2.Seq {
					t.Errorf("second withdrawal %s, want one at seq %d", got[3].Payload, m2.Seq)
				}
			})

			t.Run("read a part: no withdrawal", func(t *testing.T) {
				t.Parallel()
				h := newByHand(t, db)
				s, ann, ben, sub := h.s, h.ann, h.ben, h.sub
				g := s.Group(t, ann, "Team", false, ben)
				m := send(t, s, ann, g, "one")
				send(t, s, ann, g, "two")
				h.pushes(t, sub, 1)
				if _, err := s.Svc.MarkRead(ctx, ben.P(), g, m.Seq); err != nil {
					t.Fatal(err)
				}
				h.pushes(t, sub, 1)
			})

			t.Run("never shown: nothing to withdraw", func(t *testing.T) {
				t.Parallel()
				h := newByHand(t, db)
				s, ann, ben, p, sub := h.s, h.ann, h.ben, h.chat, h.sub
				m := send(t, s, ann, p, "read me on the phone")
				h.step()
				if n := jobs(t, s, ben, p); n != 1 { // read while its push waits
					t.Fatalf("push jobs queued: %d, want 1", n)
				}
				if _, err := s.Svc.MarkRead(ctx, ben.P(), p, m.Seq); err != nil {
					t.Fatal(err)
				}
				h.pushes(t, sub, 0)
			})

			t.Run("muted: nothing to withdraw", func(t *testing.T) {
				t.Parallel()
				h := newByHand(t, db)
				s, ann, ben, p, sub := h.s, h.ann, h.ben, h.chat, h.sub
				// Muted for a day: the worker's clock runs hours ahead.
				if r := s.Call(t, "PATCH", fmt.Sprintf("/api/v1/chats/%d/settings", p), ben.Token,
					map[string]any{"muted_until": time.Now().Add(24 * time.Hour).Format(time.RFC3339)}, nil); r.Status != http.StatusOK {
					t.Fatalf("mute: %d %s", r.Status, r.Body)
				}
				m := send(t, s, ann, p, "quiet")
				h.step()
				if n := jobs(t, s, ben, p); n != 1 {
					t.Fatalf("push jobs queued: %d, want 1", n)
				}
				h.ahead = 2 * time.Hour
				h.step()
				if n := jobs(t, s, ben, p); n != 0 { // its push was dropped
					t.Fatalf("push jobs queued after it was due: %d, want 0", n)
				}
				h.ahead = 0
				if _, err := s.Svc.MarkRead(ctx, ben.P(), p, m.Seq); err != nil {
					t.Fatal(err)
				}
				h.pushes(t, sub, 0)
			})
		})
	}
}

// jobs counts the push jobs queued for u and chatID.
func jobs(t *testing.T, s *testserver.Server, u *testserver.User, chatID int64) int {
	t.Helper()
	var n int
	if err := s.Store.DB().QueryRow(`SELECT count(*) FROM push_jobs WHERE user_id = $1 AND chat_id = $2`, u.ID, chatID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWithdrawable(t *testing.T) {
	for _, c := range []struct {
		endpoint string
		want     bool
	}{
		{"https://fcm.googleapis.com/fcm/send/abc", true},
		{"https://updates.push.services.mozilla.com/wpush/v2/abc", true},
		{"https://web.push.apple.com/QAbc", false},
		{"https://WEB.Push.Apple.com/QAbc", false},
	} {
		if got := push.Withdrawable(c.endpoint); got != c.want {
			t.Errorf("Withdrawable(%s) = %v, want %v", c.endpoint, got, c.want)
		}
	}
}

// TestPushAfterWithdrawal: a withdrawal's job that a new message joins before it is sent
// (another instance's scan, between this one's) does not push the message early: it waits
// until the message is a delay old. A worker stepped by hand, with a clock of its own.
func TestPushAfterWithdrawal(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			h := newByHand(t, db)
			s, ps, sub, ann, ben, p := h.s, h.ps, h.sub, h.ann, h.ben, h.chat
			step := h.step
			m1 := send(t, s, ann, p, "one")
			step() // queued, due in an hour
			h.ahead = 2 * time.Hour
			step()
			if n := len(ps.To(sub)); n != 1 {
				t.Fatalf("pushes of the first message: %d, want 1", n)
			}
			h.ahead = 0
			if _, err := s.Svc.MarkRead(ctx, ben.P(), p, m1.Seq); err != nil {
				t.Fatal(err)
			}
			if n, err := s.Store.ScanPushWithdrawals(ctx, time.Now()); err != nil || n != 1 {
				t.Fatalf("withdrawals queued: %d, %v; want 1", n, err)
			}
			send(t, s, ann, p, "two") // joins the withdrawal's job, due now
			step()
			if got := ps.To(sub); len(got) != 1 {
				t.Errorf("got %d pushes, want only the first: %v", len(got), payloads(got))
			}
		})
	}
}

// TestPushLeaseRunOut: a worker whose claim ran out before it reached the send (a slow batch,
// a loaded machine) sends nothing, since another instance may have claimed the job meanwhile;
// the job stays, and the next claim sends it, once. Two workers stepped by hand: one whose
// lease (a nanosecond) is over before any send, one with a minute.
func TestPushLeaseRunOut(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			ps := pushtest.Start(t)
			s := testserver.Start(t, testserver.Config{Postgres: db == "postgres"})
			var ahead time.Duration
			worker := func(name string, lease time.Duration) *push.Service {
				w, err := push.New(s.Store, s.Hub, push.Options{PrivateKey: testserver.PushKey, Delay: time.Hour, Lease: lease,
					AllowPrivate: true, Instance: name, Now: func() time.Time { return time.Now().Add(ahead) }})
				if err != nil {
					t.Fatal(err)
				}
				return w
			}
			slow, fast := worker("slow", time.Nanosecond), worker("fast", time.Minute)
			ps.VAPIDKey = slow.PublicKey()
			ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
			p := s.Private(t, ann, ben)
			sub := ps.Subscribe()
			if err := slow.Subscribe(ctx, ben.P(), chat.PushSubscription{Endpoint: sub.Endpoint, P256dh: sub.P256dh, Auth: sub.Auth}); err != nil {
				t.Fatal(err)
			}
			m := send(t, s, ann, p, "one")
			slow.Step(ctx) // queued, due in an hour
			ahead = 2 * time.Hour
			slow.Step(ctx) // claimed, and the claim is over before the send
			if got := ps.To(sub); len(got) != 0 {
				t.Fatalf("the worker whose lease ran out sent %d pushes: %v", len(got), payloads(got))
			}
			time.Sleep(5 * time.Millisecond) // past the millisecond the lease ends in
			fast.Step(ctx)
			slow.Step(ctx)
			fast.Step(ctx)
			got := ps.To(sub)
			if len(got) != 1 {
				t.Fatalf("got %d pushes, want 1: %v", len(got), payloads(got))
			}
			var pl push.Payload
			if err := json.Unmarshal(got[0].Payload, &pl); err != nil || pl.Seq != m.Seq {
				t.Errorf("push %s (%v), want seq %d", got[0].Payload, err, m.Seq)
			}
		})
	}
}
