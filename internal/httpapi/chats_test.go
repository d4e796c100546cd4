package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wschat/chat/internal/chat"
)

func TestUsers(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		me := e.newUser(t, "Qzalpha")
		beta, gamma := e.newUser(t, "QZbeta"), e.newUser(t, "qzGamma")

		r := e.do(t, req{method: "GET", path: mePath, token: me.Token})
		r.want(t, http.StatusOK, "")
		if got, want := keys(t, r.body), []string{"created_at", "email", "id", "name"}; !slices.Equal(got, want) {
			t.Errorf("me: got keys %v, want %v", got, want)
		}
		if got := decode[wireUser](t, r); got.ID != me.ID || got.Email != me.Email || got.Name != "Qzalpha" {
			t.Errorf("me: got %+v, want %+v", got, me)
		}
		e.do(t, req{method: "GET", path: mePath}).want(t, http.StatusUnauthorized, chat.CodeUnauthenticated)

		search := func(query string) []wireUser {
			t.Helper()
			r := e.do(t, req{method: "GET", path: "/api/v1/users?" + query, token: me.Token})
			r.want(t, http.StatusOK, "")
			body := decode[struct {
				Users []wireUser `json:"users"`
			}](t, r)
			if body.Users == nil {
				t.Errorf("search %q: users is %s, want a list", query, r.body)
			}
			return body.Users
		}
		names := func(us []wireUser) []string {
			out := []string{}
			for _, u := range us {
				out = append(out, u.Name)
			}
			return out
		}
		for _, tc := range []struct {
			query string
			want  []string
		}{
			{"q=qz", []string{"Qzalpha", "QZbeta", "qzGamma"}},
			{"q=QZB", []string{"QZbeta"}},
			{"q=" + url.QueryEscape(strings.ToUpper(gamma.Email[:8])), []string{}}, // a stranger's email: TestUserSearchHidesEmails
			{"q=" + url.QueryEscape(strings.ToUpper(gamma.Email)), []string{"qzGamma"}},
			{"q=qz&limit=2", []string{"Qzalpha", "QZbeta"}},
			{"q=qz&limit=1", []string{"Qzalpha"}},
			{"q=qz&limit=100", []string{"Qzalpha", "QZbeta", "qzGamma"}},
			{"q=alpha", []string{}},
			{"q=" + url.QueryEscape("qz%"), []string{}},
			{"q=" + url.QueryEscape("q_"), []string{}},
		} {
			if got := names(search(tc.query)); !slices.Equal(got, tc.want) {
				t.Errorf("search %s: got %q, want %q", tc.query, got, tc.want)
			}
		}
		found := search("q=qzb")
		if len(found) == 1 && (found[0].ID != beta.ID || found[0].Email != "" || found[0].Online) {
			t.Errorf("search result: got %+v, want beta without email (a stranger), offline", found[0])
		}
		for i := range chat.DefaultUserLimit {
			e.newUser(t, fmt.Sprint("Filler ", i))
		}
		if got := len(search("")); got != chat.DefaultUserLimit {
			t.Errorf("search without q: got %d users, want the default limit %d", got, chat.DefaultUserLimit)
		}
		for _, q := range []string{"limit=0", "limit=101", "limit=-1", "limit=abc", "limit=99999999999999999999", "q=" + strings.Repeat("q", 101)} {
			e.do(t, req{method: "GET", path: "/api/v1/users?" + q, token: me.Token}).want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)
		}
		e.do(t, req{method: "GET", path: "/api/v1/users?q=qz"}).want(t, http.StatusUnauthorized, chat.CodeUnauthenticated)

		r = e.do(t, req{method: "GET", path: fmt.Sprint("/api/v1/users/", beta.ID), token: me.Token})
		r.want(t, http.StatusOK, "")
		if got, want := keys(t, r.body), []string{"id", "name", "online"}; !slices.Equal(got, want) {
			t.Errorf("user: got keys %v, want %v (no email of others)", got, want)
		}
		if got := decode[wireUser](t, r); got.ID != beta.ID || got.Name != "QZbeta" {
			t.Errorf("user: got %+v, want beta", got)
		}
		e.do(t, req{method: "GET", path: "/api/v1/users/987654321", token: me.Token}).want(t, http.StatusNotFound, chat.CodeNotFound)
		e.do(t, req{method: "GET", path: fmt.Sprint("/api/v1/users/", beta.ID)}).want(t, http.StatusUnauthorized, chat.CodeUnauthenticated)
	})
}

