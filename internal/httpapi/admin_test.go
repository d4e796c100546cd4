package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/limit"
	"github.com/wschat/chat/internal/testlog"
)

// Running a group and account settings over HTTP (issue 14), on SQLite and PostgreSQL.

type wireEventX struct {
	Type    string `json:"type"`
	UserID  int64  `json:"user_id"`
	ActorID int64  `json:"actor_id"`
	Title   string `json:"title"`
	Role    string `json:"role"`
	Public  *bool  `json:"public"`
}

type wireMessageX struct {
	Seq      int64       `json:"seq"`
	Kind     string      `json:"kind"`
	SenderID *int64      `json:"sender_id"`
	Body     string      `json:"body"`
	Event    *wireEventX `json:"event"`
}

type wireMemberX struct {
	ID         int64   `json:"id"`
	Name       string  `json:"name"`
	Role       string  `json:"role"`
	LastSeenAt *string `json:"last_seen_at"`
	Deleted    bool    `json:"deleted"`
}

type wireChatX struct {
	ID          int64  `json:"id"`
	Kind        string `json:"kind"`
	Title       string `json:"title"`
	Public      bool   `json:"public"`
	Description string `json:"description"`
	ReadOnly    bool   `json:"read_only"`
	Peer        *struct {
		ID      int64  `json:"id"`
		Name    string `json:"name"`
		Deleted bool   `json:"deleted"`
	} `json:"peer"`
	Members []wireMemberX `json:"members"`
}

func (c wireChatX) role(id int64) string {
	for _, m := range c.Members {
		if m.ID == id {
			return m.Role
		}
	}
	return ""
}

func (e *env) chatAs(t *testing.T, u *user, id int64) wireChatX {
	t.Helper()
	r := e.do(t, req{method: "GET", path: chatPath(id, ""), token: u.Token})
	r.want(t, http.StatusOK, "")
	return decode[wireChatX](t, r)
}

func (e *env) messagesAs(t *testing.T, u *user, id int64) []wireMessageX {
	t.Helper()
	r := e.do(t, req{method: "GET", path: chatPath(id, "/messages?limit=200"), token: u.Token})
	r.want(t, http.StatusOK, "")
	return decode[struct {
		Messages []wireMessageX `json:"messages"`
	}](t, r).Messages
}

func (e *env) promote(t *testing.T, owner, u *user, chatID int64) {
	t.Helper()
	if _, err := e.svc.SetRole(context.Background(), owner.P(), chatID, u.ID, chat.RoleAdmin); err != nil {
		t.Fatalf("promote user %d: %v", u.ID, err)
	}
}

