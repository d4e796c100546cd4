package hub

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/wschat/chat/internal/chat"
)

// Close codes of API.md.
const (
	closeRestart  = websocket.StatusServiceRestart // 1012: reconnect now, with jitter
	closeTryLater = websocket.StatusTryAgainLater  // 1013: could not keep up; reconnect and sync
	closePolicy   = websocket.StatusPolicyViolation
	closeRevoked  = websocket.StatusCode(4001) // session revoked or token expired
)

// maxPresence bounds the presence states a connection remembers (to send each change once);
// past it the memory is dropped, which at worst repeats a presence frame.
const maxPresence = 10_000

// conn is one device's WebSocket. Its reader is the goroutine that the HTTP handler starts
// (serve); its writer runs while frames wait (writer.go); nothing else writes messages to the
// socket.
type conn struct {
	h         *Hub
	id        string
	userID    int64
	sessionID int64
	ws        *websocket.Conn
	ctx       context.Context
	cancel    context.CancelFunc
	nc        *corkConn // the socket under ws; nil if the handshake did not go through hijacker
	out       *outbox
	pingMu    sync.Mutex
	pinger    *time.Timer
	closeOnce sync.Once

	mu       sync.Mutex
	streams  map[int64]*stream
	presence map[int64]bool // last presence sent per user, to send each change once
	catching bool           // a catch-up goroutine runs
	// settingUp holds live messages while hello is built: the hello's last seqs decide which
	// of them are history and which follow it (finishSetup).
	settingUp bool
}

// stream is a connection's position in one chat.
type stream struct {
	sent   int64              // every message up to this seq has been sent (or acked)
	base   int64              // up to this seq the messages are history: not sent on this connection
	acked  map[int64]struct{} // seqs answered with message.ack, beyond sent
	paused bool               // a catch-up or sync is filling a gap: hold live messages
	held   []heldMsg
	lag    bool // needs a catch-up from the store
}

type heldMsg struct {
	seq   int64
	frame []byte
	own   bool
}

// enqueue queues a frame without ever blocking: a client too slow to take its frames is
// dropped with 1013 and will sync after reconnecting.
func (c *conn) enqueue(typ string, frame []byte) {
	if len(frame) == 0 {
		return
	}
	switch c.out.push(frame) {
	case pushStartWriter:
		go c.writer()
		fallthrough
	case pushQueued:
		c.h.stats.FramesOut.Add(typ)
	case pushFull:
		c.h.stats.SlowDropped.Add(1)
		c.close(closeTryLater, "too slow: reconnect and sync")
	}
}

// close ends the connection with a code; the first call wins.
func (c *conn) close(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		// Close first, so that the close frame goes out; cancelling the context of a pending
		// Read would drop the TCP connection without one.
		go func() {
			c.ws.Close(code, reason)
			c.cancel()
		}()
	})
}

// follow starts (or moves forward) the connection's stream of a chat: every message up to
// lastSeq is known to the client.
func (c *conn) follow(chatID, lastSeq int64) {
	c.mu.Lock()
	if st, ok := c.streams[chatID]; !ok {
		c.streams[chatID] = &stream{sent: lastSeq, base: lastSeq, paused: c.settingUp}
	} else if lastSeq > st.sent && !st.paused {
		st.sent, st.base = lastSeq, lastSeq
	}
	c.mu.Unlock()
}

// finishSetup ends the hello: every message up to a chat's last seq in it is history; those
// held meanwhile that come after it are released in order (a gap is healed from the store).
// Without the hold, a message committed between the reads of the chats that build the hello
// would be both counted in hello's last seq and delivered live.
func (c *conn) finishSetup(last map[int64]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settingUp = false
	for id, st := range c.streams {
		st.sent = max(st.sent, last[id])
		st.base = max(st.base, last[id])
		if st.lag { // a catch-up owns the stream; it starts from sent and resumes it
			continue
		}
		c.releaseHeldLocked(st)
		if st.lag {
			c.startCatchUpLocked()
		}
	}
}

// catchUpChat reads a chat's messages after the stream's position from the store, for what was
// published before the chat's subscription was live.
func (c *conn) catchUpChat(chatID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.streams[chatID]; st != nil {
		st.paused, st.lag = true, true
		c.startCatchUpLocked()
	}
}

func (c *conn) unfollow(chatID int64) {
	c.mu.Lock()
	delete(c.streams, chatID)
	c.mu.Unlock()
}

// deliverMessage sends a chat's message.new in seq order, exactly once. own marks the event of
// a message this connection sent itself (it got message.ack instead).
func (c *conn) deliverMessage(chatID, seq int64, frame []byte, own bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.streams[chatID]
	if st == nil || seq <= st.sent {
		return
	}
	if !st.paused && seq == st.sent+1 {
		c.advanceLocked(st, seq, frame, own)
		return
	}
	// A gap (or a catch-up in progress): hold it and let the store fill in what is missing.
	if len(st.held) >= c.h.opts.MaxPending {
		c.close(closeTryLater, "too far behind: reconnect and sync")
		return
	}
	st.held = append(st.held, heldMsg{seq, frame, own})
	if !st.paused {
		st.paused, st.lag = true, true
		c.h.stats.GapsHealed.Add(1)
		c.startCatchUpLocked()
	}
}

