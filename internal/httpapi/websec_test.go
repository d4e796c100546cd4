package httpapi_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/wschat/chat/internal/chat"
)

// The browser-facing defences, proven with what a foreign page can make a browser send. The
// cookie attributes are checked in auth_test.go (checkAuthCookies), the Origin check of JSON
// requests in security_test.go, the WebSocket handshake in internal/hub/authz_test.go.

// TestSecurityHeadersOnEveryAnswer: successes, errors, unknown paths and the docs all carry a
// CSP that forbids framing and foreign content, nosniff, DENY and a same-origin referrer.
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", envOptions{})
	a := e.newUser(t, "Ann")
	for _, r := range []req{
		{method: "GET", path: "/api/v1/users/me", token: a.Token},
		{method: "GET", path: "/api/v1/users/me"},
		{method: "POST", path: "/api/v1/chats", token: a.Token, body: `{"kind":`},
		{method: "GET", path: "/api/v1/nowhere"},
		{method: "GET", path: "/healthz"},
		{method: "GET", path: "/openapi.json"},
		{method: "GET", path: "/docs"},
	} {
		res := e.do(t, r)
		csp := res.header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'self'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s %s (%d): CSP %q lacks %q", r.method, r.path, res.status, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s %s: CSP %q allows inline or eval'd code", r.method, r.path, csp)
		}
		for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"} {
			if got := res.header.Get(k); got != want {
				t.Errorf("%s %s (%d): %s %q, want %q", r.method, r.path, res.status, k, got, want)
			}
		}
	}
}

// TestCORSClosedByDefault: cross-origin pages get no Access-Control-Allow-* header, so the
// browser refuses their preflights and keeps every answer from them; only the origins of
// CHAT_ALLOWED_ORIGINS are let in, with credentials.
func TestCORSClosedByDefault(t *testing.T) {
	t.Parallel()
	closed := newEnv(t, "sqlite", envOptions{})
	open := newEnv(t, "sqlite", envOptions{allowedOrigins: []string{"https://app.example"}})
	preflight := func(origin string) req {
		return req{method: "OPTIONS", path: "/api/v1/chats", header: map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, authorization"}}
	}
	noCORS := func(name string, r resp) {
		t.Helper()
		for k := range r.header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("%s: %d with %s: %q", name, r.status, k, r.header.Get(k))
			}
		}
	}
	for _, origin := range []string{"https://evil.example", "null", "https://app.example"} {
		noCORS("no allow-list, preflight from "+origin, closed.do(t, preflight(origin)))
	}
	a := open.newUser(t, "Ann")
	noCORS("preflight from a foreign origin", open.do(t, preflight("https://evil.example")))
	noCORS("preflight from a look-alike", open.do(t, preflight("https://app.example.evil.example")))
	noCORS("preflight from the origin over http", open.do(t, preflight("http://app.example")))
	noCORS("read from a foreign origin", open.do(t, req{method: "GET", path: "/api/v1/chats", token: a.Token, header: map[string]string{"Origin": "https://evil.example"}}))

	res := open.do(t, preflight("https://app.example"))
	if res.status != http.StatusNoContent {
		t.Errorf("allowed preflight: %d, want 204", res.status)
	}
	for k, want := range map[string]string{"Access-Control-Allow-Origin": "https://app.example", "Access-Control-Allow-Credentials": "true"} {
		if got := res.header.Get(k); got != want {
			t.Errorf("allowed preflight: %s %q, want %q", k, got, want)
		}
	}
	methods, headers := res.header.Get("Access-Control-Allow-Methods"), strings.ToLower(res.header.Get("Access-Control-Allow-Headers"))
	if !strings.Contains(methods, "POST") || !strings.Contains(headers, "content-type") || !strings.Contains(headers, "authorization") {
		t.Errorf("allowed preflight: methods %q, headers %q", methods, headers)
	}
	res = open.do(t, req{method: "GET", path: "/api/v1/chats", token: a.Token, header: map[string]string{"Origin": "https://app.example"}})
	if res.status != http.StatusOK || res.header.Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(strings.Join(res.header.Values("Vary"), ","), "Origin") {
		t.Errorf("allowed read: %d, %v", res.status, res.header)
	}
}