func TestGroupAdministration(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		owner, admin, m, out := e.newUser(t, "Owner"), e.newUser(t, "Admin"), e.newUser(t, "Mia"), e.newUser(t, "Out")
		g := e.group(t, owner, "Team", false, admin, m)
		patch := func(u *user, body any) resp {
			return e.do(t, req{method: "PATCH", path: chatPath(g, ""), token: u.Token, body: body})
		}

		// Roles: the owner makes an admin; the role shows in the member list.
		r := e.do(t, req{method: "PUT", path: chatPath(g, fmt.Sprintf("/members/%d/role", admin.ID)), token: owner.Token, body: map[string]string{"role": "admin"}})
		r.want(t, http.StatusOK, "")
		if c := decode[wireChatX](t, r); c.role(admin.ID) != chat.RoleAdmin || c.role(owner.ID) != chat.RoleOwner || c.role(m.ID) != chat.RoleMember {
			t.Errorf("roles after the promotion: %+v", c.Members)
		}
		for _, bad := range []any{map[string]string{"role": "owner"}, map[string]string{"role": "king"}, map[string]int{"role": 1}} {
			e.do(t, req{method: "PUT", path: chatPath(g, fmt.Sprintf("/members/%d/role", m.ID)), token: owner.Token, body: bad}).wantField(t, "body.role")
		}
		for _, bad := range []any{map[string]string{}, `{"role":`} {
			e.do(t, req{method: "PUT", path: chatPath(g, fmt.Sprintf("/members/%d/role", m.ID)), token: owner.Token, body: bad}).want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)
		}

		// An admin renames, makes it public and describes it; each is a system message.
		r = patch(admin, map[string]any{"title": "  Dream team  ", "public": true, "description": "We build things.\nTogether."})
		r.want(t, http.StatusOK, "")
		if c := decode[wireChatX](t, r); c.Title != "Dream team" || !c.Public || c.Description != "We build things.\nTogether." {
			t.Errorf("after the update: %+v", c)
		}
		msgs := e.messagesAs(t, m, g)
		tail := msgs[len(msgs)-3:]
		if ev := tail[0].Event; ev == nil || ev.Type != chat.SysChatRenamed || ev.Title != "Dream team" || ev.ActorID != admin.ID {
			t.Errorf("rename message: %+v", ev)
		}
		if ev := tail[1].Event; ev == nil || ev.Type != chat.SysVisibilityChanged || ev.Public == nil || !*ev.Public {
			t.Errorf("visibility message: %+v", ev)
		}
		if ev := tail[2].Event; ev == nil || ev.Type != chat.SysDescriptionChanged {
			t.Errorf("description message: %+v", ev)
		}
		// Now public: a stranger finds it by its new title.
		r = e.do(t, req{method: "GET", path: "/api/v1/chats/discover?q=dream", token: out.Token})
		if !strings.Contains(string(r.body), fmt.Sprintf(`"id":%d`, g)) {
			t.Errorf("discover by the new title: %s", r.body)
		}
		// The same values again: nothing new.
		patch(owner, map[string]any{"title": "Dream team"}).want(t, http.StatusOK, "")
		if got := len(e.messagesAs(t, m, g)); got != len(msgs) {
			t.Errorf("a patch that changes nothing stored %d messages", got-len(msgs))
		}
		for _, c := range []struct {
			body  any
			field string
		}{
			{map[string]any{}, "body"},
			{map[string]any{"title": ""}, "body.title"},
			{map[string]any{"title": "   "}, "body.title"},
			{map[string]any{"title": strings.Repeat("t", 101)}, "body.title"},
			{map[string]any{"title": "evil\u202egpj.exe"}, "body.title"},
			{map[string]any{"description": strings.Repeat("d", 501)}, "body.description"},
			{map[string]any{"description": "bell\x07"}, "body.description"},
			{map[string]any{"public": "yes"}, "body.public"},
		} {
			patch(owner, c.body).wantField(t, c.field)
		}
		// A Windows line break is a line break.
		r = patch(owner, map[string]any{"description": "One\r\nTwo\rThree"})
		if r.want(t, http.StatusOK, ""); decode[wireChatX](t, r).Description != "One\nTwo\nThree" {
			t.Errorf("a description with \\r\\n: %s", r.body)
		}

		// Transfer: Mia owns it, the owner becomes an admin.
		e.do(t, req{method: "POST", path: chatPath(g, "/transfer"), token: owner.Token, body: map[string]int64{"user_id": owner.ID}}).wantField(t, "body.user_id")
		e.do(t, req{method: "POST", path: chatPath(g, "/transfer"), token: owner.Token, body: map[string]int64{"user_id": out.ID}}).want(t, http.StatusNotFound, chat.CodeNotFound)
		r = e.do(t, req{method: "POST", path: chatPath(g, "/transfer"), token: owner.Token, body: map[string]int64{"user_id": m.ID}})
		r.want(t, http.StatusOK, "")
		if c := decode[wireChatX](t, r); c.role(m.ID) != chat.RoleOwner || c.role(owner.ID) != chat.RoleAdmin {
			t.Errorf("roles after the transfer: %+v", c.Members)
		}
		if last := e.messagesAs(t, m, g); last[len(last)-1].Event.Type != chat.SysOwnerTransferred {
			t.Errorf("transfer message: %+v", last[len(last)-1].Event)
		}

		// Removal: the new owner removes the former one (an admin now).
		e.do(t, req{method: "DELETE", path: chatPath(g, fmt.Sprintf("/members/%d", m.ID)), token: m.Token}).wantField(t, "path.user_id")
		e.do(t, req{method: "DELETE", path: chatPath(g, fmt.Sprintf("/members/%d", owner.ID)), token: admin.Token}).want(t, http.StatusForbidden, chat.CodeNotOwner)
		e.do(t, req{method: "DELETE", path: chatPath(g, fmt.Sprintf("/members/%d", m.ID)), token: admin.Token}).want(t, http.StatusForbidden, chat.CodeForbidden)
		e.do(t, req{method: "DELETE", path: chatPath(g, fmt.Sprintf("/members/%d", out.ID)), token: m.Token}).want(t, http.StatusNotFound, chat.CodeNotFound)
		e.do(t, req{method: "DELETE", path: chatPath(g, fmt.Sprintf("/members/%d", owner.ID)), token: m.Token}).want(t, http.StatusNoContent, "")
		if last := e.messagesAs(t, m, g); last[len(last)-1].Event.Type != chat.SysMemberRemoved || last[len(last)-1].Event.UserID != owner.ID {
			t.Errorf("removal message: %+v", last[len(last)-1].Event)
		}
		// Removed from a public group: like any stranger of it.
		e.do(t, req{method: "GET", path: chatPath(g, "/messages"), token: owner.Token}).want(t, http.StatusForbidden, chat.CodeNotMember)
		e.do(t, req{method: "POST", path: chatPath(g, "/messages"), token: owner.Token, body: map[string]string{"body": "hey", "client_id": "k"}}).want(t, http.StatusForbidden, chat.CodeNotMember)

		// Deletion: the owner only; then it is gone for everyone, everywhere.
		e.do(t, req{method: "DELETE", path: chatPath(g, ""), token: admin.Token}).want(t, http.StatusForbidden, chat.CodeNotOwner)
		e.do(t, req{method: "DELETE", path: chatPath(g, ""), token: m.Token}).want(t, http.StatusNoContent, "")
		for _, u := range []*user{m, admin, out} {
			e.do(t, req{method: "GET", path: chatPath(g, ""), token: u.Token}).want(t, http.StatusNotFound, chat.CodeNotFound)
			e.do(t, req{method: "GET", path: chatPath(g, "/messages"), token: u.Token}).want(t, http.StatusNotFound, chat.CodeNotFound)
			e.do(t, req{method: "POST", path: chatPath(g, "/messages"), token: u.Token, body: map[string]string{"body": "x", "client_id": "gone"}}).want(t, http.StatusNotFound, chat.CodeNotFound)
			e.do(t, req{method: "POST", path: chatPath(g, "/join"), token: u.Token}).want(t, http.StatusNotFound, chat.CodeNotFound)
			e.do(t, req{method: "DELETE", path: chatPath(g, ""), token: u.Token}).want(t, http.StatusNotFound, chat.CodeNotFound)
			if r := e.do(t, req{method: "GET", path: "/api/v1/chats", token: u.Token}); strings.Contains(string(r.body), fmt.Sprintf(`"id":%d,`, g)) {
				t.Errorf("user %d still lists the deleted group: %s", u.ID, r.body)
			}
		}
	})
}

