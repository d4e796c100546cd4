package hub

import (
	"context"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// Presence: a user is online while they have a connection on some instance. Each instance
// keeps expiring marks of its users in the shared presence store and tells the members of
// their chats when a user comes online or, after a grace, goes offline.

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
