package config

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.DataDir != "./data" || c.RedisPrefix != "chat" || c.AccessTTL != 15*time.Minute ||
		c.RefreshTTL != 720*time.Hour || c.CookieSecure != "auto" || !c.Signup || !c.RateLimits || !c.Embedded() || c.EditWindow != 24*time.Hour ||
		c.DBLockTimeout != 10*time.Second {
		t.Errorf("defaults: %+v", c)
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	c, err := Load([]string{"-addr", "127.0.0.1:9", "-signup=false"}, env(map[string]string{"CHAT_ADDR": "127.0.0.1:1", "CHAT_ACCESS_TTL": "5m"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9" || c.AccessTTL != 5*time.Minute || c.Signup {
		t.Errorf("got %+v", c)
	}
}

func TestInvalidSettings(t *testing.T) {
	for k, v := range map[string]string{
		"CHAT_ACCESS_TTL": "soon", "CHAT_COOKIE_SECURE": "maybe", "CHAT_SIGNUP": "perhaps", "CHAT_LOG_LEVEL": "loud",
		"CHAT_ALLOWED_ORIGINS": "evil.example", "CHAT_TRUSTED_PROXIES": "not-an-ip", "CHAT_ADDR": "nowhere", "CHAT_RATE_LIMITS": "x",
		"CHAT_EDIT_WINDOW": "-1h", "CHAT_DEMO": "sometimes", "CHAT_DB_LOCK_TIMEOUT": "-1s",
		"CHAT_SHUTDOWN_DELAY": "-1s",
	} {
		if _, err := Load(nil, env(map[string]string{k: v}), io.Discard); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%q: error %v, want one naming the variable", k, v, err)
		}
	}
}

// TestInvalidURLsAndAddresses: URLs and listen addresses are refused by Load, before the
// server opens, migrates or listens anything, naming the variable; a password in a URL is not
// repeated.
func TestInvalidURLsAndAddresses(t *testing.T) {
	for _, tc := range []struct{ env, value, want string }{
		{"CHAT_DATABASE_URL", "mysql://chat:hunter2@db/chat", `CHAT_DATABASE_URL: scheme "mysql"`},
		{"CHAT_REDIS_URL", "http://:hunter2@127.0.0.1:6379", "CHAT_REDIS_URL: redis: invalid URL scheme: http"},
		{"CHAT_REDIS_URL", "redis://:hunter2@127.0.0.1:6379/abc", `CHAT_REDIS_URL: redis: invalid database number: "abc"`},
		// url.Parse's errors quote the whole URL, the password with it.
		{"CHAT_REDIS_URL", "redis://:hunter2@127.0.0.1:63 79/0", "CHAT_REDIS_URL: not a URL"},
		{"CHAT_REDIS_URL", "redis://:hunter2%zz@127.0.0.1:6379/0", "CHAT_REDIS_URL: not a URL"},
		{"CHAT_REDIS_URL", "redis://:hunter2/x@127.0.0.1:6379/0", "CHAT_REDIS_URL: "},
		{"CHAT_REDIS_URL", "redis://127.0.0.1:63x9/0", `CHAT_REDIS_URL: not a URL: invalid port ":63x9" after host`},
		{"CHAT_FILES_URL", "ftp://files.example/chat", `CHAT_FILES_URL: scheme "ftp"`},
		{"CHAT_ADDR", "127.0.0.1:99999", `CHAT_ADDR="127.0.0.1:99999": want host:port`},
		{"CHAT_ADDR", "127.0.0.1:http-alt-nope", `CHAT_ADDR="127.0.0.1:http-alt-nope": want host:port`},
		{"CHAT_PPROF_ADDR", "127.0.0.1:70000", `CHAT_PPROF_ADDR="127.0.0.1:70000": want host:port`},
		{"CHAT_PPROF_ADDR", "0.0.0.0:6060", `CHAT_PPROF_ADDR="0.0.0.0:6060": pprof is served on loopback addresses only`},
		{"CHAT_REDIS_PREFIX", "chat cluster", `CHAT_REDIS_PREFIX="chat cluster": no spaces`},
		{"CHAT_INSTANCE_ID", "chatd\n1", `CHAT_INSTANCE_ID="chatd\n1": no spaces`},
	} {
		settings := map[string]string{tc.env: tc.value}
		if tc.env == "CHAT_REDIS_PREFIX" || tc.env == "CHAT_INSTANCE_ID" {
			settings["CHAT_REDIS_URL"] = "redis://127.0.0.1:6379/0"
		}
		_, err := Load(nil, env(settings), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%q: error %v, want one with %q", tc.env, tc.value, err, tc.want)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s=%q: the error repeats the password: %v", tc.env, tc.value, err)
		}
	}
	for name, value := range map[string]string{"CHAT_DATABASE_URL": "postgresql://db/chat", "CHAT_REDIS_URL": "rediss://:pw@cache:6380/2",
		"CHAT_FILES_URL": "/var/lib/chat/files", "CHAT_PPROF_ADDR": "localhost:6060", "CHAT_ADDR": ":8080"} {
		if _, err := Load(nil, env(map[string]string{name: value}), io.Discard); err != nil {
			t.Errorf("%s=%q: %v", name, value, err)
		}
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	c, _ := Load(nil, env(map[string]string{"CHAT_DATA_DIR": dir}), io.Discard)
	s1, err := c.Secrets()
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := c.Secrets()
	if string(s1[0]) != string(s2[0]) || len(s1[0]) < 32 {
		t.Error("the generated secret is not kept")
	}
	if fi, err := os.Stat(filepath.Join(dir, "jwt-secret")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file: %v %v", fi, err)
	}
	scaled, _ := Load(nil, env(map[string]string{"CHAT_DATABASE_URL": "postgres://x/y"}), io.Discard)
	if _, err := scaled.Secrets(); err == nil {
		t.Error("PostgreSQL without CHAT_JWT_SECRET started")
	}
	short, _ := Load(nil, env(map[string]string{"CHAT_REDIS_URL": "redis://x", "CHAT_JWT_SECRET": "short"}), io.Discard)
	if _, err := short.Secrets(); err == nil {
		t.Error("a short secret was accepted")
	}
}

// TestGeneratedFiles: the JWT secret and the VAPID key the embedded default generates are
// written whole or not at all, and the same for processes starting at once. An empty file, what
// a first start cut short by a full disk or a crash left behind (it created the file, then
// failed to write it), is made anew: every later start refused with "CHAT_JWT_SECRET is 0
// bytes" (a variable the operator never set), and Web Push was off without a word.
func TestGeneratedFiles(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"jwt-secret", "vapid-private-key"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := Load(nil, env(map[string]string{"CHAT_DATA_DIR": dir}), io.Discard)
	secrets, err := c.Secrets()
	if err != nil {
		t.Fatalf("a start after one cut short: %v", err)
	}
	key, err := c.VAPIDPrivateKey()
	if err != nil || key == "" {
		t.Fatalf("the VAPID key after a start cut short: %q, %v", key, err)
	}
	again, _ := c.Secrets()
	if string(again[0]) != string(secrets[0]) || len(secrets[0]) != 64 {
		t.Errorf("the secret made anew is not kept: %q then %q", secrets[0], again[0])
	}
	if k, _ := c.VAPIDPrivateKey(); k != key {
		t.Errorf("the VAPID key made anew is not kept: %q then %q", key, k)
	}
	for _, name := range []string{"jwt-secret", "vapid-private-key"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", name, fi, err)
		}
	}

	// Processes starting at once on a new data dir all get the one secret.
	fresh, _ := Load(nil, env(map[string]string{"CHAT_DATA_DIR": t.TempDir()}), io.Discard)
	got := make([]string, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			s, err := fresh.Secrets()
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = string(s[0])
		})
	}
	wg.Wait()
	for _, s := range got {
		if s != got[0] {
			t.Fatalf("processes starting at once got different secrets: %q", got)
		}
	}
	left, _ := os.ReadDir(filepath.Dir(filepath.Join(fresh.DataDir, "x")))
	if len(left) != 1 {
		t.Errorf("the data dir holds %v, want only jwt-secret", left)
	}
}