// The callers of the administration matrix.
const (
	aOwner     = "owner"
	aAdmin     = "admin"
	aMember    = "member"
	aStranger  = "non-member"
	aExMember  = "ex-member"
	aKicked    = "removed member"
	aAnonymous = "unauthenticated"
)

// The endpoints of the administration matrix.
const (
	aUpdate   = "PATCH /chats/{id}"
	aDelete   = "DELETE /chats/{id}"
	aKick     = "DELETE /chats/{id}/members/{user_id}"
	aRole     = "PUT /chats/{id}/members/{user_id}/role"
	aTransfer = "POST /chats/{id}/transfer"
)

// adminExpectation is the answer to caller on endpoint of a chat of kind; the target of a
// removal, a role or a transfer is a plain member.
func adminExpectation(caller, kind, endpoint string) (int, string) {
	switch {
	case caller == aAnonymous:
		return http.StatusUnauthorized, chat.CodeUnauthenticated
	case caller == aStranger || caller == aExMember || caller == aKicked:
		if kind == kPublicGroup {
			return http.StatusForbidden, chat.CodeNotMember
		}
		return http.StatusNotFound, chat.CodeNotFound
	case kind == kPrivate && caller == aOwner: // its two members hold no roles; nothing to run
		return http.StatusConflict, chat.CodePrivateChat
	case kind == kPrivate: // the admin and the member of the fixture are strangers to it
		return http.StatusNotFound, chat.CodeNotFound
	}
	ok := map[string]int{aUpdate: http.StatusOK, aDelete: http.StatusNoContent, aKick: http.StatusNoContent, aRole: http.StatusOK, aTransfer: http.StatusOK}[endpoint]
	switch caller {
	case aOwner:
		return ok, ""
	case aAdmin:
		if endpoint == aDelete || endpoint == aTransfer {
			return http.StatusForbidden, chat.CodeNotOwner
		}
		return ok, ""
	}
	if endpoint == aDelete || endpoint == aTransfer {
		return http.StatusForbidden, chat.CodeNotOwner
	}
	return http.StatusForbidden, chat.CodeNotAdmin
}

