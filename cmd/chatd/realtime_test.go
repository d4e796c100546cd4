package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wschat/chat/internal/client"
	"github.com/wschat/chat/internal/testdb"
)

// topology is where users connect: one embedded instance, or two instances sharing
// PostgreSQL and Redis (a and b differ).
type topology struct {
	a, b *instance
}

func topologies(t *testing.T) map[string]func(t *testing.T) topology {
	return map[string]func(t *testing.T) topology{
		"embedded": func(t *testing.T) topology {
			i := start(t, nil)
			return topology{i, i}
		},
		"cluster": func(t *testing.T) topology {
			addr, prefix := testdb.Redis(t)
			env := map[string]string{
				"CHAT_DATABASE_URL": testdb.Postgres(t),
				"CHAT_REDIS_URL":    "redis://" + addr + "/0",
				"CHAT_REDIS_PREFIX": prefix,
				"CHAT_JWT_SECRET":   "a-test-secret-that-is-long-enough-for-hs256",
			}
			a := start(t, env)
			return topology{a, start(t, env)}
		},
	}
}

func eachTopology(t *testing.T, fn func(t *testing.T, tp topology)) {
	t.Parallel()
	for name, mk := range topologies(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, mk(t))
		})
	}
}

const privateChat, general, random = 1, 2, 3

func TestMessagingAcrossDevicesAndInstances(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		first := signIn(t, tp.a, "first@example.com")
		firstA := connect(t, first)
		firstB := connect(t, signIn(t, tp.b, "first@example.com")) // another device, other instance
		second := connect(t, signIn(t, tp.b, "second@example.com"))

		if got, want := len(firstA.hello.Chats), 3; got != want {
			t.Fatalf("hello lists %d chats, want %d", got, want)
		}
		firstA.send("message.send", "r1", map[string]any{"chat_id": privateChat, "client_id": "c1", "body": "hello over ws"})
		ack := firstA.await("message.ack")
		if string(ack.Ref) != `"r1"` {
			t.Errorf("ack ref = %s, want \"r1\"", ack.Ref)
		}
		sent := messageOf(t, ack)
		if sent.Seq != 4 || sent.Body != "hello over ws" {
			t.Fatalf("acked %+v, want seq 4", sent)
		}
		for name, d := range map[string]*device{"second": second, "first's other device": firstB} {
			if got := messageOf(t, d.await("message.new")); got.Seq != sent.Seq || got.ID != sent.ID {
				t.Errorf("%s got %+v, want the sent message", name, got)
			}
		}
		firstA.quiet("message.new", 300*time.Millisecond) // the sender got the ack instead

		// Reading: the reader's devices learn their unread count, everyone the read mark.
		second.send("read", "", map[string]any{"chat_id": privateChat, "seq": sent.Seq})
		ru := decode[struct {
			ChatID, UserID, LastReadSeq, UnreadCount int64
		}](t, second.await("read.updated").Data)
		_ = ru
		ra := decode[map[string]int64](t, firstB.await("chat.read_all").Data)
		if ra["read_all_seq"] != sent.Seq || ra["chat_id"] != privateChat {
			t.Errorf("chat.read_all = %v, want read_all_seq %d", ra, sent.Seq)
		}
		decode[map[string]int64](t, firstA.await("chat.read_all").Data)

		// Typing reaches the other members, not the typist's own devices.
		second.send("typing", "", map[string]any{"chat_id": privateChat})
		ty := decode[map[string]int64](t, firstB.await("typing").Data)
		if ty["user_id"] != second.hello.User.ID {
			t.Errorf("typing from %d, want %d", ty["user_id"], second.hello.User.ID)
		}

		// A message sent over HTTP reaches every device of the sender.
		ctx := context.Background()
		var m message
		if err := first.Do(ctx, http.MethodPost, "/api/v1/chats/1/messages", map[string]string{"body": "over http", "client_id": "h1"}, &m); err != nil {
			t.Fatal(err)
		}
		for _, d := range []*device{firstA, firstB, second} {
			if got := messageOf(t, d.await("message.new")); got.ID != m.ID {
				t.Errorf("got %+v, want message %d", got, m.ID)
			}
		}
		// A retried send with the same client_id is acknowledged with the same message.
		firstA.send("message.send", "r2", map[string]any{"chat_id": privateChat, "client_id": "c1", "body": "hello over ws"})
		if again := messageOf(t, firstA.await("message.ack")); again.ID != sent.ID {
			t.Errorf("retry acked %+v, want message %d", again, sent.ID)
		}
		second.quiet("message.new", 300*time.Millisecond)
	})
}

