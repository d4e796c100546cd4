package testdb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Migrate brings the (empty or current) database at url to the current schema: what
// store.Open and Store.Migrate do. testdb cannot import the store (the store's own tests
// import testdb), so the tests hand it in.
type Migrate func(ctx context.Context, url string) error

// A test server's database is migrated from scratch once per test binary, into a template, and
// every test database after that is a copy of it. Migrating is the costly part of starting a
// test server: under the race detector about 200 ms for SQLite (its driver is SQLite's C
// translated to Go, and instrumented with the rest) and 150-300 ms for PostgreSQL, for each of
// the hundreds of servers of a test run. Copying a file takes about a millisecond; CREATE
// DATABASE … TEMPLATE costs what an empty CREATE DATABASE costs. A test that checks migrations
// themselves opens an empty database instead (a TempDir path, or Postgres).

var sqliteTemplate struct {
	once  sync.Once
	files map[string][]byte // chat.db, and its write-ahead log if the close left one
	err   error
}

// MigratedSQLite returns the URL of a SQLite file of the test's own (in t.TempDir), holding the
// current schema and nothing else.
func MigratedSQLite(t testing.TB, migrate Migrate) string {
	t.Helper()
	sqliteTemplate.once.Do(func() {
		sqliteTemplate.files, sqliteTemplate.err = makeSQLiteTemplate(migrate)
	})
	if sqliteTemplate.err != nil {
		t.Fatalf("SQLite template: %v", sqliteTemplate.err)
	}
	dir := t.TempDir()
	for name, b := range sqliteTemplate.files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return "sqlite://" + filepath.Join(dir, "chat.db")
}

func makeSQLiteTemplate(migrate Migrate) (map[string][]byte, error) {
	dir, err := os.MkdirTemp("", "chat-test-template-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := migrate(ctx, "sqlite://"+filepath.Join(dir, "chat.db")); err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, name := range []string{"chat.db", "chat.db-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) && name != "chat.db" {
			continue
		}
		if err != nil {
			return nil, err
		}
		files[name] = b
	}
	return files, nil
}

var pgTemplate struct {
	once sync.Once
	name string
	err  error
}

// MigratedPostgres is Postgres with the current schema: a database of the test's own, created
// from a template database that the binary's first call migrated. The template is dropped by
// the first test binary that starts after this one has exited (a test binary has no hook of
// its own to run when it ends).
func MigratedPostgres(t testing.TB, migrate Migrate) string {
	t.Helper()
	db := adminDB(t)
	pgTemplate.once.Do(func() {
		pgTemplate.name, pgTemplate.err = makePostgresTemplate(db, migrate)
	})
	if pgTemplate.err != nil {
		db.Close()
		t.Fatalf("PostgreSQL template: %v", pgTemplate.err)
	}
	return createDatabase(t, db, "TEMPLATE "+pgTemplate.name)
}

// templateName is chat_tmpl_<pid>_<random>: the pid says whether its binary still runs.
var templateName = regexp.MustCompile(`^chat_tmpl_(\d+)_[0-9a-f]+$`)

func makePostgresTemplate(db *sql.DB, migrate Migrate) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The templates of test binaries that have ended.
	rows, err := db.QueryContext(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'chat\_tmpl\_%'`)
	if err != nil {
		return "", err
	}
	var stale []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return "", err
		}
		if m := templateName.FindStringSubmatch(name); m != nil {
			if pid, _ := strconv.Atoi(m[1]); !alive(pid) {
				stale = append(stale, name)
			}
		}
	}
	rows.Close()
	for _, name := range stale {
		// Another binary may be dropping it too, or it may have been reused by a live pid
		// meanwhile (then the drop fails on its connections or its copies): either is fine.
		db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name)
	}

	name := RandomName(fmt.Sprintf("chat_tmpl_%d_", os.Getpid()))
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	if err := migrate(ctx, withDatabase(PostgresAdminURL(), name)); err != nil {
		db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		return "", err
	}
	return name, nil
}

// alive reports whether a process with this pid runs on this machine.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
