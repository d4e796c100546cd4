package hub

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// Presence: a user is online while they have a connection on some instance. Each instance
// keeps expiring marks of its users in the shared presence store and tells the chats of a
// user when they come online or, after a grace, go offline: one broker event per chat.
//
// Who hears it is decided where it is delivered, so that a group of thousands does not cost
// every member a frame for every other member (O(N²) when they all connect at once):
//   - private chats and groups of at most Options.PresenceGroupMax members: every member's
//     connections, as always;
//   - bigger groups: only the member connections that subscribed to the user
//     (presence.subscribe: the client asks for the users it shows).
//
// Each connection's presence is coalesced: changes are collected for Options.PresenceEvery
// and sent together, the last state of each user once. A client that subscribed gets them in
// one frame, presence {users:[...]}; a client that never did (it predates the frame) gets the
// single-user form, presence {user_id, online}, one frame per user that changed.

// turn serializes a user's presence transitions on this instance: a user who comes back
// while goOffline is clearing their mark waits for it to finish, then comeOnline reads the
// marks it left and announces them online after their "offline". Without it comeOnline could
// find the old mark, announce nothing, and have goOffline clear the mark after it and
// announce them offline while connected. It is never taken with h.mu held.
func (h *Hub) turn(userID int64) *sync.Mutex {
	return &h.turns[uint64(userID)%uint64(len(h.turns))]
}

func (h *Hub) goOffline(userID int64, chats []int64) {
	turn := h.turn(userID)
	turn.Lock()
	defer turn.Unlock()
	h.mu.Lock()
	u := h.users[userID]
	if u == nil || len(u.conns) > 0 || u.offline == nil {
		h.mu.Unlock()
		return
	}
	left, deleted := u.leftAt, u.deleted
	delete(h.users, userID)
	h.stats.Users.Add(-1)
	h.mu.Unlock()
	h.reconcile(userTopic(userID))

	ctx, cancel := context.WithTimeout(h.ctx, 3*time.Second)
	defer cancel()
	if err := h.presence.SetOffline(ctx, userID); err != nil {
		h.log.Warn("presence offline", "user_id", userID, "err", err)
	}
	if deleted {
		// No device of a deleted account comes back, and every instance that holds one closes
		// it on the same news and clears its mark: another instance's mark is one about to go,
		// not a live device to wait for (offlineLater). Receivers pass the "offline" on once
		// the marks are clear (checkOffline); the last instance's at worst.
		h.announceOffline(ctx, userID, left, chats)
		return
	}
	until, err := h.presence.Until(ctx, userID)
	if err != nil && ctx.Err() == nil {
		h.log.Warn("presence lookup", "user_id", userID, "err", err)
	}
	if !until.IsZero() {
		h.offlineLater(userID, left, chats, until)
		return
	}
	h.announceOffline(ctx, userID, left, chats)
}

func (h *Hub) announceOffline(ctx context.Context, userID int64, left time.Time, chats []int64) {
	st := chat.PresenceState{UserID: userID, LastSeenAt: &chat.Time{Time: left.UTC().Truncate(time.Millisecond)}}
	// A deleted account has no last seen (API-NOTES.md), and its sockets have just closed.
	if u, err := h.store.UserByID(ctx, userID); err == nil && u.Deleted {
		st.LastSeenAt = nil
	}
	h.announcePresence(ctx, st, chats)
}

// accountDeleted marks a user whose account was deleted, before its sockets here are closed:
// the last of them leaving takes the user offline at once (removeConn, goOffline), and if the
// last left already, the "offline" waiting out the grace goes now.
func (h *Hub) accountDeleted(userID int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	u := h.users[userID]
	if u == nil {
		return
	}
	u.deleted = true
	if u.offline != nil && len(u.conns) == 0 && u.offline.Stop() {
		chats := u.left
		u.offline = time.AfterFunc(0, func() { h.goOffline(userID, chats) })
	}
}

// laterMargin is how long after another instance's mark would have expired offlineLater looks
// again: past the clocks' disagreement and the refresh's round trip.
const laterMargin = 500 * time.Millisecond

