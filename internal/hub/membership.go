package hub

import (
	"context"
	"errors"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// Which chats each user's local connections follow. The facts come from several places that
// may race: the hello's reads of the chat list, and chat.added and chat.removed events that
// travel through the broker and may arrive late or out of order. Each fact carries the seq it
// holds at (a list's last seq of the chat, the chat's last seq in chat.added, the leave's
// system message in chat.removed), and a fact older than what the hub already knows of that
// chat is ignored: a leave is never undone by a list read before it, nor a join by a removal
// before it. Within a chat, each connection's stream ends at the system message that ends its
// user's membership (conn.go), so nothing after a leave reaches the leaver even before its
// chat.removed arrives.

type userState struct {
	conns map[*conn]struct{}
	chats map[int64]membership
	// gone remembers, per chat the user left while connected here, the seq of the leave.
	gone    map[int64]int64
	offline *time.Timer // pending "offline" after the last device left
	leftAt  time.Time   // when the last device left
	left    []int64     // the chats the pending "offline" goes to
	// deleted: the account was deleted (accountDeleted). Its last device leaving takes it
	// offline at once, with no grace and no wait for another instance's mark.
	deleted bool
	// coming is the connection that brings the user online here, from its registration
	// (addConn) until comeOnline has read whether they were online elsewhere: refreshPresence
	// leaves the user's mark alone meanwhile, or comeOnline would find this instance's own
	// mark and announce nothing.
	coming *conn
}

// membership is a chat a user follows, and the seq of the fact that says so.
type membership struct {
	seq int64
	// joined is the latest join a chat.added told of (0: none), the seq the membership began
	// at: one after a read that listed the chat is a comeback from a leave after that read.
	joined int64
}

// maxGone bounds the leaves a user's state remembers; past it the memory is dropped, which
// only reopens the races that it closes.
const maxGone = 10_000

type chatState struct {
	users map[int64]struct{}
	conns []*conn // local connections of the members; rebuilt when dirty
	dirty bool
	size  int // the chat's member count, as this instance last heard (presence.go)
}

// addConn registers a connection of a user, subscribing to the user's topic on first use.
func (h *Hub) addConn(c *conn) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return errShuttingDown
	}
	u := h.users[c.userID]
	if u == nil {
		u = &userState{conns: map[*conn]struct{}{}, chats: map[int64]membership{}}
		h.users[c.userID] = u
		h.stats.Users.Add(1)
		if t := h.later[c.userID]; t != nil { // back before the look: whatever it would find is moot
			t.Stop()
			delete(h.later, c.userID)
		}
	}
	if len(u.conns) >= h.opts.MaxConnsPerUser {
		return errTooManyConns
	}
	u.conns[c] = struct{}{}
	if len(u.conns) == 1 && u.offline == nil {
		u.coming = c
	}
	for id := range u.chats {
		h.chats[id].dirty = true
	}
	h.conns.Add(1)
	h.stats.Connections.Add(1)
	return nil
}

var (
	errShuttingDown = errors.New("shutting down")
	errTooManyConns = errors.New("too many connections for this user")
)

