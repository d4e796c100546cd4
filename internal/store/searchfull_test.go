package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
	"github.com/wschat/chat/internal/testlog"
)

// A round of the search indexer whose commit fails indexed nothing, and says so: it reported
// the batch it had written as moved, and the indexer, taking that for a backlog, ran the next
// round at once, and the next. On a full disk, where SQLite writes the full-text index's new
// segment at the commit and fails there, it spun with a warning each time (7,945 in 36 s on an
// embedded server whose tmpfs was full).
func TestSearchIndexerFailedCommitMovedNothingSQLite(t *testing.T) {
	ctx := context.Background()
	s := open(t, migratedURLs["sqlite"](t))
	alice, bob := mkUser(t, s, "Alice"), mkUser(t, s, "Bob")
	g := mkGroup(t, s, alice, "Full", false, at(1), bob)
	indexAll(t, s)
	for i := range 300 {
		send(t, s, g, bob, fmt.Sprintf("needle %d of a chat whose index cannot grow", i), at(2))
	}
	var fail atomic.Bool
	store.FailSQLiteCommits(t, s, &fail)
	fail.Store(true)

	type round struct {
		moved    int
		caughtUp bool
	}
	rounds := make(chan round, 1)
	store.ObserveSearchRounds(s, func(moved int, caughtUp bool) {
		select {
		case rounds <- round{moved, caughtUp}:
		default: // only the first round is looked at
		}
	})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.RunSearchIndexer(runCtx, time.Hour, slog.New(slog.DiscardHandler))
	}()
	defer func() { cancel(); <-done }()
	var r round
	select {
	case r = <-rounds:
	case <-time.After(time.Minute): // only a hang gets here
		t.Fatal("no round of the indexer")
	}
	if r != (round{0, false}) {
		t.Errorf("the round that could not commit reported %+v, want nothing moved and not caught up", r)
	}
}

// The push scan's round whose commit fails took nothing either: it reported a whole batch
// taken ("more at once"), and the push worker ran it again without a pause, a warning each
// time (16,310 in 44 s on an embedded server whose tmpfs was full).
func TestPushScanFailedCommitTookNothingSQLite(t *testing.T) {
	ctx := context.Background()
	s := open(t, migratedURLs["sqlite"](t))
	alice, bob := mkUser(t, s, "Alice"), mkUser(t, s, "Bob")
	g := mkGroup(t, s, alice, "Full", false, at(1), bob)
	for {
		if more, err := s.ScanPushJobs(ctx, at(2), 0); err != nil {
			t.Fatal(err)
		} else if !more {
			break
		}
	}
	var nms []chat.NewMessage
	for i := range 600 { // more than a scan's batch (500)
		nms = append(nms, chat.NewMessage{ChatID: g, SenderID: bob.ID, ClientID: fmt.Sprint(i), Body: "hello", Now: at(2)})
	}
	if _, errs := store.SendBatch(s, nms); errs[0] != nil {
		t.Fatal(errs[0])
	}
	var fail atomic.Bool
	store.FailSQLiteCommits(t, s, &fail)
	fail.Store(true)
	more, err := s.ScanPushJobs(ctx, at(3), 0)
	if err == nil || more {
		t.Errorf("a scan whose commit failed: more %v, err %v; want false and the error", more, err)
	}
	fail.Store(false)
	if more, err := s.ScanPushJobs(ctx, at(3), 0); err != nil || !more {
		t.Errorf("the same scan once commits work: more %v, err %v; want a whole batch taken", more, err)
	}
}

// While the database fails every round (unreachable, here a commit that always fails), the
// search indexer warns a line a second at most (chat.LogLimit: the next line counts those
// left out); it wrote one for each round (2 a second at the default interval, through a whole
// PostgreSQL outage).
func TestSearchIndexerFailureLogIsBoundedSQLite(t *testing.T) {
	s := open(t, migratedURLs["sqlite"](t))
	alice := mkUser(t, s, "Alice")
	g := mkGroup(t, s, alice, "Down", false, at(1))
	send(t, s, g, alice, "a message the index cannot take", at(2))
	var fail atomic.Bool
	store.FailSQLiteCommits(t, s, &fail)
	fail.Store(true)

	const rounds = 50
	var n atomic.Int32
	enough := make(chan struct{})
	store.ObserveSearchRounds(s, func(int, bool) {
		if n.Add(1) == rounds {
			close(enough)
		}
	})
	var logs testlog.Buffer
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	began := time.Now()
	go func() {
		defer close(done)
		s.RunSearchIndexer(runCtx, time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
	}()
	select {
	case <-enough:
	case <-time.After(time.Minute): // only a hang gets here
		t.Error("the indexer did not run 50 rounds")
	}
	cancel()
	<-done
	elapsed := time.Since(began)
	lines := strings.Count(logs.String(), `msg="search indexer"`)
	// One line, and one more for each second that passed since.
	if most := 1 + int(elapsed/time.Second); lines < 1 || lines > most {
		t.Errorf("%d failed rounds in %v logged %d lines, want 1 to %d:\n%s", n.Load(), elapsed, lines, most, logs.String())
	}
}
