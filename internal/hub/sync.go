package hub

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/wschat/chat/internal/chat"
)

// maxSyncChats bounds the cursors of one sync frame.
const maxSyncChats = 1000

// maxSyncs bounds a connection's sync frames that run or wait: one runs, one may wait.
const maxSyncs = 2

// startSync runs a sync frame off the reader, so that the connection's other frames are
// answered meanwhile; a connection's syncs run one at a time, in order.
func (c *conn) startSync(p chat.Principal, ref json.RawMessage, cursors map[string]syncCursor) {
	if c.syncs.Add(1) > maxSyncs {
		c.syncs.Add(-1)
		c.sendError(ref, chat.CodeRateLimited, "a sync is running and another waits; send the next after a sync.done")
		return
	}
	op := c.ops.begin()
	c.work.Add(1)
	prev, done := c.syncTail, make(chan struct{})
	c.syncTail = done
	go func() {
		defer c.work.Done()
		// A sync stops counting before its last frame goes out: a client that sends the next
		// sync after sync.done (or an error that ends one) must not find it still counted.
		ended := sync.OnceFunc(func() { c.syncs.Add(-1) })
		defer ended()
		defer c.ops.end(op)
		defer close(done)
		if prev != nil {
			<-prev // a mutex would not keep the order: two syncs sent together came back reversed
		}
		c.sync(ref, cursors, ended)
	}()
}