func TestCreateChat(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		a, b, c := e.newUser(t, "Ann"), e.newUser(t, "Ben"), e.newUser(t, "Cat")
		create := func(u *user, body any) resp {
			t.Helper()
			return e.do(t, req{method: "POST", path: "/api/v1/chats", token: u.Token, body: body})
		}

		r := create(a, map[string]any{"kind": "group", "title": "  Team  ", "member_ids": []int64{b.ID, c.ID, a.ID, b.ID}})
		r.want(t, http.StatusCreated, "")
		g := decode[wireChat](t, r)
		if g.ID <= 0 || g.Kind != "group" || g.Title != "Team" || g.Public || g.MemberCount != 3 || g.Peer != nil ||
			g.LastSeq != 1 || g.MyLastReadSeq != 1 || g.ReadAllSeq != 1 || g.UnreadCount != 0 {
			t.Errorf("group: got %s, want Team with 3 members and the chat_created message", r.body)
		}
		checkTime(t, "created_at", g.CreatedAt)
		if m := g.LastMessage; m == nil || m.Seq != 1 || m.Kind != "system" || m.SenderID != nil || m.ClientID != nil || m.Event == nil ||
			*m.Event != (wireEvent{Type: "chat_created", UserID: a.ID, ActorID: a.ID}) || m.ChatID != g.ID {
			t.Errorf("last message: got %+v, want chat_created by Ann", m)
		}
		for _, want := range []struct {
			u    *user
			role string
		}{{a, "owner"}, {b, "member"}, {c, "member"}} {
			if m := g.member(want.u.ID); m == nil || m.Role != want.role || m.Name != want.u.Name || m.LastReadSeq != 1 {
				t.Errorf("member %s: got %+v, want role %s", want.u.Name, m, want.role)
			} else {
				checkTime(t, "joined_at", m.JoinedAt)
			}
		}
		if len(g.Members) != 3 {
			t.Errorf("got %d members, want 3 (duplicates and the creator counted once)", len(g.Members))
		}

		r = create(a, map[string]any{"kind": "group", "title": "Open", "public": true})
		r.want(t, http.StatusCreated, "")
		if got := decode[wireChat](t, r); !got.Public || got.MemberCount != 1 {
			t.Errorf("public group: got %s", r.body)
		}

		// Private chats: one per pair, from either side.
		r = create(a, map[string]any{"kind": "private", "member_ids": []int64{b.ID}})
		r.want(t, http.StatusCreated, "")
		p := decode[wireChat](t, r)
		if p.Kind != "private" || p.Title != "Ben" || p.Peer == nil || p.Peer.ID != b.ID || p.Peer.Name != "Ben" || p.MemberCount != 2 ||
			p.LastMessage != nil || p.LastSeq != 0 || len(p.Members) != 2 || p.Public {
			t.Errorf("private chat: got %s, want a new chat with Ben and no message", r.body)
		}
		r = create(a, map[string]any{"kind": "private", "member_ids": []int64{b.ID}})
		r.want(t, http.StatusOK, "")
		if got := decode[wireChat](t, r); got.ID != p.ID {
			t.Errorf("same pair again: got chat %d, want %d", got.ID, p.ID)
		}
		r = create(b, map[string]any{"kind": "private", "member_ids": []int64{a.ID}})
		r.want(t, http.StatusOK, "")
		if got := decode[wireChat](t, r); got.ID != p.ID || got.Title != "Ann" || got.Peer == nil || got.Peer.ID != a.ID {
			t.Errorf("the pair from the other side: got %s, want chat %d titled Ann", r.body, p.ID)
		}

		for _, tc := range []struct {
			name   string
			body   any
			status int
			code   string
		}{
			{"private with nobody", map[string]any{"kind": "private", "member_ids": []int64{}}, 422, chat.CodeInvalid},
			{"private without member_ids", map[string]any{"kind": "private"}, 422, chat.CodeInvalid},
			{"private with two", map[string]any{"kind": "private", "member_ids": []int64{b.ID, c.ID}}, 422, chat.CodeInvalid},
			{"private with myself", map[string]any{"kind": "private", "member_ids": []int64{a.ID}}, 422, chat.CodeInvalid},
			{"private with an unknown user", map[string]any{"kind": "private", "member_ids": []int64{987654321}}, 404, chat.CodeUserNotFound},
			{"group with an unknown member", map[string]any{"kind": "group", "title": "X", "member_ids": []int64{b.ID, 987654321}}, 404, chat.CodeUserNotFound},
			{"group without title", map[string]any{"kind": "group"}, 422, chat.CodeInvalid},
			{"group with an empty title", map[string]any{"kind": "group", "title": ""}, 422, chat.CodeInvalid},
			{"group with a blank title", map[string]any{"kind": "group", "title": "   "}, 422, chat.CodeInvalid},
			{"group with a title of 101", map[string]any{"kind": "group", "title": strings.Repeat("t", 101)}, 422, chat.CodeInvalid},
			{"unknown kind", map[string]any{"kind": "channel", "title": "X"}, 422, chat.CodeInvalid},
			{"no kind", map[string]any{"title": "X"}, 422, chat.CodeInvalid},
			{"group with a title of 100", map[string]any{"kind": "group", "title": strings.Repeat("é", 100)}, 201, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				create(a, tc.body).want(t, tc.status, tc.code)
			})
		}
		if r := create(c, map[string]any{"kind": "private", "member_ids": []int64{987654321}}); r.status == http.StatusNotFound {
			if chats := listChats(t, e, c); len(chats) != 1 {
				t.Errorf("a refused private chat left a chat behind: %d chats", len(chats))
			}
		}
		e.do(t, req{method: "POST", path: "/api/v1/chats", body: map[string]any{"kind": "group", "title": "X"}}).
			want(t, http.StatusUnauthorized, chat.CodeUnauthenticated)
	})
}