var adminWorlds atomic.Int64

// TestAdminAuthorizationMatrix asks every endpoint of running a group, as every kind of caller,
// about every kind of chat, each cell on a fresh fixture.
func TestAdminAuthorizationMatrix(t *testing.T) {
	callers := []string{aOwner, aAdmin, aMember, aStranger, aExMember, aKicked, aAnonymous}
	kinds := []string{kPrivate, kPrivateGroup, kPublicGroup}
	endpoints := []string{aUpdate, aDelete, aKick, aRole, aTransfer}
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		for _, caller := range callers {
			for _, kind := range kinds {
				for _, endpoint := range endpoints {
					t.Run(fmt.Sprintf("%s/%s/%s", caller, kind, endpoint), func(t *testing.T) {
						t.Parallel()
						ctx := context.Background()
						n := adminWorlds.Add(1)
						owner, admin, member, target := e.newUser(t, "Owner"), e.newUser(t, "Admin"), e.newUser(t, "Member"), e.newUser(t, "Target")
						var id int64
						switch kind {
						case kPrivate:
							id = e.private(t, owner, target)
						default:
							id = e.group(t, owner, fmt.Sprintf("Matrix %d", n), kind == kPublicGroup, admin, member, target)
							e.promote(t, owner, admin, id)
						}
						e.send(t, owner, id, "hello")
						var token string
						switch caller {
						case aOwner:
							token = owner.Token
						case aAdmin:
							token = admin.Token
						case aMember:
							token = member.Token
						case aStranger:
							token = e.newUser(t, "Stranger").Token
						case aExMember, aKicked:
							ex := e.newUser(t, "Ex")
							token = ex.Token
							if kind == kPrivate { // nobody leaves a private chat: a stranger
								break
							}
							if _, err := e.svc.Invite(ctx, owner.P(), id, ex.ID); err != nil {
								t.Fatal(err)
							}
							if caller == aKicked {
								if err := e.svc.RemoveMember(ctx, admin.P(), id, ex.ID); err != nil {
									t.Fatal(err)
								}
							} else {
								e.leave(t, ex, id)
							}
						}
						r := req{token: token}
						switch endpoint {
						case aUpdate:
							r.method, r.path, r.body = "PATCH", chatPath(id, ""), map[string]any{"title": "Renamed", "description": "new"}
						case aDelete:
							r.method, r.path = "DELETE", chatPath(id, "")
						case aKick:
							r.method, r.path = "DELETE", chatPath(id, fmt.Sprintf("/members/%d", target.ID))
						case aRole:
							r.method, r.path, r.body = "PUT", chatPath(id, fmt.Sprintf("/members/%d/role", target.ID)), map[string]string{"role": "admin"}
						case aTransfer:
							r.method, r.path, r.body = "POST", chatPath(id, "/transfer"), map[string]int64{"user_id": target.ID}
						}
						before, _, err := e.store.History(ctx, chat.HistoryQuery{ChatID: id, Limit: 200})
						if err != nil {
							t.Fatal(err)
						}
						got := e.do(t, r)
						status, code := adminExpectation(caller, kind, endpoint)
						got.want(t, status, code)
						// A refusal stores nothing.
						if got.status >= 400 {
							after, _, err := e.store.History(ctx, chat.HistoryQuery{ChatID: id, Limit: 200})
							if err != nil || len(after) != len(before) {
								t.Errorf("a refused request changed the chat: %d messages, then %d (%v)", len(before), len(after), err)
							}
						}
					})
				}
			}
		}
	})
}

