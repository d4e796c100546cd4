package hub

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/wschat/chat/internal/chat"
)

// maxSyncChats bounds the cursors of one sync frame.
const maxSyncChats = 1000

// maxSyncs bounds a connection's sync frames that run or wait: one runs, one may wait.
const maxSyncs = 2

// startSync runs a sync frame off the reader, so that the connection's other frames are
// answered meanwhile; a connection's syncs run one at a time, in order.
func (c *conn) startSync(p chat.Principal, ref json.RawMessage, cursors map[string]int64) {
	if c.syncs.Add(1) > maxSyncs {
		c.syncs.Add(-1)
		c.sendError(ref, chat.CodeRateLimited, "a sync is running and another waits; send the next after a sync.done")
		return
	}
	op := c.ops.begin()
	c.work.Add(1)
	go func() {
		defer c.work.Done()
		defer c.syncs.Add(-1)
		defer c.ops.end(op)
		c.syncMu.Lock()
		defer c.syncMu.Unlock()
		c.sync(ref, cursors)
	}()
}

// sync sends, per chat, the messages after the client's cursor that this connection has not
// been sent live (up to the chat's last seq in hello, or when it was followed), in seq order,
// then sync.done. It reads them a page at a time and waits for room in the connection's
// budget before each page, so a client that does not read holds at most its budget and one
// page, whatever it asks for. A cursor of a chat the connection does not follow costs no
// query: the connection follows exactly its user's chats, so such a chat is answered as one
// that does not exist (one error frame names them all).
func (c *conn) sync(ref json.RawMessage, cursors map[string]int64) {
	if len(cursors) > maxSyncChats {
		c.sendError(ref, chat.CodeInvalid, fmt.Sprintf("at most %d chats per sync", maxSyncChats))
		return
	}
	type cursor struct{ chatID, seq int64 }
	list := make([]cursor, 0, len(cursors))
	for k, cur := range cursors {
		// Only the canonical spelling of an id: "02" and "+2" would sync chat 2 twice.
		id, err := strconv.ParseInt(k, 10, 64)
		if err != nil || id <= 0 || strconv.FormatInt(id, 10) != k {
			c.sendError(ref, chat.CodeInvalid, "cursor keys must be chat ids, got "+strconv.Quote(k))
			return
		}
		if cur < 0 {
			c.sendError(ref, chat.CodeInvalid, "cursor of chat "+k+" must not be negative")
			return
		}
		list = append(list, cursor{id, cur})
	}
	slices.SortFunc(list, func(a, b cursor) int { return int(a.chatID - b.chatID) })
	var unknown []int64
	for _, cs := range list {
		id, cur := cs.chatID, cs.seq
		c.mu.Lock()
		st := c.streams[id]
		if st == nil {
			c.mu.Unlock()
			unknown = append(unknown, id)
			continue
		}
		// History only: what came after it was sent live on this connection already, and
		// sending it again would deliver it twice.
		upto := min(st.sent, st.base)
		st.paused = true
		c.mu.Unlock()

		sent := 0
		var avg int64
		for cur < upto && sent < c.h.opts.SyncLimit {
			if c.out.waitRoom(c.ctx, 0) != nil {
				c.resume(id)
				return // the connection is ending
			}
			page, err := c.h.fetch(c.ctx, id, cur, upto+1, min(c.out.pageFor(avg), c.h.opts.SyncLimit-sent))
			if err != nil {
				if c.ctx.Err() != nil {
					c.resume(id)
					return
				}
				c.sendError(ref, chat.CodeUnavailable, "could not read chat "+strconv.FormatInt(id, 10)+"; sync it again")
				break
			}
			if len(page.msgs) == 0 {
				break
			}
			frames := make([][]byte, len(page.msgs))
			for i, m := range page.msgs {
				frames[i] = m.frame
			}
			avg = page.bytes / int64(len(frames))
			c.h.stats.Delivered.Add(int64(len(frames)))
			c.enqueueAll(chat.EventMessageNew, frames)
			sent += len(frames)
			cur = page.msgs[len(page.msgs)-1].seq
			if !page.more {
				break
			}
		}
		if cur < upto && sent >= c.h.opts.SyncLimit {
			c.sendFrame("sync.truncated", ref, syncTruncatedData{ChatID: id, FromSeq: cur + 1})
		}
		c.resume(id)
	}
	if len(unknown) > 0 {
		c.sendError(ref, chat.CodeNotFound, unknownChats(unknown))
	}
	c.sendFrame("sync.done", ref, struct{}{})
}

// unknownChats names the chats of a sync that the connection does not follow.
func unknownChats(ids []int64) string {
	var b strings.Builder
	b.WriteString("not among your chats: ")
	for i, id := range ids {
		if i == 10 {
			fmt.Fprintf(&b, " and %d more", len(ids)-10)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("chat " + strconv.FormatInt(id, 10))
	}
	return b.String()
}

// resume ends a sync's pause of a chat and releases what arrived meanwhile.
func (c *conn) resume(chatID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.streams[chatID]
	if st == nil || st.lag { // a catch-up owns the pause
		return
	}
	c.releaseHeldLocked(chatID, st)
	if st.lag {
		c.startCatchUpLocked()
	}
}
