// Package testserver starts a whole chat server in the test's process, with every layer real:
// the store (SQLite in a temporary directory, or a PostgreSQL database of the test's own), the
// broker (in-process unless given), the hub and the HTTP API, on an httptest server. A test
// starts one in one line, makes users through the service, and talks to it over HTTP and raw
// WebSockets (wsclient.go) exactly as a client would, forged handshakes included.
package testserver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/chat/internal/auth"
	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/httpapi"
	"github.com/wschat/chat/internal/hub"
	"github.com/wschat/chat/internal/push"
	"github.com/wschat/chat/internal/store"
	"github.com/wschat/chat/internal/testdb"
)

// Secret signs the tokens of every test server.
var Secret = []byte("testserver-secret-0123456789abcdef-0123456789")

// Config is how a test's server differs from the default: SQLite, an in-process broker, no
// rate limits, sign-up on, cheap password hashing, access tokens of an hour.
type Config struct {
	// Postgres puts the store on a PostgreSQL database of the test's own (testdb.Postgres).
	Postgres bool
	// DatabaseURL overrides the store's database (e.g. one shared by two servers).
	DatabaseURL string
	Store       store.Options
	// WrapStore, if set, wraps the store the service uses (to act between its calls).
	WrapStore func(chat.Store) chat.Store
	// Chat configures the service; PasswordParams defaults to the fast test parameters and
	// Signup is on unless NoSignup.
	Chat     chat.Options
	NoSignup bool
	// AccessTTL is the access tokens' lifetime (default an hour).
	AccessTTL time.Duration
	Hub       hub.Options
	HTTP      httpapi.Options // CookieSecure defaults to "false"
	// Broker and Presence default to fresh in-process ones; a given broker is closed with
	// the server.
	Broker   broker.Broker
	Presence broker.Presence
	// Gate wraps the HTTP layer's WebSocket gate, to act between a handshake's steps.
	Gate func(hub.Gate) hub.Gate
	// WrapWS wraps the WebSocket endpoint (e.g. to refuse handshakes as a dead instance would).
	WrapWS func(http.Handler) http.Handler
	// TLS serves https.
	TLS bool
	// Blobs, when set, turns files on (uploads, downloads, attachments) with FileOptions; the
	// file service's thumbnail workers and janitor run until the test ends.
	Blobs       chat.Blobs
	FileOptions chat.FileOptions
	// Log receives the server's log (default: discarded), from LogLevel up (default warn).
	Log      io.Writer
	LogLevel slog.Level
	// Push, if set, runs a Web Push sender with these options (PrivateKey defaults to
	// PushKey, Instance to a unique name, Interval to 20 ms).
	Push *push.Options
	// PushByHand, with Push, builds the sender without running it: the test steps it
	// (s.Push.Step), on a clock of its own if Push.Now is set.
	PushByHand bool
	// NoSearchIndexer leaves the search indexer out, for a test that stores many messages of
	// the largest size to fill the hub's queues and never searches: indexing them was a fifth
	// of such a test's CPU under the race detector.
	NoSearchIndexer bool
}

// PushKey is the VAPID private key of test servers.
const PushKey = "7VVMtOmsDAPGB4hzfD0gOH2nN3YyKdaPEUmoZcuw0hE"

// Server is a running test server.
type Server struct {
	URL    string
	Hub    *hub.Hub
	Svc    *chat.Service
	Store  *store.Store
	Tokens *auth.Tokens
	API    *httpapi.Server
	HTTP   *httptest.Server
	Files  *chat.FileService // nil unless Config.Blobs was set
	Push   *push.Service     // nil unless Config.Push

	users   atomic.Int64
	mu      sync.Mutex
	sockets []net.Conn // the hijacked connections: the WebSockets
}

