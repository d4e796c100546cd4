package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/wschat/chat/internal/chat"
)

const (
	registerPath = "/api/v1/auth/register"
	loginPath    = "/api/v1/auth/login"
	refreshPath  = "/api/v1/auth/refresh"
	mePath       = "/api/v1/users/me"
	sessionsPath = "/api/v1/auth/sessions"
)

// checkAuthCookies checks the two cookies of fresh credentials and returns them.
func checkAuthCookies(t *testing.T, r resp, secure bool) (access, refresh *http.Cookie) {
	t.Helper()
	access, refresh = cookie(r.cookies, "access_token"), cookie(r.cookies, "refresh_token")
	if access == nil || refresh == nil {
		t.Fatalf("got cookies %v, want access_token and refresh_token", r.cookies)
	}
	for _, tc := range []struct {
		c        *http.Cookie
		path     string
		sameSite http.SameSite
		minAge   int
		maxAge   int
	}{
		{access, "/", http.SameSiteLaxMode, int(accessTTL.Seconds()) - 60, int(accessTTL.Seconds())},
		{refresh, "/api/v1/auth", http.SameSiteStrictMode, 30*24*3600 - 60, 30 * 24 * 3600},
	} {
		c := tc.c
		if c.Value == "" || !c.HttpOnly || c.Path != tc.path || c.SameSite != tc.sameSite || c.Secure != secure {
			t.Errorf("cookie %s: got %q (HttpOnly %v, Path %q, SameSite %v, Secure %v), want HttpOnly, Path %q, SameSite %v, Secure %v",
				c.Name, c.Raw, c.HttpOnly, c.Path, c.SameSite, c.Secure, tc.path, tc.sameSite, secure)
		}
		if c.MaxAge < tc.minAge || c.MaxAge > tc.maxAge {
			t.Errorf("cookie %s: Max-Age %d, want about %d", c.Name, c.MaxAge, tc.maxAge)
		}
	}
	return access, refresh
}

