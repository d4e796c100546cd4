// Package chat holds the domain of the chat server: its types, its rules (Service) and the
// interfaces of what the rules need (Store, Publisher, Presence). It knows nothing of HTTP,
// WebSocket, SQL or Redis.
package chat

import "time"

// Chat kinds and member roles.
const (
	KindPrivate = "private"
	KindGroup   = "group"

	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleMember = "member"

	MessageText   = "text"
	MessageSystem = "system"

	// System message events.
	SysChatCreated   = "chat_created"
	SysMemberJoined  = "member_joined"
	SysMemberLeft    = "member_left"
	SysMemberInvited = "member_invited"
	// Running a group (admin.go): the event's user is the one concerned, its actor who did it.
	SysMemberRemoved      = "member_removed"      // kicked by an owner or admin
	SysChatRenamed        = "chat_renamed"        // SystemEvent.Title is the new title
	SysVisibilityChanged  = "visibility_changed"  // SystemEvent.Public is the new visibility
	SysDescriptionChanged = "description_changed" // the description itself is on the chat
	SysRoleChanged        = "role_changed"        // SystemEvent.Role is the user's new role
	SysOwnerTransferred   = "owner_transferred"   // the user is the new owner, the actor the old one
	// SysChatDeleted ends every member's stream of a deleted group. It is never stored (the
	// chat's messages are deleted with it) and never delivered: each stream ends at it.
	SysChatDeleted = "chat_deleted"
)

// EndsMembership reports whether a system message of this event type ends the membership of
// its user: from that message on, nothing of the chat reaches them.
func EndsMembership(event string) bool {
	return event == SysMemberLeft || event == SysMemberRemoved || event == SysChatDeleted
}

// EndsEveryMembership reports whether a system message of this event type ends the membership
// of every member at once (a deleted group): from it on, nothing of the chat reaches anyone.
func EndsEveryMembership(event string) bool { return event == SysChatDeleted }

// Limits of API.md; the HTTP layer documents them in the OpenAPI schema.
const (
	MaxBodyChars     = 4000
	MaxTitleChars    = 100
	MaxDescChars     = 500
	MaxNameChars     = 64
	MinPasswordChars = 8
	MaxPasswordChars = 128
	MaxClientIDChars = 64
	MaxEmailChars    = 254
	DefaultPageSize  = 50
	MaxPageSize      = 200
	DefaultUserLimit = 20
	MaxUserLimit     = 100
	MaxGroupMembers  = 10000
	// MaxFirstMembers caps a new group's member_ids (API.md is silent): larger groups grow
	// by invitation or joining, each one a rate-limited change.
	MaxFirstMembers = 100
)

// MaxUserChats caps the chats one user belongs to (API.md is silent): each of them is state on
// every one of the user's connections and an entry of their hello and chat list.
const MaxUserChats = 5000

// User is an account. PasswordHash never leaves the server.
type User struct {
	ID           int64
	Email        string
	Name         string
	PasswordHash string
	CreatedAt    time.Time
	// LastSeenAt is when one of the user's WebSockets last closed (zero: never recorded).
	LastSeenAt time.Time
	// Deleted marks an account deleted by its user: its name is DeletedName, its email is freed.
	Deleted bool
}

// Session is one signed-in device.
type Session struct {
	ID         int64
	UserID     int64
	UserAgent  string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	Revoked    bool
}

// Message is one entry of a chat's history. System messages have no sender and carry an Event.
type Message struct {
	ID        int64        `json:"id"`
	ChatID    int64        `json:"chat_id"`
	Seq       int64        `json:"seq"`
	Kind      string       `json:"kind" enum:"text,system"`
	SenderID  *int64       `json:"sender_id"`
	Body      string       `json:"body"`
	ClientID  *string      `json:"client_id"`
	CreatedAt Time         `json:"created_at"`
	Event     *SystemEvent `json:"event,omitempty"`
	// Rev is the chat's change number of the message's last edit, delete or reaction (0:
	// never changed); see changes.go.
	Rev       int64      `json:"rev" doc:"the chat's change number (rev) of this message's last edit, delete or reaction; 0: never changed"`
	EditedAt  *Time      `json:"edited_at,omitempty" doc:"when the body was last edited; absent: never edited"`
	DeletedAt *Time      `json:"deleted_at,omitempty" doc:"when the message was deleted; its body is then empty and it has no reactions"`
	Reactions []Reaction `json:"reactions,omitempty" doc:"the reactions, in the order their emoji were first used; absent: none"`
	ReplyTo   *ReplyRef  `json:"reply_to,omitempty" doc:"the message this one answers; absent: not a reply"`
	// ReplyToSeq is the seq of the answered message as stored (0: none); the store fills
	// ReplyTo from it.
	ReplyToSeq int64 `json:"-"`
	// Files are the files the message carries, in the order they were attached.
	Files []File `json:"files,omitempty" doc:"the files the message carries (at most 10), in order"`
	// FileCount is how many files the message carries, as stored: the store reads Files only
	// for messages that have some.
	FileCount int `json:"-"`
	// Mentions are the members the message mentions, as stored: members of the chat when it
	// was sent, never its sender (mentions.go).
	Mentions   []int64 `json:"mentions,omitempty" doc:"the members the message mentions (@name), in the order written: only users who were members of the chat when it was sent, never its sender; absent: none"`
	MentionAll bool    `json:"mention_all,omitempty" doc:"the message mentions every member (@all; groups only)"`
}

