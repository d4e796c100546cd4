package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wschat/chat/internal/store"
)

// TestScaledModeNeedsARealSecret: with Redis (or PostgreSQL) configured, chatd does not start
// without CHAT_JWT_SECRET, or with a short or example one, and says so before it touches the
// database (no migrations to wait through for a configuration error).
func TestScaledModeNeedsARealSecret(t *testing.T) {
	t.Parallel()
	for _, secret := range []string{"", "too-short", "change-me-to-a-long-random-string-0123456789"} {
		dir := t.TempDir()
		env := map[string]string{"CHAT_ADDR": freeAddr(t), "CHAT_DATA_DIR": dir, "CHAT_REDIS_URL": "redis://127.0.0.1:1/0",
			"CHAT_JWT_SECRET": secret, "CHAT_LOG_LEVEL": "error"}
		// The deadline only stops a hang: chatd checks the secret before it opens the database.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := run(ctx, nil, func(k string) string { return env[k] }, io.Discard, io.Discard)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "CHAT_JWT_SECRET") {
			t.Errorf("CHAT_JWT_SECRET=%q: run returned %v, want a refusal naming the variable", secret, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "chat.db")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("CHAT_JWT_SECRET=%q: the database was opened before the refusal (%v)", secret, err)
		}
	}
}

// TestKeyRotation rotates the JWT secret across restarts of one deployment: a token signed
// with the old secret still works on an instance that lists it in CHAT_JWT_OLD_SECRETS, and no
// longer on one that does not. (One embedded server at a time: TestOneServerPerEmbeddedDatabase.)
func TestKeyRotation(t *testing.T) {
	const oldSecret, newSecret = "rotation-old-9f8e7d6c5b4a39281706f5e4d3c2b1a0", "rotation-new-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	dir := t.TempDir()
	before := start(t, map[string]string{"CHAT_DATA_DIR": dir, "CHAT_JWT_SECRET": oldSecret})
	token := signIn(t, before, "first@example.com").Token()

	me := func(inst *instance) int {
		t.Helper()
		c := newClient(inst.URL)
		req, _ := http.NewRequest("GET", inst.URL+"/api/v1/users/me", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := c.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	before.stop()
	rotating := start(t, map[string]string{"CHAT_DATA_DIR": dir, "CHAT_JWT_SECRET": newSecret, "CHAT_JWT_OLD_SECRETS": oldSecret})
	if got := me(rotating); got != http.StatusOK {
		t.Errorf("old token on an instance that lists the old secret: %d, want 200", got)
	}
	rotating.stop()
	rotated := start(t, map[string]string{"CHAT_DATA_DIR": dir, "CHAT_JWT_SECRET": newSecret})
	if got := me(rotated); got != http.StatusUnauthorized {
		t.Errorf("old token after the old secret was dropped: %d, want 401", got)
	}
	// A fresh sign-in on the rotated instance works everywhere the new secret is known.
	fresh := signIn(t, rotated, "second@example.com")
	if err := fresh.Do(context.Background(), "GET", "/api/v1/users/me", nil, nil); err != nil {
		t.Errorf("new token: %v", err)
	}
}

// TestOneServerPerEmbeddedDatabase: a second chatd on the data dir of a running one (an
// operator's mistake: a service and a copy started by hand) refuses to start, naming the lock
// and who holds it. Both used to run: each stored what it was sent, and neither's clients got
// the other's messages live (the brokers are in-process). Once the first has stopped (the
// kernel drops the lock however it ends), the next one starts.
func TestOneServerPerEmbeddedDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := start(t, map[string]string{"CHAT_DATA_DIR": dir})
	env := map[string]string{"CHAT_ADDR": freeAddr(t), "CHAT_DATA_DIR": dir, "CHAT_LOG_LEVEL": "error", "CHAT_PASSWORD_COST": "test"}
	// The deadline only stops a hang: the refusal comes before the database is opened.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, nil, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if !errors.Is(err, store.ErrInUse) || !strings.Contains(err.Error(), filepath.Join(dir, "chat.db.lock")) {
		t.Fatalf("a second server on the data dir: %v, want a refusal naming the lock", err)
	}
	first.stop()
	second := start(t, map[string]string{"CHAT_DATA_DIR": dir})
	signIn(t, second, "first@example.com")
}
