package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/wschat/chat/internal/chat"
)

// recordingQuerier passes queries to a transaction and keeps each one with its arguments.
type recordingQuerier struct {
	tx      *sql.Tx
	queries []recordedQuery
}

type recordedQuery struct {
	sql  string
	args []any
}

func (r *recordingQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	r.queries = append(r.queries, recordedQuery{query, args})
	return r.tx.QueryContext(ctx, query, args...)
}

// A batch's idempotency lookup on SQLite finds each (sender, client id) through
// messages_client: one query with a term per send was planned as a walk of the chat's whole
// history (messages_seq, chat_id=?) from about five sends on, so a busy chat's sends cost more
// the longer its history. The plan is SQLite's own answer, whatever the machine's speed.
func TestStoredByClientIDSearchesTheIndexSQLite(t *testing.T) {
	ctx := context.Background()
	s := migratedSQLite(t)
	var batch []*sendReq
	for i := range 20 {
		batch = append(batch, &sendReq{nm: chat.NewMessage{ChatID: 1, SenderID: int64(1 + i%2), ClientID: fmt.Sprintf("c%d", i)}})
	}
	batch = append(batch, batch[3]) // a repeat within the batch
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	rec := &recordingQuerier{tx: tx}
	if _, err := storedByClientID(ctx, rec, 1, batch); err != nil {
		t.Fatal(err)
	}
	if len(rec.queries) == 0 {
		t.Fatal("no query made")
	}
	for _, q := range rec.queries {
		rs, err := tx.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q.sql, q.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rs.Next() {
			var id, parent, unused int
			var detail string
			if err := rs.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rs.Close()
		for _, step := range plan {
			if strings.Contains(step, " messages ") && !strings.Contains(step, "messages_client (chat_id=? AND sender_id=? AND client_id=?)") {
				t.Errorf("query %.80q... is planned as %q: want every read of messages through messages_client", q.sql, plan)
				break
			}
		}
	}
}
