package chat

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors a Store returns; the Service turns them into *Error values with context.
var (
	ErrNotMember     = errors.New("not a member")
	ErrAlreadyMember = errors.New("already a member")
	ErrPrivateChat   = errors.New("private chat")
	ErrEmailTaken    = errors.New("email taken")
	ErrRefreshReused = errors.New("refresh token reused")
	ErrChatFull      = errors.New("chat is full")
	ErrUnknownUser   = errors.New("unknown user")
	// ErrNoReplyTarget: a send answers a seq its chat does not have.
	ErrNoReplyTarget = errors.New("no message to reply to")
	// ErrFilesRefused: a send's files cannot be attached (see NewMessage.FileIDs).
	ErrFilesRefused = errors.New("files cannot be attached")
	// ErrMentionAllRefused: a send mentions @all where its sender may not (see
	// NewMessage.MentionAll).
	ErrMentionAllRefused = errors.New("may not mention @all")
)

// TooManyChatsError is what a Store returns when a change would make a user a member of more
// chats than one may belong to; nothing is stored.
type TooManyChatsError struct {
	UserID int64
}

func (e *TooManyChatsError) Error() string {
	return fmt.Sprintf("user %d already belongs to the most chats one may", e.UserID)
}

// Store is the durable state of the chat. Every method is one transaction; the implementations
// (PostgreSQL and SQLite) pass one conformance suite. Times are passed in so that the service
// owns the clock.
type Store interface {
	Ping(ctx context.Context) error

	CreateUser(ctx context.Context, u User) (User, error)
	UserByID(ctx context.Context, id int64) (User, error)
	UserByEmail(ctx context.Context, email string) (User, error)
	// SearchUsers finds users by name prefix, by exact email, and by email prefix among those
	// who share a chat with the viewer; see UserSearch.
	SearchUsers(ctx context.Context, q UserSearch) ([]FoundUser, error)

	CreateSession(ctx context.Context, s Session, refreshHash []byte) (Session, error)
	SessionByID(ctx context.Context, id int64) (Session, error)
	// RotateRefresh swaps the session's current refresh token oldHash for newHash, recording
	// that client (a digest of its user agent and address) rotated it. A token that was
	// current once but has been rotated since revokes its session and yields ErrRefreshReused
	// (with that session), except the session's last rotated token presented by the client
	// that rotated it within RefreshRetryGrace (the client retrying a refresh whose answer it
	// lost, or its tabs refreshing at once): the session as it is when newHash is already its
	// token, else rotated again to newHash; an unknown, expired or revoked one yields ErrNotFound.
	RotateRefresh(ctx context.Context, oldHash, newHash, client []byte, now, expires time.Time) (Session, error)
	TouchSession(ctx context.Context, id int64, now time.Time) error
	// RevokeSessions revokes one session of the user (sessionID > 0) or all of them (0) and
	// returns the ids of the sessions it revoked.
	RevokeSessions(ctx context.Context, userID, sessionID int64, now time.Time) ([]int64, error)
	ListSessions(ctx context.Context, userID int64, now time.Time) ([]Session, error)
	// PruneSessions deletes sessions that expired or were revoked before sessionsBefore, and
	// forgets refresh tokens rotated before tokensBefore. It returns the sessions deleted.
	PruneSessions(ctx context.Context, sessionsBefore, tokensBefore time.Time) (int64, error)

	// CreateGroup stores a group with its members and its chat_created message.
	CreateGroup(ctx context.Context, g NewGroup) (int64, error)
	// CreatePrivate returns the private chat of the pair, creating it when there is none.
	CreatePrivate(ctx context.Context, a, b int64, now time.Time) (id int64, created bool, err error)
	// ChatsOf lists the chats of a user, most recent activity first.
	ChatsOf(ctx context.Context, userID int64) ([]ChatSummary, error)
	// ChatFor returns a chat as the viewer sees it, whether a member or not.
	ChatFor(ctx context.Context, viewerID, chatID int64) (ChatSummary, error)
	Members(ctx context.Context, chatID int64) ([]Member, error)
	MemberIDs(ctx context.Context, chatID int64) ([]int64, error)
	Discover(ctx context.Context, userID int64, query string, limit int) ([]DiscoveredChat, error)
	// AddMember adds a user to a group with a system message of the given event type: an
	// invitation by actorID, a member (ErrNotMember otherwise), or the user's own join
	// (SysMemberJoined) of a group that is public when the join commits (ErrNotFound
	// otherwise).
	AddMember(ctx context.Context, chatID, userID, actorID int64, event string, now time.Time) (Message, error)
	// RemoveMember takes a user out of a group with a member_left system message, handing
	// the group on as RemoveFromChat does; the service uses RemoveFromChat, which says to whom.
	RemoveMember(ctx context.Context, chatID, userID int64, now time.Time) (Message, ReadAll, error)

	// SendMessage stores a text message with the next seq of its chat, or returns the message the
	// sender already stored with that client id (Sent.Created false).
	SendMessage(ctx context.Context, m NewMessage) (Sent, error)
	// QueueMessage queues a send behind the chat's others and returns at once; wait waits for
	// the commit that stores it and answers as SendMessage would. Sends to a chat queued one
	// after another get their seqs in that order. The caller must call wait.
	QueueMessage(ctx context.Context, m NewMessage) (wait func() (Sent, error))
	// FileClaims tells how each of the files stands for a send by viewerID that would attach
	// them (in no particular order; an unknown id is missing), so that the service can say
	// why a send was refused with ErrFilesRefused.
	FileClaims(ctx context.Context, viewerID int64, ids []int64) ([]FileClaim, error)
	// History returns messages in ascending seq order; see HistoryQuery.
	History(ctx context.Context, q HistoryQuery) ([]Message, bool, error)
	MarkRead(ctx context.Context, chatID, userID, seq int64) (Read, error)
	// UpdateChatSettings changes a member's notification settings of a chat and returns them
	// (ErrNotMember when the user is not a member).
	UpdateChatSettings(ctx context.Context, c SettingsChange) (ChatSettings, error)
	// SearchMessages finds candidates of a message search (search.go).
	SearchMessages(ctx context.Context, q SearchQuery) (SearchBatch, error)

	// Running groups and accounts (admin.go, profile.go).
	AdminStore
	// Edits, deletes and reactions (changes.go).
	ChangeStore
	// Presence subscriptions (presence.go).
	PresenceStore
}