func TestRegister(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		r := e.do(t, req{method: "POST", path: registerPath, body: map[string]string{"email": "Reg.User@Example.TEST", "name": "  Reggie ", "password": "password1"}})
		r.want(t, http.StatusCreated, "")
		body := decode[wireTokens](t, r)
		if body.User == nil || body.User.ID <= 0 || body.User.Email != "reg.user@example.test" || body.User.Name != "Reggie" {
			t.Errorf("user: got %+v, want Reggie with the email lowercased", body.User)
		}
		if body.User != nil {
			checkTime(t, "created_at", body.User.CreatedAt)
		}
		if body.AccessToken == "" || body.TokenType != "bearer" || body.ExpiresIn != int(accessTTL.Seconds()) {
			t.Errorf("tokens: got %+v, want a bearer token valid %d s", body, int(accessTTL.Seconds()))
		}
		access, _ := checkAuthCookies(t, r, false)

		// The cookie alone signs the user in.
		me := e.do(t, req{method: "GET", path: mePath, cookies: []*http.Cookie{access}})
		me.want(t, http.StatusOK, "")
		if got := decode[wireUser](t, me); body.User == nil || got.ID != body.User.ID || got.Email != "reg.user@example.test" {
			t.Errorf("me: got %+v, want the new user", got)
		}

		// Emails compare case-insensitively.
		dup := e.do(t, req{method: "POST", path: registerPath, body: map[string]string{"email": "REG.USER@example.test", "name": "Other", "password": "password1"}})
		dup.want(t, http.StatusConflict, chat.CodeEmailTaken)

		long := strings.Repeat("x", 129)
		for _, tc := range []struct {
			name               string
			email, uname, pass string
			wantStatus         int
			wantField          string
			omitPassword       bool
		}{
			{name: "no at sign", email: "not-an-email", uname: "N", pass: "password1", wantField: "body.email"},
			{name: "no domain dot", email: "a@localhost", uname: "N", pass: "password1", wantField: "body.email"},
			{name: "display name", email: "Bob <bob@example.test>", uname: "N", pass: "password1", wantField: "body.email"},
			{name: "empty email", email: "", uname: "N", pass: "password1", wantField: "body.email"},
			{name: "empty name", email: "n1@example.test", uname: "", pass: "password1", wantField: "body.name"},
			{name: "blank name", email: "n2@example.test", uname: "   ", pass: "password1", wantField: "body.name"},
			{name: "name of 65", email: "n3@example.test", uname: strings.Repeat("n", 65), pass: "password1", wantField: "body.name"},
			{name: "name with a newline", email: "n4@example.test", uname: "a\nb", pass: "password1", wantField: "body.name"},
			{name: "password of 7", email: "p1@example.test", uname: "P", pass: "passwor", wantField: "body.password"},
			{name: "password of 129", email: "p2@example.test", uname: "P", pass: long, wantField: "body.password"},
			{name: "no password", email: "p3@example.test", uname: "P", omitPassword: true, wantField: "body.password"},
			{name: "name of 64", email: "ok1@example.test", uname: strings.Repeat("n", 64), pass: "password1", wantStatus: http.StatusCreated},
			{name: "password of 8", email: "ok2@example.test", uname: "P", pass: "12345678", wantStatus: http.StatusCreated},
			{name: "password of 128", email: "ok3@example.test", uname: "P", pass: long[:128], wantStatus: http.StatusCreated},
			{name: "password of 8 two-byte characters", email: "ok4@example.test", uname: "P", pass: strings.Repeat("é", 8), wantStatus: http.StatusCreated},
			{name: "password of 7 two-byte characters", email: "p4@example.test", uname: "P", pass: strings.Repeat("é", 7), wantField: "body.password"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b := map[string]string{"email": tc.email, "name": tc.uname, "password": tc.pass}
				if tc.omitPassword {
					delete(b, "password")
				}
				r := e.do(t, req{method: "POST", path: registerPath, body: b})
				switch {
				case tc.wantStatus != 0:
					r.want(t, tc.wantStatus, "")
				case tc.omitPassword:
					// huma reports a missing property at "body", naming it in the message.
					r.want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)
					if !strings.Contains(string(r.body), "password") {
						t.Errorf("the problem does not name the missing password: %s", r.body)
					}
				default:
					r.wantField(t, tc.wantField)
				}
			})
		}
	})
}

func TestRegisterSignupDisabled(t *testing.T) {
	bothBackends(t, envOptions{noSignup: true}, func(t *testing.T, e *env) {
		r := e.do(t, req{method: "POST", path: registerPath, body: map[string]string{"email": "late@example.test", "name": "Late", "password": "password1"}})
		r.want(t, http.StatusForbidden, chat.CodeSignupDisabled)
		if c := cookie(r.cookies, "access_token"); c != nil && c.Value != "" {
			t.Errorf("a refused sign-up set an access cookie")
		}
		// Nobody was created: logging in fails.
		e.do(t, req{method: "POST", path: loginPath, body: map[string]string{"email": "late@example.test", "password": "password1"}}).
			want(t, http.StatusUnauthorized, chat.CodeInvalidCredentials)
	})
}

func TestCookiesSecureOverHTTPS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", envOptions{tls: true})
	r := e.do(t, req{method: "POST", path: registerPath, body: map[string]string{"email": "tls@example.test", "name": "TLS", "password": "password1"}})
	r.want(t, http.StatusCreated, "")
	checkAuthCookies(t, r, true)
}

