package push_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/push"
	"github.com/wschat/chat/internal/testlog"
	"github.com/wschat/chat/internal/testserver"
)

// downStore is a store whose database is unreachable: every call of a round fails.
type downStore struct{ push.Store }

var errDown = chat.Unavailable(errors.New("dial tcp 127.0.0.1:5432: connect: connection refused"), "the service is unavailable; try again")

func (downStore) ScanPushJobs(context.Context, time.Time, time.Duration) (bool, error) {
	return false, errDown
}
func (downStore) ScanPushWithdrawals(context.Context, time.Time) (int, error) { return 0, errDown }
func (downStore) ClaimPushJobs(context.Context, string, time.Time, time.Duration, int) ([]chat.PushJob, error) {
	return nil, errDown
}

// TestPushOutageLogIsBounded: while the database is unreachable, the worker's rounds warn a
// line a second at most, all three of a round's store calls (scan messages, scan reads, claim
// jobs) together: each round wrote three lines (3 a second at the default interval, through a
// whole outage).
func TestPushOutageLogIsBounded(t *testing.T) {
	t.Parallel()
	var logs testlog.Buffer
	w, err := push.New(downStore{}, nil, push.Options{PrivateKey: testserver.PushKey,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 50
	began := time.Now()
	for range rounds {
		if w.Step(context.Background()) {
			t.Fatal("a round whose store is down says there is more to do at once")
		}
	}
	elapsed := time.Since(began)
	lines := strings.Count(logs.String(), `msg="push: `)
	// One line, and one more for each second that passed since.
	if most := 1 + int(elapsed/time.Second); lines < 1 || lines > most {
		t.Errorf("%d rounds with the store down in %v logged %d lines, want 1 to %d:\n%s", rounds, elapsed, lines, most, logs.String())
	}
}
