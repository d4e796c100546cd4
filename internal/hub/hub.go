// Package hub is the real-time layer of one instance: the WebSocket endpoint, the local
// connections (many devices per user), and the fan-out of events that arrive from the broker.
//
// Every event travels through the broker, this instance's own included, so one path delivers
// everything. Messages carry their seq: each connection tracks the last seq it has been sent per
// chat, drops duplicates, and on a gap pauses that chat, reads the missing messages from the
// store (the durable truth) and resumes, so a client sees every message once and in order even
// when the broker loses or reorders events.
package hub

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/chat"
)

// Options tune a Hub. Zero values take the defaults.
type Options struct {
	InstanceID string
	// QueueBytes bounds the bytes of frames queued for one connection and being written to it
	// (outbox.go): a live event beyond it drops the client with 1013; a sync waits for room.
	QueueBytes int64
	// QueueTotal bounds the bytes queued for all of the instance's connections together:
	// beyond it the connections holding the most are dropped with 1013 until it is back
	// under 90 %.
	QueueTotal int64
	// PingEvery is the server's ping period; a pong must come within PongWait.
	PingEvery time.Duration
	PongWait  time.Duration
	// WriteTimeout bounds every write: a write of frames has at least half of it and at most
	// all of it to finish, a control frame what is left of the last one's (corkConn).
	WriteTimeout time.Duration
	// WriteDelay, if set, is the least time between two writes of a connection: frames that
	// come sooner after a write wait for the rest of it and go out together (writeWait); a
	// connection that has been quiet writes at once (0: every frame at once).
	WriteDelay time.Duration
	// OfflineGrace is how long after a user's last device leaves before others see them offline.
	OfflineGrace time.Duration
	// PresenceTTL is how long a presence mark lives without a refresh (an instance crash).
	PresenceTTL time.Duration
	// RestartGrace is how long after this instance stops (Shutdown) another instance tells
	// the chats of its users who have not reconnected elsewhere that they are offline.
	RestartGrace time.Duration
	// PresenceGroupMax is the most members a group may have for every member to get the
	// presence of every other and their typing (presence.go); in a bigger one, a connection
	// gets the presence of the users it subscribed to and the typing of the chat it has open.
	PresenceGroupMax int
	// AuditEvery is the period of the audit that catches up, from the store, a stream still
	// missing an event committed before the last audit: one the broker lost with nothing of
	// its chat after it (audit.go).
	AuditEvery time.Duration
	// PresenceEvery is how long a connection's presence changes, and a big group's typing,
	// are collected before they go out in one frame.
	PresenceEvery time.Duration
	// FramesPerSecond and FrameBurst limit what one connection may send.
	FramesPerSecond float64
	FrameBurst      int
	// MaxConnsPerUser caps one user's simultaneous connections on this instance.
	MaxConnsPerUser int
	// SyncLimit is how many missed messages of one chat a sync sends before sync.truncated.
	SyncLimit int
	// MaxPending bounds, per connection and chat, the live messages held while a gap is
	// filled from the store (beyond it the client is dropped with 1013), and the own messages
	// acknowledged before their live event came back (beyond it they are read from the store).
	MaxPending int
	// Observer gets timings for metrics.
	Observer Observer
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.PingEvery, 25*time.Second)
	def(&o.PongWait, 10*time.Second)
	def(&o.WriteTimeout, 10*time.Second)
	def(&o.OfflineGrace, 3*time.Second)
	def(&o.PresenceTTL, 30*time.Second)
	def(&o.RestartGrace, 10*time.Second)
	def(&o.PresenceEvery, 200*time.Millisecond)
	def(&o.AuditEvery, 5*time.Second)
	if o.PresenceGroupMax == 0 {
		o.PresenceGroupMax = DefaultPresenceGroupMax
	}
	if o.QueueBytes == 0 {
		o.QueueBytes = DefaultQueueBytes
	}
	if o.QueueTotal == 0 {
		o.QueueTotal = DefaultQueueTotal
	}
	if o.FramesPerSecond == 0 {
		o.FramesPerSecond = 50
	}
	if o.FrameBurst == 0 {
		o.FrameBurst = 200
	}
	if o.MaxConnsPerUser == 0 {
		o.MaxConnsPerUser = 64
	}
	if o.SyncLimit == 0 {
		o.SyncLimit = 500
	}
	if o.MaxPending == 0 {
		o.MaxPending = 4096
	}
}

