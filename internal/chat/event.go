package chat

import "context"

// Frame types of the WebSocket protocol that the service emits as events.
const (
	EventMessageNew    = "message.new"
	EventReadUpdated   = "read.updated"
	EventChatReadAll   = "chat.read_all"
	EventTyping        = "typing"
	EventPresence      = "presence"
	EventChatAdded     = "chat.added"
	EventChatRemoved   = "chat.removed"
	EventMemberJoined  = "member.joined"
	EventMemberLeft    = "member.left"
	EventSessionRevoke = "session.revoked" // internal: closes the sessions' sockets, never sent
)

// Event is something that happened, published after the change is committed. It goes either to
// the members of a chat (ChatID) or to every device of one user (UserID).
type Event struct {
	Type   string
	ChatID int64 // the chat's members receive it
	UserID int64 // when ChatID is 0: this user's devices receive it
	// Seq is the seq of the message a message.new carries: receivers detect gaps by it. For
	// chat.removed it is the seq of the system message that ended the membership.
	Seq int64
	// At is, for a chat event that is not a message (read marks, typing, members joining and
	// leaving), the chat's last seq when it happened: each device gets it right after that
	// message, so nothing that happened after a member left reaches them.
	At int64
	// Rev is the chat's change number of a message.updated or reaction.updated: receivers
	// order changes by it and heal gaps from the store (ChangeStore.Changes). Such an event
	// also has At, the chat's last seq when the change was made.
	Rev int64
	// ExceptUser's devices do not receive it (typing, member.joined, member.left).
	ExceptUser int64
	// ExceptConn is the connection that sent a message over WebSocket: it got message.ack.
	ExceptConn string
	// Sessions are the revoked sessions of a session.revoked event.
	Sessions []int64
	// Chats are, for a user.updated event, the chats of its user: the devices of their
	// members receive it (once each, however many of those chats they share).
	Chats []int64
	Data  any
	// Then are the effects of a sent message that travel with its message.new, in the same
	// broker message, and are delivered right after it: the sender's read.updated at the
	// message's seq and the chat's chat.read_all. One broker message instead of three costs
	// every instance one receive instead of three. Nothing else may travel with an event (the
	// hub refuses it), since the receivers of Then must be reached through the chat's topic.
	Then []Event
}

// SessionRevokeData is the Data of a session.revoke event (which has no frame): AccountDeleted
// when the sessions end because their account was deleted, so that its user goes offline for
// everyone at once rather than after the grace a reload gets (nobody comes back as them).
type SessionRevokeData struct {
	AccountDeleted bool
}

// Publisher carries events to the connected devices. Publishing is best effort: messages are
// stored before they are published, and receivers heal gaps from the store.
type Publisher interface {
	Publish(ctx context.Context, ev Event)
}

// Presence tells who is online.
type Presence interface {
	Online(ctx context.Context, userIDs []int64) map[int64]bool
}

// Event payloads, as the WebSocket frames carry them.
type (
	MessageData struct {
		Message Message `json:"message"`
	}
	ReadUpdatedData struct {
		ChatID      int64 `json:"chat_id"`
		UserID      int64 `json:"user_id"`
		LastReadSeq int64 `json:"last_read_seq"`
		UnreadCount int64 `json:"unread_count"`
		// UnreadMentions: see ChatSummary.UnreadMentions.
		UnreadMentions int64 `json:"unread_mentions"`
	}
	ReadAllData struct {
		ChatID     int64 `json:"chat_id"`
		ReadAllSeq int64 `json:"read_all_seq"`
	}
	TypingData struct {
		ChatID int64 `json:"chat_id"`
		UserID int64 `json:"user_id"`
	}
	PresenceData struct {
		UserID int64 `json:"user_id"`
		Online bool  `json:"online"`
	}
	ChatAddedData struct {
		Chat ChatSummary `json:"chat"`
	}
	ChatRemovedData struct {
		ChatID int64 `json:"chat_id"`
		// Reason is why, when it was not the user's own leave: "removed" (by an owner or
		// admin) or "deleted" (the group was deleted).
		Reason string `json:"reason,omitempty"`
	}
	MemberJoinedData struct {
		ChatID int64   `json:"chat_id"`
		User   UserRef `json:"user"`
	}
	MemberLeftData struct {
		ChatID int64 `json:"chat_id"`
		UserID int64 `json:"user_id"`
	}
)

// UserRef names a user in events.
type UserRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, Event) {}

type nobodyOnline struct{}

func (nobodyOnline) Online(context.Context, []int64) map[int64]bool { return nil }
