package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wschat/chat/internal/auth"
	"github.com/wschat/chat/internal/chat"
)

// The callers of the authorization matrix.
const (
	cMember       = "member"
	cMemberCookie = "member by cookie"
	cNonMember    = "non-member"
	cExMember     = "ex-member"
	cAnonymous    = "unauthenticated"
	cRevoked      = "revoked session"
	cExpired      = "expired token"
	cOtherKey     = "token of another key"
	cForgedKid    = "another key under our kid"
	cAlgNone      = "alg none"
	cAlgHS512     = "HS512 with our key" // the algorithm is pinned to HS256
)

// The chats of the matrix, as the member knows them.
const (
	kPrivate      = "private chat"
	kPrivateGroup = "private group"
	kPublicGroup  = "public group"
)

// The endpoints of the matrix.
const (
	eList     = "GET /chats"
	eDiscover = "GET /chats/discover"
	eGet      = "GET /chats/{id}"
	eInvite   = "POST /chats/{id}/members"
	eJoin     = "POST /chats/{id}/join"
	eLeave    = "POST /chats/{id}/leave"
	eHistory  = "GET /chats/{id}/messages"
	eSend     = "POST /chats/{id}/messages"
	eRead     = "POST /chats/{id}/read"
)

// expectation is the answer API.md prescribes to a caller for an endpoint on a chat.
func expectation(caller, kind, endpoint string) (int, string) {
	switch caller {
	case cAnonymous, cRevoked, cExpired, cOtherKey, cForgedKid, cAlgNone, cAlgHS512:
		return http.StatusUnauthorized, chat.CodeUnauthenticated
	}
	if endpoint == eList || endpoint == eDiscover {
		return http.StatusOK, ""
	}
	if caller == cMember || caller == cMemberCookie {
		switch endpoint {
		case eGet, eHistory, eRead:
			return http.StatusOK, ""
		case eSend:
			return http.StatusCreated, ""
		case eInvite:
			if kind == kPrivate {
				return http.StatusConflict, chat.CodePrivateChat
			}
			return http.StatusCreated, ""
		case eJoin:
			// Whatever the chat: a member sees it, so "not found" would be false (API-NOTES.md).
			return http.StatusConflict, chat.CodeAlreadyMember
		case eLeave:
			if kind == kPrivate {
				return http.StatusConflict, chat.CodePrivateChat
			}
			return http.StatusNoContent, ""
		}
	}
	// Non-members and ex-members: only a public group is visible to them.
	if kind != kPublicGroup {
		return http.StatusNotFound, chat.CodeNotFound
	}
	switch endpoint {
	case eGet, eJoin:
		return http.StatusOK, ""
	}
	return http.StatusForbidden, chat.CodeNotMember
}

// world is the fixture of one matrix cell: a chat of the given kind owned by owner, a caller's
// credentials, and a user to invite.
type world struct {
	chatID int64
	title  string
	tag    string // unique part of the title, for discovery
	target *user
	req    req // the credentials part of the caller's requests
}

var worldSeq atomic.Int64

func buildWorld(t *testing.T, e *env, caller, kind string) world {
	t.Helper()
	ctx := context.Background()
	owner, peer, target := e.newUser(t, "Owner"), e.newUser(t, "Peer"), e.newUser(t, "Target")
	tag := fmt.Sprintf("[%d]", worldSeq.Add(1))
	w := world{target: target, title: kind + " " + tag, tag: tag}
	switch kind {
	case kPrivate:
		w.chatID = e.private(t, owner, peer)
	case kPrivateGroup:
		w.chatID = e.group(t, owner, w.title, false, peer)
	case kPublicGroup:
		w.chatID = e.group(t, owner, w.title, true, peer)
	}
	e.send(t, peer, w.chatID, "hello")

	switch caller {
	case cMember:
		w.req.token = owner.Token
	case cMemberCookie:
		w.req.cookies = []*http.Cookie{{Name: "access_token", Value: owner.Token}}
	case cNonMember:
		w.req.token = e.newUser(t, "Stranger").Token
	case cExMember:
		ex := e.newUser(t, "Ex")
		if kind != kPrivate { // nobody can leave a private chat: its ex-member is a stranger
			if _, err := e.svc.Invite(ctx, owner.P(), w.chatID, ex.ID); err != nil {
				t.Fatal(err)
			}
			e.leave(t, ex, w.chatID)
		}
		w.req.token = ex.Token
	case cAnonymous:
	case cRevoked:
		_, c, err := e.svc.Login(ctx, chat.SignIn{Email: owner.Email, Password: owner.Password})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Logout(ctx, chat.Principal{UserID: owner.ID, SessionID: c.SessionID}); err != nil {
			t.Fatal(err)
		}
		w.req.token = c.AccessToken
	case cExpired:
		tok, err := e.tokens.Issue(owner.ID, owner.SessionID, time.Now().Add(-accessTTL-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		w.req.token = tok
	case cOtherKey:
		other, err := auth.NewTokens([][]byte{[]byte("a-completely-different-secret-of-32-bytes")}, accessTTL)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := other.Issue(owner.ID, owner.SessionID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		w.req.token = tok
	case cForgedKid:
		w.req.token = forge(t, jwt.SigningMethodHS256, auth.KeyID(e.secret), []byte("a-completely-different-secret-of-32-bytes"), owner)
	case cAlgNone:
		w.req.token = forgeNone(t, auth.KeyID(e.secret), owner)
	case cAlgHS512:
		w.req.token = forge(t, jwt.SigningMethodHS512, auth.KeyID(e.secret), e.secret, owner)
	default:
		t.Fatalf("unknown caller %q", caller)
	}
	return w
}

func claimsOf(u *user) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": strconv.FormatInt(u.ID, 10), "sid": u.SessionID, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "forged"}
}

// forge signs valid-looking claims for u with key under the given kid.
func forge(t *testing.T, m jwt.SigningMethod, kid string, key []byte, u *user) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claimsOf(u))
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// forgeNone builds an unsigned token: {"alg":"none"} and an empty signature.
func forgeNone(t *testing.T, kid string, u *user) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "none", "typ": "JWT", "kid": kid}) + "." + enc(claimsOf(u)) + "."
}

