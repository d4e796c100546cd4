package push_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/push"
	"github.com/wschat/chat/internal/pushtest"
	"github.com/wschat/chat/internal/testserver"
)

// subscribe registers a new subscription of the push service for u over HTTP, as a browser
// does: the body is PushSubscription.toJSON(), expirationTime (null) included.
func subscribe(t *testing.T, s *testserver.Server, ps *pushtest.Server, u *testserver.User) *pushtest.Subscription {
	t.Helper()
	sub := ps.Subscribe()
	r := s.Call(t, "POST", "/api/v1/push/subscriptions", u.Token, map[string]any{
		"endpoint": sub.Endpoint, "expirationTime": nil, "keys": map[string]string{"p256dh": sub.P256dh, "auth": sub.Auth}}, nil)
	if r.Status != http.StatusNoContent {
		t.Fatalf("subscribe: %d %s", r.Status, r.Body)
	}
	return sub
}

func payloads(ps []pushtest.Push) []string {
	var out []string
	for _, p := range ps {
		out = append(out, string(p.Payload))
	}
	return out
}

func send(t *testing.T, s *testserver.Server, u *testserver.User, chatID int64, body string) chat.Message {
	t.Helper()
	m, _, err := s.Svc.Send(context.Background(), u.P(), chat.SendInput{ChatID: chatID, Body: body, ClientID: fmt.Sprint(time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestPush: who is pushed what, through a real push service that checks the VAPID
// signature and decrypts the payload. The cases that push run side by side, each on a server
// of its own whose worker it steps (newByHand); the rest share one.
func TestPush(t *testing.T) {
	t.Parallel()
	h := newByHand(t, "sqlite")
	s, ps := h.s, h.ps

	r := s.Call(t, "GET", "/api/v1/push/key", h.ben.Token, nil, nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), s.Push.PublicKey()) {
		t.Fatalf("push key: %d %s", r.Status, r.Body)
	}

	t.Run("a burst is one push", func(t *testing.T) {
		t.Parallel()
		h := newByHand(t, "sqlite")
		s, ann, ben, sub := h.s, h.ann, h.ben, h.sub
		g := s.Group(t, ann, "Team", false, ben)
		var last chat.Message
		for i := range 3 {
			last = send(t, s, ann, g, fmt.Sprintf("burst %d", i))
			h.step() // queued, or raised to this message, due a delay after the first
		}
		got := h.pushes(t, sub, 1)
		var p push.Payload
		if err := json.Unmarshal(got[0].Payload, &p); err != nil {
			t.Fatalf("payload %s: %v", got[0].Payload, err)
		}
		tag := fmt.Sprintf("chat-%d", g)
		if p.ChatID != g || p.Seq != last.Seq || p.Title != "Team" || p.Body != "Ann: burst 2" || p.Tag != tag {
			t.Errorf("payload %+v, want chat %d, seq %d, title Team, body \"Ann: burst 2\", tag %s", p, g, last.Seq, tag)
		}
		if got[0].Topic != tag || got[0].TTL <= 0 || got[0].Urgency != "normal" || got[0].Subject != "mailto:ops@chat.test" {
			t.Errorf("headers: topic %q, TTL %d, urgency %q, subject %q", got[0].Topic, got[0].TTL, got[0].Urgency, got[0].Subject)
		}
	})

	t.Run("read elsewhere, online, muted, none: nothing", func(t *testing.T) {
		t.Parallel()
		h := newByHand(t, "sqlite")
		s, ann, ben, sub := h.s, h.ann, h.ben, h.sub
		g := s.Group(t, ann, "Quiet", false, ben)
		m := send(t, s, ann, g, "read on the phone")
		h.step() // queued
		if _, err := s.Svc.MarkRead(context.Background(), ben.P(), g, m.Seq); err != nil {
			t.Fatal(err)
		}
		h.pushes(t, sub, 0)
		ws, _ := s.DialHello(t, ben)
		h.waitOnline(t, ben, true)
		send(t, s, ann, g, "seen live")
		h.pushes(t, sub, 0)
		ws.WS.CloseNow()
		h.waitOnline(t, ben, false)
		// Muted for a day: the worker's clock runs hours ahead (pass).
		s.Call(t, "PATCH", fmt.Sprintf("/api/v1/chats/%d/settings", g), ben.Token, map[string]any{"muted_until": time.Now().Add(24 * time.Hour).Format(time.RFC3339)}, nil)
		send(t, s, ann, g, "muted")
		h.pushes(t, sub, 0)
		s.Call(t, "PATCH", fmt.Sprintf("/api/v1/chats/%d/settings", g), ben.Token, map[string]any{"muted_until": nil, "notify": "none"}, nil)
		send(t, s, ann, g, "notify none")
		h.pushes(t, sub, 0)
		// And back to all: pushed again.
		s.Call(t, "PATCH", fmt.Sprintf("/api/v1/chats/%d/settings", g), ben.Token, map[string]any{"notify": "all"}, nil)
		send(t, s, ann, g, "loud again")
		h.pushes(t, sub, 1)
	})

	t.Run("strangers and ex-members: nothing", func(t *testing.T) {
		t.Parallel()
		h := newByHand(t, "sqlite")
		s, ps, ann := h.s, h.ps, h.ann
		eve, dan := s.NewUser(t, "Eve"), s.NewUser(t, "Dan")
		g := s.Group(t, ann, "Private", false, dan)
		eveSub, danSub := subscribe(t, s, ps, eve), subscribe(t, s, ps, dan)
		if err := s.Svc.Leave(context.Background(), dan.P(), g); err != nil {
			t.Fatal(err)
		}
		send(t, s, ann, g, "after dan left")
		h.pushes(t, eveSub, 0)
		h.pushes(t, danSub, 0)
	})

	t.Run("a gone subscription is deleted", func(t *testing.T) {
		t.Parallel()
		h := newByHand(t, "sqlite")
		s, ps, ann, ben, sub := h.s, h.ps, h.ann, h.ben, h.sub
		ps.Gone(sub)
		send(t, s, ann, h.chat, "anyone there?")
		h.pass()
		subs, err := s.Store.PushSubscriptions(context.Background(), ben.ID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(subs) != 0 {
			t.Fatalf("the gone subscription is still there: %+v", subs)
		}
		if r := s.Call(t, "DELETE", "/api/v1/push/subscriptions", ben.Token, map[string]string{"endpoint": sub.Endpoint}, nil); r.Status != http.StatusNotFound {
			t.Errorf("deleting it again: %d, want 404", r.Status)
		}
	})

	t.Run("a session signed out or revoked: nothing to its browser", func(t *testing.T) {
		t.Parallel()
		// Ben in three browsers. He signs out of the first; the second is signed out from the
		// third (the Devices list). Their browsers are told nothing more; the third still is.
		h := newByHand(t, "sqlite")
		s, ps, ann, ben := h.s, h.ps, h.ann, h.ben
		second, third := s.Login(t, ben), s.Login(t, ben)
		subs := []*pushtest.Subscription{h.sub, subscribe(t, s, ps, second), subscribe(t, s, ps, third)}
		if r := s.Call(t, "POST", "/api/v1/auth/logout", ben.Token, nil, nil); r.Status != http.StatusNoContent {
			t.Fatalf("logout: %d %s", r.Status, r.Body)
		}
		if r := s.Call(t, "DELETE", fmt.Sprintf("/api/v1/auth/sessions/%d", second.SessionID), third.Token, nil, nil); r.Status != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		send(t, s, ann, h.chat, "for the phone only")
		h.pushes(t, subs[2], 1)
		for i, sub := range subs[:2] {
			if got := ps.To(sub); len(got) != 0 {
				t.Errorf("browser %d, whose session ended, was pushed %v", i+1, payloads(got))
			}
		}
	})

	t.Run("another account's endpoint: refused, unless with its keys", func(t *testing.T) {
		t.Parallel()
		// Eve learns the endpoint of Ben's browser and posts it with keys of her own: it stays
		// Ben's (it moved to her, and Ben's DELETE answered 404). Ben's own browser, whose next
		// user signs in while Ben is still signed in, posts the same keys (in another spelling
		// here): it moves.
		ben, eve := s.NewUser(t, "Ben"), s.NewUser(t, "Eve")
		sub, own := subscribe(t, s, ps, ben), ps.Subscribe()
		post := func(u *testserver.User, p256dh, auth string) testserver.Reply {
			return s.Call(t, "POST", "/api/v1/push/subscriptions", u.Token, map[string]any{
				"endpoint": sub.Endpoint, "keys": map[string]string{"p256dh": p256dh, "auth": auth}}, nil)
		}
		if r := post(eve, own.P256dh, own.Auth); r.Status != http.StatusConflict || !strings.Contains(string(r.Body), chat.CodePushEndpointTaken) {
			t.Errorf("eve posting ben's endpoint: %d %s, want 409 %s", r.Status, r.Body, chat.CodePushEndpointTaken)
		}
		if r := s.Call(t, "DELETE", "/api/v1/push/subscriptions", ben.Token, map[string]string{"endpoint": sub.Endpoint}, nil); r.Status != http.StatusNoContent {
			t.Errorf("ben deleting his subscription: %d %s, want 204", r.Status, r.Body)
		}
		if r := post(ben, sub.P256dh, sub.Auth); r.Status != http.StatusNoContent {
			t.Fatalf("ben subscribing again: %d %s", r.Status, r.Body)
		}
		padded := func(k string) string {
			b, err := base64.RawURLEncoding.DecodeString(k)
			if err != nil {
				t.Fatal(err)
			}
			return base64.StdEncoding.EncodeToString(b)
		}
		if r := post(eve, padded(sub.P256dh), padded(sub.Auth)); r.Status != http.StatusNoContent {
			t.Errorf("eve on ben's browser, with its keys: %d %s, want 204", r.Status, r.Body)
		}
		if r := s.Call(t, "DELETE", "/api/v1/push/subscriptions", eve.Token, map[string]string{"endpoint": sub.Endpoint}, nil); r.Status != http.StatusNoContent {
			t.Errorf("eve deleting the subscription she took: %d %s, want 204", r.Status, r.Body)
		}
	})

	t.Run("bad subscriptions", func(t *testing.T) {
		t.Parallel()
		ben := s.NewUser(t, "Ben")
		// A server that sends to public push services only refuses local endpoints.
		strict, err := push.New(s.Store, s.Hub, push.Options{PrivateKey: testserver.PushKey})
		if err != nil {
			t.Fatal(err)
		}
		keys := ps.Subscribe()
		for _, ep := range []string{keys.Endpoint, "https://127.0.0.1/x", "https://10.1.2.3/x", "https://[::1]/x", "https://localhost/x",
			"https://169.254.169.254/latest", "http://push.example.com/x", "https://user@push.example.com/x"} {
			err := strict.Subscribe(context.Background(), ben.P(), chat.PushSubscription{Endpoint: ep, P256dh: keys.P256dh, Auth: keys.Auth})
			if chat.ErrorCode(err) != chat.CodeInvalid {
				t.Errorf("endpoint %s: got %v, want invalid", ep, err)
			}
		}
		if err := strict.Subscribe(context.Background(), ben.P(), chat.PushSubscription{Endpoint: "https://push.example.com/x", P256dh: keys.P256dh, Auth: keys.Auth}); err != nil {
			t.Errorf("a public https endpoint: %v", err)
		}
		good := ps.Subscribe()
		for _, c := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"endpoint": "ftp://x", "keys": map[string]string{"p256dh": good.P256dh, "auth": good.Auth}}, "body.endpoint"},
			{map[string]any{"endpoint": good.Endpoint, "keys": map[string]string{"p256dh": "AAAA", "auth": good.Auth}}, "body.keys.p256dh"},
			{map[string]any{"endpoint": good.Endpoint, "keys": map[string]string{"p256dh": good.P256dh, "auth": "AAAA"}}, "body.keys.auth"},
		} {
			r := s.Call(t, "POST", "/api/v1/push/subscriptions", ben.Token, c.body, nil)
			if r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), c.field) {
				t.Errorf("%v: got %d %s, want 422 naming %s", c.body, r.Status, r.Body, c.field)
			}
		}
	})
}

