package hub

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
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

// pageSize is how many messages one read from the store brings for a sync or a catch-up: the
// page is in memory (up to 24 KiB a message) until the client has taken it, so it is small.
const pageSize = 64

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
	// lastWrite is when the writer last wrote (only writers use it, one at a time).
	lastWrite time.Time
	out       *outbox
	pingMu    sync.Mutex
	pinger    *time.Timer
	closeOnce sync.Once
	closing   atomic.Bool // close was called
	// syncs counts the sync frames running or waiting (at most maxSyncs); they run one at a
	// time, off the reader, in the order they came: each waits for syncTail as it was when
	// it came, the end of the sync before it (only the reader sets syncTail).
	syncs    atomic.Int32
	syncTail chan struct{}
	ops      ops // frames answered off the reader, for the pong barrier (ops.go)
	// inflight holds a slot per frame in progress off the reader (inflight.go); work counts
	// those frames and the syncs, so that the connection ends after them.
	inflight chan struct{}
	work     sync.WaitGroup

	mu       sync.Mutex
	streams  map[int64]*stream
	presence map[int64]bool // last presence sent per user, to send each change once
	// pending are the presence changes for the next presence frame, sent when the timer
	// armed by the first of them fires (presence.go); batched: the client subscribed, and
	// gets them in one frame.
	pending    map[int64]pendingPresence
	flushArmed bool
	batched    bool
	catching   bool // a catch-up goroutine runs
	// sending counts the message.sends of this connection that have not been acked yet, by
	// chat and client_id: a catch-up that reads one of them from the store after its commit
	// and before its ack leaves it to the ack (advanceLocked).
	sending map[sendKey]int
	// ackedAhead are the seqs acked in chats the connection did not follow yet: a chat its
	// user just joined, whose chat.added is on its way. follow makes them the stream's acked,
	// so that the catch-up after chat.added does not send them again as message.new.
	ackedAhead map[int64][]int64
	// settingUp holds live messages while hello is built: the hello's last seqs decide which
	// of them are history and which follow it (finishSetup).
	settingUp bool
	// early are the frames to the user's devices about a chat (read.updated, chat.settings)
	// that came while hello was built: sent after it if the hello lists their chat, else
	// dropped (a chat the user left meanwhile must not show up in anything after the hello);
	// and the chat.added and chat.removed that came meanwhile, weighed against the hello's
	// list when it is done (told).
	early []earlyFrame
	// told are the chats the client was told it is in (by hello or chat.added), each with the
	// seq of the fact that told it (the hello's last seq of the chat, chat.added's join). A chat's
	// membership frames alternate: chat.added only for a chat not told, or told by an older
	// fact (the user left and came back, and the leave's chat.removed has not come: one
	// without a reason goes first); chat.removed only for a chat told.
	told map[int64]int64
	// ended are the chats told whose stream ended at the user's leave (the seq of its system
	// message) while the leave's chat.removed has not come: the client still shows them. A
	// comeback whose chat.added the broker lost too leaves them so, which the audit mends
	// (audit.go).
	ended map[int64]int64
	// heldBytes is what the streams hold while a gap is filled; it is bounded like the outbox.
	heldBytes int64

	// Guarded by the hub's mu: the users this connection subscribed to (presence.subscribe)
	// and the chat its client shows (chat.open; 0 none).
	watching []int64
	open     int64
}

// A stream is a connection's position in one chat. Everything of a chat reaches the client
// in the chat's seq order: messages by their seq, and the chat's other events (read marks,
// members joining and leaving, typing) right after the message they followed (their "at").
// So a membership ends at a seq: when the stream reaches the system message that removes the
// connection's user (a leave, a kick), it ends there, and nothing that follows it in the chat
// is sent, whatever order the broker delivered things in and whatever a read from the store
// brings.
//
// A chat's changes (edits, deletes, reactions) follow the same rules by their rev: each is
// sent once, in rev order, right after the message it followed (its "at"); a gap is healed
// from the store, which gives the latest state of each message changed since, as one
// message.updated each.
type stream struct {
	sent   int64              // every message up to this seq has been sent (or acked)
	base   int64              // up to this seq the messages are history: not sent on this connection
	rev    int64              // every change up to this rev has been sent, or is history
	revBas int64              // up to this rev the changes are history (hello, chat.added)
	acked  map[int64]struct{} // seqs answered with message.ack, beyond sent
	paused bool               // a catch-up or sync is filling a gap: hold live messages
	held   []item
	lag    bool // needs a catch-up from the store
	// readAll is the chat's read-all mark as the client last heard it (hello, chat.added,
	// chat.read_all).
	readAll int64
	// audited is the chat's head that the audit last found this stream behind (audit.go).
	audited chat.ChatHead
	// since is the seq of the membership the stream follows (hello, chat.added): up to it the
	// messages are history, and one of them that ended the user's membership ended an earlier
	// one, which the user came back from (left, then invited again, while the stream was
	// paused filling a gap): it ends nothing.
	since int64
	// added is the chat as read for a chat.added that came while the hello was built: the
	// stream moves to it only if the client is told of that membership (addedLocked), not when
	// the hello lists it (the client then knows the chat up to the hello's last_seq only).
	added chat.ChatHead
}