func TestLogin(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		u := e.newUser(t, "Lena")
		check := func(t *testing.T, r resp) string {
			t.Helper()
			r.want(t, http.StatusOK, "")
			if r.status != http.StatusOK {
				return ""
			}
			body := decode[wireTokens](t, r)
			if body.User == nil || body.User.ID != u.ID || body.User.Email != u.Email || body.User.Name != "Lena" ||
				body.AccessToken == "" || body.TokenType != "bearer" || body.ExpiresIn != int(accessTTL.Seconds()) {
				t.Errorf("got %s, want Lena's user and a bearer token", r.body)
			}
			checkAuthCookies(t, r, false)
			me := e.do(t, req{method: "GET", path: mePath, token: body.AccessToken})
			me.want(t, http.StatusOK, "")
			if got := decode[wireUser](t, me).ID; got != u.ID {
				t.Errorf("the new token is user %d's, want %d", got, u.ID)
			}
			return body.AccessToken
		}
		t.Run("json", func(t *testing.T) {
			check(t, e.do(t, req{method: "POST", path: loginPath, body: map[string]string{"email": u.Email, "password": u.Password}}))
		})
		t.Run("json, email in capitals", func(t *testing.T) {
			check(t, e.do(t, req{method: "POST", path: loginPath, body: map[string]string{"email": strings.ToUpper(u.Email), "password": u.Password}}))
		})
		t.Run("form", func(t *testing.T) {
			form := url.Values{"username": {u.Email}, "password": {u.Password}}.Encode()
			check(t, e.do(t, req{method: "POST", path: loginPath, body: form, contentType: "application/x-www-form-urlencoded"}))
		})
		t.Run("form with grant_type", func(t *testing.T) {
			form := url.Values{"grant_type": {"password"}, "username": {u.Email}, "password": {u.Password}, "scope": {""}}.Encode()
			check(t, e.do(t, req{method: "POST", path: loginPath, body: form, contentType: "application/x-www-form-urlencoded"}))
		})

		t.Run("wrong password and unknown email answer alike", func(t *testing.T) {
			wrong := e.do(t, req{method: "POST", path: loginPath, body: map[string]string{"email": u.Email, "password": "wrong password"}})
			wrong.want(t, http.StatusUnauthorized, chat.CodeInvalidCredentials)
			unknown := e.do(t, req{method: "POST", path: loginPath, body: map[string]string{"email": "nobody@example.test", "password": "wrong password"}})
			unknown.want(t, http.StatusUnauthorized, chat.CodeInvalidCredentials)
			if string(wrong.body) != string(unknown.body) {
				t.Errorf("bodies differ:\n wrong password: %s\n unknown email:  %s", wrong.body, unknown.body)
			}
			if len(wrong.cookies) != 0 {
				t.Errorf("a failed login set cookies: %v", wrong.cookies)
			}
			form := url.Values{"username": {u.Email}, "password": {"wrong password"}}.Encode()
			e.do(t, req{method: "POST", path: loginPath, body: form, contentType: "application/x-www-form-urlencoded"}).
				want(t, http.StatusUnauthorized, chat.CodeInvalidCredentials)
		})

		t.Run("missing fields", func(t *testing.T) {
			e.do(t, req{method: "POST", path: loginPath, body: map[string]string{"email": u.Email}}).wantField(t, "body.password")
			e.do(t, req{method: "POST", path: loginPath, body: map[string]string{"password": "x"}}).wantField(t, "body.email")
			e.do(t, req{method: "POST", path: loginPath, body: "password=x", contentType: "application/x-www-form-urlencoded"}).
				wantField(t, "body.username")
		})

		t.Run("every login is a session", func(t *testing.T) {
			r := e.do(t, req{method: "GET", path: sessionsPath, token: u.Token})
			r.want(t, http.StatusOK, "")
			if got := len(decode[wireSessions](t, r).Sessions); got < 5 {
				t.Errorf("got %d sessions after sign-up and 4 logins, want at least 5", got)
			}
		})
	})
}