// The defaults of the byte budgets (Options.QueueBytes, Options.QueueTotal) and of
// Options.PresenceGroupMax.
const (
	DefaultQueueBytes       = 1 << 20
	DefaultQueueTotal       = 64 << 20
	DefaultPresenceGroupMax = 50
)

// Hub owns the instance's connections and its broker subscriptions.
type Hub struct {
	svc      *chat.Service
	store    chat.Store
	broker   broker.Broker
	presence broker.Presence
	log      *slog.Logger
	opts     Options
	ctx      context.Context // ends at Shutdown: background work stops with it
	cancel   context.CancelFunc
	// publishLog bounds the warnings of failed publishes: with the broker down every event
	// fails (5,657 lines in 8 s under load); chat_broker_publish_failures_total counts them all.
	publishLog chat.LogLimit
	// unavailableLog bounds the warnings of frames refused as unavailable (a full disk, the
	// database down), which come with every frame meanwhile.
	unavailableLog chat.LogLimit

	subs subscriptions // the broker topics wanted, sent by subscribeLoop (subscribe.go)
	// turns serializes each user's presence transitions here (presence.go: turn).
	turns [64]sync.Mutex
	// ctrl runs membership changes that arrive as events, in order, off the delivery goroutine.
	ctrl chan func()
	// checkMembers asks the next audit to read the users' chats (audit.go): set when the
	// broker resubscribed, as chat.added and chat.removed may have been lost.
	checkMembers atomic.Bool
	// auditFailures holds the audit's reads that are failing, by what they read (auditRead);
	// only the audit's goroutine uses it.
	auditFailures map[string]*auditFailure
	// afterCommit, set by tests only, runs between a message.send's commit and its ack.
	afterCommit atomic.Pointer[func(chatID, seq int64)]
	// beforeFollow, set by tests only, runs before a chat.added received is followed.
	beforeFollow atomic.Pointer[func(userID, chatID int64)]
	// beforeHelloDone, set by tests only, runs when a hello has read its user's chats for the
	// last time, before the frames held for it are weighed (finishSetup).
	beforeHelloDone atomic.Pointer[func(userID int64)]

	mu      sync.Mutex
	users   map[int64]*userState
	chats   map[int64]*chatState
	closing bool
	conns   sync.WaitGroup
	// watchers are the local connections subscribed to each user's presence; opens those
	// that show each chat (chat.open). Both serve big groups only.
	watchers map[int64]map[*conn]struct{}
	opens    map[int64]map[*conn]struct{}
	typists  typists // a big group's typing, collected per chat (typing.go)
	// offline holds the "offline" presence events received since the marks were last checked
	// (presence.go: checkOffline).
	offline offlineChecks
	// later holds, per user who left this instance while another instance's mark still said
	// online, the look to take once that mark would have expired (presence.go: offlineLater).
	later map[int64]*time.Timer
	// adding holds, per user and chat whose chat.added is on its way to the user's
	// connections (received, not yet followed: membership.go, follow), the frames about that
	// chat for the user's devices that came meanwhile (read.updated, chat.settings): they go
	// out right after chat.added, not before it, and are not lost for a chat not yet followed.
	adding map[userChat]*pendingAdd
	// takenOver is set when another instance took this one's users over (its marks had
	// expired) until they are announced online again (presence.go: renewMarks).
	takenOver atomic.Bool

	nextConn atomic.Uint64
	// queued is the bytes queued and in flight over every connection (outbox.go); shedding
	// is set while shed runs.
	queued   atomic.Int64
	shedding atomic.Bool
	order    reorderer // puts each chat's message events back in seq order (reorder.go)
	fetches  singleflight.Group
	stats    Stats
}

// Stats are counters for metrics and tests.
type Stats struct {
	Connections atomic.Int64
	Users       atomic.Int64 // users with a connection here
	Delivered   atomic.Int64 // message.new frames queued to connections
	Changes     atomic.Int64 // message.updated and reaction.updated frames queued to connections
	GapsHealed  atomic.Int64
	// AuditHeals counts the streams the audit found behind their chat's head, and the
	// memberships it mended (audit.go).
	AuditHeals   atomic.Int64
	SlowDropped  atomic.Int64
	PublishFails atomic.Int64
	// Shed counts the connections closed because the instance's queued bytes passed
	// Options.QueueTotal; QueuedPeak is the most bytes ever queued at once.
	Shed       atomic.Int64
	QueuedPeak atomic.Int64
	FramesIn   FrameCounts
	FramesOut  FrameCounts
}