// item is a message or a chat event waiting in a stream, or read from the store.
type item struct {
	seq   int64 // the message's seq; for an event, the seq of the message it follows
	event bool  // a chat event, not a message
	rev   int64 // a change's rev (message.updated, reaction.updated); 0 for anything else
	// stateRev is, for a message read from the store, the rev of the state its frame shows.
	stateRev int64
	typ      string
	frame    []byte
	own      bool // a message this connection sent itself (it got message.ack)
	// sender and clientID are a message's, when it was read from the store.
	sender   int64
	clientID string
	rm       int64  // the user whose membership this (system) message ends
	then     []byte // the chat.read_all that follows this message
	// readAll is the read-all mark of then, or of a chat.read_all event.
	readAll int64
}

func (it item) size() int64 { return cost(it.frame) + cost(it.then) }

// enqueue queues a frame without ever blocking: a client too slow to take its frames is
// dropped with 1013 and will sync after reconnecting.
func (c *conn) enqueue(typ string, frame []byte) {
	if len(frame) == 0 {
		return
	}
	c.queued(c.out.push(frame), typ)
}

// enqueueComeback queues a chat.removed without reason and the chat.added of the membership
// that followed it as one, so that no frame another goroutine queues (presence, a pong) comes
// between them: a client takes a chat.removed without reason followed by anything else for a
// leave (PROTOCOL.md).
func (c *conn) enqueueComeback(removed, added []byte) {
	c.queued(c.out.push(removed, added), chat.EventChatRemoved, chat.EventChatAdded)
}

// queued counts the frames of a push and starts the writer, or drops the connection whose
// budget the push would pass.
func (c *conn) queued(res pushed, typs ...string) {
	switch res {
	case pushStartWriter:
		go c.writer()
		fallthrough
	case pushQueued:
		for _, typ := range typs {
			c.h.stats.FramesOut.Add(typ)
		}
		c.h.noteQueued()
	case pushFull:
		c.h.stats.SlowDropped.Add(1)
		c.close(closeTryLater, "too slow: reconnect and sync")
	}
}

// enqueueAll queues frames whose room was waited for (outbox.waitRoom).
func (c *conn) enqueueAll(typ string, frames [][]byte) {
	if len(frames) == 0 {
		return
	}
	if c.out.pushAll(frames) == pushStartWriter {
		go c.writer()
	}
	c.h.stats.FramesOut[frameIndex[typ]].Add(int64(len(frames)))
	c.h.noteQueued()
}

// closeWait bounds a close: a client that has not answered the close frame by then (or not
// taken it: a full socket) is dropped. The library alone would wait up to 5 s for the frame
// to go out and 5 s more for the answer, so a client that stopped answering pings, or
// reading, stayed connected (and online) that much longer.
const closeWait = 2 * time.Second

// close ends the connection with a code; the first call wins.
func (c *conn) close(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		// Close first, so that the close frame goes out; cancelling the context of a pending
		// Read drops the TCP connection without one, which only a client that has not answered
		// in closeWait gets.
		go func() {
			drop := time.AfterFunc(closeWait, c.cancel)
			c.ws.Close(code, reason)
			drop.Stop()
			c.cancel()
		}()
	})
}

// follow starts (or moves forward) the connection's stream of a chat: every message up to
// at.Seq and every change up to at.Rev are known to the client, and the read-all mark at.ReadAll.
func (c *conn) follow(chatID int64, at chat.ChatHead) { c.followSince(chatID, at, at.Seq) }

