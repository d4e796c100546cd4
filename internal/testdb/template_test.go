package testdb_test

import (
	"context"
	"database/sql"
	"strings"
	"sync/atomic"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
	_ "modernc.org/sqlite"

	"github.com/wschat/chat/internal/testdb"
)

// schema is a stand-in for the store's migrations: it counts its runs, and it fails on a
// database that already has its table, as a migration from scratch would.
func schema(runs *atomic.Int32) testdb.Migrate {
	return func(ctx context.Context, url string) error {
		runs.Add(1)
		db, err := open(url)
		if err != nil {
			return err
		}
		defer db.Close()
		_, err = db.ExecContext(ctx, `CREATE TABLE t (v INTEGER)`)
		return err
	}
}

func open(url string) (*sql.DB, error) {
	if p, ok := strings.CutPrefix(url, "sqlite://"); ok {
		return sql.Open("sqlite", p)
	}
	return sql.Open("pgx", url)
}

// Each copy has the template's schema and nothing that another test wrote; the template is
// made once.
func TestMigratedCopies(t *testing.T) {
	for name, get := range map[string]func(t testing.TB, m testdb.Migrate) string{
		"sqlite":   testdb.MigratedSQLite,
		"postgres": testdb.MigratedPostgres,
	} {
		t.Run(name, func(t *testing.T) {
			var runs atomic.Int32
			m := schema(&runs)
			a, b := get(t, m), get(t, m)
			if a == b {
				t.Fatalf("two tests got one database: %s", a)
			}
			dbA, err := open(a)
			if err != nil {
				t.Fatal(err)
			}
			defer dbA.Close()
			if _, err := dbA.Exec(`INSERT INTO t (v) VALUES (1)`); err != nil {
				t.Fatalf("the copy has no schema: %v", err)
			}
			dbB, err := open(b)
			if err != nil {
				t.Fatal(err)
			}
			defer dbB.Close()
			var n int
			if err := dbB.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("the second copy holds %d rows of the first", n)
			}
			if got := runs.Load(); got > 1 { // 0 with -count > 1: the binary's template is made
				t.Errorf("migrated %d times, want once", got)
			}
		})
	}
}