// offlineLater handles a user whose last device here left while the marks still say online
// until some time: another instance's mark. Either that instance is live and has the user's
// devices (it refreshes the mark, and announces "offline" when the last of them leaves it), or
// it crashed and its mark is all that is left (it will announce nothing, and the user's chats
// would show them online for good). Which one is only known once that mark would have
// expired: this instance looks then, and announces "offline" itself if no mark is left. A mark
// present then was set or refreshed after the first look, by an instance that was live. The
// look is dropped if the user comes back here meanwhile.
func (h *Hub) offlineLater(userID int64, left time.Time, chats []int64, until time.Time) {
	h.mu.Lock() // held until t is recorded, which the look checks first
	defer h.mu.Unlock()
	if old := h.later[userID]; old != nil {
		old.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(time.Until(until)+laterMargin, func() {
		turn := h.turn(userID)
		turn.Lock()
		defer turn.Unlock()
		h.mu.Lock()
		mine := h.later[userID] == t && h.users[userID] == nil
		if h.later[userID] == t {
			delete(h.later, userID)
		}
		h.mu.Unlock()
		if !mine || h.ctx.Err() != nil {
			return
		}
		ctx, cancel := context.WithTimeout(h.ctx, 3*time.Second)
		defer cancel()
		until, err := h.presence.Until(ctx, userID)
		if err != nil {
			h.log.Warn("presence lookup", "user_id", userID, "err", err)
			return
		}
		if until.IsZero() {
			h.announceOffline(ctx, userID, left, chats)
		}
	})
	h.later[userID] = t
}

// comeOnline marks the user of c, the connection that brought them online here, online and
// tells their chats if nobody knew yet.
func (h *Hub) comeOnline(c *conn, chats []int64) {
	ctx, userID := c.ctx, c.userID
	turn := h.turn(userID)
	turn.Lock()
	defer turn.Unlock()
	was := h.Online(ctx, []int64{userID})[userID]
	h.mu.Lock()
	if u := h.users[userID]; u != nil && u.coming == c {
		u.coming = nil // refreshPresence renews the mark from now on
	}
	h.mu.Unlock()
	if err := h.presence.SetOnline(ctx, h.opts.PresenceTTL, userID); err != nil && ctx.Err() == nil {
		h.log.Warn("presence online", "user_id", userID, "err", err)
	}
	if !was {
		h.announcePresence(ctx, chat.PresenceState{UserID: userID, Online: true}, chats)
	}
}

func (h *Hub) announcePresence(ctx context.Context, st chat.PresenceState, chats []int64) {
	frame, err := encodeFrame(chat.EventPresence, nil, st)
	if err != nil {
		return
	}
	var seen int64
	if st.LastSeenAt != nil {
		seen = st.LastSeenAt.UnixMilli()
	}
	for _, id := range chats {
		h.publish(ctx, chatTopic(id), &envelope{Type: chat.EventPresence, ChatID: id, ExceptUser: st.UserID,
			PresenceUser: st.UserID, Online: st.Online, LastSeen: seen, frame: frame})
	}
}

// fanOutPresence delivers a presence event of a chat: to every member's connection in a small
// chat, to the member connections subscribed to the user in a big one. An "offline" is checked
// against the marks first (checkOffline).
func (h *Hub) fanOutPresence(e *envelope) {
	if !e.Online {
		h.checkOffline(e)
		return
	}
	h.deliverPresenceEvent(e)
}

// offlineChecks collects "offline" events for one check of the marks.
type offlineChecks struct {
	mu      sync.Mutex
	pending []*envelope
	armed   bool
}

// checkOffline delivers an "offline" only if the marks, read up to Options.PresenceEvery later
// (one read for every such event received meanwhile), still say the user is offline. Two
// instances decide their announcements from marks the other may be changing: when the last
// device on instance A goes away as the user reconnects through B, A can find no mark and
// announce "offline" while B, having found A's mark, announces nothing, or B's "online" can
// reach the receivers before A's "offline". Either way the receivers would show a connected
// user offline. Every instance sets its mark before it announces "online", so a mark present
// after an "offline" means the user is back: the "offline" is dropped, and whatever the
// receivers heard last stays true. An offline presence is not urgent (it comes after a grace
// of seconds), so the wait costs nothing a user sees.
func (h *Hub) checkOffline(e *envelope) {
	q := &h.offline
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = append(q.pending, e)
	if !q.armed {
		q.armed = true
		time.AfterFunc(h.opts.PresenceEvery, h.runOfflineChecks)
	}
}

func (h *Hub) runOfflineChecks() {
	q := &h.offline
	q.mu.Lock()
	pending := q.pending
	q.pending, q.armed = nil, false
	q.mu.Unlock()
	if h.ctx.Err() != nil {
		return
	}
	seen := make(map[int64]bool, len(pending))
	users := make([]int64, 0, len(pending))
	for _, e := range pending {
		if !seen[e.PresenceUser] {
			seen[e.PresenceUser] = true
			users = append(users, e.PresenceUser)
		}
	}
	ctx, cancel := context.WithTimeout(h.ctx, 3*time.Second)
	defer cancel()
	online := h.Online(ctx, users) // nil when the marks cannot be read: deliver as announced
	for _, e := range pending {
		if !online[e.PresenceUser] {
			h.deliverPresenceEvent(e)
		}
	}
}

// deliverPresenceEvent delivers a presence event to the connections that hear of it.
func (h *Hub) deliverPresenceEvent(e *envelope) {
	st := chat.PresenceState{UserID: e.PresenceUser, Online: e.Online}
	if !e.Online && e.LastSeen > 0 {
		st.LastSeenAt = &chat.Time{Time: time.UnixMilli(e.LastSeen).UTC()}
	}
	var conns []*conn
	if h.bigChat(e.ChatID) {
		conns = h.watchersOf(e.PresenceUser)
	} else {
		conns = h.chatConns(e.ChatID)
	}
	for _, c := range conns {
		if c.userID != e.ExceptUser {
			c.deliverPresence(e.ChatID, st, e.frame)
		}
	}
}

// bigChat reports whether a chat has more members than Options.PresenceGroupMax, as far as
// this instance knows (the count of the last chat list read or chat.added, moved by the
// member.joined and member.left events since).
func (h *Hub) bigChat(chatID int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	cs := h.chats[chatID]
	return cs != nil && cs.size > h.opts.PresenceGroupMax
}

// setSizes records the member counts of chats with local members.
func (h *Hub) setSizes(sizes map[int64]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, n := range sizes {
		if cs := h.chats[id]; cs != nil {
			cs.size = n
		}
	}
}

func (h *Hub) resize(chatID int64, delta int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cs := h.chats[chatID]; cs != nil {
		cs.size = max(cs.size+delta, 0)
	}
}

// watchersOf returns the local connections subscribed to a user's presence.
func (h *Hub) watchersOf(userID int64) []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := h.watchers[userID]
	out := make([]*conn, 0, len(w))
	for c := range w {
		out = append(out, c)
	}
	return out
}

