package chat

import (
	"context"
	"errors"
	"time"
)

// Notification settings (issue 16): per chat and per user, what a member wants to be told
// of new messages while not looking, and until when the chat is muted.
const (
	NotifyAll      = "all"      // every message
	NotifyMentions = "mentions" // only messages that mention the member or @all
	NotifyNone     = "none"     // nothing

	// NotifyMentionsAbove is the group size above which a member is told only of mentions
	// unless they chose otherwise: a busy large group would otherwise ping all day.
	NotifyMentionsAbove = 50

	EventChatSettings = "chat.settings"
)

// DefaultNotify is the notify setting of a member who never chose one.
func DefaultNotify(kind string, members int) string {
	if kind == KindGroup && members > NotifyMentionsAbove {
		return NotifyMentions
	}
	return NotifyAll
}

// ValidNotify reports whether v is one of the notify settings.
func ValidNotify(v string) bool { return v == NotifyAll || v == NotifyMentions || v == NotifyNone }

// ChatSettings are one member's settings of a chat, as the chat.settings frame and PATCH
// /chats/{id}/settings carry them.
type ChatSettings struct {
	ChatID     int64  `json:"chat_id"`
	Notify     string `json:"notify" enum:"all,mentions,none" doc:"what I am notified of when not looking: every message, only mentions of me, or nothing. Until set: all in private chats and groups of up to 50 members, mentions in larger groups"`
	MutedUntil *Time  `json:"muted_until" doc:"no notification of this chat until then (null: not muted); a time in the past means not muted"`
}

// SettingsChange changes a member's settings: Notify when not "", MutedUntil when SetMuted
// (nil unmutes).
type SettingsChange struct {
	ChatID     int64
	UserID     int64
	Notify     string
	SetMuted   bool
	MutedUntil *time.Time
}

// Tells reports whether the setting tells of a message (that mentions the member, or not),
// leaving muting aside: notify all tells of every message, mentions of those that mention them.
func (c ChatSettings) Tells(mentioned bool) bool {
	return c.Notify == NotifyAll || (c.Notify == NotifyMentions && mentioned)
}

// Muted reports whether the settings silence the chat at now.
func (c ChatSettings) Muted(now time.Time) bool {
	return c.Notify == NotifyNone || (c.MutedUntil != nil && c.MutedUntil.After(now))
}

// UpdateChatSettings changes the caller's settings of a chat they are a member of and tells
// every device of theirs (chat.settings).
func (s *Service) UpdateChatSettings(ctx context.Context, p Principal, c SettingsChange) (ChatSettings, error) {
	if c.Notify != "" && !ValidNotify(c.Notify) {
		return ChatSettings{}, Invalid("body.notify", "notify must be all, mentions or none")
	}
	c.UserID = p.UserID
	if c.MutedUntil != nil {
		t := c.MutedUntil.UTC().Truncate(time.Millisecond)
		c.MutedUntil = &t
	}
	st, err := s.store.UpdateChatSettings(ctx, c)
	if errors.Is(err, ErrNotMember) || errors.Is(err, ErrNotFound) {
		if _, err := s.memberChat(ctx, p, c.ChatID); err != nil {
			return ChatSettings{}, err
		}
		return ChatSettings{}, Errorf(CodeNotMember, "you are not a member of chat %d", c.ChatID)
	}
	if err != nil {
		return ChatSettings{}, storeErr(err, "settings of chat %d", c.ChatID)
	}
	s.pub.Publish(ctx, Event{Type: EventChatSettings, UserID: p.UserID, Data: st})
	return st, nil
}
