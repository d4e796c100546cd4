package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
)

// The conformance suite: every behaviour of chat.Store that the service relies on, checked on
// SQLite and PostgreSQL alike. Times are passed in explicitly, so that orders do not depend on
// the clock.

// t0 is the suite's fixed "now"; tests move forward from it.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// at is t0 plus n seconds.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

var userSeq atomic.Int64

// mkUser stores a user with a unique email and the given name.
func mkUser(t *testing.T, s *store.Store, name string) chat.User {
	t.Helper()
	email := fmt.Sprintf("u%d-%d@conformance.test", userSeq.Add(1), time.Now().UnixNano())
	u, err := s.CreateUser(context.Background(), chat.User{Email: email, Name: name, PasswordHash: "x", CreatedAt: t0})
	if err != nil {
		t.Fatalf("create user %q: %v", name, err)
	}
	return u
}

func mkGroup(t *testing.T, s *store.Store, owner chat.User, title string, public bool, now time.Time, members ...chat.User) int64 {
	t.Helper()
	ids := make([]int64, len(members))
	for i, m := range members {
		ids[i] = m.ID
	}
	id, err := s.CreateGroup(context.Background(), chat.NewGroup{CreatorID: owner.ID, Title: title, Public: public, MemberIDs: ids, Now: now})
	if err != nil {
		t.Fatalf("create group %q: %v", title, err)
	}
	return id
}

func mkPrivate(t *testing.T, s *store.Store, a, b chat.User, now time.Time) int64 {
	t.Helper()
	id, _, err := s.CreatePrivate(context.Background(), a.ID, b.ID, now)
	if err != nil {
		t.Fatalf("create private chat: %v", err)
	}
	return id
}

var clientSeq atomic.Int64

// send stores a text message with a fresh client id.
func send(t *testing.T, s *store.Store, chatID int64, from chat.User, body string, now time.Time) chat.Sent {
	t.Helper()
	sent, err := s.SendMessage(context.Background(), chat.NewMessage{ChatID: chatID, SenderID: from.ID, Body: body,
		ClientID: fmt.Sprintf("c%d", clientSeq.Add(1)), Now: now})
	if err != nil {
		t.Fatalf("send to chat %d: %v", chatID, err)
	}
	return sent
}

func chatFor(t *testing.T, s *store.Store, viewer chat.User, chatID int64) chat.ChatSummary {
	t.Helper()
	c, err := s.ChatFor(context.Background(), viewer.ID, chatID)
	if err != nil {
		t.Fatalf("chat %d for user %d: %v", chatID, viewer.ID, err)
	}
	return c
}

func members(t *testing.T, s *store.Store, chatID int64) map[int64]chat.Member {
	t.Helper()
	list, err := s.Members(context.Background(), chatID)
	if err != nil {
		t.Fatalf("members of chat %d: %v", chatID, err)
	}
	out := make(map[int64]chat.Member, len(list))
	for _, m := range list {
		out[m.ID] = m
	}
	return out
}

func history(t *testing.T, s *store.Store, q chat.HistoryQuery) ([]int64, bool) {
	t.Helper()
	msgs, more, err := s.History(context.Background(), q)
	if err != nil {
		t.Fatalf("history %+v: %v", q, err)
	}
	seqs := make([]int64, len(msgs))
	for i, m := range msgs {
		seqs[i] = m.Seq
		if m.ChatID != q.ChatID {
			t.Errorf("history of chat %d returned a message of chat %d", q.ChatID, m.ChatID)
		}
	}
	return seqs, more
}

func seqRange(from, to int64) []int64 {
	out := []int64{}
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func wantErr(t *testing.T, what string, got, want error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Errorf("%s: got error %v, want %v", what, got, want)
	}
}

// readState is the read progress of one viewer, for compact comparisons.
type readState struct {
	LastSeq, MyRead, ReadAll, Unread int64
}

func stateOf(c chat.ChatSummary) readState {
	return readState{c.LastSeq, c.MyLastReadSeq, c.ReadAllSeq, c.UnreadCount}
}