// TestAdminRulesBetweenRoles: who may act on whom, beyond the matrix's plain member target.
func TestAdminRulesBetweenRoles(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		owner, a1, a2, m := e.newUser(t, "Owner"), e.newUser(t, "A1"), e.newUser(t, "A2"), e.newUser(t, "M")
		g := e.group(t, owner, "Roles", false, a1, a2, m)
		e.promote(t, owner, a1, g)
		e.promote(t, owner, a2, g)
		role := func(by, who *user, r string) resp {
			return e.do(t, req{method: "PUT", path: chatPath(g, fmt.Sprintf("/members/%d/role", who.ID)), token: by.Token, body: map[string]string{"role": r}})
		}
		kick := func(by, who *user) resp {
			return e.do(t, req{method: "DELETE", path: chatPath(g, fmt.Sprintf("/members/%d", who.ID)), token: by.Token})
		}
		role(a1, a2, "member").want(t, http.StatusForbidden, chat.CodeNotOwner)
		role(a1, owner, "member").want(t, http.StatusForbidden, chat.CodeForbidden)
		role(owner, owner, "admin").want(t, http.StatusForbidden, chat.CodeForbidden)
		kick(a1, a2).want(t, http.StatusForbidden, chat.CodeNotOwner)
		kick(a1, owner).want(t, http.StatusForbidden, chat.CodeForbidden)
		role(a1, m, "admin").want(t, http.StatusOK, "")
		role(a1, m, "admin").want(t, http.StatusOK, "") // again: nothing changes
		role(m, m, "member").want(t, http.StatusOK, "") // an admin steps down
		role(owner, a2, "member").want(t, http.StatusOK, "")
		role(a1, e.newUser(t, "Nobody"), "admin").want(t, http.StatusNotFound, chat.CodeNotFound)
		kick(owner, a1).want(t, http.StatusNoContent, "")
		// Removed from a private group: it is no longer theirs to see.
		e.do(t, req{method: "PUT", path: chatPath(g, fmt.Sprintf("/members/%d/role", m.ID)), token: a1.Token, body: map[string]string{"role": "admin"}}).want(t, http.StatusNotFound, chat.CodeNotFound)
		c := e.chatAs(t, owner, g)
		for id, want := range map[int64]string{owner.ID: chat.RoleOwner, a2.ID: chat.RoleMember, m.ID: chat.RoleMember, a1.ID: ""} {
			if got := c.role(id); got != want {
				t.Errorf("user %d: role %q, want %q", id, got, want)
			}
		}
		// The owner leaving hands the group on.
		e.leave(t, owner, g)
		if c := e.chatAs(t, m, g); c.role(a2.ID) != chat.RoleOwner && c.role(m.ID) != chat.RoleOwner {
			t.Errorf("after the owner left nobody owns the group: %+v", c.Members)
		}
	})
}

