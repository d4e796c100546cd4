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
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
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
	// SendQueue is how many frames may wait for a slow client before it is dropped (1013).
	SendQueue int
	// PingEvery is the server's ping period; a pong must come within PongWait.
	PingEvery time.Duration
	PongWait  time.Duration
	// WriteTimeout bounds every write.
	WriteTimeout time.Duration
	// OfflineGrace is how long after a user's last device leaves before others see them offline.
	OfflineGrace time.Duration
	// PresenceTTL is how long a presence mark lives without a refresh (an instance crash).
	PresenceTTL time.Duration
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
	if o.SendQueue == 0 {
		o.SendQueue = 1024
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

	// subMu serializes broker subscription changes, made outside mu: a Subscribe waits for the
	// broker's confirmation, which arrives on the goroutine that calls Deliver.
	subMu      sync.Mutex
	subscribed map[string]bool
	// ctrl runs membership changes that arrive as events, in order, off the delivery goroutine.
	ctrl chan func()

	mu      sync.Mutex
	users   map[int64]*userState
	chats   map[int64]*chatState
	closing bool
	conns   sync.WaitGroup

	nextConn atomic.Uint64
	order    reorderer // puts each chat's message events back in seq order (reorder.go)
	fetches  singleflight.Group
	stats    Stats
}

// Stats are counters for metrics and tests.
type Stats struct {
	Connections  atomic.Int64
	Users        atomic.Int64 // users with a connection here
	Delivered    atomic.Int64 // message.new frames queued to connections
	GapsHealed   atomic.Int64
	SlowDropped  atomic.Int64
	PublishFails atomic.Int64
	FramesIn     FrameCounts
	FramesOut    FrameCounts
}

// FrameTypes are the frame types counted by FrameCounts; anything else counts as "other".
var FrameTypes = []string{"hello", "message.send", "message.new", "message.ack", "read", "read.updated", "chat.read_all",
	"typing", "presence", "chat.added", "chat.removed", "member.joined", "member.left", "sync", "sync.truncated",
	"sync.done", "ping", "pong", "error", "other"}

var frameIndex = func() map[string]int {
	m := make(map[string]int, len(FrameTypes))
	for i, t := range FrameTypes {
		m[t] = i
	}
	return m
}()

// FrameCounts counts frames by type without locks or allocation.
type FrameCounts [20]atomic.Int64

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
	// Commit is the time from a message's commit to its fan-out here, once per message.
	Commit func(d time.Duration)
}

type userState struct {
	conns   map[*conn]struct{}
	chats   map[int64]struct{}
	offline *time.Timer // pending "offline" after the last device left
}

type chatState struct {
	users map[int64]struct{}
	conns []*conn // local connections of the members; rebuilt when dirty
	dirty bool
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
		users: map[int64]*userState{}, chats: map[int64]*chatState{}, subscribed: map[string]bool{}, ctrl: make(chan func(), 1<<16)}
	h.order.release = h.fanOut
	if err := b.Start(ctx, h); err != nil {
		cancel()
		return nil, err
	}
	go h.refreshPresence()
	go h.control()
	return h, nil
}

// Stats exposes the hub's counters.
func (h *Hub) Stats() *Stats { return &h.stats }

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
			h.log.Warn("publish failed", "topic", topic, "type", e.Type, "err", err)
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
			defer h.toUser(e.ReadBy, chat.EventReadUpdated, f)
		}
	}
	if e.ChatID != 0 {
		if e.Type == chat.EventMessageNew && e.Seq > 0 {
			h.fanOut(h.order.admit(e, now))
			return
		}
		h.fanOut([]*envelope{e})
		return
	}
	switch e.Type {
	case chat.EventSessionRevoke:
		for _, c := range h.userConns(e.UserID) {
			for _, sid := range e.Sessions {
				if c.sessionID == sid {
					c.close(closeRevoked, "session revoked")
				}
			}
		}
	case chat.EventChatAdded:
		h.ctrl <- func() { h.follow(e.UserID, e.AddChat, e.AddLastSeq, e.frame) }
	case chat.EventChatRemoved:
		h.ctrl <- func() { h.unfollow(e.UserID, e.RemoveChat, e.frame) }
	default:
		h.toUser(e.UserID, e.Type, e.frame)
	}
}