func listChats(t *testing.T, e *env, u *user) []wireChat {
	t.Helper()
	r := e.do(t, req{method: "GET", path: "/api/v1/chats", token: u.Token})
	r.want(t, http.StatusOK, "")
	body := decode[struct {
		Chats []wireChat `json:"chats"`
	}](t, r)
	if body.Chats == nil {
		t.Errorf("chats is %s, want a list", r.body)
	}
	return body.Chats
}

func TestListChats(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		a, b, c := e.newUser(t, "Ann"), e.newUser(t, "Ben"), e.newUser(t, "Cat")
		if got := listChats(t, e, a); len(got) != 0 {
			t.Errorf("a new user has chats: %+v", got)
		}
		g := e.group(t, a, "Team", false, b, c)
		p := e.private(t, a, b)
		other := e.group(t, b, "Not Ann's", true, c)
		e.send(t, b, g, "hello team")
		e.send(t, b, p, "one")
		last := e.send(t, b, p, "two")
		e.send(t, c, other, "not for Ann")

		chats := listChats(t, e, a)
		ids := []int64{}
		for _, c := range chats {
			ids = append(ids, c.ID)
		}
		if want := []int64{p, g}; !slices.Equal(ids, want) {
			t.Fatalf("got chats %v, want %v (most recent activity first, only mine)", ids, want)
		}
		pc, gc := chats[0], chats[1]
		if pc.UnreadCount != 2 || pc.LastSeq != 2 || pc.MyLastReadSeq != 0 || pc.ReadAllSeq != 0 || pc.Title != "Ben" || pc.Peer == nil || pc.Peer.ID != b.ID {
			t.Errorf("private chat: got %+v, want 2 unread from Ben", pc)
		}
		if m := pc.LastMessage; m == nil || m.ID != last.ID || m.Body != "two" || m.Kind != "text" || m.SenderID == nil || *m.SenderID != b.ID ||
			m.ClientID == nil || *m.ClientID != *last.ClientID || m.Event != nil {
			t.Errorf("last message: got %+v, want %+v", m, last)
		}
		if gc.UnreadCount != 1 || gc.LastSeq != 2 || gc.MyLastReadSeq != 1 || gc.ReadAllSeq != 1 || gc.MemberCount != 3 {
			t.Errorf("group: got %+v, want 1 unread", gc)
		}
		if gc.Members != nil {
			t.Errorf("the list carries members; API.md lists ChatSummary only")
		}
		// The sender has nothing unread.
		for _, c := range listChats(t, e, b) {
			if (c.ID == g || c.ID == p) && c.UnreadCount != 0 {
				t.Errorf("Ben's chat %d: %d unread, want 0 (own messages)", c.ID, c.UnreadCount)
			}
		}
		e.do(t, req{method: "GET", path: "/api/v1/chats"}).want(t, http.StatusUnauthorized, chat.CodeUnauthenticated)
	})
}

