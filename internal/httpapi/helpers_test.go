package httpapi_test

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
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/chat/internal/auth"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/httpapi"
	"github.com/wschat/chat/internal/store"
	"github.com/wschat/chat/internal/testserver"
)

// env is one in-process server on a fresh database (internal/testserver, with the hub), as the
// HTTP tests see it.
type env struct {
	backend string
	ts      *testserver.Server
	srv     *httptest.Server
	svc     *chat.Service
	store   *store.Store
	secret  []byte
	tokens  *auth.Tokens
	pwHash  string // of fixturePassword
	files   *chat.FileService

	docsOnce sync.Once // documentedOps
	docs     []documentedOp
}

// envOptions are the ways a test's server differs from the default one. The zero value is the
// default: sign-up on, no rate limits, plain HTTP.
type envOptions struct {
	noSignup       bool
	rateLimits     bool
	limits         chat.Limits // zero fields take chat.DefaultLimits
	tls            bool
	allowedOrigins []string
	trustedProxies []netip.Prefix
	logs           io.Writer // also gets the server's log, from debug level up
	// blobs, when set, turns files on (files_test.go), with fileOpts.
	blobs    func(t *testing.T) chat.Blobs
	fileOpts chat.FileOptions
	// editWindow is chat.Options.EditWindow (0: the default).
	editWindow time.Duration
	// uploadIdle is httpapi.Options.UploadIdle (0: the default).
	uploadIdle time.Duration
	// writeIdle is httpapi.Options.WriteIdle (0: the default).
	writeIdle time.Duration
	// observe is httpapi.Options.Observe.
	observe func(route string, status int, d time.Duration)
}

const accessTTL = 15 * time.Minute

func newEnv(t *testing.T, backend string, o envOptions) *env {
	t.Helper()
	cfg := testserver.Config{
		Postgres:  backend == "postgres",
		NoSignup:  o.noSignup,
		Chat:      chat.Options{RateLimits: o.rateLimits, Limits: o.limits, EditWindow: o.editWindow},
		AccessTTL: accessTTL,
		HTTP: httpapi.Options{CookieSecure: "auto", AllowedOrigins: o.allowedOrigins, TrustedProxies: o.trustedProxies,
			UploadIdle: o.uploadIdle, WriteIdle: o.writeIdle, Observe: o.observe},
		TLS: o.tls,
		Log: t.Output(),
	}
	if backend != "sqlite" && backend != "postgres" {
		t.Fatalf("unknown backend %q", backend)
	}
	if o.logs != nil {
		cfg.Log, cfg.LogLevel = io.MultiWriter(t.Output(), o.logs), slog.LevelDebug
	}
	if o.blobs != nil {
		cfg.Blobs, cfg.FileOptions = o.blobs(t), o.fileOpts
	}
	ts := testserver.Start(t, cfg)
	pwHash, err := auth.HashPassword(fixturePassword, auth.FastPasswordParams)
	if err != nil {
		t.Fatal(err)
	}
	return &env{backend: backend, ts: ts, srv: ts.HTTP, svc: ts.Svc, store: ts.Store, secret: testserver.Secret,
		tokens: ts.Tokens, pwHash: pwHash, files: ts.Files}
}

var backendNames = []string{"sqlite", "postgres"}

// bothBackends runs fn in parallel on a server over SQLite and one over PostgreSQL.
func bothBackends(t *testing.T, o envOptions, fn func(t *testing.T, e *env)) {
	t.Helper()
	t.Parallel()
	for _, b := range backendNames {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, b, o))
		})
	}
}

// req is one HTTP request of a test.
type req struct {
	method, path string
	// body is sent as is when it is a string or []byte, else encoded as JSON; nil sends none.
	body        any
	contentType string // defaults to application/json when there is a body
	token       string // sent as Bearer
	cookies     []*http.Cookie
	header      map[string]string
}

// resp is the answer to a req.
type resp struct {
	status  int
	header  http.Header
	body    []byte
	cookies []*http.Cookie
}