// attach makes a connection in its hello follow the chats of a read of its user's chat list
// (last: each chat's last seq then), and stop following those that an earlier read listed and
// this one does not (dropped: each with its last seq in the earlier read; the user left them
// meanwhile). It returns the chats the connection follows now, leaving out those whose leave
// the hub already knows of (the read came before it), and reports whether the user just came
// online on this instance.
//
// A dropped chat is a leave the hub may never hear of (its chat.removed lost), and the store
// agrees with a hub that no longer has it, so the audit would not see it either: the user's
// other connections are told of the leave here (unfollow), as its chat.removed would have.
// The leave came after the earlier read, so it ended a membership the hub knows of by a fact
// at or before that read's seq; one the hub knows of by a later fact (a chat.added read after
// that) may be a comeback, and is left to the leave's chat.removed, or to the audit. One that a
// chat.added says began after that read is a comeback: the connection goes on following the
// chat, and the comeback's chat.added tells its client.
func (h *Hub) attach(c *conn, last map[int64]int64, dropped map[int64]drop) (followed map[int64]int64, cameOnline bool, chats []int64) {
	var left []string
	defer func() {
		if len(left) > 0 {
			h.reconcile(left...)
		}
	}()
	h.mu.Lock()
	defer h.mu.Unlock()
	u := h.users[c.userID]
	followed = make(map[int64]int64, len(last))
	for id, seq := range last {
		if h.joinLocked(u, c.userID, id, seq, seq, 0) {
			c.follow(id, chat.ChatHead{Seq: seq}) // its rev and read-all mark are set by finishSetup
			followed[id] = seq
		}
	}
	for id, d := range dropped {
		m, ok := u.chats[id]
		if ok && m.joined > d.seq {
			// The user came back, and the connection follows the chat as the others do: the
			// comeback's chat.added, held for the hello or on its way, tells the client.
			continue
		}
		c.unfollow(id)
		if !ok {
			continue // its chat.removed came, or it was never followed
		}
		if h.unfollowLocked(u, c.userID, id, d.seq, d.frame) {
			left = append(left, chatTopic(id))
		}
	}
	cameOnline = u.coming == c
	if u.offline != nil {
		u.offline.Stop()
		u.offline = nil
	}
	for id := range u.chats {
		chats = append(chats, id)
	}
	return followed, cameOnline, chats
}

// A drop is a chat that a hello's earlier read of the chat list had and a later one does not:
// the user left it after seq, that read's last seq of the chat. frame is the leave's
// chat.removed (leaveFrame), for the user's other connections.
type drop struct {
	seq   int64
	frame []byte
}

// leaveFrame is the chat.removed of a leave that the hub learns of from the store instead of
// from its event (a hello's drop, the audit's mend), with the reason the event carries, read
// from the store: "deleted" or "removed" (a reason-less chat.removed told by the hub means a
// comeback to a client that gets the chat's chat.added next, and a leave otherwise). after is
// a seq of the chat from before the leave. When the read fails the frame has no reason.
func (h *Hub) leaveFrame(ctx context.Context, userID, chatID, after int64) []byte {
	reason, err := h.store.LeaveReason(ctx, userID, chatID, after)
	if err != nil && ctx.Err() == nil {
		h.log.Warn("read why a user left a chat", "user_id", userID, "chat_id", chatID, "err", err)
	}
	return chatRemovedFrame(chatID, reason)
}

// joinLocked records that the user follows a chat as of seq, unless a leave at or after
// since is known: the seq the membership began at, as a chat.added tells it (its chat may be
// read later), or a list's last seq (it began no later). A leave the hub knows only a bound
// of (a hello's drop: after the earlier read's last seq) thus stops a late chat.added of the
// membership it ended whenever its chat was read. joined is a chat.added's join (0: none,
// membership.joined). It reports whether the user follows the chat.
func (h *Hub) joinLocked(u *userState, userID, chatID, seq, since, joined int64) bool {
	if left, ok := u.gone[chatID]; ok && left >= since {
		return false
	}
	m := u.chats[chatID]
	m.seq, m.joined = max(m.seq, seq), max(m.joined, joined)
	u.chats[chatID] = m
	cs := h.chats[chatID]
	if cs == nil {
		cs = &chatState{users: map[int64]struct{}{}}
		h.chats[chatID] = cs
	}
	cs.users[userID] = struct{}{}
	cs.dirty = true
	return true
}

// userChat names a user's membership of a chat.
type userChat struct{ userID, chatID int64 }

// pendingAdd counts the chat.added of a user and chat received and not yet followed, and holds
// the frames about that chat to the user's devices that came meanwhile, and the chat's events
// (member.left, member.role, chat.updated, ...) that the user's connections, not following the
// chat yet, were not given: follow gives them those once they follow it, where they wait for
// the messages they come after, as any event ahead of its message does. The chat's messages
// need no holding: the catch-up after chat.added reads them from the store.
type pendingAdd struct {
	n      int
	frames []earlyFrame
	events []item
}

