package hub

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// TestCorkConnFrames: messages written while corked go out in one write as well-formed
// unmasked text frames of every length form, in order; after a close frame none is taken.
func TestCorkConnFrames(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	c := &corkConn{Conn: server, timeout: 5 * time.Second}
	msgs := [][]byte{[]byte(`{"type":"a"}`), bytes.Repeat([]byte("b"), 300), bytes.Repeat([]byte("c"), 70000)}
	c.Cork()
	for _, m := range msgs {
		if err := c.WriteText(m); err != nil {
			t.Fatal(err)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Uncork() }()
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i, want := range msgs {
		var h [2]byte
		if _, err := io.ReadFull(client, h[:]); err != nil {
			t.Fatal(err)
		}
		if h[0] != 0x81 || h[1]&0x80 != 0 {
			t.Fatalf("frame %d: header %x, want a final unmasked text frame", i, h)
		}
		n := int(h[1])
		switch n {
		case 126:
			var l [2]byte
			io.ReadFull(client, l[:])
			n = int(binary.BigEndian.Uint16(l[:]))
		case 127:
			var l [8]byte
			io.ReadFull(client, l[:])
			n = int(binary.BigEndian.Uint64(l[:]))
		}
		got := make([]byte, n)
		if _, err := io.ReadFull(client, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d: %d bytes, want %d", i, len(got), len(want))
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// A close frame (as coder/websocket writes it) ends what the writer may send.
	c.Cork()
	c.Write([]byte{0x88, 0x02, 0x03, 0xe8})
	if err := c.WriteText([]byte("late")); err == nil {
		t.Error("a message was taken after the close frame")
	}
	go c.Uncork()
	io.ReadFull(client, make([]byte, 4))
}

// TestWriteWait: a connection that wrote less than the gap ago waits for the rest of it; a
// quiet one, a first write, and a gap of 0 never wait.
func TestWriteWait(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	for _, c := range []struct {
		last time.Time
		gap  time.Duration
		want time.Duration
	}{
		{time.Time{}, 5 * ms, 0},           // never wrote
		{now.Add(-time.Second), 5 * ms, 0}, // quiet
		{now.Add(-5 * ms), 5 * ms, 0},      // exactly the gap ago
		{now.Add(-2 * ms), 5 * ms, 3 * ms},
		{now, 5 * ms, 5 * ms},
		{now.Add(-2 * ms), 0, 0}, // off
	} {
		if got := writeWait(c.last, now, c.gap); got != c.want {
			t.Errorf("writeWait(last %v ago, gap %v) = %v, want %v", now.Sub(c.last), c.gap, got, c.want)
		}
	}
}

// deadlineConn counts the write deadlines set on it.
type deadlineConn struct {
	net.Conn
	set int
}

func (d *deadlineConn) SetWriteDeadline(t time.Time) error {
	d.set++
	return d.Conn.SetWriteDeadline(t)
}

// TestCorkConnDeadline: writes in quick succession set the write deadline once; a write that
// finds it stale (a control frame long after the last message) moves it instead of failing;
// a control frame leaves a deadline still ahead alone, a write of frames moves it when less
// than half the timeout is left; and a write the peer does not take fails within the timeout.
func TestCorkConnDeadline(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	dc := &deadlineConn{Conn: server}
	c := &corkConn{Conn: dc, timeout: time.Minute}
	go io.Copy(io.Discard, client)
	for i := range 3 {
		c.Cork()
		if err := c.WriteText([]byte(`{"type":"a"}`)); err != nil {
			t.Fatal(err)
		}
		if err := c.Uncork(); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if dc.set != 1 {
		t.Errorf("three writes within a minute set the deadline %d times, want 1", dc.set)
	}

	// The deadline passed while the socket was quiet: a ping must still go out.
	c.mu.Lock()
	c.deadline = time.Now().Add(-time.Second)
	c.Conn.SetWriteDeadline(c.deadline)
	c.mu.Unlock()
	if _, err := c.Write([]byte{0x89, 0x00}); err != nil {
		t.Fatalf("a control frame after a quiet spell: %v", err)
	}
	if dc.set != 3 {
		t.Errorf("deadline set %d times, want 3 (the stale one and its replacement)", dc.set)
	}

	// With a second left (less than half the timeout): a control frame leaves the deadline
	// to the write that set it, a write of frames moves it.
	c.mu.Lock()
	c.deadline = time.Now().Add(time.Second)
	c.Conn.SetWriteDeadline(c.deadline)
	c.mu.Unlock()
	if _, err := c.Write([]byte{0x89, 0x00}); err != nil {
		t.Fatal(err)
	}
	if dc.set != 4 {
		t.Errorf("a control frame moved a deadline still ahead (set %d times, want 4)", dc.set)
	}
	c.Cork()
	c.WriteText([]byte(`{"type":"b"}`))
	if err := c.Uncork(); err != nil {
		t.Fatal(err)
	}
	if dc.set != 5 {
		t.Errorf("a write of frames with a second left did not move the deadline (set %d times, want 5)", dc.set)
	}

	// A peer that reads nothing: the write fails once the deadline passes.
	stuck, peer := net.Pipe()
	defer peer.Close()
	s := &corkConn{Conn: stuck, timeout: 50 * time.Millisecond}
	s.Cork()
	s.WriteText([]byte("never read"))
	errc := make(chan error, 1)
	go func() { errc <- s.Uncork() }()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("a write nobody read succeeded")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a write nobody read was not timed out")
	}
}
