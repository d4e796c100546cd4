package hub

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// Typing in a group of more than Options.PresenceGroupMax members reaches only the connections
// that show the chat (chat.open), and is collected per chat for Options.PresenceEvery: one
// typing frame names everyone who typed meanwhile (user_ids; user_id is the first of them, for
// a client that reads only it). A hundred people typing in a group of thousands then cost a
// frame per open connection per interval, not a frame per member per keystroke burst. Private
// chats and small groups keep one typing frame per typist to every member.

// typists collects a big group's typing until its frame goes out.
type typists struct {
	mu    sync.Mutex
	chats map[int64]*typingBatch
}

type typingBatch struct {
	users []int64
	at    int64 // the latest seq the typing followed
}

// typingBatchData is a big group's typing frame.
type typingBatchData struct {
	ChatID  int64   `json:"chat_id"`
	UserID  int64   `json:"user_id"`
	UserIDs []int64 `json:"user_ids"`
}

// add records a typing event of a big group; the first of an interval arms its flush.
func (t *typists) add(h *Hub, e *envelope) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.chats[e.ChatID]
	if b == nil {
		if t.chats == nil {
			t.chats = map[int64]*typingBatch{}
		}
		b = &typingBatch{}
		t.chats[e.ChatID] = b
		chatID := e.ChatID
		time.AfterFunc(h.opts.PresenceEvery, func() { h.flushTyping(chatID) })
	}
	if !slices.Contains(b.users, e.ExceptUser) {
		b.users = append(b.users, e.ExceptUser)
	}
	b.at = max(b.at, e.At)
}

// flushTyping sends a big group's collected typing to the connections that show it, each
// without its own user.
func (h *Hub) flushTyping(chatID int64) {
	h.typists.mu.Lock()
	b := h.typists.chats[chatID]
	delete(h.typists.chats, chatID)
	h.typists.mu.Unlock()
	if b == nil || h.ctx.Err() != nil {
		return
	}
	frames := map[int64][]byte{} // by the recipient's user, when they are among the typists
	all, err := encodeFrame(chat.EventTyping, nil, typingBatchData{ChatID: chatID, UserID: b.users[0], UserIDs: b.users})
	if err != nil {
		return
	}
	for _, c := range h.openConns(chatID) {
		f := all
		if slices.Contains(b.users, c.userID) {
			var ok bool
			if f, ok = frames[c.userID]; !ok {
				others := slices.DeleteFunc(slices.Clone(b.users), func(id int64) bool { return id == c.userID })
				if len(others) > 0 {
					f, _ = encodeFrame(chat.EventTyping, nil, typingBatchData{ChatID: chatID, UserID: others[0], UserIDs: others})
				} else {
					f = nil
				}
				frames[c.userID] = f
			}
		}
		if f != nil {
			c.deliverEvent(chatID, item{seq: b.at, event: true, typ: chat.EventTyping, frame: f}, true)
		}
	}
}

// openConns returns the local connections that show a chat.
func (h *Hub) openConns(chatID int64) []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	o := h.opens[chatID]
	out := make([]*conn, 0, len(o))
	for c := range o {
		out = append(out, c)
	}
	return out
}

// setOpen records the chat a connection shows (0: none). Like watch, it runs on the reader.
func (h *Hub) setOpen(c *conn, chatID int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closeOpenLocked(c)
	c.open = chatID
	if chatID == 0 {
		return
	}
	o := h.opens[chatID]
	if o == nil {
		o = map[*conn]struct{}{}
		h.opens[chatID] = o
	}
	o[c] = struct{}{}
}

func (h *Hub) closeOpenLocked(c *conn) {
	if o := h.opens[c.open]; o != nil {
		delete(o, c)
		if len(o) == 0 {
			delete(h.opens, c.open)
		}
	}
	c.open = 0
}

// forgetConnLocked drops a closing connection's presence subscriptions and open chat.
func (h *Hub) forgetConnLocked(c *conn) {
	h.closeOpenLocked(c)
	h.unwatchLocked(c)
}

// chatOpen answers chat.open: the chat the client shows, for a big group's typing. It must be
// a chat of the caller's (not_found or not_member otherwise); 0 or null closes it. No answer
// on success: a ping after it is the barrier.
func (c *conn) chatOpen(p chat.Principal, ref json.RawMessage, chatID int64) {
	if chatID < 0 {
		c.sendError(ref, chat.CodeInvalid, "chat_id must be a chat id, or 0 or null for none")
		return
	}
	if chatID != 0 && !c.follows(chatID) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), frameTimeout)
		defer cancel()
		if err := c.h.svc.IsMember(ctx, p, chatID); err != nil {
			c.fail(p, ref, "chat.open", err)
			return
		}
	}
	c.h.setOpen(c, chatID)
}
