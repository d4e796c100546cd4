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

// countingWriter counts the WriteHeader calls that reach it.
type countingWriter struct {
	http.ResponseWriter
	codes []int
}

func (c *countingWriter) WriteHeader(code int) { c.codes = append(c.codes, code) }

// TestStatusWriterOneAnswer: once an answer has begun (101, or any final status), a second
// WriteHeader is dropped rather than passed on (net/http would log "superfluous WriteHeader");
// an informational 1xx does not begin it.
func TestStatusWriterOneAnswer(t *testing.T) {
	for _, tc := range []struct {
		calls []int
		want  []int
	}{
		{[]int{http.StatusSwitchingProtocols, http.StatusInternalServerError}, []int{http.StatusSwitchingProtocols}},
		{[]int{http.StatusOK, http.StatusInternalServerError}, []int{http.StatusOK}},
		{[]int{http.StatusEarlyHints, http.StatusOK, http.StatusTeapot}, []int{http.StatusEarlyHints, http.StatusOK}},
	} {
		cw := &countingWriter{}
		sw := &statusWriter{ResponseWriter: cw}
		for _, c := range tc.calls {
			sw.WriteHeader(c)
		}
		if fmt.Sprint(cw.codes) != fmt.Sprint(tc.want) || sw.status != tc.want[len(tc.want)-1] {
			t.Errorf("calls %v: passed on %v (status %d), want %v", tc.calls, cw.codes, sw.status, tc.want)
		}
	}
}
