package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Message is a chat message as the API sends it.
type Message struct {
	ID        int64           `json:"id"`
	ChatID    int64           `json:"chat_id"`
	Seq       int64           `json:"seq"`
	Kind      string          `json:"kind"`
	SenderID  *int64          `json:"sender_id"`
	Body      string          `json:"body"`
	ClientID  *string         `json:"client_id"`
	CreatedAt string          `json:"created_at"`
	Event     json.RawMessage `json:"event,omitempty"`
	Files     []File          `json:"files,omitempty"`
	Rev       int64           `json:"rev"`
	EditedAt  *string         `json:"edited_at,omitempty"`
	DeletedAt *string         `json:"deleted_at,omitempty"`
	Reactions []Reaction      `json:"reactions,omitempty"`
	ReplyTo   *ReplyRef       `json:"reply_to,omitempty"`
	// Mentions are the members the message mentions, MentionAll is @all (docs/PROTOCOL.md,
	// "Mentions").
	Mentions   []int64 `json:"mentions,omitempty"`
	MentionAll bool    `json:"mention_all,omitempty"`
}

// Mention says whom a message mentions: members by id (the server drops non-members) and
// everyone (@all, groups only).
type Mention struct {
	Users []int64
	All   bool
}

// File is a file a message carries (docs/PROTOCOL.md, "Files").
type File struct {
	ID           int64  `json:"id"`
	Name         string `json:"name"`
	Size         int64  `json:"size"`
	ContentType  string `json:"content_type"`
	Width        int    `json:"width,omitempty"`
	Height       int    `json:"height,omitempty"`
	ThumbnailURL string `json:"thumbnail_url,omitempty"`
	URL          string `json:"url"`
}

// SessionOptions tune a Session. Zero values take the defaults.
type SessionOptions struct {
	// OnMessage gets every message of the session's chats exactly once and in seq order per
	// chat: live ones, the session's own (when acknowledged), and those recovered by sync or
	// REST after a reconnect. It is called from one goroutine; a slow OnMessage delays later
	// messages but never the connection.
	OnMessage func(Message)
	// OnChange gets the changes of the messages handed to OnMessage (edits, deletes,
	// reactions), on the same goroutine, each after its message, in the order the server sent
	// them. A message.updated whose rev is below what the session has of that message is
	// dropped, and so is a reaction.updated not above it; a message.updated with the same rev
	// is handed on again (a sync repeats a change that came live as its message's whole state:
	// apply it, it is idempotent).
	OnChange func(Change)
	// OnFrame sees every frame received, on the connection's goroutine; it must not block.
	OnFrame func(Frame)
	// OnClose hears the end of each connection: the close code the server sent (-1 if none,
	// e.g. a killed instance) and the reason the session saw.
	OnClose func(code websocket.StatusCode, err error)
	// Cursors are the last seqs already seen per chat, where delivery starts. A chat not
	// listed starts after the last_seq (and last_rev) of the first hello that lists it; a
	// listed one asks in its first sync for the changes after RevCursors[chat] (0 if absent).
	Cursors    map[int64]int64
	RevCursors map[int64]int64
	// MinBackoff and MaxBackoff bound the jittered exponential delay between reconnects and
	// between retries of a send that failed (defaults 500ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// RestartJitter is the window of the random delay before reconnecting after 1012
	// (default 1s).
	RestartJitter time.Duration
	// SendTimeout is how long a send waits for its answer before it is sent again, on the
	// same connection, with the same client_id (default 10s).
	SendTimeout time.Duration
	// GapTimeout is how long a chat may stay behind (a gap in its seqs that neither the server
	// nor a sync has filled) before the session reads the gap over REST (default 5s). Negative
	// turns that off: only sync.truncated is then paged over REST.
	GapTimeout time.Duration
	// PingEvery is how often the session pings; a connection silent for PingEvery plus 10s is
	// taken for dead. Default: the heartbeat of the hello.
	PingEvery time.Duration
	// Logf, if set, gets a line for each reconnect and failure.
	Logf func(format string, args ...any)
}

