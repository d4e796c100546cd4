package hub

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// The broker delivers at most once (Redis Pub/Sub keeps nothing), and a connection heals a
// missing event only when a later one of the same chat shows the gap. An event lost with
// nothing after it would stay missing until the client reconnects: the newest edit of a chat
// that then goes quiet, committed by an instance that stopped before its publish (a crash, or
// a request that outlasted a graceful stop's grace), or published while Redis restarted. So
// every Options.AuditEvery the hub reads the heads (last seq, last rev) of the chats its
// connections follow, and catches up from the store every stream still behind the heads it
// read at the previous audit: anything committed that long ago has had time to arrive.
// Centrifuge's position check does the same for its streams.

// auditLoop runs the audits until Shutdown.
func (h *Hub) auditLoop() {
	t := time.NewTicker(h.opts.AuditEvery)
	defer t.Stop()
	var prev map[int64]chat.ChatHead
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		prev = h.audit(prev)
	}
}

// audit catches up the streams behind prev, the heads read at the previous audit, and
// returns the heads as they are now, for the next one (nil when they could not be read).
func (h *Hub) audit(prev map[int64]chat.ChatHead) map[int64]chat.ChatHead {
	h.mu.Lock()
	ids := slices.Collect(maps.Keys(h.chats))
	var all []*conn
	if len(prev) > 0 {
		for _, u := range h.users {
			for c := range u.conns {
				all = append(all, c)
			}
		}
	}
	h.mu.Unlock()
	if len(all) > 0 {
		streams, conns := 0, 0
		for _, c := range all {
			if n := c.catchUpBehind(prev); n > 0 {
				streams += n
				conns++
			}
		}
		if streams > 0 {
			h.stats.AuditHeals.Add(int64(streams))
			h.log.Info("audit: events the broker lost, caught up from the store", "connections", conns, "streams", streams)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.opts.AuditEvery)
	defer cancel()
	heads, err := h.store.ChatHeads(ctx, ids)
	if err != nil {
		if h.ctx.Err() == nil {
			h.log.Warn("audit: read the chats' heads", "chats", len(ids), "err", err)
		}
		return nil
	}
	return heads
}

// catchUpBehind starts a catch-up of each of the connection's streams that has not been sent
// every message and change up to its chat's head, and returns how many it started. A stream
// that is filling a gap already, or whose hello is still being built, is left alone; so is
// one caught up for the same head before (were the store to show a change it cannot send,
// the connection would not read it again at every audit).
func (c *conn) catchUpBehind(heads map[int64]chat.ChatHead) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.settingUp || c.ctx.Err() != nil {
		return 0
	}
	n := 0
	for id, st := range c.streams {
		head, ok := heads[id]
		if !ok || st.paused || st.lag || (st.sent >= head.Seq && st.rev >= head.Rev) || st.audited == head {
			continue
		}
		st.audited = head
		st.paused, st.lag = true, true
		n++
	}
	if n > 0 {
		c.startCatchUpLocked()
	}
	return n
}
