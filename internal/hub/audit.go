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
// every Options.AuditEvery the hub reads the heads (last seq, last rev, read-all mark) of the
// chats its connections follow, and catches up from the store every stream still behind the
// heads it read at the previous audit, or sends it the read-all mark it has not heard:
// anything committed that long ago has had time to arrive.
// Centrifuge's position check does the same for its streams.
//
// A chat.added or chat.removed lost the same way leaves no gap in any stream: the user's
// devices do not follow a chat they are in, or go on showing one they left. So every
// memberAuditEvery audits, and at the next audit after the broker resubscribed, the hub also
// reads which chats its users are members of and mends what differs from what their
// connections follow in two reads in a row (a chat.added on its way shows in one read only).
// Both lost (a leave's chat.removed and the comeback's chat.added), the store and the hub
// agree that the user is in the chat, while a device's stream of it ended at the leave and
// the device still shows it: such a stream (conn.ended) is a mismatch too, mended by telling
// the device of the leave and of the comeback, as the comeback's chat.added would have.
//
// A session's end (session.revoked: signed out, revoked from another device, a password
// change) reaches the instances the same way, and one lost left a revoked device connected,
// sending and reading, until its access token expired. So at the same audits the hub also
// reads which of its connections' sessions have ended, and closes those connections with 4001.

// memberAuditEvery is how many audits go by between two reads of the users' chats.
const memberAuditEvery = 6

// auditWarnEvery bounds the warnings of an audit's read that keeps failing (the database down):
// the first failure is logged, then one line this often saying how many failed, and a line when
// it reads again. A line every AuditEvery, three reads each, buried the outage's other lines.
const auditWarnEvery = time.Minute

// auditFailure is what the audit knows of one of its reads that has been failing.
type auditFailure struct {
	since, logged time.Time
	failed        int
}

// auditRead reports whether the audit's read what (err its error) went through, and logs its
// failures within auditWarnEvery. Only the audit's goroutine calls it.
func (h *Hub) auditRead(what string, err error, args ...any) bool {
	f := h.auditFailures[what]
	if err == nil {
		if f != nil {
			delete(h.auditFailures, what)
			h.log.Info("audit: "+what+" again", "failed_audits", f.failed, "for", time.Since(f.since).Round(time.Second))
		}
		return true
	}
	if h.ctx.Err() != nil {
		return false // shutting down: not a failure
	}
	now := time.Now()
	if f == nil {
		f = &auditFailure{since: now}
		h.auditFailures[what] = f
	}
	f.failed++
	if f.failed == 1 || now.Sub(f.logged) >= auditWarnEvery {
		f.logged = now
		h.log.Warn("audit: "+what, append(args, "failed_audits", f.failed, "err", err)...)
	}
	return false
}