func TestLoginRateLimited(t *testing.T) {
	bothBackends(t, envOptions{rateLimits: true}, func(t *testing.T, e *env) {
		u := e.newUser(t, "Target")
		var last resp
		for i := range 12 {
			last = e.do(t, req{method: "POST", path: loginPath, body: map[string]string{"email": u.Email, "password": "guess " + strconv.Itoa(i)}})
			if last.status == http.StatusTooManyRequests {
				break
			}
			last.want(t, http.StatusUnauthorized, chat.CodeInvalidCredentials)
		}
		last.want(t, http.StatusTooManyRequests, chat.CodeRateLimited)
		if n, err := strconv.Atoi(last.header.Get("Retry-After")); err != nil || n < 1 {
			t.Errorf("Retry-After: got %q, want a number of seconds", last.header.Get("Retry-After"))
		}
		// While limited, even the right password is refused.
		e.do(t, req{method: "POST", path: loginPath, body: map[string]string{"email": u.Email, "password": u.Password}}).
			want(t, http.StatusTooManyRequests, chat.CodeRateLimited)
		// Other accounts are not locked out.
		v := e.newUser(t, "Bystander")
		e.do(t, req{method: "POST", path: loginPath, body: map[string]string{"email": v.Email, "password": v.Password}}).want(t, http.StatusOK, "")
	})
}

type wireSession struct {
	ID         int64  `json:"id"`
	UserAgent  string `json:"user_agent"`
	CreatedAt  string `json:"created_at"`
	LastSeenAt string `json:"last_seen_at"`
	Current    bool   `json:"current"`
}

type wireSessions struct {
	Sessions []wireSession `json:"sessions"`
}

// login signs u in over HTTP with a user agent and returns the answer.
func (e *env) login(t *testing.T, u *user, agent string) resp {
	t.Helper()
	r := e.do(t, req{method: "POST", path: loginPath, body: map[string]string{"email": u.Email, "password": u.Password}, header: map[string]string{"User-Agent": agent}})
	r.want(t, http.StatusOK, "")
	if r.status != http.StatusOK {
		t.FailNow()
	}
	return r
}

func TestRefresh(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		u := e.newUser(t, "Rita")
		first := e.login(t, u, "browser")
		_, r1 := checkAuthCookies(t, first, false)

		// Rotation through the cookie.
		second := e.do(t, req{method: "POST", path: refreshPath, cookies: []*http.Cookie{r1}})
		second.want(t, http.StatusOK, "")
		body := decode[wireTokens](t, second)
		if body.AccessToken == "" || body.TokenType != "bearer" || body.ExpiresIn != int(accessTTL.Seconds()) || body.User != nil {
			t.Errorf("refresh: got %s, want {access_token, token_type, expires_in}", second.body)
		}
		a2, r2 := checkAuthCookies(t, second, false)
		if r2.Value == r1.Value {
			t.Errorf("the refresh token was not rotated")
		}
		if a2.Value != body.AccessToken {
			t.Errorf("the access cookie differs from the access token in the body")
		}
		e.do(t, req{method: "GET", path: mePath, token: body.AccessToken}).want(t, http.StatusOK, "")

		// Rotation through the body.
		third := e.do(t, req{method: "POST", path: refreshPath, body: map[string]string{"refresh_token": r2.Value}})
		third.want(t, http.StatusOK, "")
		a3, r3 := checkAuthCookies(t, third, false)
		e.do(t, req{method: "GET", path: mePath, cookies: []*http.Cookie{a3}}).want(t, http.StatusOK, "")

		// The first token again: theft. The whole session dies, its newest tokens with it.
		e.do(t, req{method: "POST", path: refreshPath, cookies: []*http.Cookie{r1}}).want(t, http.StatusUnauthorized, chat.CodeInvalidRefresh)
		e.do(t, req{method: "GET", path: mePath, cookies: []*http.Cookie{a3}}).want(t, http.StatusUnauthorized, chat.CodeUnauthenticated)
		e.do(t, req{method: "POST", path: refreshPath, cookies: []*http.Cookie{r3}}).want(t, http.StatusUnauthorized, chat.CodeInvalidRefresh)
		// Other sessions of the user live on.
		e.do(t, req{method: "GET", path: mePath, token: u.Token}).want(t, http.StatusOK, "")

		for _, tc := range []struct {
			name string
			r    req
		}{
			{"no token", req{method: "POST", path: refreshPath}},
			{"unknown cookie", req{method: "POST", path: refreshPath, cookies: []*http.Cookie{{Name: "refresh_token", Value: "bogus"}}}},
			{"unknown body token", req{method: "POST", path: refreshPath, body: map[string]string{"refresh_token": "bogus"}}},
			{"empty body token", req{method: "POST", path: refreshPath, body: map[string]string{"refresh_token": ""}}},
			{"huge body token", req{method: "POST", path: refreshPath, body: map[string]string{"refresh_token": strings.Repeat("z", 5000)}}},
			{"an access token", req{method: "POST", path: refreshPath, body: map[string]string{"refresh_token": u.Token}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e.do(t, tc.r).want(t, http.StatusUnauthorized, chat.CodeInvalidRefresh)
			})
		}
	})
}