func TestMembershipChangesAreLive(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		ctx := context.Background()
		first := signIn(t, tp.a, "first@example.com")
		firstDev := connect(t, first)
		third := signIn(t, tp.b, "third@example.com")
		thirdDev := connect(t, third)

		var g struct{ ID int64 }
		if err := first.Do(ctx, http.MethodPost, "/api/v1/chats", map[string]any{"kind": "group", "title": "Live", "public": true}, &g); err != nil {
			t.Fatal(err)
		}
		firstDev.awaitWhere("chat.added", func(d json.RawMessage) bool { return strings.Contains(string(d), `"title":"Live"`) })

		// Third joins: third's devices get the chat, first sees the join and its system message.
		if err := third.Do(ctx, http.MethodPost, "/api/v1/chats/"+itoa(g.ID)+"/join", nil, nil); err != nil {
			t.Fatal(err)
		}
		thirdDev.await("chat.added")
		// The join's system message comes first, member.joined right after it.
		if m := messageOf(t, firstDev.await("message.new")); m.Kind != "system" {
			t.Errorf("want the join's system message, got %+v", m)
		}
		joined := decode[struct {
			ChatID int64 `json:"chat_id"`
			User   struct{ ID int64 }
		}](t, firstDev.await("member.joined").Data)
		if joined.ChatID != g.ID || joined.User.ID != thirdDev.hello.User.ID {
			t.Errorf("member.joined = %+v", joined)
		}
		// Now third receives the group's messages live.
		firstDev.send("message.send", "", map[string]any{"chat_id": g.ID, "client_id": "m1", "body": "welcome"})
		if m := messageOf(t, thirdDev.awaitWhere("message.new", func(d json.RawMessage) bool { return strings.Contains(string(d), "welcome") })); m.ChatID != g.ID {
			t.Errorf("third got %+v", m)
		}
		// Third leaves: gone for them, announced to the others.
		if err := third.Do(ctx, http.MethodPost, "/api/v1/chats/"+itoa(g.ID)+"/leave", nil, nil); err != nil {
			t.Fatal(err)
		}
		thirdDev.await("chat.removed")
		firstDev.await("member.left")
		firstDev.send("message.send", "", map[string]any{"chat_id": g.ID, "client_id": "m2", "body": "after leaving"})
		firstDev.await("message.ack")
		thirdDev.quiet("message.new", 500*time.Millisecond)
	})
}

func TestLogoutClosesTheSessionsSocket(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		second := signIn(t, tp.a, "second@example.com")
		dev := connect(t, signIn(t, tp.b, "second@example.com")) // another session on the other instance
		keep := connect(t, second)
		ctx := context.Background()
		// Revoke the other session from this one: its socket closes with 4001, this one stays.
		if err := second.Do(ctx, http.MethodDelete, "/api/v1/auth/sessions/"+itoa(dev.hello.SessionID), nil, nil); err != nil {
			t.Fatal(err)
		}
		if got := dev.conn.CloseStatus(); got != 4001 {
			t.Errorf("close status = %d, want 4001", got)
		}
		keep.send("ping", "p", nil)
		keep.await("pong")
		if err := second.Do(ctx, http.MethodPost, "/api/v1/auth/logout", nil, nil); err != nil {
			t.Fatal(err)
		}
		if got := keep.conn.CloseStatus(); got != 4001 {
			t.Errorf("after logout: close status = %d, want 4001", got)
		}
	})
}

func TestPresence(t *testing.T) {
	eachTopology(t, func(t *testing.T, tp topology) {
		first := connect(t, signIn(t, tp.a, "first@example.com"))
		third := connect(t, signIn(t, tp.b, "third@example.com"))
		tid := third.hello.User.ID
		first.awaitWhere("presence", func(d json.RawMessage) bool {
			p := decode[struct {
				UserID int64 `json:"user_id"`
				Online bool
			}](t, d)
			return p.UserID == tid && p.Online
		})
		var u struct{ Online bool }
		if err := first.c.Do(context.Background(), http.MethodGet, "/api/v1/users/"+itoa(tid), nil, &u); err != nil || !u.Online {
			t.Errorf("GET /users/%d online = %v, %v; want true", tid, u.Online, err)
		}
		third.conn.Close()
		first.awaitWhere("presence", func(d json.RawMessage) bool {
			p := decode[struct {
				UserID int64 `json:"user_id"`
				Online bool
			}](t, d)
			return p.UserID == tid && !p.Online
		})
	})
}

