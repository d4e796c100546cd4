package hub

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// Frames answered off the reader. A connection's sends are pipelined: the reader queues each
// send behind its chat's others at once (so a connection's messages to a chat keep the order
// it sent them in) and goes on reading while it waits for the commit; each is acknowledged
// as it commits. Read marks run beside them. At most maxInFlight of a connection's frames are
// in progress; while they are, and while the bytes of the sends in flight would pass the
// connection's budget, the reader stops reading and TCP pushes back on the client.

// maxInFlight bounds a connection's frames in progress: sends waiting for their commit and
// read marks.
const maxInFlight = 32

// frameTimeout bounds a frame's work. A frame in progress finishes even if the connection
// closes meanwhile (a graceful shutdown): a send is stored and published; the client retries
// it elsewhere with the same client_id and gets the stored message back.
const frameTimeout = 10 * time.Second

// send queues a message.send and answers it (message.ack or error) when it commits.
func (c *conn) send(p chat.Principal, ref json.RawMessage, d sendData) {
	// A file in the answer takes a few hundred bytes (name, type, URLs).
	n := int64(len(d.Body)+len(d.ClientID)) + 256 + int64(len(d.FileIDs))*(512+chat.MaxFileNameChars*4)
	if c.out.reserve(c.ctx, n) != nil {
		return // the connection is ending
	}
	if !c.takeSlot() {
		c.out.release(n)
		return
	}
	op := c.ops.begin()
	c.work.Add(1)
	key := sendKey{d.ChatID, d.ClientID}
	c.sendBegins(key)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), frameTimeout)
	wait := c.h.svc.SendAsync(ctx, p, chat.SendInput{ChatID: d.ChatID, Body: d.Body, ClientID: d.ClientID,
		FileIDs: d.FileIDs, ReplyToSeq: d.ReplyToSeq, Mentions: d.Mentions, MentionAll: d.MentionAll, Conn: c.id})
	go func() {
		defer c.work.Done()
		defer c.ops.end(op)
		defer c.out.release(n)
		defer c.giveSlot()
		defer cancel()
		m, _, err := wait()
		if err != nil {
			c.sendFailed(key)
			c.fail(p, ref, "message.send", err)
			return
		}
		if f := c.h.afterCommit.Load(); f != nil {
			(*f)(m.ChatID, m.Seq)
		}
		c.markAcked(key, m.Seq)
		c.sendFrame("message.ack", ref, chat.MessageData{Message: m})
	}()
}

// read marks a chat read off the reader (d.Seq is set); the rate limit is taken in frame order.
func (c *conn) read(p chat.Principal, ref json.RawMessage, d readData) {
	if !c.takeSlot() {
		return
	}
	op := c.ops.begin()
	c.work.Add(1)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), frameTimeout)
	wait := c.h.svc.MarkReadAsync(ctx, p, d.ChatID, *d.Seq)
	go func() {
		defer c.work.Done()
		defer c.ops.end(op)
		defer c.giveSlot()
		defer cancel()
		if _, err := wait(); err != nil {
			c.fail(p, ref, "read", err)
		}
	}()
}

// typing tells a chat's other members that the user is typing. A chat the connection follows
// needs no query (the stream says the user is a member); any other is asked of the service,
// which answers not_found or not_member.
func (c *conn) typing(p chat.Principal, ref json.RawMessage, chatID int64) {
	c.mu.Lock()
	st := c.streams[chatID]
	var at int64
	if st != nil {
		at = st.sent
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), frameTimeout)
	defer cancel()
	if st != nil {
		c.h.svc.TypingMember(ctx, p, chatID, at)
		return
	}
	if err := c.h.svc.Typing(ctx, p, chatID); err != nil {
		c.fail(p, ref, "typing", err)
	}
}

// takeSlot waits for one of the connection's slots for frames in progress; it fails when the
// connection ends.
func (c *conn) takeSlot() bool {
	select {
	case c.inflight <- struct{}{}:
		return true
	case <-c.ctx.Done():
		return false
	}
}

func (c *conn) giveSlot() { <-c.inflight }

// fail answers a frame whose work failed with an error frame: the error's own code and
// message for a chat.Error, "unavailable" when the database could not answer in time, and
// "internal error" (logged) for anything else.
func (c *conn) fail(p chat.Principal, ref json.RawMessage, typ string, err error) {
	code := chat.ErrorCode(err)
	msg := "internal error"
	field := ""
	var e *chat.Error
	if !errors.As(err, &e) && code == chat.CodeUnavailable {
		e = chat.Unavailable(err, "the service is unavailable; try again")
	}
	if e != nil {
		msg, field = e.Message, e.Field
		if e.Cause != nil && c.ctx.Err() == nil {
			c.h.unavailableLog.Unavailable(c.ctx, c.h.log, "frame unavailable", e.Cause, "type", typ, "user_id", p.UserID)
		}
	} else if errors.Is(err, context.DeadlineExceeded) {
		code, msg = chat.CodeUnavailable, "the service is unavailable; try again"
	} else {
		c.h.log.Error("frame failed", "type", typ, "user_id", p.UserID, "err", err)
	}
	c.sendErrorAt(ref, code, msg, field)
}