// FrameTypes are the frame types counted by FrameCounts; anything else counts as "other".
var FrameTypes = []string{"hello", "message.send", "message.new", "message.ack", "read", "read.updated", "chat.read_all",
	"typing", "presence", "chat.added", "chat.removed", "member.joined", "member.left", "sync", "sync.truncated",
	"sync.done", "ping", "pong", "error", "chat.updated", "member.role", "user.updated", "message.updated", "reaction.updated",
	"presence.subscribe", "chat.open", "other"}

var frameIndex = func() map[string]int {
	m := make(map[string]int, len(FrameTypes))
	for i, t := range FrameTypes {
		m[t] = i
	}
	return m
}()

// FrameCounts counts frames by type without locks or allocation.
type FrameCounts [27]atomic.Int64

// Add counts one frame of type typ.
func (f *FrameCounts) Add(typ string) {
	i, ok := frameIndex[typ]
	if !ok {
		i = len(FrameTypes) - 1
	}
	f[i].Add(1)
}

// Observer receives timings, for metrics. Nil fields are skipped.
type Observer struct {
	// Publish is how long a broker publish took.
	Publish func(d time.Duration)
	// Receive is the time from publish (on any instance) to delivery here.
	Receive func(d time.Duration)
	// Commit is the time from a message's created_at (when an instance took the send: its
	// queue wait and its commit are inside) to its fan-out here, once per message.
	Commit func(d time.Duration)
	// Held is how long a message that arrived ahead of its predecessor (another instance's
	// commit, published later) waited for it before its fan-out here.
	Held func(d time.Duration)
}

var (
	_ chat.Publisher = (*Hub)(nil)
	_ chat.Presence  = (*Hub)(nil)
	_ broker.Handler = (*Hub)(nil)
)

// New builds a hub and starts the broker delivering to it. Shutdown ends it.
func New(svc *chat.Service, b broker.Broker, p broker.Presence, log *slog.Logger, opts Options) (*Hub, error) {
	opts.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{svc: svc, store: svc.Store(), broker: b, presence: p, log: log, opts: opts, ctx: ctx, cancel: cancel,
		users: map[int64]*userState{}, chats: map[int64]*chatState{}, watchers: map[int64]map[*conn]struct{}{},
		opens: map[int64]map[*conn]struct{}{}, later: map[int64]*time.Timer{}, adding: map[userChat]*pendingAdd{},
		ctrl: make(chan func(), 1<<16), auditFailures: map[string]*auditFailure{}}
	h.order.release = h.fanOut
	h.order.held = h.opts.Observer.Held
	h.subs.topics, h.subs.kick = map[string]*topicSub{}, make(chan struct{}, 1)
	if err := b.Start(ctx, h); err != nil {
		cancel()
		return nil, err
	}
	go h.refreshPresence()
	go h.auditLoop()
	go h.control()
	go h.subscribeLoop()
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	if err := h.await(sctx, h.reconcile(usersTopic)); err != nil {
		h.log.Warn("subscribe", "topic", usersTopic, "err", err)
	}
	return h, nil
}

// Stats exposes the hub's counters.
func (h *Hub) Stats() *Stats { return &h.stats }

// Queued is the bytes queued and being written for all of the instance's connections.
func (h *Hub) Queued() int64 { return h.queued.Load() }

// noteQueued records the instance's queued bytes after a push: the peak, and shedding when
// they pass the instance's budget.
func (h *Hub) noteQueued() {
	n := h.queued.Load()
	for {
		peak := h.stats.QueuedPeak.Load()
		if n <= peak || h.stats.QueuedPeak.CompareAndSwap(peak, n) {
			break
		}
	}
	if n > h.opts.QueueTotal && h.shedding.CompareAndSwap(false, true) {
		go h.shed()
	}
}