// watch replaces the users a connection is subscribed to. It runs on the connection's reader,
// which removeConn (forgetConnLocked) waits for, so a closed connection is never indexed.
func (h *Hub) watch(c *conn, ids []int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unwatchLocked(c)
	c.watching = ids
	for _, id := range ids {
		w := h.watchers[id]
		if w == nil {
			w = map[*conn]struct{}{}
			h.watchers[id] = w
		}
		w[c] = struct{}{}
	}
}

func (h *Hub) unwatchLocked(c *conn) {
	for _, id := range c.watching {
		if w := h.watchers[id]; w != nil {
			delete(w, c)
			if len(w) == 0 {
				delete(h.watchers, id)
			}
		}
	}
	c.watching = nil
}

// presenceSubscribe answers presence.subscribe: it replaces the connection's subscriptions
// with the users named who share a chat with the caller (the others are ignored) and answers
// at once with their current state. The subscription is in place before the state is read,
// so that no change falls between the answer and the first live frame.
func (c *conn) presenceSubscribe(p chat.Principal, ref json.RawMessage, ids []int64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), frameTimeout)
	defer cancel()
	users, err := c.h.svc.PresenceSharers(ctx, p, ids)
	if err != nil {
		c.fail(p, ref, "presence.subscribe", err)
		return
	}
	accepted := make([]int64, len(users))
	for i, u := range users {
		accepted[i] = u.ID
	}
	c.mu.Lock()
	c.batched = true
	c.mu.Unlock()
	c.h.watch(c, accepted)
	online := c.h.Online(ctx, accepted)
	states := make([]chat.PresenceState, len(users))
	c.mu.Lock()
	for i, u := range users {
		st := chat.PresenceState{UserID: u.ID, Online: online[u.ID]}
		if !st.Online && !u.LastSeenAt.IsZero() {
			st.LastSeenAt = &chat.Time{Time: u.LastSeenAt}
		}
		states[i] = st
		c.rememberPresenceLocked(st)
		delete(c.pending, u.ID) // older than the answer
	}
	c.mu.Unlock()
	c.sendFrame(chat.EventPresence, ref, chat.PresenceBatchData{Users: states})
}