// followSince is follow for a membership that began at seq since (chat.added): one that began
// no later than the membership the client was told of starts nothing, whether its stream has
// ended at its leave already or goes on from what the client was told (the chat as read for
// chat.added, later, would take the messages between for ones the client has, and some may
// still be on their way). A stream of a membership the client is yet to be told of starts
// paused: what comes of the chat before chat.added waits for it (Hub.follow tells the client,
// then catches the stream up), so that a client hears nothing of a chat it does not have, and
// no message or read-all mark ahead of chat.added's last_seq and read_all_seq.
func (c *conn) followSince(chatID int64, at chat.ChatHead, since int64) {
	c.mu.Lock()
	if t, ok := c.told[chatID]; ok && t >= since {
		c.mu.Unlock()
		return
	}
	if st, ok := c.streams[chatID]; !ok {
		st = &stream{sent: at.Seq, base: at.Seq, rev: at.Rev, revBas: at.Rev, readAll: at.ReadAll, paused: true, since: at.Seq}
		for _, seq := range c.ackedAhead[chatID] {
			if seq > st.sent {
				if st.acked == nil {
					st.acked = map[int64]struct{}{}
				}
				st.acked[seq] = struct{}{}
			}
		}
		delete(c.ackedAhead, chatID)
		delete(c.ended, chatID)
		c.streams[chatID] = st
	} else if c.settingUp {
		st.added.Seq, st.added.Rev = max(st.added.Seq, at.Seq), max(st.added.Rev, at.Rev)
		st.added.ReadAll = max(st.added.ReadAll, at.ReadAll)
	} else {
		st.moveTo(at)
	}
	c.mu.Unlock()
}

// moveTo makes everything up to the chat's head at history to the stream (a chat.added told
// the client of the chat as read at at).
func (st *stream) moveTo(at chat.ChatHead) {
	st.since = max(st.since, at.Seq)
	if at.Seq > st.sent && !st.paused {
		st.sent, st.base = at.Seq, at.Seq
		st.rev, st.revBas = max(st.rev, at.Rev), max(st.revBas, at.Rev)
		st.readAll = max(st.readAll, at.ReadAll)
	}
}

// finishSetup ends the hello: every message up to a chat's last seq in it is history; those
// held meanwhile that come after it are released in order (a gap is healed from the store).
// Without the hold, a message committed between the reads of the chats that build the hello
// would be both counted in hello's last seq and delivered live.
func (c *conn) finishSetup(last map[int64]int64, heads map[int64]chat.ChatHead) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settingUp = false
	c.told = make(map[int64]int64, len(last))
	for id, seq := range last {
		c.told[id] = seq // the hello lists it
	}
	for i, f := range c.early {
		c.heldBytes -= cost(f.frame)
		switch {
		case f.typ == chat.EventChatAdded:
			c.addedLocked(f.chatID, f.seq, f.frame)
		case f.typ == chat.EventChatRemoved:
			if t, ok := c.told[f.chatID]; ok && t > f.seq {
				continue // the hello lists a membership begun after that leave
			}
			if comesBack(c.early[i+1:], f) {
				// The comeback's chat.added tells the client of the leave right before it
				// (addedLocked), as when the leave's chat.removed comes late: a client holds a
				// chat.removed without reason until the next frame, which must not be one of
				// the others held for the hello.
				continue
			}
			c.removedLocked(f.chatID, f.frame)
		case c.streams[f.chatID] != nil:
			c.enqueue(f.typ, f.frame)
		}
	}
	c.early = nil
	for id, st := range c.streams {
		st.sent = max(st.sent, last[id])
		st.base = max(st.base, last[id])
		st.rev = max(st.rev, heads[id].Rev)
		st.revBas = max(st.revBas, heads[id].Rev)
		st.readAll = max(st.readAll, heads[id].ReadAll)
		if st.lag { // a catch-up owns the stream; it starts from sent and resumes it
			continue
		}
		c.releaseHeldLocked(id, st)
		if st.lag {
			c.startCatchUpLocked()
		}
	}
}