func TestAccountSettings(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		ann, ben := e.newUser(t, "Ann"), e.newUser(t, "Ben")
		g := e.group(t, ann, "Pals", false, ben)
		dm := e.private(t, ann, ben)
		e.send(t, ann, dm, "see you")

		// The display name.
		r := e.do(t, req{method: "PATCH", path: "/api/v1/users/me", token: ann.Token, body: map[string]string{"name": "  Annie  "}})
		r.want(t, http.StatusOK, "")
		if got := decode[wireUser](t, r); got.Name != "Annie" || got.Email != ann.Email {
			t.Errorf("renamed: %+v", got)
		}
		if c := e.chatAs(t, ben, dm); c.Title != "Annie" || c.Peer.Name != "Annie" {
			t.Errorf("ben's private chat after the rename: title %q, peer %+v", c.Title, c.Peer)
		}
		for _, bad := range []string{"", "   ", strings.Repeat("n", 65), "An\u200bnie", "tab\tname"} {
			e.do(t, req{method: "PATCH", path: "/api/v1/users/me", token: ann.Token, body: map[string]string{"name": bad}}).wantField(t, "body.name")
		}
		e.do(t, req{method: "PATCH", path: "/api/v1/users/me", body: map[string]string{"name": "X"}}).want(t, http.StatusUnauthorized, chat.CodeUnauthenticated)

		// The password: the current one is needed; the others can be signed out.
		other := e.signInWith(t, ann, fixturePassword)
		pw := func(body any) resp {
			return e.do(t, req{method: "POST", path: "/api/v1/users/me/password", token: ann.Token, body: body})
		}
		r = pw(map[string]any{"current_password": "not it", "new_password": "a new secret"})
		r.want(t, http.StatusForbidden, chat.CodeWrongPassword)
		if r.status == http.StatusForbidden && r.problem(t).Errors[0].Location != "body.current_password" {
			t.Errorf("wrong password: %s", r.body)
		}
		pw(map[string]any{"current_password": fixturePassword, "new_password": "short"}).wantField(t, "body.new_password")
		pw(map[string]any{"current_password": fixturePassword, "new_password": strings.Repeat("p", 129)}).wantField(t, "body.new_password")
		pw(map[string]any{"current_password": fixturePassword, "new_password": "a new secret", "sign_out_others": true}).want(t, http.StatusNoContent, "")
		e.do(t, req{method: "GET", path: "/api/v1/users/me", token: other.Token}).want(t, http.StatusUnauthorized, chat.CodeUnauthenticated)
		e.do(t, req{method: "GET", path: "/api/v1/users/me", token: ann.Token}).want(t, http.StatusOK, "")
		e.do(t, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": ann.Email, "password": fixturePassword}}).want(t, http.StatusUnauthorized, chat.CodeInvalidCredentials)
		e.signInWith(t, ann, "a new secret")

		// Deleting the account.
		del := func(body any) resp {
			return e.do(t, req{method: "DELETE", path: "/api/v1/users/me", token: ann.Token, body: body})
		}
		del(map[string]string{"password": fixturePassword}).want(t, http.StatusForbidden, chat.CodeWrongPassword)
		del(nil).want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)
		r = del(map[string]string{"password": "a new secret"})
		r.want(t, http.StatusNoContent, "")
		if c := cookie(r.cookies, "access_token"); c == nil || c.MaxAge >= 0 && c.Value != "" {
			t.Errorf("deleting the account leaves the access cookie: %+v", c)
		}
		e.do(t, req{method: "GET", path: "/api/v1/users/me", token: ann.Token}).want(t, http.StatusUnauthorized, chat.CodeUnauthenticated)
		e.do(t, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": ann.Email, "password": "a new secret"}}).want(t, http.StatusUnauthorized, chat.CodeInvalidCredentials)

		// Ben: the private chat is read-only, with Ann's words kept; the group is his.
		c := e.chatAs(t, ben, dm)
		if !c.ReadOnly || c.Title != chat.DeletedName || c.Peer == nil || !c.Peer.Deleted {
			t.Errorf("ben's private chat after ann left for good: %+v", c)
		}
		if msgs := e.messagesAs(t, ben, dm); len(msgs) != 1 || msgs[0].Body != "see you" || *msgs[0].SenderID != ann.ID {
			t.Errorf("ben's private chat's history: %+v", msgs)
		}
		e.do(t, req{method: "POST", path: chatPath(dm, "/messages"), token: ben.Token, body: map[string]string{"body": "hello?", "client_id": "ro"}}).want(t, http.StatusForbidden, chat.CodePeerDeleted)
		e.do(t, req{method: "POST", path: chatPath(dm, "/read"), token: ben.Token, body: map[string]int64{"seq": 1}}).want(t, http.StatusOK, "")
		if c := e.chatAs(t, ben, g); c.role(ben.ID) != chat.RoleOwner || c.role(ann.ID) != "" {
			t.Errorf("the group after ann's deletion: %+v", c.Members)
		}
		if msgs := e.messagesAs(t, ben, g); msgs[len(msgs)-2].Event.Type != chat.SysMemberLeft || msgs[len(msgs)-1].Event.Type != chat.SysOwnerTransferred {
			t.Errorf("the group's last messages: %+v %+v", msgs[len(msgs)-2].Event, msgs[len(msgs)-1].Event)
		}
		r = e.do(t, req{method: "GET", path: fmt.Sprint("/api/v1/users/", ann.ID), token: ben.Token})
		if got := decode[struct {
			Name    string `json:"name"`
			Deleted bool   `json:"deleted"`
			Online  bool   `json:"online"`
		}](t, r); got.Name != chat.DeletedName || !got.Deleted || got.Online {
			t.Errorf("the deleted user's profile: %s", r.body)
		}
		e.do(t, req{method: "POST", path: "/api/v1/chats", token: ben.Token, body: map[string]any{"kind": "group", "title": "New", "member_ids": []int64{ann.ID}}}).want(t, http.StatusNotFound, chat.CodeUserNotFound)
		e.do(t, req{method: "POST", path: chatPath(g, "/members"), token: ben.Token, body: map[string]int64{"user_id": ann.ID}}).want(t, http.StatusNotFound, chat.CodeUserNotFound)
		// The email is free again.
		e.do(t, req{method: "POST", path: "/api/v1/auth/register", body: map[string]string{"email": ann.Email, "name": "Ann again", "password": "yet another one"}}).want(t, http.StatusCreated, "")
	})
}

