package store_test

import (
	"context"
	"database/sql"
	"testing"
)

// Every connection of the SQLite store runs in WAL mode and syncs the WAL at each commit
// (synchronous FULL, 2): a message is acknowledged once its commit returns, and with NORMAL
// (1) a commit reached the disk only at the next checkpoint, so a crash of the machine could
// take back messages already acknowledged. Foreign keys are enforced, and a writer waits 10 s
// for the write lock.
func TestSQLiteConnectionSettings(t *testing.T) {
	ctx := context.Background()
	s := open(t, migratedURLs["sqlite"](t))
	var conns []*sql.Conn
	for range 3 { // held at once: three connections of the pool
		c, err := s.DB().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	for i, c := range conns {
		var journal string
		var synchronous, foreignKeys, busy int
		for _, p := range []struct {
			pragma string
			into   any
		}{{"journal_mode", &journal}, {"synchronous", &synchronous}, {"foreign_keys", &foreignKeys}, {"busy_timeout", &busy}} {
			if err := c.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(p.into); err != nil {
				t.Fatalf("connection %d: PRAGMA %s: %v", i, p.pragma, err)
			}
		}
		if journal != "wal" || synchronous != 2 || foreignKeys != 1 || busy != 10000 {
			t.Errorf("connection %d: journal_mode %s, synchronous %d, foreign_keys %d, busy_timeout %d; want wal, 2 (FULL), 1, 10000",
				i, journal, synchronous, foreignKeys, busy)
		}
	}
}
