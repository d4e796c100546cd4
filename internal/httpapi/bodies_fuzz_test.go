package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wschat/chat/internal/auth"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/httpapi"
	"github.com/wschat/chat/internal/store"
)

// fuzzOps are the operations of API.md that take a request body, as a signed-in member calls
// them (%d is a group of the caller's, with another member).
var fuzzOps = []struct{ method, path string }{
	{"POST", "/api/v1/auth/register"},
	{"POST", "/api/v1/auth/login"},
	{"POST", "/api/v1/auth/refresh"},
	{"POST", "/api/v1/chats"},
	{"POST", "/api/v1/chats/%d/members"},
	{"POST", "/api/v1/chats/%d/messages"},
	{"POST", "/api/v1/chats/%d/read"},
	{"POST", "/api/v1/chats/%d/join"},
}

// FuzzRequestBody sends any body with any Content-Type to every operation that reads one,
// through the real handler: the answer is never a 5xx, an error is a problem document with the
// status and a code, and a success is JSON.
//
//	go test ./internal/httpapi -run '^$' -fuzz FuzzRequestBody -fuzztime 30s -fuzzminimizetime 5s
func FuzzRequestBody(f *testing.F) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(f.TempDir(), "chat.db"), store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		f.Fatal(err)
	}
	tokens, err := auth.NewTokens([][]byte{[]byte("fuzz-http-secret-0123456789abcdef-0123")}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := chat.NewService(st, tokens, chat.Options{Signup: true, PasswordParams: auth.FastPasswordParams, Logger: log})
	h := httpapi.NewServer(svc, log, httpapi.Options{CookieSecure: "auto"})
	u, creds, err := svc.Register(ctx, chat.SignIn{Email: "fuzz@test.example", Name: "Fuzz", Password: "password"})
	if err != nil {
		f.Fatal(err)
	}
	g, err := svc.CreateGroup(ctx, chat.Principal{UserID: u.ID, SessionID: creds.SessionID}, "Fuzz", true, []int64{1})
	if err != nil {
		f.Fatal(err)
	}

	const js, form = "application/json", "application/x-www-form-urlencoded"
	for _, seed := range []struct {
		op          uint8
		contentType string
		body        string
	}{
		{0, js, `{"email":"new@test.example","name":"New","password":"password"}`},
		{0, js, `{"email":"NEW@test.example ","name":" \u0000","password":"p"}`},
		{1, js, `{"email":"fuzz@test.example","password":"password"}`},
		{1, js, `{"email":"fuzz@test.example","password":"wrong"}`},
		{1, form, `username=fuzz%40test.example&password=password&grant_type=password`},
		{1, form, `username=%zz`},
		{1, "text/plain", `{"email":"fuzz@test.example","password":"password"}`},
		{1, "application/json; charset=utf-16", `{"email":1}`},
		{2, js, `{"refresh_token":"x"}`},
		{2, "", ``},
		{3, js, `{"kind":"group","title":"T","public":true,"member_ids":[1,2,3]}`},
		{3, js, `{"kind":"private","member_ids":[2]}`},
		{3, js, `{"kind":"private","member_ids":[]}`},
		{3, js, `{"kind":"channel"}`},
		{3, "application/cbor", "\xa1\x64kind\x65group"},
		{4, js, `{"user_id":2}`},
		{4, js, `{"user_id":-1}`},
		{5, js, `{"body":"hi","client_id":"c"}`},
		{5, js, `{"body":"hi","client_id":"c","extra":[{}]}`},
		{5, "multipart/form-data; boundary=x", "--x\r\n\r\n--x--"},
		{6, js, `{"seq":9223372036854775807}`},
		{6, js, `{"seq":1e400}`},
		{7, js, `{}`},
		{5, js, strings.Repeat(`[`, 10000)},
	} {
		f.Add(seed.op, seed.contentType, []byte(seed.body))
	}

	f.Fuzz(func(t *testing.T, op uint8, contentType string, body []byte) {
		o := fuzzOps[int(op)%len(fuzzOps)]
		path := o.path
		if strings.Contains(path, "%d") {
			path = fmt.Sprintf(path, g.ID)
		}
		r := httptest.NewRequest(o.method, path, bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+creds.AccessToken)
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		res := w.Result()
		got := w.Body.Bytes()
		if res.StatusCode >= 500 {
			t.Fatalf("%s %s (%q, %q): %d %s", o.method, path, contentType, body, res.StatusCode, got)
		}
		if res.StatusCode >= 400 {
			if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("%s %s: %d with Content-Type %q: %s", o.method, path, res.StatusCode, ct, got)
			}
			var p struct {
				Status int    `json:"status"`
				Code   string `json:"code"`
				Title  string `json:"title"`
			}
			if err := json.Unmarshal(got, &p); err != nil || p.Status != res.StatusCode || p.Code == "" || p.Title == "" {
				t.Fatalf("%s %s: %d with the problem %s", o.method, path, res.StatusCode, got)
			}
			return
		}
		if len(got) > 0 && !json.Valid(got) {
			t.Fatalf("%s %s: %d with a body that is not JSON: %s", o.method, path, res.StatusCode, got)
		}
	})
}
