package httpapi_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/limit"
)

// The abuse limits of the REST API at their boundaries, with small configured values; the
// defaults are checked in internal/config.

func wantLimited(t *testing.T, what string, r resp) {
	t.Helper()
	if r.status != http.StatusTooManyRequests || r.problem(t).Code != chat.CodeRateLimited {
		t.Errorf("%s: got %d %s, want 429 rate_limited", what, r.status, r.body)
		return
	}
	if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("%s: Retry-After %q, want whole seconds", what, r.header.Get("Retry-After"))
	}
}

// TestReadRateLimited: the reads that query the database share one budget per user; past it
// every one of them answers 429, while writes, another user, and a server without rate
// limits are unaffected.
func TestReadRateLimited(t *testing.T) {
	const burst = 7
	limits := chat.Limits{ReadsPerUser: limit.Rate{Burst: burst, Per: time.Hour}}
	reads := func(g, userID int64) []req {
		return []req{
			{method: "GET", path: fmt.Sprint("/api/v1/users/", userID)},
			{method: "GET", path: "/api/v1/chats"},
			{method: "GET", path: chatPath(g, "")},
			{method: "GET", path: chatPath(g, "/messages")},
			{method: "GET", path: "/api/v1/users?q=a"},
			{method: "GET", path: "/api/v1/chats/discover?q=a"},
			{method: "GET", path: "/api/v1/auth/sessions"},
		}
	}
	bothBackends(t, envOptions{rateLimits: true, limits: limits}, func(t *testing.T, e *env) {
		ann, ben := e.newUser(t, "Ann"), e.newUser(t, "Ben")
		g := e.group(t, ann, "Team", false, ben)
		for _, r := range reads(g, ann.ID) { // one of each: burst reads
			r.token = ann.Token
			e.do(t, r).want(t, http.StatusOK, "")
		}
		for _, r := range reads(g, ann.ID) {
			r.token = ann.Token
			wantLimited(t, r.method+" "+r.path, e.do(t, r))
		}
		// Not reads: sending and the caller's own account.
		e.do(t, req{method: "POST", path: chatPath(g, "/messages"), token: ann.Token,
			body: map[string]string{"body": "still here", "client_id": "c1"}}).want(t, http.StatusCreated, "")
		e.do(t, req{method: "GET", path: "/api/v1/users/me", token: ann.Token}).want(t, http.StatusOK, "")
		// Another user has a budget of their own.
		e.do(t, req{method: "GET", path: chatPath(g, "/messages"), token: ben.Token}).want(t, http.StatusOK, "")
	})
	t.Run("off", func(t *testing.T) {
		bothBackends(t, envOptions{limits: limits}, func(t *testing.T, e *env) {
			ann := e.newUser(t, "Ann")
			g := e.group(t, ann, "Team", false)
			for i := range 3 {
				for _, r := range reads(g, ann.ID) {
					r.token = ann.Token
					if got := e.do(t, r); got.status != http.StatusOK {
						t.Fatalf("round %d, %s %s: got %d %s, want 200 without rate limits", i+1, r.method, r.path, got.status, got.body)
					}
				}
			}
		})
	})
}

// TestUserChatLimit: whoever would become a member of one chat more than CHAT_LIMIT_USER_CHATS
// allows is refused with 403 forbidden, however they would join; leaving frees a place.
func TestUserChatLimit(t *testing.T) {
	bothBackends(t, envOptions{limits: chat.Limits{UserChats: 2}}, func(t *testing.T, e *env) {
		ann, ben, cid, dan := e.newUser(t, "Ann"), e.newUser(t, "Ben"), e.newUser(t, "Cid"), e.newUser(t, "Dan")
		create := func(u *user, body map[string]any) resp {
			return e.do(t, req{method: "POST", path: "/api/v1/chats", token: u.Token, body: body})
		}
		create(ann, map[string]any{"kind": "group", "title": "One"}).want(t, http.StatusCreated, "")
		two := decode[struct{ ID int64 }](t, create(ann, map[string]any{"kind": "group", "title": "Two"})).ID
		open := e.group(t, dan, "Open", true)

		for _, tc := range []struct {
			name string
			r    resp
			who  string
		}{
			{"create a group", create(ann, map[string]any{"kind": "group", "title": "Three"}), "you already belong to 2 chats"},
			{"open a private chat", create(ann, map[string]any{"kind": "private", "member_ids": []int64{ben.ID}}), "you already belong to 2 chats"},
			{"be opened a private chat", create(ben, map[string]any{"kind": "private", "member_ids": []int64{ann.ID}}), fmt.Sprintf("user %d already belongs to 2 chats", ann.ID)},
			{"be a first member", create(cid, map[string]any{"kind": "group", "title": "With Ann", "member_ids": []int64{ben.ID, ann.ID}}), fmt.Sprintf("user %d already belongs to 2 chats", ann.ID)},
			{"join", e.do(t, req{method: "POST", path: chatPath(open, "/join"), token: ann.Token}), "you already belong to 2 chats"},
			{"be invited", e.do(t, req{method: "POST", path: chatPath(open, "/members"), token: dan.Token, body: map[string]int64{"user_id": ann.ID}}), fmt.Sprintf("user %d already belongs to 2 chats", ann.ID)},
		} {
			tc.r.want(t, http.StatusForbidden, chat.CodeForbidden)
			if tc.r.status == http.StatusForbidden && !strings.Contains(tc.r.problem(t).Detail, tc.who) {
				t.Errorf("%s: detail %q, want it to say %q", tc.name, tc.r.problem(t).Detail, tc.who)
			}
		}
		for _, u := range []*user{ben, cid} {
			list := decode[struct{ Chats []struct{ ID int64 } }](t, e.do(t, req{method: "GET", path: "/api/v1/chats", token: u.Token}))
			if len(list.Chats) != 0 {
				t.Errorf("user %s is in %d chats after refused creations, want 0", u.Name, len(list.Chats))
			}
		}

		e.do(t, req{method: "POST", path: chatPath(two, "/leave"), token: ann.Token}).want(t, http.StatusNoContent, "")
		e.do(t, req{method: "POST", path: chatPath(open, "/join"), token: ann.Token}).want(t, http.StatusOK, "")
	})
}