// auditLoop runs the audits until Shutdown.
func (h *Hub) auditLoop() {
	t := time.NewTicker(h.opts.AuditEvery)
	defer t.Stop()
	var prev map[int64]chat.ChatHead
	var suspects map[mismatch]struct{}
	for n := 0; ; n++ {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		h.reconcile(h.subs.takeFailed()...) // what the broker failed to subscribe
		prev = h.audit(prev)
		deep := h.checkMembers.Swap(false) || n%memberAuditEvery == 0
		if deep || len(suspects) > 0 {
			suspects = h.auditMembers(suspects)
		}
		if deep {
			h.auditSessions()
		}
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
		streams, marks, conns := 0, 0, 0
		frames := readAllFrames{h: h}
		for _, c := range all {
			if s, m := c.catchUpBehind(prev, &frames); s+m > 0 {
				streams += s
				marks += m
				conns++
			}
		}
		if streams+marks > 0 {
			h.stats.AuditHeals.Add(int64(streams + marks))
			h.log.Info("audit: events the broker lost, caught up from the store", "connections", conns, "streams", streams, "read_marks", marks)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.opts.AuditEvery)
	defer cancel()
	heads, err := h.store.ChatHeads(ctx, ids)
	if !h.auditRead("read the chats' heads", err, "chats", len(ids)) {
		return nil
	}
	return heads
}

// catchUpBehind starts a catch-up of each of the connection's streams that has not been sent
// every message and change up to its chat's head, and sends chat.read_all to each that has
// every message up to the head but not its read-all mark (a mark follows the chat's last
// message at its commit, which may be a leave that ends the stream); it returns how many streams
// it caught up and how many marks it sent. A stream that is filling a gap already, or whose
// hello is still being built, is left alone; so is one caught up for the same head before
// (were the store to show a change it cannot send, the connection would not read it again at
// every audit).
func (c *conn) catchUpBehind(heads map[int64]chat.ChatHead, frames *readAllFrames) (streams, marks int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.settingUp || c.ctx.Err() != nil {
		return 0, 0
	}
	for id, st := range c.streams {
		head, ok := heads[id]
		if !ok || st.paused || st.lag {
			continue
		}
		if st.readAll < head.ReadAll && (st.sent >= head.Seq || st.known(head.Seq)) {
			if f := frames.of(id, head.ReadAll); f != nil {
				st.heard(head.ReadAll)
				c.enqueue(chat.EventChatReadAll, f)
				marks++
			}
		}
		if (st.sent >= head.Seq && st.rev >= head.Rev) || st.audited == head {
			continue
		}
		st.audited = head
		st.paused, st.lag = true, true
		streams++
	}
	if streams > 0 {
		c.startCatchUpLocked()
	}
	return streams, marks
}

// readAllFrames builds the chat.read_all frames of an audit, each once.
type readAllFrames struct {
	h      *Hub
	frames map[int64][]byte
}

func (r *readAllFrames) of(chatID, readAll int64) []byte {
	if f, ok := r.frames[chatID]; ok {
		return f
	}
	f, err := encodeFrame(chat.EventChatReadAll, nil, chat.ReadAllData{ChatID: chatID, ReadAllSeq: readAll})
	if err != nil {
		r.h.log.Warn("encode chat.read_all", "err", err)
	}
	if r.frames == nil {
		r.frames = map[int64][]byte{}
	}
	r.frames[chatID] = f
	return f
}

// A mismatch is a chat that a user's local connections follow and the store does not list
// them in (listed false; seq: the fact the hub follows it by), or the reverse (listed true,
// seq 0), or one the store lists them in and a connection's stream of which ended at their
// leave, of seq (listed true).
type mismatch struct {
	user, chat int64
	listed     bool
	seq        int64
}

// auditMembers compares the chats the store lists the local users in with those their
// connections follow, mends each mismatch that prev (the previous read's) holds too, and
// returns the others for the next read to confirm.
func (h *Hub) auditMembers(prev map[mismatch]struct{}) map[mismatch]struct{} {
	h.mu.Lock()
	users := make([]int64, 0, len(h.users))
	for id, u := range h.users {
		if len(u.conns) > 0 {
			users = append(users, id)
		}
	}
	h.mu.Unlock()
	if len(users) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.opts.AuditEvery)
	defer cancel()
	listed, err := h.store.ChatIDsOfUsers(ctx, users)
	if !h.auditRead("read the users' chats", err, "users", len(users)) {
		return nil
	}
	found := map[mismatch]struct{}{}
	h.mu.Lock()
	for _, id := range users {
		u := h.users[id]
		if u == nil || len(u.conns) == 0 || settingUp(u) {
			continue // a hello is still reading the chat list
		}
		in := make(map[int64]struct{}, len(listed[id]))
		for _, c := range listed[id] {
			in[c] = struct{}{}
			if _, ok := u.chats[c]; !ok {
				found[mismatch{user: id, chat: c, listed: true}] = struct{}{}
				continue
			}
			for conn := range u.conns {
				if seq, ok := conn.endedAt(c); ok {
					found[mismatch{user: id, chat: c, listed: true, seq: seq}] = struct{}{}
				}
			}
		}
		for c, m := range u.chats {
			if _, ok := in[c]; !ok {
				found[mismatch{user: id, chat: c, seq: m.seq}] = struct{}{}
			}
		}
	}
	h.mu.Unlock()
	for m := range found {
		if _, ok := prev[m]; ok {
			delete(found, m)
			h.mend(ctx, m)
		}
	}
	return found
}

// settingUp reports whether one of a user's connections is building its hello. The caller
// holds h.mu.
func settingUp(u *userState) bool {
	for c := range u.conns {
		c.mu.Lock()
		busy := c.settingUp
		c.mu.Unlock()
		if busy {
			return true
		}
	}
	return false
}