// do sends r and checks what every answer must satisfy: no 5xx, and errors as problem
// documents.
func (e *env) do(t *testing.T, r req) resp {
	t.Helper()
	var body io.Reader
	if r.body != nil {
		switch b := r.body.(type) {
		case string:
			body = strings.NewReader(b)
		case []byte:
			body = bytes.NewReader(b)
		default:
			buf, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			body = bytes.NewReader(buf)
		}
	}
	hr, err := http.NewRequest(r.method, e.srv.URL+r.path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	if r.body != nil {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for _, c := range r.cookies {
		hr.AddCookie(c)
	}
	for k, v := range r.header {
		if k == "Host" {
			hr.Host = v
			continue
		}
		hr.Header.Set(k, v)
	}
	res, err := e.srv.Client().Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", r.method, r.path, err)
	}
	out := resp{status: res.StatusCode, header: res.Header, body: b, cookies: res.Cookies()}
	if out.status >= 500 {
		t.Errorf("%s %s: got status %d, a client request must never cause a 5xx: %s", r.method, r.path, out.status, b)
	}
	if out.status >= 400 {
		checkProblem(t, r, out)
	}
	e.checkDocumented(t, r, out)
	return out
}

// problem is an RFC 9457 problem document as API.md describes it.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Errors []struct {
		Location string `json:"location"`
		Message  string `json:"message"`
	} `json:"errors"`
}

func checkProblem(t *testing.T, r req, out resp) {
	t.Helper()
	if ct := out.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s %s: status %d with Content-Type %q, want application/problem+json", r.method, r.path, out.status, ct)
	}
	var p problem
	if err := json.Unmarshal(out.body, &p); err != nil {
		t.Errorf("%s %s: status %d, body is not a problem document: %v: %s", r.method, r.path, out.status, err, out.body)
		return
	}
	if p.Status != out.status || p.Code == "" || p.Code == "error" || p.Type == "" || p.Title == "" {
		t.Errorf("%s %s: status %d, incomplete problem %s", r.method, r.path, out.status, out.body)
	}
}

func (r resp) problem(t *testing.T) problem {
	t.Helper()
	var p problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("not a problem document: %v: %s", err, r.body)
	}
	return p
}

// want checks the status and, for errors, the problem code.
func (r resp) want(t *testing.T, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("got status %d, want %d: %s", r.status, status, r.body)
		return
	}
	if code != "" {
		if got := r.problem(t).Code; got != code {
			t.Errorf("got code %q, want %q: %s", got, code, r.body)
		}
	}
}

// wantField checks a 422 that names the offending field.
func (r resp) wantField(t *testing.T, location string) {
	t.Helper()
	r.want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)
	if r.status != http.StatusUnprocessableEntity {
		return
	}
	var locs []string
	for _, e := range r.problem(t).Errors {
		locs = append(locs, e.Location)
		if e.Location == location {
			return
		}
	}
	t.Errorf("errors name %q, want %q: %s", locs, location, r.body)
}

func decode[T any](t *testing.T, r resp) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, r.body)
	}
	return v
}

// keys returns the sorted top-level keys of a JSON object.
func keys(t *testing.T, b []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, b)
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

var timeFormat = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

func checkTime(t *testing.T, what, v string) {
	t.Helper()
	if !timeFormat.MatchString(v) {
		t.Errorf("%s: got %q, want RFC 3339 UTC with milliseconds", what, v)
	}
}

// user is a signed-up account with one session.
type user = testserver.User

var userSeq atomic.Int64

// fixturePassword is the password of every fixture user; env.pwHash is its hash.
const fixturePassword = "correct horse"

