package chat

import (
	"errors"
	"time"
)

// Web Push (issue 16): what the store keeps for the push sender (internal/push).

// CodePushEndpointTaken: the endpoint is another user's subscription, of a session still
// live, and the request does not carry its keys (409).
const CodePushEndpointTaken = "push_endpoint_taken"

// ErrPushEndpointTaken is what a store returns when it refuses to move a subscription to
// another user (CodePushEndpointTaken).
var ErrPushEndpointTaken = errors.New("push endpoint taken")

// PushSubscription is one browser's push endpoint for a user (the PushSubscription of the
// Push API): where to send, and the keys to encrypt for (RFC 8291).
type PushSubscription struct {
	UserID    int64
	SessionID int64 // the session that subscribed: its pushes stop when it ends (0: none kept)
	Endpoint  string
	P256dh    string // the browser's P-256 public key, base64url
	Auth      string // the 16-byte authentication secret, base64url
}

// PushJob is a user to tell about a chat: Seq is the newest message of the burst.
type PushJob struct {
	UserID   int64
	ChatID   int64
	Seq      int64
	Attempts int
}

// PushContext is what a push job needs when it is due: whether to send it at all, and what
// to say. Member false: the user left the chat, nothing is sent.
type PushContext struct {
	Member      bool
	LastReadSeq int64
	Settings    ChatSettings
	ChatKind    string
	ChatTitle   string // a group's title; for a private chat the other member's name
	// Seq is the message to tell of: the newest the member is to be told of up to the job's
	// seq and not deleted (the job's own message may have been deleted since, or the burst
	// ended in one the member is not told of); 0 when none is left.
	Seq        int64
	SenderName string
	Body       string
	// Files is how many files the message carries, File the name of the first.
	Files int
	File  string
	// FirstUnreadAt is when the first message past the read mark was sent.
	FirstUnreadAt time.Time
	// ShownSeq is the newest message a push told the user's browsers of this chat and not
	// withdrawn yet (0: none).
	ShownSeq int64
	// Mentioned: the message mentions the member by name or @all (notify=mentions tells
	// only of those).
	Mentioned bool
}