func TestLogoutAndSessions(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		u := e.newUser(t, "Sam")
		a := e.login(t, u, "agent-a")
		b := e.login(t, u, "agent-b")
		tokA, tokB := decode[wireTokens](t, a).AccessToken, decode[wireTokens](t, b).AccessToken
		_, refA := checkAuthCookies(t, a, false)

		list := func(token string) []wireSession {
			t.Helper()
			r := e.do(t, req{method: "GET", path: sessionsPath, token: token})
			r.want(t, http.StatusOK, "")
			return decode[wireSessions](t, r).Sessions
		}
		sessions := list(tokA)
		if len(sessions) != 3 {
			t.Fatalf("got %d sessions, want 3 (sign-up, a, b): %+v", len(sessions), sessions)
		}
		var idA, idB int64
		current := 0
		for _, s := range sessions {
			checkTime(t, "created_at", s.CreatedAt)
			checkTime(t, "last_seen_at", s.LastSeenAt)
			switch s.UserAgent {
			case "agent-a":
				idA = s.ID
			case "agent-b":
				idB = s.ID
			}
			if s.Current {
				current++
				if s.UserAgent != "agent-a" {
					t.Errorf("the current session is %q, want agent-a", s.UserAgent)
				}
			}
		}
		if current != 1 || idA == 0 || idB == 0 {
			t.Errorf("got %+v, want agent-a and agent-b, agent-a current", sessions)
		}

		// Another user cannot see or end u's sessions.
		other := e.newUser(t, "Other")
		e.do(t, req{method: "DELETE", path: sessionsPath + "/" + strconv.FormatInt(idB, 10), token: other.Token}).
			want(t, http.StatusNotFound, chat.CodeNotFound)
		e.do(t, req{method: "DELETE", path: sessionsPath + "/" + strconv.FormatInt(other.SessionID, 10), token: tokA}).
			want(t, http.StatusNotFound, chat.CodeNotFound)
		e.do(t, req{method: "GET", path: mePath, token: other.Token}).want(t, http.StatusOK, "")
		e.do(t, req{method: "GET", path: mePath, token: tokB}).want(t, http.StatusOK, "")
		e.do(t, req{method: "DELETE", path: sessionsPath + "/987654321", token: tokA}).want(t, http.StatusNotFound, chat.CodeNotFound)

		// a ends b.
		r := e.do(t, req{method: "DELETE", path: sessionsPath + "/" + strconv.FormatInt(idB, 10), token: tokA})
		r.want(t, http.StatusNoContent, "")
		if len(r.body) != 0 {
			t.Errorf("204 with a body: %s", r.body)
		}
		e.do(t, req{method: "GET", path: mePath, token: tokB}).want(t, http.StatusUnauthorized, chat.CodeUnauthenticated)
		e.do(t, req{method: "DELETE", path: sessionsPath + "/" + strconv.FormatInt(idB, 10), token: tokA}).want(t, http.StatusNotFound, chat.CodeNotFound)
		if got := list(tokA); len(got) != 2 || slices.ContainsFunc(got, func(s wireSession) bool { return s.ID == idB }) {
			t.Errorf("after ending b: got %+v, want 2 sessions without b", got)
		}

		// a signs out: cookies cleared, its tokens dead, the sign-up session alive.
		out := e.do(t, req{method: "POST", path: "/api/v1/auth/logout", token: tokA})
		out.want(t, http.StatusNoContent, "")
		for _, name := range []string{"access_token", "refresh_token"} {
			if c := cookie(out.cookies, name); c == nil || c.Value != "" || c.MaxAge >= 0 {
				t.Errorf("logout: cookie %s is %v, want it cleared", name, c)
			}
		}
		e.do(t, req{method: "GET", path: mePath, token: tokA}).want(t, http.StatusUnauthorized, chat.CodeUnauthenticated)
		e.do(t, req{method: "POST", path: refreshPath, cookies: []*http.Cookie{refA}}).want(t, http.StatusUnauthorized, chat.CodeInvalidRefresh)
		e.do(t, req{method: "GET", path: mePath, token: u.Token}).want(t, http.StatusOK, "")
		e.do(t, req{method: "POST", path: "/api/v1/auth/logout", token: tokA}).want(t, http.StatusUnauthorized, chat.CodeUnauthenticated)

		// Ending one's own session over DELETE signs this device out like logout.
		d := e.login(t, u, "agent-d")
		tokD := decode[wireTokens](t, d).AccessToken
		var idD int64
		for _, s := range list(tokD) {
			if s.Current {
				idD = s.ID
			}
		}
		self := e.do(t, req{method: "DELETE", path: sessionsPath + "/" + strconv.FormatInt(idD, 10), token: tokD})
		self.want(t, http.StatusNoContent, "")
		if c := cookie(self.cookies, "access_token"); c == nil || c.MaxAge >= 0 {
			t.Errorf("ending the current session: access cookie %v, want it cleared", c)
		}
		e.do(t, req{method: "GET", path: mePath, token: tokD}).want(t, http.StatusUnauthorized, chat.CodeUnauthenticated)

		// logout-all ends every session of the user, and only theirs.
		c := e.login(t, u, "agent-c")
		tokC := decode[wireTokens](t, c).AccessToken
		_, refC := checkAuthCookies(t, c, false)
		all := e.do(t, req{method: "POST", path: "/api/v1/auth/logout-all", token: tokC})
		all.want(t, http.StatusNoContent, "")
		if c := cookie(all.cookies, "access_token"); c == nil || c.MaxAge >= 0 {
			t.Errorf("logout-all: access cookie %v, want it cleared", c)
		}
		for _, tok := range []string{u.Token, tokC} {
			e.do(t, req{method: "GET", path: mePath, token: tok}).want(t, http.StatusUnauthorized, chat.CodeUnauthenticated)
		}
		e.do(t, req{method: "POST", path: refreshPath, body: map[string]string{"refresh_token": refC.Value}}).want(t, http.StatusUnauthorized, chat.CodeInvalidRefresh)
		e.do(t, req{method: "POST", path: refreshPath, body: map[string]string{"refresh_token": u.Refresh}}).want(t, http.StatusUnauthorized, chat.CodeInvalidRefresh)
		e.do(t, req{method: "GET", path: mePath, token: other.Token}).want(t, http.StatusOK, "")

		for _, path := range []string{"/api/v1/auth/logout", "/api/v1/auth/logout-all"} {
			e.do(t, req{method: "POST", path: path}).want(t, http.StatusUnauthorized, chat.CodeUnauthenticated)
		}
		e.do(t, req{method: "GET", path: sessionsPath}).want(t, http.StatusUnauthorized, chat.CodeUnauthenticated)
		e.do(t, req{method: "DELETE", path: sessionsPath + "/1"}).want(t, http.StatusUnauthorized, chat.CodeUnauthenticated)
	})
}

