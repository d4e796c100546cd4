package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/httpapi"
	"github.com/wschat/chat/internal/hub"
	"github.com/wschat/chat/internal/limit"
)

// The abuse limits of docs/SECURITY.md, each at its boundary: what the limit allows passes,
// one more is refused. Small configured values keep the tests fast and exact; the defaults
// are checked in internal/config.

func rate(burst int) limit.Rate { return limit.Rate{Burst: burst, Per: time.Hour} }

// from makes a request come from a client address (the harness trusts loopback as a proxy).
func from(addr string) http.Header { return http.Header{"X-Forwarded-For": {addr}} }

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}

func wantLimited(t *testing.T, r reply) {
	t.Helper()
	if r.Status != http.StatusTooManyRequests || r.Code() != chat.CodeRateLimited {
		t.Fatalf("got %d %s, want 429 rate_limited", r.Status, r.Body)
	}
	if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("Retry-After %q, want whole seconds", r.Header.Get("Retry-After"))
	}
}

func TestLoginLimits(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{HTTP: httpapi.Options{TrustedProxies: loopback}, Chat: chat.Options{RateLimits: true,
		Limits: chat.Limits{LoginPerAddr: rate(5), LoginFailsPerEmail: rate(3)}}})
	ann := s.NewUser(t, "Ann")
	login := func(email, password, addr string) reply {
		return s.Call(t, "POST", "/api/v1/auth/login", "", map[string]string{"email": email, "password": password}, from(addr))
	}
	t.Run("per address", func(t *testing.T) {
		for i := range 5 {
			if r := login(fmt.Sprintf("nobody%d@test.example", i), "wrong password", "10.0.0.1"); r.Status != http.StatusUnauthorized {
				t.Fatalf("attempt %d: %d %s", i+1, r.Status, r.Body)
			}
		}
		wantLimited(t, login("nobody9@test.example", "wrong password", "10.0.0.1"))
		wantLimited(t, login(ann.Email, ann.Password, "10.0.0.1")) // even the right password
		if r := login(ann.Email, ann.Password, "10.0.0.2"); r.Status != http.StatusOK {
			t.Errorf("another address: %d %s", r.Status, r.Body)
		}
	})
	t.Run("failures per email", func(t *testing.T) {
		for i := range 3 {
			if r := login(strings.ToUpper(ann.Email), "guess", fmt.Sprintf("10.0.1.%d", i)); r.Status != http.StatusUnauthorized {
				t.Fatalf("attempt %d: %d %s", i+1, r.Status, r.Body)
			}
		}
		wantLimited(t, login(ann.Email, ann.Password, "10.0.1.9"))
		if r := login(s.NewUser(t, "Bea").Email, "password Bea", "10.0.1.9"); r.Status != http.StatusOK {
			t.Errorf("another account: %d %s", r.Status, r.Body)
		}
	})
}

