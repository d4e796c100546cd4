package httpapi

import (
	"errors"
	"io"
	"net"
	"os"
)

// Listener wraps the API's listener so that a connection whose write timed out (a client that
// stopped reading an answer or its WebSocket frames) is reset when it is closed, not closed
// politely: a polite close left what the kernel still held for that client (up to its send
// buffer, about 4 MB on loopback) queued for minutes after Go had let go of everything, one
// such buffer per download a client asked for and never read.
func Listener(ln net.Listener) net.Listener { return stallResetListener{ln} }

type stallResetListener struct{ net.Listener }

func (l stallResetListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		return stallResetConn{tc}, err
	}
	return c, err
}

// stallResetConn is a TCP connection that turns its close into a reset once a write missed
// its deadline. net/http and coder/websocket close the connection themselves after such a
// write, so the reset is set up here, before either learns of the error.
type stallResetConn struct{ *net.TCPConn }

func (c stallResetConn) Write(b []byte) (int, error) {
	n, err := c.TCPConn.Write(b)
	c.resetIfStalled(err)
	return n, err
}

func (c stallResetConn) ReadFrom(r io.Reader) (int64, error) {
	n, err := c.TCPConn.ReadFrom(r)
	c.resetIfStalled(err)
	return n, err
}

func (c stallResetConn) resetIfStalled(err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.SetLinger(0)
	}
}
