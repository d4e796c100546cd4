package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/wschat/chat/internal/client"
	"github.com/wschat/chat/internal/testdb"
)

// instance is a chatd started in-process by run, as the binary would be.
type instance struct {
	URL    string
	ID     string // CHAT_INSTANCE_ID, as /metrics labels it
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned, with its error in err
	err    error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs chatd with env (plus test defaults) and waits until /healthz answers.
func start(t *testing.T, env map[string]string) *instance {
	t.Helper()
	return startWith(t, env, io.Discard)
}

// startWith is start with chatd's standard output going to stdout.
func startWith(t *testing.T, env map[string]string, stdout io.Writer) *instance {
	t.Helper()
	addr := freeAddr(t)
	full := map[string]string{
		"CHAT_ADDR":          addr,
		"CHAT_DATA_DIR":      t.TempDir(),
		"CHAT_RATE_LIMITS":   "off",
		"CHAT_PASSWORD_COST": "test",
		"CHAT_DEMO":          "on", // the tests sign the demo users in, on PostgreSQL too
		"CHAT_LOG_LEVEL":     "warn",
		// Unique, so that the wait below knows the answer is this instance's (see there).
		"CHAT_INSTANCE_ID": addr + "-" + testdb.RandomName(""),
	}
	for k, v := range env {
		full[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	inst := &instance{URL: "http://" + addr, ID: full["CHAT_INSTANCE_ID"], cancel: cancel, done: make(chan struct{})}
	logw := io.Discard
	if testing.Verbose() {
		logw = os.Stderr
	}
	go func() {
		defer close(inst.done)
		inst.err = run(ctx, nil, func(k string) string { return full[k] }, stdout, logw)
	}()
	deadline := time.Now().Add(180 * time.Second) // migrations on a fresh database: the whole suite on two cores once took over 60 s
	for {
		// Up when its /metrics names it: addr was free when freeAddr let it go, but until run
		// listens on it another test's instance may take it, and its /healthz would answer
		// for this one (two tests then shared one server and saw each other's messages).
		resp, err := http.Get(inst.URL + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && bytes.Contains(body, []byte(`instance_id="`+inst.ID+`"`)) {
				break
			}
		}
		select {
		case <-inst.done:
			t.Fatalf("chatd exited: %v", inst.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("chatd at %s did not become healthy: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(inst.stop)
	return inst
}

// stop shuts the instance down gracefully and waits for run to return. A second stop (the
// test's cleanup after the test stopped it) returns at once.
func (i *instance) stop() {
	i.cancel()
	select {
	case <-i.done:
	case <-time.After(15 * time.Second):
	}
}

// explainTimeout logs the goroutines of the test process (the instances run in it) when err
// is a request that ran out of time, so that a request stuck in an instance shows where.
func explainTimeout(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, context.DeadlineExceeded) {
		return
	}
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	t.Logf("a request ran out of time; the goroutines of the instances and the test:\n%s", b.String())
}

// requestWait bounds one request of a test, and each wait of a test for something to happen.
// It only stops a hung test: with the browser suites beside it on two cores a login ran out of
// 30 s (that `CI=true bash .ci/run`, its build cache warm, took 319 s for this package, which
// takes 55 s when its tests start after the browsers' busiest minutes; the demo users' hashes
// were still at the product's cost then, see store.CheapenDemoPasswords). So each request gets
// its own deadline: a deadline shared by several ran out.
const requestWait = 2 * time.Minute

// reqCtx is a context for one request of a test (requestWait).
func reqCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), requestWait)
	t.Cleanup(cancel)
	return ctx
}

// newClient is client.New with requestWait in place of the client's own 30 s bound on a
// request (a login ran out of that one too).
func newClient(base string) *client.Client {
	c := client.New(base)
	c.HTTP.Timeout = requestWait
	return c
}

// signIn logs a demo user in on inst. The deadline only stops a hung test: on a loaded
// two-core machine (the whole suite with the browser tests beside it), logins of the package's
// parallel instances took over 10 s.
func signIn(t *testing.T, inst *instance, email string) *client.Client {
	t.Helper()
	c := newClient(inst.URL)
	if err := c.Login(reqCtx(t), email, "password"); err != nil {
		explainTimeout(t, err)
		t.Fatalf("login %s: %v", email, err)
	}
	return c
}

// device is one open WebSocket of a signed-in client, with its hello read.
type device struct {
	t     *testing.T
	c     *client.Client
	conn  *client.Conn
	hello helloFrame
}

type helloFrame struct {
	User struct {
		ID int64 `json:"id"`
	} `json:"user"`
	SessionID int64 `json:"session_id"`
	Chats     []struct {
		ID            int64 `json:"id"`
		LastSeq       int64 `json:"last_seq"`
		MyLastReadSeq int64 `json:"my_last_read_seq"`
		ReadAllSeq    int64 `json:"read_all_seq"`
	} `json:"chats"`
}

func connect(t *testing.T, c *client.Client) *device {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestWait)
	defer cancel()
	conn, err := c.Dial(ctx)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	d := &device{t: t, c: c, conn: conn}
	f, err := conn.Next(ctx)
	if err != nil || f.Type != "hello" {
		t.Fatalf("first frame: %+v, %v; want hello", f, err)
	}
	if err := json.Unmarshal(f.Data, &d.hello); err != nil {
		t.Fatal(err)
	}
	return d
}

// eventWait bounds the waits for a frame that must come. It only stops a hung test (a frame
// that must not come is checked with quiet): under the whole suite on a loaded two-core
// machine, requests of this package's instances took over 10 s.
const eventWait = 30 * time.Second

// await returns the next frame of type typ, failing the test if none comes (eventWait).
func (d *device) await(typ string) client.Frame {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventWait)
	defer cancel()
	f, err := d.conn.Await(ctx, typ)
	if err != nil {
		d.t.Fatalf("user %d: %v", d.hello.User.ID, err)
	}
	return f
}

// awaitWhere returns the first frame of type typ whose data satisfies ok.
func (d *device) awaitWhere(typ string, ok func(json.RawMessage) bool) client.Frame {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventWait)
	defer cancel()
	for {
		f, err := d.conn.Await(ctx, typ)
		if err != nil {
			d.t.Fatalf("user %d: %v", d.hello.User.ID, err)
		}
		if ok(f.Data) {
			return f
		}
	}
}

// quiet asserts that no frame of type typ arrives within d.
func (d *device) quiet(typ string, wait time.Duration) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for {
		f, err := d.conn.Next(ctx)
		if err != nil {
			return
		}
		if f.Type == typ {
			d.t.Fatalf("user %d got an unexpected %s: %s", d.hello.User.ID, typ, f.Data)
		}
	}
}

func (d *device) send(typ, ref string, data any) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventWait)
	defer cancel()
	if err := d.conn.Send(ctx, typ, ref, data); err != nil {
		d.t.Fatalf("send %s: %v", typ, err)
	}
}

type message struct {
	ID       int64  `json:"id"`
	ChatID   int64  `json:"chat_id"`
	Seq      int64  `json:"seq"`
	Kind     string `json:"kind"`
	SenderID *int64 `json:"sender_id"`
	Body     string `json:"body"`
	ClientID string `json:"client_id"`
}

func messageOf(t *testing.T, f client.Frame) message {
	t.Helper()
	var d struct {
		Message message `json:"message"`
	}
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatalf("decode %s: %v", f.Data, err)
	}
	return d.Message
}

func decode[T any](t *testing.T, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}

func uniq(prefix string) string { return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()) }

func strconvI(v int64) string { return fmt.Sprint(v) }