func TestUsers(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, err := s.CreateUser(ctx, chat.User{Email: "ann@users.test", Name: "Ann", PasswordHash: "hash", CreatedAt: t0.Add(123 * time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		if u.ID <= 0 {
			t.Fatalf("got id %d, want a positive id", u.ID)
		}
		_, err = s.CreateUser(ctx, chat.User{Email: "ann@users.test", Name: "Other Ann", PasswordHash: "hash", CreatedAt: t0})
		wantErr(t, "duplicate email", err, chat.ErrEmailTaken)

		byID, err := s.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		byEmail, err := s.UserByEmail(ctx, "ann@users.test")
		if err != nil {
			t.Fatal(err)
		}
		for _, got := range []chat.User{byID, byEmail} {
			if got.ID != u.ID || got.Email != "ann@users.test" || got.Name != "Ann" || got.PasswordHash != "hash" ||
				!got.CreatedAt.Equal(t0.Add(123*time.Millisecond)) {
				t.Errorf("got %+v, want the stored user %+v", got, u)
			}
		}
		_, err = s.UserByID(ctx, u.ID+1_000_000)
		wantErr(t, "unknown id", err, chat.ErrNotFound)
		_, err = s.UserByEmail(ctx, "nobody@users.test")
		wantErr(t, "unknown email", err, chat.ErrNotFound)
	})
}

func TestSearchUsers(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		names := []string{"Zq100% real", "Zq100 percent", "Zqa_b", "Zqaxb", `Zqback\slash`, `ZqbackXslash`, "ZQUpper", "zqlower"}
		byName := map[string]int64{}
		for _, n := range names {
			byName[n] = mkUser(t, s, n).ID
		}
		mail, err := s.CreateUser(ctx, chat.User{Email: "zq_mail%x@search.test", Name: "Mailonly", PasswordHash: "x", CreatedAt: t0})
		if err != nil {
			t.Fatal(err)
		}
		viewer := mkUser(t, s, "Viewer")
		search := func(q chat.UserSearch) []chat.FoundUser {
			t.Helper()
			q.ViewerID = viewer.ID
			users, err := s.SearchUsers(ctx, q)
			if err != nil {
				t.Fatalf("search %+v: %v", q, err)
			}
			return users
		}
		for _, tc := range []struct {
			q     string
			limit int
			want  []string
		}{
			{"Zq100%", 10, []string{"Zq100% real"}},
			{"zq100", 10, []string{"Zq100 percent", "Zq100% real"}},
			{"Zqa_", 10, []string{"Zqa_b"}},
			{`Zqback\`, 10, []string{`Zqback\slash`}},
			{"zqupp", 10, []string{"ZQUpper"}},
			{"ZQLOW", 10, []string{"zqlower"}},
			{"%", 10, []string{}},
			{"_", 10, []string{}},
			{`\`, 10, []string{}},
			{"real", 10, []string{}},     // a prefix search, not a substring search
			{"zq_mail%", 10, []string{}}, // the email of a stranger
			{"ZQ", 3, []string{"Zq100 percent", "Zq100% real", "Zqa_b"}},
		} {
			users := search(chat.UserSearch{Prefix: tc.q, Limit: tc.limit})
			got := []string{}
			for _, u := range users {
				got = append(got, u.Name)
				if u.Name == "Mailonly" && u.ID != mail.ID {
					t.Errorf("search %q: got id %d for Mailonly, want %d", tc.q, u.ID, mail.ID)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("search %q limit %d: got %q, want %q", tc.q, tc.limit, got, tc.want)
			}
		}
		// The empty query is a prefix of everything: the limit bounds it.
		if got, want := len(search(chat.UserSearch{Limit: 2})), 2; got != want {
			t.Errorf("search \"\" limit 2: got %d users, want %d", got, want)
		}
		// An exact email finds its user, whoever they are; a stranger is not Shared.
		if got := search(chat.UserSearch{Prefix: mail.Email, Email: mail.Email, Limit: 10}); len(got) != 1 || got[0].ID != mail.ID || got[0].Shared {
			t.Errorf("search by exact email: got %+v, want Mailonly, not shared", got)
		}
		if got := search(chat.UserSearch{Prefix: "viewer", Limit: 10}); len(got) != 1 || !got[0].Shared {
			t.Errorf("the viewer finds themselves: got %+v, want shared", got)
		}
		// Sharing a chat, the email prefix finds them too.
		mkGroup(t, s, viewer, "Shared", false, at(1), mail)
		for _, q := range []string{"zq_mail%", "ZQ_MAIL"} {
			if got := search(chat.UserSearch{Prefix: q, Limit: 10}); len(got) != 1 || got[0].ID != mail.ID || !got[0].Shared {
				t.Errorf("search %q sharing a chat: got %+v, want Mailonly, shared", q, got)
			}
		}
	})
}

// clientA and clientB are digests of two clients (user agent and address) for RotateRefresh.
var clientA, clientB = []byte("client-a-digest!"), []byte("client-b-digest!")

func TestSessions(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u := mkUser(t, s, "Sessions")
		other := mkUser(t, s, "Other")
		newSession := func(created time.Time, ttl time.Duration, hash string) chat.Session {
			t.Helper()
			x, err := s.CreateSession(ctx, chat.Session{UserID: u.ID, UserAgent: "agent " + hash, CreatedAt: created, LastSeenAt: created,
				ExpiresAt: created.Add(ttl)}, []byte(hash))
			if err != nil {
				t.Fatalf("create session: %v", err)
			}
			if x.ID <= 0 {
				t.Fatalf("got session id %d, want a positive id", x.ID)
			}
			return x
		}

		t.Run("create and load", func(t *testing.T) {
			x := newSession(at(1), time.Hour, "load-1")
			got, err := s.SessionByID(ctx, x.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.UserID != u.ID || got.UserAgent != "agent load-1" || !got.CreatedAt.Equal(at(1)) || !got.LastSeenAt.Equal(at(1)) ||
				!got.ExpiresAt.Equal(at(1).Add(time.Hour)) || got.Revoked {
				t.Errorf("got %+v, want the created session %+v", got, x)
			}
			_, err = s.SessionByID(ctx, x.ID+1_000_000)
			wantErr(t, "unknown session", err, chat.ErrNotFound)

			if err := s.TouchSession(ctx, x.ID, at(30)); err != nil {
				t.Fatal(err)
			}
			if err := s.TouchSession(ctx, x.ID, at(20)); err != nil { // never backwards
				t.Fatal(err)
			}
			got, _ = s.SessionByID(ctx, x.ID)
			if !got.LastSeenAt.Equal(at(30)) {
				t.Errorf("last seen: got %v, want %v", got.LastSeenAt, at(30))
			}
		})

		t.Run("rotate", func(t *testing.T) {
			x := newSession(at(1), time.Hour, "rot-1")
			got, err := s.RotateRefresh(ctx, []byte("rot-1"), []byte("rot-2"), clientA, at(10), at(10).Add(2*time.Hour))
			if err != nil {
				t.Fatalf("rotate: %v", err)
			}
			if got.ID != x.ID || got.UserID != u.ID || !got.ExpiresAt.Equal(at(10).Add(2*time.Hour)) {
				t.Errorf("rotate: got %+v, want session %d expiring at %v", got, x.ID, at(10).Add(2*time.Hour))
			}
			if got, err = s.RotateRefresh(ctx, []byte("rot-2"), []byte("rot-3"), clientA, at(11), at(11).Add(2*time.Hour)); err != nil || got.ID != x.ID {
				t.Fatalf("rotate the new token: got %+v, %v", got, err)
			}
			// rot-1 was rotated away: presenting it again is theft and revokes the session.
			got, err = s.RotateRefresh(ctx, []byte("rot-1"), []byte("rot-x"), clientA, at(12), at(12).Add(time.Hour))
			wantErr(t, "reuse of a rotated token", err, chat.ErrRefreshReused)
			if got.ID != x.ID || got.UserID != u.ID {
				t.Errorf("reuse: got session %+v, want session %d of user %d", got, x.ID, u.ID)
			}
			sess, err := s.SessionByID(ctx, x.ID)
			if err != nil || !sess.Revoked {
				t.Errorf("after reuse: got %+v, %v; want the session revoked", sess, err)
			}
			// The current token of the revoked session is dead too.
			_, err = s.RotateRefresh(ctx, []byte("rot-3"), []byte("rot-4"), clientA, at(13), at(13).Add(time.Hour))
			wantErr(t, "current token of a revoked session", err, chat.ErrNotFound)
			// The token that was to replace it on reuse was not stored.
			_, err = s.RotateRefresh(ctx, []byte("rot-x"), []byte("rot-y"), clientA, at(13), at(13).Add(time.Hour))
			wantErr(t, "token offered during reuse", err, chat.ErrNotFound)
		})

		t.Run("retry of a lost refresh answer", func(t *testing.T) {
			// rr-1 is rotated to rr-2, whose answer the client never gets: it retries with rr-1.
			x := newSession(at(1), time.Hour, "rr-1")
			if _, err := s.RotateRefresh(ctx, []byte("rr-1"), []byte("rr-2"), clientA, at(100), at(100).Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			got, err := s.RotateRefresh(ctx, []byte("rr-1"), []byte("rr-3"), clientA, at(120), at(120).Add(2*time.Hour))
			if err != nil || got.ID != x.ID || !got.ExpiresAt.Equal(at(120).Add(2*time.Hour)) {
				t.Fatalf("a retry within %v: got %+v, %v; want session %d rotated again", chat.RefreshRetryGrace, got, err, x.ID)
			}
			if sess, err := s.SessionByID(ctx, x.ID); err != nil || sess.Revoked {
				t.Fatalf("after the retry: %+v, %v; want the session live", sess, err)
			}
			// The retry's token is current; the lost answer's token is dead, and a second retry
			// of rr-1 is not a lost answer any more: both revoke the session.
			if _, err := s.RotateRefresh(ctx, []byte("rr-3"), []byte("rr-4"), clientA, at(121), at(121).Add(time.Hour)); err != nil {
				t.Fatalf("the retry's token: %v", err)
			}
			_, err = s.RotateRefresh(ctx, []byte("rr-2"), []byte("rr-z"), clientA, at(122), at(122).Add(time.Hour))
			wantErr(t, "the lost answer's token", err, chat.ErrRefreshReused)
			if sess, _ := s.SessionByID(ctx, x.ID); !sess.Revoked {
				t.Errorf("the lost answer's token did not revoke the session")
			}

			y := newSession(at(1), time.Hour, "rt-1")
			if _, err := s.RotateRefresh(ctx, []byte("rt-1"), []byte("rt-2"), clientA, at(200), at(200).Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.RotateRefresh(ctx, []byte("rt-1"), []byte("rt-3"), clientA, at(205), at(205).Add(time.Hour)); err != nil {
				t.Fatalf("first retry: %v", err)
			}
			_, err = s.RotateRefresh(ctx, []byte("rt-1"), []byte("rt-4"), clientA, at(206), at(206).Add(time.Hour))
			wantErr(t, "a second retry", err, chat.ErrRefreshReused)
			if sess, _ := s.SessionByID(ctx, y.ID); !sess.Revoked {
				t.Errorf("a second retry did not revoke the session")
			}

			// The lost answer's token shown right after the retry, before the retry's token is
			// rotated: it was never the session's to retry with, so it revokes the session
			// (its record once let it through as a retry of its own, and two holders of one
			// session could rotate side by side for good).
			v := newSession(at(1), time.Hour, "rs-1")
			if _, err := s.RotateRefresh(ctx, []byte("rs-1"), []byte("rs-2"), clientA, at(250), at(250).Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.RotateRefresh(ctx, []byte("rs-1"), []byte("rs-3"), clientA, at(251), at(251).Add(time.Hour)); err != nil {
				t.Fatalf("the retry: %v", err)
			}
			_, err = s.RotateRefresh(ctx, []byte("rs-2"), []byte("rs-4"), clientA, at(252), at(252).Add(time.Hour))
			wantErr(t, "the lost answer's token right after the retry", err, chat.ErrRefreshReused)
			if sess, _ := s.SessionByID(ctx, v.ID); !sess.Revoked {
				t.Errorf("the lost answer's token right after the retry did not revoke the session")
			}

			// Too late for a retry: theft.
			z := newSession(at(1), time.Hour, "rl-1")
			if _, err := s.RotateRefresh(ctx, []byte("rl-1"), []byte("rl-2"), clientA, at(300), at(300).Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			late := at(300).Add(chat.RefreshRetryGrace + time.Second)
			_, err = s.RotateRefresh(ctx, []byte("rl-1"), []byte("rl-3"), clientA, late, late.Add(time.Hour))
			wantErr(t, "a retry after the grace", err, chat.ErrRefreshReused)
			if sess, _ := s.SessionByID(ctx, z.ID); !sess.Revoked {
				t.Errorf("a late retry did not revoke the session")
			}

			// A retry from another client within the grace: a replayed stolen token, not a
			// lost answer. It revokes the session, whoever comes first: the thief replaying
			// after the owner's rotation, or the owner after the thief's.
			for i, other := range [][]byte{clientB, nil} {
				w := newSession(at(1), time.Hour, fmt.Sprint("rc-1-", i))
				if _, err := s.RotateRefresh(ctx, []byte(fmt.Sprint("rc-1-", i)), []byte(fmt.Sprint("rc-2-", i)), clientA, at(400), at(400).Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
				_, err = s.RotateRefresh(ctx, []byte(fmt.Sprint("rc-1-", i)), []byte(fmt.Sprint("rc-3-", i)), other, at(401), at(401).Add(time.Hour))
				wantErr(t, fmt.Sprintf("a retry from client %q", other), err, chat.ErrRefreshReused)
				if sess, _ := s.SessionByID(ctx, w.ID); !sess.Revoked {
					t.Errorf("a retry from client %q within the grace did not revoke the session", other)
				}
			}
		})

		t.Run("one token presented at once", func(t *testing.T) {
			// Three tabs of one browser refresh with ro-1 at once; the service derives the next
			// token from the one presented, so all three ask for ro-2. Each gets the session,
			// and ro-2 stays its token, whichever answer the browser's cookie jar keeps.
			x := newSession(at(1), time.Hour, "ro-1")
			for i := range 3 {
				got, err := s.RotateRefresh(ctx, []byte("ro-1"), []byte("ro-2"), clientA, at(500+i), at(500+i).Add(time.Hour))
				if err != nil || got.ID != x.ID {
					t.Fatalf("presentation %d: got %+v, %v; want session %d", i+1, got, err, x.ID)
				}
			}
			if sess, err := s.SessionByID(ctx, x.ID); err != nil || sess.Revoked {
				t.Fatalf("after three presentations: %+v, %v; want the session live", sess, err)
			}
			if _, err := s.RotateRefresh(ctx, []byte("ro-2"), []byte("ro-3"), clientA, at(510), at(510).Add(time.Hour)); err != nil {
				t.Fatalf("the token all three answers carried: %v", err)
			}
			// Once the session has moved on, ro-1 is theft again, even from that client.
			_, err := s.RotateRefresh(ctx, []byte("ro-1"), []byte("ro-2"), clientA, at(511), at(511).Add(time.Hour))
			wantErr(t, "ro-1 after ro-2 was rotated", err, chat.ErrRefreshReused)
			if sess, _ := s.SessionByID(ctx, x.ID); !sess.Revoked {
				t.Errorf("ro-1 after ro-2 was rotated did not revoke the session")
			}

			// Asking for the session's token is no pass for another client.
			y := newSession(at(1), time.Hour, "rp-1")
			if _, err := s.RotateRefresh(ctx, []byte("rp-1"), []byte("rp-2"), clientA, at(600), at(600).Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			_, err = s.RotateRefresh(ctx, []byte("rp-1"), []byte("rp-2"), clientB, at(601), at(601).Add(time.Hour))
			wantErr(t, "rp-1 from another client", err, chat.ErrRefreshReused)
			if sess, _ := s.SessionByID(ctx, y.ID); !sess.Revoked {
				t.Errorf("rp-1 from another client did not revoke the session")
			}
		})

		t.Run("unknown and expired", func(t *testing.T) {
			_, err := s.RotateRefresh(ctx, []byte("never-issued"), []byte("n2"), clientA, at(1), at(2))
			wantErr(t, "unknown token", err, chat.ErrNotFound)

			x := newSession(at(1), time.Minute, "exp-1")
			_, err = s.RotateRefresh(ctx, []byte("exp-1"), []byte("exp-2"), clientA, at(61), at(3600))
			wantErr(t, "expired session", err, chat.ErrNotFound)
			sess, _ := s.SessionByID(ctx, x.ID)
			if sess.Revoked {
				t.Errorf("an expired refresh must not revoke the session")
			}
		})

		t.Run("revoke and list", func(t *testing.T) {
			u := mkUser(t, s, "Revoker")
			mk := func(created time.Time, ttl time.Duration, hash string) int64 {
				x, err := s.CreateSession(ctx, chat.Session{UserID: u.ID, CreatedAt: created, LastSeenAt: created, ExpiresAt: created.Add(ttl)}, []byte(hash))
				if err != nil {
					t.Fatal(err)
				}
				return x.ID
			}
			a := mk(at(1), time.Hour, "rv-a")
			b := mk(at(2), time.Hour, "rv-b")
			c := mk(at(3), time.Hour, "rv-c")
			expired := mk(at(0), time.Second, "rv-exp")
			list := func(now time.Time) []int64 {
				t.Helper()
				xs, err := s.ListSessions(ctx, u.ID, now)
				if err != nil {
					t.Fatal(err)
				}
				ids := []int64{}
				for _, x := range xs {
					ids = append(ids, x.ID)
				}
				return ids
			}
			if got, want := list(at(10)), []int64{c, b, a}; !slices.Equal(got, want) {
				t.Errorf("sessions: got %v, want %v (newest first, expired left out)", got, want)
			}
			// Another user cannot revoke u's session.
			if ids, err := s.RevokeSessions(ctx, other.ID, b, at(10)); err != nil || len(ids) != 0 {
				t.Errorf("revoke another user's session: got %v, %v; want nothing revoked", ids, err)
			}
			if ids, err := s.RevokeSessions(ctx, u.ID, b, at(10)); err != nil || !slices.Equal(ids, []int64{b}) {
				t.Errorf("revoke one: got %v, %v; want [%d]", ids, err, b)
			}
			if ids, err := s.RevokeSessions(ctx, u.ID, b, at(11)); err != nil || len(ids) != 0 {
				t.Errorf("revoke a revoked session: got %v, %v; want nothing", ids, err)
			}
			if got, want := list(at(12)), []int64{c, a}; !slices.Equal(got, want) {
				t.Errorf("sessions after revoking one: got %v, want %v", got, want)
			}
			ids, err := s.RevokeSessions(ctx, u.ID, 0, at(13))
			slices.Sort(ids)
			if err != nil || !slices.Equal(ids, []int64{a, c}) {
				t.Errorf("revoke all: got %v, %v; want [%d %d] (not the revoked or expired ones: %d, %d)", ids, err, a, c, b, expired)
			}
			if got := list(at(14)); len(got) != 0 {
				t.Errorf("sessions after revoking all: got %v, want none", got)
			}
			for _, id := range []int64{a, b, c} {
				if x, _ := s.SessionByID(ctx, id); !x.Revoked {
					t.Errorf("session %d: not revoked", id)
				}
			}
			_, err = s.RotateRefresh(ctx, []byte("rv-a"), []byte("rv-a2"), clientA, at(15), at(3600))
			wantErr(t, "refresh of a revoked session", err, chat.ErrNotFound)
		})
	})
}

func TestCreateGroup(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner, a, b := mkUser(t, s, "Owner"), mkUser(t, s, "A"), mkUser(t, s, "B")
		id, err := s.CreateGroup(ctx, chat.NewGroup{CreatorID: owner.ID, Title: "Team", Public: true, MemberIDs: []int64{a.ID, b.ID}, Now: at(5)})
		if err != nil {
			t.Fatal(err)
		}
		c := chatFor(t, s, a, id)
		if c.ID != id || c.Kind != chat.KindGroup || c.Title != "Team" || !c.Public || c.MemberCount != 3 || !c.IsMember || c.Peer != nil ||
			!c.CreatedAt.Equal(at(5)) {
			t.Errorf("got %+v, want the public group Team with 3 members", c)
		}
		if got, want := stateOf(c), (readState{LastSeq: 1, MyRead: 1, ReadAll: 1}); got != want {
			t.Errorf("read state: got %+v, want %+v", got, want)
		}
		lm := c.LastMessage
		if lm == nil || lm.Seq != 1 || lm.Kind != chat.MessageSystem || lm.SenderID != nil || lm.ClientID != nil || lm.Event == nil ||
			*lm.Event != (chat.SystemEvent{Type: chat.SysChatCreated, UserID: owner.ID, ActorID: owner.ID}) {
			t.Errorf("last message: got %+v, want the chat_created system message with seq 1", lm)
		}
		ms := members(t, s, id)
		for _, want := range []struct {
			u    chat.User
			role string
		}{{owner, chat.RoleOwner}, {a, chat.RoleMember}, {b, chat.RoleMember}} {
			m, ok := ms[want.u.ID]
			if !ok || m.Role != want.role || m.Name != want.u.Name || m.LastReadSeq != 1 || !m.JoinedAt.Equal(at(5)) {
				t.Errorf("member %d: got %+v (present %v), want role %s, last read 1", want.u.ID, m, ok, want.role)
			}
		}
		if len(ms) != 3 {
			t.Errorf("got %d members, want 3", len(ms))
		}
		ids, err := s.MemberIDs(ctx, id)
		if want := []int64{owner.ID, a.ID, b.ID}; err != nil || !slices.Equal(ids, want) {
			t.Errorf("member ids: got %v, %v; want %v", ids, err, want)
		}
		if seqs, more := history(t, s, chat.HistoryQuery{ChatID: id, Limit: 50}); !slices.Equal(seqs, []int64{1}) || more {
			t.Errorf("history: got %v more=%v, want [1]", seqs, more)
		}

		// An unknown member fails the whole creation.
		before, _ := s.ChatsOf(ctx, owner.ID)
		_, err = s.CreateGroup(ctx, chat.NewGroup{CreatorID: owner.ID, Title: "Ghosts", MemberIDs: []int64{a.ID, a.ID + 1_000_000}, Now: at(6)})
		wantErr(t, "unknown member", err, chat.ErrUnknownUser)
		after, _ := s.ChatsOf(ctx, owner.ID)
		if len(after) != len(before) {
			t.Errorf("a failed creation left a chat behind: %d chats before, %d after", len(before), len(after))
		}
		if chats, _ := s.ChatsOf(ctx, a.ID); len(chats) != 1 {
			t.Errorf("member of a failed creation: got %d chats, want 1", len(chats))
		}
	})
}

func TestCreatePrivate(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b, c := mkUser(t, s, "Alice"), mkUser(t, s, "Bob"), mkUser(t, s, "Carol")
		id, created, err := s.CreatePrivate(ctx, a.ID, b.ID, at(1))
		if err != nil || !created || id <= 0 {
			t.Fatalf("create: got %d, %v, %v; want a new chat", id, created, err)
		}
		for _, pair := range [][2]chat.User{{b, a}, {a, b}} {
			again, created, err := s.CreatePrivate(ctx, pair[0].ID, pair[1].ID, at(2))
			if err != nil || created || again != id {
				t.Errorf("open %d-%d again: got %d, created=%v, %v; want %d, false", pair[0].ID, pair[1].ID, again, created, err, id)
			}
		}
		other, created, err := s.CreatePrivate(ctx, c.ID, a.ID, at(3))
		if err != nil || !created || other == id {
			t.Errorf("another pair: got %d, %v, %v; want a new chat", other, created, err)
		}
		for _, tc := range []struct{ viewer, peer chat.User }{{a, b}, {b, a}} {
			got := chatFor(t, s, tc.viewer, id)
			if got.Kind != chat.KindPrivate || got.Public || got.MemberCount != 2 || got.Peer == nil || got.Peer.ID != tc.peer.ID ||
				got.Title != tc.peer.Name || got.LastMessage != nil || stateOf(got) != (readState{}) {
				t.Errorf("as user %d: got %+v (peer %+v), want a private chat titled %q with no messages", tc.viewer.ID, got, got.Peer, tc.peer.Name)
			}
		}
		ms := members(t, s, id)
		if len(ms) != 2 || ms[a.ID].Role != chat.RoleMember || ms[b.ID].Role != chat.RoleMember {
			t.Errorf("members: got %+v, want Alice and Bob as members", ms)
		}
		if seqs, _ := history(t, s, chat.HistoryQuery{ChatID: id, Limit: 50}); len(seqs) != 0 {
			t.Errorf("a private chat starts empty: got seqs %v", seqs)
		}

		_, _, err = s.CreatePrivate(ctx, a.ID, a.ID+1_000_000, at(4))
		wantErr(t, "unknown user", err, chat.ErrUnknownUser)
		if chats, _ := s.ChatsOf(ctx, a.ID); len(chats) != 2 {
			t.Errorf("a failed private chat left a chat behind: got %d chats, want 2", len(chats))
		}
	})
}

func TestAddRemoveMember(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner, a, b, stranger := mkUser(t, s, "Owner"), mkUser(t, s, "A"), mkUser(t, s, "B"), mkUser(t, s, "Stranger")
		id := mkGroup(t, s, owner, "G", true, at(1), a)

		msg, err := s.AddMember(ctx, id, b.ID, owner.ID, chat.SysMemberInvited, at(2))
		if err != nil {
			t.Fatal(err)
		}
		if msg.ChatID != id || msg.Seq != 2 || msg.Kind != chat.MessageSystem || msg.SenderID != nil || msg.ID <= 0 ||
			msg.Event == nil || *msg.Event != (chat.SystemEvent{Type: chat.SysMemberInvited, UserID: b.ID, ActorID: owner.ID}) ||
			!msg.CreatedAt.Equal(at(2)) {
			t.Errorf("invite message: got %+v, want a member_invited system message with seq 2", msg)
		}
		c := chatFor(t, s, b, id)
		if c.MemberCount != 3 || !c.IsMember || c.LastSeq != 2 || c.MyLastReadSeq != 2 || c.UnreadCount != 0 {
			t.Errorf("after invite, as the invitee: got %+v, want 3 members, last seq 2, all read", c)
		}
		if m := members(t, s, id)[b.ID]; m.Role != chat.RoleMember || m.LastReadSeq != 2 {
			t.Errorf("invitee: got %+v, want a member whose last read is the chat's last seq", m)
		}

		_, err = s.AddMember(ctx, id, b.ID, owner.ID, chat.SysMemberInvited, at(3))
		wantErr(t, "invite a member", err, chat.ErrAlreadyMember)
		_, err = s.AddMember(ctx, id, owner.ID+1_000_000, owner.ID, chat.SysMemberInvited, at(3))
		wantErr(t, "invite an unknown user", err, chat.ErrUnknownUser)
		_, err = s.AddMember(ctx, id, mkUser(t, s, "Target").ID, stranger.ID, chat.SysMemberInvited, at(3))
		wantErr(t, "invite by a non-member", err, chat.ErrNotMember)
		_, err = s.AddMember(ctx, id+1_000_000, b.ID, owner.ID, chat.SysMemberInvited, at(3))
		wantErr(t, "invite to an unknown chat", err, chat.ErrNotFound)
		priv := mkPrivate(t, s, owner, a, at(3))
		_, err = s.AddMember(ctx, priv, b.ID, owner.ID, chat.SysMemberInvited, at(3))
		wantErr(t, "invite to a private chat", err, chat.ErrPrivateChat)
		if got := chatFor(t, s, owner, id); got.LastSeq != 2 || got.MemberCount != 3 {
			t.Errorf("refused additions changed the chat: got last seq %d, %d members; want 2, 3", got.LastSeq, got.MemberCount)
		}
		// A join is checked under the chat's lock: a group that is not public (made private
		// after the joiner saw it) is not joined.
		closed := mkGroup(t, s, owner, "Closed", false, at(3))
		_, err = s.AddMember(ctx, closed, stranger.ID, stranger.ID, chat.SysMemberJoined, at(3))
		wantErr(t, "join a group that is not public", err, chat.ErrNotFound)
		if got := chatFor(t, s, owner, closed); got.LastSeq != 1 || got.MemberCount != 1 {
			t.Errorf("a refused join changed the group: got last seq %d, %d members; want 1, 1", got.LastSeq, got.MemberCount)
		}

		msg, err = s.AddMember(ctx, id, stranger.ID, stranger.ID, chat.SysMemberJoined, at(4))
		if err != nil || msg.Seq != 3 || msg.Event == nil || *msg.Event != (chat.SystemEvent{Type: chat.SysMemberJoined, UserID: stranger.ID, ActorID: stranger.ID}) {
			t.Errorf("join: got %+v, %v; want a member_joined message with seq 3", msg, err)
		}

		msg, ra, err := s.RemoveMember(ctx, id, b.ID, at(5))
		if err != nil || msg.Seq != 4 || msg.Kind != chat.MessageSystem ||
			msg.Event == nil || *msg.Event != (chat.SystemEvent{Type: chat.SysMemberLeft, UserID: b.ID, ActorID: b.ID}) {
			t.Errorf("leave: got %+v, %v; want a member_left message with seq 4", msg, err)
		}
		if ra.Seq != 1 || ra.Grown { // owner and a still sit at 1
			t.Errorf("leave of a non-minimum member: got read-all %+v, want {1 false}", ra)
		}
		c = chatFor(t, s, b, id)
		if c.IsMember || c.MemberCount != 3 || c.LastSeq != 4 || c.UnreadCount != 0 || c.MyLastReadSeq != 0 {
			t.Errorf("as the ex-member: got %+v, want a chat they are not in, with 3 members and last seq 4", c)
		}
		if _, ok := members(t, s, id)[b.ID]; ok {
			t.Errorf("the ex-member is still listed")
		}
		_, _, err = s.RemoveMember(ctx, id, b.ID, at(6))
		wantErr(t, "leave twice", err, chat.ErrNotMember)
		_, _, err = s.RemoveMember(ctx, priv, a.ID, at(6))
		wantErr(t, "leave a private chat", err, chat.ErrPrivateChat)
		_, _, err = s.RemoveMember(ctx, id+1_000_000, a.ID, at(6))
		wantErr(t, "leave an unknown chat", err, chat.ErrNotFound)

		// Coming back is a new join with its own system message.
		msg, err = s.AddMember(ctx, id, b.ID, a.ID, chat.SysMemberInvited, at(7))
		if err != nil || msg.Seq != 5 {
			t.Errorf("invite the ex-member back: got seq %d, %v; want 5", msg.Seq, err)
		}
		if seqs, _ := history(t, s, chat.HistoryQuery{ChatID: id, Limit: 50}); !slices.Equal(seqs, seqRange(1, 5)) {
			t.Errorf("history: got %v, want 1..5", seqs)
		}
	})
}

func TestReadAllWhenMinimumLeaves(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner, a, b := mkUser(t, s, "Owner"), mkUser(t, s, "A"), mkUser(t, s, "B")
		id := mkGroup(t, s, owner, "G", false, at(1), a, b)
		send(t, s, id, owner, "one", at(2)) // seq 2: owner at 2
		send(t, s, id, a, "two", at(3))     // seq 3: a at 3, b still at 1
		if _, err := s.MarkRead(ctx, id, b.ID, 2); err != nil {
			t.Fatal(err)
		}
		if got := chatFor(t, s, owner, id).ReadAllSeq; got != 2 {
			t.Fatalf("read all: got %d, want 2", got)
		}
		// b holds the minimum (2, tied with owner): b leaving leaves owner at 2.
		_, ra, err := s.RemoveMember(ctx, id, b.ID, at(4))
		if err != nil || ra != (chat.ReadAll{Seq: 2}) {
			t.Errorf("leave of a tied minimum: got %+v, %v; want {2 false}", ra, err)
		}
		// owner now holds the minimum alone: owner leaving raises it to a's 3 (and hands the
		// group to a: seq 6).
		_, ra, err = s.RemoveMember(ctx, id, owner.ID, at(5))
		if err != nil || ra != (chat.ReadAll{Seq: 3, Grown: true}) {
			t.Errorf("leave of the minimum: got %+v, %v; want {3 true}", ra, err)
		}
		if got := chatFor(t, s, a, id); got.ReadAllSeq != 3 || got.MemberCount != 1 || got.LastSeq != 6 {
			t.Errorf("after the minimum left: got read all %d, %d members, last seq %d; want 3, 1, 6", got.ReadAllSeq, got.MemberCount, got.LastSeq)
		}
	})
}

// TestReadAllAfterEmptyGroup checks that read_all_seq stays the members' minimum when a group
// that everyone left is joined again.
func TestReadAllAfterEmptyGroup(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner, a, b := mkUser(t, s, "Owner"), mkUser(t, s, "A"), mkUser(t, s, "B")
		id := mkGroup(t, s, owner, "G", true, at(1))
		if _, _, err := s.RemoveMember(ctx, id, owner.ID, at(2)); err != nil { // seq 2, nobody left
			t.Fatal(err)
		}
		if _, err := s.AddMember(ctx, id, a.ID, a.ID, chat.SysMemberJoined, at(3)); err != nil { // seq 3, a at 3
			t.Fatal(err)
		}
		if got, want := stateOf(chatFor(t, s, a, id)), (readState{LastSeq: 3, MyRead: 3, ReadAll: 3}); got != want {
			t.Errorf("the only member after rejoining: got %+v, want %+v", got, want)
		}
		send(t, s, id, a, "alone", at(4)) // a at 4
		if got := chatFor(t, s, a, id).ReadAllSeq; got != 4 {
			t.Errorf("the only member sent seq 4: read all %d, want 4", got)
		}
		if _, err := s.AddMember(ctx, id, b.ID, b.ID, chat.SysMemberJoined, at(5)); err != nil { // seq 5, b at 5
			t.Fatal(err)
		}
		send(t, s, id, a, "hi b", at(6)) // a at 6, b holds the minimum
		r, err := s.MarkRead(ctx, id, b.ID, 6)
		if err != nil || r.ReadAll != (chat.ReadAll{Seq: 6, Grown: true}) {
			t.Errorf("b reads everything: got %+v, %v; want read all 6, grown", r.ReadAll, err)
		}
	})
}

func TestSendMessage(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner, a, stranger := mkUser(t, s, "Owner"), mkUser(t, s, "A"), mkUser(t, s, "Stranger")
		id := mkGroup(t, s, owner, "G", true, at(1), a)

		first, err := s.SendMessage(ctx, chat.NewMessage{ChatID: id, SenderID: owner.ID, Body: "héllo ' \" ; -- %", ClientID: "k1", Now: at(2)})
		if err != nil {
			t.Fatal(err)
		}
		m := first.Message
		if !first.Created || m.ID <= 0 || m.ChatID != id || m.Seq != 2 || m.Kind != chat.MessageText || m.SenderID == nil ||
			*m.SenderID != owner.ID || m.Body != "héllo ' \" ; -- %" || m.ClientID == nil || *m.ClientID != "k1" || m.Event != nil ||
			!m.CreatedAt.Equal(at(2)) {
			t.Errorf("send: got %+v, want a new text message with seq 2", first)
		}
		// The owner moved to 2, a is still at 1: read-all stays.
		if first.ReadAll != (chat.ReadAll{Seq: 1}) {
			t.Errorf("read all after the owner's message: got %+v, want {1 false}", first.ReadAll)
		}
		if got := members(t, s, id)[owner.ID].LastReadSeq; got != 2 {
			t.Errorf("sender's last read: got %d, want 2", got)
		}

		// Same sender, same client id: the first message, whatever the body now says.
		again, err := s.SendMessage(ctx, chat.NewMessage{ChatID: id, SenderID: owner.ID, Body: "different", ClientID: "k1", Now: at(3)})
		if err != nil || again.Created || again.Message.ID != m.ID || again.Message.Seq != 2 || again.Message.Body != m.Body {
			t.Errorf("repeat: got %+v, %v; want the first message and Created=false", again, err)
		}
		if got := chatFor(t, s, owner, id).LastSeq; got != 2 {
			t.Errorf("a repeat took a seq: last seq %d, want 2", got)
		}

		// Another sender may use the same client id: client ids are per sender.
		other, err := s.SendMessage(ctx, chat.NewMessage{ChatID: id, SenderID: a.ID, Body: "mine", ClientID: "k1", Now: at(4)})
		if err != nil || !other.Created || other.Message.Seq != 3 {
			t.Errorf("same client id, other sender: got %+v, %v; want a new message with seq 3", other, err)
		}
		// a was the minimum (1) and moved to 3; owner is at 2.
		if other.ReadAll != (chat.ReadAll{Seq: 2, Grown: true}) {
			t.Errorf("read all after a's message: got %+v, want {2 true}", other.ReadAll)
		}

		var seqs []int64
		for i := range 5 {
			seqs = append(seqs, send(t, s, id, owner, fmt.Sprint("n", i), at(5+i)).Message.Seq)
		}
		if !slices.Equal(seqs, seqRange(4, 8)) {
			t.Errorf("seqs: got %v, want 4..8", seqs)
		}

		_, err = s.SendMessage(ctx, chat.NewMessage{ChatID: id, SenderID: stranger.ID, Body: "x", ClientID: "s1", Now: at(20)})
		wantErr(t, "non-member", err, chat.ErrNotMember)
		_, err = s.SendMessage(ctx, chat.NewMessage{ChatID: id + 1_000_000, SenderID: owner.ID, Body: "x", ClientID: "s2", Now: at(20)})
		wantErr(t, "unknown chat", err, chat.ErrNotFound)
		if got := chatFor(t, s, owner, id).LastSeq; got != 8 {
			t.Errorf("refused sends took a seq: last seq %d, want 8", got)
		}
		// A private chat numbers from 1.
		priv := mkPrivate(t, s, owner, a, at(30))
		if got := send(t, s, priv, a, "hi", at(31)).Message.Seq; got != 1 {
			t.Errorf("first seq of a private chat: got %d, want 1", got)
		}
	})
}

func TestHistory(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		owner := mkUser(t, s, "Owner")
		id := mkGroup(t, s, owner, "G", false, at(0))
		for i := range 10 {
			send(t, s, id, owner, fmt.Sprint("m", i), at(1+i)) // seqs 2..11
		}
		empty := mkGroup(t, s, owner, "Other", false, at(0))
		send(t, s, empty, owner, "elsewhere", at(20))
		for _, tc := range []struct {
			name     string
			q        chat.HistoryQuery
			want     []int64
			wantMore bool
		}{
			{"newest page", chat.HistoryQuery{Limit: 4}, seqRange(8, 11), true},
			{"everything", chat.HistoryQuery{Limit: 11}, seqRange(1, 11), false},
			{"more than everything", chat.HistoryQuery{Limit: 200}, seqRange(1, 11), false},
			{"before 8", chat.HistoryQuery{Before: 8, Limit: 4}, seqRange(4, 7), true},
			{"before 5, exactly the rest", chat.HistoryQuery{Before: 5, Limit: 4}, seqRange(1, 4), false},
			{"before 4", chat.HistoryQuery{Before: 4, Limit: 4}, seqRange(1, 3), false},
			{"before 1", chat.HistoryQuery{Before: 1, Limit: 4}, []int64{}, false},
			{"before beyond the end", chat.HistoryQuery{Before: 1 << 62, Limit: 2}, seqRange(10, 11), true},
			{"after 0 from the start", chat.HistoryQuery{HasAfter: true, After: 0, Limit: 4}, seqRange(1, 4), true},
			{"after 4", chat.HistoryQuery{HasAfter: true, After: 4, Limit: 4}, seqRange(5, 8), true},
			{"after 7, exactly the rest", chat.HistoryQuery{HasAfter: true, After: 7, Limit: 4}, seqRange(8, 11), false},
			{"after 9", chat.HistoryQuery{HasAfter: true, After: 9, Limit: 4}, seqRange(10, 11), false},
			{"after the end", chat.HistoryQuery{HasAfter: true, After: 11, Limit: 4}, []int64{}, false},
			{"after 2 before 6", chat.HistoryQuery{HasAfter: true, After: 2, Before: 6, Limit: 10}, seqRange(3, 5), false},
			{"after 2 before 9, limited", chat.HistoryQuery{HasAfter: true, After: 2, Before: 9, Limit: 3}, seqRange(3, 5), true},
		} {
			tc.q.ChatID = id
			got, more := history(t, s, tc.q)
			if !slices.Equal(got, tc.want) || more != tc.wantMore {
				t.Errorf("%s: got %v more=%v, want %v more=%v", tc.name, got, more, tc.want, tc.wantMore)
			}
		}
		// Paging back from the newest page visits every message exactly once.
		var all []int64
		before := int64(0)
		for {
			msgs, more, err := s.History(context.Background(), chat.HistoryQuery{ChatID: id, Before: before, Limit: 3})
			if err != nil {
				t.Fatal(err)
			}
			page := []int64{}
			for _, m := range msgs {
				page = append(page, m.Seq)
			}
			all = append(page, all...)
			if !more {
				break
			}
			before = msgs[0].Seq
		}
		if !slices.Equal(all, seqRange(1, 11)) {
			t.Errorf("paging back: got %v, want 1..11", all)
		}
		if got, more := history(t, s, chat.HistoryQuery{ChatID: id + 1_000_000, Limit: 5}); len(got) != 0 || more {
			t.Errorf("unknown chat: got %v more=%v, want nothing", got, more)
		}
	})
}

func TestMarkRead(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		o, a, b, stranger := mkUser(t, s, "O"), mkUser(t, s, "A"), mkUser(t, s, "B"), mkUser(t, s, "Stranger")
		id := mkGroup(t, s, o, "G", true, at(0), a, b) // seq 1
		send(t, s, id, o, "2", at(1))
		send(t, s, id, o, "3", at(2))
		send(t, s, id, o, "4", at(3))
		send(t, s, id, a, "5", at(4)) // o at 4, a at 5, b at 1
		if got, want := stateOf(chatFor(t, s, b, id)), (readState{LastSeq: 5, MyRead: 1, ReadAll: 1, Unread: 4}); got != want {
			t.Fatalf("b before reading: got %+v, want %+v", got, want)
		}
		if got, want := stateOf(chatFor(t, s, a, id)), (readState{LastSeq: 5, MyRead: 5, ReadAll: 1, Unread: 0}); got != want {
			t.Errorf("a's own message is not unread: got %+v, want %+v", got, want)
		}
		read := func(u chat.User, seq int64) chat.Read {
			t.Helper()
			r, err := s.MarkRead(ctx, id, u.ID, seq)
			if err != nil {
				t.Fatalf("user %d reads %d: %v", u.ID, seq, err)
			}
			return r
		}
		for _, tc := range []struct {
			name string
			who  chat.User
			seq  int64
			want chat.Read
		}{
			{"b reads to 3: b is the minimum", b, 3,
				chat.Read{State: chat.ReadState{ChatID: id, MyLastReadSeq: 3, ReadAllSeq: 3, UnreadCount: 2}, Changed: true, ReadAll: chat.ReadAll{Seq: 3, Grown: true}, LastSeq: 5}},
			{"b reads 2: never backwards", b, 2,
				chat.Read{State: chat.ReadState{ChatID: id, MyLastReadSeq: 3, ReadAllSeq: 3, UnreadCount: 2}, ReadAll: chat.ReadAll{Seq: 3}, LastSeq: 5}},
			{"b reads 3 again", b, 3,
				chat.Read{State: chat.ReadState{ChatID: id, MyLastReadSeq: 3, ReadAllSeq: 3, UnreadCount: 2}, ReadAll: chat.ReadAll{Seq: 3}, LastSeq: 5}},
			{"b reads far ahead: clamped to 5, the minimum is now o at 4", b, 1 << 60,
				chat.Read{State: chat.ReadState{ChatID: id, MyLastReadSeq: 5, ReadAllSeq: 4, UnreadCount: 0}, Changed: true, ReadAll: chat.ReadAll{Seq: 4, Grown: true}, LastSeq: 5}},
			{"a reads 0: nothing changes", a, 0,
				chat.Read{State: chat.ReadState{ChatID: id, MyLastReadSeq: 5, ReadAllSeq: 4}, ReadAll: chat.ReadAll{Seq: 4}, LastSeq: 5}},
			{"o reads 5: everyone has read everything", o, 5,
				chat.Read{State: chat.ReadState{ChatID: id, MyLastReadSeq: 5, ReadAllSeq: 5}, Changed: true, ReadAll: chat.ReadAll{Seq: 5, Grown: true}, LastSeq: 5}},
		} {
			if got := read(tc.who, tc.seq); got != tc.want {
				t.Errorf("%s:\n got  %+v\n want %+v", tc.name, got, tc.want)
			}
		}
		// A system message is not unread, and reading it does not count as text.
		if _, err := s.AddMember(ctx, id, stranger.ID, o.ID, chat.SysMemberInvited, at(10)); err != nil {
			t.Fatal(err)
		}
		if got, want := stateOf(chatFor(t, s, b, id)), (readState{LastSeq: 6, MyRead: 5, ReadAll: 5, Unread: 0}); got != want {
			t.Errorf("b after a system message: got %+v, want %+v", got, want)
		}
		// A non-minimum member moving does not raise read-all.
		send(t, s, id, b, "7", at(11)) // b at 7; o, a at 5, stranger at 6
		if got := read(o, 7); got.ReadAll.Grown || got.ReadAll.Seq != 5 || got.State.UnreadCount != 0 {
			t.Errorf("o reads while a holds the minimum: got %+v, want read all 5, not grown", got)
		}
		if got := read(a, 7); !got.ReadAll.Grown || got.ReadAll.Seq != 6 {
			t.Errorf("a reads, leaving the stranger at 6 as minimum: got %+v, want read all 6, grown", got)
		}
		if got := chatFor(t, s, o, id).ReadAllSeq; got != 6 {
			t.Errorf("stored read all: got %d, want 6", got)
		}

		_, err := s.MarkRead(ctx, id, mkUser(t, s, "Outsider").ID, 1)
		wantErr(t, "non-member", err, chat.ErrNotMember)
		_, err = s.MarkRead(ctx, id+1_000_000, o.ID, 1)
		wantErr(t, "unknown chat", err, chat.ErrNotFound)
	})
}

func TestChatsOf(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, peer, x := mkUser(t, s, "U"), mkUser(t, s, "Peer"), mkUser(t, s, "X")
		if chats, err := s.ChatsOf(ctx, u.ID); err != nil || chats == nil || len(chats) != 0 {
			t.Errorf("no chats: got %v, %v; want an empty list", chats, err)
		}
		g1 := mkGroup(t, s, u, "First", false, at(1), x)
		priv := mkPrivate(t, s, u, peer, at(2))
		g2 := mkGroup(t, s, x, "Second", true, at(3), u)
		notMine := mkGroup(t, s, x, "Not mine", true, at(4))
		order := func(who chat.User) []int64 {
			t.Helper()
			chats, err := s.ChatsOf(ctx, who.ID)
			if err != nil {
				t.Fatal(err)
			}
			ids := []int64{}
			for _, c := range chats {
				ids = append(ids, c.ID)
				if !c.IsMember {
					t.Errorf("ChatsOf lists chat %d the user is not in", c.ID)
				}
			}
			return ids
		}
		if got, want := order(u), []int64{g2, priv, g1}; !slices.Equal(got, want) {
			t.Errorf("by creation: got %v, want %v", got, want)
		}
		send(t, s, g1, x, "bump", at(10))
		if got, want := order(u), []int64{g1, g2, priv}; !slices.Equal(got, want) {
			t.Errorf("after a message in First: got %v, want %v", got, want)
		}
		send(t, s, priv, peer, "one", at(11))
		last := send(t, s, priv, peer, "two", at(12)).Message
		if got, want := order(u), []int64{priv, g1, g2}; !slices.Equal(got, want) {
			t.Errorf("after messages in the private chat: got %v, want %v", got, want)
		}
		chats, _ := s.ChatsOf(ctx, u.ID)
		p := chats[0]
		if p.UnreadCount != 2 || p.LastSeq != 2 || p.MyLastReadSeq != 0 || p.Title != "Peer" || p.Peer == nil || p.Peer.ID != peer.ID {
			t.Errorf("private chat as U: got %+v, want 2 unread, titled Peer", p)
		}
		if p.LastMessage == nil || p.LastMessage.ID != last.ID || p.LastMessage.Body != "two" {
			t.Errorf("last message: got %+v, want %+v", p.LastMessage, last)
		}
		if got := chats[1]; got.ID != g1 || got.UnreadCount != 1 || got.LastMessage == nil || got.LastMessage.Body != "bump" {
			t.Errorf("First as U: got %+v, want 1 unread, last message bump", got)
		}
		if got := chats[2]; got.ID != g2 || got.UnreadCount != 0 || got.LastMessage == nil || got.LastMessage.Kind != chat.MessageSystem {
			t.Errorf("Second as U: got %+v, want no unread, the system message last", got)
		}
		peerChats, _ := s.ChatsOf(ctx, peer.ID)
		if len(peerChats) != 1 || peerChats[0].UnreadCount != 0 || peerChats[0].Title != "U" {
			t.Errorf("private chat as the sender: got %+v, want 0 unread, titled U", peerChats)
		}
		// A membership change is activity too; leaving removes the chat from the list.
		if _, err := s.AddMember(ctx, notMine, u.ID, u.ID, chat.SysMemberJoined, at(20)); err != nil {
			t.Fatal(err)
		}
		if got, want := order(u), []int64{notMine, priv, g1, g2}; !slices.Equal(got, want) {
			t.Errorf("after joining: got %v, want %v", got, want)
		}
		if _, _, err := s.RemoveMember(ctx, g1, u.ID, at(21)); err != nil {
			t.Fatal(err)
		}
		if got, want := order(u), []int64{notMine, priv, g2}; !slices.Equal(got, want) {
			t.Errorf("after leaving First: got %v, want %v", got, want)
		}
		// A non-member's view of a chat is neutral.
		if c := chatFor(t, s, u, g1); c.IsMember || c.MyLastReadSeq != 0 || c.UnreadCount != 0 {
			t.Errorf("non-member view: got %+v, want not a member, nothing read or unread", c)
		}
		_, err := s.ChatFor(ctx, u.ID, notMine+1_000_000)
		wantErr(t, "unknown chat", err, chat.ErrNotFound)
	})
}

func TestDiscover(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, x := mkUser(t, s, "U"), mkUser(t, s, "X")
		pub := mkGroup(t, s, x, "Zq Book Club", true, at(1))
		pct := mkGroup(t, s, x, "Zq 100% Fun", true, at(1), u) // u is in it
		under := mkGroup(t, s, x, "Zq a_b", true, at(1))
		mkGroup(t, s, x, "Zq axb", true, at(1))
		mkGroup(t, s, x, "Zq Secret Book", false, at(1))
		mkPrivate(t, s, u, x, at(1))
		find := func(q string) []int64 {
			t.Helper()
			found, err := s.Discover(ctx, u.ID, q, 50)
			if err != nil {
				t.Fatal(err)
			}
			ids := []int64{}
			for _, d := range found {
				ids = append(ids, d.ID)
			}
			return ids
		}
		if got, want := find("book"), []int64{pub}; !slices.Equal(got, want) {
			t.Errorf("book: got %v, want %v (not the private group)", got, want)
		}
		if got := find("100%"); len(got) != 0 {
			t.Errorf("100%%: got %v, want nothing (u is a member of %d)", got, pct)
		}
		if got, want := find("a_b"), []int64{under}; !slices.Equal(got, want) {
			t.Errorf("a_b: got %v, want only %v", got, want)
		}
		found, err := s.Discover(ctx, u.ID, "club", 50)
		if err != nil || len(found) != 1 || found[0] != (chat.DiscoveredChat{ID: pub, Title: "Zq Book Club", MemberCount: 1}) {
			t.Errorf("club: got %+v, %v", found, err)
		}
	})
}

// TestConcurrentSend sends from many goroutines through two Store handles on one database, as
// two server instances would, and checks that seqs stay gapless and unique.
func TestConcurrentSend(t *testing.T) {
	const workers, perWorker = 8, 50
	eachBackendURL(t, func(t *testing.T, handles [2]*store.Store) {
		ctx := context.Background()
		users := make([]chat.User, workers)
		for i := range users {
			users[i] = mkUser(t, handles[0], fmt.Sprint("W", i))
		}
		id := mkGroup(t, handles[0], users[0], "Busy", false, at(0), users[1:]...)

		type ack struct {
			seq, id int64
			client  string
		}
		acks := make([][]ack, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				s := handles[w%2]
				for i := range perWorker {
					client := fmt.Sprintf("w%d-%d", w, i)
					sent, err := s.SendMessage(ctx, chat.NewMessage{ChatID: id, SenderID: users[w].ID, Body: client, ClientID: client, Now: time.Now()})
					if err != nil {
						t.Errorf("worker %d send %d: %v", w, i, err)
						return
					}
					if !sent.Created {
						t.Errorf("worker %d send %d: not created", w, i)
					}
					acks[w] = append(acks[w], ack{sent.Message.Seq, sent.Message.ID, client})
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}

		const n = workers * perWorker
		seen := map[int64]ack{}
		for w, list := range acks {
			for i, a := range list {
				if prev, dup := seen[a.seq]; dup {
					t.Errorf("seq %d acknowledged twice: %q and %q", a.seq, prev.client, a.client)
				}
				seen[a.seq] = a
				// One worker's sends are sequential: a later commit must get a later seq.
				if i > 0 && a.seq <= list[i-1].seq {
					t.Errorf("worker %d: send %d got seq %d after seq %d", w, i, a.seq, list[i-1].seq)
				}
			}
		}
		for seq := int64(2); seq <= n+1; seq++ {
			if _, ok := seen[seq]; !ok {
				t.Errorf("seq %d was never acknowledged", seq)
			}
		}
		// Every acknowledged message is stored under its seq, and nothing else is.
		var stored []chat.Message
		for after := int64(0); ; {
			page, more, err := handles[1].History(ctx, chat.HistoryQuery{ChatID: id, After: after, HasAfter: true, Limit: 200})
			if err != nil {
				t.Fatal(err)
			}
			stored = append(stored, page...)
			if !more {
				break
			}
			after = page[len(page)-1].Seq
		}
		if got, want := len(stored), n+1; got != want {
			t.Fatalf("stored %d messages, want %d", got, want)
		}
		for i, m := range stored {
			if m.Seq != int64(i+1) {
				t.Fatalf("message %d has seq %d: a gap or a duplicate", i, m.Seq)
			}
			if i == 0 {
				continue
			}
			a := seen[m.Seq]
			if m.ID != a.id || m.Body != a.client || m.ClientID == nil || *m.ClientID != a.client {
				t.Errorf("seq %d: stored %d %q, acknowledged %d %q", m.Seq, m.ID, m.Body, a.id, a.client)
			}
		}
		c := chatFor(t, handles[0], users[0], id)
		minLast := int64(n + 1)
		for w := range workers {
			minLast = min(minLast, acks[w][perWorker-1].seq)
		}
		if c.LastSeq != n+1 || c.ReadAllSeq != minLast {
			t.Errorf("chat: got last seq %d, read all %d; want %d, %d (the earliest last message of a sender)", c.LastSeq, c.ReadAllSeq, n+1, minLast)
		}
	})
}

// TestConcurrentIdempotency retries one send from many goroutines at once, through two
// handles: exactly one message is created and every caller gets it.
func TestConcurrentIdempotency(t *testing.T) {
	eachBackendURL(t, func(t *testing.T, handles [2]*store.Store) {
		ctx := context.Background()
		a, b := mkUser(t, handles[0], "A"), mkUser(t, handles[0], "B")
		id := mkGroup(t, handles[0], a, "G", false, at(0), b)
		const tries = 16
		results := make([]chat.Sent, tries)
		errs := make([]error, tries)
		var wg sync.WaitGroup
		for i := range tries {
			wg.Go(func() {
				results[i], errs[i] = handles[i%2].SendMessage(ctx, chat.NewMessage{ChatID: id, SenderID: a.ID, Body: "once", ClientID: "same", Now: at(1)})
			})
		}
		// Meanwhile both users open their private chat, from both sides.
		privs := make([]int64, tries)
		created := make([]bool, tries)
		privErrs := make([]error, tries)
		for i := range tries {
			wg.Go(func() {
				x, y := a.ID, b.ID
				if i%2 == 1 {
					x, y = y, x
				}
				privs[i], created[i], privErrs[i] = handles[i%2].CreatePrivate(ctx, x, y, at(1))
			})
		}
		wg.Wait()
		nCreated, nPriv := 0, 0
		for i := range tries {
			if errs[i] != nil {
				t.Fatalf("send %d: %v", i, errs[i])
			}
			if results[i].Created {
				nCreated++
			}
			if results[i].Message.ID != results[0].Message.ID || results[i].Message.Seq != 2 {
				t.Errorf("send %d: got message %d seq %d, want message %d seq 2", i, results[i].Message.ID, results[i].Message.Seq, results[0].Message.ID)
			}
			if privErrs[i] != nil {
				t.Fatalf("open private %d: %v", i, privErrs[i])
			}
			if created[i] {
				nPriv++
			}
			if privs[i] != privs[0] {
				t.Errorf("open private %d: got chat %d, want %d", i, privs[i], privs[0])
			}
		}
		if nCreated != 1 || nPriv != 1 {
			t.Errorf("got %d messages and %d private chats created, want 1 and 1", nCreated, nPriv)
		}
		if got := chatFor(t, handles[1], a, id).LastSeq; got != 2 {
			t.Errorf("last seq: got %d, want 2", got)
		}
	})
}

// eachBackendURL runs fn on every backend with two store handles on one database.
func eachBackendURL(t *testing.T, fn func(t *testing.T, handles [2]*store.Store)) {
	t.Helper()
	t.Parallel()
	for name, url := range migratedURLs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			u := url(t)
			fn(t, [2]*store.Store{open(t, u), open(t, u)})
		})
	}
}

func TestPruneSessions(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Millisecond)
		mk := func(expires time.Time, h string) chat.Session {
			x, err := s.CreateSession(ctx, chat.Session{UserID: 1, CreatedAt: now.Add(-48 * time.Hour), LastSeenAt: now, ExpiresAt: expires}, []byte(h))
			if err != nil {
				t.Fatal(err)
			}
			return x
		}
		live := mk(now.Add(time.Hour), "live")
		dead := mk(now.Add(-30*time.Hour), "dead")
		revoked := mk(now.Add(time.Hour), "revoked")
		if _, err := s.RevokeSessions(ctx, 1, revoked.ID, now.Add(-25*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RotateRefresh(ctx, []byte("live"), []byte("live2"), clientA, now.Add(-40*time.Hour), now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		n, err := s.PruneSessions(ctx, now.Add(-24*time.Hour), now.Add(-24*time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("PruneSessions = %d, %v; want 2 deleted", n, err)
		}
		if _, err := s.SessionByID(ctx, live.ID); err != nil {
			t.Errorf("the live session was deleted: %v", err)
		}
		for _, id := range []int64{dead.ID, revoked.ID} {
			if _, err := s.SessionByID(ctx, id); !errors.Is(err, chat.ErrNotFound) {
				t.Errorf("session %d: %v, want deleted", id, err)
			}
		}
		// The old rotated token is forgotten: presenting it is merely invalid now.
		if _, err := s.RotateRefresh(ctx, []byte("live"), []byte("x"), clientA, now, now.Add(time.Hour)); !errors.Is(err, chat.ErrNotFound) {
			t.Errorf("old token after pruning: %v, want ErrNotFound", err)
		}
	})
}

// TestUnicodeSearch: search folds case beyond ASCII the same way on both backends.
func TestUnicodeSearch(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, err := s.CreateUser(ctx, chat.User{Email: "elodie@example.com", Name: "Élodie", PasswordHash: "x", CreatedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"élo", "ÉLO", "Élodie"} {
			users, err := s.SearchUsers(ctx, chat.UserSearch{ViewerID: 1, Prefix: q, Limit: 10})
			if err != nil || len(users) != 1 || users[0].ID != u.ID {
				t.Errorf("SearchUsers(%q) = %v, %v; want Élodie", q, users, err)
			}
		}
		if _, err := s.CreateGroup(ctx, chat.NewGroup{CreatorID: 1, Title: "Ünïcode Club", Public: true, Now: time.Now()}); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"ünï", "ÜNÏCODE", "code cl"} {
			found, err := s.Discover(ctx, 2, q, 10)
			if err != nil || len(found) != 1 || found[0].Title != "Ünïcode Club" {
				t.Errorf("Discover(%q) = %v, %v; want the club", q, found, err)
			}
		}
	})
}
