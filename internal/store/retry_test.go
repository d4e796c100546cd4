package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
)

// The tests here make real deadlocks on PostgreSQL between a transaction of the store's and
// one of the test's own, taking rows in opposite orders. PostgreSQL looks for a deadlock only
// in the session whose wait has lasted deadlock_timeout, and aborts that one: the store's
// sessions and the test's are given very different timeouts, so which one gives way is
// decided, not raced. A third session of the test's holds a row the store's transaction
// needs half-way, to stop it there until the test's transaction waits for it.
//
// The store's next run of the aborted transaction waits (holdRetries) until the test's
// transaction has the row it waited for. Run at once, it could lock that row again first,
// before the test's session, woken by the abort, took it: the two deadlock again, and
// PostgreSQL looks for a deadlock once per wait, deadlock_timeout after it starts. When the
// store's session waited before the test's session waited again, its one look found no
// cycle, and the test's session would have looked after an hour: the package hung until go
// test's timeout, twice in CI, and on a machine kept busy by other processes too.

// openPGWith opens a store on a PostgreSQL database of the test's own whose connections start
// with deadlock_timeout set as given.
func openPGWith(t *testing.T, deadlockTimeout string) *store.Store {
	t.Helper()
	return open(t, withParam(t, migratedURLs["postgres"](t), "deadlock_timeout", deadlockTimeout))
}

// retryHold holds the store's runs of a transaction that gave way, each until release is
// closed (or the test ends); gaveWay receives a value as each run gave way.
type retryHold struct {
	gaveWay chan struct{}
	release chan struct{}
}

func holdRetries(t *testing.T, s *store.Store) *retryHold {
	h := &retryHold{gaveWay: make(chan struct{}, 8), release: make(chan struct{})}
	ctx := t.Context()
	store.HoldRetries(s, func() {
		select {
		case h.gaveWay <- struct{}{}:
		default:
		}
		select {
		case <-h.release:
		case <-ctx.Done():
		}
	})
	return h
}

// pgSession is an open transaction of the test's own and its server process. Its statements
// end with the test, so that a test that failed while one waits does not wait for it too.
type pgSession struct {
	*sql.Tx
	ctx context.Context
	pid int
}

// beginSession opens a transaction on its own connection whose deadlock_timeout is d.
func beginSession(t *testing.T, db *sql.DB, deadlockTimeout string) pgSession {
	t.Helper()
	ctx := t.Context()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	var pid int
	if err := tx.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL deadlock_timeout = '`+deadlockTimeout+`'`); err != nil {
		t.Fatal(err)
	}
	return pgSession{tx, ctx, pid}
}

// lock runs a locking statement in the session, in a goroutine, and reports its error on
// the channel returned.
func (x pgSession) lock(q string, args ...any) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := x.ExecContext(x.ctx, q, args...)
		done <- err
	}()
	return done
}

// deadlock makes what (a transaction of the store, done when it ends) and the test's session
// other deadlock: what holds the first chat and waits for stop's lock on the second; other,
// holding what the store asks for next, asks for the first chat; stop then lets go. other
// goes on, and the store's transaction is the one aborted (other's deadlock_timeout is long).
// Its next run waits (hold) until other has the first chat.
func deadlock(t *testing.T, s *store.Store, hold *retryHold, stop, other pgSession, first int64, done <-chan error, what string) {
	t.Helper()
	waitBlockedBy(t, s.DB(), stop.pid, done, what+", the second chat held")
	locked := other.lock(`SELECT id FROM chats WHERE id = $1 FOR NO KEY UPDATE`, first)
	waitWaiting(t, s.DB(), other.pid, locked, "the first chat, which "+what+" holds,")
	if err := stop.Rollback(); err != nil {
		t.Fatal(err)
	}
	// PostgreSQL breaks the deadlock within the store's deadlock_timeout (10 ms): 2 minutes
	// is a bound far past any machine's slowness, and its failure shows what the database's
	// sessions were waiting for.
	select {
	case err := <-locked:
		if err != nil {
			t.Fatalf("the test's session, beside %s: %v", what, err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("the deadlock of %s and the test's session was not broken in 2 minutes; sessions:\n%s", what, sessions(s.DB()))
	}
	select {
	case <-hold.gaveWay:
	case err := <-done:
		t.Fatalf("%s ended (%v) without giving way to the test's session", what, err)
	case <-time.After(2 * time.Minute):
		t.Fatalf("the test's session has the first chat, but %s did not give way in 2 minutes", what)
	}
	close(hold.release)
}

// sessions describes the database's sessions: what each runs, waits for and is blocked by.
func sessions(db *sql.DB) string {
	rows, err := db.Query(`SELECT pid, state, coalesce(wait_event_type, ''), coalesce(wait_event, ''),
		pg_blocking_pids(pid)::text, left(query, 120)
		FROM pg_stat_activity WHERE datname = current_database() ORDER BY pid`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var pid int
		var state, waitType, wait, blockedBy, query string
		if err := rows.Scan(&pid, &state, &waitType, &wait, &blockedBy, &query); err != nil {
			return err.Error()
		}
		fmt.Fprintf(&b, "  %d %s wait=%s/%s blocked by %s: %s\n", pid, state, waitType, wait, blockedBy, query)
	}
	return b.String()
}

// waitBlockedBy waits until a session of the database waits for a lock that the session pid
// holds. It fails the test if done says first that what should have waited has finished.
func waitBlockedBy(t *testing.T, db *sql.DB, pid int, done <-chan error, what string) {
	t.Helper()
	for {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))`, pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("%s did not wait (%v)", what, err)
		case <-time.After(time.Millisecond):
		}
	}
}