// TestForgedCrossSiteRequests sends, with the victim's cookies, what a foreign page's forms and
// fetches make a browser send: every one is refused and nothing is stored or signed in.
func TestForgedCrossSiteRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", envOptions{})
	a := e.newUser(t, "Ann")
	g := e.group(t, a, "Team", false)
	access := &http.Cookie{Name: "access_token", Value: a.Token}
	refresh := &http.Cookie{Name: "refresh_token", Value: a.Refresh}
	stored := func() int {
		t.Helper()
		return len(decode[wireHistory](t, e.do(t, req{method: "GET", path: chatPath(g, "/messages"), token: a.Token})).Messages)
	}
	before := stored()
	// A text/plain form can carry a JSON-looking body: {"body":"csrf","client_id":"x","pad":"="}.
	jsonish := `{"body":"csrf","client_id":"x","pad":"="}`
	for _, tc := range []struct {
		name        string
		path        string
		body        string
		contentType string
		header      map[string]string
		cookies     []*http.Cookie
	}{
		{"text/plain form", chatPath(g, "/messages"), jsonish, "text/plain", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, []*http.Cookie{access}},
		{"urlencoded form", chatPath(g, "/messages"), "body=csrf&client_id=y", "application/x-www-form-urlencoded", map[string]string{"Origin": "https://evil.example"}, []*http.Cookie{access}},
		{"multipart form", chatPath(g, "/messages"), "--b\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\ncsrf\r\n--b--\r\n", "multipart/form-data; boundary=b", map[string]string{"Origin": "https://evil.example"}, []*http.Cookie{access}},
		{"form from a sandboxed frame", chatPath(g, "/messages"), jsonish, "text/plain", map[string]string{"Origin": "null"}, []*http.Cookie{access}},
		{"form with a Referer only", chatPath(g, "/messages"), jsonish, "text/plain", map[string]string{"Referer": "https://evil.example/attack.html"}, []*http.Cookie{access}},
		{"form with Sec-Fetch-Site only", chatPath(g, "/messages"), jsonish, "text/plain", map[string]string{"Sec-Fetch-Site": "cross-site"}, []*http.Cookie{access}},
		{"fetch with JSON", chatPath(g, "/messages"), `{"body":"csrf","client_id":"z"}`, "application/json", map[string]string{"Origin": "https://evil.example"}, []*http.Cookie{access}},
		{"leave", chatPath(g, "/leave"), "", "text/plain", map[string]string{"Origin": "https://evil.example"}, []*http.Cookie{access}},
		{"logout-all", "/api/v1/auth/logout-all", "", "text/plain", map[string]string{"Origin": "https://evil.example"}, []*http.Cookie{access}},
		{"refresh (burns the session)", "/api/v1/auth/refresh", "", "text/plain", map[string]string{"Origin": "https://evil.example"}, []*http.Cookie{refresh}},
		{"login as the attacker", "/api/v1/auth/login", "username=attacker%40evil.example&password=password", "application/x-www-form-urlencoded", map[string]string{"Origin": "https://evil.example"}, nil},
		{"sign up as the attacker", "/api/v1/auth/register", `{"email":"x@evil.example","name":"X","password":"password","pad":"="}`, "text/plain", map[string]string{"Origin": "https://evil.example"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req{method: "POST", path: tc.path, contentType: tc.contentType, header: tc.header, cookies: tc.cookies}
			if tc.body != "" {
				r.body = tc.body
			}
			res := e.do(t, r)
			res.want(t, http.StatusForbidden, chat.CodeForbidden)
			if len(res.cookies) > 0 {
				t.Errorf("a refused request set cookies: %v", res.cookies)
			}
		})
	}
	if after := stored(); after != before {
		t.Errorf("%d messages stored by forged requests", after-before)
	}
	e.do(t, req{method: "GET", path: chatPath(g, ""), token: a.Token}).want(t, http.StatusOK, "") // still a member, still signed in

	// Even from our own page, a form's content type is not taken for JSON.
	r := e.do(t, req{method: "POST", path: chatPath(g, "/messages"), body: jsonish, contentType: "text/plain", cookies: []*http.Cookie{access}, header: map[string]string{"Origin": e.srv.URL}})
	if r.status != http.StatusUnsupportedMediaType {
		t.Errorf("same-origin text/plain: %d, want 415", r.status)
	}
}

