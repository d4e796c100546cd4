package chat

import (
	"context"
	"time"
)

// Presence of big groups is sent only to the connections that asked for it (presence.subscribe):
// a client asks for the users it shows. The rule that guards it lives here: a user's presence
// and last seen are told only to those who share a chat with them.

// MaxPresenceSubscribe bounds the users one presence.subscribe may name.
const MaxPresenceSubscribe = 500

// PresenceStore is what presence subscriptions need of the store.
type PresenceStore interface {
	// SharedUsers returns, of ids, the users that exist, are not deleted and share a chat with
	// the viewer (or are the viewer), with when they were last seen (zero: never recorded).
	SharedUsers(ctx context.Context, viewerID int64, ids []int64) ([]SeenUser, error)
}

// SeenUser is a user and when one of their WebSockets last closed.
type SeenUser struct {
	ID         int64
	LastSeenAt time.Time
}

// PresenceState is one user's presence as the presence frame carries it.
type PresenceState struct {
	UserID int64 `json:"user_id"`
	Online bool  `json:"online"`
	// LastSeenAt is set only while the user is offline, when it is known.
	LastSeenAt *Time `json:"last_seen_at,omitempty"`
}

// PresenceBatchData is the presence frame of a client that subscribed (presence.subscribe):
// every change since the previous frame, at most one frame per connection per interval.
type PresenceBatchData struct {
	Users []PresenceState `json:"users"`
}

// PresenceSharers returns, of ids (at most MaxPresenceSubscribe, each positive), the users who
// share a chat with the caller, with their last seen time; the others are left out, so that a
// stranger's presence is never told.
func (s *Service) PresenceSharers(ctx context.Context, p Principal, ids []int64) ([]SeenUser, error) {
	if len(ids) > MaxPresenceSubscribe {
		return nil, Errorf(CodeInvalid, "user_ids: at most %d users, got %d", MaxPresenceSubscribe, len(ids))
	}
	seen := make(map[int64]struct{}, len(ids))
	uniq := make([]int64, 0, len(ids))
	for _, id := range ids {
		if id <= 0 {
			return nil, Errorf(CodeInvalid, "user_ids: %d is not a user id", id)
		}
		if _, dup := seen[id]; !dup {
			seen[id] = struct{}{}
			uniq = append(uniq, id)
		}
	}
	if len(uniq) == 0 {
		return nil, nil
	}
	users, err := s.store.SharedUsers(ctx, p.UserID, uniq)
	if err != nil {
		return nil, storeErr(err, "users sharing a chat with %d", p.UserID)
	}
	return users, nil
}