// TestSessionsOfOneUserOnly checks that the session list shows the caller's sessions only.
func TestSessionsOfOneUserOnly(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		u, v := e.newUser(t, "U"), e.newUser(t, "V")
		r := e.do(t, req{method: "GET", path: sessionsPath, token: v.Token})
		r.want(t, http.StatusOK, "")
		got := decode[wireSessions](t, r).Sessions
		if len(got) != 1 || got[0].ID != v.SessionID || !got[0].Current || got[0].UserAgent != "fixture" {
			t.Errorf("got %+v, want only v's own session %d", got, v.SessionID)
		}
		if _, _, err := e.svc.Login(context.Background(), chat.SignIn{Email: u.Email, Password: u.Password}); err != nil {
			t.Fatal(err)
		}
		r = e.do(t, req{method: "GET", path: sessionsPath, token: v.Token})
		if got := decode[wireSessions](t, r).Sessions; len(got) != 1 {
			t.Errorf("another user's login shows in v's sessions: %+v", got)
		}
	})
}

// TestRefreshRetryBoundToClient: the retry grace of a lost refresh answer is honoured only for
// the client (user agent and address) that made the rotation. A replayed stolen token used to
// yield a working session for up to 30 s after each rotation, from anywhere.
func TestRefreshRetryBoundToClient(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		refresh := func(token, agent string) resp {
			return e.do(t, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": token},
				header: map[string]string{"User-Agent": agent}})
		}
		// The owner rotates; a thief replays the old token at once from another client.
		ann := e.newUser(t, "Ann")
		owner := refresh(ann.Refresh, "Owner Browser/1.0")
		owner.want(t, http.StatusOK, "")
		refresh(ann.Refresh, "Thief Tool/2.0").want(t, http.StatusUnauthorized, chat.CodeInvalidRefresh)
		if s, err := e.store.SessionByID(context.Background(), ann.SessionID); err != nil || !s.Revoked {
			t.Errorf("a replay from another client: session %+v, %v; want it revoked", s, err)
		}
		if rc := cookie(owner.cookies, "refresh_token"); rc != nil {
			refresh(rc.Value, "Owner Browser/1.0").want(t, http.StatusUnauthorized, chat.CodeInvalidRefresh)
		}

		// The same client retrying (its answer was lost) keeps its session.
		ben := e.newUser(t, "Ben")
		refresh(ben.Refresh, "Owner Browser/1.0").want(t, http.StatusOK, "")
		retry := refresh(ben.Refresh, "Owner Browser/1.0")
		retry.want(t, http.StatusOK, "")
		if s, err := e.store.SessionByID(context.Background(), ben.SessionID); err != nil || s.Revoked {
			t.Errorf("a retry from the same client: session %+v, %v; want it live", s, err)
		}
	})
}