func TestSyncAfterReconnect(t *testing.T) {
	t.Parallel()
	tp := start(t, nil)
	ctx := context.Background()
	second := signIn(t, tp, "second@example.com")
	first := signIn(t, tp, "first@example.com")
	dev := connect(t, first)
	last := dev.hello.Chats
	cursor := map[string]int64{}
	for _, c := range last {
		cursor[itoa(c.ID)] = c.LastSeq
	}
	dev.conn.Close()

	var want []int64
	for i := range 3 {
		var m message
		if err := second.Do(ctx, http.MethodPost, "/api/v1/chats/1/messages", map[string]string{"body": "missed", "client_id": "s" + itoa(int64(i))}, &m); err != nil {
			t.Fatal(err)
		}
		want = append(want, m.Seq)
	}
	dev = connect(t, first)
	dev.send("sync", "s1", map[string]any{"cursors": cursor})
	var got []int64
	for {
		f := dev.await2("message.new", "sync.done")
		if f.Type == "sync.done" {
			if string(f.Ref) != `"s1"` {
				t.Errorf("sync.done ref = %s", f.Ref)
			}
			break
		}
		got = append(got, messageOf(t, f).Seq)
	}
	if !equal(got, want) {
		t.Errorf("sync sent seqs %v, want %v", got, want)
	}

	// More than the limit missing: the first 500, then sync.truncated where the rest starts.
	// Sent 16 at a time: one after another, each waits for its own commit, and on a busy
	// machine 505 commits took minutes.
	var wg sync.WaitGroup
	errs := make(chan error, 505)
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				errs <- second.Do(ctx, http.MethodPost, "/api/v1/chats/2/messages", map[string]string{"body": "bulk", "client_id": "b" + itoa(int64(i))}, nil)
			}
		})
	}
	for i := range 505 {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	dev2 := connect(t, first)
	dev2.send("sync", "s2", map[string]any{"cursors": map[string]int64{"2": 4}})
	n := 0
	for {
		f := dev2.await2("message.new", "sync.truncated")
		if f.Type == "sync.truncated" {
			tr := decode[map[string]int64](t, f.Data)
			if tr["chat_id"] != 2 || tr["from_seq"] != 505 {
				t.Errorf("sync.truncated = %v, want chat 2 from_seq 505", tr)
			}
			break
		}
		if m := messageOf(t, f); m.Seq != int64(5+n) {
			t.Fatalf("message %d has seq %d, want %d", n, m.Seq, 5+n)
		}
		n++
	}
	if n != 500 {
		t.Errorf("sync sent %d messages before truncating, want 500", n)
	}
	dev2.await("sync.done")
}

