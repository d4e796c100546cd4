package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
)

// TestPushSubscriptionTakeover: an endpoint another user subscribed from a live session is not
// moved by knowing it: it stays theirs, pushed to and theirs to delete. It moves when the
// request carries its keys (the same browser, its first user still signed in), once that
// session has ended (revoked or expired: the next user of the browser), and between sessions
// of one user. It was moved to whoever posted it.
func TestPushSubscriptionTakeover(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ann, eve := mkUser(t, s, "ann"), mkUser(t, s, "eve")
		sessions := 0
		session := func(u chat.User, expires time.Time) int64 {
			t.Helper()
			sessions++
			x, err := s.CreateSession(ctx, chat.Session{UserID: u.ID, CreatedAt: at(0), LastSeenAt: at(0), ExpiresAt: expires},
				[]byte(fmt.Sprintf("hash-%d-%d", u.ID, sessions)))
			if err != nil {
				t.Fatal(err)
			}
			return x.ID
		}
		const endpoint = "https://push.example/ann"
		save := func(u chat.User, sid int64, key string, now time.Time) error {
			return s.SavePushSubscription(ctx, chat.PushSubscription{UserID: u.ID, SessionID: sid, Endpoint: endpoint,
				P256dh: "p-" + key, Auth: "a-" + key}, now)
		}
		holder := func(now time.Time) string {
			t.Helper()
			for _, u := range []chat.User{ann, eve} {
				subs, err := s.PushSubscriptions(ctx, u.ID, now)
				if err != nil {
					t.Fatal(err)
				}
				for _, sub := range subs {
					if sub.Endpoint == endpoint {
						return u.Name + " " + sub.P256dh
					}
				}
			}
			return "nobody"
		}
		annLaptop, annPhone, eveSession, annShort := session(ann, at(1000)), session(ann, at(1000)), session(eve, at(1000)), session(ann, at(50))
		steps := []struct {
			what string
			do   func() error
			err  error
			want string
		}{
			{"ann subscribes", func() error { return save(ann, annLaptop, "ann", at(1)) }, nil, "ann p-ann"},
			{"eve posts ann's endpoint with keys of her own", func() error { return save(eve, eveSession, "eve", at(2)) }, chat.ErrPushEndpointTaken, "ann p-ann"},
			{"eve posts it with ann's p256dh only", func() error {
				return s.SavePushSubscription(ctx, chat.PushSubscription{UserID: eve.ID, SessionID: eveSession, Endpoint: endpoint, P256dh: "p-ann", Auth: "a-eve"}, at(2))
			}, chat.ErrPushEndpointTaken, "ann p-ann"},
			{"ann again from her phone, new keys", func() error { return save(ann, annPhone, "phone", at(3)) }, nil, "ann p-phone"},
			{"eve on ann's browser, ann still signed in: the same keys", func() error { return save(eve, eveSession, "phone", at(4)) }, nil, "eve p-phone"},
			{"ann back, eve signed out", func() error {
				if _, err := s.RevokeSessions(ctx, eve.ID, eveSession, at(5)); err != nil {
					return err
				}
				return save(ann, annShort, "short", at(6))
			}, nil, "ann p-short"},
			{"eve, ann's session live", func() error { return save(eve, session(eve, at(1000)), "eve2", at(7)) }, chat.ErrPushEndpointTaken, "ann p-short"},
		}
		for _, st := range steps {
			if err := st.do(); !errors.Is(err, st.err) {
				t.Errorf("%s: %v, want %v", st.what, err, st.err)
			}
			if got := holder(at(8)); got != st.want {
				t.Errorf("%s: the endpoint is %s's, want %s", st.what, got, st.want)
			}
		}
		// Ann's short session expires: the browser's next user takes the endpoint.
		if err := save(eve, session(eve, at(1000)), "eve3", at(60)); err != nil {
			t.Errorf("eve after ann's session expired: %v", err)
		}
		if got := holder(at(60)); got != "eve p-eve3" {
			t.Errorf("after ann's session expired: the endpoint is %s's, want eve's", got)
		}
	})
}

// TestMigration00017: push endpoints stored in several spellings of one URL (case, a default
// port, a trailing dot, percent-encoding) become one subscription in the canonical spelling
// (chat.CanonicalPushEndpoint): the row already spelled so stays, else the newest; the others
// go. Down leaves the rows as they are.
func TestMigration00017(t *testing.T) {
	eachUnmigrated(t, func(t *testing.T, ctx context.Context, name string, s *store.Store) {
		const before = 16
		if err := store.MigrateTo(ctx, s, before); err != nil {
			t.Fatal(err)
		}
		a, b := mkUserRaw(t, s, "a@m17.test"), mkUserRaw(t, s, "b@m17.test")
		for _, r := range []struct {
			user     int64
			endpoint string
			at       int64
		}{
			{a.ID, "https://push.example/a", 1}, {b.ID, "HTTPS://PUSH.EXAMPLE:443/a", 5},
			{a.ID, "https://Push.Example./b", 1}, {b.ID, "https://push.example:443/b", 3}, {a.ID, "https://push.example/%62", 2},
			{a.ID, "https://push.example/c%3a", 1},
			{b.ID, "https://push.example/d", 1},
		} {
			if _, err := s.DB().Exec(`INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, created_at) VALUES ($1, $2, 'k', 'a', $3)`,
				r.user, r.endpoint, r.at); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		list := func() []string {
			t.Helper()
			rows, err := s.DB().Query(`SELECT endpoint, user_id, created_at FROM push_subscriptions ORDER BY endpoint`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var got []string
			for rows.Next() {
				var e string
				var u, c int64
				if err := rows.Scan(&e, &u, &c); err != nil {
					t.Fatal(err)
				}
				who := map[int64]string{a.ID: "a", b.ID: "b"}[u]
				got = append(got, fmt.Sprintf("%s %s %d", e, who, c))
			}
			return got
		}
		want := []string{"https://push.example/a a 1", "https://push.example/b b 3", "https://push.example/c%3A a 1", "https://push.example/d b 1"}
		if got := list(); !slices.Equal(got, want) {
			t.Errorf("subscriptions after the migration:\n got %q\nwant %q", got, want)
		}
		if err := store.MigrateTo(ctx, s, before); err != nil {
			t.Fatalf("down to %d: %v", before, err)
		}
		if got := list(); !slices.Equal(got, want) {
			t.Errorf("subscriptions after going down:\n got %q\nwant %q", got, want)
		}
	})
}
