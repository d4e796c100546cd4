package hub_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wschat/chat/internal/blob"
	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/testlog"
)

// setMaxPages sets SQLite's max_page_count on every connection of db's pool: 1 holds the
// database at the pages it has (a write that needs one more fails with SQLITE_FULL, what a
// full disk answers), a large value gives it room again. It holds all the pool's connections
// at once, so each one gets it and no other is opened meanwhile.
func setMaxPages(t *testing.T, db *sql.DB, pages int64) {
	t.Helper()
	ctx := context.Background()
	var conns []*sql.Conn
	for range db.Stats().MaxOpenConnections {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages)); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}

// fullBlobs is a file store whose disk is full while full is set: Put fails as a directory's
// write does then.
type fullBlobs struct {
	chat.Blobs
	full atomic.Bool
}

func (b *fullBlobs) Put(ctx context.Context, key string, r io.Reader, ct string) (int64, error) {
	if b.full.Load() {
		io.Copy(io.Discard, r)
		// What blob.Dir answers then (its dirErr, internal/blob TestDirErr).
		return 0, fmt.Errorf("%w: %v", chat.ErrStorageFull, &os.PathError{Op: "write", Path: "/data/files/" + key, Err: syscall.ENOSPC})
	}
	return b.Blobs.Put(ctx, key, r, ct)
}