// shed closes, with 1013, the connections holding the most queued bytes until what stays
// queued is under 90 % of the instance's budget. A connection that is closed gives its bytes
// back as its writer ends, so the count is of what the closed ones held.
func (h *Hub) shed() {
	defer h.shedding.Store(false)
	type held struct {
		c *conn
		n int64
	}
	h.mu.Lock()
	all := make([]held, 0, len(h.users))
	for _, u := range h.users {
		for c := range u.conns {
			all = append(all, held{c: c})
		}
	}
	h.mu.Unlock()
	excess := h.queued.Load() - h.opts.QueueTotal*9/10
	for i := range all {
		all[i].n = all[i].c.out.queued()
		if all[i].c.closing.Load() { // already going: its bytes are on their way out
			excess -= all[i].n
			all[i].n = 0
		}
	}
	slices.SortFunc(all, func(a, b held) int { return cmp.Compare(b.n, a.n) })
	for _, x := range all {
		if excess <= 0 || x.n == 0 {
			break
		}
		excess -= x.n
		h.stats.Shed.Add(1)
		h.stats.SlowDropped.Add(1)
		x.c.close(closeTryLater, "the server is short of memory: reconnect and sync")
	}
}

// Publish sends a service event through the broker to every instance that needs it.
func (h *Hub) Publish(ctx context.Context, ev chat.Event) {
	e, topic, err := envelopeFor(ev)
	if err != nil {
		h.log.Error("encode event", "type", ev.Type, "err", err)
		return
	}
	h.publish(ctx, topic, e)
}