// sync sends, per chat, the messages after the client's cursor that this connection has not
// been sent live (up to the chat's last seq in hello, or when it was followed), in seq order,
// then sync.done. It reads them a page at a time and waits for room in the connection's
// budget before each page, so a client that does not read holds at most its budget and one
// page, whatever it asks for. A cursor of a chat the connection does not follow costs no
// query: the connection follows exactly its user's chats, so such a chat is answered as one
// that does not exist (one error frame names them all).
//
// A cursor with a rev asks for changes too: after the messages, the latest state of each
// message changed after that rev, as one message.updated each (changesSince).
//
// ended is called before the frame that ends the answer (sync.done, or an error that refuses
// the whole sync).
func (c *conn) sync(ref json.RawMessage, cursors map[string]syncCursor, ended func()) {
	if len(cursors) > maxSyncChats {
		ended()
		c.sendError(ref, chat.CodeInvalid, fmt.Sprintf("at most %d chats per sync", maxSyncChats))
		return
	}
	type cursor struct {
		chatID int64
		syncCursor
	}
	list := make([]cursor, 0, len(cursors))
	for k, cur := range cursors {
		// Only the canonical spelling of an id: "02" and "+2" would sync chat 2 twice.
		id, err := strconv.ParseInt(k, 10, 64)
		if err != nil || id <= 0 || strconv.FormatInt(id, 10) != k {
			ended()
			c.sendError(ref, chat.CodeInvalid, "cursor keys must be chat ids, got "+strconv.Quote(k))
			return
		}
		if cur.Seq < 0 || cur.Rev < 0 {
			ended()
			c.sendError(ref, chat.CodeInvalid, "cursor of chat "+k+" must not be negative")
			return
		}
		list = append(list, cursor{id, cur})
	}
	slices.SortFunc(list, func(a, b cursor) int { return int(a.chatID - b.chatID) })
	var unknown []int64
	for _, cs := range list {
		id, cur := cs.chatID, cs.Seq
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
		revUpto := min(st.rev, st.revBas)
		seen := st.rev // changes of these messages may have been sent live already (see fetch)
		st.paused = true
		c.mu.Unlock()

		sent := 0
		var avg int64
		from := cur
		var sentRevs map[int64]int64 // the rev of each changed message sent here, by seq
		for cur < upto && sent < c.h.opts.SyncLimit {
			if c.out.waitRoom(c.ctx, 0) != nil {
				c.resume(id)
				return // the connection is ending
			}
			page, err := c.h.fetch(c.ctx, id, cur, upto+1, seen, min(c.out.pageFor(avg), c.h.opts.SyncLimit-sent))
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
				if m.stateRev > 0 {
					if sentRevs == nil {
						sentRevs = map[int64]int64{}
					}
					sentRevs[m.seq] = m.stateRev
				}
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
		if cs.WithRev && c.changesSince(ref, id, cs.Rev, revUpto, from, cur, sentRevs) != nil {
			c.resume(id)
			return // the connection is ending
		}
		c.resume(id)
	}
	if len(unknown) > 0 {
		c.sendError(ref, chat.CodeNotFound, unknownChats(unknown))
	}
	ended()
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

// changesSince sends, for a sync, the latest state of each message of a chat changed after
// rev, in rev order, as message.updated: of the messages the client had (seq up to known)
// and of those this sync sent (up to sentUpto) in an older state than the change's. A message
// after sentUpto is the client's to read over REST (sync.truncated) or came live, with its
// changes after it. Changes up to revUpto (the rev of the connection's hello) are history.
//
// A message's state is its latest: one changed before the hello and again after it comes
// with the later rev, and must come all the same, or the change before the hello (which
// never comes live) is lost. A change after revUpto may be sent only once the stream has
// sent every message that the read's changes followed, which proves the user a member when
// they were made: so the sync first moves the stream up to there, reading the messages it
// lacks from the store (as a catch-up does). The live stream may then repeat a change sent
// here, with the same rev; clients apply a message.updated whose rev is not below the
// message's (docs/PROTOCOL.md).
func (c *conn) changesSince(ref json.RawMessage, chatID, rev, revUpto, known, sentUpto int64, sentRevs map[int64]int64) error {
	var avg int64
	for {
		if err := c.out.waitRoom(c.ctx, 0); err != nil {
			return err
		}
		page, err := c.h.fetchChanges(c.ctx, chatID, rev, revUpto, c.out.pageFor(avg))
		if err != nil {
			if c.ctx.Err() != nil {
				return err
			}
			c.sendError(ref, chat.CodeUnavailable, "could not read the changes of chat "+strconv.FormatInt(chatID, 10)+"; sync it again")
			return nil
		}
		c.mu.Lock()
		st := c.streams[chatID]
		proven := st != nil && page.lastSeq <= st.sent
		c.mu.Unlock()
		if st == nil {
			return nil // the membership ended meanwhile
		}
		if !proven && len(page.msgs) > 0 && page.msgs[len(page.msgs)-1].rev > revUpto {
			ok, err := c.advanceTo(chatID, page.lastSeq)
			if err != nil {
				if c.ctx.Err() != nil {
					return err
				}
				c.sendError(ref, chat.CodeUnavailable, "could not read chat "+strconv.FormatInt(chatID, 10)+"; sync it again")
				return nil
			}
			if !ok {
				return nil // the membership ended in the messages read
			}
		}
		var frames [][]byte
		var bytes int64
		for _, m := range page.msgs {
			if m.seq <= known || (m.seq <= sentUpto && m.rev > sentRevs[m.seq]) {
				frames = append(frames, m.frame)
				bytes += cost(m.frame)
			}
			rev = m.rev
		}
		if len(frames) > 0 {
			avg = bytes / int64(len(frames))
			c.h.stats.Changes.Add(int64(len(frames)))
			c.enqueueAll(chat.EventMessageUpdated, frames)
		}
		if !page.more || len(page.msgs) == 0 {
			return nil
		}
	}
}

// advanceTo moves a chat's stream, paused by a sync, up to seq: the messages it has not sent
// are read from the store and sent, as a catch-up would. It reports false if the stream ended
// on the way (a system message that ends the user's membership).
func (c *conn) advanceTo(chatID, seq int64) (bool, error) {
	var avg int64
	for {
		c.mu.Lock()
		st := c.streams[chatID]
		if st == nil {
			c.mu.Unlock()
			return false, nil
		}
		after := st.sent
		c.mu.Unlock()
		if after >= seq {
			return true, nil
		}
		if err := c.out.waitRoom(c.ctx, 0); err != nil {
			return false, err
		}
		page, err := c.h.fetch(c.ctx, chatID, after, seq+1, 0, c.out.pageFor(avg))
		if err != nil {
			return false, err
		}
		if len(page.msgs) == 0 {
			return false, fmt.Errorf("chat %d: no messages after %d, although its last seq is %d", chatID, after, seq)
		}
		avg = page.bytes / int64(len(page.msgs))
		c.mu.Lock()
		st = c.streams[chatID]
		for _, m := range page.msgs {
			if st == nil {
				break
			}
			if m.seq == st.sent+1 && !c.advanceLocked(chatID, st, m) {
				st = nil
			}
		}
		c.mu.Unlock()
	}
}