// comesBack reports whether the frames held for a hello after a chat.removed (rm) hold a
// chat.added of a membership of its chat begun after that leave. If so the stream of that
// membership is there when the chat.added is weighed, or a later chat.removed held ends it.
func comesBack(rest []earlyFrame, rm earlyFrame) bool {
	for _, f := range rest {
		if f.typ == chat.EventChatAdded && f.chatID == rm.chatID && f.seq > rm.seq {
			return true
		}
	}
	return false
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

// unfollow ends the connection's stream of a chat.
func (c *conn) unfollow(chatID int64) {
	c.mu.Lock()
	c.endStreamLocked(chatID)
	c.mu.Unlock()
}

// added tells the client of its membership of a chat that began at seq (frame: chat.added),
// if the connection follows the chat and the client was not told of this membership or a
// later one (by a hello that listed the chat at or after seq); while hello is built, the
// hello's list decides (finishSetup).
func (c *conn) added(chatID, seq int64, frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.settingUp {
		c.earlyLocked(earlyFrame{chatID: chatID, typ: chat.EventChatAdded, frame: frame, seq: seq})
		return
	}
	c.addedLocked(chatID, seq, frame)
}

func (c *conn) addedLocked(chatID, seq int64, frame []byte) {
	st := c.streams[chatID]
	if st == nil {
		return // left again (its stream ended at the leave): the client hears of neither
	}
	added := st.added
	st.added = chat.ChatHead{}
	t, told := c.told[chatID]
	if told && t >= seq {
		// The hello, or a later chat.added, told it already: the stream goes on from there,
		// even if this chat.added read the chat later (while the hello was built).
		return
	}
	st.moveTo(added)
	c.told[chatID] = seq
	if told {
		// The user left the membership the client was told of and came back before the
		// leave's chat.removed came (it will be ignored): the client hears of the leave first.
		c.enqueueComeback(chatRemovedFrame(chatID, ""), frame)
		return
	}
	c.enqueue(chat.EventChatAdded, frame)
}

// removed ends the connection's stream of a chat the user left (at seq), and tells the
// client (frame: chat.removed) if it was told of the chat; while hello is built, the hello's
// list decides (finishSetup): a list that has the chat at a later seq was read after the user
// came back.
func (c *conn) removed(chatID, seq int64, frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endStreamLocked(chatID)
	if c.settingUp {
		c.earlyLocked(earlyFrame{chatID: chatID, typ: chat.EventChatRemoved, frame: frame, seq: seq})
		return
	}
	c.removedLocked(chatID, frame)
}

func (c *conn) removedLocked(chatID int64, frame []byte) {
	if _, ok := c.told[chatID]; !ok {
		return // neither the hello nor a chat.added told the client of it
	}
	delete(c.told, chatID)
	delete(c.ended, chatID)
	c.enqueue(chat.EventChatRemoved, frame)
}

func (c *conn) endStreamLocked(chatID int64) {
	if st := c.streams[chatID]; st != nil {
		for _, it := range st.held {
			c.heldBytes -= it.size()
		}
		delete(c.streams, chatID)
	}
}

// follows reports whether the connection follows a chat.
func (c *conn) follows(chatID int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams[chatID] != nil
}

// earlyFrame is a frame about a chat held while hello is built.
type earlyFrame struct {
	chatID int64
	typ    string
	frame  []byte
	seq    int64 // a chat.added's seq (the join's), a chat.removed's (the leave's)
}

// enqueueAbout sends a frame to the user's devices about a chat (read.updated,
// chat.settings) if the connection follows the chat; while hello is built, it waits for the
// hello to decide whether the chat is followed.
func (c *conn) enqueueAbout(chatID int64, typ string, frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streams[chatID] == nil {
		return
	}
	if !c.settingUp {
		c.enqueue(typ, frame)
		return
	}
	c.earlyLocked(earlyFrame{chatID: chatID, typ: typ, frame: frame})
}

// earlyLocked holds a frame about a chat until the hello is done (finishSetup).
func (c *conn) earlyLocked(f earlyFrame) {
	n := cost(f.frame)
	if c.heldBytes+n > c.h.opts.QueueBytes {
		c.close(closeTryLater, "too far behind: reconnect and sync")
		return
	}
	c.heldBytes += n
	c.early = append(c.early, f)
}

// deliverMessage sends a chat's message.new in seq order, exactly once. own marks the event of
// a message this connection sent itself (it got message.ack instead).
func (c *conn) deliverMessage(chatID int64, it item) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.streams[chatID]
	if st == nil || it.seq <= st.sent {
		return
	}
	if !st.paused && it.seq == st.sent+1 {
		c.advanceLocked(chatID, st, it)
		return
	}
	// A gap (or a catch-up in progress): hold it and let the store fill in what is missing.
	if !c.holdLocked(st, it) {
		return
	}
	if !st.paused {
		st.paused, st.lag = true, true
		c.h.stats.GapsHealed.Add(1)
		c.startCatchUpLocked()
	}
}

