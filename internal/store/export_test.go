package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"sync/atomic"
	"testing"

	"modernc.org/sqlite"

	"github.com/wschat/chat/internal/chat"
)

// SendBatch stores nms as one batch, past the queue (what one committer's call does with
// them: grouped by chat, each chat's in the given order), and returns each send's answer.
func SendBatch(s *Store, nms []chat.NewMessage) ([]chat.Sent, []error) {
	var groups []chatSends
	at := map[int64]int{}
	reqs := make([]*sendReq, len(nms))
	for i, nm := range nms {
		reqs[i] = &sendReq{ctx: context.Background(), nm: nm, done: make(chan struct{})}
		k, ok := at[nm.ChatID]
		if !ok {
			k = len(groups)
			at[nm.ChatID] = k
			groups = append(groups, chatSends{chatID: nm.ChatID})
		}
		groups[k].reqs = append(groups[k].reqs, reqs[i])
	}
	s.sendBatch(groups)
	outs, errs := make([]chat.Sent, len(nms)), make([]error, len(nms))
	for i, r := range reqs {
		<-r.done
		outs[i], errs[i] = r.out, r.err
	}
	return outs, errs
}

// SendQueue reports how many sends of a chat are queued and whether a batch of it is being
// stored, and how many batches the store has made in all.
func SendQueue(s *Store, chatID int64) (pending int, busy bool, batches int64) {
	q := &s.sends
	q.mu.Lock()
	defer q.mu.Unlock()
	if cq := q.chats[chatID]; cq != nil {
		pending, busy = len(cq.pending), cq.busy
	}
	return pending, busy, q.batches
}

// ReindexMessage is reindexMessage in a transaction of its own: what an edit or a deletion does.
func ReindexMessage(s *Store, chatID, seq int64) error {
	return s.inTx(context.Background(), func(tx *sql.Tx) error { return s.reindexMessage(context.Background(), tx, chatID, seq) })
}

// SetChatWalkMax sets the largest chat whose search reads the chat's history instead of the
// trigram index (-1: every search of a chat asks the index).
func SetChatWalkMax(s *Store, n int64) { s.chatWalkMax = n }

// ObserveSearchRounds calls f after each round of RunSearchIndexer (set it before starting).
func ObserveSearchRounds(s *Store, f func(moved int, caughtUp bool)) { s.searchRound = f }

// Wrap is wrap, the classification of database errors.
var Wrap = wrap

// ReplayTransactions makes every transaction of the store run twice: the first run rolls back
// once its body has run, as if it had given way to another transaction at its commit, and the
// second commits. What the store answers must be what one run answers.
func ReplayTransactions(s *Store) { s.replayTx = true }

// HoldRetries calls f each time a transaction of the store gave way (a deadlock), before it
// runs again; the run waits for f to return. Set it before the store is used.
func HoldRetries(s *Store, f func()) { s.beforeRetry = f }

// FailSQLiteCommits leaves the SQLite store one connection, whose commits fail (SQLite rolls
// them back) while fail is set.
func FailSQLiteCommits(t testing.TB, s *Store, fail *atomic.Bool) {
	s.db.SetMaxOpenConns(1)
	c, err := s.db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Raw(func(dc any) error {
		if u, ok := dc.(interface{ Unwrap() driver.Conn }); ok {
			dc = u.Unwrap()
		}
		dc.(interface{ RegisterCommitHook(sqlite.CommitHookFn) }).RegisterCommitHook(func() int32 {
			if fail.Load() {
				return 1
			}
			return 0
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
