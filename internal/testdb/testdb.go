// Package testdb gives tests their own PostgreSQL database and Redis prefix on the machine's
// servers. Outside CI a missing server skips the test; with CI=true it fails it, so that CI
// never passes by skipping.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgresAdminURL is the server the tests use; CHAT_TEST_POSTGRES_URL overrides it.
func PostgresAdminURL() string {
	if u := os.Getenv("CHAT_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// RedisAddr is the Redis the tests use; CHAT_TEST_REDIS_ADDR overrides it.
func RedisAddr() string {
	if a := os.Getenv("CHAT_TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// Unavailable skips the test, or fails it in CI.
func Unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required in CI but unreachable: %v", what, err)
	}
	t.Skipf("%s unreachable (%v); set CI=true to make this a failure", what, err)
}

// RandomName returns prefix followed by 12 random hex digits.
func RandomName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Postgres creates an empty database for the test, drops it when the test ends, and returns
// its URL.
func Postgres(t testing.TB) string {
	t.Helper()
	db := adminDB(t)
	return createDatabase(t, db, "")
}

// adminDB opens a pool on the tests' PostgreSQL server, or skips (fails in CI) without one.
func adminDB(t testing.TB) *sql.DB {
	t.Helper()
	admin := PostgresAdminURL()
	cfg, err := pgx.ParseConfig(admin)
	if err != nil {
		t.Fatalf("parse %s: %v", admin, err)
	}
	cfg.ConnectTimeout = 3 * time.Second
	db := stdlib.OpenDB(*cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		Unavailable(t, "PostgreSQL at "+cfg.Host, err)
	}
	return db
}

// createDatabase creates a database named for the test with the given options (e.g. its
// template), on db, which it closes when the test ends after dropping the database.
func createDatabase(t testing.TB, db *sql.DB, options string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := RandomName("chat_test_")
	if _, err := db.ExecContext(ctx, strings.TrimSpace("CREATE DATABASE "+name+" "+options)); err != nil {
		db.Close()
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	return withDatabase(PostgresAdminURL(), name)
}

func withDatabase(rawURL, name string) string {
	i := strings.Index(rawURL, "://")
	rest := rawURL[i+3:]
	q := ""
	if j := strings.IndexByte(rest, '?'); j >= 0 {
		rest, q = rest[:j], rest[j:]
	}
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		rest = rest[:j]
	}
	return rawURL[:i+3] + rest + "/" + name + q
}

// Redis checks that the test Redis answers and returns its address and a unique key prefix.
func Redis(t testing.TB) (addr, prefix string) {
	t.Helper()
	addr = RedisAddr()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		Unavailable(t, "Redis at "+addr, err)
	}
	c.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintf(c, "PING\r\n")
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	c.Close()
	if err != nil || !strings.HasPrefix(string(buf[:n]), "+PONG") {
		Unavailable(t, "Redis at "+addr, fmt.Errorf("PING answered %q, %v", buf[:n], err))
	}
	return addr, RandomName("chat-test-")
}

// OpenSQL opens a database/sql pool on a PostgreSQL URL, for tests that inspect rows.
func OpenSQL(t testing.TB, url string) *sql.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { db.Close() })
	return db
}
