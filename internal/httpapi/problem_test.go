package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/wschat/chat/internal/chat"
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
	p := problemFor(gone, log, new(chat.LogLimit), err)
	if p.Status != statusClientClosed || strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("abandoned: status %d, logs %q; want 499 and no ERROR", p.Status, logs.String())
	}

	logs.Reset()
	p = problemFor(context.Background(), log, new(chat.LogLimit), errors.New("disk on fire"))
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

// TestWithoutSecret: an error detail keeps its value only when nothing in it can be a secret,
// whatever the location: huma reports an unexpected property at "body.x" with the whole object.
func TestWithoutSecret(t *testing.T) {
	for _, tc := range []struct {
		loc      string
		value    any
		wantKept bool
	}{
		{"body.name", "", true},
		{"body.member_ids", []any{1.0, 2.0}, true},
		{"body.x", map[string]any{"name": "N", "x": 1.0}, true},
		{"body", map[string]any{"name": "N"}, false},
		{"body.password", "Sekr3t", false},
		{"body.new_password", "Sekr3t", false},
		{"body.refresh_token", "Sekr3t", false},
		{"body.refresh_token[0]", "Sekr3t", false},
		{"body.x", map[string]any{"password": "Sekr3t", "x": 1.0}, false},
		{"body.x", map[string]any{"x": map[string]any{"Current_Password": "Sekr3t"}}, false},
		{"body.x[1]", []any{"a", map[string]any{"access_token": "Sekr3t"}}, false},
		{"body.x", map[any]any{"refresh_token": "Sekr3t"}, false},
		{"body.x", struct{ Password string }{"Sekr3t"}, false}, // a shape JSON does not decode to: dropped
		{"body.keys.auth", "c2VrcjN0", false},                  // a push subscription's secret
		{"body.x", map[string]any{"endpoint": "https://push.example/1", "keys": map[string]any{"p256dh": "BPub", "auth": "c2VrcjN0"}}, false},
		{"body.keys.p256dh", "BPub", true}, // a public key
	} {
		d := &huma.ErrorDetail{Location: tc.loc, Message: "m", Value: tc.value}
		got := withoutSecret(d)
		if kept := got.Value != nil; kept != tc.wantKept {
			t.Errorf("%s %v: value kept %v, want %v", tc.loc, tc.value, kept, tc.wantKept)
		}
		if got.Location != tc.loc || got.Message != "m" || d.Value == nil {
			t.Errorf("%s: got %+v from %+v, want the same detail (and the original untouched)", tc.loc, got, d)
		}
	}
}

// TestEveryStatusHasADocumentedCode: whatever status huma, the router or http.ServeContent
// answers without a domain error (416 for a download's range came out as the code "error"),
// its code is one API.md or docs/API-NOTES.md lists, and the OpenAPI responses built from
// that code carry the same status.
func TestEveryStatusHasADocumentedCode(t *testing.T) {
	notes, err := os.ReadFile("../../docs/API-NOTES.md")
	if err != nil {
		t.Fatal(err)
	}
	apiMD := []string{chat.CodeUnauthenticated, chat.CodeNotFound, chat.CodeInvalid, chat.CodeRateLimited, chat.CodeUnavailable}
	for st := 400; st < 600; st++ {
		if http.StatusText(st) == "" {
			continue
		}
		code := codeOf(st)
		if code == "error" || !slices.Contains(apiMD, code) && !bytes.Contains(notes, []byte("`"+code+"`")) {
			t.Errorf("status %d: code %q is not a code API.md or API-NOTES.md lists", st, code)
		}
		if got := statusOfAnyCode(code); codeOf(got) != code {
			t.Errorf("status %d: code %q documents status %d, whose code is %q", st, code, got, codeOf(got))
		}
	}
	for _, st := range []int{http.StatusRequestedRangeNotSatisfiable, http.StatusPreconditionFailed, http.StatusMethodNotAllowed} {
		if _, ok := errorResponses(codeOf(st))[strconv.Itoa(st)]; !ok {
			t.Errorf("errorResponses(%q) does not document %d", codeOf(st), st)
		}
	}
}

// TestUnavailableRetryAfter: an unavailable error's own Retry-After is kept (a busy upload
// queue says 5 s); one without says 1 s.
func TestUnavailableRetryAfter(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, c := range []struct {
		err  error
		want string
	}{
		{&chat.Error{Code: chat.CodeUnavailable, Message: "busy", RetryAfter: 5}, "5"},
		{&chat.Error{Code: chat.CodeUnavailable, Message: "busy"}, "1"},
	} {
		if got := problemFor(context.Background(), log, new(chat.LogLimit), c.err).GetHeaders().Get("Retry-After"); got != c.want {
			t.Errorf("%v: Retry-After %q, want %q", c.err, got, c.want)
		}
	}
}