func TestEditWindow(t *testing.T) {
	for v, want := range map[string]time.Duration{"0": 0, "0s": 0, "15m": 15 * time.Minute, "720h": 720 * time.Hour} {
		c, err := Load(nil, env(map[string]string{"CHAT_EDIT_WINDOW": v}), io.Discard)
		if err != nil || c.EditWindow != want {
			t.Errorf("CHAT_EDIT_WINDOW=%q: %v, %v; want %v", v, c.EditWindow, err, want)
		}
	}
}

func TestDBLockTimeout(t *testing.T) {
	for v, want := range map[string]time.Duration{"0": 0, "250ms": 250 * time.Millisecond, "1m": time.Minute} {
		c, err := Load([]string{"-db-lock-timeout", v}, env(nil), io.Discard)
		if err != nil || c.DBLockTimeout != want {
			t.Errorf("-db-lock-timeout %q: %v, %v; want %v", v, c.DBLockTimeout, err, want)
		}
	}
}

// TestDemo: the demo users sign in on the embedded default only, unless CHAT_DEMO says.
func TestDemo(t *testing.T) {
	pg := "postgres://postgres@127.0.0.1:5432/chat"
	for _, c := range []struct {
		env  map[string]string
		want bool
	}{
		{nil, true},
		{map[string]string{"CHAT_DATABASE_URL": pg}, false},
		{map[string]string{"CHAT_REDIS_URL": "redis://127.0.0.1:6379/0"}, false},
		{map[string]string{"CHAT_DATABASE_URL": pg, "CHAT_DEMO": "on"}, true},
		{map[string]string{"CHAT_DATABASE_URL": pg, "CHAT_DEMO": "True"}, true},
		{map[string]string{"CHAT_DEMO": "off"}, false},
		{map[string]string{"CHAT_DEMO": "AUTO"}, true},
	} {
		if c.env["CHAT_DATABASE_URL"] != "" || c.env["CHAT_REDIS_URL"] != "" {
			c.env["CHAT_JWT_SECRET"] = "a-test-secret-that-is-long-enough-for-hs256"
		}
		cfg, err := Load(nil, env(c.env), io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", c.env, err)
		}
		if cfg.DemoOn() != c.want {
			t.Errorf("%v: DemoOn %v, want %v", c.env, cfg.DemoOn(), c.want)
		}
	}
}