// newUser stores a user with a session straight through the store, as sign-up would, without
// hashing a password per user: the fixtures of the authorization matrix are many.
func (e *env) newUser(t *testing.T, name string) *user {
	t.Helper()
	ctx := context.Background()
	email := fmt.Sprintf("%s-%d@example.test", strings.ToLower(strings.ReplaceAll(name, " ", "")), userSeq.Add(1))
	now := time.Now().UTC().Truncate(time.Millisecond)
	u, err := e.store.CreateUser(ctx, chat.User{Email: email, Name: name, PasswordHash: e.pwHash, CreatedAt: now})
	if err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	refresh, hash, err := auth.NewRefreshToken()
	if err != nil {
		t.Fatal(err)
	}
	sess, err := e.store.CreateSession(ctx, chat.Session{UserID: u.ID, UserAgent: "fixture", CreatedAt: now, LastSeenAt: now,
		ExpiresAt: now.Add(24 * time.Hour)}, hash)
	if err != nil {
		t.Fatalf("create session: %v", err)
	}
	access, err := e.tokens.Issue(u.ID, sess.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	return &user{ID: u.ID, Email: u.Email, Name: u.Name, Password: fixturePassword, Token: access, Refresh: refresh, SessionID: sess.ID}
}

func (e *env) group(t *testing.T, owner *user, title string, public bool, members ...*user) int64 {
	t.Helper()
	return e.ts.Group(t, owner, title, public, members...)
}

func (e *env) private(t *testing.T, a, b *user) int64 {
	t.Helper()
	return e.ts.Private(t, a, b)
}

func (e *env) send(t *testing.T, from *user, chatID int64, body string) chat.Message {
	t.Helper()
	return e.ts.Send(t, from, chatID, body)
}

func (e *env) leave(t *testing.T, u *user, chatID int64) {
	t.Helper()
	if err := e.svc.Leave(context.Background(), u.P(), chatID); err != nil {
		t.Fatalf("leave chat %d: %v", chatID, err)
	}
}

func cookie(cs []*http.Cookie, name string) *http.Cookie {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Wire shapes of the answers, decoded strictly enough to compare.

type wireUser struct {
	ID        int64  `json:"id"`
	Email     string `json:"email"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
	Online    bool   `json:"online"`
}

type wireTokens struct {
	User        *wireUser `json:"user"`
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresIn   int       `json:"expires_in"`
}

type wireEvent struct {
	Type    string `json:"type"`
	UserID  int64  `json:"user_id"`
	ActorID int64  `json:"actor_id"`
}

type wireMessage struct {
	ID        int64      `json:"id"`
	ChatID    int64      `json:"chat_id"`
	Seq       int64      `json:"seq"`
	Kind      string     `json:"kind"`
	SenderID  *int64     `json:"sender_id"`
	Body      string     `json:"body"`
	ClientID  *string    `json:"client_id"`
	CreatedAt string     `json:"created_at"`
	Event     *wireEvent `json:"event"`
}

type wirePeer struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Online bool   `json:"online"`
}

type wireMember struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Role        string `json:"role"`
	JoinedAt    string `json:"joined_at"`
	LastReadSeq int64  `json:"last_read_seq"`
	Online      bool   `json:"online"`
}

type wireChat struct {
	ID            int64         `json:"id"`
	Kind          string        `json:"kind"`
	Title         string        `json:"title"`
	Public        bool          `json:"public"`
	CreatedAt     string        `json:"created_at"`
	MemberCount   int           `json:"member_count"`
	Peer          *wirePeer     `json:"peer"`
	LastMessage   *wireMessage  `json:"last_message"`
	LastSeq       int64         `json:"last_seq"`
	MyLastReadSeq int64         `json:"my_last_read_seq"`
	ReadAllSeq    int64         `json:"read_all_seq"`
	UnreadCount   int64         `json:"unread_count"`
	Members       []*wireMember `json:"members"`
}

func (c wireChat) member(id int64) *wireMember {
	for _, m := range c.Members {
		if m.ID == id {
			return m
		}
	}
	return nil
}

type wireHistory struct {
	Messages []wireMessage `json:"messages"`
	HasMore  bool          `json:"has_more"`
}

func seqs(msgs []wireMessage) []int64 {
	out := []int64{}
	for _, m := range msgs {
		out = append(out, m.Seq)
	}
	return out
}

func seqRange(from, to int64) []int64 {
	out := []int64{}
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func chatPath(id int64, rest string) string { return fmt.Sprintf("/api/v1/chats/%d%s", id, rest) }