// Start starts a server that stops when the test ends.
func Start(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	ctx := context.Background()
	url := cfg.DatabaseURL
	switch {
	case url != "":
	case cfg.Postgres:
		url = testdb.MigratedPostgres(tb, store.MigrateURL)
	default:
		url = testdb.MigratedSQLite(tb, store.MigrateURL)
	}
	so := cfg.Store
	if so.MaxGroupMembers == 0 {
		so.MaxGroupMembers = cfg.Chat.Limits.GroupMembers
	}
	if so.MaxUserChats == 0 {
		so.MaxUserChats = cfg.Chat.Limits.UserChats
	}
	st, err := store.Open(ctx, url, so)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	// The search indexer: a send wakes it when it is idle, so a test's message is indexed at once;
	// messages sent while it works wait for the interval, which is short: a test waits for a
	// message to be found, never for a timer. (At 20 ms its idle checks were a sixth of the hub
	// tests' CPU.)
	if !cfg.NoSearchIndexer {
		indexCtx, stopIndex := context.WithCancel(ctx)
		indexDone := make(chan struct{})
		go func() {
			defer close(indexDone)
			st.RunSearchIndexer(indexCtx, 200*time.Millisecond, slog.New(slog.DiscardHandler))
		}()
		tb.Cleanup(func() { stopIndex(); <-indexDone })
	}
	ttl := cfg.AccessTTL
	if ttl == 0 {
		ttl = time.Hour
	}
	tokens, err := auth.NewTokens([][]byte{Secret}, ttl)
	if err != nil {
		tb.Fatal(err)
	}
	var logOut io.Writer = io.Discard
	if cfg.Log != nil {
		logOut = cfg.Log
	}
	level := cfg.LogLevel
	if level == 0 {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))
	opts := cfg.Chat
	opts.Signup = !cfg.NoSignup
	if opts.PasswordParams == (auth.PasswordParams{}) {
		opts.PasswordParams = auth.FastPasswordParams
	}
	if opts.PasswordParams == auth.FastPasswordParams { // as chatd does with CHAT_PASSWORD_COST=test
		if err := st.CheapenDemoPasswords(ctx); err != nil {
			tb.Fatalf("demo passwords: %v", err)
		}
	}
	if opts.Logger == nil {
		opts.Logger = log
	}
	var cs chat.Store = st
	if cfg.WrapStore != nil {
		cs = cfg.WrapStore(st)
	}
	svc := chat.NewService(cs, tokens, opts)
	b := cfg.Broker
	if b == nil {
		b = broker.NewMemory()
	}
	presence := cfg.Presence
	if presence == nil {
		presence = broker.NewMemoryPresence(time.Now)
	}
	ho := cfg.Hub
	if ho.InstanceID == "" {
		ho.InstanceID = "test"
	}
	h, err := hub.New(svc, b, presence, log, ho)
	if err != nil {
		tb.Fatal(err)
	}
	svc.SetPublisher(h)
	svc.SetPresence(h)
	ho2 := cfg.HTTP
	if ho2.CookieSecure == "" {
		ho2.CookieSecure = "false"
	}
	var files *chat.FileService
	if cfg.Blobs != nil {
		files = chat.NewFileService(svc, st, cfg.Blobs, cfg.FileOptions)
		ho2.Files = files
		fctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); files.Run(fctx) }()
		tb.Cleanup(func() { stop(); <-done })
	}
	var pushSvc *push.Service
	if cfg.Push != nil {
		po := *cfg.Push
		if po.PrivateKey == "" {
			po.PrivateKey = PushKey
		}
		if po.Instance == "" {
			po.Instance = fmt.Sprintf("test-%d", time.Now().UnixNano())
		}
		if po.Interval == 0 {
			po.Interval = 20 * time.Millisecond
		}
		if po.Logger == nil {
			po.Logger = log
		}
		if pushSvc, err = push.New(st, h, po); err != nil {
			tb.Fatal(err)
		}
		ho2.Push = pushSvc
		if !cfg.PushByHand {
			pushCtx, stopPush := context.WithCancel(ctx)
			pushDone := make(chan struct{})
			go func() { defer close(pushDone); pushSvc.Run(pushCtx) }()
			tb.Cleanup(func() { stopPush(); <-pushDone })
		}
	}
	api := httpapi.NewServer(svc, log, ho2)
	var gate hub.Gate = api
	if cfg.Gate != nil {
		gate = cfg.Gate(api)
	}
	var ws http.Handler = h.Handler(gate)
	if cfg.WrapWS != nil {
		ws = cfg.WrapWS(ws)
	}
	api.Handle("GET /api/v1/ws", ws)
	s := &Server{Hub: h, Svc: svc, Store: st, Files: files, Tokens: tokens, API: api, Push: pushSvc}
	srv := httptest.NewUnstartedServer(api)
	srv.Listener = httpapi.Listener(srv.Listener)
	srv.Config.ConnState = func(c net.Conn, state http.ConnState) {
		if state == http.StateHijacked {
			s.mu.Lock()
			s.sockets = append(s.sockets, c)
			s.mu.Unlock()
		}
	}
	if cfg.TLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	s.URL, s.HTTP = srv.URL, srv
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.Shutdown(ctx)
		s.CutSockets()
		srv.Close()
		b.Close()
	})
	return s
}