func (o *SessionOptions) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.MinBackoff, 500*time.Millisecond)
	def(&o.MaxBackoff, 30*time.Second)
	def(&o.RestartJitter, time.Second)
	def(&o.SendTimeout, 10*time.Second)
	def(&o.GapTimeout, 5*time.Second)
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// SessionStats counts what a session went through.
type SessionStats struct {
	Connects    int            // hellos received
	Disconnects int            // connections that ended
	CloseCodes  map[int]int    // close codes of the ended connections (-1: none)
	Refreshes   int            // access tokens refreshed
	Sent        int            // message.send frames written
	Resends     int            // of those, repeats of a client_id already sent
	SendErrors  map[string]int // error codes answered to message.send
	Delivered   int            // messages handed to OnMessage
	Changes     int            // changes handed to OnChange
	Repeats     int            // of those, message.updated with a rev the message had already
	StaleChange int            // changes dropped as older than what the session had
	Duplicates  int            // messages dropped as already delivered
	OutOfOrder  int            // messages held until the seqs before them came
	RESTPages   int            // history pages read over REST (sync.truncated, gaps)
	GapFills    int            // gaps that GapTimeout sent to REST
}

// Session keeps one signed-in device connected: it reconnects with jittered exponential
// backoff, resyncs each chat from the last seq it delivered, hands every message to
// OnMessage exactly once and in order, and sends with retries until acknowledged. It speaks
// only the public protocol (docs/PROTOCOL.md, "Reconnect and sync"), so a load tool can run
// thousands of them.
type Session struct {
	c      *Client
	opts   SessionOptions
	prefix string // of client_ids
	ids    atomic.Uint64
	refs   atomic.Uint64

	mu      sync.Mutex
	live    *liveConn // nil while disconnected
	change  chan struct{}
	chats   map[int64]*chatCursor
	waiters map[string]chan sendResult
	syncs   map[string][]int64 // refs of the syncs in flight, and their chats
	// syncFailed are the refs of syncs answered unavailable: their chats sync again.
	syncFailed map[string]bool
	resync     bool // a sync answered unavailable: sync again
	// resyncWait is the delay before that next sync: it doubles while syncs keep failing.
	resyncWait time.Duration
	stats      SessionStats
	ended      bool
	// fillCtx ends REST reads (fill goroutines, counted in fills) when Run returns.
	fillCtx context.Context
	fills   sync.WaitGroup

	outMu  sync.Mutex
	outbox []delivery
	outC   chan struct{}
}

// liveConn is a connection that has said hello.
type liveConn struct {
	conn *Conn
	done chan struct{} // closed when it ends
}

type chatCursor struct {
	seq int64 // every message up to seq has been delivered
	// rev is the greatest rev received; safeRev the one to sync from: every change up to it
	// has been received (rev, except while a sync of the chat runs: its answer may still bring
	// changes below rev, compacted into their messages' state). revTarget is the chat's last
	// rev as of the last hello.
	rev, safeRev, revTarget int64
	syncing                 bool              // a sync of the chat runs; safeRev waits for its sync.done
	revs                    map[int64]int64   // the rev of each changed message delivered, by seq
	pending                 map[int64]Message // beyond seq+1, waiting for the gap to fill
	target                  int64             // the highest seq known to exist
	behind                  time.Time         // since when the chat has been behind without progress
	filling                 bool              // a REST read of the chat runs
	resync                  bool              // a sync of the chat failed: sync it again
}

type sendResult struct {
	msg  Message
	code string
	text string
}

// NewSession makes a session of a signed-in client. Run connects it.
func NewSession(c *Client, opts SessionOptions) *Session {
	opts.defaults()
	b := make([]byte, 6)
	rand.Read(b)
	s := &Session{c: c, opts: opts, prefix: hex.EncodeToString(b), change: make(chan struct{}),
		chats: map[int64]*chatCursor{}, waiters: map[string]chan sendResult{}, syncs: map[string][]int64{}, syncFailed: map[string]bool{},
		outC: make(chan struct{}, 1)}
	for id, seq := range opts.Cursors {
		r := opts.RevCursors[id]
		s.chats[id] = &chatCursor{seq: seq, target: seq, rev: r, safeRev: r, revTarget: r, pending: map[int64]Message{}}
	}
	s.stats.CloseCodes = map[int]int{}
	s.stats.SendErrors = map[string]int{}
	return s
}

// NewClientID returns a fresh client_id for SendID.
func (s *Session) NewClientID() string {
	return s.prefix + "-" + strconv.FormatUint(s.ids.Add(1), 10)
}

