package blob

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// TestS3Hung: a store that takes connections but never answers (hung, or behind a proxy that
// holds requests) is chat.ErrFilesUnavailable for puts, opens and deletes once the client's
// timeouts and retries have run out (a few header timeouts), not after minio-go's defaults
// (a minute a try, 10 tries): uploads held their slots, and downloads hung, for 10 minutes
// (found by an outside re-check; a client gave up after 2 minutes with nothing answered).
func TestS3Hung(t *testing.T) {
	old := s3HeaderTimeout
	s3HeaderTimeout = 300 * time.Millisecond
	t.Cleanup(func() { s3HeaderTimeout = old })

	var hung atomic.Bool
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hung.Load() {
			select { // answer nothing while the client waits
			case <-r.Context().Done():
			case <-done:
			}
			return
		}
		if r.URL.Query().Has("location") {
			w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></LocationConstraint>`))
			return
		}
		w.WriteHeader(http.StatusOK) // HEAD of the bucket: it exists
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) })
	ctx := context.Background()
	s, err := NewS3(ctx, S3Options{Endpoint: strings.TrimPrefix(srv.URL, "http://"), Region: "us-east-1", Bucket: "bucket",
		AccessKey: "K", SecretKey: "S", PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	hung.Store(true)
	// Without the client's timeouts each call waits for its deadline (which would be the
	// request's: a client's patience).
	for name, call := range map[string]func(context.Context) error{
		"put": func(ctx context.Context) error {
			_, err := s.Put(ctx, "a", bytes.NewReader([]byte("x")), "text/plain")
			return err
		},
		"open":   func(ctx context.Context) error { _, err := s.Open(ctx, "a"); return err },
		"delete": func(ctx context.Context) error { return s.Delete(ctx, "a") },
	} {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		start := time.Now()
		err := call(ctx)
		took := time.Since(start)
		cancel()
		if !errors.Is(err, chat.ErrFilesUnavailable) || took > 6*time.Second {
			t.Errorf("%s with the store hung: %v after %v, want the file store unavailable within a few header timeouts", name, err, took.Round(time.Millisecond))
		}
	}
}