// waitWaiting waits until the session pid waits for a lock.
func waitWaiting(t *testing.T, db *sql.DB, pid int, done <-chan error, what string) {
	t.Helper()
	for {
		var waiting bool
		if err := db.QueryRow(`SELECT cardinality(pg_blocking_pids($1)) > 0`, pid).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("%s did not wait (%v)", what, err)
		case <-time.After(time.Millisecond):
		}
	}
}

// TestDeadlockedTransactionRunsAgain: a transaction of the store's that PostgreSQL aborts to
// end a deadlock (40P01) runs again and succeeds; it answered ErrUnavailable (503). The
// store's transaction is an account deletion, which locks the user's chats in id order and
// then the user's row; the test's holds the user's row as a send's foreign-key check does and
// then asks for the first chat, which the deletion holds. The test's session gets that chat
// while the deletion is still under way: the deletion's first run gave way (deadlock sees the
// store run it again) and was rolled back.
func TestDeadlockedTransactionRunsAgain(t *testing.T) {
	t.Parallel()
	s := openPGWith(t, "10ms")
	hold := holdRetries(t, s)
	ctx := t.Context()
	gone, peer := mkUser(t, s, "Gone"), mkUser(t, s, "Peer")
	first := mkGroup(t, s, peer, "First", false, at(1), gone)
	second := mkGroup(t, s, peer, "Second", false, at(1), gone)

	other := beginSession(t, s.DB(), "1h")
	if _, err := other.ExecContext(ctx, `SELECT id FROM users WHERE id = $1 FOR KEY SHARE`, gone.ID); err != nil {
		t.Fatal(err)
	}
	stop := beginSession(t, s.DB(), "1h")
	if _, err := stop.ExecContext(ctx, `SELECT id FROM chats WHERE id = $1 FOR UPDATE`, second); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan error, 1)
	go func() {
		_, err := s.DeleteUser(ctx, gone.ID, at(2))
		deleted <- err
	}()
	// The deletion asks for the user's row: a deadlock, and the deletion is the one aborted.
	deadlock(t, s, hold, stop, other, first, deleted, "the deletion")
	if err := other.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-deleted; err != nil {
		t.Fatalf("the deletion that met a deadlock: %v, want it run again", err)
	}
	if ids, err := s.ChatIDsOf(ctx, gone.ID); err != nil || len(ids) != 0 {
		t.Errorf("chats of the deleted account: %v, %v; want none", ids, err)
	}
}

