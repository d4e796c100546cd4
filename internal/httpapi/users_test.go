package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// TestUserSearchHidesEmails: any signed-up account could list every user's email
// (GET /users?q=&limit=100), which undid the login's care not to tell which emails have
// accounts. Emails now show only for the caller, users who share a chat with the caller, and
// a user whose exact email was asked for; an email prefix finds only those who share a chat,
// so that a stranger's email cannot be spelled out prefix by prefix.
func TestUserSearchHidesEmails(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		me := e.newUser(t, "Me")
		mk := func(name, email string) int64 {
			u, err := e.store.CreateUser(context.Background(), chat.User{Email: email, Name: name, PasswordHash: e.pwHash, CreatedAt: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			return u.ID
		}
		victor := mk("Victor", "hidden.person@example.test")
		fred := mk("Fred", "friend.mail@example.test")
		if _, err := e.svc.CreateGroup(context.Background(), me.P(), "Us", false, []int64{fred}); err != nil {
			t.Fatal(err)
		}
		search := func(q string) []wireUser {
			t.Helper()
			r := e.do(t, req{method: "GET", path: "/api/v1/users?limit=100&q=" + url.QueryEscape(q), token: me.Token})
			r.want(t, http.StatusOK, "")
			return decode[struct {
				Users []wireUser `json:"users"`
			}](t, r).Users
		}
		all := search("")
		if len(all) < 6 { // the demo's three, me, Victor, Fred
			t.Fatalf("search of everyone: %d users", len(all))
		}
		for _, u := range all {
			shown := u.ID == me.ID || u.ID == fred
			if (u.Email != "") != shown {
				t.Errorf("search of everyone: %s has email %q; want it shown only for me and those I share a chat with", u.Name, u.Email)
			}
		}
		for _, c := range []struct {
			q           string
			wantID      int64 // 0: nobody
			wantEmail   string
			description string
		}{
			{"hidden", 0, "", "a prefix of a stranger's email"},
			{"hidden.person@example.tes", 0, "", "almost a stranger's email"},
			{"HIDDEN.PERSON@example.test", victor, "hidden.person@example.test", "a stranger's exact email"},
			{"vic", victor, "", "a stranger's name"},
			{"friend.m", fred, "friend.mail@example.test", "an email prefix of someone I share a chat with"},
			{"fr", fred, "friend.mail@example.test", "the name of someone I share a chat with"},
		} {
			got := search(c.q)
			switch {
			case c.wantID == 0 && len(got) != 0:
				t.Errorf("%s (%q): found %+v, want nobody", c.description, c.q, got)
			case c.wantID != 0 && (len(got) != 1 || got[0].ID != c.wantID || got[0].Email != c.wantEmail):
				t.Errorf("%s (%q): found %+v, want user %d with email %q", c.description, c.q, got, c.wantID, c.wantEmail)
			}
		}
	})
}

// TestNamesRefuseInvisibleCharacters: a display name (and a chat title) with a bidi override
// or a zero-width character is refused with 422: "Alice" with a zero-width space is not
// Alice, and U+202E turns "evil<RLO>gpj.exe" into "evilexe.jpg" on screen.
func TestNamesRefuseInvisibleCharacters(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		ann := e.newUser(t, "Ann")
		for i, bad := range []string{"Al\u200bice", "evil\u202egpj.exe", "\u2067Ann\u2069", "A\u200dB", "Zero\ufeff", "soft\u00adhyphen", "line\u2028break", "mark\u200f", "Dev \u200d💻", "💻\u200d", "Ann\U000E0067"} {
			r := e.do(t, req{method: "POST", path: "/api/v1/auth/register", body: map[string]string{
				"email": "invisible" + string(rune('a'+i)) + "@example.test", "name": bad, "password": "long enough"}})
			r.wantField(t, "body.name")
			r = e.do(t, req{method: "POST", path: "/api/v1/chats", token: ann.Token, body: map[string]any{"kind": "group", "title": bad}})
			r.wantField(t, "body.title")
		}
		for i, good := range []string{"Zoë 😀", "Ĺudmila", "محمد", "李小龍", "O'Brien-Smith", "Ann 👩\u200d💻", "Bob 👨🏽\u200d🚀", "Cy 🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F"} {
			e.do(t, req{method: "POST", path: "/api/v1/auth/register", body: map[string]string{
				"email": "visible" + string(rune('a'+i)) + "@example.test", "name": good, "password": "long enough"}}).want(t, http.StatusCreated, "")
		}
	})
}
