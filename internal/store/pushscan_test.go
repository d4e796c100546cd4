package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
)

// TestPushScanOfABurst: a scan takes each chat's messages together and queues what one
// statement per message, in order, queued: a job per member to tell, at the last message
// they are to be told of and due after the first; a later scan raises a queued job's seq and
// keeps its due time. Senders, members who read, members without a subscription and
// members notified of mentions only (for messages that do not mention them) are not told.
func TestPushScanOfABurst(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b, c, d, e := mkUser(t, s, "a"), mkUser(t, s, "b"), mkUser(t, s, "c"), mkUser(t, s, "d"), mkUser(t, s, "e")
		g := mkGroup(t, s, a, "burst", false, at(0), b, c, d, e)
		if _, err := s.UpdateChatSettings(ctx, chat.SettingsChange{ChatID: g, UserID: c.ID, Notify: "mentions"}); err != nil {
			t.Fatal(err)
		}
		for _, u := range []chat.User{a, b, c, e} { // not d
			sub := chat.PushSubscription{UserID: u.ID, Endpoint: fmt.Sprintf("https://push.example/%d", u.ID), P256dh: "k", Auth: "a"}
			if err := s.SavePushSubscription(ctx, sub, at(0)); err != nil {
				t.Fatal(err)
			}
		}
		send(t, s, g, a, "one", at(1))
		m2, err := sendMention(s, g, b, false, 2, c)
		if err != nil {
			t.Fatal(err)
		}
		send(t, s, g, a, "three", at(3))
		send(t, s, g, b, "four", at(4))
		if _, err := s.MarkRead(ctx, g, e.ID, m2.Message.Seq); err != nil {
			t.Fatal(err)
		}
		const delay = 10 * time.Second
		if _, err := s.ScanPushJobs(ctx, at(30), delay); err != nil {
			t.Fatal(err)
		}
		m5 := send(t, s, g, b, "five", at(5))
		if _, err := s.ScanPushJobs(ctx, at(30), delay); err != nil {
			t.Fatal(err)
		}
		// Due 10 s after the first message each is told of: c after m2 (the one that mentions
		// them), e after m3 (the first past their read mark), a after m4 (the first after
		// their own last); d has no subscription, and b sent the last message.
		for _, want := range []struct {
			due  int
			user chat.User
			seq  int64
		}{{12, c, m2.Message.Seq}, {13, e, m5.Message.Seq}, {14, a, m5.Message.Seq}} {
			jobs, err := s.ClaimPushJobs(ctx, "test", at(want.due), time.Hour, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(jobs) != 1 || jobs[0].UserID != want.user.ID || jobs[0].ChatID != g || jobs[0].Seq != want.seq {
				t.Errorf("due at %d s: jobs %+v, want user %d's at seq %d", want.due, jobs, want.user.ID, want.seq)
			}
		}
		if jobs, err := s.ClaimPushJobs(ctx, "test", at(100), time.Hour, 10); err != nil || len(jobs) != 0 {
			t.Errorf("more jobs: %+v, %v", jobs, err)
		}
	})
}

// TestPushSubscriptionsOfLiveSessions: a subscription is pushed to while the session that made
// it lives: not once it is revoked or expired, nor one of no session.
// EndedSessions tells the same of sessions.
func TestPushSubscriptionsOfLiveSessions(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u := mkUser(t, s, "u")
		session := func(expires time.Time) int64 {
			x, err := s.CreateSession(ctx, chat.Session{UserID: u.ID, CreatedAt: at(0), LastSeenAt: at(0), ExpiresAt: expires},
				[]byte(fmt.Sprintf("hash-%d-%d", u.ID, expires.UnixNano())))
			if err != nil {
				t.Fatal(err)
			}
			return x.ID
		}
		live, expiring, revoked := session(at(1000)), session(at(10)), session(at(999))
		if _, err := s.RevokeSessions(ctx, u.ID, revoked, at(1)); err != nil {
			t.Fatal(err)
		}
		// The hub's audit asks the same of its connections' sessions (a gone one, 1<<40, too).
		for _, c := range []struct {
			now  time.Time
			want []int64
		}{
			{at(5), []int64{revoked, 1 << 40}},
			{at(20), []int64{expiring, revoked, 1 << 40}},
		} {
			ended, err := s.EndedSessions(ctx, []int64{live, expiring, revoked, 1 << 40}, c.now)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ended, c.want) {
				t.Errorf("at %v: ended %v, want %v", c.now, ended, c.want)
			}
		}
		for name, sid := range map[string]int64{"live": live, "expiring": expiring, "revoked": revoked, "legacy": 0} {
			sub := chat.PushSubscription{UserID: u.ID, SessionID: sid, Endpoint: "https://push.example/" + name, P256dh: "k", Auth: "a"}
			if err := s.SavePushSubscription(ctx, sub, at(0)); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			now  time.Time
			want []string
		}{
			{at(5), []string{"live", "expiring"}},
			{at(20), []string{"live"}},
		} {
			subs, err := s.PushSubscriptions(ctx, u.ID, c.now)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, sub := range subs {
				got[strings.TrimPrefix(sub.Endpoint, "https://push.example/")] = true
			}
			if len(got) != len(c.want) {
				t.Errorf("at %v: listed %v, want %v", c.now, got, c.want)
			}
			for _, w := range c.want {
				if !got[w] {
					t.Errorf("at %v: listed %v, want %v", c.now, got, c.want)
				}
			}
		}
	})
}
