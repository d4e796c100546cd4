package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/wschat/chat/internal/auth"
	"github.com/wschat/chat/internal/config"
)

// lockedBuffer is a bytes.Buffer that the server goroutine may write while the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestStartHintForTheEmbeddedDefault(t *testing.T) {
	t.Parallel()
	var out lockedBuffer
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

// TestDemoHashIsTheMigrations: the hash the start hint compares is the demo password's.
func TestDemoHashIsTheMigrations(t *testing.T) {
	if ok, err := auth.CheckPassword(demoHash, demoPassword); err != nil || !ok {
		t.Fatalf("demoHash does not check against %q: %v %v", demoPassword, ok, err)
	}
	b, err := os.ReadFile("../../internal/store/migrations/00002_demo.sql")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "'first@example.com',  'First', 'first', '"+demoHash+"'") {
		t.Fatal("migration 00002 does not store demoHash for first@example.com")
	}
}