func TestDiscover(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		a, x := e.newUser(t, "Ann"), e.newUser(t, "Xena")
		club := e.group(t, x, "Qx Book Club", true)
		e.group(t, x, "Qx Secret", false)
		e.group(t, x, "Qx Joined", true, a)
		e.private(t, a, x)
		find := func(q string) []chat.DiscoveredChat {
			t.Helper()
			r := e.do(t, req{method: "GET", path: "/api/v1/chats/discover?q=" + url.QueryEscape(q), token: a.Token})
			r.want(t, http.StatusOK, "")
			body := decode[struct {
				Chats []chat.DiscoveredChat `json:"chats"`
			}](t, r)
			if body.Chats == nil {
				t.Errorf("discover %q: chats is %s, want a list", q, r.body)
			}
			return body.Chats
		}
		want := []chat.DiscoveredChat{{ID: club, Title: "Qx Book Club", MemberCount: 1}}
		for _, q := range []string{"qx", "BOOK", "club"} {
			if got := find(q); !slices.Equal(got, want) {
				t.Errorf("discover %q: got %+v, want %+v", q, got, want)
			}
		}
		if got := find("qx%"); len(got) != 0 {
			t.Errorf("discover qx%%: got %+v, want nothing", got)
		}
		if got := find("nothing like it"); len(got) != 0 {
			t.Errorf("discover: got %+v, want nothing", got)
		}
		e.do(t, req{method: "GET", path: "/api/v1/chats/discover?q=" + strings.Repeat("q", 101), token: a.Token}).want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)
		e.do(t, req{method: "GET", path: "/api/v1/chats/discover"}).want(t, http.StatusUnauthorized, chat.CodeUnauthenticated)
	})
}

func TestGetChat(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		a, b, outsider := e.newUser(t, "Ann"), e.newUser(t, "Ben"), e.newUser(t, "Out")
		p := e.private(t, a, b)
		pub := e.group(t, a, "Open", true, b)
		e.send(t, b, pub, "hi")
		e.do(t, req{method: "POST", path: chatPath(pub, "/read"), token: a.Token, body: map[string]int64{"seq": 2}}).want(t, http.StatusOK, "")

		r := e.do(t, req{method: "GET", path: chatPath(p, ""), token: a.Token})
		r.want(t, http.StatusOK, "")
		got := decode[wireChat](t, r)
		if got.ID != p || got.Title != "Ben" || got.Peer == nil || got.Peer.ID != b.ID || len(got.Members) != 2 {
			t.Errorf("private chat as Ann: got %s", r.body)
		}
		// A public group shows its detail to anyone signed in, with nothing read or unread.
		r = e.do(t, req{method: "GET", path: chatPath(pub, ""), token: outsider.Token})
		r.want(t, http.StatusOK, "")
		got = decode[wireChat](t, r)
		if got.ID != pub || got.Title != "Open" || got.MemberCount != 2 || len(got.Members) != 2 || got.MyLastReadSeq != 0 || got.UnreadCount != 0 {
			t.Errorf("public group as an outsider: got %s", r.body)
		}
		if got.member(outsider.ID) != nil {
			t.Errorf("the outsider is listed as a member")
		}
		// Nor what is said in it or who read what: the history is the members' (403), and so
		// is its newest message, which polling the detail would show as it came.
		if got.LastMessage != nil || got.ReadAllSeq != 0 || got.LastSeq != 0 {
			t.Errorf("public group as an outsider shows its last message, seq or read-all mark: %s", r.body)
		}
		for _, m := range got.Members {
			if m.LastReadSeq != 0 {
				t.Errorf("public group as an outsider shows member %d's read mark %d", m.ID, m.LastReadSeq)
			}
		}
		// Members see both.
		member := decode[wireChat](t, e.do(t, req{method: "GET", path: chatPath(pub, ""), token: a.Token}))
		if member.LastMessage == nil || member.LastMessage.Body != "hi" || member.LastSeq != 2 || member.ReadAllSeq != 2 || member.member(a.ID).LastReadSeq != 2 {
			t.Errorf("public group as a member: %+v", member)
		}
		e.do(t, req{method: "GET", path: chatPath(p, ""), token: outsider.Token}).want(t, http.StatusNotFound, chat.CodeNotFound)
		e.do(t, req{method: "GET", path: chatPath(987654321, ""), token: a.Token}).want(t, http.StatusNotFound, chat.CodeNotFound)
		// A hidden chat and a missing one are indistinguishable.
		hidden := e.do(t, req{method: "GET", path: chatPath(p, ""), token: outsider.Token}).problem(t)
		missing := e.do(t, req{method: "GET", path: chatPath(p+1_000_000, ""), token: outsider.Token}).problem(t)
		if hidden.Code != missing.Code || hidden.Title != missing.Title ||
			strings.ReplaceAll(hidden.Detail, fmt.Sprint(p), "N") != strings.ReplaceAll(missing.Detail, fmt.Sprint(p+1_000_000), "N") {
			t.Errorf("hidden and missing chats answer differently:\n %+v\n %+v", hidden, missing)
		}
	})
}