// CutSockets drops every WebSocket without a close frame, as a dead instance or network would.
func (s *Server) CutSockets() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.sockets {
		c.Close()
	}
	s.sockets = nil
}

// User is a signed-in user of a test server: one session (device).
type User struct {
	ID        int64
	Email     string
	Name      string
	Password  string
	SessionID int64
	Token     string // access token
	Refresh   string // refresh token
}

// P is the user's principal, for calling the service directly.
func (u *User) P() chat.Principal { return chat.Principal{UserID: u.ID, SessionID: u.SessionID} }

// NewUser registers a user through the service, each from an address of its own so that
// sign-up limits do not get in the way.
func (s *Server) NewUser(tb testing.TB, name string) *User {
	tb.Helper()
	n := s.users.Add(1)
	email := fmt.Sprintf("%s-%d@test.example", strings.ToLower(strings.ReplaceAll(name, " ", "-")), n)
	pw := "password " + name
	u, creds, err := s.Svc.Register(context.Background(), chat.SignIn{Email: email, Name: name, Password: pw,
		Addr: fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255)})
	if err != nil {
		tb.Fatalf("register %s: %v", name, err)
	}
	return &User{ID: u.ID, Email: email, Name: name, Password: pw, SessionID: creds.SessionID, Token: creds.AccessToken, Refresh: creds.RefreshToken}
}

// Demo signs in one of the demo users (first@example.com...) on a new session.
func (s *Server) Demo(tb testing.TB, email string) *User {
	tb.Helper()
	return s.Login(tb, &User{Email: email, Password: "password"})
}

// Login starts another session (device) of u.
func (s *Server) Login(tb testing.TB, u *User) *User {
	tb.Helper()
	me, creds, err := s.Svc.Login(context.Background(), chat.SignIn{Email: u.Email, Password: u.Password, Addr: "198.51.100.1"})
	if err != nil {
		tb.Fatalf("login %s: %v", u.Email, err)
	}
	d := *u
	d.ID, d.Name = me.ID, me.Name
	d.SessionID, d.Token, d.Refresh = creds.SessionID, creds.AccessToken, creds.RefreshToken
	return &d
}

// Group creates a group owned by owner with members, through the service.
func (s *Server) Group(tb testing.TB, owner *User, title string, public bool, members ...*User) int64 {
	tb.Helper()
	ids := make([]int64, len(members))
	for i, m := range members {
		ids[i] = m.ID
	}
	d, err := s.Svc.CreateGroup(context.Background(), owner.P(), title, public, ids)
	if err != nil {
		tb.Fatalf("create group %q: %v", title, err)
	}
	return d.ID
}

// Private opens the private chat of a and b, through the service.
func (s *Server) Private(tb testing.TB, a, b *User) int64 {
	tb.Helper()
	d, _, err := s.Svc.OpenPrivate(context.Background(), a.P(), []int64{b.ID})
	if err != nil {
		tb.Fatalf("open private chat: %v", err)
	}
	return d.ID
}

// Send stores a message from u through the service.
func (s *Server) Send(tb testing.TB, u *User, chatID int64, body string) chat.Message {
	tb.Helper()
	m, _, err := s.Svc.Send(context.Background(), u.P(), chat.SendInput{ChatID: chatID, Body: body, ClientID: fmt.Sprintf("ts-%d", sends.Add(1))})
	if err != nil {
		tb.Fatalf("send to chat %d: %v", chatID, err)
	}
	return m
}

var sends atomic.Int64