func TestBadFrames(t *testing.T) {
	t.Parallel()
	tp := start(t, nil)
	third := connect(t, signIn(t, tp, "third@example.com"))
	ctx := context.Background()
	for _, tc := range []struct {
		name, frame, code string
	}{
		{"not json", `{"type":`, "invalid"},
		{"unknown type", `{"type":"launch","ref":1}`, "unknown_type"},
		{"wrong data types", `{"type":"message.send","data":{"chat_id":"one","body":5}}`, "invalid"},
		{"missing data", `{"type":"read"}`, "invalid"},
		{"empty body", `{"type":"message.send","data":{"chat_id":2,"client_id":"x","body":""}}`, "invalid"},
		{"private chat of others", `{"type":"message.send","data":{"chat_id":1,"client_id":"x","body":"hi"}}`, "not_found"},
		{"read a chat of others", `{"type":"read","data":{"chat_id":1,"seq":3}}`, "not_found"},
		{"type in a chat of others", `{"type":"typing","data":{"chat_id":1}}`, "not_found"},
		{"sync a chat of others", `{"type":"sync","data":{"cursors":{"1":0}}}`, "not_found"},
		{"bad cursor key", `{"type":"sync","data":{"cursors":{"x":0}}}`, "invalid"},
		{"negative read", `{"type":"read","data":{"chat_id":2,"seq":-1}}`, "invalid"},
		{"object ref", `{"type":"ping","ref":{"a":1}}`, "invalid"},
	} {
		if err := third.conn.SendRaw(ctx, []byte(tc.frame)); err != nil {
			t.Fatal(err)
		}
		e := decode[map[string]string](t, third.await("error").Data)
		if e["code"] != tc.code {
			t.Errorf("%s: error code %q (%s), want %q", tc.name, e["code"], e["message"], tc.code)
		}
	}
	if err := third.conn.SendRaw(ctx, []byte("{\"type\":\"ping\",\"ref\":\"\xff\"}")); err == nil {
		third.await("error")
	}
	third.send("ping", "still-open", nil)
	third.await("pong")

	// A frame over 64 KiB closes the connection with 1009; the instance keeps serving.
	big := `{"type":"ping","ref":"` + strings.Repeat("x", 70_000) + `"}`
	third.conn.SendRaw(ctx, []byte(big))
	if got := third.conn.CloseStatus(); got != websocket.StatusMessageTooBig {
		t.Errorf("close status after a huge frame = %d, want 1009", got)
	}
	again := connect(t, signIn(t, tp, "third@example.com"))
	again.send("ping", "", nil)
	again.await("pong")
}

func TestHandshakeRefusals(t *testing.T) {
	t.Parallel()
	tp := start(t, nil)
	ctx := context.Background()
	c := newClient(tp.URL)
	if _, err := c.Dial(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("dial without credentials: %v, want 401", err)
	}
	first := signIn(t, tp, "first@example.com")
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(tp.URL, "http")+"/api/v1/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Cookie": []string{"access_token=" + first.Token()}, "Origin": []string{"https://evil.example"}},
	})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site handshake: %v (%v), want 403", err, resp)
	}
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(tp.URL, "http")+"/api/v1/ws?access_token="+first.Token(), nil)
	if err != nil {
		t.Fatalf("dial with ?access_token: %v", err)
	}
	ws.Close(websocket.StatusNormalClosure, "")
}

func TestGracefulShutdownSays1012(t *testing.T) {
	t.Parallel()
	tp := start(t, nil)
	dev := connect(t, signIn(t, tp, "first@example.com"))
	tp.stop()
	if got := dev.conn.CloseStatus(); got != websocket.StatusServiceRestart {
		t.Errorf("close status = %d, want 1012", got)
	}
}

// await2 returns the next frame of either type.
func (d *device) await2(a, b string) client.Frame {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventWait)
	defer cancel()
	for {
		f, err := d.conn.Next(ctx)
		if err != nil {
			d.t.Fatalf("waiting for %s or %s: %v", a, b, err)
		}
		if f.Type == a || f.Type == b {
			return f
		}
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func itoa(v int64) string { return strconvI(v) }

func TestMetrics(t *testing.T) {
	t.Parallel()
	tp := start(t, nil)
	first := connect(t, signIn(t, tp, "first@example.com"))
	second := connect(t, signIn(t, tp, "second@example.com"))
	first.send("message.send", "", map[string]any{"chat_id": privateChat, "client_id": "m", "body": "counted"})
	first.await("message.ack")
	second.await("message.new")
	resp, err := http.Get(tp.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	for _, want := range []string{
		`chat_ws_connections{instance_id="` + tp.ID + `"} 2`,
		`chat_deliveries_total{instance_id=`,
		`chat_ws_frames_in_total{instance_id="` + tp.ID + `",type="message.send"} 1`,
		`route="POST /api/v1/auth/login"`,
		`chat_store_query_duration_seconds_count{instance_id=`,
		`chat_store_send_batch_duration_seconds_count{instance_id="` + tp.ID + `",outcome="ok"} 1`,
		`chat_store_send_batch_sends_sum{instance_id="` + tp.ID + `"} 1`,
		`chat_delivery_lag_seconds_bucket`,
		// One instance publishes in order: nothing is held.
		`chat_reorder_hold_seconds_count{instance_id="` + tp.ID + `"} 0`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, `chat_deliveries_total{instance_id="`+tp.ID+`"} 0`) {
		t.Error("no delivery counted")
	}
}
