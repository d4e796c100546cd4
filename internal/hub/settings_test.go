package hub_test

// Notification settings (issue 16): PATCH /chats/{id}/settings answers the settings, the chat
// list carries them, and every device of the member, and only theirs, gets chat.settings.

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/testserver"
)

// chatsSettings is the settings part of a chat list: GET /chats's answer, or hello's data.
type chatsSettings struct {
	Chats []struct {
		ID         int64           `json:"id"`
		Notify     string          `json:"notify"`
		MutedUntil json.RawMessage `json:"muted_until"`
	} `json:"chats"`
}

func TestChatSettings(t *testing.T) {
	t.Parallel()
	for _, pg := range []bool{false, true} {
		name := map[bool]string{false: "sqlite", true: "postgres"}[pg]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := testserver.Start(t, testserver.Config{Postgres: pg})
			ann, ben, eve := s.NewUser(t, "Ann"), s.NewUser(t, "Ben"), s.NewUser(t, "Eve")
			ann2 := s.Login(t, ann)
			g := s.Group(t, ann, "Team", false, ben)
			big := s.Group(t, ann, "Big", false, ben)
			p := s.Private(t, ann, ben)
			// The default follows the group's size: mentions above 50 members.
			if _, err := s.Store.DB().Exec(`UPDATE chats SET member_count = 51 WHERE id = $1`, big); err != nil {
				t.Fatal(err)
			}
			d1, _ := s.DialHello(t, ann)
			d2, _ := s.DialHello(t, ann2)
			other, _ := s.DialHello(t, ben)

			settingsOf := func(u *testserver.User) map[int64]chat.ChatSettings {
				t.Helper()
				r := s.Call(t, "GET", "/api/v1/chats", u.Token, nil, nil)
				var out chatsSettings
				if err := json.Unmarshal(r.Body, &out); err != nil || r.Status != http.StatusOK {
					t.Fatalf("chat list: %d %s", r.Status, r.Body)
				}
				m := map[int64]chat.ChatSettings{}
				for _, c := range out.Chats {
					st := chat.ChatSettings{ChatID: c.ID, Notify: c.Notify}
					if string(c.MutedUntil) != "null" {
						var tm chat.Time
						if err := json.Unmarshal(c.MutedUntil, &tm); err != nil {
							t.Fatalf("muted_until %s: %v", c.MutedUntil, err)
						}
						st.MutedUntil = &tm
					}
					m[c.ID] = st
				}
				return m
			}
			got := settingsOf(ann)
			for id, want := range map[int64]string{g: "all", big: "mentions", p: "all"} {
				if got[id].Notify != want || got[id].MutedUntil != nil {
					t.Errorf("default settings of chat %d: got %+v, want notify %s, not muted", id, got[id], want)
				}
			}

			patch := func(u *testserver.User, chatID int64, body string) testserver.Reply {
				t.Helper()
				return s.Call(t, "PATCH", "/api/v1/chats/"+itoa64(chatID)+"/settings", u.Token, body, nil)
			}
			expect := func(r testserver.Reply, want string) {
				t.Helper()
				if r.Status != http.StatusOK {
					t.Fatalf("patch: %d %s", r.Status, r.Body)
				}
				if strings.TrimSpace(string(r.Body)) != want {
					t.Errorf("patch answered %s, want %s", r.Body, want)
				}
				for i, c := range []*testserver.Conn{d1, d2} {
					f := c.NextOf("chat.settings", 10*time.Second)
					if string(f.Data) != want {
						t.Errorf("device %d: chat.settings %s, want %s", i+1, f.Data, want)
					}
				}
			}
			expect(patch(ann, g, `{"notify":"none"}`), `{"chat_id":`+itoa64(g)+`,"notify":"none","muted_until":null}`)
			expect(patch(ann2, g, `{"muted_until":"2031-05-06T07:08:09.123Z"}`), `{"chat_id":`+itoa64(g)+`,"notify":"none","muted_until":"2031-05-06T07:08:09.123Z"}`)
			expect(patch(ann, g, `{}`), `{"chat_id":`+itoa64(g)+`,"notify":"none","muted_until":"2031-05-06T07:08:09.123Z"}`)
			// A new connection's hello carries them, as the chat list does.
			_, hello := s.DialHello(t, ann)
			var hd chatsSettings // the hello's data has the chat list's shape
			if err := json.Unmarshal(hello.Data, &hd); err != nil {
				t.Fatalf("hello %s: %v", hello.Raw, err)
			}
			inHello := map[int64]string{}
			for _, c := range hd.Chats {
				inHello[c.ID] = c.Notify + " " + string(c.MutedUntil)
			}
			for id, want := range map[int64]string{g: `none "2031-05-06T07:08:09.123Z"`, big: "mentions null", p: "all null"} {
				if inHello[id] != want {
					t.Errorf("hello's chat %d: notify and muted_until %q, want %q (%s)", id, inHello[id], want, hello.Raw)
				}
			}
			expect(patch(ann, g, `{"notify":"mentions","muted_until":null}`), `{"chat_id":`+itoa64(g)+`,"notify":"mentions","muted_until":null}`)
			expect(patch(ann, big, `{"notify":"all"}`), `{"chat_id":`+itoa64(big)+`,"notify":"all","muted_until":null}`)
			got = settingsOf(ann)
			if got[g].Notify != "mentions" || got[big].Notify != "all" || got[g].MutedUntil != nil {
				t.Errorf("chat list after the changes: got %+v", got)
			}
			if b := settingsOf(ben); b[g].Notify != "all" || b[big].Notify != "mentions" {
				t.Errorf("another member's settings changed: %+v", b)
			}
			if fs := testserver.OfType(other.Quiet(300*time.Millisecond), "chat.settings"); len(fs) != 0 {
				t.Errorf("another member got %s", testserver.Raws(fs))
			}

			for _, c := range []struct {
				u      *testserver.User
				chat   int64
				body   string
				status int
				code   string
			}{
				{ann, g, `{"notify":"loud"}`, http.StatusUnprocessableEntity, "invalid"},
				{ann, g, `{"muted_until":"tomorrow"}`, http.StatusUnprocessableEntity, "invalid"},
				{ann, g, `{"muted_until":"2999-01-01T00:00:00Z"}`, http.StatusUnprocessableEntity, "invalid"},
				{eve, g, `{"notify":"none"}`, http.StatusNotFound, "not_found"},
				{ann, 1 << 40, `{"notify":"none"}`, http.StatusNotFound, "not_found"},
				{nil, g, `{"notify":"none"}`, http.StatusUnauthorized, "unauthenticated"},
			} {
				token := ""
				if c.u != nil {
					token = c.u.Token
				}
				r := s.Call(t, "PATCH", "/api/v1/chats/"+itoa64(c.chat)+"/settings", token, c.body, nil)
				if r.Status != c.status || r.Code() != c.code {
					t.Errorf("PATCH %s to chat %d: got %d %s, want %d %s", c.body, c.chat, r.Status, r.Code(), c.status, c.code)
				}
			}
			// An ex-member may not change them any more.
			if err := s.Svc.Leave(context.Background(), ben.P(), g); err != nil {
				t.Fatal(err)
			}
			if r := patch(ben, g, `{"notify":"none"}`); r.Status != http.StatusNotFound {
				t.Errorf("an ex-member: got %d %s, want 404", r.Status, r.Body)
			}
		})
	}
}
