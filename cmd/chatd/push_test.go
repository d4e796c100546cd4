package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/wschat/chat/internal/client"
	"github.com/wschat/chat/internal/push"
	"github.com/wschat/chat/internal/pushtest"
	"github.com/wschat/chat/internal/testdb"
)

// TestPushAcrossInstances: Web Push on two instances sharing PostgreSQL and Redis. A member
// with no socket gets exactly one push per burst of a chat, whichever instance the messages
// came through; reading it afterwards withdraws it with exactly one withdrawal; reading on
// another device before the delay, a live socket on either instance, and muting all send
// nothing; a job queued by an instance that stopped, and one held by an instance that
// crashed while sending it, are sent by another instance.
func TestPushAcrossInstances(t *testing.T) {
	t.Parallel()
	const delay = 2 * time.Second
	ps := pushtest.Start(t)
	addr, prefix := testdb.Redis(t)
	dbURL := testdb.Postgres(t)
	env := map[string]string{
		"CHAT_DATABASE_URL":       dbURL,
		"CHAT_REDIS_URL":          "redis://" + addr + "/0",
		"CHAT_REDIS_PREFIX":       prefix,
		"CHAT_JWT_SECRET":         "a-test-secret-that-is-long-enough-for-hs256",
		"CHAT_VAPID_PRIVATE_KEY":  "7VVMtOmsDAPGB4hzfD0gOH2nN3YyKdaPEUmoZcuw0hE",
		"CHAT_PUSH_DELAY":         delay.String(),
		"CHAT_PUSH_LEASE":         "1m",   // the crash below sets its own lease; a short one here lets a slow send lose its claim
		"CHAT_PUSH_ALLOW_PRIVATE": "true", // the test's push service is on 127.0.0.1
	}
	a, b := start(t, env), start(t, env)
	first, second := signIn(t, a, "first@example.com"), signIn(t, b, "second@example.com")
	ctx := context.Background()

	var key struct {
		PublicKey string `json:"public_key"`
	}
	if err := second.Do(ctx, "GET", "/api/v1/push/key", nil, &key); err != nil {
		t.Fatal(err)
	}
	ps.VAPIDKey = key.PublicKey
	sub := ps.Subscribe()
	if err := second.Do(ctx, "POST", "/api/v1/push/subscriptions", map[string]any{
		"endpoint": sub.Endpoint, "keys": map[string]string{"p256dh": sub.P256dh, "auth": sub.Auth}}, nil); err != nil {
		t.Fatal(err)
	}
	n := 0
	say := func(c *client.Client, body string) message {
		t.Helper()
		n++
		var m message
		if err := c.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/chats/%d/messages", privateChat), map[string]string{"body": body, "client_id": fmt.Sprint("p", n)}, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	// expect waits for the push service to hold want pushes in all, then a few delays more to
	// see that no more come.
	expect := func(want int) []pushtest.Push {
		t.Helper()
		deadline := time.Now().Add(requestWait)
		for len(ps.To(sub)) < want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(2 * delay)
		got := ps.To(sub)
		if len(got) != want {
			var bodies []string
			for _, p := range got {
				bodies = append(bodies, string(p.Payload))
			}
			t.Fatalf("got %d pushes in all, want %d: %v", len(got), want, bodies)
		}
		return got
	}
	payload := func(p pushtest.Push) push.Payload {
		t.Helper()
		var v push.Payload
		if err := json.Unmarshal(p.Payload, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}

	// A burst through both instances: one push. first's other device, on the other instance,
	// signs in before the burst: the two messages must be sent within the delay of each other,
	// and a sign-in between them took longer than that on a busy machine.
	firstB := signIn(t, b, "first@example.com")
	say(first, "one")
	last := say(firstB, "two")
	if p := payload(expect(1)[0]); p.ChatID != privateChat || p.Seq != last.Seq || p.Body != "two" {
		t.Errorf("push %+v, want chat %d at seq %d saying two", p, privateChat, last.Seq)
	}
	// Read afterwards, on both instances: one withdrawal.
	for _, c := range []*client.Client{second, signIn(t, a, "second@example.com")} {
		if err := c.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/chats/%d/read", privateChat), map[string]int64{"seq": last.Seq}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if p := payload(expect(2)[1]); p.Type != "withdraw" || p.ChatID != privateChat || p.Seq != last.Seq || p.Tag != fmt.Sprintf("chat-%d", privateChat) {
		t.Errorf("withdrawal %+v, want chat %d read up to %d", p, privateChat, last.Seq)
	}

	// Read on another device before the delay: nothing.
	m := say(first, "read me on the phone")
	if err := second.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/chats/%d/read", privateChat), map[string]int64{"seq": m.Seq}, nil); err != nil {
		t.Fatal(err)
	}
	// A live socket on either instance: nothing. The socket stays until the message's job is
	// decided: a busy machine ran it seconds late, after the socket had closed and the grace
	// before "offline" had passed, and the push that went out then was right.
	db := testdb.OpenSQL(t, dbURL)
	// until waits for query (a boolean of the push tables) to say true.
	until := func(what, query string, args ...any) {
		t.Helper()
		deadline := time.Now().Add(requestWait)
		for {
			var ok bool
			if err := db.QueryRow(query, args...).Scan(&ok); err != nil {
				t.Fatal(err)
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal(what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	decided := func(m message) {
		t.Helper()
		until(fmt.Sprintf("the push job of seq %d was never decided", m.Seq), `SELECT (SELECT scanned_to FROM push_state WHERE id = 1) >= $1
			AND NOT EXISTS (SELECT 1 FROM push_jobs WHERE chat_id = $2 AND seq = $3)`, m.ID, privateChat, m.Seq)
	}
	for _, inst := range []*instance{a, b} {
		d := connect(t, signIn(t, inst, "second@example.com"))
		decided(say(first, "seen live"))
		d.conn.Close()
	}
	// Muted: nothing.
	if err := second.Do(ctx, http.MethodPatch, fmt.Sprintf("/api/v1/chats/%d/settings", privateChat), map[string]any{"muted_until": time.Now().Add(time.Hour).Format(time.RFC3339)}, nil); err != nil {
		t.Fatal(err)
	}
	say(first, "muted")
	expect(2)
	if err := second.Do(ctx, http.MethodPatch, fmt.Sprintf("/api/v1/chats/%d/settings", privateChat), map[string]any{"muted_until": nil}, nil); err != nil {
		t.Fatal(err)
	}

	// An instance stops with a job queued, another crashes holding it: a third sends it. The
	// job is queued through an instance whose delay is an hour, so that no instance can send
	// it before the test says it is held (with a and its 2 s delay, a slow stop sent it first).
	b.stop()
	a.stop()
	patient := maps.Clone(env)
	patient["CHAT_PUSH_DELAY"] = "1h"
	c := start(t, patient)
	queued := say(signIn(t, c, "first@example.com"), "queued")
	until("the message was never queued", `SELECT count(*) = 1 FROM push_jobs WHERE chat_id = $1 AND seq = $2`, privateChat, queued.Seq)
	c.stop()
	// As if an instance had claimed it and died while sending: its lease holds the job a while.
	if _, err := db.Exec(`UPDATE push_jobs SET claimed_by = 'crashed', lease_until = $1, due_at = 0 WHERE chat_id = $2`,
		time.Now().Add(2*time.Second).UnixMilli(), privateChat); err != nil {
		t.Fatal(err)
	}
	if got := len(ps.To(sub)); got != 2 {
		t.Fatalf("pushes before the third instance: %d, want 2", got)
	}
	start(t, env)
	if p := payload(expect(3)[2]); p.Seq != queued.Seq || p.Body != "queued" {
		t.Errorf("the queued push: %+v, want seq %d", p, queued.Seq)
	}
}