// deliverEvent sends a chat event (not a message) once the stream has sent the message it
// follows. An ephemeral one (typing) that comes ahead of its message is dropped; any other is
// held, and the missing messages are read from the store (the hub's reorderer has already
// waited for them).
func (c *conn) deliverEvent(chatID int64, it item, ephemeral bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.streams[chatID]
	if st == nil {
		return
	}
	if !st.paused && st.known(it.seq) {
		if st.heard(it.readAll) {
			c.enqueue(it.typ, it.frame)
		}
		return
	}
	if ephemeral || !c.holdLocked(st, it) {
		return
	}
	if !st.paused {
		st.paused, st.lag = true, true
		c.h.stats.GapsHealed.Add(1)
		c.startCatchUpLocked()
	}
}

// deliverChange sends a chat's change (message.updated, reaction.updated) in rev order,
// exactly once, after the message it follows. A gap in revs, or a change ahead of its
// message, is held while the store fills in what is missing.
func (c *conn) deliverChange(chatID int64, it item) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.streams[chatID]
	if st == nil || it.rev <= st.rev {
		return
	}
	if !st.paused && it.rev == st.rev+1 && st.known(it.seq) {
		st.rev = it.rev
		c.h.stats.Changes.Add(1)
		c.enqueue(it.typ, it.frame)
		return
	}
	if !c.holdLocked(st, it) {
		return
	}
	if !st.paused {
		st.paused, st.lag = true, true
		c.h.stats.GapsHealed.Add(1)
		c.startCatchUpLocked()
	}
}

// heard records a read-all mark about to be sent to the client (0: none) and reports whether
// it is worth sending: a mark that does not grow what the client has is not, so the client's
// mark never goes back. Marks follow the chat's last message at their commit, but two
// committed with no message between follow the same one and may reach the stream in the
// other order (published by two instances); a catch-up from the store sends messages without
// the marks that rode with them, and the audit sends the mark it read. Any other frame
// (readAll 0) is worth sending.
func (st *stream) heard(readAll int64) bool {
	if readAll == 0 {
		return true
	}
	if readAll <= st.readAll {
		return false
	}
	st.readAll = readAll
	return true
}

// known reports whether the client has every message up to seq: sent, or acked to it.
func (st *stream) known(seq int64) bool {
	for s := st.sent + 1; s <= seq; s++ {
		if _, ok := st.acked[s]; !ok {
			return false
		}
	}
	return true
}

// holdLocked keeps an item until the gap before it is filled; a client that falls too far
// behind is dropped with 1013 instead.
func (c *conn) holdLocked(st *stream, it item) bool {
	n := it.size()
	if len(st.held) >= c.h.opts.MaxPending || c.heldBytes+n > c.h.opts.QueueBytes {
		c.close(closeTryLater, "too far behind: reconnect and sync")
		return false
	}
	st.held = append(st.held, it)
	c.heldBytes += n
	return true
}

// advanceLocked sends one message that is next in line, and the read mark that follows it. A
// system message that ends the user's membership ends the stream: it and everything after it
// stay unsent (the user's devices get chat.removed).
func (c *conn) advanceLocked(chatID int64, st *stream, it item) (goesOn bool) {
	st.sent = it.seq
	if it.seq <= st.since {
		delete(st.acked, it.seq)
		return true // history of the membership the stream follows (see since)
	}
	if it.rm == c.userID || it.rm == rmEveryone {
		c.endStreamLocked(chatID)
		if _, ok := c.told[chatID]; ok {
			if c.ended == nil {
				c.ended = map[int64]int64{}
			}
			c.ended[chatID] = it.seq
		}
		return false
	}
	own := it.own || (it.sender == c.userID && c.sending[sendKey{chatID, it.clientID}] > 0)
	if _, ok := st.acked[it.seq]; ok {
		delete(st.acked, it.seq)
		own = true
	}
	if !own {
		c.h.stats.Delivered.Add(1)
		c.enqueue(chat.EventMessageNew, it.frame)
	}
	if st.heard(it.readAll) {
		c.enqueue(chat.EventChatReadAll, it.then)
	}
	return true
}

