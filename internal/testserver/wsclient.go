package testserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Reply is an HTTP answer.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// Code is the problem document's code, if any.
func (r Reply) Code() string {
	var p struct {
		Code string `json:"code"`
	}
	json.Unmarshal(r.Body, &p)
	return p.Code
}

// Call sends an HTTP request: body is sent as is when it is a string, else as JSON; token, if
// any, as Bearer; hdr on top.
func (s *Server) Call(tb testing.TB, method, path, token string, body any, hdr http.Header) Reply {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := s.HTTP.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return Reply{Status: res.StatusCode, Header: res.Header, Body: b}
}

// Frame is a server frame as a client reads it.
type Frame struct {
	Type string          `json:"type"`
	Ref  json.RawMessage `json:"ref,omitempty"`
	Data json.RawMessage `json:"data"`
	Raw  []byte          `json:"-"`
}

// Conn is a raw WebSocket client: one goroutine reads frames into a channel, unless the
// connection was opened not to read (Stall).
type Conn struct {
	tb     testing.TB
	WS     *websocket.Conn
	frames chan Frame
	done   chan struct{}
	err    error
}

// WSURL is the WebSocket endpoint's URL.
func (s *Server) WSURL() string { return "ws" + strings.TrimPrefix(s.URL, "http") + "/api/v1/ws" }

// Handshake opens a WebSocket with exactly the given headers (and query, e.g.
// "?access_token=..."). On refusal it returns the HTTP answer.
func (s *Server) Handshake(tb testing.TB, query string, hdr http.Header) (*Conn, *http.Response, error) {
	tb.Helper()
	c, res, err := s.open(tb, query, hdr)
	if err == nil {
		go c.read()
	}
	return c, res, err
}

func (s *Server) open(tb testing.TB, query string, hdr http.Header) (*Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, res, err := websocket.Dial(ctx, s.WSURL()+query, &websocket.DialOptions{HTTPHeader: hdr, HTTPClient: s.HTTP.Client()})
	if err != nil {
		return nil, res, err
	}
	ws.SetReadLimit(16 << 20)
	c := &Conn{tb: tb, WS: ws, frames: make(chan Frame, 1<<14), done: make(chan struct{})}
	tb.Cleanup(func() { ws.CloseNow() })
	return c, res, nil
}

// Dial connects u with a Bearer header and reads the hello.
func (s *Server) Dial(tb testing.TB, u *User) *Conn {
	tb.Helper()
	c, _ := s.DialHello(tb, u)
	return c
}

// DialHello connects u and returns the hello frame too.
func (s *Server) DialHello(tb testing.TB, u *User) (*Conn, Frame) {
	tb.Helper()
	c, res, err := s.Handshake(tb, "", http.Header{"Authorization": {"Bearer " + u.Token}})
	if err != nil {
		tb.Fatalf("dial as user %d: %v (%v)", u.ID, err, res)
	}
	f := c.Next(10 * time.Second)
	if f.Type != "hello" {
		tb.Fatalf("first frame %q, want hello", f.Raw)
	}
	return c, f
}

// Stall connects u with a client that never reads: what the server writes piles up in the
// socket buffers, then on the server.
func (s *Server) Stall(tb testing.TB, u *User) *Conn {
	tb.Helper()
	c, res, err := s.open(tb, "", http.Header{"Authorization": {"Bearer " + u.Token}})
	if err != nil {
		tb.Fatalf("dial as user %d: %v (%v)", u.ID, err, res)
	}
	return c
}

func (c *Conn) read() {
	defer close(c.done)
	defer close(c.frames)
	for {
		_, b, err := c.WS.Read(context.Background())
		if err != nil {
			c.err = err
			return
		}
		f := Frame{Raw: b}
		if err := json.Unmarshal(b, &f); err != nil {
			c.err = fmt.Errorf("a frame that is not JSON: %q", b)
			return
		}
		c.frames <- f
	}
}

// Next returns the next frame, failing the test if none comes within wait.
func (c *Conn) Next(wait time.Duration) Frame {
	c.tb.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.tb.Fatalf("connection closed: %v", c.err)
		}
		return f
	case <-time.After(wait):
		c.tb.Fatalf("no frame within %v", wait)
	}
	return Frame{}
}

// NextOf returns the next frame of type typ, skipping others, failing the test if none comes
// within wait.
func (c *Conn) NextOf(typ string, wait time.Duration) Frame {
	c.tb.Helper()
	deadline := time.Now().Add(wait)
	for {
		f := c.Next(time.Until(deadline))
		if f.Type == typ {
			return f
		}
	}
}

