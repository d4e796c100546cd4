package store

import (
	"context"
	"database/sql"
	"log/slog"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// The search indexer copies text messages into the search index after they are committed, so
// that a send's transaction (which holds its chat's lock) never pays for the index. It walks
// messages by id from search_state.indexed_to, in batches, each in one transaction that holds
// the state row: one instance indexes at a time, the others skip the round.
//
// Ids are taken when a message is inserted, not when it commits: on PostgreSQL a message may
// become visible after one with a larger id. So the indexer moves its mark only over ids it
// has seen, and stops at the first missing id until searchGapGrace has passed since the
// message after the gap was stored: a missing id is then a transaction that rolled back (a
// send commits within moments), never one still to come.
const (
	searchBatch = 500
	// searchBatchSQLite is smaller: SQLite's indexer batch holds the database's one write
	// lock, which every send waits for, while it writes the full-text index.
	searchBatchSQLite = 100
	searchGapGrace    = 5 * time.Second
)

// IndexSearch indexes the next batch of messages stored since the last call and reports how
// many ids it moved past (0: nothing to do, or another instance is at it).
func (s *Store) IndexSearch(ctx context.Context, now time.Time) (int, error) {
	return s.IndexSearchBatch(ctx, now, s.searchBatch())
}

// IndexSearchBatch is IndexSearch with batches of at most batch messages: a bulk load
// (scripts/seedsearch) takes larger ones than a server, whose batches hold back sends.
func (s *Store) IndexSearchBatch(ctx context.Context, now time.Time, batch int) (int, error) {
	moved, _, err := s.indexSearch(ctx, now, batch)
	return moved, err
}

// indexSearch is IndexSearchBatch that also reports whether the index was caught up (nothing
// stored after its mark), as against held at a gap or by another instance.
func (s *Store) indexSearch(ctx context.Context, now time.Time, batch int) (moved int, caughtUp bool, err error) {
	// Nothing new: no transaction (on SQLite it would take the write lock sends wait for).
	if behind, err := s.behind(ctx, `SELECT indexed_to FROM search_state WHERE id = 1`); err != nil || !behind {
		return 0, err == nil, err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		moved = 0
		lock := ""
		if s.dialect.name == postgres.name {
			lock = " FOR UPDATE SKIP LOCKED"
		}
		var mark int64
		err := tx.QueryRowContext(ctx, `SELECT indexed_to FROM search_state WHERE id = 1`+lock).Scan(&mark)
		if err == sql.ErrNoRows { // another instance holds it
			return nil
		}
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, chat_id, kind, body, created_at FROM messages
			WHERE id > $1 ORDER BY id LIMIT $2`, mark, batch)
		if err != nil {
			return err
		}
		type doc struct {
			id, chatID int64
			body       string
		}
		var docs []doc
		next := mark
		for rows.Next() {
			var d doc
			var kind string
			var created int64
			if err := rows.Scan(&d.id, &d.chatID, &kind, &d.body, &created); err != nil {
				rows.Close()
				return err
			}
			if d.id != next+1 && fromMS(created).After(now.Add(-searchGapGrace)) {
				break // an id below it may still commit
			}
			next = d.id
			if kind == chat.MessageText && d.body != "" {
				docs = append(docs, d)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if next == mark {
			return nil
		}
		if s.dialect.name == postgres.name {
			ids, chats, bodies := make([]int64, len(docs)), make([]int64, len(docs)), make([]string, len(docs))
			for i, d := range docs {
				ids[i], chats[i], bodies[i] = d.id, d.chatID, chat.FoldSearch(d.body)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO message_search (id, chat_id, body)
				SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[]) ON CONFLICT (id) DO NOTHING`, ids, chats, bodies); err != nil {
				return err
			}
		} else {
			for _, d := range docs {
				if _, err := tx.ExecContext(ctx, `INSERT INTO message_search (rowid, body, chat_id) VALUES ($1, $2, $3)`,
					d.id, chat.FoldSearch(d.body), d.chatID); err != nil {
					return err
				}
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE search_state SET indexed_to = $1 WHERE id = 1`, next); err != nil {
			return err
		}
		moved = int(next - mark)
		return nil
	})
	if err != nil {
		// The body may have counted a batch that the commit then failed to write (on a full
		// disk SQLite writes the full-text index there): nothing moved, and the caller waits
		// its interval rather than take it for a backlog and try again at once.
		return 0, false, err
	}
	return moved, false, nil
}

// behind reports whether messages were stored after the high-water mark that markQuery reads.
func (s *Store) behind(ctx context.Context, markQuery string) (bool, error) {
	var mark int64
	var last sql.NullInt64
	if err := s.db.QueryRowContext(ctx, markQuery).Scan(&mark); err != nil {
		return false, wrap(err)
	}
	if err := s.db.QueryRowContext(ctx, `SELECT max(id) FROM messages`).Scan(&last); err != nil {
		return false, wrap(err)
	}
	return last.Int64 > mark, nil
}

func (s *Store) searchBatch() int {
	if s.dialect.name == postgres.name {
		return searchBatch
	}
	return searchBatchSQLite
}

// RunSearchIndexer indexes new messages until ctx ends: at once while there is a backlog,
// otherwise at most one round per interval. When a round finds the index caught up, the next
// one comes after interval or as soon as a send commits on this instance, whichever is first:
// a message sent after a quiet spell can be found at once, while under steady traffic the
// rounds (each a write transaction: SQLite's holds back sends) stay one per interval. Messages
// stored by other instances are found by the interval's round, or by theirs.
func (s *Store) RunSearchIndexer(ctx context.Context, interval time.Duration, log *slog.Logger) {
	timer := time.NewTimer(interval)
	defer timer.Stop()
	// A line a second at most: while the database is unreachable every round fails (2 a
	// second at the default interval, for as long as the outage lasts).
	var warn chat.LogLimit
	for {
		select { // what was sent before this round is in it
		case <-s.searchWake:
		default:
		}
		n, caughtUp, err := s.indexSearch(ctx, time.Now(), s.searchBatch())
		if err != nil && ctx.Err() == nil {
			warn.Warn(ctx, log, "search indexer", "err", err)
			caughtUp = false
		}
		if f := s.searchRound; f != nil {
			f(n, caughtUp)
		}
		var wake <-chan struct{}
		switch {
		case n >= s.searchBatch():
			if ctx.Err() != nil {
				return
			}
			continue
		case caughtUp:
			wake = s.searchWake
		}
		timer.Reset(interval) // since Go 1.23 a Reset timer never delivers a stale tick
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-wake:
		}
	}
}

// wakeSearch tells an idle search indexer that a send committed; it never blocks.
func (s *Store) wakeSearch() {
	select {
	case s.searchWake <- struct{}{}:
	default:
	}
}

// reindexMessage brings the search index's copy of a message up to date in tx, for an edit
// or a deletion (an emptied body is taken out of the index). It holds the indexer's state row
// until tx ends, so an indexer round that read the old body cannot write it back afterwards.
// A message the indexer has not reached yet is left to it: it will read the current body.
func (s *Store) reindexMessage(ctx context.Context, tx *sql.Tx, chatID, seq int64) error {
	var mark int64
	if err := tx.QueryRowContext(ctx, `SELECT indexed_to FROM search_state WHERE id = 1`+s.forUpdate).Scan(&mark); err != nil {
		return err
	}
	var id int64
	var kind, body string
	err := tx.QueryRowContext(ctx, `SELECT id, kind, body FROM messages WHERE chat_id = $1 AND seq = $2`, chatID, seq).Scan(&id, &kind, &body)
	if err == sql.ErrNoRows {
		return nil
	}
	if err != nil {
		return err
	}
	del, ins := `DELETE FROM message_search WHERE id = $1`, `INSERT INTO message_search (id, chat_id, body) VALUES ($1, $2, $3)`
	if s.dialect.name != postgres.name {
		del, ins = `DELETE FROM message_search WHERE rowid = $1`, `INSERT INTO message_search (rowid, chat_id, body) VALUES ($1, $2, $3)`
	}
	if _, err := tx.ExecContext(ctx, del, id); err != nil {
		return err
	}
	if id > mark || kind != chat.MessageText || body == "" {
		return nil
	}
	_, err = tx.ExecContext(ctx, ins, id, chatID, chat.FoldSearch(body))
	return err
}