// pendingPresence is a change waiting for the connection's next presence frame.
type pendingPresence struct {
	st    chat.PresenceState
	frame []byte // the single-user form, for a client that never subscribed
}

// deliverPresence queues a user's presence change for the connection's next presence frame.
func (c *conn) deliverPresence(chatID int64, st chat.PresenceState, frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if chatID != 0 && c.streams[chatID] == nil {
		return
	}
	if c.pending == nil {
		c.pending = map[int64]pendingPresence{}
	}
	c.pending[st.UserID] = pendingPresence{st: st, frame: frame}
	if !c.flushArmed {
		c.flushArmed = true
		time.AfterFunc(c.h.opts.PresenceEvery, c.flushPresence)
	}
}

// rememberPresenceLocked records the state last sent of a user, so that each change is sent
// once however many chats announce it; it reports whether st is news to the client.
func (c *conn) rememberPresenceLocked(st chat.PresenceState) bool {
	prev, known := c.presence[st.UserID]
	if !known && len(c.presence) >= maxPresence {
		clear(c.presence)
	}
	if c.presence == nil { // made on first use: most connections never get a presence frame
		c.presence = map[int64]bool{}
	}
	c.presence[st.UserID] = st.Online
	return !known || prev != st.Online
}

// flushPresence sends the changes collected since the last presence frame.
func (c *conn) flushPresence() {
	c.mu.Lock()
	pending := c.pending
	c.pending, c.flushArmed = nil, false
	batched := c.batched
	var states []chat.PresenceState
	var frames [][]byte
	for _, pp := range pending {
		if c.rememberPresenceLocked(pp.st) {
			states = append(states, pp.st)
			frames = append(frames, pp.frame)
		}
	}
	c.mu.Unlock()
	if len(states) == 0 || c.ctx.Err() != nil {
		return
	}
	if !batched {
		for _, f := range frames {
			c.enqueue(chat.EventPresence, f)
		}
		return
	}
	slices.SortFunc(states, func(a, b chat.PresenceState) int { return cmp.Compare(a.UserID, b.UserID) })
	c.sendFrame(chat.EventPresence, nil, chat.PresenceBatchData{Users: states})
}

// refreshPresence renews this instance's presence marks well within their TTL.
func (h *Hub) refreshPresence() {
	t := time.NewTicker(h.opts.PresenceTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		h.renewMarks()
		h.adoptOrphans()
	}
}