// fanOut delivers chat events to the local connections of the chat's members.
func (h *Hub) fanOut(es []*envelope) {
	for _, e := range es {
		for _, c := range h.chatConns(e.ChatID) {
			if c.userID == e.ExceptUser {
				continue
			}
			switch e.Type {
			case chat.EventMessageNew:
				c.deliverMessage(e.ChatID, e.Seq, e.frame, e.ExceptConn == c.id)
				// Queued right behind the message, so that both usually go out in one write.
				c.enqueue(chat.EventChatReadAll, e.readAllFrame)
			case chat.EventPresence:
				c.deliverPresence(e.PresenceUser, e.Online, e.frame)
			default:
				c.enqueue(e.Type, e.frame)
			}
		}
	}
}

// Resubscribed runs after the broker lost its connection: events may be lost, so every
// connection catches up every chat from the store.
func (h *Hub) Resubscribed() {
	h.log.Info("broker resubscribed; catching up from the store")
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

func (h *Hub) toUser(userID int64, typ string, frame []byte) {
	for _, c := range h.userConns(userID) {
		c.enqueue(typ, frame)
	}
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

// reconcile brings the broker's subscriptions of topics in line with what the local
// connections need. It is called after every change, without mu held; calls may come in any
// order, since each applies the state of the moment.
func (h *Hub) reconcile(topics ...string) {
	h.subMu.Lock()
	defer h.subMu.Unlock()
	var sub, unsub []string
	h.mu.Lock()
	for _, t := range topics {
		if want := h.wantsLocked(t); want != h.subscribed[t] {
			if want {
				sub = append(sub, t)
			} else {
				unsub = append(unsub, t)
			}
		}
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
	defer cancel()
	if len(unsub) > 0 {
		if err := h.broker.Unsubscribe(ctx, unsub...); err != nil && h.ctx.Err() == nil {
			h.log.Warn("unsubscribe", "topics", len(unsub), "err", err)
		}
		for _, t := range unsub {
			delete(h.subscribed, t)
		}
	}
	if len(sub) > 0 {
		if err := h.broker.Subscribe(ctx, sub...); err != nil {
			if h.ctx.Err() == nil {
				h.log.Warn("subscribe", "topics", len(sub), "err", err)
			}
			return
		}
		for _, t := range sub {
			h.subscribed[t] = true
		}
	}
}

func (h *Hub) wantsLocked(topic string) bool {
	kind, id, _ := strings.Cut(topic, ".")
	n, _ := strconv.ParseInt(id, 10, 64)
	if kind == "chat" {
		return h.chats[n] != nil
	}
	u := h.users[n]
	return u != nil
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
		u = &userState{conns: map[*conn]struct{}{}, chats: map[int64]struct{}{}}
		h.users[c.userID] = u
		h.stats.Users.Add(1)
	}
	if len(u.conns) >= h.opts.MaxConnsPerUser {
		return errTooManyConns
	}
	u.conns[c] = struct{}{}
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

// attach makes a new connection follow its user's chats, starting after the given last seqs,
// and reports whether the user just came online on this instance.
func (h *Hub) attach(c *conn, lastSeqs map[int64]int64) (cameOnline bool, chats []int64) {
	h.mu.Lock()
	u := h.users[c.userID]
	for id, last := range lastSeqs {
		c.follow(id, last)
		h.followLocked(u, c.userID, id)
	}
	cameOnline = len(u.conns) == 1 && u.offline == nil
	if u.offline != nil {
		u.offline.Stop()
		u.offline = nil
	}
	for id := range u.chats {
		chats = append(chats, id)
	}
	h.mu.Unlock()
	return cameOnline, chats
}

func (h *Hub) followLocked(u *userState, userID, chatID int64) {
	if _, ok := u.chats[chatID]; ok {
		h.chats[chatID].dirty = true
		return
	}
	u.chats[chatID] = struct{}{}
	cs := h.chats[chatID]
	if cs == nil {
		cs = &chatState{users: map[int64]struct{}{}}
		h.chats[chatID] = cs
	}
	cs.users[userID] = struct{}{}
	cs.dirty = true
}

// follow starts live delivery of a chat the user just joined to their local connections,
// then tells them (chat.added) once the subscription is live, and catches up whatever was
// published before it was.
func (h *Hub) follow(userID, chatID, lastSeq int64, frame []byte) {
	h.mu.Lock()
	u := h.users[userID]
	if u == nil || len(u.conns) == 0 {
		h.mu.Unlock()
		return
	}
	for c := range u.conns {
		c.follow(chatID, lastSeq)
	}
	h.followLocked(u, userID, chatID)
	h.mu.Unlock()
	h.reconcile(chatTopic(chatID))
	for _, c := range h.userConns(userID) {
		c.enqueue(chat.EventChatAdded, frame)
		c.catchUpChat(chatID)
	}
}

// unfollow stops delivery of a chat the user left, after telling them (chat.removed).
func (h *Hub) unfollow(userID, chatID int64, frame []byte) {
	h.toUser(userID, chat.EventChatRemoved, frame)
	h.mu.Lock()
	u := h.users[userID]
	if u == nil {
		h.mu.Unlock()
		return
	}
	for c := range u.conns {
		c.unfollow(chatID)
	}
	delete(u.chats, chatID)
	h.dropChatUserLocked(chatID, userID)
	h.mu.Unlock()
	h.reconcile(chatTopic(chatID))
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
	u.chats = map[int64]struct{}{}
	if h.closing {
		delete(h.users, c.userID)
		h.stats.Users.Add(-1)
	} else {
		userID := c.userID
		u.offline = time.AfterFunc(h.opts.OfflineGrace, func() { h.goOffline(userID, chats) })
	}
	h.mu.Unlock()
	h.reconcile(topics...)
}

func (h *Hub) goOffline(userID int64, chats []int64) {
	h.mu.Lock()
	u := h.users[userID]
	if u == nil || len(u.conns) > 0 || u.offline == nil {
		h.mu.Unlock()
		return
	}
	delete(h.users, userID)
	h.stats.Users.Add(-1)
	h.mu.Unlock()
	h.reconcile(userTopic(userID))

	ctx, cancel := context.WithTimeout(h.ctx, 3*time.Second)
	defer cancel()
	if err := h.presence.SetOffline(ctx, userID); err != nil {
		h.log.Warn("presence offline", "user_id", userID, "err", err)
	}
	if h.Online(ctx, []int64{userID})[userID] {
		return // still connected through another instance
	}
	h.announcePresence(ctx, userID, false, chats)
}

// comeOnline marks the user online and tells their chats if nobody knew yet.
func (h *Hub) comeOnline(ctx context.Context, userID int64, chats []int64) {
	was := h.Online(ctx, []int64{userID})[userID]
	if err := h.presence.SetOnline(ctx, h.opts.PresenceTTL, userID); err != nil && ctx.Err() == nil {
		h.log.Warn("presence online", "user_id", userID, "err", err)
	}
	if !was {
		h.announcePresence(ctx, userID, true, chats)
	}
}

func (h *Hub) announcePresence(ctx context.Context, userID int64, online bool, chats []int64) {
	frame, err := encodeFrame(chat.EventPresence, nil, chat.PresenceData{UserID: userID, Online: online})
	if err != nil {
		return
	}
	for _, id := range chats {
		h.publish(ctx, chatTopic(id), &envelope{Type: chat.EventPresence, ChatID: id, ExceptUser: userID,
			PresenceUser: userID, Online: online, frame: frame})
	}
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
		h.mu.Lock()
		ids := make([]int64, 0, len(h.users))
		for id, u := range h.users {
			if len(u.conns) > 0 {
				ids = append(ids, id)
			}
		}
		h.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
		if err := h.presence.SetOnline(ctx, h.opts.PresenceTTL, ids...); err != nil {
			h.log.Warn("presence refresh", "err", err)
		}
		cancel()
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
	if len(users) > 0 {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		h.presence.SetOffline(pctx, users...)
		cancel()
	}
	h.cancel()
}