// TestPushOfAFileAlone: a message with a file and no text is pushed, reading "📎 name" as the
// chat list does: the job was dropped when the message's body was empty, so it never was. (Which
// message a burst's push tells of, when its newest was deleted, is TestPushContextTellsOfWhatIsLeft
// in internal/store.) A worker stepped by hand (newByHand), with files on.
func TestPushOfAFileAlone(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			h := newByHand(t, db, withFiles)
			s, ann, ben, sub := h.s, h.ann, h.ben, h.sub
			g := s.Group(t, ann, "Photos", false, ben)
			ctx := context.Background()
			f, err := s.Files.Upload(ctx, ann.P(), g, chat.UploadInput{Name: "beach.txt", Body: strings.NewReader("some bytes")})
			if err != nil {
				t.Fatal(err)
			}
			m, _, err := s.Svc.Send(ctx, ann.P(), chat.SendInput{ChatID: g, ClientID: "file", FileIDs: []int64{f.ID}})
			if err != nil {
				t.Fatal(err)
			}
			got := h.pushes(t, sub, 1)
			var p push.Payload
			if err := json.Unmarshal(got[0].Payload, &p); err != nil {
				t.Fatalf("payload %s: %v", got[0].Payload, err)
			}
			if p.Seq != m.Seq || p.Body != "Ann: 📎 beach.txt" {
				t.Errorf("payload %+v, want seq %d, body \"Ann: 📎 beach.txt\"", p, m.Seq)
			}
		})
	}
}
