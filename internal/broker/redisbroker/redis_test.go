package redisbroker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/broker/brokertest"
	"github.com/wschat/chat/internal/broker/redisbroker"
)

// sharedAddr is the machine's Redis, shared with everything else on it: tests only ever use
// keys and channels under their own prefix there, and never flush, restart or kill it.
const sharedAddr = "127.0.0.1:6379"

// runID keeps the keys and channels of this test run apart from any other on the server.
var runID = func() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// sharedRedis returns the URL of the shared Redis. When it is unreachable the test is skipped,
// except under CI=true, where it must be there and the test fails.
func sharedRedis(t testing.TB) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", sharedAddr, time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis at %s is required under CI=true: %v", sharedAddr, err)
		}
		t.Skipf("Redis at %s is unreachable: %v", sharedAddr, err)
	}
	_ = conn.Close()
	return "redis://" + sharedAddr + "/0"
}

// testPrefix is unique to the test and the run. The brokers of one test share it, and so see
// each other as one cluster.
func testPrefix(t testing.TB) string {
	return "test-" + runID + ":" + t.Name()
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newBroker returns a broker closed when the test ends.
func newBroker(t testing.TB, opts redisbroker.Options) *redisbroker.Broker {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	b, err := redisbroker.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// rawClient returns a plain client to look at the server behind the broker's back.
func rawClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// deleteKeys removes what the test left under its prefix on the shared server.
func deleteKeys(t testing.TB, url, prefix string) {
	t.Helper()
	c := rawClient(t, url)
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+":*", 100).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("delete test keys: %v", err)
		}
	})
}

func ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), brokertest.Wait)
	t.Cleanup(cancel)
	return ctx
}

func TestBroker(t *testing.T) {
	url := sharedRedis(t)
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		return newBroker(t, redisbroker.Options{URL: url, Prefix: testPrefix(t)})
	})
}

func TestPresence(t *testing.T) {
	url := sharedRedis(t)
	brokertest.RunPresence(t, func(t *testing.T, instance string) broker.Presence {
		deleteKeys(t, url, testPrefix(t))
		return newBroker(t, redisbroker.Options{URL: url, Prefix: testPrefix(t), InstanceID: instance}).Presence()
	})
}

