package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"slices"
	"testing"

	"modernc.org/sqlite"

	"github.com/wschat/chat/internal/testdb"
)

// stmtMemory is the memory the connection's prepared statements hold (SQLITE_DBSTATUS_STMT_USED).
func stmtMemory(t *testing.T, c *sql.Conn) int {
	t.Helper()
	var n int
	err := c.Raw(func(dc any) error {
		if u, ok := dc.(interface{ Unwrap() driver.Conn }); ok {
			dc = u.Unwrap()
		}
		var err error
		n, _, err = dc.(interface {
			Status(sqlite.DBStatusOp, bool) (int, int, error)
		}).Status(sqlite.DBStatusStmtUsed, false)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A SQLite connection of the store keeps the statements it ran prepared, and runs them again
// from there: the driver prepared each query anew and finalized it after.
func TestSQLiteConnectionKeepsStatements(t *testing.T) {
	ctx := context.Background()
	c := sqliteConn(t)
	const q = `SELECT count(*) FROM users WHERE id > $1`
	const e = `UPDATE search_state SET indexed_to = indexed_to WHERE id = $1`
	run := func() {
		var n int
		if err := c.QueryRowContext(ctx, q, 0).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ExecContext(ctx, e, 1); err != nil {
			t.Fatal(err)
		}
	}
	before := stmtMemory(t, c)
	run()
	kept := stmtMemory(t, c)
	if kept <= before {
		t.Fatalf("statements' memory %d bytes before the query and the update, %d after: want them kept", before, kept)
	}
	run()
	if again := stmtMemory(t, c); again > kept {
		t.Errorf("statements' memory %d bytes after the first run, %d after the second: want them run again, not prepared again", kept, again)
	}
}

// Rows still open on a kept statement leave it to them: the same text run meanwhile (a query
// inside the loop over another's rows, or a retry) gets a statement of its own, and both
// read what they should.
func TestSQLiteKeptStatementInUse(t *testing.T) {
	ctx := context.Background()
	c := sqliteConn(t)
	const q = `SELECT value FROM json_each($1)`
	outer, err := c.QueryContext(ctx, q, `[1, 2, 3]`)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for outer.Next() && len(got) < 20 { // bounded: a statement run from under its rows may never end them
		var v int
		if err := outer.Scan(&v); err != nil {
			t.Fatal(err)
		}
		var inner int
		if err := c.QueryRowContext(ctx, q, `[10]`).Scan(&inner); err != nil {
			t.Fatal(err)
		}
		got = append(got, v, inner)
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	outer.Close()
	if want := []int{1, 10, 2, 10, 3, 10}; !slices.Equal(got, want) {
		t.Errorf("read %v, want %v", got, want)
	}
	// A statement that failed is free again.
	if _, err := c.ExecContext(ctx, `INSERT INTO search_state (id, indexed_to) VALUES ($1, 0)`, 1); err == nil {
		t.Fatal("a second search_state row 1 was inserted")
	}
	if _, err := c.ExecContext(ctx, `INSERT INTO search_state (id, indexed_to) VALUES ($1, 0)`, 1); err == nil || !isUnique(err) {
		t.Fatalf("the failed insert run again: %v, want the same unique violation", err)
	}
}

// migratedSQLite opens a migrated SQLite store of the test's own, closed when the test ends.
func migratedSQLite(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), testdb.MigratedSQLite(t, MigrateURL), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sqliteConn is one connection of a migrated SQLite store of the test's own.
func sqliteConn(t *testing.T) *sql.Conn {
	t.Helper()
	c, err := migratedSQLite(t).db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