// TestStorageFull: with the database's disk full (SQLite answers SQLITE_FULL) a send over
// HTTP or WebSocket, a sign-up and a group are refused with 503 unavailable, a Retry-After and
// a detail that says so (they were 500 internal); reads still work; nothing refused is stored;
// with the file store's disk full an upload is refused alike. Once there is room again the same
// requests succeed without a restart, and a send retried with its client_id is stored once.
func TestStorageFull(t *testing.T) {
	t.Parallel()
	d, err := blob.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blobs := &fullBlobs{Blobs: d}
	s := startServer(t, serverConfig{Blobs: blobs})
	a, b := s.NewUser(t, "A"), s.NewUser(t, "B")
	g := s.Group(t, a, "full", false, b)
	cb := s.Dial(t, b)
	db := s.Store.DB()
	setMaxPages(t, db, 1)
	t.Cleanup(func() { setMaxPages(t, db, 1<<30) })

	isFull := func(what string, r reply) {
		t.Helper()
		if r.Status != http.StatusServiceUnavailable || r.Code() != chat.CodeUnavailable ||
			r.Header.Get("Retry-After") != "10" || !strings.Contains(string(r.Body), "out of storage space") {
			t.Fatalf("%s with the disk full: %d %v %s, want 503 unavailable, Retry-After 10, out of storage space",
				what, r.Status, r.Header.Get("Retry-After"), r.Body)
		}
	}
	// Each kind of write goes on until one needs a page more than the database has (other
	// tables may have room left in their pages): those answered 2xx are stored, the first
	// refused one is 503.
	untilFull := func(what string, do func(i int) reply) (refused int) {
		t.Helper()
		for i := range 500 {
			if r := do(i); r.Status/100 != 2 {
				isFull(what, r)
				return i
			}
		}
		t.Fatalf("500 of %s fitted in a database that may not grow", what)
		return 0
	}
	body := strings.Repeat("x", 3000)
	acked := map[string]bool{}
	sends := untilFull("a send", func(i int) reply { return sendHTTP(t, s, a, g, body, fmt.Sprintf("fill-%d", i)) })
	for i := range sends {
		acked[fmt.Sprintf("fill-%d", i)] = true
	}
	refused := fmt.Sprintf("fill-%d", sends)
	isFull("a send again", sendHTTP(t, s, a, g, body, "http-2"))
	untilFull("a sign-up", func(i int) reply {
		return s.Call(t, "POST", "/api/v1/auth/register", "",
			map[string]any{"email": fmt.Sprintf("new%d@example.com", i), "name": strings.Repeat("N", 64), "password": "password123"}, nil)
	})
	untilFull("a group", func(i int) reply {
		return s.Call(t, "POST", "/api/v1/chats", a.Token, map[string]any{"kind": "group", "title": strings.Repeat("T", 100)}, nil)
	})
	if r := s.Call(t, "GET", fmt.Sprintf("/api/v1/chats/%d/messages?limit=200", g), a.Token, nil, nil); r.Status != http.StatusOK {
		t.Fatalf("history with the disk full: %d %s", r.Status, r.Body)
	}
	ca := s.Dial(t, a)
	code, _ := errorOf(ca.RoundTrip("message.send", "ws-1", map[string]any{"chat_id": g, "client_id": "ws-1", "body": body}), "ws-1")
	if code != chat.CodeUnavailable {
		t.Fatalf("a WebSocket send with the disk full: error %q, want unavailable", code)
	}

	// The database has room, the file store not.
	setMaxPages(t, db, 1<<30)
	blobs.full.Store(true)
	isFull("an upload", s.Upload(t, a, g, "notes.txt", []byte("some notes\n")))

	// Room everywhere: the same requests work, and the refused sends, retried, are stored once.
	blobs.full.Store(false)
	f := upload(t, s, a, g, "notes.txt", []byte("some notes\n"))
	for _, id := range []string{refused, refused, "http-2"} {
		if r := sendHTTP(t, s, a, g, body, id); r.Status != http.StatusCreated && r.Status != http.StatusOK {
			t.Fatalf("send %s with room again: %d %s", id, r.Status, r.Body)
		}
		acked[id] = true
	}
	if r := sendHTTP(t, s, a, g, "", "with-file", f.ID); r.Status != http.StatusCreated {
		t.Fatalf("send with a file: %d %s", r.Status, r.Body)
	}
	acked["with-file"] = true
	ca.Send("message.send", "ws-1", map[string]any{"chat_id": g, "client_id": "ws-1", "body": body})
	ca.NextOf("message.ack", 10*time.Second)
	acked["ws-1"] = true
	if r := s.Call(t, "POST", "/api/v1/auth/register", "",
		map[string]any{"email": "new@example.com", "name": "New", "password": "password123"}, nil); r.Status != http.StatusCreated {
		t.Fatalf("sign-up with room again: %d %s", r.Status, r.Body)
	}
	msgs, _, err := s.Svc.History(context.Background(), a.P(), g, chat.HistoryPage{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, m := range msgs {
		if m.ClientID != nil {
			seen[*m.ClientID]++
		}
	}
	for id := range acked {
		if seen[id] != 1 {
			t.Errorf("message %s acknowledged, stored %d times", id, seen[id])
		}
	}
	if len(seen) != len(acked) {
		t.Errorf("%d messages stored, %d acknowledged", len(seen), len(acked))
	}
	// B's socket heard every stored message once, in order.
	var last int64
	for range len(acked) {
		m := messageOf(t, cb.NextOf("message.new", 10*time.Second))
		if m.Seq <= last {
			t.Fatalf("B heard seq %d after %d", m.Seq, last)
		}
		last = m.Seq
	}
}

// downBroker is a broker that takes no publish, as Redis when it is down.
type downBroker struct{ broker.Broker }

func (downBroker) Publish(context.Context, string, []byte) error {
	return errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
}

// TestBrokerDownLogIsBounded: with the broker down every event fails to publish; the sends
// are stored and answered (clients heal from the store), and the failures are logged at most a
// line a second, not one each (Redis down under load logged 5,657 lines in 8 s).
func TestBrokerDownLogIsBounded(t *testing.T) {
	t.Parallel()
	var log testlog.Buffer
	// The bound counts from before anything can publish: the group's creation fails a publish
	// too (its chat.added), and with start taken after it that line fell outside the window,
	// so sends taking 1 to 2 s under load logged 3 lines against a bound of 2.
	start := time.Now()
	s := startServer(t, serverConfig{Broker: downBroker{broker.NewMemory()}, Log: &log})
	a := s.NewUser(t, "A")
	g := s.Group(t, a, "down", false)
	for i := range 50 {
		if r := sendHTTP(t, s, a, g, "while the broker is down", fmt.Sprintf("down-%d", i)); r.Status != http.StatusCreated {
			t.Fatalf("send %d with the broker down: %d %s", i, r.Status, r.Body)
		}
	}
	lines := strings.Count(log.String(), `msg="publish failed"`)
	if most := 1 + int(time.Since(start)/time.Second); lines < 1 || lines > most {
		t.Fatalf("50 failed publishes logged %d lines, want 1 to %d:\n%s", lines, most, log.String())
	}
}
