package hub_test

// The harness of the security tests (authz_test.go, limits_test.go, the fuzz targets): an
// in-process server with every layer real (SQLite store, in-process broker, hub, HTTP API),
// users made through the service, and a raw WebSocket client that can forge any handshake.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wschat/chat/internal/auth"
	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/httpapi"
	"github.com/wschat/chat/internal/hub"
	"github.com/wschat/chat/internal/store"
)

// testSecret signs the harness's tokens.
var testSecret = []byte("harness-secret-0123456789abcdef-0123456789")

// serverConfig is how a harness server differs from the default.
type serverConfig struct {
	hub     hub.Options
	chat    chat.Options // PasswordParams and Signup are filled in
	origins []string     // CHAT_ALLOWED_ORIGINS
	proxies []netip.Prefix
	broker  broker.Broker // default: a fresh in-process broker
	// gate wraps the HTTP layer's WebSocket gate, to act between a handshake's steps.
	gate func(hub.Gate) hub.Gate
}

type testServer struct {
	URL    string
	Hub    *hub.Hub
	Svc    *chat.Service
	Store  *store.Store
	Tokens *auth.Tokens
	users  atomic.Int64
}

func startServer(tb testing.TB, cfg serverConfig) *testServer {
	tb.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(tb.TempDir(), "chat.db"), store.Options{MaxGroupMembers: cfg.chat.Limits.GroupMembers})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	tokens, err := auth.NewTokens([][]byte{testSecret}, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := cfg.chat
	opts.Signup = true
	if opts.PasswordParams == (auth.PasswordParams{}) {
		opts.PasswordParams = auth.FastPasswordParams
	}
	svc := chat.NewService(st, tokens, opts)
	b := cfg.broker
	if b == nil {
		b = broker.NewMemory()
	}
	ho := cfg.hub
	if ho.InstanceID == "" {
		ho.InstanceID = "test"
	}
	h, err := hub.New(svc, b, broker.NewMemoryPresence(time.Now), log, ho)
	if err != nil {
		tb.Fatal(err)
	}
	svc.SetPublisher(h)
	svc.SetPresence(h)
	api := httpapi.NewServer(svc, log, httpapi.Options{CookieSecure: "false", AllowedOrigins: cfg.origins, TrustedProxies: cfg.proxies})
	var gate hub.Gate = api
	if cfg.gate != nil {
		gate = cfg.gate(api)
	}
	api.Handle("GET /api/v1/ws", h.Handler(gate))
	srv := httptest.NewServer(api)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.Shutdown(ctx)
		srv.Close()
		b.Close()
	})
	return &testServer{URL: srv.URL, Hub: h, Svc: svc, Store: st, Tokens: tokens}
}

// testUser is a signed-in user of a harness server: one session.
type testUser struct {
	ID        int64
	Email     string
	Password  string
	SessionID int64
	Token     string // access token
	Refresh   string // refresh token
}

func (u *testUser) p() chat.Principal { return chat.Principal{UserID: u.ID, SessionID: u.SessionID} }

// newUser registers a user through the service (from an address of its own, so that sign-up
// limits do not get in the way).
func (s *testServer) newUser(tb testing.TB, name string) *testUser {
	tb.Helper()
	n := s.users.Add(1)
	email := fmt.Sprintf("%s-%d@test.example", strings.ToLower(name), n)
	u, creds, err := s.Svc.Register(context.Background(), chat.SignIn{Email: email, Name: name, Password: "password " + name,
		Addr: fmt.Sprintf("192.0.2.%d", n)})
	if err != nil {
		tb.Fatalf("register %s: %v", name, err)
	}
	return &testUser{ID: u.ID, Email: email, Password: "password " + name, SessionID: creds.SessionID, Token: creds.AccessToken, Refresh: creds.RefreshToken}
}

// login starts another session (device) of u.
func (s *testServer) login(tb testing.TB, u *testUser) *testUser {
	tb.Helper()
	_, creds, err := s.Svc.Login(context.Background(), chat.SignIn{Email: u.Email, Password: u.Password, Addr: "198.51.100.1"})
	if err != nil {
		tb.Fatalf("login %s: %v", u.Email, err)
	}
	d := *u
	d.SessionID, d.Token, d.Refresh = creds.SessionID, creds.AccessToken, creds.RefreshToken
	return &d
}

// group creates a group owned by owner with members.
func (s *testServer) group(tb testing.TB, owner *testUser, title string, public bool, members ...*testUser) int64 {
	tb.Helper()
	ids := make([]int64, len(members))
	for i, m := range members {
		ids[i] = m.ID
	}
	d, err := s.Svc.CreateGroup(context.Background(), owner.p(), title, public, ids)
	if err != nil {
		tb.Fatalf("create group %q: %v", title, err)
	}
	return d.ID
}

// reply is an HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) code() string {
	var p struct {
		Code string `json:"code"`
	}
	json.Unmarshal(r.body, &p)
	return p.Code
}

// call sends an HTTP request: body is sent as is when it is a string, else as JSON; token, if
// any, as Bearer; hdr on top.
func (s *testServer) call(tb testing.TB, method, path, token string, body any, hdr http.Header) reply {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return reply{status: res.StatusCode, header: res.Header, body: b}
}

