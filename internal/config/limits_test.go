package config_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wschat/chat/internal/auth"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/config"
	"github.com/wschat/chat/internal/hub"
	"github.com/wschat/chat/internal/limit"
)

func getenv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestLimitDefaults: the defaults of the CHAT_LIMIT_* settings are the limits the service and
// the hub apply when given nothing, and the ones docs/SECURITY.md lists.
func TestLimitDefaults(t *testing.T) {
	c, err := config.Load(nil, getenv(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	l, d := c.Limits, chat.DefaultLimits
	if l.LoginPerAddr != d.LoginPerAddr || l.LoginFailsPerEmail != d.LoginFailsPerEmail || l.SignupsPerAddr != d.SignupsPerAddr ||
		l.SendsPerUser != d.SendsPerUser || l.ChatsPerUser != d.ChatsPerUser || l.ReadsPerUser != d.ReadsPerUser || l.ReadMarksPerUser != d.ReadMarksPerUser ||
		l.GroupMembers != d.GroupMembers || d.GroupMembers != 10_000 || l.UserChats != d.UserChats || d.UserChats != 5000 {
		t.Errorf("config defaults %+v differ from the service's %+v", l, d)
	}
	if d.ReadsPerUser.Burst != 300 || d.ReadsPerUser.PerSecond() != 10 {
		t.Errorf("reads per user %+v, want 300 at once then 10/s", d.ReadsPerUser)
	}
	if d.ReadMarksPerUser.Burst != 300 || d.ReadMarksPerUser.PerSecond() != 30 {
		t.Errorf("read marks per user %+v, want 300 at once then 30/s", d.ReadMarksPerUser)
	}
	// A group's first members cost a chat change each: the burst pays for the most of them.
	if d.ChatsPerUser.Burst < chat.MaxFirstMembers || d.ChatsPerUser.PerSecond() != 0.5 {
		t.Errorf("chat changes per user %+v, want a burst of at least %d, then one per 2 s", d.ChatsPerUser, chat.MaxFirstMembers)
	}
	if l.WSFrames.Burst != 200 || l.WSFrames.PerSecond() != 50 || l.WSConnsPerUser != 64 ||
		l.WSQueueBytes != hub.DefaultQueueBytes || l.WSQueueTotal != hub.DefaultQueueTotal || hub.DefaultQueueBytes != 1<<20 || hub.DefaultQueueTotal != 64<<20 {
		t.Errorf("WebSocket limits %+v, want 200 frames at once then 50/s, 64 connections, 1 MiB queued per socket, 64 MiB per instance", l)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"65536": 65536, "64KiB": 64 << 10, "1MiB": 1 << 20, "1 MiB": 1 << 20, "2GB": 2 << 30, "512B": 512} {
		if got, err := config.ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "1.5MiB", "MiB", "1TiB", "99999999999GiB"} {
		if got, err := config.ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestLimitSettings(t *testing.T) {
	c, err := config.Load([]string{"-limit-ws-conns", "5"}, getenv(map[string]string{
		"CHAT_LIMIT_LOGIN_ADDR": "3/1m", "CHAT_LIMIT_SEND_USER": "100/10s", "CHAT_LIMIT_READS_USER": "20/1m", "CHAT_LIMIT_READ_MARKS_USER": "7/1s",
		"CHAT_LIMIT_GROUP_MEMBERS": "50", "CHAT_LIMIT_USER_CHATS": "7", "CHAT_LIMIT_WS_CONNS": "9"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.LoginPerAddr != (limit.Rate{Burst: 3, Per: time.Minute}) || c.Limits.SendsPerUser.PerSecond() != 10 ||
		c.Limits.ReadsPerUser != (limit.Rate{Burst: 20, Per: time.Minute}) || c.Limits.ReadMarksPerUser != (limit.Rate{Burst: 7, Per: time.Second}) || c.Limits.GroupMembers != 50 || c.Limits.UserChats != 7 || c.Limits.WSConnsPerUser != 5 {
		t.Errorf("got %+v", c.Limits)
	}
	for k, v := range map[string]string{
		"CHAT_LIMIT_LOGIN_ADDR": "30", "CHAT_LIMIT_LOGIN_EMAIL": "0/1m", "CHAT_LIMIT_SIGNUP_ADDR": "10/-1h", "CHAT_LIMIT_SEND_USER": "x/1s", "CHAT_LIMIT_CHATS_USER": "1/0s",
		"CHAT_LIMIT_READS_USER": "300", "CHAT_LIMIT_WS_FRAMES": "200/forever", "CHAT_LIMIT_WS_CONNS": "0", "CHAT_LIMIT_WS_QUEUE_BYTES": "-1", "CHAT_LIMIT_WS_QUEUE_TOTAL": "lots", "CHAT_LIMIT_WS_QUEUE": "1024", "CHAT_LIMIT_GROUP_MEMBERS": "many",
		"CHAT_LIMIT_USER_CHATS": "0", "CHAT_LIMIT_READ_MARKS_USER": "fast", "CHAT_WS_WRITE_DELAY": "2s",
	} {
		if _, err := config.Load(nil, getenv(map[string]string{k: v}), io.Discard); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%q: %v, want an error naming it", k, v, err)
		}
	}
}

const goodSecret = "3f9a8b7c6d5e4f30112233445566778899aabbccddeeff00"

// TestScaledModeRefusesWeakSecrets: with PostgreSQL or Redis, the secret must be given, long,
// and not an example value; the same goes for former secrets kept for rotation.
func TestScaledModeRefusesWeakSecrets(t *testing.T) {
	for _, tc := range []struct{ secret, old string }{
		{"", ""},
		{"short", ""},
		{"change-me-to-a-long-random-string-of-64-characters", ""},
		{"CHANGEME0123456789abcdef0123456789abcdef", ""},
		{"your-secret-key-0123456789abcdef0123456789", ""},
		{"this-is-an-example-secret-0123456789abcdef", ""},
		{strings.Repeat("a", 64), ""},
		{strings.Repeat("ab12", 16), ""},
		{goodSecret, "short"},
		{goodSecret, "replace-me-with-the-previous-secret-0123456789"},
	} {
		for _, backend := range []map[string]string{{"CHAT_DATABASE_URL": "postgres://db/chat"}, {"CHAT_REDIS_URL": "redis://cache:6379/0"}} {
			env := map[string]string{"CHAT_JWT_SECRET": tc.secret, "CHAT_JWT_OLD_SECRETS": tc.old}
			for k, v := range backend {
				env[k] = v
			}
			c, err := config.Load(nil, getenv(env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Secrets(); err == nil {
				t.Errorf("secret %q, old %q with %v: accepted", tc.secret, tc.old, backend)
			}
		}
	}
	c, _ := config.Load(nil, getenv(map[string]string{"CHAT_REDIS_URL": "redis://cache:6379/0", "CHAT_JWT_SECRET": goodSecret}), io.Discard)
	if _, err := c.Secrets(); err != nil {
		t.Errorf("a random secret was refused: %v", err)
	}
}

// TestKeyRotationSettings: a token signed with the previous CHAT_JWT_SECRET keeps working while
// that secret is listed in CHAT_JWT_OLD_SECRETS, and stops when it is removed; new tokens are
// signed with the new secret (their kid names it).
func TestKeyRotationSettings(t *testing.T) {
	const old, current = "0ld5ecret-9f8e7d6c5b4a39281706f5e4d3c2b1a0", goodSecret
	tokens := func(env map[string]string) *auth.Tokens {
		t.Helper()
		env["CHAT_REDIS_URL"] = "redis://cache:6379/0"
		c, err := config.Load(nil, getenv(env), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.Secrets()
		if err != nil {
			t.Fatal(err)
		}
		tk, err := auth.NewTokens(s, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	now := time.Now()
	before, err := tokens(map[string]string{"CHAT_JWT_SECRET": old}).Issue(1, 2, now)
	if err != nil {
		t.Fatal(err)
	}
	rotating := tokens(map[string]string{"CHAT_JWT_SECRET": current, "CHAT_JWT_OLD_SECRETS": "another-9f8e7d6c5b4a39281706f5e4d3c2b1a0, " + old})
	if _, err := rotating.Verify(before, now); err != nil {
		t.Errorf("a token of the old secret was refused while it is listed: %v", err)
	}
	after, _ := rotating.Issue(1, 2, now)
	if kid := kidOf(t, after); kid != auth.KeyID([]byte(current)) {
		t.Errorf("new tokens carry kid %q, want the new secret's %q", kid, auth.KeyID([]byte(current)))
	}
	done := tokens(map[string]string{"CHAT_JWT_SECRET": current})
	if _, err := done.Verify(before, now); err == nil {
		t.Error("a token of the old secret verified after the secret was removed")
	}
	if _, err := done.Verify(after, now); err != nil {
		t.Errorf("a token of the current secret: %v", err)
	}
}

func kidOf(t *testing.T, token string) string {
	t.Helper()
	var h struct {
		Kid string `json:"kid"`
	}
	head, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// TestNoSecretsInRepository looks through every file git would commit (tracked or not
// ignored) for private keys and for JWT secrets that a server would accept; example files may
// hold placeholders only, which the server refuses (TestScaledModeRefusesWeakSecrets).
func TestNoSecretsInRepository(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Skipf("git ls-files: %v", err)
	}
	assign := regexp.MustCompile(`CHAT_JWT_(?:OLD_)?SECRETS?\s*[=:]\s*["']?([^"'\s#]*)`)
	for _, name := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if name == "" || strings.HasSuffix(name, "_test.go") || strings.Contains(name, "/testdata/") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil || bytes.IndexByte(b, 0) >= 0 {
			continue // deleted meanwhile, or binary
		}
		if bytes.Contains(b, []byte("PRIVATE KEY-----")) {
			t.Errorf("%s holds a private key", name)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for line := 1; sc.Scan(); line++ {
			for _, m := range assign.FindAllStringSubmatch(sc.Text(), -1) {
				for _, v := range strings.Split(m[1], ",") {
					if v == "" || strings.HasPrefix(v, "$") || strings.HasPrefix(v, "<") {
						continue // empty, or read from the environment
					}
					c, _ := config.Load(nil, getenv(map[string]string{"CHAT_REDIS_URL": "redis://x", "CHAT_JWT_SECRET": v}), io.Discard)
					if _, err := c.Secrets(); err == nil {
						t.Errorf("%s:%d: a usable JWT secret is committed: %q", name, line, v)
					}
				}
			}
		}
	}
}

// TestUploadSlotSettings: the upload slots (chat.FileOptions) are settings like the other
// limits: their defaults are the file service's own, the environment and flags set them, a bad
// value is refused naming the variable and what it wants, and chatd -h lists them.
func TestUploadSlotSettings(t *testing.T) {
	c, err := config.Load(nil, getenv(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Files; f.MaxUploads != chat.DefaultMaxUploads || f.MaxUserUploads != chat.DefaultMaxUserUploads || f.MaxAddressUploads != chat.DefaultMaxAddressUploads || chat.DefaultMaxAddressUploads != 16 ||
		f.UploadQueueWait != chat.DefaultUploadQueueWait || f.SlowUploadPenalty != chat.DefaultSlowUploadPenalty ||
		chat.DefaultMaxUploads != 32 || chat.DefaultMaxUserUploads != 4 || chat.DefaultUploadQueueWait != 30*time.Second || chat.DefaultSlowUploadPenalty != time.Minute {
		t.Errorf("defaults %+v, want the file service's: 32 slots, 4 a user, 16 an address, 30s of waiting, a penalty of 1m", f)
	}
	c, err = config.Load([]string{"-limit-uploads-user", "2"}, getenv(map[string]string{"CHAT_LIMIT_UPLOADS": "100",
		"CHAT_LIMIT_UPLOADS_USER": "9", "CHAT_LIMIT_UPLOADS_ADDRESS": "7", "CHAT_LIMIT_UPLOAD_WAIT": "5s", "CHAT_LIMIT_SLOW_UPLOAD_PENALTY": "0"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Files; f.MaxUploads != 100 || f.MaxUserUploads != 2 || f.MaxAddressUploads != 7 || f.UploadQueueWait != 5*time.Second || f.SlowUploadPenalty != 0 {
		t.Errorf("got %+v, want 100 slots, 2 a user (the flag), 7 an address, 5s of waiting, no penalty", f)
	}
	for _, tc := range []struct{ env, val, want string }{
		{"CHAT_LIMIT_UPLOADS", "0", "want a positive number of uploads"},
		{"CHAT_LIMIT_UPLOADS", "many", "want a positive number of uploads"},
		{"CHAT_LIMIT_UPLOADS_USER", "-1", "want a positive number of uploads"},
		{"CHAT_LIMIT_UPLOADS_ADDRESS", "0", "want a positive number of uploads"},
		{"CHAT_LIMIT_UPLOAD_WAIT", "0s", "want a positive duration like 30s"},
		{"CHAT_LIMIT_UPLOAD_WAIT", "30", "want a positive duration like 30s"},
		{"CHAT_LIMIT_SLOW_UPLOAD_PENALTY", "-1m", "want a duration like 1m, or 0 for none"},
		{"CHAT_LIMIT_SLOW_UPLOAD_PENALTY", "a while", "want a duration like 1m, or 0 for none"},
	} {
		_, err := config.Load(nil, getenv(map[string]string{tc.env: tc.val}), io.Discard)
		if want := fmt.Sprintf("%s=%q: %s", tc.env, tc.val, tc.want); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s=%q: %v, want an error saying %q", tc.env, tc.val, err, want)
		}
	}
	var usage strings.Builder
	config.Usage(&usage)
	for _, flag := range []string{"CHAT_LIMIT_UPLOADS ", "CHAT_LIMIT_UPLOADS_USER", "CHAT_LIMIT_UPLOADS_ADDRESS", "CHAT_LIMIT_UPLOAD_WAIT", "CHAT_LIMIT_SLOW_UPLOAD_PENALTY"} {
		if !strings.Contains(usage.String(), flag) {
			t.Errorf("chatd -h does not list %s", flag)
		}
	}
}
