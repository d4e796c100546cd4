package hub_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wschat/chat/internal/auth"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/httpapi"
	"github.com/wschat/chat/internal/hub"
	"github.com/wschat/chat/internal/testserver"
)

// TestWebSocketAuthorizationMatrix sends every client frame that names a chat (message.send,
// read, typing, chat.open, sync) as every kind of caller, about every kind of chat, and checks the answer
// API.md gives: a member is served; a non-member of a chat they can see (a public group) gets
// not_member; anyone else gets not_found, exactly as for a chat that does not exist. Refused
// frames store nothing, tell the members nothing, and sync sends no message of the chat.
func TestWebSocketAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	stranger := s.NewUser(t, "Stranger") // never a member of anything
	left := s.NewUser(t, "Left")         // a member who left
	invited := s.NewUser(t, "Invited")   // invited by a member, then left

	priv, _, err := s.Svc.OpenPrivate(t.Context(), ann.P(), []int64{ben.ID})
	if err != nil {
		t.Fatal(err)
	}
	chats := map[string]int64{
		"private chat":  priv.ID,
		"private group": s.Group(t, ann, "Closed", false, ben, left),
		"public group":  s.Group(t, ann, "Open", true, ben),
		"missing chat":  987654,
	}
	if _, err := s.Svc.Join(t.Context(), left.P(), chats["public group"]); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"private group", "public group"} {
		if _, err := s.Svc.Invite(t.Context(), ann.P(), chats[k], invited.ID); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []int64{chats["private chat"], chats["private group"], chats["public group"]} {
		if _, _, err := s.Svc.Send(t.Context(), ann.P(), chat.SendInput{ChatID: id, Body: "before", ClientID: "before"}); err != nil {
			t.Fatal(err)
		}
	}

	conns := map[string]*wsConn{}
	for name, u := range map[string]*testUser{"member": ann, "stranger": stranger, "ex-member": left, "invited, then left": invited} {
		conns[name] = s.Dial(t, u)
	}
	observer := s.Dial(t, ben) // a member who must hear nothing from refused frames
	// The leavers leave while connected: their open socket must stop serving the chat too.
	for name, u := range map[string]*testUser{"ex-member": left, "invited, then left": invited} {
		for _, k := range []string{"private group", "public group"} {
			if err := s.Svc.Leave(t.Context(), u.P(), chats[k]); err != nil {
				t.Fatal(err)
			}
			for {
				f := conns[name].Next(5 * time.Second)
				if f.Type == "chat.removed" && chatOf(f) == chats[k] {
					break
				}
			}
		}
	}
	observer.Quiet(300 * time.Millisecond)

	// expect is API.md's answer: "" for served.
	expect := func(caller, kind string) string {
		switch {
		case kind == "missing chat":
			return chat.CodeNotFound
		case caller == "member":
			return ""
		case kind == "public group":
			return chat.CodeNotMember
		}
		return chat.CodeNotFound
	}
	frames := []struct {
		typ  string
		data func(chatID int64) any
	}{
		{"message.send", func(id int64) any { return map[string]any{"chat_id": id, "client_id": "matrix", "body": "intruder?"} }},
		{"read", func(id int64) any { return map[string]any{"chat_id": id, "seq": 1} }},
		{"typing", func(id int64) any { return map[string]any{"chat_id": id} }},
		{"chat.open", func(id int64) any { return map[string]any{"chat_id": id} }},
		{"sync", func(id int64) any { return map[string]any{"cursors": map[string]int64{strconv.FormatInt(id, 10): 0}} }},
	}
	n := 0
	for _, caller := range []string{"member", "stranger", "ex-member", "invited, then left"} {
		for _, kind := range []string{"private chat", "private group", "public group", "missing chat"} {
			if kind == "private chat" && (caller == "ex-member" || caller == "invited, then left") {
				continue // a private chat cannot be left
			}
			for _, fr := range frames {
				t.Run(caller+"/"+kind+"/"+fr.typ, func(t *testing.T) {
					c, id, want := conns[caller], chats[kind], expect(caller, kind)
					if fr.typ == "sync" && want != "" {
						// sync reads only the connection's own chats and answers any other
						// as missing, without asking the database (docs/PROTOCOL.md).
						want = chat.CodeNotFound
					}
					n++
					ref := fmt.Sprintf("m%d", n)
					c.Bind(t)
					got := c.RoundTrip(fr.typ, ref, fr.data(id))
					code, refused := errorOf(got, ref)
					if want == "" {
						if refused {
							t.Fatalf("a member got error %q", code)
						}
					} else if code != want {
						t.Fatalf("got error %q (frames %s), want %q", code, raws(got), want)
					}
					switch fr.typ {
					case "message.send":
						if acked := len(ofType(got, "message.ack")) == 1; acked != (want == "") {
							t.Errorf("message.ack: %v, want %v", acked, want == "")
						}
					case "sync":
						if len(ofType(got, "sync.done")) != 1 {
							t.Errorf("no sync.done: %s", raws(got))
						}
						synced := 0
						for _, f := range ofType(got, "message.new") {
							if chatOf(f) == id {
								synced++
							}
						}
						if (synced > 0) != (want == "") {
							t.Errorf("sync sent %d messages of the chat; want some: %v", synced, want == "")
						}
					case "typing":
						wait := 100 * time.Millisecond
						if want == "" {
							wait = 3 * time.Second
						}
						if heard := heardTyping(observer, id, wait); heard != (want == "") {
							t.Errorf("the other member heard the typing: %v, want %v", heard, want == "")
						}
					}
				})
			}
		}
	}

	// Nothing the outsiders sent was stored, and they hear nothing of the chats' new messages.
	for kind, id := range chats {
		if kind == "missing chat" {
			continue
		}
		msgs, _, err := s.Svc.History(t.Context(), ann.P(), id, chat.HistoryPage{Limit: 200})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.SenderID != nil && *m.SenderID != ann.ID && *m.SenderID != ben.ID {
				t.Errorf("%s holds a message from user %d: %q", kind, *m.SenderID, m.Body)
			}
		}
		if _, _, err := s.Svc.Send(t.Context(), ann.P(), chat.SendInput{ChatID: id, Body: "after", ClientID: "after"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Svc.Typing(t.Context(), ann.P(), id); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"stranger", "ex-member", "invited, then left"} {
		conns[name].Bind(t)
		for _, f := range conns[name].Quiet(500 * time.Millisecond) {
			if id := chatOf(f); id != 0 && (f.Type == "message.new" || f.Type == "typing" || f.Type == "read.updated" || f.Type == "chat.read_all") {
				t.Errorf("%s got %s of chat %d: %s", name, f.Type, id, f.Raw)
			}
		}
	}
}

// heardTyping reports whether c gets a typing frame of a chat within wait.
func heardTyping(c *wsConn, chatID int64, wait time.Duration) bool {
	deadline := time.After(wait)
	for {
		select {
		case f, ok := <-c.Frames():
			if !ok {
				return false
			}
			if f.Type == "typing" && chatOf(f) == chatID {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

var raws = testserver.Raws

// TestHandshakeAuthentication: the WebSocket handshake admits a live session's access token
// only, and only from an allowed page.
func TestHandshakeAuthentication(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{HTTP: httpapi.Options{AllowedOrigins: []string{"https://app.example"}}})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	revoked := s.Login(t, ann)
	if err := s.Svc.Logout(t.Context(), revoked.P()); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	issue := func(secret []byte, ttl time.Duration, at time.Time) string {
		tok, err := auth.NewTokens([][]byte{secret}, ttl)
		if err != nil {
			t.Fatal(err)
		}
		s, err := tok.Issue(ann.ID, ann.SessionID, at)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	claims := jwt.MapClaims{"sub": strconv.FormatInt(ann.ID, 10), "sid": ann.SessionID, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "x"}
	sign := func(m jwt.SigningMethod, key any, kid string) string {
		tok := jwt.NewWithClaims(m, claims)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	otherKey := []byte("another-secret-0123456789abcdef-0123456789")
	enc := base64.RawURLEncoding
	payload, _ := json.Marshal(claims)
	algNone := enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"`+auth.KeyID(testSecret)+`"}`)) + "." + enc.EncodeToString(payload) + "."
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	cookie := func(tok string) http.Header { return http.Header{"Cookie": {"access_token=" + tok}} }
	with := func(h http.Header, k, v string) http.Header { h.Set(k, v); return h }

	for _, tc := range []struct {
		name   string
		query  string
		header http.Header
		status int // 0: admitted
		code   string
	}{
		{"no credentials", "", nil, 401, chat.CodeUnauthenticated},
		{"garbage token", "", bearer("not.a.token"), 401, chat.CodeUnauthenticated},
		{"revoked session", "", bearer(revoked.Token), 401, chat.CodeUnauthenticated},
		{"expired access token", "", bearer(issue(testSecret, time.Hour, now.Add(-2*time.Hour))), 401, chat.CodeUnauthenticated},
		{"token signed with another key", "", bearer(issue(otherKey, time.Hour, now)), 401, chat.CodeUnauthenticated},
		{"another key under our kid", "", bearer(sign(jwt.SigningMethodHS256, otherKey, auth.KeyID(testSecret))), 401, chat.CodeUnauthenticated},
		{"alg none", "", bearer(algNone), 401, chat.CodeUnauthenticated},
		{"HS512 with our key", "", bearer(sign(jwt.SigningMethodHS512, testSecret, auth.KeyID(testSecret))), 401, chat.CodeUnauthenticated},
		{"another user's refresh token as Bearer", "", bearer(ben.Refresh), 401, chat.CodeUnauthenticated},
		{"another user's refresh token as cookie", "", cookie(ben.Refresh), 401, chat.CodeUnauthenticated},
		{"another user's refresh token as query", "?access_token=" + ben.Refresh, nil, 401, chat.CodeUnauthenticated},
		{"cross-site Origin with the cookie", "", with(cookie(ann.Token), "Origin", "https://evil.example"), 403, chat.CodeForbidden},
		{"cross-site Origin with a Bearer token", "", with(bearer(ann.Token), "Origin", "https://evil.example"), 403, chat.CodeForbidden},
		{"Origin null", "", with(cookie(ann.Token), "Origin", "null"), 403, chat.CodeForbidden},
		{"our host on another port", "", with(cookie(ann.Token), "Origin", "http://127.0.0.1:1"), 403, chat.CodeForbidden},
		{"cookie, own Origin", "", with(cookie(ann.Token), "Origin", s.URL), 0, ""},
		{"cookie, allowed Origin", "", with(cookie(ann.Token), "Origin", "https://app.example"), 0, ""},
		{"Bearer, no Origin", "", bearer(ann.Token), 0, ""},
		{"query token", "?access_token=" + ann.Token, nil, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, res, err := s.Handshake(t, tc.query, tc.header)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if f := c.Next(5 * time.Second); f.Type != "hello" {
					t.Fatalf("first frame %s, want hello", f.Raw)
				}
				return
			}
			if err == nil {
				t.Fatal("admitted")
			}
			if res == nil || res.StatusCode != tc.status {
				t.Fatalf("answer %v, want %d", res, tc.status)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q, want application/problem+json", ct)
			}
			var p struct {
				Code string `json:"code"`
			}
			json.NewDecoder(res.Body).Decode(&p)
			if p.Code != tc.code {
				t.Errorf("code %q, want %q", p.Code, tc.code)
			}
		})
	}
}

// TestMalformedHandshakes: a request to the WebSocket endpoint that is not a handshake the
// library takes is answered, as every error, with a problem document (it wrote text/plain).
func TestMalformedHandshakes(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	ann := s.NewUser(t, "Ann")
	upgrade := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
	for _, tc := range []struct {
		name   string
		header map[string]string
		status int
		code   string
	}{
		{"a plain GET", nil, http.StatusUpgradeRequired, "upgrade_required"},
		{"version 8", map[string]string{"Sec-WebSocket-Version": "8"}, http.StatusBadRequest, "bad_request"},
		{"no key", map[string]string{"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": ""}, http.StatusBadRequest, "bad_request"},
	} {
		hr, err := http.NewRequest("GET", s.URL+"/api/v1/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		hr.Header.Set("Authorization", "Bearer "+ann.Token)
		if tc.header != nil {
			for k, v := range upgrade {
				hr.Header.Set(k, v)
			}
		}
		for k, v := range tc.header {
			if v == "" {
				hr.Header.Del(k)
			} else {
				hr.Header.Set(k, v)
			}
		}
		res, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Status int    `json:"status"`
			Code   string `json:"code"`
			Detail string `json:"detail"`
		}
		err = json.NewDecoder(res.Body).Decode(&p)
		res.Body.Close()
		if res.StatusCode != tc.status || res.Header.Get("Content-Type") != "application/problem+json" || err != nil ||
			p.Status != tc.status || p.Code != tc.code || p.Detail == "" {
			t.Errorf("%s: got %d %q %+v (%v), want a %d problem document with code %s", tc.name, res.StatusCode,
				res.Header.Get("Content-Type"), p, err, tc.status, tc.code)
		}
	}
}

// TestRevocationClosesSockets: revoking a session (logout, revoking it from another device,
// logout-all) closes its open sockets with 4001 and leaves the other sessions' sockets open;
// an access token that expires under an open socket closes it with 4001 too.
func TestRevocationClosesSockets(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	ann := s.NewUser(t, "Ann")
	phone, laptop, tablet := s.Login(t, ann), s.Login(t, ann), s.Login(t, ann)
	pc, lc, tc := s.Dial(t, phone), s.Dial(t, laptop), s.Dial(t, tablet)

	if r := s.Call(t, "POST", "/api/v1/auth/logout", phone.Token, nil, nil); r.Status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	if got := pc.CloseStatus(5 * time.Second); got != 4001 {
		t.Errorf("after logout: close %d, want 4001", got)
	}
	path := "/api/v1/auth/sessions/" + strconv.FormatInt(laptop.SessionID, 10)
	if r := s.Call(t, "DELETE", path, tablet.Token, nil, nil); r.Status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if got := lc.CloseStatus(5 * time.Second); got != 4001 {
		t.Errorf("after revocation from another device: close %d, want 4001", got)
	}
	if got := tc.UntilPong("still"); len(errorsIn(got)) > 0 {
		t.Errorf("the revoking device got %s", raws(got))
	}
	// The revoked socket's token no longer opens one.
	if _, res, err := s.Handshake(t, "", http.Header{"Authorization": {"Bearer " + laptop.Token}}); err == nil || res.StatusCode != 401 {
		t.Errorf("handshake with a revoked session: %v", err)
	}
	if r := s.Call(t, "POST", "/api/v1/auth/logout-all", tablet.Token, nil, nil); r.Status != http.StatusNoContent {
		t.Fatalf("logout-all: %d %s", r.Status, r.Body)
	}
	if got := tc.CloseStatus(5 * time.Second); got != 4001 {
		t.Errorf("after logout-all: close %d, want 4001", got)
	}

	// A token that expires in a second or two.
	bob := s.NewUser(t, "Bob")
	short, err := auth.NewTokens([][]byte{testSecret}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for name, dial := range map[string]func(tok string) (*wsConn, *http.Response, error){
		"Bearer": func(tok string) (*wsConn, *http.Response, error) {
			return s.Handshake(t, "", http.Header{"Authorization": {"Bearer " + tok}})
		},
		// The gate ignores a header that is not Bearer and takes the query; so must the timer.
		"query, beside a Basic header": func(tok string) (*wsConn, *http.Response, error) {
			return s.Handshake(t, "?access_token="+tok, http.Header{"Authorization": {"Basic Zm9vOmJhcg=="}})
		},
	} {
		tok, err := short.Issue(bob.ID, bob.SessionID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c, _, err := dial(tok)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := c.CloseStatus(5 * time.Second); got != 4001 {
			t.Errorf("%s: token expired under the socket: close %d, want 4001", name, got)
		}
	}
}

func errorsIn(fs []frame) []frame { return ofType(fs, "error") }

// clockGate admits a handshake, then moves the service's clock forward: whatever checks the
// token again after the admission sees it long expired.
type clockGate struct {
	hub.Gate
	offset *atomic.Int64 // added to the service's clock, in nanoseconds
}

func (g clockGate) Admit(r *http.Request) (chat.Principal, int, error) {
	p, status, err := g.Gate.Admit(r)
	g.offset.Store(int64(time.Hour))
	return p, status, err
}

// TestSocketExpiresWithTheVerifiedToken: a socket's end comes from the token its handshake
// verified. A handshake whose token expires while it is being set up (a second verification
// of the token would fail) still gets its expiry: it is closed with 4001 when the token
// expires, and cannot send past it.
func TestSocketExpiresWithTheVerifiedToken(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64
	s := startServer(t, serverConfig{
		Chat: chat.Options{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }},
		Gate: func(g hub.Gate) hub.Gate { return clockGate{g, &offset} },
	})
	ann := s.NewUser(t, "Ann")
	short, err := auth.NewTokens([][]byte{testSecret}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := short.Issue(ann.ID, ann.SessionID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := s.Handshake(t, "", http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.CloseStatus(15 * time.Second); got != 4001 {
		t.Errorf("token expired under a socket set up as it expired: close %d, want 4001", got)
	}
}