// frame is a server frame as a client reads it.
type frame struct {
	Type string          `json:"type"`
	Ref  json.RawMessage `json:"ref,omitempty"`
	Data json.RawMessage `json:"data"`
	raw  []byte
}

// wsConn is a raw WebSocket client: one goroutine reads frames into a channel.
type wsConn struct {
	tb     testing.TB
	ws     *websocket.Conn
	frames chan frame
	done   chan struct{}
	err    error
}

func (s *testServer) wsURL() string { return "ws" + strings.TrimPrefix(s.URL, "http") + "/api/v1/ws" }

// handshake opens a WebSocket with exactly the given headers (and query, e.g.
// "?access_token=..."). On refusal it returns the HTTP answer.
func (s *testServer) handshake(tb testing.TB, query string, hdr http.Header) (*wsConn, *http.Response, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, res, err := websocket.Dial(ctx, s.wsURL()+query, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		return nil, res, err
	}
	ws.SetReadLimit(16 << 20)
	c := &wsConn{tb: tb, ws: ws, frames: make(chan frame, 1<<14), done: make(chan struct{})}
	go c.read()
	tb.Cleanup(func() { ws.CloseNow() })
	return c, res, nil
}

// dial connects u with a Bearer header and reads the hello.
func (s *testServer) dial(tb testing.TB, u *testUser) *wsConn {
	tb.Helper()
	c, res, err := s.handshake(tb, "", http.Header{"Authorization": {"Bearer " + u.Token}})
	if err != nil {
		tb.Fatalf("dial as user %d: %v (%v)", u.ID, err, res)
	}
	if f := c.next(5 * time.Second); f.Type != "hello" {
		tb.Fatalf("first frame %q, want hello", f.raw)
	}
	return c
}

func (c *wsConn) read() {
	defer close(c.done)
	defer close(c.frames)
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.err = err
			return
		}
		f := frame{raw: b}
		if err := json.Unmarshal(b, &f); err != nil {
			c.err = fmt.Errorf("a frame that is not JSON: %q", b)
			return
		}
		c.frames <- f
	}
}

// next returns the next frame, failing the test if none comes within wait.
func (c *wsConn) next(wait time.Duration) frame {
	c.tb.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.tb.Fatalf("connection closed: %v", c.err)
		}
		return f
	case <-time.After(wait):
		c.tb.Fatalf("no frame within %v", wait)
	}
	return frame{}
}

// sendRaw writes one text frame.
func (c *wsConn) sendRaw(b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// send writes a frame {type, ref, data}.
func (c *wsConn) send(typ, ref string, data any) {
	c.tb.Helper()
	f := map[string]any{"type": typ, "ref": ref}
	if data != nil {
		f["data"] = data
	}
	b, _ := json.Marshal(f)
	if err := c.sendRaw(b); err != nil {
		c.tb.Fatalf("send %s: %v", typ, err)
	}
}

// roundTrip sends a frame, then a ping, and returns every frame that came before the pong:
// the server answers a connection's frames in order, so the answer to the frame is among them.
func (c *wsConn) roundTrip(typ, ref string, data any) []frame {
	c.tb.Helper()
	c.send(typ, ref, data)
	return c.untilPong("ping-" + strconv.FormatInt(pings.Add(1), 10))
}

var pings atomic.Int64

// untilPong sends a ping with ref and collects the frames before its pong.
func (c *wsConn) untilPong(ref string) []frame {
	c.tb.Helper()
	c.send("ping", ref, nil)
	var got []frame
	for {
		f := c.next(10 * time.Second)
		if f.Type == "pong" && string(f.Ref) == `"`+ref+`"` {
			return got
		}
		got = append(got, f)
	}
}

// quiet collects what arrives within wait.
func (c *wsConn) quiet(wait time.Duration) []frame {
	var got []frame
	deadline := time.After(wait)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return got
			}
			got = append(got, f)
		case <-deadline:
			return got
		}
	}
}

// closeStatus waits for the connection to end and returns the server's close code.
func (c *wsConn) closeStatus(wait time.Duration) websocket.StatusCode {
	c.tb.Helper()
	deadline := time.After(wait)
	for {
		select {
		case _, ok := <-c.frames:
			if !ok {
				return websocket.CloseStatus(c.err)
			}
		case <-deadline:
			c.tb.Fatalf("the connection is still open after %v", wait)
			return -1
		}
	}
}

// errorOf returns the error frame answering ref among frames, if any.
func errorOf(frames []frame, ref string) (code string, ok bool) {
	for _, f := range frames {
		if f.Type == "error" && string(f.Ref) == `"`+ref+`"` {
			var d struct {
				Code string `json:"code"`
			}
			json.Unmarshal(f.Data, &d)
			return d.Code, true
		}
	}
	return "", false
}

// ofType returns the frames of a type.
func ofType(frames []frame, typ string) []frame {
	var out []frame
	for _, f := range frames {
		if f.Type == typ {
			out = append(out, f)
		}
	}
	return out
}

// chatOf is the chat_id of a frame's data (or of its message).
func chatOf(f frame) int64 {
	var d struct {
		ChatID  int64 `json:"chat_id"`
		Message struct {
			ChatID int64 `json:"chat_id"`
		} `json:"message"`
	}
	json.Unmarshal(f.Data, &d)
	if d.ChatID != 0 {
		return d.ChatID
	}
	return d.Message.ChatID
}