// SendRaw writes one text frame.
func (c *Conn) SendRaw(b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.WS.Write(ctx, websocket.MessageText, b)
}

// Send writes a frame {type, ref, data}.
func (c *Conn) Send(typ, ref string, data any) {
	c.tb.Helper()
	f := map[string]any{"type": typ, "ref": ref}
	if data != nil {
		f["data"] = data
	}
	b, _ := json.Marshal(f)
	if err := c.SendRaw(b); err != nil {
		c.tb.Fatalf("send %s: %v", typ, err)
	}
}

// RoundTrip sends a frame, then a ping, and returns every frame that came before the pong:
// a ping is answered after every frame sent before it, so the answer to the frame is among
// them.
func (c *Conn) RoundTrip(typ, ref string, data any) []Frame {
	c.tb.Helper()
	c.Send(typ, ref, data)
	return c.UntilPong("ping-" + strconv.FormatInt(pings.Add(1), 10))
}

var pings atomic.Int64

// UntilPong sends a ping with ref and collects the frames before its pong.
func (c *Conn) UntilPong(ref string) []Frame {
	c.tb.Helper()
	c.Send("ping", ref, nil)
	var got []Frame
	for {
		f := c.Next(10 * time.Second)
		if f.Type == "pong" && string(f.Ref) == `"`+ref+`"` {
			return got
		}
		got = append(got, f)
	}
}

// Quiet collects what arrives within wait.
func (c *Conn) Quiet(wait time.Duration) []Frame {
	var got []Frame
	deadline := time.After(wait)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return got
			}
			got = append(got, f)
		case <-deadline:
			return got
		}
	}
}

// CloseStatus waits for the connection to end and returns the server's close code.
func (c *Conn) CloseStatus(wait time.Duration) websocket.StatusCode {
	c.tb.Helper()
	deadline := time.After(wait)
	for {
		select {
		case _, ok := <-c.frames:
			if !ok {
				return websocket.CloseStatus(c.err)
			}
		case <-deadline:
			c.tb.Fatalf("the connection is still open after %v", wait)
			return -1
		}
	}
}

// ErrorOf returns the code of the error frame answering ref among frames, if any.
func ErrorOf(frames []Frame, ref string) (code string, ok bool) {
	for _, f := range frames {
		if f.Type == "error" && string(f.Ref) == `"`+ref+`"` {
			var d struct {
				Code string `json:"code"`
			}
			json.Unmarshal(f.Data, &d)
			return d.Code, true
		}
	}
	return "", false
}

// OfType returns the frames of a type.
func OfType(frames []Frame, typ string) []Frame {
	var out []Frame
	for _, f := range frames {
		if f.Type == typ {
			out = append(out, f)
		}
	}
	return out
}

// ChatOf is the chat_id of a frame's data (or of its message, or the id of its chat).
func ChatOf(f Frame) int64 {
	var d struct {
		ChatID  int64 `json:"chat_id"`
		Message struct {
			ChatID int64 `json:"chat_id"`
		} `json:"message"`
		Chat struct {
			ID int64 `json:"id"`
		} `json:"chat"`
	}
	json.Unmarshal(f.Data, &d)
	switch {
	case d.ChatID != 0:
		return d.ChatID
	case d.Message.ChatID != 0:
		return d.Message.ChatID
	}
	return d.Chat.ID
}

// Raws shows frames for a failure message.
func Raws(fs []Frame) string {
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteString(" ")
		}
		b.Write(f.Raw)
	}
	return b.String()
}

// Frames is the channel of frames read, closed when the connection ends.
func (c *Conn) Frames() <-chan Frame { return c.frames }

// Bind makes c report failures to tb (a subtest) from now on.
func (c *Conn) Bind(tb testing.TB) { c.tb = tb }

// Upload posts one file into a chat as u (multipart, as a browser sends it).
func (s *Server) Upload(tb testing.TB, u *User, chatID int64, name string, data []byte) Reply {
	tb.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	p, err := w.CreateFormFile("file", name)
	if err != nil {
		tb.Fatal(err)
	}
	p.Write(data)
	w.Close()
	return s.Call(tb, "POST", fmt.Sprintf("/api/v1/chats/%d/files", chatID), u.Token, buf.String(),
		http.Header{"Content-Type": {w.FormDataContentType()}})
}
