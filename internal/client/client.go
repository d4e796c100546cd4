// Package client is a small Go client of the chat API: sign-in and JSON calls over HTTP, and a
// WebSocket connection that speaks the frames of API.md. The tests, the failover checks and the
// load tool use it; it speaks only the public protocol.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Client is one signed-in device.
type Client struct {
	Base   string // http://host:port
	HTTP   *http.Client
	mu     sync.Mutex
	token  string
	UserID int64
}

// New makes a client for the server at base (http://host:port), with its own cookie jar.
func New(base string) *Client {
	jar, _ := cookiejar.New(nil)
	return &Client{Base: strings.TrimRight(base, "/"), HTTP: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// Token is the current access token.
func (c *Client) Token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// Error is a problem answer of the API.
type Error struct {
	Status int
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Detail) }

// Do calls the API with a JSON body (nil for none) and decodes a JSON answer into out (nil to
// discard). Answers of 400 and above are returned as *Error.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if t := c.Token(); t != "" {
		req.Header.Set("Authorization", "Bearer "+t)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		e := &Error{Status: resp.StatusCode}
		json.Unmarshal(b, e)
		return e
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}

type tokenAnswer struct {
	User *struct {
		ID int64 `json:"id"`
	} `json:"user"`
	AccessToken string `json:"access_token"`
}

// Login signs in and keeps the access token (and the cookies).
func (c *Client) Login(ctx context.Context, email, password string) error {
	var t tokenAnswer
	if err := c.Do(ctx, http.MethodPost, "/api/v1/auth/login", map[string]string{"email": email, "password": password}, &t); err != nil {
		return err
	}
	c.setToken(t)
	return nil
}

// Register creates an account and signs it in.
func (c *Client) Register(ctx context.Context, email, name, password string) error {
	var t tokenAnswer
	if err := c.Do(ctx, http.MethodPost, "/api/v1/auth/register", map[string]string{"email": email, "name": name, "password": password}, &t); err != nil {
		return err
	}
	c.setToken(t)
	return nil
}

// Refresh rotates the refresh cookie and takes the new access token.
func (c *Client) Refresh(ctx context.Context) error {
	var t tokenAnswer
	if err := c.Do(ctx, http.MethodPost, "/api/v1/auth/refresh", nil, &t); err != nil {
		return err
	}
	c.setToken(t)
	return nil
}

func (c *Client) setToken(t tokenAnswer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token = t.AccessToken
	if t.User != nil {
		c.UserID = t.User.ID
	}
}

// Frame is a WebSocket frame.
type Frame struct {
	Type string          `json:"type"`
	Ref  json.RawMessage `json:"ref,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Conn is an open WebSocket.
type Conn struct {
	ws     *websocket.Conn
	frames chan Frame
	done   chan struct{}
	err    error
	closeS websocket.CloseError
}

// Dial opens the WebSocket with the access token as a Bearer header.
func (c *Client) Dial(ctx context.Context) (*Conn, error) {
	u := "ws" + strings.TrimPrefix(c.Base, "http") + "/api/v1/ws"
	ws, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": []string{"Bearer " + c.Token()}},
	})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: %d: %w", resp.StatusCode, err)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	ws.SetReadLimit(16 << 20)
	conn := &Conn{ws: ws, frames: make(chan Frame, 4096), done: make(chan struct{})}
	go conn.read()
	return conn, nil
}

func (c *Conn) read() {
	defer close(c.done)
	defer close(c.frames)
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.err = err
			return
		}
		var f Frame
		if err := json.Unmarshal(b, &f); err != nil {
			c.err = fmt.Errorf("bad frame %q: %w", b, err)
			return
		}
		c.frames <- f
	}
}

// Dropped reports whether the connection has ended.
func (c *Conn) Dropped() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Frames delivers received frames; it is closed when the connection ends.
func (c *Conn) Frames() <-chan Frame { return c.frames }

// CloseStatus is the close code the server sent, once Frames is closed (-1 if none).
func (c *Conn) CloseStatus() websocket.StatusCode {
	<-c.done
	return websocket.CloseStatus(c.err)
}

// Send writes a frame.
func (c *Conn) Send(ctx context.Context, typ, ref string, data any) error {
	f := map[string]any{"type": typ}
	if ref != "" {
		f["ref"] = ref
	}
	if data != nil {
		f["data"] = data
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// SendRaw writes bytes as one text frame, for tests of malformed input.
func (c *Conn) SendRaw(ctx context.Context, b []byte) error {
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// Next returns the next frame, or an error when ctx ends or the connection closes.
func (c *Conn) Next(ctx context.Context) (Frame, error) {
	select {
	case f, ok := <-c.frames:
		if !ok {
			return Frame{}, fmt.Errorf("connection closed: %w", c.err)
		}
		return f, nil
	case <-ctx.Done():
		return Frame{}, ctx.Err()
	}
}

// Await returns the first frame of type typ, discarding others.
func (c *Conn) Await(ctx context.Context, typ string) (Frame, error) {
	for {
		f, err := c.Next(ctx)
		if err != nil {
			return f, fmt.Errorf("waiting for %s: %w", typ, err)
		}
		if f.Type == typ {
			return f, nil
		}
	}
}

// Close closes the connection normally.
func (c *Conn) Close() error { return c.ws.Close(websocket.StatusNormalClosure, "") }
