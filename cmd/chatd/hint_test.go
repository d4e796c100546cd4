package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/wschat/chat/internal/auth"
	"github.com/wschat/chat/internal/client"
	"github.com/wschat/chat/internal/config"
	"github.com/wschat/chat/internal/store"
	"github.com/wschat/chat/internal/testdb"
	"github.com/wschat/chat/internal/testlog"
)

func TestStartHintForTheEmbeddedDefault(t *testing.T) {
	t.Parallel()
	var out testlog.Buffer
	inst := startWith(t, nil, &out)
	got := out.String()
	for _, want := range []string{"open " + inst.URL + "\n", "first@example.com", `password "password"`} {
		if !strings.Contains(got, want) {
			t.Errorf("start-up output lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n"); n > 3 {
		t.Errorf("start-up output is %d lines, want a few:\n%s", n, got)
	}
}

func TestNoStartHintOutsideTheEmbeddedDefault(t *testing.T) {
	for _, cfg := range []config.Config{
		{DatabaseURL: "postgres://postgres@127.0.0.1:5432/chat"},
		{RedisURL: "redis://127.0.0.1:6379/0"},
	} {
		// Not embedded: the store is never asked (nil would panic).
		if got := startHint(context.Background(), cfg, nil, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}); got != "" {
			t.Errorf("startHint(%+v) = %q, want nothing", cfg, got)
		}
	}
}

func TestOpenURL(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, "http://127.0.0.1:8080"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 80}, "http://localhost:80"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}, "http://localhost:8080"},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 8080}, "http://[::1]:8080"},
	}
	for _, tt := range tests {
		if got := openURL(tt.addr); got != tt.want {
			t.Errorf("openURL(%v) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// TestDemoHashIsTheMigrations: the hash the start hint compares is the one migration 00002
// stores (store's TestCheapenDemoPasswords checks both hashes against the demo password).
func TestDemoHashIsTheMigrations(t *testing.T) {
	b, err := os.ReadFile("../../internal/store/migrations/00002_demo.sql")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "'first@example.com',  'First', 'first', '"+store.DemoPasswordHash+"'") {
		t.Fatal("migration 00002 does not store store.DemoPasswordHash for first@example.com")
	}
}

// TestStartHintFollowsTheDemoPassword: the hint is printed while the demo user has the demo
// password, hashed at the default cost (as migrated) or at the test cost (test runs), and not
// once the password was changed.
func TestStartHintFollowsTheDemoPassword(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, testdb.MigratedSQLite(t, store.MigrateURL), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	if got := startHint(ctx, config.Config{}, st, addr); !strings.Contains(got, demoEmail) {
		t.Fatalf("as migrated: hint %q", got)
	}
	if err := st.CheapenDemoPasswords(ctx); err != nil {
		t.Fatal(err)
	}
	if got := startHint(ctx, config.Config{}, st, addr); !strings.Contains(got, demoEmail) {
		t.Fatalf("with the test-cost hash: hint %q", got)
	}
	u, err := st.UserByEmail(ctx, demoEmail)
	if err != nil {
		t.Fatal(err)
	}
	h, err := auth.HashPassword(demoPassword, auth.FastPasswordParams) // the same password, set anew
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetPasswordHash(ctx, u.ID, h); err != nil {
		t.Fatal(err)
	}
	if got := startHint(ctx, config.Config{}, st, addr); got != "" {
		t.Fatalf("after a password change: hint %q, want none", got)
	}
}

// TestTestRunsHaveCheapDemoPasswords: chatd with CHAT_PASSWORD_COST=test (as every test run)
// stores the demo password at the test cost, and the demo user signs in with it.
func TestTestRunsHaveCheapDemoPasswords(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	inst := start(t, map[string]string{"CHAT_DATA_DIR": dir})
	signIn(t, inst, demoEmail)
	ctx := context.Background()
	st, err := store.Open(ctx, config.Config{DataDir: dir}.SQLiteURL(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.UserByEmail(ctx, demoEmail)
	if err != nil {
		t.Fatal(err)
	}
	if u.PasswordHash != store.DemoPasswordHashTest {
		t.Errorf("demo hash %s, want the test-cost one", u.PasswordHash)
	}
}

// TestDemoUsersOnlyWhereAsked: the demo users sign in with the published password on the
// embedded default and wherever CHAT_DEMO=on, nowhere else. On PostgreSQL (CHAT_DEMO=auto)
// they are locked at start, and a session of theirs from before is revoked; CHAT_DEMO=off
// locks them on SQLite too. Before, every PostgreSQL deployment had three accounts with the
// password "password". CHAT_DEMO=on afterwards gives the password back to those the lock took
// it from (once, a lock was for good), never to one who had changed it.
func TestDemoUsersOnlyWhereAsked(t *testing.T) {
	t.Parallel()
	login := func(t *testing.T, inst *instance, email, password string, want int) {
		t.Helper()
		err := newClient(inst.URL).Login(reqCtx(t), email, password)
		var e *client.Error
		switch {
		case want == http.StatusOK && err != nil:
			t.Errorf("%s's login with %q: %v, want it signed in", email, password, err)
		case want != http.StatusOK && (!errors.As(err, &e) || e.Status != want):
			t.Errorf("%s's login with %q: %v, want %d", email, password, err, want)
		}
	}
	wantLocked := func(t *testing.T, inst *instance) {
		t.Helper()
		login(t, inst, demoEmail, demoPassword, http.StatusUnauthorized)
	}
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		env := map[string]string{"CHAT_DATABASE_URL": testdb.Postgres(t), "CHAT_JWT_SECRET": "a-test-secret-that-is-long-enough-for-hs256", "CHAT_DEMO": "on"}
		on := start(t, env)
		before := signIn(t, on, demoEmail)
		second := signIn(t, on, "second@example.com")
		if err := second.Do(reqCtx(t), http.MethodPost, "/api/v1/users/me/password",
			map[string]any{"current_password": demoPassword, "new_password": "second's own"}, nil); err != nil {
			t.Fatalf("second@ changes the password: %v", err)
		}
		on.stop()
		env["CHAT_DEMO"] = "auto"
		locked := start(t, env)
		wantLocked(t, locked)
		before.Base = locked.URL
		var e *client.Error
		if err := before.Do(reqCtx(t), http.MethodGet, "/api/v1/users/me", nil, nil); !errors.As(err, &e) || e.Status != http.StatusUnauthorized {
			t.Errorf("the demo user's session from before: %v, want 401", err)
		}
		// Other accounts sign up and in as ever.
		if err := newClient(locked.URL).Register(reqCtx(t), "someone@example.com", "Someone", "a password"); err != nil {
			t.Errorf("sign-up beside the locked demo: %v", err)
		}
		login(t, locked, "second@example.com", "second's own", http.StatusOK)
		locked.stop()
		env["CHAT_DEMO"] = "on"
		again := start(t, env)
		login(t, again, demoEmail, demoPassword, http.StatusOK)
		login(t, again, "third@example.com", demoPassword, http.StatusOK)
		login(t, again, "second@example.com", demoPassword, http.StatusUnauthorized)
		login(t, again, "second@example.com", "second's own", http.StatusOK)
	})
	t.Run("sqlite, off", func(t *testing.T) {
		t.Parallel()
		env := map[string]string{"CHAT_DATA_DIR": t.TempDir(), "CHAT_DEMO": "off"}
		off := start(t, env)
		wantLocked(t, off)
		off.stop()
		env["CHAT_DEMO"] = "on"
		login(t, start(t, env), demoEmail, demoPassword, http.StatusOK)
	})
}