func (h *Hub) publish(ctx context.Context, topic string, e *envelope) {
	e.PublishedAt = time.Now().UnixMicro()
	payload, err := e.marshal()
	if err != nil {
		h.log.Error("encode envelope", "type", e.Type, "err", err)
		return
	}
	start := time.Now()
	done := func(err error) {
		if f := h.opts.Observer.Publish; f != nil {
			f(time.Since(start))
		}
		if err != nil {
			// Not fatal: the store has the data and receivers heal gaps from it.
			h.stats.PublishFails.Add(1)
			h.publishLog.Warn(context.Background(), h.log, "publish failed", "topic", topic, "type", e.Type, "err", err)
		}
	}
	if ap, ok := h.broker.(asyncPublisher); ok {
		// The event is committed already: queue it and answer the sender (message.ack)
		// without waiting for the broker's round trip. Queue order is publish order.
		ap.PublishAsync(topic, payload, done)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	done(h.broker.Publish(ctx, topic, payload))
}

// asyncPublisher is a broker that can queue a publish without waiting for it (the Redis
// broker); others are waited for.
type asyncPublisher interface {
	PublishAsync(topic string, payload []byte, then func(error))
}

// Online answers from the shared presence marks.
func (h *Hub) Online(ctx context.Context, userIDs []int64) map[int64]bool {
	if len(userIDs) == 0 {
		return nil
	}
	m, err := h.presence.Online(ctx, userIDs)
	if err != nil && ctx.Err() == nil { // not a connection that went away meanwhile
		h.log.Warn("presence lookup", "err", err)
	}
	return m
}

// Deliver handles one payload from the broker (the broker's single delivery goroutine).
func (h *Hub) Deliver(topic string, payload []byte) {
	e, err := unmarshalEnvelope(payload)
	if err != nil {
		h.log.Warn("malformed broker payload", "topic", topic, "err", err)
		return
	}
	now := time.Now()
	if f := h.opts.Observer.Receive; f != nil && e.PublishedAt > 0 {
		f(now.Sub(time.UnixMicro(e.PublishedAt)))
	}
	if f := h.opts.Observer.Commit; f != nil && e.CommittedAt > 0 {
		f(now.Sub(time.UnixMilli(e.CommittedAt)))
	}
	if e.ReadAll > 0 {
		if e.readAllFrame, err = encodeFrame(chat.EventChatReadAll, nil, chat.ReadAllData{ChatID: e.ChatID, ReadAllSeq: e.ReadAll}); err != nil {
			h.log.Warn("encode chat.read_all", "err", err)
		}
	}
	if e.ReadBy != 0 {
		// The sender's devices learn their read mark right after the message's fan-out (or
		// without it, when the message waits for its predecessor: the mark need not wait).
		f, err := e.readUpdatedFrame()
		if err != nil {
			h.log.Warn("encode read.updated", "err", err)
		} else {
			defer h.toUser(e.ReadBy, e.ChatID, chat.EventReadUpdated, f)
		}
	}
	if e.ChatID != 0 {
		switch {
		case e.Type == chat.EventMessageNew && e.Seq > 0:
			h.fanOut(h.order.admit(e, now))
		case isChange(e.Type):
			h.fanOut(h.order.admitChange(e, now))
		case e.At > 0:
			h.fanOut(h.order.admitEvent(e, now))
		default:
			h.fanOut([]*envelope{e})
		}
		return
	}
	switch e.Type {
	case chat.EventSessionRevoke:
		if e.Deleted {
			h.accountDeleted(e.UserID)
		}
		for _, c := range h.userConns(e.UserID) {
			for _, sid := range e.Sessions {
				if c.sessionID == sid {
					c.close(closeRevoked, "session revoked")
				}
			}
		}
	case chat.EventChatAdded:
		at := chat.ChatHead{Seq: e.AddLastSeq, Rev: e.AddLastRev, ReadAll: e.AddReadAll}
		h.addingBegins(e.UserID, e.AddChat)
		h.ctrl <- func() { h.follow(e.UserID, e.AddChat, at, e.AddSince, e.AddMembers, e.frame) }
	case chat.EventChatRemoved:
		h.ctrl <- func() { h.unfollow(e.UserID, e.RemoveChat, e.RemoveSeq, e.frame) }
	case chat.EventUserUpdated:
		for _, c := range h.sharers(e.UserID, e.Chats) {
			c.enqueue(e.Type, e.frame)
		}
	default:
		h.toUser(e.UserID, e.About, e.Type, e.frame)
	}
}

// fanOut delivers chat events to the local connections of the chat's members.
func (h *Hub) fanOut(es []*envelope) {
	for _, e := range es {
		switch e.Type {
		case chat.EventPresence:
			h.fanOutPresence(e)
			continue
		case chat.EventTyping:
			if h.bigChat(e.ChatID) {
				h.typists.add(h, e)
				continue
			}
		case chat.EventMemberJoined:
			h.resize(e.ChatID, 1)
		case chat.EventMemberLeft:
			h.resize(e.ChatID, -1)
		}
		var conns []*conn
		switch e.Type {
		case chat.EventMessageNew, chat.EventMessageUpdated, chat.EventReactionUpdated, chat.EventTyping:
			conns = h.chatConns(e.ChatID)
		default:
			conns = h.eventConns(e)
		}
		for _, c := range conns {
			if c.userID == e.ExceptUser {
				continue
			}
			switch e.Type {
			case chat.EventMessageNew:
				// The chat.read_all that travels with it is queued right behind it, so that
				// both usually go out in one write.
				c.deliverMessage(e.ChatID, item{seq: e.Seq, typ: e.Type, frame: e.frame, own: e.ExceptConn == c.id,
					rm: e.Rm, then: e.readAllFrame, readAll: e.ReadAll})
			case chat.EventMessageUpdated, chat.EventReactionUpdated:
				c.deliverChange(e.ChatID, item{seq: e.At, event: true, rev: e.Rev, typ: e.Type, frame: e.frame})
			default:
				c.deliverEvent(e.ChatID, item{seq: e.At, event: true, typ: e.Type, frame: e.frame, readAll: e.readAllSeq}, e.Type == chat.EventTyping)
			}
		}
	}
}

// Resubscribed runs after the broker lost its connection: events may be lost, so every
// connection catches up every chat from the store.
func (h *Hub) Resubscribed() {
	h.log.Info("broker resubscribed; catching up from the store")
	h.checkMembers.Store(true)
	h.mu.Lock()
	var all []*conn
	for _, u := range h.users {
		for c := range u.conns {
			all = append(all, c)
		}
	}
	h.mu.Unlock()
	for _, c := range all {
		c.catchUpAll()
	}
}

// toUser sends a frame to every connection of a user; when it is about a chat (about > 0),
// only to those that follow the chat.
func (h *Hub) toUser(userID, about int64, typ string, frame []byte) {
	if about == 0 {
		for _, c := range h.userConns(userID) {
			c.enqueue(typ, frame)
		}
		return
	}
	// Under the hub's lock, so that a frame is either held for a chat.added on its way or
	// sent, never sent ahead of the held ones (follow sends those under the lock too).
	h.mu.Lock()
	defer h.mu.Unlock()
	if p := h.adding[userChat{userID, about}]; p != nil {
		p.hold(typ, frame)
		return
	}
	if u := h.users[userID]; u != nil {
		for c := range u.conns {
			c.enqueueAbout(about, typ, frame)
		}
	}
}

// sharers are the local connections of a user and of everyone who shares one of chats with
// them, each once: what user.updated reaches. It walks whichever is smaller, the chats or the
// local users, so that a user in thousands of chats costs at most one look at each local user.
func (h *Hub) sharers(userID int64, chats []int64) []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	users := map[int64]struct{}{userID: {}}
	if len(chats) <= len(h.users) {
		for _, id := range chats {
			if cs := h.chats[id]; cs != nil {
				for uid := range cs.users {
					users[uid] = struct{}{}
				}
			}
		}
	} else {
		in := make(map[int64]struct{}, len(chats))
		for _, id := range chats {
			in[id] = struct{}{}
		}
		for uid, u := range h.users {
			for id := range u.chats {
				if _, ok := in[id]; ok {
					users[uid] = struct{}{}
					break
				}
			}
		}
	}
	var out []*conn
	for uid := range users {
		if u := h.users[uid]; u != nil {
			for c := range u.conns {
				out = append(out, c)
			}
		}
	}
	return out
}