func TestInvite(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		a, b, c, d, out := e.newUser(t, "Ann"), e.newUser(t, "Ben"), e.newUser(t, "Cat"), e.newUser(t, "Dan"), e.newUser(t, "Out")
		g := e.group(t, a, "Team", false, b)
		pub := e.group(t, a, "Open", true)
		p := e.private(t, a, b)
		invite := func(u *user, chatID, userID int64) resp {
			t.Helper()
			return e.do(t, req{method: "POST", path: chatPath(chatID, "/members"), token: u.Token, body: map[string]int64{"user_id": userID}})
		}

		r := invite(a, g, d.ID)
		r.want(t, http.StatusCreated, "")
		got := decode[wireChat](t, r)
		if got.ID != g || got.MemberCount != 3 || got.member(d.ID) == nil || got.member(d.ID).Role != "member" || got.LastSeq != 2 {
			t.Errorf("invite: got %s, want Dan as a member and last seq 2", r.body)
		}
		if m := got.LastMessage; m == nil || m.Kind != "system" || m.Event == nil || *m.Event != (wireEvent{Type: "member_invited", UserID: d.ID, ActorID: a.ID}) {
			t.Errorf("invite message: got %+v, want member_invited", m)
		}
		if got.MyLastReadSeq != 1 {
			t.Errorf("the inviter's view: my_last_read_seq %d, want 1 (Ann's own)", got.MyLastReadSeq)
		}
		// The invitee sees the chat at once, nothing unread.
		if chats := listChats(t, e, d); len(chats) != 1 || chats[0].ID != g || chats[0].UnreadCount != 0 || chats[0].MyLastReadSeq != 2 {
			t.Errorf("the invitee's chats: got %+v, want Team with nothing unread", chats)
		}
		// Any member may invite.
		invite(b, g, c.ID).want(t, http.StatusCreated, "")

		invite(a, g, d.ID).want(t, http.StatusConflict, chat.CodeAlreadyMember)
		invite(a, g, a.ID).want(t, http.StatusConflict, chat.CodeAlreadyMember)
		invite(a, g, 987654321).want(t, http.StatusNotFound, chat.CodeUserNotFound)
		invite(a, p, c.ID).want(t, http.StatusConflict, chat.CodePrivateChat)
		invite(out, pub, c.ID).want(t, http.StatusForbidden, chat.CodeNotMember)
		invite(out, g, c.ID).want(t, http.StatusNotFound, chat.CodeNotFound)
		invite(out, p, c.ID).want(t, http.StatusNotFound, chat.CodeNotFound)
		invite(a, 987654321, c.ID).want(t, http.StatusNotFound, chat.CodeNotFound)
		invite(a, g, 0).want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)
		if chats := listChats(t, e, out); len(chats) != 0 {
			t.Errorf("refused invitations gave the outsider chats: %+v", chats)
		}
	})
}

func TestJoinLeave(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		a, b, out := e.newUser(t, "Ann"), e.newUser(t, "Ben"), e.newUser(t, "Out")
		pub := e.group(t, a, "Open", true)
		e.send(t, a, pub, "before you came")
		secret := e.group(t, a, "Secret", false, b)
		p := e.private(t, a, b)
		post := func(u *user, chatID int64, action string) resp {
			t.Helper()
			return e.do(t, req{method: "POST", path: chatPath(chatID, "/"+action), token: u.Token})
		}

		r := post(out, pub, "join")
		r.want(t, http.StatusOK, "")
		got := decode[wireChat](t, r)
		if got.ID != pub || got.MemberCount != 2 || got.member(out.ID) == nil || got.LastSeq != 3 || got.MyLastReadSeq != 3 || got.UnreadCount != 0 {
			t.Errorf("join: got %s, want Out as a member with the history before read", r.body)
		}
		if m := got.LastMessage; m == nil || m.Event == nil || *m.Event != (wireEvent{Type: "member_joined", UserID: out.ID, ActorID: out.ID}) {
			t.Errorf("join message: got %+v, want member_joined", m)
		}
		post(out, pub, "join").want(t, http.StatusConflict, chat.CodeAlreadyMember)
		post(out, secret, "join").want(t, http.StatusNotFound, chat.CodeNotFound)
		post(out, p, "join").want(t, http.StatusNotFound, chat.CodeNotFound)
		post(out, 987654321, "join").want(t, http.StatusNotFound, chat.CodeNotFound)
		post(b, secret, "join").want(t, http.StatusConflict, chat.CodeAlreadyMember) // a member: it exists for them

		r = post(out, pub, "leave")
		r.want(t, http.StatusNoContent, "")
		if len(r.body) != 0 {
			t.Errorf("204 with a body: %s", r.body)
		}
		if chats := listChats(t, e, out); len(chats) != 0 {
			t.Errorf("after leaving: got %+v, want no chats", chats)
		}
		hist := decode[wireHistory](t, e.do(t, req{method: "GET", path: chatPath(pub, "/messages"), token: a.Token}))
		if n := len(hist.Messages); n == 0 || hist.Messages[n-1].Event == nil || *hist.Messages[n-1].Event != (wireEvent{Type: "member_left", UserID: out.ID, ActorID: out.ID}) {
			t.Errorf("leave message: got %+v, want member_left last", hist.Messages)
		}
		post(out, pub, "leave").want(t, http.StatusForbidden, chat.CodeNotMember)
		post(out, secret, "leave").want(t, http.StatusNotFound, chat.CodeNotFound)
		post(a, p, "leave").want(t, http.StatusConflict, chat.CodePrivateChat)
		post(a, 987654321, "leave").want(t, http.StatusNotFound, chat.CodeNotFound)
		// The owner may leave too; a group left empty stays joinable.
		post(a, pub, "leave").want(t, http.StatusNoContent, "")
		post(out, pub, "join").want(t, http.StatusOK, "")
		post(b, secret, "leave").want(t, http.StatusNoContent, "")
		post(b, secret, "join").want(t, http.StatusNotFound, chat.CodeNotFound) // hidden once left
	})
}

