package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"

	"github.com/wschat/chat/internal/chat"
)

// TestBadInput sends malformed, hostile and out-of-range input to every kind of endpoint: the
// answer is always a 4xx problem (never a 5xx; do checks that), with the status API.md gives.
func TestBadInput(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		a, b := e.newUser(t, "Ann"), e.newUser(t, "Ben")
		g := e.group(t, a, "Team", true, b)
		e.send(t, b, g, "hello")
		huge := `{"body":"` + strings.Repeat("x", 70<<10) + `","client_id":"huge"}`
		const overflow = "99999999999999999999"
		msgs := chatPath(g, "/messages")
		const invalid, notFound, tooLarge = http.StatusUnprocessableEntity, http.StatusNotFound, http.StatusRequestEntityTooLarge

		for _, tc := range []struct {
			name string
			r    req
			want []int // acceptable statuses; the first is what API.md prescribes
		}{
			// Malformed and mistyped JSON.
			{"malformed JSON", req{method: "POST", path: "/api/v1/chats", body: `{"kind":`}, []int{invalid}},
			{"not an object", req{method: "POST", path: "/api/v1/chats", body: `[1,2,3]`}, []int{invalid}},
			{"JSON null", req{method: "POST", path: "/api/v1/chats", body: `null`}, []int{invalid}},
			{"empty body", req{method: "POST", path: "/api/v1/chats", body: ``}, []int{invalid}},
			{"title of the wrong type", req{method: "POST", path: "/api/v1/chats", body: `{"kind":"group","title":123}`}, []int{invalid}},
			{"member_ids of the wrong type", req{method: "POST", path: "/api/v1/chats", body: `{"kind":"group","title":"x","member_ids":"1,2"}`}, []int{invalid}},
			{"member id as a float", req{method: "POST", path: "/api/v1/chats", body: `{"kind":"group","title":"x","member_ids":[1.5]}`}, []int{invalid}},
			{"member id overflowing", req{method: "POST", path: "/api/v1/chats", body: `{"kind":"group","title":"x","member_ids":[` + overflow + `]}`}, []int{invalid}},
			{"negative member id", req{method: "POST", path: "/api/v1/chats", body: `{"kind":"private","member_ids":[-5]}`}, []int{invalid}},
			{"member id 0", req{method: "POST", path: "/api/v1/chats", body: `{"kind":"group","title":"x","member_ids":[0]}`}, []int{invalid}},
			{"body of the wrong type", req{method: "POST", path: msgs, body: `{"body":["x"],"client_id":"t1"}`}, []int{invalid}},
			{"seq as a string", req{method: "POST", path: chatPath(g, "/read"), body: `{"seq":"1"}`}, []int{invalid}},
			{"seq as a float", req{method: "POST", path: chatPath(g, "/read"), body: `{"seq":1.5}`}, []int{invalid}},
			{"seq overflowing", req{method: "POST", path: chatPath(g, "/read"), body: `{"seq":` + overflow + `}`}, []int{invalid}},
			{"negative seq", req{method: "POST", path: chatPath(g, "/read"), body: `{"seq":-1}`}, []int{invalid}},
			{"user_id as a string", req{method: "POST", path: chatPath(g, "/members"), body: `{"user_id":"2"}`}, []int{invalid}},
			{"user_id overflowing", req{method: "POST", path: chatPath(g, "/members"), body: `{"user_id":` + overflow + `}`}, []int{invalid}},
			{"negative user_id", req{method: "POST", path: chatPath(g, "/members"), body: `{"user_id":-1}`}, []int{invalid, notFound}},
			// Not UTF-8: refused, not stored with U+FFFD in its place (encoding/json's way).
			{"a message body not UTF-8", req{method: "POST", path: msgs, body: "{\"body\":\"b\xff\",\"client_id\":\"utf\"}"}, []int{invalid}},
			{"a title not UTF-8", req{method: "POST", path: "/api/v1/chats", body: "{\"kind\":\"group\",\"title\":\"T\xff\"}"}, []int{invalid}},
			{"a name not UTF-8", req{method: "PATCH", path: "/api/v1/users/me", body: "{\"name\":\"First\xff\"}"}, []int{invalid}},
			{"a lone surrogate escaped in a body", req{method: "POST", path: msgs, body: `{"body":"x\ud800y","client_id":"sur"}`}, []int{invalid}},
			{"a lone surrogate escaped in a name", req{method: "PATCH", path: "/api/v1/users/me", body: `{"name":"Ann\ud83d"}`}, []int{invalid}},
			{"deeply nested JSON", req{method: "POST", path: msgs, body: strings.Repeat("[", 5000) + strings.Repeat("]", 5000)}, []int{invalid}},
			{"JSON sent as text/plain", req{method: "POST", path: "/api/v1/chats", body: `{"kind":"group","title":"x"}`, contentType: "text/plain"}, []int{http.StatusUnsupportedMediaType, invalid, http.StatusCreated}},
			{"form sent to a JSON endpoint", req{method: "POST", path: "/api/v1/chats", body: "kind=group&title=x", contentType: "application/x-www-form-urlencoded"}, []int{http.StatusUnsupportedMediaType, invalid}},
			{"login with a malformed body", req{method: "POST", path: loginPath, body: `{"email":`}, []int{invalid}},
			{"login with an email of the wrong type", req{method: "POST", path: loginPath, body: `{"email":1,"password":"x"}`}, []int{invalid}},
			{"login with a malformed form", req{method: "POST", path: loginPath, body: "username=%zz&password=x", contentType: "application/x-www-form-urlencoded"}, []int{invalid}},
			{"login as XML", req{method: "POST", path: loginPath, body: "<login/>", contentType: "application/xml"}, []int{http.StatusUnsupportedMediaType}},
			{"login as text", req{method: "POST", path: loginPath, body: `{"email":"a@b.c","password":"x"}`, contentType: "text/plain"}, []int{http.StatusUnsupportedMediaType}},
			{"register with a malformed body", req{method: "POST", path: registerPath, body: `{"email":"a@b.c",`}, []int{invalid}},
			{"refresh with a malformed body", req{method: "POST", path: refreshPath, body: `{"refresh_token":`}, []int{invalid, http.StatusUnauthorized}},
			{"refresh with a token of the wrong type", req{method: "POST", path: refreshPath, body: `{"refresh_token":5}`}, []int{invalid, http.StatusUnauthorized}},

			// Bodies over 64 KiB.
			{"huge message", req{method: "POST", path: msgs, body: huge}, []int{tooLarge, invalid}},
			{"huge login", req{method: "POST", path: loginPath, body: `{"email":"a@b.c","password":"` + strings.Repeat("p", 70<<10) + `"}`}, []int{tooLarge, invalid}},
			{"huge register", req{method: "POST", path: registerPath, body: `{"email":"a@b.c","name":"x","password":"` + strings.Repeat("p", 70<<10) + `"}`}, []int{tooLarge, invalid}},
			{"huge refresh", req{method: "POST", path: refreshPath, body: `{"refresh_token":"` + strings.Repeat("r", 70<<10) + `"}`}, []int{tooLarge, invalid}},
			{"huge group", req{method: "POST", path: "/api/v1/chats", body: `{"kind":"group","title":"` + strings.Repeat("t", 70<<10) + `"}`}, []int{tooLarge, invalid}},

			// Unknown, negative and huge ids, seqs and limits.
			{"unknown chat", req{method: "GET", path: chatPath(987654321, "")}, []int{notFound}},
			{"chat id zero", req{method: "GET", path: "/api/v1/chats/0"}, []int{invalid, notFound}},
			{"negative chat id", req{method: "GET", path: "/api/v1/chats/-1"}, []int{invalid, notFound}},
			{"chat id overflowing", req{method: "GET", path: "/api/v1/chats/" + overflow}, []int{invalid, notFound}},
			{"chat id not a number", req{method: "GET", path: "/api/v1/chats/abc"}, []int{invalid, notFound}},
			{"chat id max int64", req{method: "GET", path: "/api/v1/chats/9223372036854775807"}, []int{notFound}},
			{"send to max int64", req{method: "POST", path: "/api/v1/chats/9223372036854775807/messages", body: `{"body":"x","client_id":"m"}`}, []int{notFound}},
			{"read max int64 seq", req{method: "POST", path: chatPath(g, "/read"), body: `{"seq":9223372036854775807}`}, []int{http.StatusOK}},
			{"user id overflowing", req{method: "GET", path: "/api/v1/users/" + overflow}, []int{invalid, notFound}},
			{"unknown user", req{method: "GET", path: "/api/v1/users/987654321"}, []int{notFound}},
			{"session id overflowing", req{method: "DELETE", path: sessionsPath + "/" + overflow}, []int{invalid, notFound}},
			{"limit overflowing", req{method: "GET", path: msgs + "?limit=" + overflow}, []int{invalid}},
			{"before_seq overflowing", req{method: "GET", path: msgs + "?before_seq=" + overflow}, []int{invalid}},
			{"after_seq overflowing", req{method: "GET", path: msgs + "?after_seq=" + overflow}, []int{invalid}},
			{"negative before_seq", req{method: "GET", path: msgs + "?before_seq=-3"}, []int{invalid}},
			{"negative after_seq", req{method: "GET", path: msgs + "?after_seq=-3"}, []int{invalid}},
			{"user search limit overflowing", req{method: "GET", path: "/api/v1/users?limit=" + overflow}, []int{invalid}},
			{"unknown endpoint", req{method: "GET", path: "/api/v1/nothing"}, []int{notFound}},
			{"wrong method", req{method: "PUT", path: chatPath(g, "")}, []int{http.StatusMethodNotAllowed}},

			// Invalid UTF-8 and NUL characters (PostgreSQL cannot store NUL).
			{"search with invalid UTF-8", req{method: "GET", path: "/api/v1/users?q=%FF%FE"}, []int{invalid}},
			{"search with NUL", req{method: "GET", path: "/api/v1/users?q=a%00b"}, []int{invalid}},
			{"discover with invalid UTF-8", req{method: "GET", path: "/api/v1/chats/discover?q=%C3%28"}, []int{invalid}},
			{"discover with NUL", req{method: "GET", path: "/api/v1/chats/discover?q=%00"}, []int{invalid}},
			{"message with NUL", req{method: "POST", path: msgs, body: `{"body":"a\u0000b","client_id":"nul1"}`}, []int{invalid}},
			{"client id with NUL", req{method: "POST", path: msgs, body: `{"body":"ab","client_id":"n\u0000l"}`}, []int{invalid}},
			{"title with NUL", req{method: "POST", path: "/api/v1/chats", body: `{"kind":"group","title":"a\u0000b"}`}, []int{invalid}},
			{"register with a NUL name", req{method: "POST", path: registerPath, body: `{"email":"nul@example.test","name":"a\u0000b","password":"password1"}`}, []int{invalid}},
			{"register with a NUL email", req{method: "POST", path: registerPath, body: `{"email":"n\u0000l@example.test","name":"n","password":"password1"}`}, []int{invalid}},
			{"register with a NUL password", req{method: "POST", path: registerPath, body: `{"email":"nulpw@example.test","name":"n","password":"pass\u0000word"}`}, []int{invalid}},
			{"login with a NUL email", req{method: "POST", path: loginPath, body: `{"email":"a\u0000@example.test","password":"password1"}`}, []int{http.StatusUnauthorized, invalid}},
			{"login with a NUL password", req{method: "POST", path: loginPath, body: `{"email":"a@example.test","password":"pass\u0000word"}`}, []int{http.StatusUnauthorized, invalid}},
			{"form login with a NUL username", req{method: "POST", path: loginPath, body: "username=a%00b%40example.test&password=x", contentType: "application/x-www-form-urlencoded"}, []int{http.StatusUnauthorized, invalid}},
			{"form login with invalid UTF-8", req{method: "POST", path: loginPath, body: "username=%FF%40example.test&password=x", contentType: "application/x-www-form-urlencoded"}, []int{invalid}},
			{"login with invalid UTF-8 in JSON", req{method: "POST", path: loginPath, body: []byte("{\"email\":\"\xff@example.test\",\"password\":\"x\"}")}, []int{invalid}},
			{"refresh with NUL", req{method: "POST", path: refreshPath, body: `{"refresh_token":"\u0000"}`}, []int{http.StatusUnauthorized, invalid}},
			{"refresh cookie with invalid UTF-8", req{method: "POST", path: refreshPath, header: map[string]string{"Cookie": "refresh_token=\xff\xfe"}}, []int{http.StatusUnauthorized, invalid}},
			{"bearer token of garbage", req{method: "GET", path: mePath, header: map[string]string{"Authorization": "Bearer \xff.\xfe.x"}}, []int{http.StatusUnauthorized}},
			{"authorization of another scheme", req{method: "GET", path: mePath, header: map[string]string{"Authorization": "Basic YTpi"}}, []int{http.StatusUnauthorized}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := tc.r
				if r.token == "" && r.header["Authorization"] == "" {
					r.token = a.Token
				}
				got := e.do(t, r)
				if !slices.Contains(tc.want, got.status) {
					t.Errorf("got %d, want one of %v: %s", got.status, tc.want, got.body)
				}
			})
		}

		// Hostile text is stored and returned as it was sent.
		for _, text := range []string{
			`'; DROP TABLE messages; --`,
			`" OR 1=1 --`,
			`%_\` + "\\%",
			`<script>alert(1)</script>`,
			"emoji 🎉 and RTL עברית text",
		} {
			r := e.do(t, req{method: "POST", path: msgs, token: a.Token, body: map[string]string{"body": text, "client_id": "hostile " + text}})
			r.want(t, http.StatusCreated, "")
			if got := decode[wireMessage](t, r); got.Body != text || got.ClientID == nil || *got.ClientID != "hostile "+text {
				t.Errorf("stored %q as %q", text, got.Body)
			}
			r = e.do(t, req{method: "POST", path: "/api/v1/chats", token: a.Token, body: map[string]any{"kind": "group", "title": text, "public": true}})
			r.want(t, http.StatusCreated, "")
			if got := decode[wireChat](t, r); got.Title != text {
				t.Errorf("title %q stored as %q", text, got.Title)
			}
			r = e.do(t, req{method: "GET", path: "/api/v1/users?q=" + url.QueryEscape(text), token: a.Token})
			r.want(t, http.StatusOK, "")
			if n := len(decode[struct {
				Users []wireUser `json:"users"`
			}](t, r).Users); n != 0 {
				t.Errorf("search %q found %d users", text, n)
			}
			r = e.do(t, req{method: "GET", path: "/api/v1/chats/discover?q=" + url.QueryEscape(text), token: b.Token})
			r.want(t, http.StatusOK, "")
			found := decode[struct {
				Chats []chat.DiscoveredChat `json:"chats"`
			}](t, r).Chats
			if len(found) != 1 || found[0].Title != text {
				t.Errorf("discover %q: got %+v, want exactly the group titled so", text, found)
			}
		}

		// A message body may hold a bidi override (names and titles may not: TestNamesRefuseInvisibleCharacters).
		override := "RTL \u202e override"
		r := e.do(t, req{method: "POST", path: msgs, token: a.Token, body: map[string]string{"body": override, "client_id": "override"}})
		if r.want(t, http.StatusCreated, ""); r.status == http.StatusCreated && decode[wireMessage](t, r).Body != override {
			t.Errorf("stored %q as %q", override, decode[wireMessage](t, r).Body)
		}

		// Invalid UTF-8 inside a JSON string becomes U+FFFD; what is stored is valid UTF-8.
		raw := []byte("{\"body\":\"bad \xff\xfe byte\",\"client_id\":\"utf8\"}")
		r = e.do(t, req{method: "POST", path: msgs, token: a.Token, body: raw})
		if r.status == http.StatusCreated {
			if got := decode[wireMessage](t, r).Body; !utf8.ValidString(got) || !strings.HasPrefix(got, "bad ") {
				t.Errorf("stored %q", got)
			}
		} else if r.status != http.StatusUnprocessableEntity {
			t.Errorf("invalid UTF-8 in a body: got %d, want 201 or 422", r.status)
		}

		// Nothing of the above corrupted the chat: its seqs are still 1..n without gaps.
		hist := decode[wireHistory](t, e.do(t, req{method: "GET", path: msgs + "?limit=200", token: a.Token}))
		if s := seqs(hist.Messages); len(s) == 0 || !slices.Equal(s, seqRange(1, int64(len(s)))) {
			t.Errorf("seqs after the bad input: %v", s)
		}
	})
}

// TestWrongMethod: a path the API has, asked with a method it does not take, answers 405
// method_not_allowed with the methods it takes in Allow (the /api/ catch-all answered 404
// not_found "no such endpoint" instead); a path it does not have stays 404.
func TestWrongMethod(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", envOptions{})
	a := e.newUser(t, "Ann")
	for _, tc := range []struct {
		method, path, allow string
	}{
		{"PUT", "/api/v1/chats", "GET, HEAD, POST"},
		{"GET", "/api/v1/chats/1/join", "POST"},
		{"GET", "/api/v1/auth/login", "POST"},
		{"DELETE", "/api/v1/chats/1/messages", "GET, HEAD, POST"},
		{"POST", "/api/v1/files/1", "GET, HEAD"},
	} {
		r := e.do(t, req{method: tc.method, path: tc.path, token: a.Token})
		r.want(t, http.StatusMethodNotAllowed, "method_not_allowed")
		if got := r.header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
	for _, path := range []string{"/api/v1/nothing", "/api/v1/chats/1/nothing", "/api/v2/chats"} {
		r := e.do(t, req{method: "PUT", path: path, token: a.Token})
		r.want(t, http.StatusNotFound, chat.CodeNotFound)
		if got := r.header.Get("Allow"); got != "" {
			t.Errorf("PUT %s: Allow %q on a 404", path, got)
		}
	}
	head, err := e.srv.Client().Head(e.srv.URL + "/api/v1/auth/refresh")
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != http.StatusMethodNotAllowed || head.Header.Get("Allow") != "POST" {
		t.Errorf("HEAD /api/v1/auth/refresh: %d, Allow %q; want 405, POST", head.StatusCode, head.Header.Get("Allow"))
	}
}

// TestNumbersGoCannotHold: JSON Schema calls 1e3, 1.0 and 99999999999999999999 integers, so
// they pass the schema, but an int64 field cannot take them: 422 invalid with a message that
// names the field in plain words, not encoding/json's ("json: cannot unmarshal number 1e3
// into Go struct field .seq of type int64"), at the field's location (body.seq), not at the body.
func TestNumbersGoCannotHold(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", envOptions{})
	a, b := e.newUser(t, "Ann"), e.newUser(t, "Ben")
	g := e.group(t, a, "Team", false)
	for _, tc := range []struct {
		path, body, field string
	}{
		{chatPath(g, "/read"), `{"seq":1e3}`, "seq"},
		{chatPath(g, "/read"), `{"seq":1.0}`, "seq"},
		{chatPath(g, "/read"), `{"seq":99999999999999999999}`, "seq"},
		{chatPath(g, "/members"), fmt.Sprintf(`{"user_id":%de0}`, b.ID), "user_id"},
		{"/api/v1/chats", `{"kind":"group","title":"x","member_ids":[2E1]}`, "member_ids"},
	} {
		r := e.do(t, req{method: "POST", path: tc.path, token: a.Token, body: tc.body})
		r.want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)
		var msgs []string
		located := false
		for _, d := range r.problem(t).Errors {
			msgs = append(msgs, d.Message)
			located = located || d.Location == "body."+tc.field
		}
		all := strings.Join(msgs, "; ")
		if !strings.Contains(all, tc.field+" must be an integer") || strings.Contains(all, "json:") || strings.Contains(all, "Go struct") {
			t.Errorf("%s %s: messages %q, want a plain one naming %s", tc.path, tc.body, all, tc.field)
		}
		if !located {
			t.Errorf("%s %s: errors %+v, want one at body.%s", tc.path, tc.body, r.problem(t).Errors, tc.field)
		}
	}
}

// TestLoginContentTypes: login takes JSON and the OAuth2 form (the docs page's Authorize);
// any other body is 415 unsupported_media_type, as on every other endpoint, not 422.
func TestLoginContentTypes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", envOptions{})
	a := e.newUser(t, "Ann")
	e.do(t, req{method: "POST", path: loginPath, body: map[string]string{"email": a.Email, "password": a.Password}}).want(t, http.StatusOK, "")
	e.do(t, req{method: "POST", path: loginPath, body: "grant_type=password&username=" + url.QueryEscape(a.Email) + "&password=" + url.QueryEscape(a.Password),
		contentType: "application/x-www-form-urlencoded"}).want(t, http.StatusOK, "")
	for _, ct := range []string{"text/plain", "application/xml", "multipart/form-data; boundary=x"} {
		e.do(t, req{method: "POST", path: loginPath, body: `{"email":"` + a.Email + `","password":"` + a.Password + `"}`, contentType: ct}).
			want(t, http.StatusUnsupportedMediaType, "unsupported_media_type")
	}
	// The same as another JSON endpoint answers.
	e.do(t, req{method: "POST", path: registerPath, body: `{"email":"x@example.test","name":"X","password":"password1"}`, contentType: "text/plain"}).
		want(t, http.StatusUnsupportedMediaType, "unsupported_media_type")
}

// TestErrorsNameTheField: a 422 names the field at fault, as API.md asks ("errors:
// [{location: body.email}]"), also where huma places its error at the object around the field
// (a required field left out) or gives none (no body at all).
func TestErrorsNameTheField(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", envOptions{})
	a := e.newUser(t, "Ann")
	g := e.group(t, a, "Team", false)
	for _, tc := range []struct {
		path, body, location string
	}{
		{registerPath, `{"email":"x@example.com","name":"X"}`, "body.password"},
		{chatPath(g, "/messages"), `{"body":"hi"}`, "body.client_id"},
		{"/api/v1/push/subscriptions", `{"endpoint":"https://push.example.com/1","keys":{"p256dh":"x"}}`, "body.keys.auth"},
		{chatPath(g, "/read"), ``, "body"},
		{"/api/v1/chats", `{"kind":"group","title":"x","member_ids":[0]}`, "body.member_ids[0]"},
	} {
		r := e.do(t, req{method: "POST", path: tc.path, token: a.Token, body: tc.body})
		if r.status != http.StatusNotFound { // push is off without a VAPID key
			r.wantField(t, tc.location)
		}
	}
}

// TestEmptyCursorIsNoCursor: before_seq= (what a client builds from a cursor it has not got
// yet) is the newest page, as when it is left out, not "below seq 0", which finds nothing.
func TestEmptyCursorIsNoCursor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", envOptions{})
	a := e.newUser(t, "Ann")
	g := e.group(t, a, "Team", false)
	for i := range 4 {
		e.send(t, a, g, fmt.Sprint("m", i))
	}
	page := func(query string) []int64 {
		t.Helper()
		return seqs(decode[wireHistory](t, e.do(t, req{method: "GET", path: chatPath(g, "/messages?"+query), token: a.Token})).Messages)
	}
	newest := page("limit=2")
	if !slices.Equal(newest, []int64{4, 5}) {
		t.Fatalf("newest page: %v, want [4 5]", newest)
	}
	for _, q := range []string{"before_seq=&limit=2", "after_seq=&limit=2", "before_seq=&after_seq=&limit=2"} {
		if got := page(q); !slices.Equal(got, newest) {
			t.Errorf("%s: %v, want the newest page %v", q, got, newest)
		}
	}
	if got := page("before_seq=0"); len(got) != 0 {
		t.Errorf("before_seq=0: %v, want nothing", got)
	}
}

// TestMediaTypesAreCaseInsensitive: a media type is case-insensitive and may have spaces before
// its parameters (RFC 9110); huma looked JSON up byte for byte and answered such bodies 415.
func TestMediaTypesAreCaseInsensitive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", envOptions{})
	a := e.newUser(t, "Ann")
	for i, ct := range []string{"APPLICATION/JSON", "application/json ; charset=utf-8", "Application/Json;charset=UTF-8", `application/json; profile="a+b"`} {
		e.do(t, req{method: "POST", path: "/api/v1/chats", token: a.Token, contentType: ct,
			body: fmt.Sprintf(`{"kind":"group","title":"t%d"}`, i)}).want(t, http.StatusCreated, "")
	}
	e.do(t, req{method: "POST", path: "/api/v1/chats", token: a.Token, contentType: "text/json", body: `{"kind":"group","title":"x"}`}).
		want(t, http.StatusUnsupportedMediaType, "unsupported_media_type")
}

// TestNULInEveryParameter: a NUL in any path or query parameter of any operation is a client
// mistake, never a 500 (PostgreSQL refuses NUL in text, SQLite's full-text query ended at it):
// message search answered 500 to q=abc%00. env.do fails the test on any 5xx.
func TestNULInEveryParameter(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		a := e.newUser(t, "Ann")
		g := e.group(t, a, "Team", false)
		e.send(t, a, g, "hello")
		for path, p := range e.ts.API.API().OpenAPI().Paths {
			for _, op := range []*huma.Operation{p.Get, p.Put, p.Post, p.Delete, p.Patch} {
				if op == nil {
					continue
				}
				for _, bad := range op.Parameters {
					if bad.In != "path" && bad.In != "query" {
						continue
					}
					u, q := path, url.Values{}
					for _, prm := range op.Parameters {
						v := "1"
						switch prm.Name {
						case "id", "chat_id":
							v = strconv.FormatInt(g, 10)
						case "user_id":
							v = strconv.FormatInt(a.ID, 10)
						case "emoji":
							v = "👍"
						case "q":
							v = "hello"
						}
						if prm.Name == bad.Name {
							v = "a\x00b"
						}
						switch prm.In {
						case "path":
							u = strings.Replace(u, "{"+prm.Name+"}", url.PathEscape(v), 1)
						case "query":
							q.Set(prm.Name, v)
						}
					}
					r := e.do(t, req{method: op.Method, path: u + "?" + q.Encode(), token: a.Token})
					if r.status < 400 {
						t.Errorf("%s %s with %s=NUL: %d, want an error", op.Method, path, bad.Name, r.status)
					}
				}
			}
		}
	})
}