func (h *Hub) userConns(userID int64) []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	u := h.users[userID]
	if u == nil {
		return nil
	}
	out := make([]*conn, 0, len(u.conns))
	for c := range u.conns {
		out = append(out, c)
	}
	return out
}

// chatConns returns the local connections of a chat's members. The slice is shared and never
// modified after it is built: membership changes build a new one.
func (h *Hub) chatConns(chatID int64) []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.chatConnsLocked(chatID)
}

func (h *Hub) chatConnsLocked(chatID int64) []*conn {
	cs := h.chats[chatID]
	if cs == nil {
		return nil
	}
	if cs.dirty {
		var out []*conn
		for uid := range cs.users {
			for c := range h.users[uid].conns {
				out = append(out, c)
			}
		}
		cs.conns, cs.dirty = out, false
	}
	return cs.conns
}

// eventConns is chatConns for a chat event (neither a message nor a change, which the
// catch-up after a chat.added reads from the store): under the same lock, the event is held
// for the users joining the chat whose connections do not follow it yet (holdForJoinersLocked).
func (h *Hub) eventConns(e *envelope) []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.adding) > 0 {
		h.holdForJoinersLocked(e.ChatID, e.ExceptUser, item{seq: e.At, event: true, typ: e.Type, frame: e.frame, readAll: e.readAllSeq})
	}
	return h.chatConnsLocked(e.ChatID)
}

// control runs membership changes in the order their events arrived.
func (h *Hub) control() {
	for {
		select {
		case <-h.ctx.Done():
			return
		case f := <-h.ctrl:
			f()
		}
	}
}

// Shutdown closes every connection with 1012 (service restart: reconnect elsewhere now), waits
// for them to end or ctx to expire, and clears this instance's presence marks.
func (h *Hub) Shutdown(ctx context.Context) {
	h.mu.Lock()
	h.closing = true
	var all []*conn
	var users []int64
	for id, u := range h.users {
		users = append(users, id)
		if u.offline != nil {
			u.offline.Stop()
		}
		for c := range u.conns {
			all = append(all, c)
		}
	}
	for id, t := range h.later {
		t.Stop()
		delete(h.later, id)
	}
	h.mu.Unlock()
	for _, c := range all {
		c.close(closeRestart, "server restart: reconnect")
	}
	done := make(chan struct{})
	go func() { h.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		h.log.Warn("shutdown: connections still open", "count", h.stats.Connections.Load())
	}
	// The marks go now; the users who have not reconnected elsewhere by RestartGrace are
	// announced offline by another instance then (presence.go: adoptOrphans).
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	if err := h.presence.Retire(pctx, h.opts.RestartGrace); err != nil {
		h.log.Warn("presence retire", "users", len(users), "err", err)
	}
	cancel()
	h.cancel()
}