// signInWith signs u in again with password, as a new device.
func (e *env) signInWith(t *testing.T, u *user, password string) *user {
	t.Helper()
	r := e.do(t, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": u.Email, "password": password}})
	r.want(t, http.StatusOK, "")
	d := *u
	d.Token = decode[wireTokens](t, r).AccessToken
	return &d
}

// TestLastSeen: a user's last seen shows to those who share a chat with them, while they are
// offline (nobody is online on this server without the real-time layer), and to nobody else.
func TestLastSeen(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		ann, ben, stranger := e.newUser(t, "Ann"), e.newUser(t, "Ben"), e.newUser(t, "Stranger")
		g := e.group(t, ann, "Public", true, ben)
		profile := func(as *user) map[string]any {
			return decode[map[string]any](t, e.do(t, req{method: "GET", path: fmt.Sprint("/api/v1/users/", ben.ID), token: as.Token}))
		}
		if _, ok := profile(ann)["last_seen_at"]; ok {
			t.Errorf("a user never seen has a last seen time")
		}
		e.svc.Seen(context.Background(), ben.ID, time.Now())
		seen, ok := profile(ann)["last_seen_at"].(string)
		if !ok {
			t.Fatalf("ben's profile as a co-member: no last_seen_at")
		}
		checkTime(t, "last_seen_at", seen)
		if at, _ := time.Parse(time.RFC3339, seen); time.Since(at) > time.Minute || time.Since(at) < -time.Minute {
			t.Errorf("last seen %s, want about now", seen)
		}
		if _, ok := profile(stranger)["last_seen_at"]; ok {
			t.Errorf("a stranger sees ben's last seen time")
		}
		for _, c := range []struct {
			viewer *user
			want   bool
		}{{ann, true}, {stranger, false}} {
			r := e.do(t, req{method: "GET", path: chatPath(g, ""), token: c.viewer.Token})
			var ms []wireMemberX
			for _, m := range decode[wireChatX](t, r).Members {
				if m.ID == ben.ID {
					ms = append(ms, m)
				}
			}
			if len(ms) != 1 || (ms[0].LastSeenAt != nil) != c.want {
				t.Errorf("ben's member row as %s: %+v, want last seen %v", c.viewer.Name, ms, c.want)
			}
		}
	})
}

// TestOnlineOnlyToSharers: whether a user is online is told, as their last seen time is, only
// to those who share a chat with them: a stranger polling the profile, the user search or the
// member list of a public group they are not in learnt when anyone came and went.
func TestOnlineOnlyToSharers(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		ann, ben, carl, stranger := e.newUser(t, "Ann"), e.newUser(t, "Ben"), e.newUser(t, "Carl"), e.newUser(t, "Stranger")
		g := e.group(t, ann, "Public", true, ben)
		e.private(t, carl, ben) // Carl is not in the group, but shares a chat with Ben
		type views struct{ profile, search, member bool }
		view := func(as *user) views {
			var v views
			v.profile = decode[wireUser](t, e.do(t, req{method: "GET", path: fmt.Sprint("/api/v1/users/", ben.ID), token: as.Token})).Online
			found := decode[struct{ Users []wireUser }](t, e.do(t, req{method: "GET", path: "/api/v1/users?q=" + ben.Email, token: as.Token})).Users
			if len(found) != 1 || found[0].ID != ben.ID {
				t.Fatalf("%s searching Ben's email found %+v, want Ben", as.Name, found)
			}
			v.search = found[0].Online
			if m := decode[wireChat](t, e.do(t, req{method: "GET", path: chatPath(g, ""), token: as.Token})).member(ben.ID); m != nil {
				v.member = m.Online
			}
			return v
		}
		e.ts.Dial(t, ben)
		// Presence is marked just after the hello: wait until a member sees it.
		for deadline := time.Now().Add(10 * time.Second); !view(ann).profile && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		for _, c := range []struct {
			viewer *user
			want   views
		}{
			{ann, views{true, true, true}},
			{ben, views{true, true, true}},
			{carl, views{true, true, true}},
			{stranger, views{false, false, false}},
		} {
			if got := view(c.viewer); got != c.want {
				t.Errorf("Ben online, as seen by %s (profile, search, member list): %+v, want %+v", c.viewer.Name, got, c.want)
			}
		}
	})
}