func (w world) request(endpoint string) req {
	r := w.req
	switch endpoint {
	case eList:
		r.method, r.path = "GET", "/api/v1/chats"
	case eDiscover:
		r.method, r.path = "GET", "/api/v1/chats/discover?q="+url.QueryEscape(w.tag)
	case eGet:
		r.method, r.path = "GET", chatPath(w.chatID, "")
	case eInvite:
		r.method, r.path, r.body = "POST", chatPath(w.chatID, "/members"), map[string]int64{"user_id": w.target.ID}
	case eJoin:
		r.method, r.path = "POST", chatPath(w.chatID, "/join")
	case eLeave:
		r.method, r.path = "POST", chatPath(w.chatID, "/leave")
	case eHistory:
		r.method, r.path = "GET", chatPath(w.chatID, "/messages")
	case eSend:
		r.method, r.path, r.body = "POST", chatPath(w.chatID, "/messages"), map[string]string{"body": "hi", "client_id": "matrix"}
	case eRead:
		r.method, r.path, r.body = "POST", chatPath(w.chatID, "/read"), map[string]int64{"seq": 1}
	}
	return r
}

// TestAuthorizationMatrix asks every chat endpoint, as every kind of caller, about every kind
// of chat, each cell on a fresh fixture, and checks the answer API.md's visibility rules give.
func TestAuthorizationMatrix(t *testing.T) {
	callers := []string{cMember, cMemberCookie, cNonMember, cExMember, cAnonymous, cRevoked, cExpired, cOtherKey, cForgedKid, cAlgNone, cAlgHS512}
	kinds := []string{kPrivate, kPrivateGroup, kPublicGroup}
	endpoints := []string{eList, eDiscover, eGet, eInvite, eJoin, eLeave, eHistory, eSend, eRead}
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		// Reads, and every request of a caller the server must refuse, change nothing: their
		// cells share one fixture per caller and chat kind. Every other cell gets a fresh one.
		var mu sync.Mutex
		shared := map[string]world{}
		worldFor := func(t *testing.T, caller, kind, endpoint string) world {
			t.Helper()
			status, _ := expectation(caller, kind, endpoint)
			readOnly := endpoint == eList || endpoint == eDiscover || endpoint == eGet || endpoint == eHistory
			if !readOnly && status != http.StatusUnauthorized {
				return buildWorld(t, e, caller, kind)
			}
			mu.Lock()
			defer mu.Unlock()
			w, ok := shared[caller+"/"+kind]
			if !ok {
				w = buildWorld(t, e, caller, kind)
				shared[caller+"/"+kind] = w
			}
			return w
		}
		for _, caller := range callers {
			for _, kind := range kinds {
				for _, endpoint := range endpoints {
					t.Run(fmt.Sprintf("%s/%s/%s", caller, kind, endpoint), func(t *testing.T) {
						t.Parallel()
						w := worldFor(t, caller, kind, endpoint)
						r := e.do(t, w.request(endpoint))
						status, code := expectation(caller, kind, endpoint)
						r.want(t, status, code)
						if r.status == http.StatusOK {
							checkVisibility(t, r, caller, kind, endpoint, w.chatID)
						}
					})
				}
			}
		}
	})
}

// checkVisibility checks that the lists show a chat exactly to those who should see it there.
func checkVisibility(t *testing.T, r resp, caller, kind, endpoint string, chatID int64) {
	t.Helper()
	var body struct {
		Chats []struct {
			ID int64 `json:"id"`
		} `json:"chats"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, c := range body.Chats {
		ids = append(ids, c.ID)
	}
	member := caller == cMember || caller == cMemberCookie
	switch endpoint {
	case eList:
		if got := slices.Contains(ids, chatID); got != member {
			t.Errorf("chat list %v: contains chat %d = %v, want %v", ids, chatID, got, member)
		}
	case eDiscover:
		want := !member && kind == kPublicGroup
		if got := slices.Contains(ids, chatID); got != want {
			t.Errorf("discover %v: contains chat %d = %v, want %v", ids, chatID, got, want)
		}
	}
}