// maxHeldEvents bounds the events a pendingAdd holds (a follow waits at most 10 s for the
// chat's subscription): past it the oldest go, as they would have without the hold.
const maxHeldEvents = 256

func (p *pendingAdd) holdEvent(it item) {
	if len(p.events) == maxHeldEvents {
		p.events = p.events[1:]
	}
	p.events = append(p.events, it)
}

// holdForJoinersLocked holds a chat event for the users whose chat.added of the chat is on its
// way (adding) and whose connections do not follow the chat yet, but for except (the event's
// ExceptUser). The caller holds h.mu, under which it took the chat's connections the event goes
// to, so that the event reaches each connection once: either then, or from follow.
func (h *Hub) holdForJoinersLocked(chatID, except int64, it item) {
	cs := h.chats[chatID]
	for k, p := range h.adding {
		if k.chatID != chatID || k.userID == except {
			continue
		}
		if cs != nil {
			if _, ok := cs.users[k.userID]; ok {
				continue // following it already (an earlier membership, or a comeback)
			}
		}
		p.holdEvent(it)
	}
}

// maxHeldAbout bounds the frames a pendingAdd holds. Each of them (read.updated,
// chat.settings) tells the whole state, so the oldest go first.
const maxHeldAbout = 16

func (p *pendingAdd) hold(typ string, frame []byte) {
	if len(p.frames) == maxHeldAbout {
		p.frames = p.frames[1:]
	}
	p.frames = append(p.frames, earlyFrame{typ: typ, frame: frame})
}

// addingBegins records a chat.added received for a user, in the order events arrive: until
// follow has sent it, frames about the chat to the user's devices wait (toUser).
func (h *Hub) addingBegins(userID, chatID int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := userChat{userID, chatID}
	p := h.adding[k]
	if p == nil {
		p = &pendingAdd{}
		h.adding[k] = p
	}
	p.n++
}

// addingEndsLocked ends one chat.added of a user and chat: the frames held for it go to the
// user's connections that follow the chat now (none, when the user left it meanwhile).
func (h *Hub) addingEndsLocked(userID, chatID int64) {
	k := userChat{userID, chatID}
	p := h.adding[k]
	if p == nil {
		return
	}
	if p.n--; p.n > 0 {
		return
	}
	delete(h.adding, k)
	if u := h.users[userID]; u != nil {
		for c := range u.conns {
			for _, f := range p.frames {
				c.enqueueAbout(chatID, f.typ, f.frame)
			}
		}
	}
}

// follow starts live delivery of a chat the user just joined (at: the chat's head when it was
// announced; since: the seq of the join, 0 when unknown: at's then) to their local
// connections, then tells them (chat.added) once the
// subscription is live (unless they were told of it already: conn.added), and catches up
// whatever was published before it was. The frames about the chat that came for the user
// meanwhile go out after chat.added.
func (h *Hub) follow(userID, chatID int64, at chat.ChatHead, since int64, members int, frame []byte) {
	joined := since
	if since == 0 {
		since = at.Seq
	}
	if f := h.beforeFollow.Load(); f != nil {
		(*f)(userID, chatID)
	}
	h.mu.Lock()
	u := h.users[userID]
	if u == nil || len(u.conns) == 0 || !h.joinLocked(u, userID, chatID, at.Seq, since, joined) {
		h.addingEndsLocked(userID, chatID)
		h.mu.Unlock()
		return
	}
	if members > 0 {
		h.chats[chatID].size = members
	}
	for c := range u.conns {
		c.followSince(chatID, at, since)
	}
	// The chat's events that came since its chat.added did and went to its followers only.
	if p := h.adding[userChat{userID, chatID}]; p != nil && len(p.events) > 0 {
		for c := range u.conns {
			for _, it := range p.events {
				c.deliverEvent(chatID, it, false)
			}
		}
		p.events = nil
	}
	h.mu.Unlock()
	// chat.added goes out once the subscription is live, and the catch-up reads what was
	// published before.
	ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
	defer cancel()
	if err := h.await(ctx, h.reconcile(chatTopic(chatID))); err != nil && h.ctx.Err() == nil {
		h.log.Warn("subscribe", "chat_id", chatID, "err", err)
	}
	for _, c := range h.userConns(userID) {
		c.added(chatID, since, frame)
		c.catchUpChat(chatID)
	}
	h.mu.Lock()
	h.addingEndsLocked(userID, chatID)
	h.mu.Unlock()
}