// TestGroupFirstMembersAreCharged: a group's member_ids cost one chat change each and are
// capped at 100. They cost one token per request: three requests forced 30,000 memberships on
// strangers. With the default limits one creator can now force at most 120 at once.
func TestGroupFirstMembersAreCharged(t *testing.T) {
	// The default burst (120), refilled so slowly that a busy machine cannot earn a token back
	// during the test (the default refills one every 2 s).
	slow := chat.Limits{ChatsPerUser: limit.Rate{Burst: chat.DefaultLimits.ChatsPerUser.Burst, Per: 24 * time.Hour}}
	bothBackends(t, envOptions{rateLimits: true, limits: slow}, func(t *testing.T, e *env) {
		ann := e.newUser(t, "Ann")
		strangers := make([]int64, chat.MaxFirstMembers+1)
		for i := range strangers {
			strangers[i] = e.newUser(t, fmt.Sprint("Stranger ", i)).ID
		}
		create := func(title string, ids []int64) resp {
			return e.do(t, req{method: "POST", path: "/api/v1/chats", token: ann.Token,
				body: map[string]any{"kind": "group", "title": title, "member_ids": ids}})
		}
		create("Too many", strangers).wantField(t, "body.member_ids")
		create("Hundred", strangers[:chat.MaxFirstMembers]).want(t, http.StatusCreated, "")
		// 100 of the 120 changes spent: another hundred is refused, twenty more are not.
		wantLimited(t, "a second group of 100", create("Again", strangers[1:]))
		create("Twenty", strangers[:20]).want(t, http.StatusCreated, "")
		wantLimited(t, "a group once the budget is spent", create("Alone", nil))
		var n int
		if err := e.store.DB().QueryRow(`SELECT count(*) FROM members WHERE user_id > $1`, ann.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != chat.MaxFirstMembers+20 {
			t.Errorf("%d memberships forced on others, want %d", n, chat.MaxFirstMembers+20)
		}
	})
	t.Run("small burst", func(t *testing.T) {
		limits := chat.Limits{ChatsPerUser: limit.Rate{Burst: 4, Per: time.Hour}}
		bothBackends(t, envOptions{rateLimits: true, limits: limits}, func(t *testing.T, e *env) {
			ann, ben, cid, dan, eve := e.newUser(t, "Ann"), e.newUser(t, "Ben"), e.newUser(t, "Cid"), e.newUser(t, "Dan"), e.newUser(t, "Eve")
			create := func(ids ...int64) resp {
				return e.do(t, req{method: "POST", path: "/api/v1/chats", token: ann.Token,
					body: map[string]any{"kind": "group", "title": "G", "member_ids": ids}})
			}
			// More first members than the burst could ever pay for: refused as invalid, not 429.
			create(ben.ID, cid.ID, dan.ID, eve.ID, e.newUser(t, "Fay").ID).wantField(t, "body.member_ids")
			g := decode[struct{ ID int64 }](t, create(ben.ID, cid.ID, dan.ID))
			e.do(t, req{method: "POST", path: chatPath(g.ID, "/members"), token: ann.Token, body: map[string]int64{"user_id": eve.ID}}).want(t, http.StatusCreated, "")
			wantLimited(t, "the 5th change", create())
		})
	})
}

// TestConcurrentWrongLogins: 20 wrong logins of one email at once, with one attempt left,
// check one password; the rest answer 429. (The email's token used to be taken after the
// check failed: 11 of 20 were checked.)
func TestConcurrentWrongLogins(t *testing.T) {
	limits := chat.Limits{LoginFailsPerEmail: limit.Rate{Burst: 1, Per: time.Hour}}
	bothBackends(t, envOptions{rateLimits: true, limits: limits}, func(t *testing.T, e *env) {
		ann := e.newUser(t, "Ann")
		var mu sync.Mutex
		statuses := map[int]int{}
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				r := e.do(t, req{method: "POST", path: "/api/v1/auth/login", body: map[string]string{"email": ann.Email, "password": "wrong guess"}})
				mu.Lock()
				statuses[r.status]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if statuses[http.StatusUnauthorized] != 1 || statuses[http.StatusTooManyRequests] != 19 {
			t.Errorf("20 concurrent wrong logins with one attempt left: %v; want one 401 and nineteen 429", statuses)
		}
	})
}
