package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/wschat/chat/internal/chat"
)

// TestOriginCheck checks that a foreign page cannot act for a signed-in user through their
// cookies, while same-origin pages, non-browser clients and Bearer clients can.
// basicStaging is the Authorization header of HTTP Basic credentials (staging:secret).
const basicStaging = "Basic c3RhZ2luZzpzZWNyZXQ="

func TestOriginCheck(t *testing.T) {
	bothBackends(t, envOptions{allowedOrigins: []string{"https://app.example"}}, func(t *testing.T, e *env) {
		a := e.newUser(t, "Ann")
		g := e.group(t, a, "Team", false)
		access := &http.Cookie{Name: "access_token", Value: a.Token}
		n := 0
		send := func(r req) resp {
			t.Helper()
			n++
			r.method, r.path = "POST", chatPath(g, "/messages")
			r.body = map[string]string{"body": "hi", "client_id": "origin-" + strings.Repeat("x", n)}
			return e.do(t, r)
		}
		stored := func() int {
			t.Helper()
			return len(decode[wireHistory](t, e.do(t, req{method: "GET", path: chatPath(g, "/messages"), token: a.Token})).Messages)
		}

		for _, tc := range []struct {
			name   string
			r      req
			status int
		}{
			{"cookie, foreign Origin", req{cookies: []*http.Cookie{access}, header: map[string]string{"Origin": "https://evil.example"}}, http.StatusForbidden},
			{"cookie, Origin null", req{cookies: []*http.Cookie{access}, header: map[string]string{"Origin": "null"}}, http.StatusForbidden},
			{"cookie, foreign Referer", req{cookies: []*http.Cookie{access}, header: map[string]string{"Referer": "https://evil.example/page"}}, http.StatusForbidden},
			{"cookie, cross-site fetch", req{cookies: []*http.Cookie{access}, header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, http.StatusForbidden},
			{"cookie, same host on another port", req{cookies: []*http.Cookie{access}, header: map[string]string{"Origin": "http://127.0.0.1:1"}}, http.StatusForbidden},
			{"cookie, no Origin", req{cookies: []*http.Cookie{access}}, http.StatusCreated},
			{"cookie, own Origin", req{cookies: []*http.Cookie{access}, header: map[string]string{"Origin": e.srv.URL}}, http.StatusCreated},
			{"cookie, own Referer", req{cookies: []*http.Cookie{access}, header: map[string]string{"Referer": e.srv.URL + "/chats"}}, http.StatusCreated},
			{"cookie, allowed Origin", req{cookies: []*http.Cookie{access}, header: map[string]string{"Origin": "https://app.example"}}, http.StatusCreated},
			{"bearer, foreign Origin", req{token: a.Token, header: map[string]string{"Origin": "https://evil.example"}}, http.StatusCreated},
			// A browser behind a password-protected proxy sends Basic credentials with every
			// request: the cookie still authenticates, and is still checked for its Origin.
			{"cookie and Basic, own Origin", req{cookies: []*http.Cookie{access}, header: map[string]string{"Authorization": basicStaging, "Origin": e.srv.URL}}, http.StatusCreated},
			{"cookie and Basic, foreign Origin", req{cookies: []*http.Cookie{access}, header: map[string]string{"Authorization": basicStaging, "Origin": "https://evil.example"}}, http.StatusForbidden},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := stored()
				r := send(tc.r)
				code := ""
				if tc.status == http.StatusForbidden {
					code = chat.CodeForbidden
				}
				r.want(t, tc.status, code)
				after := stored()
				if created := tc.status == http.StatusCreated; (after == before+1) != created {
					t.Errorf("messages before %d, after %d; want a message stored: %v", before, after, created)
				}
			})
		}

		e.do(t, req{method: "GET", path: mePath, cookies: []*http.Cookie{access}, header: map[string]string{"Authorization": basicStaging}}).
			want(t, http.StatusOK, "")

		// Reading is safe from anywhere: the browser keeps the answer from the foreign page.
		e.do(t, req{method: "GET", path: "/api/v1/chats", cookies: []*http.Cookie{access}, header: map[string]string{"Origin": "https://evil.example"}}).
			want(t, http.StatusOK, "")

		// The refresh and logout cookies are guarded too: a foreign page can neither rotate the
		// session (and so burn it) nor sign the user out.
		login := e.login(t, a, "browser")
		_, refresh := checkAuthCookies(t, login, false)
		evil := map[string]string{"Origin": "https://evil.example"}
		e.do(t, req{method: "POST", path: refreshPath, cookies: []*http.Cookie{refresh}, header: evil}).want(t, http.StatusForbidden, chat.CodeForbidden)
		e.do(t, req{method: "POST", path: "/api/v1/auth/logout", cookies: []*http.Cookie{access}, header: evil}).want(t, http.StatusForbidden, chat.CodeForbidden)
		e.do(t, req{method: "GET", path: mePath, token: a.Token}).want(t, http.StatusOK, "")
		e.do(t, req{method: "POST", path: refreshPath, cookies: []*http.Cookie{refresh}, header: map[string]string{"Origin": e.srv.URL}}).want(t, http.StatusOK, "")
	})
}

// TestSecurityHeaders checks the headers every API answer carries.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", envOptions{})
	a := e.newUser(t, "Ann")
	r := e.do(t, req{method: "GET", path: mePath, token: a.Token})
	for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "X-Frame-Options": "DENY"} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
}

// TestInternalErrorsHidden breaks the database under a running server: the answer is a 5xx
// problem that says nothing about the internals.
func TestInternalErrorsHidden(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", envOptions{})
	a := e.newUser(t, "Ann")
	e.store.Close()
	for _, path := range []string{mePath, "/api/v1/chats"} {
		hr, err := http.NewRequest("GET", e.srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		hr.Header.Set("Authorization", "Bearer "+a.Token)
		res, err := e.srv.Client().Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode < 500 {
			t.Errorf("%s with the database closed: got %d, want a 5xx", path, res.StatusCode)
		}
		if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s: Content-Type %q, want application/problem+json", path, ct)
		}
		for _, leak := range []string{"sql", "closed", "store", "session", ".go"} {
			if strings.Contains(strings.ToLower(string(body)), leak) {
				t.Errorf("%s: the 5xx body reveals %q: %s", path, leak, body)
			}
		}
	}
}
