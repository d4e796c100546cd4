package hub

import (
	"bufio"
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// The write path of a connection. Frames wait in an outbox (outbox.go: a slice that holds
// nothing while the connection is idle, bounded in bytes). A writer goroutine runs only while
// there is something to write: the
// first frame queued starts one, and it ends when the outbox is empty, so an idle connection
// costs one goroutine (its reader), not two. The writer takes everything queued at once and
// writes it with one system call: coder/websocket flushes after every message, so while the
// writer encodes a batch the socket is "corked" and the flushes only collect bytes. A client
// that keeps up gets each frame at once; one that is behind gets its backlog in a few large
// writes, which also costs Nginx and the client fewer reads. Pings come from a timer.

// corkConn is the socket under coder/websocket. While corked, writes collect in a pooled
// buffer; Uncork sends them in one write. The writer frames its messages itself (WriteText,
// a header and the payload, unmasked from a server); coder/websocket still reads, and writes
// the control frames (pings, pongs, close), each in one Write.
//
// Every write must finish within timeout, but the socket's write deadline is not set for each
// one: setting it re-arms a runtime timer, and setting it and clearing it around every write
// cost about 8 % of an instance's CPU in a 1,000-member fan-out. The deadline stays set, and
// a write of frames that finds less than half of timeout left moves it to timeout from now;
// so such a write has between timeout/2 and timeout to finish, and a socket that writes often
// sets it once per timeout/2. A control frame (a ping after a quiet spell) moves only a
// deadline that has passed: one still ahead belongs to a write that may be stuck, and a ping
// queued behind it must not give it more time.
type corkConn struct {
	net.Conn
	timeout   time.Duration // a write's time: at least half of it, at most all (0: no bound)
	mu        sync.Mutex
	corked    bool
	buf       *[]byte
	closeSent bool      // a close frame went through: no message may follow it
	deadline  time.Time // the write deadline set on Conn
}

// extendLocked moves the write deadline to timeout from now unless more than least is left.
func (c *corkConn) extendLocked(least time.Duration) {
	if c.timeout <= 0 {
		return
	}
	now := time.Now()
	if left := c.deadline.Sub(now); left > 0 && left >= least {
		return
	}
	c.deadline = now.Add(c.timeout)
	c.Conn.SetWriteDeadline(c.deadline)
}

var corkBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if len(p) > 0 && p[0] == 0x88 { // FIN and the close opcode
		c.closeSent = true
	}
	if c.corked {
		*c.buf = append(*c.buf, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	c.extendLocked(0) // a control frame: only a deadline that has passed moves
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// WriteText adds one text message to what Uncork sends.
func (c *corkConn) WriteText(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeSent || !c.corked {
		return net.ErrClosed
	}
	b := append(*c.buf, 0x81) // FIN, text
	switch n := len(p); {
	case n < 126:
		b = append(b, byte(n))
	case n < 1<<16:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
	*c.buf = append(b, p...)
	return nil
}

// Cork starts collecting writes.
func (c *corkConn) Cork() {
	c.mu.Lock()
	c.corked = true
	c.buf = corkBuffers.Get().(*[]byte)
	c.mu.Unlock()
}

// Uncork writes what was collected and stops collecting.
func (c *corkConn) Uncork() error {
	c.mu.Lock()
	buf := c.buf
	c.buf, c.corked = nil, false
	if buf != nil && len(*buf) > 0 {
		c.extendLocked(c.timeout / 2)
	}
	c.mu.Unlock()
	if buf == nil {
		return nil
	}
	var err error
	if len(*buf) > 0 {
		_, err = c.Conn.Write(*buf)
	}
	if cap(*buf) <= 256<<10 { // a rare huge backlog is not kept
		*buf = (*buf)[:0]
		corkBuffers.Put(buf)
	}
	return err
}

// Small buffers for coder/websocket: client frames are small and large ones bypass a bufio
// buffer, and every server write goes through the cork buffer; net/http would hand over 4 KiB
// for each direction, held for the life of the connection.
const (
	connReadBuffer  = 256
	connWriteBuffer = 160
)

// hijacker gives coder/websocket the corkConn and the small buffers when it hijacks the
// connection at Accept.
type hijacker struct {
	http.ResponseWriter
	writeTimeout time.Duration // bounds every write (corkConn)
	conn         *corkConn

	// refused and refusal keep the plain-text error Accept writes for a handshake it refuses
	// (no Upgrade header, a wrong version...), for the gate to answer as a problem document.
	refused int
	refusal strings.Builder
}

func (h *hijacker) WriteHeader(status int) {
	if status >= 400 && h.conn == nil {
		h.refused = status
		return
	}
	h.ResponseWriter.WriteHeader(status)
}

func (h *hijacker) Write(b []byte) (int, error) {
	if h.refused != 0 {
		return h.refusal.Write(b)
	}
	return h.ResponseWriter.Write(b)
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = &corkConn{Conn: nc, timeout: h.writeTimeout}
	r := bufio.NewReaderSize(h.conn, connReadBuffer)
	if brw.Reader.Buffered() > 0 {
		// The client sent more than the handshake before its answer: keep the reader that
		// holds it (Accept chains it in front of the connection).
		r = brw.Reader
	}
	return h.conn, bufio.NewReadWriter(r, bufio.NewWriterSize(h.conn, connWriteBuffer)), nil
}

func (h *hijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// maxBatchBytes bounds one write, so that a long backlog goes out in several.
const maxBatchBytes = 64 << 10

// writeWait is how long a writer waits before it takes the queued frames: a connection's
// writes are at least gap apart, so a connection that wrote less than gap ago waits for the
// rest of it and what comes meanwhile goes out in the same write, while one that has been
// quiet writes at once. Under a steady stream of frames (a busy group) this turns one write
// per frame into one per gap; an occasional message is not delayed at all.
func writeWait(last, now time.Time, gap time.Duration) time.Duration {
	if gap <= 0 || last.IsZero() {
		return 0
	}
	return max(0, last.Add(gap).Sub(now))
}

// writer writes what is queued until the outbox is empty; at most one runs at a time.
func (c *conn) writer() {
	defer c.out.writers.Done()
	var spare [][]byte
	for {
		if c.ctx.Err() != nil {
			c.out.abandon()
			return
		}
		gap := c.h.opts.WriteDelay
		if gap > 0 {
			if w := writeWait(c.lastWrite, time.Now(), gap); w > 0 {
				// A busy connection: let the frames that follow join this one, for fewer,
				// larger writes for the server, nginx and the client.
				time.Sleep(w)
			}
		}
		frames := c.out.next(spare)
		if frames == nil {
			return
		}
		ok := c.writeFrames(frames)
		if gap > 0 { // the clock is read only for a write gap
			c.lastWrite = time.Now()
		}
		c.out.written(frames)
		clear(frames) // let the frames go
		if spare = frames[:0]; cap(spare) > 256 {
			spare = nil
		}
		if !ok {
			c.out.abandon()
			return
		}
	}
}

// schedulePing pings the client after PingEvery; a pong must come within PongWait.
func (c *conn) schedulePing() {
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	if c.ctx.Err() == nil {
		c.pinger = time.AfterFunc(c.h.opts.PingEvery, c.ping)
	}
}

func (c *conn) ping() {
	ctx, cancel := context.WithTimeout(c.ctx, c.h.opts.PongWait)
	err := c.ws.Ping(ctx)
	cancel()
	if err != nil {
		if c.ctx.Err() == nil {
			c.close(websocket.StatusGoingAway, "ping timeout")
		}
		return
	}
	c.schedulePing()
}

func (c *conn) stopPing() {
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	if c.pinger != nil {
		c.pinger.Stop()
	}
}

// writeFrames writes frames as text messages, batched into few system calls.
func (c *conn) writeFrames(frames [][]byte) bool {
	for len(frames) > 0 {
		n, size := 0, 0
		for n < len(frames) && (n == 0 || size+len(frames[n]) <= maxBatchBytes) {
			size += len(frames[n])
			n++
		}
		if !c.writeBatch(frames[:n]) {
			return false
		}
		frames = frames[n:]
	}
	return true
}

func (c *conn) writeBatch(frames [][]byte) bool {
	if c.nc == nil { // not hijacked through the wrapper (tests that build a conn by hand)
		for _, f := range frames {
			ctx, cancel := context.WithTimeout(c.ctx, c.h.opts.WriteTimeout)
			err := c.ws.Write(ctx, websocket.MessageText, f)
			cancel()
			if err != nil {
				c.close(closeTryLater, "write failed")
				return false
			}
		}
		return true
	}
	c.nc.Cork()
	for _, f := range frames {
		if err := c.nc.WriteText(f); err != nil {
			c.nc.Uncork()
			c.close(closeTryLater, "write failed")
			return false
		}
	}
	if err := c.nc.Uncork(); err != nil {
		c.close(closeTryLater, "write failed")
		return false
	}
	return true
}