// TestRefreshAtOnce: the tabs of one browser refresh with one refresh token at the same
// moment (their sockets all close with 4001 when the access token they share expires; without
// Web Locks, over plain http anywhere but localhost, nothing serializes them). Every answer
// must carry the same new token: the tabs share one cookie jar, which keeps whichever answer
// came last. Each answer carried a token of its own, the third presentation revoked the
// session, and a jar left with the first answer's token revoked it at the next refresh.
func TestRefreshAtOnce(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		u := e.newUser(t, "Tab")
		const tabs = 4
		answers := make([]resp, tabs)
		var wg sync.WaitGroup
		for i := range tabs {
			wg.Go(func() {
				answers[i] = e.do(t, req{method: "POST", path: refreshPath, cookies: []*http.Cookie{{Name: "refresh_token", Value: u.Refresh}},
					header: map[string]string{"User-Agent": "Browser/1.0"}})
			})
		}
		wg.Wait()
		var next string
		for i, a := range answers {
			a.want(t, http.StatusOK, "")
			access, refresh := checkAuthCookies(t, a, false)
			if i == 0 {
				next = refresh.Value
			} else if refresh.Value != next {
				t.Errorf("answer %d carries refresh token %q, answer 1 %q: the cookie jar keeps whichever came last", i+1, refresh.Value, next)
			}
			e.do(t, req{method: "GET", path: mePath, cookies: []*http.Cookie{access}}).want(t, http.StatusOK, "")
		}
		// The token the jar holds rotates on; the one all of them presented is theft from now on.
		later := e.do(t, req{method: "POST", path: refreshPath, cookies: []*http.Cookie{{Name: "refresh_token", Value: next}},
			header: map[string]string{"User-Agent": "Browser/1.0"}})
		later.want(t, http.StatusOK, "")
		e.do(t, req{method: "POST", path: refreshPath, cookies: []*http.Cookie{{Name: "refresh_token", Value: u.Refresh}},
			header: map[string]string{"User-Agent": "Browser/1.0"}}).want(t, http.StatusUnauthorized, chat.CodeInvalidRefresh)
		if s, err := e.store.SessionByID(context.Background(), u.SessionID); err != nil || !s.Revoked {
			t.Errorf("the old token after the session moved on: session %+v, %v; want it revoked", s, err)
		}
	})
}