// TestPresenceKeysExpire: every presence key has an expiry, so that what a cluster leaves
// when its last instance stops goes by itself: the users' marks, and each run's record.
func TestPresenceKeysExpire(t *testing.T) {
	url := sharedRedis(t)
	prefix := testPrefix(t)
	deleteKeys(t, url, prefix)
	a := newBroker(t, redisbroker.Options{URL: url, Prefix: prefix, InstanceID: "a"}).Presence()
	if err := a.SetOnline(ctx(t), time.Minute, 1, 2); err != nil {
		t.Fatal(err)
	}
	if err := a.Retire(ctx(t), 0); err != nil {
		t.Fatal(err)
	}
	// b takes a's run over: a note for a is left (presence:taken:<run>).
	b := newBroker(t, redisbroker.Options{URL: url, Prefix: prefix, InstanceID: "b"}).Presence()
	if err := b.SetOnline(ctx(t), time.Minute, 3); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // past a's orphan time (now, to the millisecond): Orphans takes only runs before it
	if o, err := b.Orphans(ctx(t)); err != nil || len(o) != 1 {
		t.Fatalf("Orphans = %+v, %v; want a's run", o, err)
	}
	c := rawClient(t, url)
	keys, err := c.Keys(ctx(t), prefix+":presence:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, prefix+":presence:taken:") }) || len(keys) < 4 {
		t.Fatalf("presence keys %v, want at least the runs, alive, users and taken keys", keys)
	}
	for _, k := range keys {
		if ttl := c.PTTL(ctx(t), k).Val(); ttl <= 0 {
			t.Errorf("key %s has no expiry (PTTL %v)", k, ttl)
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		opts    redisbroker.Options
		wantErr bool
	}{
		{"plain", redisbroker.Options{URL: "redis://127.0.0.1:6379/0"}, false},
		{"password", redisbroker.Options{URL: "redis://:secret@127.0.0.1:6379/2"}, false},
		{"user and password", redisbroker.Options{URL: "redis://chat:secret@127.0.0.1:6379"}, false},
		{"tls", redisbroker.Options{URL: "rediss://redis.example:6380/0"}, false},
		{"empty url", redisbroker.Options{}, true},
		{"other scheme", redisbroker.Options{URL: "http://127.0.0.1:6379"}, true},
		{"bad db", redisbroker.Options{URL: "redis://127.0.0.1:6379/x"}, true},
		{"space in prefix", redisbroker.Options{URL: "redis://127.0.0.1:6379", Prefix: "my chat"}, true},
		{"newline in instance", redisbroker.Options{URL: "redis://127.0.0.1:6379", InstanceID: "a\nb"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := redisbroker.New(tt.opts)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("New(%+v) error = %v, want error: %v", tt.opts, err, tt.wantErr)
			}
			if b != nil {
				if err := b.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
		})
	}
}

// TestWireNames checks what other tools see on the server: channel and key names and the
// presence entries, as the package doc promises.
func TestWireNames(t *testing.T) {
	url := sharedRedis(t)
	prefix := testPrefix(t)
	deleteKeys(t, url, prefix)
	raw := rawClient(t, url)
	b := newBroker(t, redisbroker.Options{URL: url, Prefix: prefix, InstanceID: "inst-1"})
	rec := brokertest.NewRecorder()
	if err := b.Start(ctx(t), rec); err != nil {
		t.Fatal(err)
	}

	t.Run("channel", func(t *testing.T) {
		watch := raw.Subscribe(ctx(t), prefix+":chat.1")
		defer watch.Close()
		if _, err := watch.Receive(ctx(t)); err != nil { // the confirmation
			t.Fatal(err)
		}
		if err := b.Publish(ctx(t), "chat.1", []byte("out")); err != nil {
			t.Fatal(err)
		}
		msg, err := watch.ReceiveMessage(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if msg.Payload != "out" {
			t.Errorf("wire payload = %q, want %q", msg.Payload, "out")
		}

		if err := b.Subscribe(ctx(t), "chat.2"); err != nil {
			t.Fatal(err)
		}
		if err := raw.Publish(ctx(t), prefix+":chat.2", "in").Err(); err != nil {
			t.Fatal(err)
		}
		rec.WaitFor(t, "chat.2", "in")
	})

	t.Run("default prefix", func(t *testing.T) {
		topic := "test-" + runID + "-default"
		d := newBroker(t, redisbroker.Options{URL: url})
		watch := raw.Subscribe(ctx(t), "chat:"+topic)
		defer watch.Close()
		if _, err := watch.Receive(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if err := d.Publish(ctx(t), topic, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := watch.ReceiveMessage(ctx(t)); err != nil {
			t.Fatalf("nothing on chat:%s: %v", topic, err)
		}
	})

	t.Run("presence", func(t *testing.T) {
		p := b.Presence()
		start := time.Now()
		if err := p.SetOnline(ctx(t), time.Minute, 42); err != nil {
			t.Fatal(err)
		}
		key := prefix + ":presence:42"
		score, err := raw.ZScore(ctx(t), key, "inst-1").Result()
		if err != nil {
			t.Fatalf("ZSCORE %s inst-1: %v", key, err)
		}
		until := time.UnixMilli(int64(score))
		if until.Before(start.Add(time.Minute-time.Second)) || until.After(time.Now().Add(time.Minute)) {
			t.Errorf("score %v, want about a minute from now", until)
		}
		if ttl := raw.PTTL(ctx(t), key).Val(); ttl <= 0 || ttl > time.Minute {
			t.Errorf("key ttl = %v, want (0, 1m]: the key must expire with its last mark", ttl)
		}
	})

	t.Run("presence ignores and trims expired marks", func(t *testing.T) {
		key := prefix + ":presence:7"
		past := float64(time.Now().Add(-time.Second).UnixMilli())
		if err := raw.ZAdd(ctx(t), key, redis.Z{Score: past, Member: "crashed"}).Err(); err != nil {
			t.Fatal(err)
		}
		p := b.Presence()
		if got, err := p.Online(ctx(t), []int64{7}); err != nil || got[7] {
			t.Errorf("Online with only an expired mark = %v, %v; want false", got, err)
		}
		if err := p.SetOnline(ctx(t), time.Minute, 7); err != nil {
			t.Fatal(err)
		}
		if err := raw.ZScore(ctx(t), key, "crashed").Err(); !errors.Is(err, redis.Nil) {
			t.Errorf("ZSCORE of the expired mark after SetOnline: %v, want redis.Nil (trimmed)", err)
		}
	})
}

// TestUnreachable checks that nothing blocks past its ctx when nothing listens.
func TestUnreachable(t *testing.T) {
	url := "redis://" + closedAddr(t) + "/0"
	b := newBroker(t, redisbroker.Options{URL: url, Prefix: testPrefix(t)})
	if err := b.Start(ctx(t), brokertest.NewRecorder()); err != nil {
		t.Fatalf("Start must not need Redis: %v", err)
	}
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	for name, call := range map[string]func() error{
		"Publish":   func() error { return b.Publish(short(), "chat.1", []byte("x")) },
		"Subscribe": func() error { return b.Subscribe(short(), "chat.1") },
		"Ping":      func() error { return b.Ping(short()) },
		"SetOnline": func() error { return b.Presence().SetOnline(short(), time.Minute, 1) },
		"Online":    func() error { _, err := b.Presence().Online(short(), []int64{1}); return err },
	} {
		began := time.Now()
		if err := call(); err == nil {
			t.Errorf("%s with Redis unreachable: no error", name)
		}
		if d := time.Since(began); d > 2*time.Second {
			t.Errorf("%s took %v with a 300ms ctx", name, d)
		}
	}
	began := time.Now()
	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("Close took %v while reconnecting", d)
	}
}

// closedAddr returns a local address where nothing listens.
func closedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// testServer is a redis-server of the test's own, which the test may kill and restart.
type testServer struct {
	t        testing.TB
	addr     string
	password string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// startServer starts a redis-server requiring password on a free port, and stops it when the
// test ends. It skips the test if there is no redis-server binary.
func startServer(t testing.TB, password string) *testServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skipf("no redis-server binary: %v", err)
	}
	s := &testServer{t: t, addr: closedAddr(t), password: password}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *testServer) url() string {
	return "redis://:" + s.password + "@" + s.addr + "/0"
}

// start runs the server and waits until it accepts connections.
func (s *testServer) start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.addr)
	cmd := exec.Command("redis-server",
		"--port", port, "--bind", "127.0.0.1", "--requirepass", s.password,
		"--save", "", "--appendonly", "no", "--loglevel", "warning")
	bindToTest(cmd)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	deadline := time.Now().Add(brokertest.Wait)
	for {
		conn, err := net.DialTimeout("tcp", s.addr, 100*time.Millisecond)
		if err == nil {
			_ = conn.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s not up after %v: %v", s.addr, brokertest.Wait, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop kills the server, as a crash would, and waits for it to be gone.
func (s *testServer) stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

func TestPasswordURL(t *testing.T) {
	srv := startServer(t, "secret")

	t.Run("right password", func(t *testing.T) {
		b := newBroker(t, redisbroker.Options{URL: srv.url(), Prefix: testPrefix(t)})
		rec := brokertest.NewRecorder()
		if err := b.Start(ctx(t), rec); err != nil {
			t.Fatal(err)
		}
		if err := b.Subscribe(ctx(t), "chat.1"); err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		if err := b.Publish(ctx(t), "chat.1", []byte("authed")); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		rec.WaitFor(t, "chat.1", "authed")
		if err := b.Ping(ctx(t)); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})

	for name, url := range map[string]string{
		"wrong password": "redis://:wrong@" + srv.addr + "/0",
		"no password":    "redis://" + srv.addr + "/0",
	} {
		t.Run(name, func(t *testing.T) {
			b := newBroker(t, redisbroker.Options{URL: url, Prefix: testPrefix(t)})
			if err := b.Start(ctx(t), brokertest.NewRecorder()); err != nil {
				t.Fatal(err)
			}
			if err := b.Ping(ctx(t)); err == nil {
				t.Error("Ping: no error")
			}
			if err := b.Publish(ctx(t), "chat.1", []byte("x")); err == nil {
				t.Error("Publish: no error")
			}
			short, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			if err := b.Subscribe(short, "chat.1"); err == nil {
				t.Error("Subscribe: no error")
			}
		})
	}
}

func BenchmarkPublishParallel(b *testing.B) {
	url := sharedRedis(b)
	br := newBroker(b, redisbroker.Options{URL: url, Prefix: testPrefix(b)})
	payload := []byte(strings.Repeat("x", 200))
	b.SetParallelism(32) // many sockets publishing at once, as in a busy server
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := br.Publish(context.Background(), "chat.bench", payload); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