// UserSearch is one viewer's search for users, in name order.
type UserSearch struct {
	ViewerID int64
	// Prefix matches the start of a name, case-insensitively; and of an email, but only of
	// the viewer and of users who share a chat with the viewer.
	Prefix string
	// Email, lowercased, finds the user with exactly that email, whoever they are; "" none.
	Email string
	Limit int
}

// FoundUser is a user a search found. Shared tells whether they share a chat with the viewer
// (or are the viewer).
type FoundUser struct {
	User
	Shared bool
}

// NewGroup is a group to create.
type NewGroup struct {
	CreatorID int64
	Title     string
	Public    bool
	MemberIDs []int64 // without the creator
	Now       time.Time
}

// NewMessage is a text message to store.
type NewMessage struct {
	ChatID   int64
	SenderID int64
	Body     string
	ClientID string
	// FileIDs are files to attach, in order: each must be a stored upload of the sender into
	// this chat, unattached, uploaded within FileAttachWindow. If any is not (or another send
	// of the same commit takes it first), the message is not stored: ErrFilesRefused.
	FileIDs []int64
	// ReplyToSeq is the seq of the message of the chat this one answers (0: none); one beyond
	// the chat's last seq refuses the send (ErrNoReplyTarget).
	ReplyToSeq int64
	// Mentions are users the message mentions, each once, never the sender: those who are not
	// members of the chat when it is stored are dropped.
	Mentions []int64
	// MentionAll is @all: in a private chat, or by a member of a group that keeps @all to its
	// owner and admins, it refuses the send (ErrMentionAllRefused).
	MentionAll bool
	Now        time.Time
	// Committed, if set, is called with the result as soon as it is known, before anyone
	// waiting for it is answered: for the sends a store commits together, one after another in
	// seq order, on the goroutine that committed them. It must not block (the service publishes
	// from it, so that a chat's events leave in seq order).
	Committed func(Sent, error)
}

// ReadAll reports the chat-wide read mark after a change and whether the change raised it.
type ReadAll struct {
	Seq   int64
	Grown bool
}

// Sent is the result of SendMessage.
type Sent struct {
	Message Message
	Created bool
	ReadAll ReadAll
}

// Read is the result of MarkRead.
type Read struct {
	State   ReadState
	Changed bool // the member's own progress moved
	ReadAll ReadAll
	// LastSeq is the chat's last seq when the mark was committed: a grown read-all mark's
	// chat.read_all follows that message, after every message committed before it.
	LastSeq int64
}

// HistoryQuery selects a page of a chat's history. With HasAfter the page starts right after
// After and the returned flag says whether newer messages follow; otherwise it is the newest
// Limit messages below Before (0: of the whole chat) and the flag says whether older ones precede.
type HistoryQuery struct {
	ChatID   int64
	Before   int64
	After    int64
	HasAfter bool
	Limit    int
}
