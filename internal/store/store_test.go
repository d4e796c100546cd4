package store_test

import (
	"context"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wschat/chat/internal/store"
	"github.com/wschat/chat/internal/testdb"
)

// backends opens a store on a database of the test's own on each backend (migratedURLs), and
// "postgres-replayed": PostgreSQL with every transaction run twice, the first run rolled back
// (store.ReplayTransactions), as a transaction that gave way is run again; whatever a test
// sees of the store must be the same.
func backends(t *testing.T) map[string]func(t *testing.T) *store.Store {
	out := make(map[string]func(t *testing.T) *store.Store, len(migratedURLs)+1)
	for name, url := range migratedURLs {
		out[name] = func(t *testing.T) *store.Store { return open(t, url(t)) }
	}
	out["postgres-replayed"] = func(t *testing.T) *store.Store {
		s := open(t, migratedURLs["postgres"](t))
		store.ReplayTransactions(s)
		return s
	}
	return out
}

// migratedURLs give a database of the test's own on each backend, holding the current schema:
// a copy of a template migrated once per test run (internal/testdb). The tests of migrations
// themselves start from an empty database instead (eachUnmigrated).
var migratedURLs = map[string]func(t *testing.T) string{
	"sqlite":   func(t *testing.T) string { return testdb.MigratedSQLite(t, store.MigrateURL) },
	"postgres": func(t *testing.T) string { return testdb.MigratedPostgres(t, store.MigrateURL) },
}

// withParam is the PostgreSQL URL rawURL with the query parameter key set to value (pgx sends
// a parameter it does not know to the server as a setting of the connection).
func withParam(t *testing.T, rawURL, key, value string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func open(t *testing.T, url string) *store.Store {
	t.Helper()
	return openWith(t, url, store.Options{})
}

// openWith opens and migrates the store at url with opts.
func openWith(t *testing.T, url string, opts store.Options) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, url, opts)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

// eachBackend runs fn as a subtest on every backend.
func eachBackend(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, mk(t))
		})
	}
}

// eachUnmigrated runs fn in parallel on every backend with a store opened on a fresh,
// unmigrated database (name is the backend's): the migration tests move it up and down
// themselves.
func eachUnmigrated(t *testing.T, fn func(t *testing.T, ctx context.Context, name string, s *store.Store)) {
	t.Parallel()
	for name, url := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "chat.db") },
		"postgres": func(t *testing.T) string { return testdb.Postgres(t) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, err := store.Open(ctx, url(t), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			fn(t, ctx, name, s)
		})
	}
}

// TestSettingWarnings: the autovacuum warning is given exactly when the server runs without it,
// and never on SQLite.
func TestSettingWarnings(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		warnings, err := s.SettingWarnings(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		off := false
		if s.Dialect() == "postgres" {
			var v string
			if err := s.DB().QueryRow(`SHOW autovacuum`).Scan(&v); err != nil {
				t.Fatal(err)
			}
			off = v != "on"
		}
		warned := slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "autovacuum is off") })
		if warned != off || len(warnings) > 1 {
			t.Errorf("autovacuum off: %v; warnings %q", off, warnings)
		}
	})
}