// adoptOrphans takes over the users of instances that stopped (broker.Presence.Orphans: a
// crash whose marks have expired, or a Shutdown's RestartGrace over) and tells the chats of
// those who are connected nowhere that they are offline. Nobody else would: the instance they
// were on is gone, and their chats would show them online for good.
func (h *Hub) adoptOrphans() {
	ctx, cancel := context.WithTimeout(h.ctx, h.opts.PresenceTTL/3)
	orphans, err := h.presence.Orphans(ctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("presence of stopped instances", "err", err)
		}
		return
	}
	for _, o := range orphans {
		if len(o.Users) == 0 {
			continue // an idle or emptied run: nobody to tell of
		}
		h.log.Info("presence of a stopped instance taken over", "run", o.Run, "last_mark", o.LastMark, "users", len(o.Users))
		// Orphans hands a run over once, so an announcement cut short is never made: each
		// has orphanWait for its reads and writes of the store, off the loop that renews this
		// instance's marks (which must come within their TTL). They had the third of the TTL
		// the read of the orphans has, and a busy database took longer: the users of a crashed
		// instance stayed online in their chats for good.
		go func() {
			for _, id := range o.Users {
				ctx, cancel := context.WithTimeout(h.ctx, orphanWait)
				h.orphanOffline(ctx, id, o.LastMark)
				cancel()
			}
		}()
	}
}

// orphanWait bounds the announcement of one user of a stopped instance (orphanOffline).
const orphanWait = 10 * time.Second

// orphanOffline announces a user of a stopped instance offline unless they are connected here
// (or in their grace: goOffline will tell), are to be looked at by offlineLater, or have a mark
// of a live instance (which tells when they leave it). Their last seen is the stopped
// instance's last mark unless a WebSocket of theirs closed later.
func (h *Hub) orphanOffline(ctx context.Context, userID int64, lastMark time.Time) {
	turn := h.turn(userID)
	turn.Lock()
	defer turn.Unlock()
	h.mu.Lock()
	_, here := h.users[userID]
	_, later := h.later[userID]
	h.mu.Unlock()
	if here || later {
		return
	}
	if until, err := h.presence.Until(ctx, userID); err != nil || !until.IsZero() {
		return
	}
	chats, err := h.store.ChatIDsOf(ctx, userID)
	if err != nil {
		h.log.Warn("chats of a user of a stopped instance", "user_id", userID, "err", err)
		return
	}
	seen := lastMark
	if err := h.store.TouchUser(ctx, userID, lastMark); err != nil {
		h.log.Warn("record last seen", "user_id", userID, "err", err)
	}
	if u, err := h.store.UserByID(ctx, userID); err == nil && u.LastSeenAt.After(seen) {
		seen = u.LastSeenAt
	}
	h.announceOffline(ctx, userID, seen, chats)
}

// renewMarks marks online the users connected here, but for those whose coming online
// comeOnline has yet to judge from the marks (userState.coming).
func (h *Hub) renewMarks() {
	h.mu.Lock()
	ids := make([]int64, 0, len(h.users))
	for id, u := range h.users {
		if len(u.conns) > 0 && u.coming == nil {
			ids = append(ids, id)
		}
	}
	h.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
	defer cancel()
	// Asked before the marks are renewed: an instance that stalled past PresenceTTL (or lost
	// Redis that long) finds its users taken over and announced offline by another instance.
	// The news is kept until the marks are set again, should that fail now.
	if taken, err := h.presence.TakenOver(ctx); err != nil {
		h.log.Warn("presence taken over", "err", err)
	} else if taken {
		h.takenOver.Store(true)
	}
	if err := h.presence.SetOnline(ctx, h.opts.PresenceTTL, ids...); err != nil {
		h.log.Warn("presence refresh", "err", err)
		return
	}
	if h.takenOver.Swap(false) {
		h.log.Warn("presence: this instance's users were taken over while its marks had expired; announcing them online again", "users", len(ids))
		for _, id := range ids {
			h.onlineAgain(ctx, id)
		}
	}
}

// onlineAgain tells the chats of a user connected here that they are online, after another
// instance took over this one's marks and may have announced them offline.
func (h *Hub) onlineAgain(ctx context.Context, userID int64) {
	turn := h.turn(userID)
	turn.Lock()
	defer turn.Unlock()
	h.mu.Lock()
	u := h.users[userID]
	if u == nil || len(u.conns) == 0 {
		h.mu.Unlock()
		return // gone meanwhile: their leaving is told as usual
	}
	chats := slices.Collect(maps.Keys(u.chats))
	h.mu.Unlock()
	h.announcePresence(ctx, chat.PresenceState{UserID: userID, Online: true}, chats)
}