func TestHistory(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		a, b, out := e.newUser(t, "Ann"), e.newUser(t, "Ben"), e.newUser(t, "Out")
		g := e.group(t, a, "Busy", true, b)
		for i := range 30 {
			from := a
			if i%3 == 0 {
				from = b
			}
			e.send(t, from, g, fmt.Sprint("message ", i)) // seqs 2..31
		}
		page := func(query string) wireHistory {
			t.Helper()
			r := e.do(t, req{method: "GET", path: chatPath(g, "/messages?"+query), token: a.Token})
			r.want(t, http.StatusOK, "")
			return decode[wireHistory](t, r)
		}
		for _, tc := range []struct {
			query    string
			want     []int64
			wantMore bool
		}{
			{"", seqRange(1, 31), false},
			{"limit=10", seqRange(22, 31), true},
			{"limit=31", seqRange(1, 31), false},
			{"before_seq=22&limit=10", seqRange(12, 21), true},
			{"before_seq=11&limit=10", seqRange(1, 10), false},
			{"before_seq=1", []int64{}, false},
			{"before_seq=0", []int64{}, false}, // below seq 0: nothing, not the newest page
			{"before_seq=0&after_seq=0", []int64{}, false},
			{"after_seq=0&limit=10", seqRange(1, 10), true},
			{"after_seq=10&limit=10", seqRange(11, 20), true},
			{"after_seq=25&limit=10", seqRange(26, 31), false},
			{"after_seq=31", []int64{}, false},
			{"after_seq=9223372036854775807", []int64{}, false},
			{"before_seq=9223372036854775807&limit=1", []int64{31}, true},
			{"limit=200", seqRange(1, 31), false},
		} {
			got := page(tc.query)
			if s := seqs(got.Messages); !slices.Equal(s, tc.want) || got.HasMore != tc.wantMore {
				t.Errorf("?%s: got %v has_more=%v, want %v has_more=%v", tc.query, s, got.HasMore, tc.want, tc.wantMore)
			}
		}

		r := e.do(t, req{method: "GET", path: chatPath(g, "/messages?limit=2&after_seq=0"), token: a.Token})
		raw := decode[struct {
			Messages []map[string]any `json:"messages"`
			HasMore  *bool            `json:"has_more"`
		}](t, r)
		if raw.HasMore == nil || len(raw.Messages) != 2 {
			t.Fatalf("got %s, want {messages, has_more}", r.body)
		}
		sys, text := raw.Messages[0], raw.Messages[1]
		if sys["kind"] != "system" || sys["sender_id"] != nil || sys["client_id"] != nil || sys["event"] == nil {
			t.Errorf("system message: got %v, want kind system, null sender and client id, an event", sys)
		}
		if _, ok := text["event"]; ok || text["kind"] != "text" || text["sender_id"] == nil || text["client_id"] == nil || text["body"] != "message 0" {
			t.Errorf("text message: got %v, want kind text with sender, client id and no event", text)
		}
		full := page("after_seq=1&limit=1").Messages
		if len(full) == 1 {
			checkTime(t, "created_at", full[0].CreatedAt)
			if full[0].ChatID != g || full[0].ID <= 0 {
				t.Errorf("message: got %+v", full[0])
			}
		}

		for _, q := range []string{"limit=0", "limit=201", "limit=-1", "before_seq=-1", "after_seq=-1", "limit=x", "before_seq=99999999999999999999"} {
			e.do(t, req{method: "GET", path: chatPath(g, "/messages?"+q), token: a.Token}).want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)
		}
		e.do(t, req{method: "GET", path: chatPath(g, "/messages"), token: out.Token}).want(t, http.StatusForbidden, chat.CodeNotMember)
		secret := e.group(t, a, "Secret", false)
		e.do(t, req{method: "GET", path: chatPath(secret, "/messages"), token: out.Token}).want(t, http.StatusNotFound, chat.CodeNotFound)
		e.do(t, req{method: "GET", path: chatPath(987654321, "/messages"), token: out.Token}).want(t, http.StatusNotFound, chat.CodeNotFound)
	})
}

