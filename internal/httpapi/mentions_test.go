package httpapi_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/wschat/chat/internal/chat"
)

type wireMentioned struct {
	Seq        int64   `json:"seq"`
	Mentions   []int64 `json:"mentions"`
	MentionAll bool    `json:"mention_all"`
}

// TestMentionsHTTP: mentions over HTTP. Only members are ever mentioned (a stranger, an
// ex-member and the sender are dropped); @all follows the group's rule; the summaries count
// unread mentions for members only.
func TestMentionsHTTP(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		ann, ben, eve, dan := e.newUser(t, "Ann"), e.newUser(t, "Ben"), e.newUser(t, "Eve"), e.newUser(t, "Dan")
		g := e.group(t, ann, "Team", false, ben, dan)
		e.leave(t, dan, g)
		post := func(u *user, body map[string]any) resp {
			t.Helper()
			body["client_id"] = e.newUser(t, "id").Email // unique
			if _, ok := body["body"]; !ok {
				body["body"] = "hi"
			}
			return e.do(t, req{method: "POST", path: chatPath(g, "/messages"), token: u.Token, body: body})
		}

		r := post(ben, map[string]any{"mentions": []int64{eve.ID, dan.ID, ben.ID, ann.ID, ann.ID}})
		r.want(t, http.StatusCreated, "")
		if m := decode[wireMentioned](t, r); !slices.Equal(m.Mentions, []int64{ann.ID}) || m.MentionAll {
			t.Errorf("stored mentions %+v, want only Ann", m)
		}
		// Strangers and ex-members have no chat to count in, and no way to read it.
		for _, u := range []*user{eve, dan} {
			e.do(t, req{method: "GET", path: chatPath(g, "/messages"), token: u.Token}).want(t, http.StatusNotFound, chat.CodeNotFound)
		}
		type summary struct {
			ID             int64  `json:"id"`
			UnreadMentions int64  `json:"unread_mentions"`
			MentionAll     string `json:"mention_all"`
		}
		type chats struct {
			Chats []summary `json:"chats"`
		}
		if l := decode[chats](t, e.do(t, req{method: "GET", path: "/api/v1/chats", token: ann.Token})).Chats; len(l) != 1 ||
			l[0].UnreadMentions != 1 || l[0].MentionAll != chat.MentionAllEveryone {
			t.Errorf("Ann's chats: %+v", l)
		}
		if l := decode[chats](t, e.do(t, req{method: "GET", path: "/api/v1/chats", token: dan.Token})).Chats; len(l) != 0 {
			t.Errorf("the ex-member's chats: %+v", l)
		}

		post(ann, map[string]any{"mentions": make([]int64, 51)}).wantField(t, "body.mentions")

		// @all: the owner keeps it to admins; a member is refused, the owner is not.
		e.do(t, req{method: "PATCH", path: chatPath(g, ""), token: ben.Token, body: map[string]any{"mention_all": "admins"}}).
			want(t, http.StatusForbidden, chat.CodeNotAdmin)
		e.do(t, req{method: "PATCH", path: chatPath(g, ""), token: ann.Token, body: map[string]any{"mention_all": "all"}}).
			want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)
		r = e.do(t, req{method: "PATCH", path: chatPath(g, ""), token: ann.Token, body: map[string]any{"mention_all": "admins"}})
		r.want(t, http.StatusOK, "")
		if c := decode[struct {
			MentionAll string `json:"mention_all"`
		}](t, r); c.MentionAll != chat.MentionAllAdmins {
			t.Errorf("after the change: mention_all %q", c.MentionAll)
		}
		post(ben, map[string]any{"mention_all": true}).want(t, http.StatusForbidden, chat.CodeMentionAllRefused)
		r = post(ann, map[string]any{"mention_all": true})
		r.want(t, http.StatusCreated, "")
		if m := decode[wireMentioned](t, r); !m.MentionAll {
			t.Errorf("the owner's @all: %+v", m)
		}
		p := e.private(t, ann, eve)
		e.do(t, req{method: "POST", path: chatPath(p, "/messages"), token: ann.Token, body: map[string]any{"client_id": "x", "body": "@all", "mention_all": true}}).
			want(t, http.StatusForbidden, chat.CodeMentionAllRefused)
	})
}
