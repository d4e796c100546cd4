package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// TestAbandonedRequestIsNotAnError: a store error caused by the client going away (its
// request context done) is not an internal error: no ERROR line, 499 in the logs and metrics.
// The same error while the client waits is one.
func TestAbandonedRequestIsNotAnError(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	err := fmt.Errorf("load session 7: %w", context.Canceled)

	gone, cancel := context.WithCancel(context.Background())
	cancel()
	p := problemFor(gone, log, err)
	if p.Status != statusClientClosed || strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("abandoned: status %d, logs %q; want 499 and no ERROR", p.Status, logs.String())
	}

	logs.Reset()
	p = problemFor(context.Background(), log, errors.New("disk on fire"))
	if p.Status != http.StatusInternalServerError || !strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("live request: status %d, logs %q; want 500 and an ERROR line", p.Status, logs.String())
	}
}