func TestSend(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		a, b, out := e.newUser(t, "Ann"), e.newUser(t, "Ben"), e.newUser(t, "Out")
		g := e.group(t, a, "Team", true, b)
		p := e.private(t, a, b)
		send := func(u *user, chatID int64, body any) resp {
			t.Helper()
			return e.do(t, req{method: "POST", path: chatPath(chatID, "/messages"), token: u.Token, body: body})
		}

		text := "  keep my  spacing\n and 'quotes'; -- \"too\" \\ % _ "
		r := send(a, g, map[string]string{"body": text, "client_id": "c-1"})
		r.want(t, http.StatusCreated, "")
		m := decode[wireMessage](t, r)
		if m.ID <= 0 || m.ChatID != g || m.Seq != 2 || m.Kind != "text" || m.SenderID == nil || *m.SenderID != a.ID || m.Body != text ||
			m.ClientID == nil || *m.ClientID != "c-1" || m.Event != nil {
			t.Errorf("send: got %s, want Ann's text message with seq 2", r.body)
		}
		checkTime(t, "created_at", m.CreatedAt)

		// A retry answers 200 with the original, whatever the body says now.
		r = send(a, g, map[string]string{"body": "edited", "client_id": "c-1"})
		r.want(t, http.StatusOK, "")
		if again := decode[wireMessage](t, r); again.ID != m.ID || again.Seq != m.Seq || again.Body != text {
			t.Errorf("retry: got %s, want message %d", r.body, m.ID)
		}
		// Client ids are per sender and per chat.
		if r := send(b, g, map[string]string{"body": "mine", "client_id": "c-1"}); r.status == http.StatusCreated {
			if got := decode[wireMessage](t, r).Seq; got != 3 {
				t.Errorf("another sender's c-1: seq %d, want 3", got)
			}
		} else {
			r.want(t, http.StatusCreated, "")
		}
		send(a, p, map[string]string{"body": "private", "client_id": "c-1"}).want(t, http.StatusCreated, "")

		// The sender has read their own message.
		for _, c := range listChats(t, e, a) {
			if c.ID == g && (c.MyLastReadSeq != 2 || c.UnreadCount != 1) {
				t.Errorf("Ann's view of Team: %+v, want read to 2 and Ben's message unread", c)
			}
		}

		longest := strings.Repeat("é", chat.MaxBodyChars)
		send(a, g, map[string]string{"body": longest, "client_id": "long"}).want(t, http.StatusCreated, "")
		send(a, g, map[string]string{"body": "x", "client_id": strings.Repeat("c", 64)}).want(t, http.StatusCreated, "")
		for _, tc := range []struct {
			name  string
			body  map[string]string
			field string
		}{
			{"empty body", map[string]string{"body": "", "client_id": "e1"}, "body.body"},
			{"blank body", map[string]string{"body": " \n\t ", "client_id": "e2"}, "body.body"},
			{"body of 4001", map[string]string{"body": longest + "x", "client_id": "e3"}, "body.body"},
			{"empty client id", map[string]string{"body": "x", "client_id": ""}, "body.client_id"},
			{"client id of 65", map[string]string{"body": "x", "client_id": strings.Repeat("c", 65)}, "body.client_id"},
			{"client id with a newline", map[string]string{"body": "x", "client_id": "a\nb"}, "body.client_id"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				send(a, g, tc.body).wantField(t, tc.field)
			})
		}
		send(a, g, map[string]string{"body": "x"}).want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)
		send(a, g, map[string]string{"client_id": "x"}).want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)

		send(out, g, map[string]string{"body": "x", "client_id": "o1"}).want(t, http.StatusForbidden, chat.CodeNotMember)
		send(out, p, map[string]string{"body": "x", "client_id": "o2"}).want(t, http.StatusNotFound, chat.CodeNotFound)
		send(out, 987654321, map[string]string{"body": "x", "client_id": "o3"}).want(t, http.StatusNotFound, chat.CodeNotFound)

		hist := decode[wireHistory](t, e.do(t, req{method: "GET", path: chatPath(g, "/messages"), token: b.Token}))
		if got, want := seqs(hist.Messages), seqRange(1, 5); !slices.Equal(got, want) {
			t.Errorf("history after the refusals: got %v, want %v", got, want)
		}
	})
}