func TestSignupLimitPerAddress(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{HTTP: httpapi.Options{TrustedProxies: loopback}, Chat: chat.Options{RateLimits: true, Limits: chat.Limits{SignupsPerAddr: rate(3)}}})
	register := func(n int, addr string) reply {
		return s.Call(t, "POST", "/api/v1/auth/register", "", map[string]string{
			"email": fmt.Sprintf("new%d@test.example", n), "name": "New", "password": "password"}, from(addr))
	}
	for i := range 3 {
		if r := register(i, "10.0.0.1"); r.Status != http.StatusCreated {
			t.Fatalf("sign-up %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	wantLimited(t, register(3, "10.0.0.1"))
	wantLimited(t, register(3, "::ffff:10.0.0.1")) // the same, IPv4-mapped
	if r := register(4, "10.0.0.2"); r.Status != http.StatusCreated {
		t.Errorf("another address: %d %s", r.Status, r.Body)
	}
	// An IPv6 host has its /64 whole: its addresses are one client.
	for i := range 3 {
		if r := register(10+i, fmt.Sprintf("2001:db8:1:2::%x", i+1)); r.Status != http.StatusCreated {
			t.Fatalf("IPv6 sign-up %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	wantLimited(t, register(13, "2001:db8:1:2:ffff:1:2:3"))
	if r := register(14, "2001:db8:1:3::1"); r.Status != http.StatusCreated {
		t.Errorf("another /64: %d %s", r.Status, r.Body)
	}
}

// TestSendLimitPerUser: the limit counts a user's messages over WebSocket and HTTP together.
func TestSendLimitPerUser(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{Chat: chat.Options{RateLimits: true, Limits: chat.Limits{SendsPerUser: rate(5)}}})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	g := s.Group(t, ann, "Team", false, ben)
	c := s.Dial(t, ann)
	for i := range 4 {
		ref := fmt.Sprintf("s%d", i)
		if got := c.RoundTrip("message.send", ref, map[string]any{"chat_id": g, "client_id": ref, "body": "hi"}); len(ofType(got, "message.ack")) != 1 {
			t.Fatalf("send %d: %s", i+1, raws(got))
		}
	}
	if r := s.Call(t, "POST", fmt.Sprintf("/api/v1/chats/%d/messages", g), ann.Token, map[string]string{"body": "hi", "client_id": "h"}, nil); r.Status != http.StatusCreated {
		t.Fatalf("5th send over HTTP: %d %s", r.Status, r.Body)
	}
	got := c.RoundTrip("message.send", "over", map[string]any{"chat_id": g, "client_id": "over", "body": "hi"})
	if code, _ := errorOf(got, "over"); code != chat.CodeRateLimited {
		t.Errorf("6th send: %s, want error rate_limited", raws(got))
	}
	wantLimited(t, s.Call(t, "POST", fmt.Sprintf("/api/v1/chats/%d/messages", g), ann.Token, map[string]string{"body": "hi", "client_id": "h2"}, nil))
	if _, _, err := s.Svc.Send(t.Context(), ben.P(), chat.SendInput{ChatID: g, Body: "me too", ClientID: "b"}); err != nil {
		t.Errorf("another user: %v", err)
	}
}

// TestChatChangeLimitPerUser: creating groups, opening private chats, inviting and joining
// count against one limit per user, so that nobody can flood others with invitations.
func TestChatChangeLimitPerUser(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{Chat: chat.Options{RateLimits: true, Limits: chat.Limits{ChatsPerUser: rate(4)}}})
	ann, ben, cid := s.NewUser(t, "Ann"), s.NewUser(t, "Ben"), s.NewUser(t, "Cid")
	open := s.Group(t, ben, "Open", true)
	for i, r := range []reply{
		s.Call(t, "POST", "/api/v1/chats", ann.Token, map[string]any{"kind": "group", "title": "One"}, nil),
		s.Call(t, "POST", "/api/v1/chats", ann.Token, map[string]any{"kind": "private", "member_ids": []int64{ben.ID}}, nil),
		s.Call(t, "POST", fmt.Sprintf("/api/v1/chats/%d/join", open), ann.Token, nil, nil),
		s.Call(t, "POST", fmt.Sprintf("/api/v1/chats/%d/members", open), ann.Token, map[string]int64{"user_id": cid.ID}, nil),
	} {
		if r.Status >= 300 {
			t.Fatalf("change %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	wantLimited(t, s.Call(t, "POST", "/api/v1/chats", ann.Token, map[string]any{"kind": "group", "title": "Five"}, nil))
	if r := s.Call(t, "POST", "/api/v1/chats", cid.Token, map[string]any{"kind": "group", "title": "Mine"}, nil); r.Status != http.StatusCreated {
		t.Errorf("another user: %d %s", r.Status, r.Body)
	}
}

// TestFrameLimit: a connection may send a burst of frames; beyond it each frame is answered
// with rate_limited, and a client that keeps going is closed with 1008.
func TestFrameLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{Hub: hub.Options{FrameBurst: 10, FramesPerSecond: 0.01}})
	c := s.Dial(t, s.NewUser(t, "Ann"))
	for i := range 10 {
		c.Send("ping", strconv.Itoa(i), nil)
		if f := c.Next(5 * time.Second); f.Type != "pong" {
			t.Fatalf("frame %d within the burst: %s", i+1, f.Raw)
		}
	}
	c.Send("ping", "over", nil)
	// The refusal carries the frame's ref, so that a client knows which frame was refused.
	if f := c.Next(5 * time.Second); f.Type != "error" || !strings.Contains(string(f.Data), chat.CodeRateLimited) || string(f.Ref) != `"over"` {
		t.Fatalf("frame 11: %s, want error rate_limited with ref \"over\"", f.Raw)
	}
	for i := range 10 {
		if err := c.SendRaw([]byte(`{"type":"ping"}`)); err != nil {
			t.Logf("write %d: %v", i, err)
			break
		}
	}
	if got := c.CloseStatus(5 * time.Second); got != websocket.StatusPolicyViolation {
		t.Errorf("close %d, want 1008", got)
	}
}

// TestFrameDataChecked: a frame whose data lacks a required field, or names no chat, is
// answered invalid with its ref (not not_found for "chat 0", nor nothing at all), and a null
// ref is taken as no ref.
func TestFrameDataChecked(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	ann := s.NewUser(t, "Ann")
	g := s.Group(t, ann, "Club", false)
	c := s.Dial(t, ann)
	for _, f := range []struct {
		typ  string
		data any
	}{
		{"message.send", map[string]any{"client_id": "x", "body": "no chat"}},
		{"message.send", map[string]any{"chat_id": -g, "client_id": "x", "body": "a negative chat"}},
		{"read", map[string]any{"seq": 1}},
		{"read", map[string]any{"chat_id": 0, "seq": 1}},
		{"read", map[string]any{"chat_id": g}},
		{"typing", map[string]any{}},
		{"typing", map[string]any{"chat_id": -1}},
	} {
		got := c.RoundTrip(f.typ, "bad", f.data)
		if code, _ := errorOf(got, "bad"); code != chat.CodeInvalid || len(got) != 1 {
			t.Errorf("%s %v: got %s, want one error invalid with ref bad", f.typ, f.data, raws(got))
		}
	}
	if err := c.SendRaw([]byte(`{"type":"message.send","ref":null,"data":{"chat_id":` + itoa64(g) + `,"client_id":"n","body":"null ref"}}`)); err != nil {
		t.Fatal(err)
	}
	got := c.UntilPong("after-null")
	if acks := ofType(got, "message.ack"); len(acks) != 1 || len(acks[0].Ref) != 0 {
		t.Errorf("a send with a null ref: got %s, want its message.ack with no ref", raws(got))
	}
}

// TestFrameDataErrorsArePlain: data of the wrong type is refused in the protocol's words, naming
// the field and what it must be, never in Go's ("json: cannot unmarshal string into Go struct
// field sendData.chat_id of type int64"); a sync cursor that is neither form says what the two
// forms are.
func TestFrameDataErrorsArePlain(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	ann := s.NewUser(t, "Ann")
	g := s.Group(t, ann, "Club", false)
	c := s.Dial(t, ann)
	for _, f := range []struct {
		typ, data, want string
	}{
		{"message.send", `{"chat_id":"` + itoa64(g) + `","client_id":"x","body":"hi"}`, "chat_id must be an integer"},
		{"message.send", `{"chat_id":` + itoa64(g) + `,"client_id":"x","body":1e3}`, "body must be a string"},
		{"read", `[1]`, "data must be an object"},
		{"read", `{"chat_id":` + itoa64(g) + `,"seq":1e3}`, "seq must be an integer"},
		{"sync", `{"cursors":{"` + itoa64(g) + `":"abc"}}`, `a cursor is a seq (an integer written in digits only) or {"seq": S, "rev": R}`},
		// null is no cursor of 0 (the whole history): a client that means 0 says so.
		{"sync", `{"cursors":{"` + itoa64(g) + `":null}}`, `a cursor is a seq (an integer written in digits only) or {"seq": S, "rev": R}`},
	} {
		if err := c.SendRaw([]byte(`{"type":"` + f.typ + `","ref":"bad","data":` + f.data + `}`)); err != nil {
			t.Fatal(err)
		}
		got := c.UntilPong("after-" + f.typ)
		var msg string
		for _, e := range ofType(got, "error") {
			var d struct {
				Code, Message string
			}
			if err := json.Unmarshal(e.Data, &d); err == nil && string(e.Ref) == `"bad"` && d.Code == chat.CodeInvalid {
				msg = d.Message
			}
		}
		if !strings.Contains(msg, f.want) || strings.Contains(msg, "Go ") || strings.Contains(msg, "json:") {
			t.Errorf("%s %s: error %q, want one saying %q in plain words", f.typ, f.data, msg, f.want)
		}
	}
}

func TestConnectionsPerUser(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{Hub: hub.Options{MaxConnsPerUser: 3}})
	ann := s.NewUser(t, "Ann")
	var open []*wsConn
	for range 3 {
		open = append(open, s.Dial(t, ann))
	}
	c, _, err := s.Handshake(t, "", http.Header{"Authorization": {"Bearer " + ann.Token}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.CloseStatus(5 * time.Second); got != websocket.StatusPolicyViolation {
		t.Errorf("4th connection: close %d, want 1008", got)
	}
	s.Dial(t, s.NewUser(t, "Ben")) // other users are not affected
	open[0].WS.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(5 * time.Second)
	for s.Hub.Stats().Connections.Load() > 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s.Dial(t, ann) // a freed place can be taken again
}

// padFrame is a ping whose ref pads it to exactly n bytes.
func padFrame(n int) []byte {
	head, tail := `{"type":"ping","ref":"`, `"}`
	return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
}

func TestSizeLimits(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	ann := s.NewUser(t, "Ann")
	g := s.Group(t, ann, "Team", true)

	t.Run("frame of 64 KiB", func(t *testing.T) {
		c := s.Dial(t, ann)
		if err := c.SendRaw(padFrame(hub.MaxFrameBytes)); err != nil {
			t.Fatal(err)
		}
		if f := c.Next(5 * time.Second); f.Type != "error" {
			t.Fatalf("got %.200s, want an error frame (the ref is too long)", f.Raw)
		}
		c.UntilPong("open") // the connection stays open
		c.SendRaw(padFrame(hub.MaxFrameBytes + 1))
		if got := c.CloseStatus(5 * time.Second); got != websocket.StatusMessageTooBig {
			t.Errorf("a frame of 64 KiB + 1: close %d, want 1009", got)
		}
	})
	t.Run("body of 64 KiB", func(t *testing.T) {
		body := func(n int) string {
			head, tail := `{"client_id":"big","body":"`, `"}`
			return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
		}
		path := fmt.Sprintf("/api/v1/chats/%d/messages", g)
		if r := s.Call(t, "POST", path, ann.Token, body(64<<10), nil); r.Status != http.StatusUnprocessableEntity {
			t.Errorf("a body of 64 KiB: %d %s, want 422 (read whole, the message is too long)", r.Status, r.Body)
		}
		if r := s.Call(t, "POST", path, ann.Token, body(64<<10+1), nil); r.Status != http.StatusRequestEntityTooLarge || r.Code() != chat.CodeTooLarge {
			t.Errorf("a body of 64 KiB + 1: %d %s, want 413 too_large", r.Status, r.Body)
		}
	})
	t.Run("message length", func(t *testing.T) {
		c := s.Dial(t, ann)
		got := c.RoundTrip("message.send", "max", map[string]any{"chat_id": g, "client_id": "max", "body": strings.Repeat("é", chat.MaxBodyChars)})
		if len(ofType(got, "message.ack")) != 1 {
			t.Errorf("4000 characters: %.300s", raws(got))
		}
		got = c.RoundTrip("message.send", "over", map[string]any{"chat_id": g, "client_id": "over", "body": strings.Repeat("é", chat.MaxBodyChars+1)})
		if code, _ := errorOf(got, "over"); code != chat.CodeInvalid {
			t.Errorf("4001 characters: %.300s, want error invalid", raws(got))
		}
		got = c.RoundTrip("message.send", "cid", map[string]any{"chat_id": g, "client_id": strings.Repeat("c", chat.MaxClientIDChars+1), "body": "x"})
		if code, _ := errorOf(got, "cid"); code != chat.CodeInvalid {
			t.Errorf("a client_id of 65: %.300s, want error invalid", raws(got))
		}
	})
	t.Run("ref length", func(t *testing.T) {
		// A user in no chat: nothing but the answers reaches the socket (Ann's got the
		// read.updated of her sends in the subtest before, now and then after its hello).
		c := s.Dial(t, s.NewUser(t, "Pinger"))
		long := strings.Repeat("r", 128)
		got := c.RoundTrip("ping", long, nil)
		if len(got) != 1 || got[0].Type != "pong" || string(got[0].Ref) != `"`+long+`"` {
			t.Errorf("a ref of 128: %s, want pong with it", raws(got))
		}
		got = c.RoundTrip("ping", long+"r", nil)
		if len(got) != 1 || got[0].Type != "error" || len(got[0].Ref) != 0 {
			t.Errorf("a ref of 129: %s, want an error without it", raws(got))
		}
		// Characters, not bytes: 128 of "é" (256 bytes), or of "😀" sent escaped as \u pairs
		// (1,538 bytes of JSON), are 128 characters.
		for _, raw := range []string{`"` + strings.Repeat("é", 128) + `"`, `"` + strings.Repeat(`\ud83d\ude00`, 128) + `"`} {
			if err := c.SendRaw([]byte(`{"type":"ping","ref":` + raw + `}`)); err != nil {
				t.Fatal(err)
			}
			got := c.UntilPong("after-wide")
			if len(got) != 1 || got[0].Type != "pong" || string(got[0].Ref) != raw {
				t.Errorf("a ref of 128 wide characters: %.200s, want pong with it", raws(got))
			}
		}
		if got := c.RoundTrip("ping", strings.Repeat("é", 129), nil); len(got) != 1 || got[0].Type != "error" {
			t.Errorf("a ref of 129 wide characters: %.200s, want an error", raws(got))
		}
	})
	t.Run("history page", func(t *testing.T) {
		path := fmt.Sprintf("/api/v1/chats/%d/messages?limit=", g)
		if r := s.Call(t, "GET", path+"200", ann.Token, nil, nil); r.Status != http.StatusOK {
			t.Errorf("limit=200: %d %s", r.Status, r.Body)
		}
		if r := s.Call(t, "GET", path+"201", ann.Token, nil, nil); r.Status != http.StatusUnprocessableEntity {
			t.Errorf("limit=201: %d %s, want 422", r.Status, r.Body)
		}
	})
	t.Run("sync cursors", func(t *testing.T) {
		c := s.Dial(t, ann)
		cursors := map[string]int64{}
		for i := range 1000 {
			cursors[strconv.FormatInt(g+int64(i), 10)] = 0
		}
		got := c.RoundTrip("sync", "most", map[string]any{"cursors": cursors})
		if len(ofType(got, "sync.done")) != 1 {
			t.Errorf("1000 cursors: no sync.done")
		}
		cursors["999999"] = 0
		got = c.RoundTrip("sync", "over", map[string]any{"cursors": cursors})
		if code, _ := errorOf(got, "over"); code != chat.CodeInvalid || len(got) != 1 {
			t.Errorf("1001 cursors: %d frames, error %q; want one error invalid", len(got), code)
		}
	})
}

func TestGroupMemberLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{Chat: chat.Options{Limits: chat.Limits{GroupMembers: 3}}})
	ann, ben, cid, dan := s.NewUser(t, "Ann"), s.NewUser(t, "Ben"), s.NewUser(t, "Cid"), s.NewUser(t, "Dan")
	g := s.Group(t, ann, "Full", true, ben, cid)
	r := s.Call(t, "POST", fmt.Sprintf("/api/v1/chats/%d/members", g), ann.Token, map[string]int64{"user_id": dan.ID}, nil)
	if r.Status != http.StatusForbidden || r.Code() != chat.CodeForbidden {
		t.Errorf("invite into a full group: %d %s, want 403 forbidden", r.Status, r.Body)
	}
	if r := s.Call(t, "POST", fmt.Sprintf("/api/v1/chats/%d/join", g), dan.Token, nil, nil); r.Status != http.StatusForbidden {
		t.Errorf("join a full group: %d %s, want 403", r.Status, r.Body)
	}
	r = s.Call(t, "POST", "/api/v1/chats", ann.Token, map[string]any{"kind": "group", "title": "Too big", "member_ids": []int64{ben.ID, cid.ID, dan.ID}}, nil)
	if r.Status != http.StatusUnprocessableEntity {
		t.Errorf("create a group of 4: %d %s, want 422", r.Status, r.Body)
	}
	if err := s.Svc.Leave(t.Context(), cid.P(), g); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Svc.Join(t.Context(), dan.P(), g); err != nil {
		t.Errorf("join after someone left: %v", err)
	}
}

// dropMessages is a broker that loses every message.new: nothing comes back live.
type dropMessages struct{ broker.Broker }

func (d dropMessages) Publish(ctx context.Context, topic string, payload []byte) error {
	if bytes.Contains(payload, []byte(`"t":"message.new"`)) {
		return nil
	}
	return d.Broker.Publish(ctx, topic, payload)
}

// TestPendingAcksAreBounded: a connection remembers the seqs it acknowledged until their live
// events come back; when the broker loses them, that memory stays under MaxPending (the
// messages are read back from the store instead), and the sender still sees no duplicate.
func TestPendingAcksAreBounded(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{Broker: dropMessages{broker.NewMemory()}, Hub: hub.Options{MaxPending: 8}})
	ann := s.NewUser(t, "Ann")
	g := s.Group(t, ann, "Solo", false)
	c := s.Dial(t, ann)
	var got []frame
	for i := range 40 {
		ref := "a" + strconv.Itoa(i)
		got = append(got, c.RoundTrip("message.send", ref, map[string]any{"chat_id": g, "client_id": ref, "body": "x"})...)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Hub.PendingAcks(ann.ID) >= 8 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.Hub.PendingAcks(ann.ID); n >= 8 {
		t.Errorf("%d acks pending, want fewer than 8", n)
	}
	got = append(got, c.Quiet(200*time.Millisecond)...)
	if n := len(ofType(got, "message.new")); n != 0 {
		t.Errorf("the sender got %d message.new of its own messages", n)
	}
}

// TestCatchUpLeavesASendInFlightToItsAck: a catch-up that reads the connection's own message
// from the store after its commit and before its ack (under load, sends commit in batches
// and a catch-up runs beside their acks) sends no message.new of it: the ack tells the
// client, once.
func TestCatchUpLeavesASendInFlightToItsAck(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{Broker: dropMessages{broker.NewMemory()}})
	ann := s.NewUser(t, "Ann")
	g := s.Group(t, ann, "Solo", false)
	c := s.Dial(t, ann)
	var caughtUp atomic.Bool
	s.Hub.AfterCommit(func(chatID, seq int64) {
		if chatID != g {
			return
		}
		s.Hub.CatchUp(ann.ID)
		deadline := time.Now().Add(10 * time.Second)
		for s.Hub.SentUpTo(ann.ID, g) < seq && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		caughtUp.Store(s.Hub.SentUpTo(ann.ID, g) >= seq)
	})
	got := c.RoundTrip("message.send", "a", map[string]any{"chat_id": g, "client_id": "a", "body": "x"})
	got = append(got, c.Quiet(200*time.Millisecond)...)
	if !caughtUp.Load() {
		t.Fatal("the catch-up did not reach the message before its ack")
	}
	if n := len(ofType(got, "message.new")); n != 0 {
		t.Errorf("the sender got %d message.new of its own message", n)
	}
	if n := len(ofType(got, "message.ack")); n != 1 {
		t.Errorf("%d message.ack, want 1", n)
	}
	// Sends answered with an error end too: the count holds only what is in flight.
	other := s.Group(t, s.NewUser(t, "Bob"), "Not Ann's", false)
	for i, d := range []map[string]any{{"chat_id": g, "client_id": "b", "body": ""}, {"chat_id": other, "client_id": "c", "body": "x"}} {
		if errs := ofType(c.RoundTrip("message.send", strconv.Itoa(i), d), "error"); len(errs) != 1 {
			t.Fatalf("send %v: %d errors, want 1", d, len(errs))
		}
	}
	if n := s.Hub.SendsInFlight(ann.ID); n != 0 {
		t.Errorf("%d sends still counted in flight", n)
	}
}