// TestAccountLimits: a password check counts against the login limit of the account's email
// (a stolen access token guesses no faster than a login), and a rename is a chat change.
func TestAccountLimits(t *testing.T) {
	limits := chat.Limits{LoginFailsPerEmail: limit.Rate{Burst: 2, Per: time.Hour}, ChatsPerUser: limit.Rate{Burst: 2, Per: time.Hour}}
	bothBackends(t, envOptions{rateLimits: true, limits: limits}, func(t *testing.T, e *env) {
		ann, ben := e.newUser(t, "Ann"), e.newUser(t, "Ben")
		wrong := map[string]any{"current_password": "guess", "new_password": "whatever123"}
		for range 2 {
			e.do(t, req{method: "POST", path: "/api/v1/users/me/password", token: ann.Token, body: wrong}).want(t, http.StatusForbidden, chat.CodeWrongPassword)
		}
		wantLimited(t, "third guess", e.do(t, req{method: "POST", path: "/api/v1/users/me/password", token: ann.Token, body: wrong}))
		wantLimited(t, "delete after the guesses", e.do(t, req{method: "DELETE", path: "/api/v1/users/me", token: ann.Token, body: map[string]string{"password": fixturePassword}}))
		wantLimited(t, "login after the guesses", e.do(t, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": ann.Email, "password": fixturePassword}}))
		for i := range 2 {
			e.do(t, req{method: "PATCH", path: "/api/v1/users/me", token: ben.Token, body: map[string]string{"name": fmt.Sprint("Ben ", i)}}).want(t, http.StatusOK, "")
		}
		wantLimited(t, "third rename", e.do(t, req{method: "PATCH", path: "/api/v1/users/me", token: ben.Token, body: map[string]string{"name": "Ben 3"}}))
	})
}

// TestAccountSecretsNeverEchoed: the passwords of the account endpoints never come back in an
// answer or go to the log, whatever is wrong with the request.
func TestAccountSecretsNeverEchoed(t *testing.T) {
	logs := &testlog.Buffer{}
	bothBackends(t, envOptions{logs: logs}, func(t *testing.T, e *env) {
		ann := e.newUser(t, "Ann")
		long := "Long-" + strings.Repeat("y", 600)
		cases := []struct {
			secret string
			r      req
		}{
			{"Sekr3t-new-short", req{method: "POST", path: "/api/v1/users/me/password", body: map[string]string{"current_password": fixturePassword, "new_password": "Sh0rt"}}},
			{"Sh0rt", req{method: "POST", path: "/api/v1/users/me/password", body: map[string]string{"current_password": fixturePassword, "new_password": "Sh0rt"}}},
			{long, req{method: "POST", path: "/api/v1/users/me/password", body: map[string]string{"current_password": fixturePassword, "new_password": long}}},
			{long, req{method: "POST", path: "/api/v1/users/me/password", body: map[string]string{"current_password": long, "new_password": "fine password"}}},
			{"Sekr3t-wrong-current", req{method: "POST", path: "/api/v1/users/me/password", body: map[string]string{"current_password": "Sekr3t-wrong-current", "new_password": "fine password"}}},
			{"Sekr3t-malformed", req{method: "POST", path: "/api/v1/users/me/password", body: `{"current_password":"Sekr3t-malformed"`}},
			{"Sekr3t-typed", req{method: "POST", path: "/api/v1/users/me/password", body: `{"current_password":"Sekr3t-typed","new_password":12}`}},
			{"Sekr3t-delete-wrong", req{method: "DELETE", path: "/api/v1/users/me", body: map[string]string{"password": "Sekr3t-delete-wrong"}}},
			{long, req{method: "DELETE", path: "/api/v1/users/me", body: map[string]string{"password": long}}},
			{"Sekr3t-delete-malformed", req{method: "DELETE", path: "/api/v1/users/me", body: `{"password":"Sekr3t-delete-malformed`}},
		}
		for _, c := range cases {
			c.r.token = ann.Token
			got := e.do(t, c.r)
			if got.status < 400 {
				t.Errorf("%s %s with %q: got %d, want a refusal", c.r.method, c.r.path, c.secret[:min(20, len(c.secret))], got.status)
			}
			if strings.Contains(string(got.body), c.secret) {
				t.Errorf("%s %s: the answer echoes the secret: %s", c.r.method, c.r.path, got.body)
			}
		}
		for _, c := range cases {
			if c.secret != "Sh0rt" && strings.Contains(logs.String(), c.secret) {
				t.Errorf("the log holds the secret %q", c.secret[:min(20, len(c.secret))])
			}
		}
	})
}
