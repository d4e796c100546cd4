package main

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/wschat/chat/internal/client"
	"github.com/wschat/chat/internal/testdb"
)

// TestReadLimitSparesWebSocket: CHAT_LIMIT_READS_USER reaches the REST reads, and a user who
// spent their read budget still gets their hello and their sync: the WebSocket endpoint's own
// reads are not counted.
func TestReadLimitSparesWebSocket(t *testing.T) {
	t.Parallel()
	inst := start(t, map[string]string{"CHAT_RATE_LIMITS": "on", "CHAT_LIMIT_READS_USER": "3/1h"})
	first := signIn(t, inst, "first@example.com")
	for i := range 3 {
		if err := first.Do(reqCtx(t), http.MethodGet, "/api/v1/chats", nil, nil); err != nil {
			t.Fatalf("read %d: %v", i+1, err)
		}
	}
	var ce *client.Error
	if err := first.Do(reqCtx(t), http.MethodGet, "/api/v1/chats/1/messages", nil, nil); !errors.As(err, &ce) || ce.Status != http.StatusTooManyRequests || ce.Code != "rate_limited" {
		t.Fatalf("4th read: %v, want 429 rate_limited", err)
	}

	for round := range 2 { // a reconnect too
		dev := connect(t, first)
		if len(dev.hello.Chats) != 3 {
			t.Fatalf("round %d: hello lists %d chats, want the demo's 3", round, len(dev.hello.Chats))
		}
		dev.send("sync", "s", map[string]any{"cursors": map[string]int64{"1": 0, "2": 0, "3": 0}})
		n := 0
		for dev.await2("message.new", "sync.done").Type == "message.new" {
			n++
		}
		if n != 10 { // the demo's 3 + 4 + 3 messages
			t.Errorf("round %d: sync sent %d messages, want 10", round, n)
		}
		dev.conn.Close()
	}
}

// TestUserChatLimitSetting: CHAT_LIMIT_USER_CHATS reaches the store, which refuses, and the
// service, which says why: the demo's First belongs to 3 chats.
func TestUserChatLimitSetting(t *testing.T) {
	t.Parallel()
	inst := start(t, map[string]string{"CHAT_LIMIT_USER_CHATS": "3"})
	var ce *client.Error
	err := signIn(t, inst, "first@example.com").Do(reqCtx(t), http.MethodPost, "/api/v1/chats", map[string]any{"kind": "group", "title": "Fourth"}, nil)
	if !errors.As(err, &ce) || ce.Status != http.StatusForbidden || ce.Code != "forbidden" || !strings.Contains(ce.Detail, "3 chats") {
		t.Errorf("First creates a 4th chat: %v, want 403 forbidden naming 3 chats", err)
	}
	if err := signIn(t, inst, "second@example.com").Do(reqCtx(t), http.MethodPost, "/api/v1/chats", map[string]any{"kind": "group", "title": "Third"}, nil); err != nil {
		explainTimeout(t, err)
		t.Errorf("Second creates a 3rd chat: %v", err)
	}
}

// TestLimitsHoldAcrossInstances: with Redis configured, two instances share their rate
// limits: wrong logins of one email spread over both are checked CHAT_LIMIT_LOGIN_EMAIL
// times in all, not that many on each. The limiters may wait 10 s for Redis: with the default
// 250 ms a busy machine's slow answer counted as an outage, whose fallback is the instance's
// own count (a fourth login was checked), which is not what this test is about.
func TestLimitsHoldAcrossInstances(t *testing.T) {
	t.Parallel()
	addr, prefix := testdb.Redis(t)
	env := map[string]string{
		"CHAT_DATABASE_URL": testdb.Postgres(t), "CHAT_REDIS_URL": "redis://" + addr + "/0", "CHAT_REDIS_PREFIX": prefix,
		"CHAT_JWT_SECRET": "a-test-secret-that-is-long-enough-for-hs256", "CHAT_RATE_LIMITS": "on", "CHAT_LIMIT_LOGIN_EMAIL": "3/1h",
		"CHAT_REDIS_LIMIT_TIMEOUT": "10s",
	}
	insts := []*instance{start(t, env), start(t, env)}
	statuses := map[int]int{}
	for i := range 8 {
		err := newClient(insts[i%2].URL).Login(reqCtx(t), "second@example.com", "wrong guess")
		var ce *client.Error
		if !errors.As(err, &ce) {
			explainTimeout(t, err)
			t.Fatalf("wrong login %d: %v", i+1, err)
		}
		statuses[ce.Status]++
	}
	if statuses[http.StatusUnauthorized] != 3 || statuses[http.StatusTooManyRequests] != 5 {
		t.Errorf("8 wrong logins over two instances: %v; want 3 checked (401) and 5 refused (429)", statuses)
	}
}

// TestReadMarkLimitOverWebSocket: CHAT_LIMIT_READ_MARKS_USER reaches the WebSocket read frame,
// which answers an error frame rate_limited beyond it, and the HTTP read, which answers 429.
func TestReadMarkLimitOverWebSocket(t *testing.T) {
	t.Parallel()
	inst := start(t, map[string]string{"CHAT_RATE_LIMITS": "on", "CHAT_LIMIT_READ_MARKS_USER": "2/1h"})
	first := signIn(t, inst, "first@example.com")
	dev := connect(t, first)
	for _, ref := range []string{"r1", "r2", "r3"} {
		dev.send("read", ref, map[string]int64{"chat_id": general, "seq": 1})
	}
	f := dev.await("error")
	e := decode[struct{ Code string }](t, f.Data)
	if string(f.Ref) != `"r3"` || e.Code != "rate_limited" {
		t.Errorf("the third read frame: %s %s, want error rate_limited with ref r3", f.Ref, f.Data)
	}
	var ce *client.Error
	if err := first.Do(reqCtx(t), http.MethodPost, "/api/v1/chats/2/read", map[string]int64{"seq": 1}, nil); !errors.As(err, &ce) || ce.Status != http.StatusTooManyRequests {
		t.Errorf("an HTTP mark after the WebSocket's: %v, want 429", err)
	}
}
