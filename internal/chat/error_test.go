package chat_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// TestLogUnavailableIsBounded: a full disk or a database that is down refuses every request;
// their causes are logged at most a line a second, not one line each (a full disk under load
// wrote 5,000 warnings in 4 s, to the log that may be on that disk).
func TestLogUnavailableIsBounded(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	start := time.Now()
	var limit chat.LogLimit
	for range 1000 {
		limit.Unavailable(context.Background(), log, "unavailable", chat.ErrStorageFull)
	}
	lines := strings.Count(buf.String(), "\n")
	if most := 1 + int(time.Since(start)/time.Second); lines < 1 || lines > most {
		t.Fatalf("1000 refusals logged %d lines, want 1 to %d:\n%s", lines, most, buf.String())
	}
	if !strings.Contains(buf.String(), "out of storage space") {
		t.Errorf("the cause is not logged: %s", buf.String())
	}
}
