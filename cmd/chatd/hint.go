package main

import (
	"context"
	"fmt"
	"net"

	"github.com/wschat/chat/internal/config"
	"github.com/wschat/chat/internal/store"
)

// The demo account of the migrations (PRODUCT.md): first@, second@ and third@example.com. Any
// change of the password stores a new hash (with a new salt), so comparing the stored hash with
// the demo password's (store.DemoPasswordHash, or its test-cost twin in test runs) tells
// whether the demo password still works without hashing it again at start-up (argon2id would
// cost 19 MiB of memory).
const (
	demoEmail    = "first@example.com"
	demoPassword = "password"
)

// startHint is what chatd prints on start for someone who just ran it: where to open the app
// and how to sign in. Only for the embedded default (SQLite and the in-process broker: a
// single machine, most likely a first try), and only while the demo user still has the demo
// password, so that the hint is never wrong and never printed for a cluster or a real
// deployment that changed it. addr is the address the server listens on.
func startHint(ctx context.Context, cfg config.Config, st *store.Store, addr net.Addr) string {
	if !cfg.Embedded() {
		return ""
	}
	u, err := st.UserByEmail(ctx, demoEmail)
	if err != nil {
		return ""
	}
	if u.PasswordHash != store.DemoPasswordHash && u.PasswordHash != store.DemoPasswordHashTest {
		return ""
	}
	return fmt.Sprintf("chatd is ready: open %s\n  demo sign-in: %s (also second@, third@example.com), password %q\n",
		openURL(addr), demoEmail, demoPassword)
}

// openURL is a URL a browser on this machine can open for addr (a wildcard host becomes localhost).
func openURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