// maxAheadChats bounds the chats a connection keeps acks for before it follows them
// (ackedAhead).
const maxAheadChats = 16

// sendKey names a message.send of a connection: its chat and client_id.
type sendKey struct {
	chatID   int64
	clientID string
}

// sendBegins counts a message.send in flight until markAcked or sendFailed.
func (c *conn) sendBegins(k sendKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sending == nil {
		c.sending = map[sendKey]int{}
	}
	c.sending[k]++
}

// sendFailed ends a message.send answered with an error.
func (c *conn) sendFailed(k sendKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sendEndsLocked(k)
}

func (c *conn) sendEndsLocked(k sendKey) {
	if c.sending[k] <= 1 {
		delete(c.sending, k)
		return
	}
	c.sending[k]--
}

// markAcked ends the message.send k, committed as seq, and records that this connection got
// message.ack for it, so that neither the live event nor a catch-up sends it again.
func (c *conn) markAcked(k sendKey, seq int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sendEndsLocked(k)
	chatID := k.chatID
	st := c.streams[chatID]
	if st == nil {
		// A chat the user joined while this message was on its way: the connection follows
		// it once chat.added comes (follow). Bounded; past the bound, dropping them only
		// reopens that race.
		if len(c.ackedAhead) >= maxAheadChats || len(c.ackedAhead[chatID]) >= c.h.opts.MaxPending {
			c.ackedAhead = nil
		}
		if c.ackedAhead == nil {
			c.ackedAhead = map[int64][]int64{}
		}
		c.ackedAhead[chatID] = append(c.ackedAhead[chatID], seq)
		return
	}
	if seq <= st.sent {
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

// catchUp fills every lagging stream from the store, a page at a time and only as fast as
// the client takes it, then releases what it held, in order.
func (c *conn) catchUp() {
	backoff := 100 * time.Millisecond
	attempts := 0
	var avg int64 // the size of the last page's frames
	stop := func() {
		c.mu.Lock()
		c.catching = false
		c.mu.Unlock()
	}
	// failed reports whether to go on after a failed read: not once the connection is gone;
	// else after a growing pause.
	failed := func(what string, chatID int64, err error) bool {
		if c.ctx.Err() != nil {
			stop()
			return false
		}
		c.h.log.Warn(what, "chat_id", chatID, "err", err)
		select {
		case <-time.After(backoff):
		case <-c.ctx.Done():
		}
		backoff = min(backoff*2, 5*time.Second)
		return true
	}
	for {
		c.mu.Lock()
		if c.ctx.Err() != nil {
			c.catching = false
			c.mu.Unlock()
			return
		}
		var chatID, after, afterRev int64
		for id, st := range c.streams {
			if st.lag {
				chatID, after, afterRev = id, st.sent, st.rev
				break
			}
		}
		if chatID == 0 {
			c.catching = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()

		if c.out.waitRoom(c.ctx, 0) != nil {
			stop()
			return
		}
		page, err := c.h.fetch(c.ctx, chatID, after, 0, 0, c.out.pageFor(avg))
		if err != nil {
			if !failed("catch-up from store", chatID, err) {
				return
			}
			continue
		}
		backoff = 100 * time.Millisecond
		if len(page.msgs) > 0 {
			avg = page.bytes / int64(len(page.msgs))
		}

		c.mu.Lock()
		st := c.streams[chatID]
		stuck := false
		if st != nil {
			for _, m := range page.msgs {
				if m.seq != st.sent+1 {
					continue
				}
				if !c.advanceLocked(chatID, st, m) {
					st = nil // the membership ended at this message
					break
				}
				c.releaseEventsLocked(st, m.seq)
			}
		}
		var caughtUp bool // every message the store had is out: the changes are next
		if st != nil {
			caughtUp = !page.more
			afterRev = st.rev
		}
		c.mu.Unlock()
		if caughtUp {
			done, err := c.catchUpChanges(chatID, afterRev, avg)
			if err != nil {
				if !failed("catch-up of changes from store", chatID, err) {
					return
				}
				continue
			}
			c.mu.Lock()
			if st = c.streams[chatID]; st != nil {
				if done {
					c.releaseHeldLocked(chatID, st)
				}
				stuck = st.lag && st.sent == after && st.rev == afterRev
			}
			c.mu.Unlock()
		}
		if stuck {
			// The store does not show a message that the broker announced: it cannot happen
			// with one database, so wait a little, and give up on the connection if it lasts.
			if attempts++; attempts > 20 {
				c.close(closeTryLater, "could not heal a gap: reconnect and sync")
				stop()
				return
			}
			select {
			case <-time.After(backoff):
			case <-c.ctx.Done():
			}
			backoff = min(backoff*2, time.Second)
		} else {
			attempts = 0
		}
	}
}

// catchUpChanges sends, as one message.updated each, the latest state of a page of the
// chat's messages changed after rev, if the stream has sent every message that the page's
// changes followed (else the messages come first: done false, and the caller reads them). It
// reports whether the stream has every change the store had.
func (c *conn) catchUpChanges(chatID, afterRev, avg int64) (done bool, err error) {
	if err := c.out.waitRoom(c.ctx, 0); err != nil {
		return false, err
	}
	c.mu.Lock()
	var seen int64
	if st := c.streams[chatID]; st != nil {
		seen = st.revBas
	}
	c.mu.Unlock()
	page, err := c.h.fetchChanges(c.ctx, chatID, afterRev, seen, c.out.pageFor(avg))
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.streams[chatID]
	if st == nil || st.rev != afterRev || page.lastSeq > st.sent {
		return false, nil
	}
	for _, m := range page.msgs {
		if m.rev > st.rev {
			st.rev = m.rev
			c.h.stats.Changes.Add(1)
			c.enqueue(chat.EventMessageUpdated, m.frame)
		}
	}
	return !page.more, nil
}

// releaseHeldLocked sends the held messages and events that now follow in order and ends the
// pause; if a gap remains (the store had not yet shown a message), the stream stays lagging.
func (c *conn) releaseHeldLocked(chatID int64, st *stream) {
	items := st.held
	st.held = nil
	for _, it := range items {
		c.heldBytes -= it.size()
	}
	// Stable: the events that follow one message keep the order they came in (a transfer's
	// member.role of the new owner, then of the old one).
	slices.SortStableFunc(items, func(a, b item) int {
		if r := cmp.Compare(a.seq, b.seq); r != 0 {
			return r
		}
		if r := cmp.Compare(boolInt(a.event), boolInt(b.event)); r != 0 {
			return r // a message before its events
		}
		return cmp.Compare(a.rev, b.rev) // changes that follow one message in rev order
	})
	var rest []item
	for _, it := range items {
		switch {
		case it.rev > 0 && it.rev <= st.rev: // a change the store brought already
		case it.rev > 0 && it.rev == st.rev+1 && st.known(it.seq):
			st.rev = it.rev
			c.h.stats.Changes.Add(1)
			c.enqueue(it.typ, it.frame)
		case it.rev > 0:
			rest = append(rest, it)
			c.heldBytes += it.size()
		case it.event && st.known(it.seq):
			if st.heard(it.readAll) {
				c.enqueue(it.typ, it.frame)
			}
		case !it.event && it.seq <= st.sent:
		case !it.event && it.seq == st.sent+1:
			if !c.advanceLocked(chatID, st, it) {
				return // the stream ended
			}
		default:
			rest = append(rest, it)
			c.heldBytes += it.size()
		}
	}
	st.held = rest
	st.lag = len(rest) > 0
	st.paused = st.lag
}

// releaseEventsLocked sends the held chat events (not changes) that follow message seq, just
// sent from the store, so that each comes right after its message (member.left right after
// the leave's message) rather than after the rest of the page (releaseHeldLocked).
//
// It runs for every message a catch-up sends, while a lagging stream may hold many messages:
// it looks without allocating, and filters in place only when it has something to send.
func (c *conn) releaseEventsLocked(st *stream, seq int64) {
	follows := func(it item) bool { return it.event && it.rev == 0 && it.seq == seq }
	i := slices.IndexFunc(st.held, follows)
	if i < 0 {
		return
	}
	rest := st.held[:i]
	for _, it := range st.held[i:] {
		if follows(it) {
			c.heldBytes -= it.size()
			if st.heard(it.readAll) {
				c.enqueue(it.typ, it.frame)
			}
			continue
		}
		rest = append(rest, it)
	}
	clear(st.held[len(rest):]) // the frames sent are not kept alive by the array
	st.held = rest
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// fetched is a page of messages read from the store, encoded once as message.new frames and
// shared by every connection that asked for the same page at the same time.
type fetched struct {
	msgs  []item
	more  bool
	bytes int64
}

// fetch reads up to limit messages of a chat after a seq (below before, if set), coalescing
// identical concurrent reads: after a broker reconnect a thousand connections of one chat
// cost one query.
//
// seen is the last rev the reader's connection has been sent of the chat when the messages
// read may have had changes sent to it already (a sync's history: every message up to the
// hello's last seq is known to the stream, so its changes come live from the hello on), and
// 0 otherwise (messages the stream has not sent, whose changes wait for them). It is part of
// the key, so that a read is shared only with readers that had been sent the same changes,
// whose reads began after those were committed. Without it, a sync could join a read begun
// before a change that its connection had already been sent live, and deliver the message in
// its state before that change, which a client that got the change before the message (and
// dropped it) then never learns of.
func (h *Hub) fetch(ctx context.Context, chatID, after, before, seen int64, limit int) (*fetched, error) {
	key := chatTopic(chatID) + "/" + itoa(after) + "/" + itoa(before) + "/" + itoa(int64(limit)) + "/" + itoa(seen)
	v, err, _ := h.fetches.Do(key, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		msgs, more, err := h.store.History(ctx, chat.HistoryQuery{ChatID: chatID, After: after, HasAfter: true, Before: before, Limit: limit})
		if err != nil {
			return nil, err
		}
		out := &fetched{more: more, msgs: make([]item, len(msgs))}
		for i, m := range msgs {
			f, err := encodeFrame(chat.EventMessageNew, nil, chat.MessageData{Message: m})
			if err != nil {
				return nil, err
			}
			out.msgs[i] = item{seq: m.Seq, frame: f, rm: removedBy(m), stateRev: m.Rev}
			if m.SenderID != nil && m.ClientID != nil {
				out.msgs[i].sender, out.msgs[i].clientID = *m.SenderID, *m.ClientID
			}
			out.bytes += cost(f)
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*fetched), nil
}

// fetchedChanges is a page of changed messages read from the store, encoded once as
// message.updated frames and shared like fetched.
type fetchedChanges struct {
	msgs    []item
	more    bool
	lastSeq int64 // the chat's last seq as of the read: every change read followed it or less
}

// fetchChanges reads up to limit of a chat's messages changed after rev, in rev order,
// coalescing identical concurrent reads. seen is a rev the reader knows to be committed (its
// hello's last rev): it is part of the key, so that a read is shared only with readers that
// knew of the same rev, whose read began after it. Without it, a read begun before a hello
// could answer a sync of that hello with a page that lacks changes up to its last rev, which
// are history to the connection and never come live: lost.
func (h *Hub) fetchChanges(ctx context.Context, chatID, afterRev, seen int64, limit int) (*fetchedChanges, error) {
	key := "rev/" + chatTopic(chatID) + "/" + itoa(afterRev) + "/" + itoa(seen) + "/" + itoa(int64(limit))
	v, err, _ := h.fetches.Do(key, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		page, err := h.store.Changes(ctx, chatID, afterRev, limit)
		if err != nil {
			return nil, err
		}
		out := &fetchedChanges{more: page.More, lastSeq: page.LastSeq, msgs: make([]item, len(page.Messages))}
		for i, m := range page.Messages {
			f, err := encodeFrame(chat.EventMessageUpdated, nil, chat.MessageData{Message: m})
			if err != nil {
				return nil, err
			}
			out.msgs[i] = item{seq: m.Seq, event: true, rev: m.Rev, typ: chat.EventMessageUpdated, frame: f}
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*fetchedChanges), nil
}

// rmEveryone is item.rm (envelope.Rm) of a system message that ends every member's
// membership (a deleted group): every stream of the chat ends at it.
const rmEveryone = -1

// removedBy is the user whose membership a system message ends, if any (rmEveryone: all).
func removedBy(m chat.Message) int64 {
	if m.Kind != chat.MessageSystem || m.Event == nil {
		return 0
	}
	switch {
	case chat.EndsEveryMembership(m.Event.Type):
		return rmEveryone
	case chat.EndsMembership(m.Event.Type):
		return m.Event.UserID
	}
	return 0
}