// unfollow stops delivery of a chat the user left (at the system message seq), and tells
// their devices that were told of the chat (chat.removed: conn.removed). A leave older than
// what the hub knows of the chat (the user joined again since) changes nothing.
func (h *Hub) unfollow(userID, chatID, seq int64, frame []byte) {
	h.mu.Lock()
	u := h.users[userID]
	if u == nil {
		h.mu.Unlock()
		return
	}
	changed := h.unfollowLocked(u, userID, chatID, seq, frame)
	h.mu.Unlock()
	if changed {
		h.reconcile(chatTopic(chatID))
	}
}

// unfollowLocked is unfollow with the hub's lock held; it reports whether it changed
// anything (the chat's topic is then to be reconciled).
func (h *Hub) unfollowLocked(u *userState, userID, chatID, seq int64, frame []byte) bool {
	if m, ok := u.chats[chatID]; ok && m.seq > seq {
		return false
	}
	if u.gone == nil || len(u.gone) >= maxGone {
		u.gone = map[int64]int64{}
	}
	u.gone[chatID] = max(u.gone[chatID], seq)
	for c := range u.conns {
		c.removed(chatID, seq, frame)
	}
	delete(u.chats, chatID)
	h.dropChatUserLocked(chatID, userID)
	return true
}

func (h *Hub) dropChatUserLocked(chatID, userID int64) {
	cs := h.chats[chatID]
	if cs == nil {
		return
	}
	delete(cs.users, userID)
	cs.dirty = true
	if len(cs.users) == 0 {
		delete(h.chats, chatID)
		h.order.forget(chatID)
	}
}

// removeConn unregisters a closed connection. When it was the user's last one here, the user
// goes offline after a grace period (a reload is not a disconnect).
func (h *Hub) removeConn(c *conn) {
	defer h.conns.Done()
	h.stats.Connections.Add(-1)
	h.mu.Lock()
	u := h.users[c.userID]
	if u == nil {
		h.mu.Unlock()
		return
	}
	delete(u.conns, c)
	if u.coming == c { // its hello failed, or it closed before comeOnline read the marks
		u.coming = nil
	}
	h.forgetConnLocked(c)
	left := time.Now()
	if !h.closing && len(u.conns) == 0 {
		// The user's last device here left: "last seen" is now (one write per user going
		// away, not per socket; a restart hands its users over, they are not gone), the same
		// instant as the presence frame's last_seen_at.
		defer h.svc.Seen(h.ctx, c.userID, left)
	}
	topics := []string{userTopic(c.userID)}
	for id := range u.chats {
		if cs := h.chats[id]; cs != nil {
			cs.dirty = true
		}
	}
	if len(u.conns) > 0 {
		h.mu.Unlock()
		return
	}
	chats := make([]int64, 0, len(u.chats))
	for id := range u.chats {
		chats = append(chats, id)
		h.dropChatUserLocked(id, c.userID)
		topics = append(topics, chatTopic(id))
	}
	u.chats = map[int64]membership{}
	if h.closing {
		delete(h.users, c.userID)
		h.stats.Users.Add(-1)
	} else {
		userID := c.userID
		grace := h.opts.OfflineGrace
		if u.deleted {
			grace = 0
		}
		u.leftAt, u.left = left, chats
		u.offline = time.AfterFunc(grace, func() { h.goOffline(userID, chats) })
	}
	h.mu.Unlock()
	h.reconcile(topics...)
}