// TestDNSRebinding: a foreign page whose DNS name was rebound to 127.0.0.1 is its own origin to
// the browser, so it passes the Origin check; a server on a loopback address refuses every
// request under such a name (the login with a known password first), and answers its own
// names, the hosts of CHAT_ALLOWED_ORIGINS and any name a trusted proxy passes on.
func TestDNSRebinding(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", envOptions{allowedOrigins: []string{"https://App.Example"}})
	proxied := newEnv(t, "sqlite", envOptions{trustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	port := e.srv.URL[strings.LastIndexByte(e.srv.URL, ':'):]
	for _, tc := range []struct {
		e      *env
		host   string
		wantOK bool
	}{
		{e, "rebind.attacker.example" + port, false},
		{e, "rebind.attacker.example.", false},
		{e, "localhost.attacker.example" + port, false},
		{e, "127.0.0.1.attacker.example", false},
		{e, "127.0.0.1" + port, true},
		{e, "[::1]" + port, true},
		{e, "localhost" + port, true},
		{e, "LOCALHOST.", true},
		{e, "chat.localhost" + port, true},
		{e, "app.example", true},
		{proxied, "chat.example.com", true},
	} {
		t.Run(tc.host, func(t *testing.T) {
			u := tc.e.newUser(t, "Ann")
			origin := map[string]string{"Host": tc.host, "Origin": "http://" + tc.host}
			login := tc.e.do(t, req{method: "POST", path: loginPath, header: origin,
				body: map[string]string{"email": u.Email, "password": u.Password}})
			chats := tc.e.do(t, req{method: "GET", path: "/api/v1/chats", token: u.Token, header: origin})
			if tc.wantOK {
				login.want(t, http.StatusOK, "")
				chats.want(t, http.StatusOK, "")
				return
			}
			login.want(t, http.StatusForbidden, chat.CodeForbidden)
			chats.want(t, http.StatusForbidden, chat.CodeForbidden)
			// Beyond the operations: the WebSocket handshake (426 without its Upgrade
			// headers, when let through) and the pages.
			for _, path := range []string{"/api/v1/ws", "/healthz"} {
				hr, err := http.NewRequest("GET", tc.e.srv.URL+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				hr.Host = tc.host
				hr.Header.Set("Authorization", "Bearer "+u.Token)
				res, err := tc.e.srv.Client().Do(hr)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != http.StatusForbidden {
					t.Errorf("GET %s under Host %q: got %d, want 403", path, tc.host, res.StatusCode)
				}
			}
			if len(login.cookies) != 0 {
				t.Errorf("refused login set cookies %v", login.cookies)
			}
		})
	}
}

// TestHSTSOverHTTPS: an answer over https tells the browser to come back only over https;
// one over plain http says nothing (a browser ignores it there, and a server reached over
// http may not have https at all), nor does a forged X-Forwarded-Proto from a client that is
// not a trusted proxy.
func TestHSTSOverHTTPS(t *testing.T) {
	t.Parallel()
	tls := newEnv(t, "sqlite", envOptions{tls: true})
	plain := newEnv(t, "sqlite", envOptions{})
	proxied := newEnv(t, "sqlite", envOptions{trustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	forwarded := map[string]string{"X-Forwarded-Proto": "https"}
	for _, tc := range []struct {
		name string
		e    *env
		r    req
		want string
	}{
		{"https, the client", tls, req{method: "GET", path: "/healthz"}, "max-age=63072000"},
		{"https, an error", tls, req{method: "GET", path: "/api/v1/users/me"}, "max-age=63072000"},
		{"https through a trusted proxy", proxied, req{method: "GET", path: "/healthz", header: forwarded}, "max-age=63072000"},
		{"http", plain, req{method: "GET", path: "/healthz"}, ""},
		{"http, X-Forwarded-Proto from a client", plain, req{method: "GET", path: "/healthz", header: forwarded}, ""},
	} {
		if got := tc.e.do(t, tc.r).header.Get("Strict-Transport-Security"); got != tc.want {
			t.Errorf("%s: Strict-Transport-Security %q, want %q", tc.name, got, tc.want)
		}
	}
}
