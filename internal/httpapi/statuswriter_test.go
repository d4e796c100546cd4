package httpapi

import (
	"bytes"
	"net/http"
	"testing"
	"time"
)

// deadlineWriter is a connection's answer as statusWriter sees it: it records each write, and
// whether the write deadline was moved ahead before it.
type deadlineWriter struct {
	header http.Header
	body   bytes.Buffer
	writes []int
	moved  bool // the deadline was set since the last write
	stale  int  // writes made under the deadline of an earlier one
}

func (d *deadlineWriter) Header() http.Header { return d.header }
func (d *deadlineWriter) WriteHeader(int)     {}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if !d.moved {
		d.stale++
	}
	d.moved = false
	d.writes = append(d.writes, len(p))
	return d.body.Write(p)
}

func (d *deadlineWriter) SetWriteDeadline(time.Time) error {
	d.moved = true
	return nil
}

// TestBigAnswerWrittenInChunks: an answer written whole (a history page of MBs of JSON) goes
// to the connection a chunk at a time, each under a deadline of its own: it went in one write
// under one deadline, so a client on a slow link still taking the bytes was cut after the
// idle time as if it had stopped reading (a 2 MB page at 50 KB/s takes 40 s).
func TestBigAnswerWrittenInChunks(t *testing.T) {
	d := &deadlineWriter{header: http.Header{}}
	w := &statusWriter{ResponseWriter: d, rc: http.NewResponseController(d), idle: time.Second}
	answer := bytes.Repeat([]byte("0123456789abcdef"), (1<<20)/16+1)
	n, err := w.Write(answer)
	if err != nil || n != len(answer) {
		t.Fatalf("Write: %d, %v; want %d", n, err, len(answer))
	}
	if !bytes.Equal(d.body.Bytes(), answer) {
		t.Fatal("the connection got other bytes than the answer")
	}
	for _, size := range d.writes {
		if size > 64<<10 {
			t.Errorf("a write of %d bytes under one deadline, want at most 64 KiB each (writes %v)", size, d.writes)
			break
		}
	}
	if d.stale != 0 {
		t.Errorf("%d writes without their own deadline", d.stale)
	}
	if _, err := w.Write(nil); err != nil || len(d.writes) != (len(answer)+64<<10-1)/(64<<10)+1 {
		t.Errorf("an empty write: %v, %d writes in all; want it passed on", err, len(d.writes))
	}
}