// mend does what the lost event would have: chat.added with the chat as the user sees it
// now, or chat.removed, through the same path as the events (follow, unfollow), on the
// goroutine that runs them. There it first looks again: an event that came late after all,
// or a hello that read the chat list meanwhile, leaves nothing to mend.
//
// A stream that ended at a leave of the chat the store lists the user in (m.seq) is mended as
// a comeback after that leave: follow with a membership begun after it, which tells the
// connections that were told of an older one of the leave, then of the chat (conn.added),
// and leaves those told of a later one alone.
func (h *Hub) mend(ctx context.Context, m mismatch) {
	var do func()
	if m.listed {
		sum, err := h.store.ChatFor(ctx, m.user, m.chat)
		if err != nil || !sum.IsMember {
			return // left again meanwhile, or gone: the next read says what holds
		}
		frame, err := encodeFrame(chat.EventChatAdded, nil, chat.ChatAddedData{Chat: sum})
		if err != nil {
			h.log.Warn("encode chat.added", "err", err)
			return
		}
		do = func() {
			_, ok := h.followedAt(m.user, m.chat)
			switch {
			case m.seq == 0 && !ok:
				h.mended(m)
				h.follow(m.user, m.chat, sum.Head(), 0, sum.MemberCount, frame)
			case m.seq > 0 && ok && h.endedAt(m.user, m.chat, m.seq):
				h.mended(m)
				h.follow(m.user, m.chat, sum.Head(), m.seq+1, sum.MemberCount, frame)
			}
		}
	} else {
		frame := h.leaveFrame(ctx, m.user, m.chat, m.seq)
		do = func() {
			if seq, ok := h.followedAt(m.user, m.chat); ok && seq == m.seq {
				h.mended(m)
				h.unfollow(m.user, m.chat, m.seq, frame)
			}
		}
	}
	select {
	case h.ctrl <- do:
	case <-h.ctx.Done():
	}
}

// followedAt reports whether a user's local connections follow a chat, and by the fact of
// which seq.
func (h *Hub) followedAt(userID, chatID int64) (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if u := h.users[userID]; u != nil {
		m, ok := u.chats[chatID]
		return m.seq, ok
	}
	return 0, false
}

// endedAt reports whether one of a user's local connections has its stream of a chat ended
// at the leave of seq, with the leave's chat.removed yet to come.
func (h *Hub) endedAt(userID, chatID, seq int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if u := h.users[userID]; u != nil {
		for c := range u.conns {
			if s, ok := c.endedAt(chatID); ok && s == seq {
				return true
			}
		}
	}
	return false
}

// endedAt reports whether the connection's stream of a chat ended at its user's leave (of the
// seq returned) while the client still has the chat (conn.ended).
func (c *conn) endedAt(chatID int64) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seq, ok := c.ended[chatID]
	return seq, ok
}

func (h *Hub) mended(m mismatch) {
	h.stats.AuditHeals.Add(1)
	h.log.Info("audit: a chat joined or left whose news the broker lost, mended from the store",
		"user_id", m.user, "chat_id", m.chat, "joined", m.listed)
}

// auditSessions closes, with 4001, the connections whose session has ended (revoked, expired
// or deleted) although no session.revoked said so.
func (h *Hub) auditSessions() {
	h.mu.Lock()
	bySession := map[int64][]*conn{}
	for _, u := range h.users {
		for c := range u.conns {
			if c.sessionID != 0 {
				bySession[c.sessionID] = append(bySession[c.sessionID], c)
			}
		}
	}
	h.mu.Unlock()
	if len(bySession) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.opts.AuditEvery)
	defer cancel()
	ended, err := h.store.EndedSessions(ctx, slices.Collect(maps.Keys(bySession)), time.Now())
	if !h.auditRead("read the connections' sessions", err, "sessions", len(bySession)) {
		return
	}
	for _, sid := range ended {
		for _, c := range bySession[sid] {
			c.close(closeRevoked, "session revoked")
		}
	}
	if len(ended) > 0 {
		h.stats.AuditHeals.Add(int64(len(ended)))
		h.log.Info("audit: connections of sessions that ended unannounced closed", "sessions", len(ended))
	}
}
