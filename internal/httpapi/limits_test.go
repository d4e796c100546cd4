package httpapi_test

import (
	"net/http"
	"strconv"
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
	const burst = 6
	limits := chat.Limits{ReadsPerUser: limit.Rate{Burst: burst, Per: time.Hour}}
	reads := func(g int64) []req {
		return []req{
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
		for _, r := range reads(g) { // one of each: burst reads
			r.token = ann.Token
			e.do(t, r).want(t, http.StatusOK, "")
		}
		for _, r := range reads(g) {
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
				for _, r := range reads(g) {
					r.token = ann.Token
					if got := e.do(t, r); got.status != http.StatusOK {
						t.Fatalf("round %d, %s %s: got %d %s, want 200 without rate limits", i+1, r.method, r.path, got.status, got.body)
					}
				}
			}
		})
	})
}