// SystemEvent says what a system message records.
type SystemEvent struct {
	Type    string `json:"type" enum:"chat_created,member_joined,member_left,member_invited,member_removed,chat_renamed,visibility_changed,description_changed,role_changed,owner_transferred"`
	UserID  int64  `json:"user_id"`
	ActorID int64  `json:"actor_id"`
	// Title is the new title of a chat_renamed.
	Title string `json:"title,omitempty" doc:"chat_renamed: the new title"`
	// Role is the new role of a role_changed.
	Role string `json:"role,omitempty" enum:"admin,member" doc:"role_changed: the user's new role"`
	// Public is the new visibility of a visibility_changed.
	Public *bool `json:"public,omitempty" doc:"visibility_changed: whether the group is public now"`
}

// Peer is the other member of a private chat.
type Peer struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Online bool   `json:"online"`
	// Deleted: the peer deleted their account (the chat is read-only).
	Deleted bool `json:"deleted,omitempty" doc:"the other member deleted their account: the chat is read-only"`
}

// ChatSummary is a chat as one user sees it in their list.
type ChatSummary struct {
	ID            int64    `json:"id"`
	Kind          string   `json:"kind" enum:"private,group"`
	Title         string   `json:"title"`
	Public        bool     `json:"public"`
	Description   string   `json:"description" maxLength:"500" doc:"a group's description (empty for private chats)"`
	ReadOnly      bool     `json:"read_only" doc:"nobody can send: the other member of this private chat deleted their account"`
	CreatedAt     Time     `json:"created_at"`
	MemberCount   int      `json:"member_count"`
	Peer          *Peer    `json:"peer"`
	LastMessage   *Message `json:"last_message"`
	LastSeq       int64    `json:"last_seq"`
	LastRev       int64    `json:"last_rev" doc:"the chat's last change number: every edit, delete and reaction up to it has happened"`
	MyLastReadSeq int64    `json:"my_last_read_seq"`
	ReadAllSeq    int64    `json:"read_all_seq"`
	UnreadCount   int64    `json:"unread_count"`
	// UnreadMentions counts the unread messages of others that mention me or @all.
	UnreadMentions int64 `json:"unread_mentions" doc:"how many of the unread messages (of others, not deleted) mention me or @all"`
	// MentionAll is who may mention @all in a group.
	MentionAll string `json:"mention_all,omitempty" enum:"everyone,admins" doc:"groups: who may mention @all, every member or only the owner and admins (PATCH /chats/{id}); absent for private chats"`
	Notify     string `json:"notify" enum:"all,mentions,none" doc:"my notification setting of this chat (PATCH /chats/{id}/settings); until I choose: all in private chats and groups of up to 50 members, mentions in larger groups"`
	MutedUntil *Time  `json:"muted_until" doc:"I am not notified of this chat until then (null: not muted)"`

	// IsMember tells whether the viewer belongs to the chat (a public group can be seen by all).
	IsMember bool `json:"-"`
	// Activity orders the chat list: the time of the last message, else of creation.
	Activity time.Time `json:"-"`
}

// Head is where the chat stands as the summary shows it.
func (c ChatSummary) Head() ChatHead {
	return ChatHead{Seq: c.LastSeq, Rev: c.LastRev, ReadAll: c.ReadAllSeq}
}

// Member is one member of a chat.
type Member struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Role        string `json:"role" enum:"owner,admin,member" doc:"owner: created the group or had it handed over; admin: may rename it and manage members; private chats: member"`
	JoinedAt    Time   `json:"joined_at"`
	LastReadSeq int64  `json:"last_read_seq"`
	Online      bool   `json:"online" doc:"connected now; true only for users who share a chat with you (to others everyone is offline)"`
	// LastSeenAt is shown to the chat's members only, and only while the member is offline.
	LastSeenAt *Time `json:"last_seen_at,omitempty" doc:"when the member was last connected; only while they are offline, and only to the chat's members"`
	Deleted    bool  `json:"deleted,omitempty" doc:"the member deleted their account"`
}

// ChatDetail is a summary plus the member list.
type ChatDetail struct {
	ChatSummary
	Members []Member `json:"members"`
}

// ReadState is a member's read progress in a chat after a read.
type ReadState struct {
	ChatID        int64 `json:"chat_id"`
	MyLastReadSeq int64 `json:"my_last_read_seq"`
	ReadAllSeq    int64 `json:"read_all_seq"`
	UnreadCount   int64 `json:"unread_count"`
	// UnreadMentions is ChatSummary.UnreadMentions after the read.
	UnreadMentions int64 `json:"unread_mentions" doc:"how many of the unread messages mention me or @all"`
}

// DiscoveredChat is a public group found by search.
type DiscoveredChat struct {
	ID          int64  `json:"id"`
	Title       string `json:"title"`
	MemberCount int    `json:"member_count"`
}
