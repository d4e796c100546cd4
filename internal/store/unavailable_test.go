package store_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
	"github.com/wschat/chat/internal/testdb"
)

// A database that refuses new connections is unavailable (503, retry), not an internal error:
// PostgreSQL answers the connection attempt with an error of its own (55000 here; a dropped
// database or a changed password likewise), which used to pass through as a query's error.
func TestRefusedConnectionIsUnavailable(t *testing.T) {
	t.Parallel()
	dbURL := migratedURLs["postgres"](t)
	s := open(t, dbURL)
	ctx := context.Background()
	if _, err := s.UserByID(ctx, 1); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin := testdb.OpenSQL(t, testdb.PostgresAdminURL())
	if _, err := admin.Exec(`ALTER DATABASE "` + name + `" ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(`ALTER DATABASE "` + name + `" ALLOW_CONNECTIONS true`) })
	if _, err := admin.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name); err != nil {
		t.Fatal(err)
	}
	// The first calls may meet a pooled connection that was terminated (57P01); the later ones
	// must open a new connection and be refused.
	for i := range 4 {
		if _, err := s.UserByID(ctx, 1); !errors.Is(err, chat.ErrUnavailable) {
			t.Fatalf("call %d with the database refusing connections: %v, want unavailable", i, err)
		}
	}
}

// A database whose disk is full refuses the write, and says so: ErrStorageFull, an
// ErrUnavailable (503, retry later), not an internal error. SQLite answers SQLITE_FULL
// (here: a connection that may not grow the file), PostgreSQL disk_full (53100).
func TestStorageFullIsUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			s := open(t, migratedURLs[dialect](t))
			c, err := s.DB().Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if dialect == "sqlite" {
				if _, err := c.ExecContext(ctx, `PRAGMA max_page_count = 1`); err != nil {
					t.Fatal(err)
				}
				defer c.ExecContext(ctx, `PRAGMA max_page_count = 1073741823`)
				_, err = c.ExecContext(ctx, `CREATE TABLE filler (b BLOB)`)
			} else {
				_, err = c.ExecContext(ctx, `DO $$ BEGIN RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; END $$`)
			}
			err = store.Wrap(err)
			if !errors.Is(err, chat.ErrStorageFull) || !errors.Is(err, chat.ErrUnavailable) {
				t.Fatalf("a write on a full disk: %v, want storage full (unavailable)", err)
			}
			if e := chat.Unavailable(err, "the database is unavailable"); e.RetryAfter == 0 || !strings.Contains(e.Message, "out of storage space") {
				t.Errorf("its answer: %+v", e)
			}
		})
	}
}

// A statement PostgreSQL gave up on (statement_timeout: 57014), or that waited too long for a
// lock (lock_timeout: 55P03, a session holding the chats table), is unavailable (503, retry),
// not an internal error: a database set up with those timeouts answered 500 to every request
// they cut while a psql session held a lock.
func TestTimedOutStatementIsUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, migratedURLs["postgres"](t))
	c, err := s.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `SET statement_timeout = '10ms'`); err != nil {
		t.Fatal(err)
	}
	_, err = c.ExecContext(ctx, `SELECT pg_sleep(2)`)
	if err := store.Wrap(err); !errors.Is(err, chat.ErrUnavailable) {
		t.Errorf("a statement past statement_timeout: %v, want unavailable", err)
	}
	if _, err := c.ExecContext(ctx, `SET statement_timeout = 0`); err != nil {
		t.Fatal(err)
	}

	holder, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(ctx, `LOCK TABLE chats IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecContext(ctx, `SET lock_timeout = '10ms'`); err != nil {
		t.Fatal(err)
	}
	_, err = c.ExecContext(ctx, `SELECT count(*) FROM chats`)
	if err := store.Wrap(err); !errors.Is(err, chat.ErrUnavailable) {
		t.Errorf("a statement past lock_timeout: %v, want unavailable", err)
	}
}

// TestLockWaitIsBounded: with Options.LockTimeout, a statement that waits for a lock longer
// gives up and is unavailable (503, retry): with a session holding the chats table, the chat
// list waited as long as it held it (24 s, while /readyz said ready), and so did a write. The
// bound is on the wait only: a statement that works longer than it (here sleeps) finishes,
// as a huge group's deletion must. A URL that sets lock_timeout itself wins.
func TestLockWaitIsBounded(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // only a hang gets there
	defer cancel()
	dbURL := migratedURLs["postgres"](t)
	s := openWith(t, dbURL, store.Options{LockTimeout: 50 * time.Millisecond})
	u := mkUser(t, s, "U")
	mkGroup(t, s, u, "G", false, at(1))

	holder, err := testdb.OpenSQL(t, dbURL).BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(ctx, `LOCK TABLE chats IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	lockTimedOut := func(what string, err error) {
		t.Helper()
		var pgErr *pgconn.PgError
		if !errors.Is(err, chat.ErrUnavailable) || !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
			t.Errorf("%s with the chats table held: %v, want unavailable (lock_timeout, 55P03)", what, err)
		}
	}
	_, err = s.ChatsOf(ctx, u.ID)
	lockTimedOut("the chat list", err)
	_, err = s.CreateGroup(ctx, chat.NewGroup{CreatorID: u.ID, Title: "H", Now: at(2)})
	lockTimedOut("a new group", err)
	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}
	if cs, err := s.ChatsOf(ctx, u.ID); err != nil || len(cs) != 1 {
		t.Errorf("the chat list once the table is free: %d chats, %v; want 1", len(cs), err)
	}
	if _, err := s.DB().ExecContext(ctx, `SELECT pg_sleep(0.2)`); err != nil {
		t.Errorf("a statement that works longer than the lock timeout: %v", err)
	}

	own := openWith(t, withParam(t, dbURL, "lock_timeout", "0"), store.Options{LockTimeout: 50 * time.Millisecond})
	var got string
	if err := own.DB().QueryRowContext(ctx, `SHOW lock_timeout`).Scan(&got); err != nil || got != "0" {
		t.Errorf("lock_timeout with the URL's own: %q, %v; want 0", got, err)
	}
}