// advanceLocked sends one message that is next in line.
func (c *conn) advanceLocked(st *stream, seq int64, frame []byte, own bool) {
	st.sent = seq
	if _, ok := st.acked[seq]; ok {
		delete(st.acked, seq)
		own = true
	}
	if !own {
		c.h.stats.Delivered.Add(1)
		c.enqueue(chat.EventMessageNew, frame)
	}
}

// markAcked records that this connection got message.ack for seq, so that neither the live
// event nor a catch-up sends it again.
func (c *conn) markAcked(chatID, seq int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.streams[chatID]
	if st == nil || seq <= st.sent {
		return
	}
	if st.acked == nil {
		st.acked = map[int64]struct{}{}
	}
	st.acked[seq] = struct{}{}
	if len(st.acked) >= c.h.opts.MaxPending && !st.paused {
		// The live events of this connection's own messages are not arriving (the broker
		// loses them): read them from the store instead, which consumes the acks.
		st.paused, st.lag = true, true
		c.startCatchUpLocked()
	}
}

func (c *conn) deliverPresence(userID int64, online bool, frame []byte) {
	c.mu.Lock()
	prev, known := c.presence[userID]
	if !known && len(c.presence) >= maxPresence {
		clear(c.presence)
	}
	if c.presence == nil { // made on first use: most connections never get a presence frame
		c.presence = map[int64]bool{}
	}
	c.presence[userID] = online
	c.mu.Unlock()
	if !known || prev != online {
		c.enqueue(chat.EventPresence, frame)
	}
}

// catchUpAll marks every chat of the connection for a catch-up (after a broker reconnect).
func (c *conn) catchUpAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.streams {
		st.paused, st.lag = true, true
	}
	c.startCatchUpLocked()
}

func (c *conn) startCatchUpLocked() {
	if c.catching {
		return
	}
	c.catching = true
	go c.catchUp()
}

// catchUp fills every lagging stream from the store, then releases what it held, in order.
func (c *conn) catchUp() {
	backoff := 100 * time.Millisecond
	attempts := 0
	for {
		c.mu.Lock()
		if c.ctx.Err() != nil {
			c.catching = false
			c.mu.Unlock()
			return
		}
		var chatID, after int64
		for id, st := range c.streams {
			if st.lag {
				chatID, after = id, st.sent
				break
			}
		}
		if chatID == 0 {
			c.catching = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()

		page, err := c.h.fetch(c.ctx, chatID, after, 0)
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			c.h.log.Warn("catch-up from store", "chat_id", chatID, "err", err)
			select {
			case <-time.After(backoff):
			case <-c.ctx.Done():
				return
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond

		c.mu.Lock()
		st := c.streams[chatID]
		stuck := false
		if st != nil {
			for _, m := range page.msgs {
				if m.seq == st.sent+1 {
					c.advanceLocked(st, m.seq, m.frame, false)
				}
			}
			if !page.more {
				c.releaseHeldLocked(st)
			}
			stuck = st.lag && st.sent == after
		}
		c.mu.Unlock()
		if stuck {
			// The store does not show a message that the broker announced: it cannot happen
			// with one database, so wait a little, and give up on the connection if it lasts.
			if attempts++; attempts > 20 {
				c.close(closeTryLater, "could not heal a gap: reconnect and sync")
				return
			}
			select {
			case <-time.After(backoff):
			case <-c.ctx.Done():
				return
			}
			backoff = min(backoff*2, time.Second)
		} else {
			attempts = 0
		}
	}
}

// releaseHeldLocked sends the held live messages that now follow in order and ends the pause;
// if a gap remains (the store had not yet shown a message), the stream stays lagging.
func (c *conn) releaseHeldLocked(st *stream) {
	slices.SortFunc(st.held, func(a, b heldMsg) int { return int(a.seq - b.seq) })
	rest := st.held[:0]
	for _, m := range st.held {
		switch {
		case m.seq <= st.sent:
		case m.seq == st.sent+1:
			c.advanceLocked(st, m.seq, m.frame, m.own)
		default:
			rest = append(rest, m)
		}
	}
	st.held = rest
	st.lag = len(rest) > 0
	st.paused = st.lag
}

// fetched is a page of messages read from the store, encoded once as message.new frames and
// shared by every connection that asked for the same page at the same time.
type fetched struct {
	msgs []fetchedMsg
	more bool
}

type fetchedMsg struct {
	seq   int64
	frame []byte
}

// fetch reads the messages of a chat after a seq (below before, if set), coalescing identical
// concurrent reads: after a broker reconnect a thousand connections of one chat cost one query.
func (h *Hub) fetch(ctx context.Context, chatID, after, before int64) (*fetched, error) {
	key := chatTopic(chatID) + "/" + itoa(after) + "/" + itoa(before)
	v, err, _ := h.fetches.Do(key, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		msgs, more, err := h.store.History(ctx, chat.HistoryQuery{ChatID: chatID, After: after, HasAfter: true, Before: before, Limit: h.opts.SyncLimit})
		if err != nil {
			return nil, err
		}
		out := &fetched{more: more, msgs: make([]fetchedMsg, len(msgs))}
		for i, m := range msgs {
			f, err := encodeFrame(chat.EventMessageNew, nil, chat.MessageData{Message: m})
			if err != nil {
				return nil, err
			}
			out.msgs[i] = fetchedMsg{seq: m.Seq, frame: f}
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*fetched), nil
}
