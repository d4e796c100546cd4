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
	c := &corkConn{Conn: server}
	msgs := [][]byte{[]byte(`{"type":"a"}`), bytes.Repeat([]byte("b"), 300), bytes.Repeat([]byte("c"), 70000)}
	c.Cork()
	for _, m := range msgs {
		if err := c.WriteText(m); err != nil {
			t.Fatal(err)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Uncork(5 * time.Second) }()
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
	go c.Uncork(time.Second)
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
