package push_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestEndpointSpellings: a browser's endpoint posted again in other spellings of the same URL
// (scheme and host case, a trailing dot, a port with a leading zero, percent-encoding, a
// fragment) stays one subscription, pushed once, and any spelling unsubscribes it. Each
// spelling was a subscription of its own, and a message was pushed to the browser once per
// spelling.
func TestEndpointSpellings(t *testing.T) {
	t.Parallel()
	h := newByHand(t, "sqlite")
	s, ben, sub := h.s, h.ben, h.sub
	scheme, rest, _ := strings.Cut(sub.Endpoint, "://") // http, 127.0.0.1:port/push/1
	host, path, _ := strings.Cut(rest, "/")
	ip, port, _ := strings.Cut(host, ":")
	spellings := []string{
		strings.ToUpper(scheme) + "://" + ip + ".:" + port + "/" + path,
		scheme + "://" + ip + ":0" + port + "/" + strings.Replace(path, "push", "%70ush", 1),
		sub.Endpoint + "#again",
	}
	for _, ep := range spellings {
		r := s.Call(t, "POST", "/api/v1/push/subscriptions", ben.Token, map[string]any{
			"endpoint": ep, "keys": map[string]string{"p256dh": sub.P256dh, "auth": sub.Auth}}, nil)
		if r.Status != http.StatusNoContent {
			t.Fatalf("subscribe %s: %d %s", ep, r.Status, r.Body)
		}
	}
	subs, err := s.Store.PushSubscriptions(context.Background(), ben.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 1 || subs[0].Endpoint != sub.Endpoint {
		t.Errorf("Ben's subscriptions: %+v, want one, of %s", subs, sub.Endpoint)
	}
	// Another account cannot take it, or subscribe beside it, by spelling it otherwise.
	other := h.ps.Subscribe() // for its keys
	eve := s.NewUser(t, "Eve")
	r := s.Call(t, "POST", "/api/v1/push/subscriptions", eve.Token, map[string]any{
		"endpoint": spellings[1], "keys": map[string]string{"p256dh": other.P256dh, "auth": other.Auth}}, nil)
	if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "push_endpoint_taken") {
		t.Errorf("Eve posts %s with keys of her own: %d %s, want 409 push_endpoint_taken", spellings[1], r.Status, r.Body)
	}
	send(t, s, h.ann, h.chat, "once")
	h.pushes(t, sub, 1)

	r = s.Call(t, "DELETE", "/api/v1/push/subscriptions", ben.Token, map[string]any{"endpoint": spellings[0]}, nil)
	if r.Status != http.StatusNoContent {
		t.Fatalf("unsubscribe %s: %d %s", spellings[0], r.Status, r.Body)
	}
	if subs, _ := s.Store.PushSubscriptions(context.Background(), ben.ID, time.Now()); len(subs) != 0 {
		t.Errorf("Ben's subscriptions after unsubscribing: %+v, want none", subs)
	}
}