func TestSendRateLimited(t *testing.T) {
	bothBackends(t, envOptions{rateLimits: true}, func(t *testing.T, e *env) {
		a := e.newUser(t, "Ann")
		g := e.group(t, a, "Spam", false)
		// Far more sends at once than the burst allows, so that refills cannot keep up even on
		// a slow machine.
		const n = 120
		statuses := make([]int, n)
		retry := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				body := fmt.Sprintf(`{"body":"x","client_id":"%d"}`, i)
				hr, err := http.NewRequest("POST", e.srv.URL+chatPath(g, "/messages"), strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				hr.Header.Set("Authorization", "Bearer "+a.Token)
				hr.Header.Set("Content-Type", "application/json")
				res, err := e.srv.Client().Do(hr)
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				statuses[i], retry[i] = res.StatusCode, res.Header.Get("Retry-After")
			})
		}
		wg.Wait()
		created, limited := 0, 0
		for i, st := range statuses {
			switch st {
			case http.StatusCreated:
				created++
			case http.StatusTooManyRequests:
				limited++
				if retry[i] == "" {
					t.Errorf("429 without Retry-After")
				}
			default:
				t.Errorf("send %d: got status %d, want 201 or 429", i, st)
			}
		}
		if limited == 0 || created == 0 {
			t.Errorf("got %d sent and %d refused, want both", created, limited)
		}
		// Exactly the accepted sends are stored.
		hist := decode[wireHistory](t, e.do(t, req{method: "GET", path: chatPath(g, "/messages?limit=200"), token: a.Token}))
		if got, want := len(hist.Messages), created+1; got != want {
			t.Errorf("stored %d messages, want %d (the accepted ones and chat_created)", got, want)
		}
	})
}

type wireRead struct {
	ChatID        int64 `json:"chat_id"`
	MyLastReadSeq int64 `json:"my_last_read_seq"`
	ReadAllSeq    int64 `json:"read_all_seq"`
	UnreadCount   int64 `json:"unread_count"`
}

func TestRead(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		a, b, out := e.newUser(t, "Ann"), e.newUser(t, "Ben"), e.newUser(t, "Out")
		g := e.group(t, a, "Team", true, b)
		for i := range 3 {
			e.send(t, b, g, fmt.Sprint("m", i)) // seqs 2..4; Ben at 4, Ann at 1
		}
		read := func(u *user, chatID int64, seq any) resp {
			t.Helper()
			return e.do(t, req{method: "POST", path: chatPath(chatID, "/read"), token: u.Token, body: map[string]any{"seq": seq}})
		}
		for _, tc := range []struct {
			name string
			seq  int64
			want wireRead
		}{
			{"forward to 2", 2, wireRead{g, 2, 2, 2}},
			{"back to 1 is ignored", 1, wireRead{g, 2, 2, 2}},
			{"zero is ignored", 0, wireRead{g, 2, 2, 2}},
			{"beyond the end is clamped", 1000, wireRead{g, 4, 4, 0}},
		} {
			r := read(a, g, tc.seq)
			r.want(t, http.StatusOK, "")
			if got, want := keys(t, r.body), []string{"chat_id", "my_last_read_seq", "read_all_seq", "unread_count", "unread_mentions"}; !slices.Equal(got, want) {
				t.Errorf("%s: got keys %v, want %v", tc.name, got, want)
			}
			if got := decode[wireRead](t, r); got != tc.want {
				t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
			}
		}
		for _, c := range listChats(t, e, a) {
			if c.ID == g && (c.MyLastReadSeq != 4 || c.UnreadCount != 0 || c.ReadAllSeq != 4) {
				t.Errorf("Ann's view after reading: %+v", c)
			}
		}
		read(a, g, -1).wantField(t, "body.seq")
		read(a, g, "3").want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)
		e.do(t, req{method: "POST", path: chatPath(g, "/read"), token: a.Token, body: map[string]any{}}).want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)
		read(out, g, 1).want(t, http.StatusForbidden, chat.CodeNotMember)
		secret := e.group(t, a, "Secret", false)
		read(out, secret, 1).want(t, http.StatusNotFound, chat.CodeNotFound)
		read(out, 987654321, 1).want(t, http.StatusNotFound, chat.CodeNotFound)
	})
}