// Stats returns a copy of the session's counters.
func (s *Session) Stats() SessionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.CloseCodes = make(map[int]int, len(s.stats.CloseCodes))
	for k, v := range s.stats.CloseCodes {
		st.CloseCodes[k] = v
	}
	st.SendErrors = make(map[string]int, len(s.stats.SendErrors))
	for k, v := range s.stats.SendErrors {
		st.SendErrors[k] = v
	}
	return st
}

// Cursors returns the last seq delivered per chat.
func (s *Session) Cursors() map[int64]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int64]int64, len(s.chats))
	for id, c := range s.chats {
		out[id] = c.seq
	}
	return out
}

// RevCursors returns per chat the rev up to which every change has been received: what the
// next sync asks changes after.
func (s *Session) RevCursors() map[int64]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int64]int64, len(s.chats))
	for id, c := range s.chats {
		out[id] = c.safeRev
	}
	return out
}

// Connected reports whether the session has a connection that said hello.
func (s *Session) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live != nil
}

// WaitConnected waits until the session is connected.
func (s *Session) WaitConnected(ctx context.Context) error {
	_, err := s.waitLive(ctx)
	return err
}

// ErrSessionEnded is returned by sends after Run has returned.
var ErrSessionEnded = errors.New("session ended")

func (s *Session) waitLive(ctx context.Context) (*liveConn, error) {
	for {
		s.mu.Lock()
		live, change, ended := s.live, s.change, s.ended
		s.mu.Unlock()
		if ended {
			return nil, ErrSessionEnded
		}
		if live != nil {
			return live, nil
		}
		select {
		case <-change:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// setLive publishes a change of connection to the waiters.
func (s *Session) setLiveLocked(l *liveConn) {
	s.live = l
	close(s.change)
	s.change = make(chan struct{})
}

// Run keeps the session connected until ctx ends (it then returns nil) or the session cannot
// be signed in any more (its refresh token is refused). A session runs once: after Run, its
// sends fail with ErrSessionEnded. Run returns once its goroutines have ended and every
// message it accepted has been handed to OnMessage.
func (s *Session) Run(ctx context.Context) error {
	fillCtx, cancelFills := context.WithCancel(context.Background())
	s.mu.Lock()
	s.fillCtx = fillCtx
	s.mu.Unlock()
	deliverDone := make(chan struct{})
	stopDeliver := make(chan struct{})
	go func() { defer close(deliverDone); s.deliverLoop(stopDeliver) }()
	defer func() {
		s.mu.Lock()
		s.ended = true
		close(s.change)
		s.change = make(chan struct{})
		s.mu.Unlock()
		cancelFills()
		s.fills.Wait()
		close(stopDeliver)
		<-deliverDone
	}()

	attempt := 0
	for {
		if ctx.Err() != nil {
			return nil
		}
		code, hello, err := s.connect(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var delay time.Duration
		switch {
		case code == 1012:
			// The instance is restarting: another one takes us at once; the jitter keeps its
			// clients from arriving in one burst.
			attempt = 0
			delay = time.Duration(mrand.Int64N(int64(s.opts.RestartJitter) + 1))
		case code == 4001 || errors.Is(err, errUnauthorized):
			if rerr := s.refresh(ctx); rerr != nil {
				var e *Error
				if errors.As(rerr, &e) && e.Status == http.StatusUnauthorized {
					return fmt.Errorf("session: refresh refused: %w", rerr)
				}
				s.opts.Logf("session: refresh: %v", rerr)
			}
			if hello { // it worked until its token expired: back at once
				attempt = 0
			}
			delay = time.Duration(mrand.Int64N(int64(100*time.Millisecond) + 1))
			if attempt > 0 { // refused again: back off
				delay = s.backoff(attempt)
			}
			attempt++
		default:
			if hello {
				attempt = 0
			}
			delay = s.backoff(attempt)
			attempt++
		}
		s.opts.Logf("session: disconnected (code %d: %v); reconnecting in %v", code, err, delay.Round(time.Millisecond))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// backoff is the jittered delay before attempt n (0, 1, ...): MinBackoff doubling up to
// MaxBackoff, of which a random half is taken off.
func (s *Session) backoff(n int) time.Duration {
	d := s.opts.MinBackoff
	for i := 0; i < n && d < s.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.opts.MaxBackoff)
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
}

var errUnauthorized = errors.New("handshake refused with 401")

func (s *Session) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := s.c.Refresh(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	s.stats.Refreshes++
	s.mu.Unlock()
	return nil
}

// dial opens the WebSocket, telling a refused handshake (401) apart.
func (s *Session) dial(ctx context.Context) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(s.c.Base, "http") + "/api/v1/ws"
	h := http.Header{}
	if t := s.c.Token(); t != "" {
		h.Set("Authorization", "Bearer "+t)
	}
	// The client's HTTP client carries the cookie jar: a session signed in by cookie works too.
	ws, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: s.c.HTTP, HTTPHeader: h})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return nil, errUnauthorized
		}
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

type helloData struct {
	HeartbeatMS int64 `json:"heartbeat_ms"`
	Chats       []struct {
		ID      int64 `json:"id"`
		LastSeq int64 `json:"last_seq"`
		LastRev int64 `json:"last_rev"`
	} `json:"chats"`
}

// connect runs one connection from dial to its end and returns its close code (-1 for none)
// and whether it got as far as hello.
func (s *Session) connect(ctx context.Context) (code websocket.StatusCode, helloOK bool, err error) {
	conn, err := s.dial(ctx)
	if err != nil {
		return -1, false, err
	}
	defer func() {
		if ctx.Err() != nil {
			conn.Close()
		} else {
			conn.ws.CloseNow()
		}
		<-conn.done
		code = websocket.CloseStatus(conn.err)
		if code == -1 && err == nil {
			err = conn.err
		}
		s.mu.Lock()
		s.stats.Disconnects++
		s.stats.CloseCodes[int(code)]++
		if s.live != nil && s.live.conn == conn {
			close(s.live.done)
			s.setLiveLocked(nil)
		}
		clear(s.syncs)
		clear(s.syncFailed)
		s.resync, s.resyncWait = false, 0
		s.mu.Unlock()
		if s.opts.OnClose != nil {
			s.opts.OnClose(code, err)
		}
	}()

	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	f, err := conn.Next(hctx)
	cancel()
	if err != nil {
		return 0, false, err
	}
	if s.opts.OnFrame != nil {
		s.opts.OnFrame(f)
	}
	if f.Type != "hello" {
		return 0, false, fmt.Errorf("first frame is %q, want hello", f.Type)
	}
	var h helloData
	if err := json.Unmarshal(f.Data, &h); err != nil {
		return 0, false, fmt.Errorf("decode hello: %w", err)
	}
	live := &liveConn{conn: conn, done: make(chan struct{})}
	cursors := s.hello(h, live)
	if err := s.sendSync(ctx, conn, cursors); err != nil {
		return 0, true, err
	}

	pingEvery := s.opts.PingEvery
	if pingEvery <= 0 {
		pingEvery = time.Duration(h.HeartbeatMS) * time.Millisecond
	}
	if pingEvery <= 0 {
		pingEvery = 25 * time.Second
	}
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastFrame := time.Now()
	var resyncAt time.Time
	for {
		select {
		case <-ctx.Done():
			return 0, true, ctx.Err()
		case f, ok := <-conn.Frames():
			if !ok {
				return 0, true, conn.err
			}
			lastFrame = time.Now()
			if s.opts.OnFrame != nil {
				s.opts.OnFrame(f)
			}
			if again := s.handle(f); again && resyncAt.IsZero() {
				s.mu.Lock()
				s.resyncWait = min(max(2*s.resyncWait, 250*time.Millisecond), 8*time.Second)
				resyncAt = time.Now().Add(s.resyncWait)
				s.mu.Unlock()
			}
		case <-ping.C:
			if time.Since(lastFrame) > pingEvery+10*time.Second {
				return 0, true, errors.New("connection silent: taken for dead")
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := conn.Send(wctx, "ping", "", nil)
			cancel()
			if err != nil {
				return 0, true, err
			}
		case <-tick.C:
			if !resyncAt.IsZero() && time.Now().After(resyncAt) {
				resyncAt = time.Time{}
				if err := s.sendSync(ctx, conn, s.behindCursors()); err != nil {
					return 0, true, err
				}
			}
			s.checkGaps()
		}
	}
}

// hello takes the chats of a new connection and returns the sync cursors of those behind.
func (s *Session) hello(h helloData, live *liveConn) map[string]syncCursor {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Connects++
	seen := make(map[int64]bool, len(h.Chats))
	for _, ch := range h.Chats {
		seen[ch.ID] = true
		c := s.chats[ch.ID]
		if c == nil {
			c = &chatCursor{seq: ch.LastSeq, target: ch.LastSeq, rev: ch.LastRev, safeRev: ch.LastRev, pending: map[int64]Message{}}
			s.chats[ch.ID] = c
		}
		if ch.LastSeq > c.target {
			c.target = ch.LastSeq
		}
		c.revTarget = max(c.revTarget, ch.LastRev)
		c.syncing = false
		if c.seq < c.target && c.behind.IsZero() {
			c.behind = time.Now()
		}
	}
	for id := range s.chats {
		if !seen[id] {
			delete(s.chats, id) // left while we were away
		}
	}
	s.setLiveLocked(live)
	return s.behindLocked()
}

// syncCursor is a chat's cursor in a sync frame: {"seq": S, "rev": R}.
type syncCursor struct {
	Seq int64 `json:"seq"`
	Rev int64 `json:"rev"`
}

func (s *Session) behindCursors() map[string]syncCursor {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.behindLocked()
}

func (s *Session) behindLocked() map[string]syncCursor {
	out := map[string]syncCursor{}
	for id, c := range s.chats {
		if c.seq < c.target || len(c.pending) > 0 || c.safeRev < c.revTarget || c.resync {
			out[strconv.FormatInt(id, 10)] = syncCursor{Seq: c.seq, Rev: c.safeRev}
		}
	}
	return out
}

// maxSyncChats is the server's bound on the cursors of one sync frame.
const maxSyncChats = 1000

func (s *Session) sendSync(ctx context.Context, conn *Conn, cursors map[string]syncCursor) error {
	for len(cursors) > 0 {
		batch := map[string]syncCursor{}
		var ids []int64
		for k, v := range cursors {
			if len(batch) == maxSyncChats {
				break
			}
			batch[k] = v
			delete(cursors, k)
			id, _ := strconv.ParseInt(k, 10, 64)
			ids = append(ids, id)
		}
		ref := "sync-" + strconv.FormatUint(s.refs.Add(1), 10)
		s.mu.Lock()
		s.syncs[ref] = ids
		for _, id := range ids {
			if c := s.chats[id]; c != nil {
				c.syncing, c.resync = true, false
			}
		}
		s.mu.Unlock()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := conn.Send(wctx, "sync", ref, map[string]any{"cursors": batch})
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

func refString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// handle takes one frame; it reports whether a sync should be sent again.
func (s *Session) handle(f Frame) (resync bool) {
	switch f.Type {
	case "message.new", "message.ack":
		var d struct {
			Message Message `json:"message"`
		}
		if err := json.Unmarshal(f.Data, &d); err != nil || d.Message.ChatID == 0 {
			s.opts.Logf("session: bad %s frame: %s", f.Type, f.Data)
			return false
		}
		s.mu.Lock()
		s.acceptLocked(d.Message)
		if f.Type == "message.ack" {
			if ch := s.waiters[refString(f.Ref)]; ch != nil {
				delete(s.waiters, refString(f.Ref))
				ch <- sendResult{msg: d.Message}
			}
		}
		s.mu.Unlock()
	case "error":
		var d struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		json.Unmarshal(f.Data, &d)
		ref := refString(f.Ref)
		s.mu.Lock()
		defer s.mu.Unlock()
		if ch := s.waiters[ref]; ch != nil {
			delete(s.waiters, ref)
			s.stats.SendErrors[d.Code]++
			ch <- sendResult{code: d.Code, text: d.Message}
		} else if _, ok := s.syncs[ref]; ok {
			if d.Code == "unavailable" { // a chat still being set up, or the database down
				s.resync = true
				s.syncFailed[ref] = true
			} else {
				s.opts.Logf("session: sync: %s: %s", d.Code, d.Message)
			}
		} else {
			s.opts.Logf("session: error frame %s: %s", f.Ref, f.Data)
		}
	case "sync.truncated":
		var d struct {
			ChatID  int64 `json:"chat_id"`
			FromSeq int64 `json:"from_seq"`
		}
		if json.Unmarshal(f.Data, &d) == nil && d.ChatID > 0 {
			s.mu.Lock()
			s.startFillLocked(d.ChatID)
			s.mu.Unlock()
		}
	case "sync.done":
		s.mu.Lock()
		defer s.mu.Unlock()
		ref := refString(f.Ref)
		failed := s.syncFailed[ref]
		for _, id := range s.syncs[ref] {
			if c := s.chats[id]; c != nil && c.syncing {
				c.syncing = false
				if failed {
					c.resync = true // the changes below rev may not all have come: ask again
				} else {
					c.safeRev = c.rev
				}
			}
		}
		delete(s.syncs, ref)
		delete(s.syncFailed, ref)
		if len(s.syncs) == 0 {
			if s.resync {
				s.resync = false
				return true
			}
			s.resyncWait = 0
		}
	case "chat.added":
		var d struct {
			Chat struct {
				ID      int64 `json:"id"`
				LastSeq int64 `json:"last_seq"`
				LastRev int64 `json:"last_rev"`
			} `json:"chat"`
		}
		if json.Unmarshal(f.Data, &d) == nil && d.Chat.ID > 0 {
			s.mu.Lock()
			if s.chats[d.Chat.ID] == nil {
				s.chats[d.Chat.ID] = &chatCursor{seq: d.Chat.LastSeq, target: d.Chat.LastSeq,
					rev: d.Chat.LastRev, safeRev: d.Chat.LastRev, revTarget: d.Chat.LastRev, pending: map[int64]Message{}}
			}
			s.mu.Unlock()
		}
	case "message.updated":
		var d struct {
			Message Message `json:"message"`
		}
		if err := json.Unmarshal(f.Data, &d); err != nil || d.Message.ChatID == 0 || d.Message.Rev <= 0 {
			s.opts.Logf("session: bad %s frame: %s", f.Type, f.Data)
			return false
		}
		s.mu.Lock()
		s.changeLocked(Change{ChatID: d.Message.ChatID, Seq: d.Message.Seq, Rev: d.Message.Rev, Message: &d.Message})
		s.mu.Unlock()
	case "reaction.updated":
		var d ReactionUpdate
		if err := json.Unmarshal(f.Data, &d); err != nil || d.ChatID == 0 || d.Rev <= 0 {
			s.opts.Logf("session: bad %s frame: %s", f.Type, f.Data)
			return false
		}
		s.mu.Lock()
		s.changeLocked(Change{ChatID: d.ChatID, Seq: d.Seq, Rev: d.Rev, Reaction: &d})
		s.mu.Unlock()
	case "chat.removed":
		var d struct {
			ChatID int64 `json:"chat_id"`
		}
		if json.Unmarshal(f.Data, &d) == nil {
			s.mu.Lock()
			delete(s.chats, d.ChatID)
			s.mu.Unlock()
		}
	}
	return false
}

// acceptLocked takes a message from any source and delivers what now follows in order.
func (s *Session) acceptLocked(m Message) {
	c := s.chats[m.ChatID]
	if c == nil {
		// A chat we have not heard of yet (its chat.added may follow): start here.
		c = &chatCursor{seq: m.Seq - 1, target: m.Seq - 1, pending: map[int64]Message{}}
		s.chats[m.ChatID] = c
	}
	if m.Seq > c.target {
		c.target = m.Seq
	}
	if _, held := c.pending[m.Seq]; held || m.Seq <= c.seq {
		s.stats.Duplicates++
		return
	}
	if m.Seq != c.seq+1 {
		s.stats.OutOfOrder++
		c.pending[m.Seq] = m
		if c.behind.IsZero() {
			c.behind = time.Now()
		}
		return
	}
	var ready []delivery
	ready = append(ready, delivery{msg: m})
	c.seq = m.Seq
	for {
		next, ok := c.pending[c.seq+1]
		if !ok {
			break
		}
		delete(c.pending, next.Seq)
		ready = append(ready, delivery{msg: next})
		c.seq = next.Seq
	}
	for _, d := range ready {
		if d.msg.Rev > c.revs[d.msg.Seq] {
			if c.revs == nil {
				c.revs = map[int64]int64{}
			}
			c.revs[d.msg.Seq] = d.msg.Rev
		}
	}
	if c.seq >= c.target && len(c.pending) == 0 {
		c.behind = time.Time{}
	} else {
		c.behind = time.Now() // progress: the clock of the gap starts again
	}
	s.stats.Delivered += len(ready)
	s.push(ready...)
}

// delivery is one thing for the deliver loop: a message, or a change of one.
type delivery struct {
	msg    Message
	change *Change
}

func (s *Session) push(ds ...delivery) {
	s.outMu.Lock()
	s.outbox = append(s.outbox, ds...)
	s.outMu.Unlock()
	select {
	case s.outC <- struct{}{}:
	default:
	}
}

// hand gives a batch of the outbox to OnMessage and OnChange.
func (s *Session) hand(batch []delivery) {
	for _, d := range batch {
		switch {
		case d.change != nil:
			if s.opts.OnChange != nil {
				s.opts.OnChange(*d.change)
			}
		case s.opts.OnMessage != nil:
			s.opts.OnMessage(d.msg)
		}
	}
}

// changeLocked takes a change (message.updated, reaction.updated). The server sends a chat's
// changes in rev order, each after its message, but a sync may bring, after changes that came
// live, the whole state of a message changed before them (compacted, with a lower rev than
// the chat's last), or again with the same rev: so what decides is the rev of the message.
func (s *Session) changeLocked(ch Change) {
	c := s.chats[ch.ChatID]
	if c == nil {
		return // a chat we do not follow (any more)
	}
	if p, held := c.pending[ch.Seq]; held {
		// The message waits for a gap to fill: the change goes into it.
		if p.Rev < ch.Rev || (p.Rev == ch.Rev && ch.Message != nil) {
			c.pending[ch.Seq] = ch.Apply(p)
		}
		return
	}
	if ch.Seq > c.seq {
		s.opts.Logf("session: change of chat %d seq %d rev %d before its message", ch.ChatID, ch.Seq, ch.Rev)
		s.stats.StaleChange++
		return
	}
	cur := c.revs[ch.Seq]
	switch {
	case ch.Rev < cur, ch.Rev == cur && ch.Message == nil:
		s.stats.StaleChange++
		return
	case ch.Rev == cur:
		s.stats.Repeats++
	}
	if c.revs == nil {
		c.revs = map[int64]int64{}
	}
	c.revs[ch.Seq] = ch.Rev
	c.rev = max(c.rev, ch.Rev)
	if !c.syncing {
		c.safeRev = c.rev
	}
	s.stats.Changes++
	s.push(delivery{change: &ch})
}

// checkGaps sends chats that have been behind for GapTimeout to REST.
func (s *Session) checkGaps() {
	if s.opts.GapTimeout < 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, c := range s.chats {
		if !c.behind.IsZero() && !c.filling && time.Since(c.behind) > s.opts.GapTimeout {
			s.stats.GapFills++
			s.startFillLocked(id)
		}
	}
}

// startFillLocked reads a chat's messages after its cursor over REST until it is up to date,
// in a goroutine that ends then, on an error (checkGaps tries again later), or with Run.
func (s *Session) startFillLocked(chatID int64) {
	c := s.chats[chatID]
	if c == nil || c.filling || s.ended || s.fillCtx == nil {
		return
	}
	c.filling = true
	s.fills.Add(1)
	ctx := s.fillCtx
	go func() {
		defer s.fills.Done()
		s.fill(ctx, chatID)
	}()
}

func (s *Session) fill(ctx context.Context, chatID int64) {
	defer func() {
		s.mu.Lock()
		if c := s.chats[chatID]; c != nil {
			c.filling = false
			if !c.behind.IsZero() {
				c.behind = time.Now()
			}
		}
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		c := s.chats[chatID]
		if c == nil || s.ended {
			s.mu.Unlock()
			return
		}
		after := c.seq
		s.mu.Unlock()

		var page struct {
			Messages []Message `json:"messages"`
			HasMore  bool      `json:"has_more"`
		}
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := s.c.Do(rctx, http.MethodGet, fmt.Sprintf("/api/v1/chats/%d/messages?after_seq=%d&limit=200", chatID, after), nil, &page)
		cancel()
		if err != nil {
			s.opts.Logf("session: read chat %d after %d: %v", chatID, after, err)
			return // checkGaps tries again
		}
		s.mu.Lock()
		s.stats.RESTPages++
		for _, m := range page.Messages {
			if m.ChatID == 0 {
				m.ChatID = chatID
			}
			s.acceptLocked(m)
		}
		c = s.chats[chatID]
		done := !page.HasMore || len(page.Messages) == 0 || c == nil || (c.seq >= c.target && len(c.pending) == 0)
		s.mu.Unlock()
		if done {
			return
		}
	}
}

// deliverLoop hands the outbox to OnMessage, in order, until stop (after draining it).
func (s *Session) deliverLoop(stop <-chan struct{}) {
	for {
		s.outMu.Lock()
		batch := s.outbox
		s.outbox = nil
		s.outMu.Unlock()
		s.hand(batch)
		if len(batch) > 0 {
			continue
		}
		select {
		case <-s.outC:
		case <-stop:
			s.outMu.Lock()
			rest := s.outbox
			s.outbox = nil
			s.outMu.Unlock()
			s.hand(rest)
			return
		}
	}
}

// SendError is a send refused for good (not a failure that a retry could fix).
type SendError struct {
	Code    string
	Message string
}

func (e *SendError) Error() string { return e.Code + ": " + e.Message }

// Send sends body to a chat under a new client_id and returns the stored message once
// acknowledged; see SendID.
func (s *Session) Send(ctx context.Context, chatID int64, body string) (Message, error) {
	return s.SendID(ctx, chatID, s.NewClientID(), body)
}

// retryable tells the error codes of a message.send that a retry may fix.
func retryable(code string) bool {
	switch code {
	case "invalid", "not_found", "not_member", "forbidden", "unknown_type", "too_large", "unauthenticated", "mention_all_refused":
		return false
	}
	return true // unavailable, rate_limited, internal, and codes this client does not know
}

// SendID sends body to a chat under clientID and returns the stored message once the server
// acknowledges it. Until then it sends again with the same clientID (so that the server
// stores it once): after a disconnect, on the next connection; after an error the server
// may recover from (unavailable, rate_limited), after a backoff; after SendTimeout without an
// answer, on the same connection. It gives up only when ctx ends, or with a *SendError when
// the server refuses the message for good. A message may be stored although SendID returned
// an error; a later SendID with the same clientID returns it.
func (s *Session) SendID(ctx context.Context, chatID int64, clientID, body string) (Message, error) {
	return s.send(ctx, map[string]any{"chat_id": chatID, "client_id": clientID, "body": body})
}

// SendMention sends body mentioning m under a new client_id, as Send does.
func (s *Session) SendMention(ctx context.Context, chatID int64, body string, m Mention) (Message, error) {
	data := map[string]any{"chat_id": chatID, "client_id": s.NewClientID(), "body": body}
	if len(m.Users) > 0 {
		data["mentions"] = m.Users
	}
	if m.All {
		data["mention_all"] = true
	}
	return s.send(ctx, data)
}

// send sends a message.send frame's data until the server acknowledges it; see SendID.
func (s *Session) send(ctx context.Context, data map[string]any) (Message, error) {
	attempt := 0
	for {
		live, err := s.waitLive(ctx)
		if err != nil {
			return Message{}, err
		}
		ref := "send-" + strconv.FormatUint(s.refs.Add(1), 10)
		ch := make(chan sendResult, 1)
		s.mu.Lock()
		s.waiters[ref] = ch
		s.stats.Sent++
		if attempt > 0 {
			s.stats.Resends++
		}
		s.mu.Unlock()
		attempt++
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = live.conn.Send(wctx, "message.send", ref, data)
		cancel()
		if err != nil {
			s.dropWaiter(ref)
			select { // the connection is going away: wait for the next one
			case <-live.done:
			case <-ctx.Done():
				return Message{}, ctx.Err()
			case <-time.After(s.backoff(0)):
			}
			continue
		}
		timer := time.NewTimer(s.opts.SendTimeout)
		select {
		case res := <-ch:
			timer.Stop()
			if res.code == "" {
				return res.msg, nil
			}
			if !retryable(res.code) {
				return Message{}, &SendError{Code: res.code, Message: res.text}
			}
			wait := time.NewTimer(s.backoff(min(attempt-1, 10)))
			select {
			case <-wait.C:
			case <-ctx.Done():
				wait.Stop()
				return Message{}, ctx.Err()
			}
		case <-live.done:
			timer.Stop()
			s.dropWaiter(ref)
		case <-timer.C:
			s.dropWaiter(ref)
		case <-ctx.Done():
			timer.Stop()
			s.dropWaiter(ref)
			return Message{}, ctx.Err()
		}
	}
}

func (s *Session) dropWaiter(ref string) {
	s.mu.Lock()
	delete(s.waiters, ref)
	s.mu.Unlock()
}
