package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// WS is a lean client WebSocket (RFC 6455) for the load tool: one reader, any number of
// writers, no allocation per frame. The chat's own client (internal/client) decodes every
// frame into a map-backed struct and a channel; at 100,000 frames per second on a shared
// 2-core machine that costs the server the CPU it is being measured on.
type WS struct {
	nc   net.Conn
	br   *bufio.Reader
	rbuf []byte // the last message read; reused

	wmu  sync.Mutex
	wbuf []byte
	seed uint32 // masking keys: need not be secret from the server we test
}

// CloseError is the close frame the server sent.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string { return fmt.Sprintf("websocket closed: %d %s", e.Code, e.Reason) }

// CloseCode is the close code in err, 1006 (abnormal) when the socket ended without a frame.
func CloseCode(err error) int {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 1006
}

// HandshakeError is a refused upgrade (401, 403, 502 ...).
type HandshakeError struct{ Status int }

func (e *HandshakeError) Error() string { return fmt.Sprintf("websocket handshake: HTTP %d", e.Status) }

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// DialWS opens base (http://host:port) + /api/v1/ws with the access token as a Bearer header.
func DialWS(ctx context.Context, base, token string) (*WS, error) {
	return dialWS(ctx, base, "/api/v1/ws", "Authorization: Bearer "+token+"\r\n")
}

// dialWS opens base + path with the extra header lines (each ending in CRLF).
func dialWS(ctx context.Context, base, path, header string) (*WS, error) {
	host := strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://")
	host = strings.TrimRight(host, "/")
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	var key [16]byte
	rand.Read(key[:])
	k := base64.StdEncoding.EncodeToString(key[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + k + "\r\nSec-WebSocket-Version: 13\r\n" + header + "\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 8<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		return nil, &HandshakeError{Status: resp.StatusCode}
	}
	h := sha1.Sum([]byte(k + wsGUID))
	if resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(h[:]) {
		nc.Close()
		return nil, errors.New("websocket handshake: bad Sec-WebSocket-Accept")
	}
	nc.SetDeadline(time.Time{})
	return &WS{nc: nc, br: br, seed: binary.LittleEndian.Uint32(key[:4]) | 1}, nil
}

// Read returns the next text or binary message. The slice is valid until the next Read.
// Pings are answered; a close frame is answered and returned as *CloseError.
func (c *WS) Read() ([]byte, error) {
	c.rbuf = c.rbuf[:0]
	for {
		var hdr [14]byte
		if _, err := io.ReadFull(c.br, hdr[:2]); err != nil {
			return nil, err
		}
		fin, op := hdr[0]&0x80 != 0, hdr[0]&0x0f
		masked := hdr[1]&0x80 != 0
		n := int64(hdr[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(c.br, hdr[2:4]); err != nil {
				return nil, err
			}
			n = int64(binary.BigEndian.Uint16(hdr[2:4]))
		case 127:
			if _, err := io.ReadFull(c.br, hdr[2:10]); err != nil {
				return nil, err
			}
			n = int64(binary.BigEndian.Uint64(hdr[2:10]))
		}
		var mask [4]byte
		if masked {
			if _, err := io.ReadFull(c.br, mask[:]); err != nil {
				return nil, err
			}
		}
		if n > 64<<20 {
			return nil, errors.New("websocket: frame too large")
		}
		if op >= 8 { // control frame: read it whole, apart from any message in progress
			var p [125]byte
			if _, err := io.ReadFull(c.br, p[:n]); err != nil {
				return nil, err
			}
			if masked {
				maskBytes(p[:n], mask)
			}
			switch op {
			case 0x9: // ping
				c.writeFrame(0xA, p[:n])
			case 0x8: // close
				ce := &CloseError{Code: 1005}
				if n >= 2 {
					ce.Code = int(binary.BigEndian.Uint16(p[:2]))
					ce.Reason = string(p[2:n])
				}
				c.writeFrame(0x8, p[:min(n, 2)])
				c.nc.Close()
				return nil, ce
			}
			continue
		}
		start := len(c.rbuf)
		c.rbuf = grow(c.rbuf, int(n))
		if _, err := io.ReadFull(c.br, c.rbuf[start:]); err != nil {
			return nil, err
		}
		if masked {
			maskBytes(c.rbuf[start:], mask)
		}
		if fin {
			return c.rbuf, nil
		}
	}
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, max(2*cap(b), len(b)+n, 512))
	copy(nb, b)
	return nb
}

// WriteText sends p as one masked text frame. Safe for concurrent use.
func (c *WS) WriteText(p []byte) error { return c.writeFrame(0x1, p) }

func (c *WS) writeFrame(op byte, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := c.wbuf[:0]
	b = append(b, 0x80|op)
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	// xorshift: masking only has to stop proxies from being confused, not to be secret.
	c.seed ^= c.seed << 13
	c.seed ^= c.seed >> 17
	c.seed ^= c.seed << 5
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], c.seed)
	b = append(b, mask[:]...)
	start := len(b)
	b = append(b, p...)
	maskBytes(b[start:], mask)
	c.wbuf = b
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.nc.Write(b)
	return err
}

func maskBytes(b []byte, k [4]byte) {
	for i := range b {
		b[i] ^= k[i&3]
	}
}

// Close sends a close frame with code and closes the socket; Read then returns an error.
func (c *WS) Close(code int) error {
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], uint16(code))
	c.writeFrame(0x8, p[:])
	return c.nc.Close()
}

// SetReadDeadline bounds the next reads (zero: none).
func (c *WS) SetReadDeadline(t time.Time) { c.nc.SetReadDeadline(t) }

// Abort drops the socket without a close frame.
func (c *WS) Abort() error { return c.nc.Close() }