// TestDeadlockedSendRunsAgain: a batch of sends that PostgreSQL aborts to end a deadlock runs
// again, and each send is stored once and answered once, after the commit. The batch locks
// its two chats in id order, then moves the sender's read mark in the first; the test's
// session holds that member row and asks for the first chat.
func TestDeadlockedSendRunsAgain(t *testing.T) {
	t.Parallel()
	s := openPGWith(t, "10ms")
	hold := holdRetries(t, s)
	ctx := t.Context()
	a, b := mkUser(t, s, "A"), mkUser(t, s, "B")
	first := mkGroup(t, s, a, "First", false, at(1), b)
	second := mkGroup(t, s, a, "Second", false, at(1), b)

	other := beginSession(t, s.DB(), "1h")
	if _, err := other.ExecContext(ctx, `SELECT 1 FROM members WHERE chat_id = $1 AND user_id = $2 FOR UPDATE`, first, a.ID); err != nil {
		t.Fatal(err)
	}
	stop := beginSession(t, s.DB(), "1h")
	if _, err := stop.ExecContext(ctx, `SELECT id FROM chats WHERE id = $1 FOR UPDATE`, second); err != nil {
		t.Fatal(err)
	}
	type result struct {
		outs []chat.Sent
		errs []error
	}
	sent := make(chan result, 1)
	done := make(chan error, 1)
	committed := make(chan string, 2)
	go func() {
		var r result
		r.outs, r.errs = store.SendBatch(s, []chat.NewMessage{
			{ChatID: first, SenderID: a.ID, Body: "one", ClientID: "c1", Now: at(2), Committed: func(chat.Sent, error) { committed <- "c1" }},
			{ChatID: second, SenderID: a.ID, Body: "two", ClientID: "c2", Now: at(2), Committed: func(chat.Sent, error) { committed <- "c2" }},
		})
		sent <- r
		done <- nil
	}()
	deadlock(t, s, hold, stop, other, first, done, "the send")
	if len(committed) != 0 {
		t.Fatalf("a send was answered before its batch committed")
	}
	if err := other.Commit(); err != nil {
		t.Fatal(err)
	}
	r := <-sent
	for i, want := range []struct {
		chat int64
		body string
	}{{first, "one"}, {second, "two"}} {
		if err := r.errs[i]; err != nil {
			t.Fatalf("send %d that met a deadlock: %v, want it run again", i, err)
		}
		if m := r.outs[i]; !r.outs[i].Created || m.Message.Seq != 2 || m.Message.Body != want.body {
			t.Errorf("send %d: %+v, want %q created at seq 2", i, m, want.body)
		}
		msgs, _, err := s.History(ctx, chat.HistoryQuery{ChatID: want.chat, Limit: 10})
		if err != nil || len(msgs) != 2 || msgs[1].Body != want.body || msgs[1].ID != r.outs[i].Message.ID {
			t.Errorf("history of chat %d: %+v, %v; want the chat's creation and %q once", want.chat, msgs, err, want.body)
		}
	}
	if got := []string{<-committed, <-committed}; !slices.Equal(got, []string{"c1", "c2"}) {
		t.Errorf("answers: %v, want each send once", got)
	}
}

// TestDeleteUserBesideAJoin: a group the user joined between the deletion's read of their
// chats and its lock of their row is not locked after that row: the deletion starts over.
// It locked the group after the row, and a send of the user's into that group, which holds
// the group and then key-share locks the sender's row, deadlocked with it. The store's
// sessions look for deadlocks after an hour and the test's (the send) after 10 ms: the send
// would be the one aborted.
func TestDeleteUserBesideAJoin(t *testing.T) {
	t.Parallel()
	s := openPGWith(t, "1h")
	ctx := context.Background()
	gone, peer := mkUser(t, s, "Gone"), mkUser(t, s, "Peer")
	was := mkGroup(t, s, peer, "Was", false, at(1), gone)
	joined := mkGroup(t, s, peer, "Joined", false, at(1))

	stop := beginSession(t, s.DB(), "1h")
	if _, err := stop.ExecContext(ctx, `SELECT id FROM chats WHERE id = $1 FOR UPDATE`, was); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan error, 1)
	go func() {
		_, err := s.DeleteUser(ctx, gone.ID, at(3))
		deleted <- err
	}()
	// The deletion has read the user's chats and waits for the one it knows.
	waitBlockedBy(t, s.DB(), stop.pid, deleted, "the deletion, the user's group held")
	if _, err := s.AddMember(ctx, joined, gone.ID, peer.ID, chat.SysMemberInvited, at(2)); err != nil {
		t.Fatal(err)
	}
	sending := beginSession(t, s.DB(), "10ms")
	if _, err := sending.ExecContext(ctx, `SELECT id FROM chats WHERE id = $1 FOR NO KEY UPDATE`, joined); err != nil {
		t.Fatal(err)
	}
	if err := stop.Rollback(); err != nil {
		t.Fatal(err)
	}
	waitBlockedBy(t, s.DB(), sending.pid, deleted, "the deletion, the joined group held")
	// What storing the message does to the sender's row (the foreign key's check).
	if _, err := sending.ExecContext(ctx, `SELECT id FROM users WHERE id = $1 FOR KEY SHARE`, gone.ID); err != nil {
		t.Fatalf("the send, beside the deletion: %v", err)
	}
	if err := sending.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-deleted; err != nil {
		t.Fatalf("the deletion, beside the send: %v", err)
	}
	if ids, err := s.ChatIDsOf(ctx, gone.ID); err != nil || len(ids) != 0 {
		t.Errorf("chats of the deleted account: %v, %v; want none (the joined group left too)", ids, err)
	}
}
