package store_test

import (
	"context"
	"errors"
	"fmt"
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
