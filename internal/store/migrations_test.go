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

// TestMigrationsDownAndUp: on a fresh database of each backend, the migrations go all the way
// up, all the way down to none, and up again, with rows in the tables on the way down; down
// leaves no table, index, constraint, function or trigger of ours behind, and up again builds
// the very schema the first up did. Every migration's Down works (the partial round trips of
// TestMigration00007 and the others rely on it). What a Down does not undo, by design: 00014's
// has nothing to undo (its comment says why), rows an Up deleted (00015's push subscriptions,
// 00017's second spellings of an endpoint) do not come back, nor 00016's and 00017's old
// spellings, and PostgreSQL keeps the pg_trgm extension of 00010 (created if not there;
// an extension is the database's, perhaps installed by its administrator), which is why the
// schema listed leaves extensions and their functions out.
func TestMigrationsDownAndUp(t *testing.T) {
	eachUnmigrated(t, func(t *testing.T, ctx context.Context, name string, s *store.Store) {
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		first := schemaOf(t, s.DB(), name)
		if len(first) == 0 {
			t.Fatal("no schema read after migrating up")
		}
		fillEveryTable(t, ctx, s)
		if err := store.MigrateTo(ctx, s, 0); err != nil {
			t.Fatalf("down to 0: %v", err)
		}
		if left := schemaOf(t, s.DB(), name); len(left) > 0 {
			t.Errorf("left after migrating down to 0:\n%s", strings.Join(left, "\n"))
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("up again: %v", err)
		}
		again := schemaOf(t, s.DB(), name)
		if !slices.Equal(first, again) {
			t.Errorf("the schema after down and up differs:\n%s", diffLines(first, again))
		}
		// The store works on it: the demo data is back, and a user can be made.
		fillEveryTable(t, ctx, s)
	})
}

// fillEveryTable stores a little of everything, so that each Down meets rows: users, a
// session, a group with a message that mentions, replies and attaches a file, a push
// subscription of the session, a shown push and a job.
func fillEveryTable(t *testing.T, ctx context.Context, s *store.Store) {
	t.Helper()
	a, b := mkUser(t, s, "down-a"), mkUser(t, s, "down-b")
	g := mkGroup(t, s, a, "down", false, at(0), b)
	send(t, s, g, a, "hello", at(1))
	if _, err := sendMention(s, g, a, false, 2, b); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	x, err := s.CreateSession(ctx, chat.Session{UserID: b.ID, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}, []byte("down-"+a.Email))
	if err != nil {
		t.Fatal(err)
	}
	sub := chat.PushSubscription{UserID: b.ID, SessionID: x.ID, Endpoint: "https://push.example/" + a.Email, P256dh: "k", Auth: "a"}
	if err := s.SavePushSubscription(ctx, sub, now); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkPushShown(ctx, b.ID, g, 1, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BeginUpload(ctx, chat.NewUpload{ChatID: g, UploaderID: a.ID, Key: "down/" + a.Email, Now: now}); err != nil {
		t.Fatal(err)
	}
}

// schemaOf lists what the migrations made, one line per object, in a stable order: tables'
// columns, indexes, constraints, functions and triggers (goose's own table left out).
func schemaOf(t *testing.T, db *sql.DB, dialect string) []string {
	t.Helper()
	var q string
	if dialect == "postgres" {
		q = `SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '')
			FROM information_schema.columns WHERE table_schema = current_schema() AND table_name <> 'goose_db_version'
		UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename <> 'goose_db_version'
		UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
			FROM pg_constraint WHERE connamespace = current_schema()::regnamespace AND conrelid::regclass::text <> 'goose_db_version'
		UNION ALL SELECT 'function ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') ' || md5(pg_get_functiondef(p.oid))
			FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace
			AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
		UNION ALL SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
		UNION ALL SELECT 'sequence ' || sequence_name FROM information_schema.sequences WHERE sequence_schema = current_schema()
			AND sequence_name NOT LIKE 'goose_db_version%'
		UNION ALL SELECT 'type ' || typname FROM pg_type WHERE typnamespace = current_schema()::regnamespace AND typtype IN ('e', 'd')
		ORDER BY 1`
	} else {
		q = `SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_master
			WHERE name NOT LIKE 'sqlite_%' AND name <> 'goose_db_version' ORDER BY 1`
	}
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		out = append(out, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// diffLines lists the lines only in a (-) or only in b (+).
func diffLines(a, b []string) string {
	var out strings.Builder
	for _, l := range a {
		if !slices.Contains(b, l) {
			fmt.Fprintf(&out, "- %s\n", l)
		}
	}
	for _, l := range b {
		if !slices.Contains(a, l) {
			fmt.Fprintf(&out, "+ %s\n", l)
		}
	}
	return out.String()
}