// TestLoginRefusesWhatItWouldChange: a login whose text is not UTF-8, in JSON or in the form,
// or holds an escaped lone surrogate, is refused with 422 and the error every other JSON body
// gets (sign-up's here), before any password is checked. JSON's was read with U+FFFD in place
// of the bad bytes and the form's kept them, both then checked as a password: 401.
func TestLoginRefusesWhatItWouldChange(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		u := e.newUser(t, "Ann")
		const form = "application/x-www-form-urlencoded"
		notUTF8 := e.do(t, req{method: "POST", path: registerPath, body: []byte(`{"email":"x@example.test","name":"X","password":"pass` + "\xff" + `word"}`)})
		surrogate := e.do(t, req{method: "POST", path: registerPath, body: `{"email":"x@example.test","name":"X","password":"pass\ud800word"}`})
		for _, tc := range []struct {
			name string
			r    req
			like resp
		}{
			{"a JSON password not UTF-8", req{method: "POST", path: loginPath, body: []byte(`{"email":"` + u.Email + `","password":"` + fixturePassword + "\xff" + `"}`)}, notUTF8},
			{"a JSON email not UTF-8", req{method: "POST", path: loginPath, body: []byte(`{"email":"` + "\xff" + u.Email + `","password":"x"}`)}, notUTF8},
			{"a JSON password with a lone surrogate", req{method: "POST", path: loginPath, body: `{"email":"` + u.Email + `","password":"` + fixturePassword + `\udc00"}`}, surrogate},
			{"a form password not UTF-8", req{method: "POST", path: loginPath, contentType: form,
				body: "grant_type=password&username=" + url.QueryEscape(u.Email) + "&password=" + url.QueryEscape(fixturePassword) + "%FF"}, notUTF8},
			{"a form username not UTF-8", req{method: "POST", path: loginPath, contentType: form, body: "username=%FF" + url.QueryEscape(u.Email) + "&password=x"}, notUTF8},
			{"another form field not UTF-8", req{method: "POST", path: loginPath, contentType: form,
				body: "username=" + url.QueryEscape(u.Email) + "&password=" + url.QueryEscape(fixturePassword) + "&scope=%C3%28"}, notUTF8},
			// Each half of "é" alone (the first password is the one read), which joined are UTF-8.
			{"a form password repeated in halves not UTF-8", req{method: "POST", path: loginPath, contentType: form,
				body: "username=" + url.QueryEscape(u.Email) + "&password=%C3&password=%A9"}, notUTF8},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got := e.do(t, tc.r)
				got.want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)
				if gp, wp := got.problem(t), tc.like.problem(t); len(gp.Errors) != 1 || len(wp.Errors) != 1 || gp.Errors[0] != wp.Errors[0] || gp.Detail != wp.Detail {
					t.Errorf("login's problem: %s\nwant sign-up's for the same body: %s", got.body, tc.like.body)
				}
			})
		}
		// The account still signs in: nothing of that was counted as a wrong password.
		e.do(t, req{method: "POST", path: loginPath, body: map[string]string{"email": u.Email, "password": fixturePassword}}).want(t, http.StatusOK, "")
	})
}
