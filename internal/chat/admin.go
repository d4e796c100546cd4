package chat

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Running a group: its owner and admins rename it, change its visibility and description,
// remove members and promote or demote admins; its owner hands it over or deletes it. Each
// change is a system message, and a frame that follows it (chat.updated, member.role,
// member.left, chat.removed) on every device of every member. The store checks the roles
// again in the changing transaction, under the chat's lock, so that two admins acting at once
// cannot pass a rule together (an admin demoted while removing someone, say).

// Frame types of running a group and accounts.
const (
	EventChatUpdated = "chat.updated"
	EventMemberRole  = "member.role"
	EventUserUpdated = "user.updated"
)

// Error codes of running a group and accounts.
const (
	// CodeNotAdmin: the action needs the group's owner or an admin (403).
	CodeNotAdmin = "not_admin"
	// CodeNotOwner: the action needs the group's owner (403).
	CodeNotOwner = "not_owner"
	// CodePeerDeleted: the other member of this private chat deleted their account; the chat
	// is read-only (403).
	CodePeerDeleted = "peer_deleted"
	// CodeWrongPassword: the current password given to change the password or delete the
	// account is wrong (403, not 401: the session is fine).
	CodeWrongPassword = "wrong_password"
)

// Sentinel errors of the admin store methods.
var (
	ErrNotAdmin = errors.New("needs the owner or an admin")
	ErrNotOwner = errors.New("needs the owner")
	// ErrIsOwner: the action would remove or demote the group's owner.
	ErrIsOwner = errors.New("the user is the owner")
	// ErrNoMember: the user acted upon is not a member.
	ErrNoMember = errors.New("no such member")
)

// AdminStore is what running groups and accounts needs of the store. Like every Store method,
// each is one transaction.
type AdminStore interface {
	// UpdateChat changes what of a group's title, visibility and description differs from
	// what it is, with one system message per change (chat_renamed, visibility_changed,
	// description_changed, in that order), when the actor is the group's owner or an admin
	// (ErrNotAdmin; ErrNotMember when not a member). Nothing that differs: no message.
	UpdateChat(ctx context.Context, u ChatUpdate) ([]Message, error)
	// RemoveFromChat takes a user out of a group: their own leave (Actor == User,
	// member_left) or a removal by the owner or an admin (member_removed; an admin removes
	// members only: ErrNotOwner for an admin, ErrIsOwner for the owner, ErrNoMember when the
	// user is not in). A leaving owner hands the group to the admin who joined first, else to
	// the member who did, with an owner_transferred message right after.
	RemoveFromChat(ctx context.Context, r Removal) (Removed, error)
	// SetRole makes a member an admin or an admin a member (role_changed). The owner and the
	// admins promote; only the owner demotes, except an admin themselves (ErrNotOwner); the
	// owner's role changes only by a transfer (ErrIsOwner). A role the user already has
	// changes nothing (changed false, no message).
	SetRole(ctx context.Context, r RoleChange) (msg Message, changed bool, err error)
	// TransferOwner makes a member the owner and the owner (the actor; ErrNotOwner otherwise)
	// an admin, with an owner_transferred message.
	TransferOwner(ctx context.Context, chatID, actorID, toID int64, now time.Time) (Message, error)
	// DeleteChat deletes a group, when the actor is its owner (ErrNotOwner): its members, its
	// messages and what they held go; the row stays, unreadable by anyone. It returns the
	// chat_deleted message that ends every member's stream (its seq is the chat's last; it
	// is not stored) and who the members were.
	DeleteChat(ctx context.Context, chatID, actorID int64, now time.Time) (DeletedChat, error)

	// UserFor loads a user as the viewer sees them, with whether they share a chat (or are
	// the same user).
	UserFor(ctx context.Context, viewerID, userID int64) (User, bool, error)
	// RenameUser changes a user's display name.
	RenameUser(ctx context.Context, userID int64, name string) error
	// SetPasswordHash changes a user's password hash.
	SetPasswordHash(ctx context.Context, userID int64, hash string) error
	// RevokeOtherSessions revokes every live session of the user but keep, returning their ids.
	RevokeOtherSessions(ctx context.Context, userID, keep int64, now time.Time) ([]int64, error)
	// DeleteUser deletes an account: it leaves every group (as RemoveFromChat, each with its
	// member_left message), its private chats become read-only, its sessions are revoked,
	// and the row is anonymized (DeletedName; the email freed for a new sign-up).
	DeleteUser(ctx context.Context, userID int64, now time.Time) (DeletedAccount, error)
	// TouchUser records that one of the user's WebSockets closed at now (never moving back).
	TouchUser(ctx context.Context, userID int64, now time.Time) error
	// ChatIDsOf lists the ids of the chats a user is a member of.
	ChatIDsOf(ctx context.Context, userID int64) ([]int64, error)
	// ChatIDsOfUsers lists, per user, the ids of the chats they are a member of (a user who
	// is in none is left out).
	ChatIDsOfUsers(ctx context.Context, userIDs []int64) (map[int64][]int64, error)
	// EndedSessions returns those of ids whose session has ended at now: revoked, expired or
	// gone.
	EndedSessions(ctx context.Context, ids []int64, now time.Time) ([]int64, error)
	// LeaveReason says why a user is not in a chat they were in at the chat's seq after, as
	// chat.removed's reason tells it: "deleted" (the group was deleted), "removed" (the last
	// message after that seq that ended their membership is their removal), or "" (their own
	// leave, or no such message). ErrNotFound: no such chat.
	LeaveReason(ctx context.Context, userID, chatID, after int64) (string, error)
}

// ChatUpdate is a change of a group by one of its owner or admins; nil fields stay.
type ChatUpdate struct {
	ChatID      int64
	ActorID     int64
	Title       *string
	Public      *bool
	Description *string
	// MentionAllAdmins keeps @all to the owner and admins (true) or gives it to every member.
	// It is a setting, not an event of the history: no system message.
	MentionAllAdmins *bool
	Now              time.Time
}

// Removal takes UserID out of ChatID: their leave when ActorID is UserID, else a removal.
type Removal struct {
	ChatID  int64
	UserID  int64
	ActorID int64
	Now     time.Time
}

// Removed is the result of RemoveFromChat.
type Removed struct {
	ChatID int64
	// Message is the member_left or member_removed system message.
	Message Message
	// Successor is the owner_transferred message that follows when the owner left and
	// someone took the group over; nil otherwise.
	Successor *Message
	ReadAll   ReadAll
}

// RoleChange makes UserID's role Role (RoleAdmin or RoleMember) in ChatID.
type RoleChange struct {
	ChatID  int64
	UserID  int64
	ActorID int64
	Role    string
	Now     time.Time
}

// DeletedChat is the result of DeleteChat.
type DeletedChat struct {
	Message Message
	Members []int64
}

// DeletedAccount is the result of DeleteUser.
type DeletedAccount struct {
	// Groups are the groups the user left, each as RemoveFromChat reports it.
	Groups []Removed
	// Private are the private chats that became read-only.
	Private []int64
	// Sessions are the sessions revoked.
	Sessions []int64
}

// ChatInfo is what chat.updated says of a chat: the fields that describe the group itself
// (merge them into what you have; the rest of a summary is yours alone).
type ChatInfo struct {
	ID          int64  `json:"id"`
	Kind        string `json:"kind" enum:"private,group"`
	Title       string `json:"title"`
	Public      bool   `json:"public"`
	Description string `json:"description"`
	MentionAll  string `json:"mention_all,omitempty" enum:"everyone,admins" doc:"groups: who may mention @all"`
}

// Event payloads of running groups and accounts.
type (
	ChatUpdatedData struct {
		Chat ChatInfo `json:"chat"`
	}
	MemberRoleData struct {
		ChatID int64  `json:"chat_id"`
		UserID int64  `json:"user_id"`
		Role   string `json:"role"`
	}
	UserUpdatedData struct {
		User UserUpdate `json:"user"`
	}
)

// UserUpdate is a user whose profile changed, as user.updated carries it.
type UserUpdate struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Deleted bool   `json:"deleted,omitempty"`
}

// ChatPatch is what UpdateChat takes from the caller; nil fields stay as they are.
type ChatPatch struct {
	Title       *string
	Public      *bool
	Description *string
	// MentionAll is who may mention @all: MentionAllEveryone or MentionAllAdmins.
	MentionAll *string
}

// UpdateChat renames a group, changes its visibility or its description. Only its owner and
// admins may (403 not_admin); a private chat has none of these (409 private_chat).
func (s *Service) UpdateChat(ctx context.Context, p Principal, chatID int64, in ChatPatch) (ChatDetail, error) {
	if in.Title == nil && in.Public == nil && in.Description == nil && in.MentionAll == nil {
		return ChatDetail{}, Invalid("body", "give at least one of title, public, description and mention_all")
	}
	var adminsOnly *bool
	if in.MentionAll != nil {
		if *in.MentionAll != MentionAllEveryone && *in.MentionAll != MentionAllAdmins {
			return ChatDetail{}, Invalid("body.mention_all", "mention_all is everyone or admins")
		}
		v := *in.MentionAll == MentionAllAdmins
		adminsOnly = &v
	}
	if in.Title != nil {
		t, err := checkTitle("body.title", *in.Title)
		if err != nil {
			return ChatDetail{}, err
		}
		in.Title = &t
	}
	if in.Description != nil {
		d, err := checkDescription("body.description", *in.Description)
		if err != nil {
			return ChatDetail{}, err
		}
		in.Description = &d
	}
	before, err := s.groupChat(ctx, p, chatID)
	if err != nil {
		return ChatDetail{}, err
	}
	if err := s.allowChatChange(ctx, p, 1); err != nil {
		return ChatDetail{}, err
	}
	msgs, err := s.store.UpdateChat(ctx, ChatUpdate{ChatID: chatID, ActorID: p.UserID, Title: in.Title, Public: in.Public,
		Description: in.Description, MentionAllAdmins: adminsOnly, Now: s.now()})
	if err != nil {
		return ChatDetail{}, s.adminErr(ctx, p, chatID, err, "update chat %d", chatID)
	}
	d, err := s.chatFor(ctx, p.UserID, chatID)
	if err != nil {
		return ChatDetail{}, err
	}
	// A change of who may mention @all has no system message: chat.updated follows the
	// chat's last message.
	if len(msgs) > 0 || d.MentionAll != before.MentionAll {
		at := d.LastSeq
		for _, m := range msgs {
			s.publishMessage(ctx, m)
			at = m.Seq
		}
		s.pub.Publish(ctx, Event{Type: EventChatUpdated, ChatID: chatID, At: at, Data: ChatUpdatedData{Chat: ChatInfo{
			ID: d.ID, Kind: d.Kind, Title: d.Title, Public: d.Public, Description: d.Description, MentionAll: d.MentionAll}}})
	}
	return d, nil
}

// RemoveMember removes (kicks) a member from a group. The owner removes anyone, an admin only
// members (403 not_owner for an admin, 403 forbidden for the owner). The removed user's devices
// stop at the removal's system message (they get chat.removed with reason "removed"), as if
// they had left.
func (s *Service) RemoveMember(ctx context.Context, p Principal, chatID, userID int64) error {
	if userID == p.UserID {
		return Invalid("path.user_id", "to leave a group, use POST /api/v1/chats/%d/leave", chatID)
	}
	if _, err := s.groupChat(ctx, p, chatID); err != nil {
		return err
	}
	if err := s.allowChatChange(ctx, p, 1); err != nil {
		return err
	}
	r, err := s.store.RemoveFromChat(ctx, Removal{ChatID: chatID, UserID: userID, ActorID: p.UserID, Now: s.now()})
	if err != nil {
		return s.adminErr(ctx, p, chatID, err, "remove user %d from chat %d", userID, chatID)
	}
	s.publishRemoval(ctx, userID, r, "removed")
	return nil
}

// SetRole makes a member an admin or an admin a member.
func (s *Service) SetRole(ctx context.Context, p Principal, chatID, userID int64, role string) (ChatDetail, error) {
	if role != RoleAdmin && role != RoleMember {
		return ChatDetail{}, Invalid("body.role", "role must be %q or %q (the owner changes by a transfer)", RoleAdmin, RoleMember)
	}
	if _, err := s.groupChat(ctx, p, chatID); err != nil {
		return ChatDetail{}, err
	}
	if err := s.allowChatChange(ctx, p, 1); err != nil {
		return ChatDetail{}, err
	}
	msg, changed, err := s.store.SetRole(ctx, RoleChange{ChatID: chatID, UserID: userID, ActorID: p.UserID, Role: role, Now: s.now()})
	if err != nil {
		return ChatDetail{}, s.adminErr(ctx, p, chatID, err, "set the role of user %d in chat %d", userID, chatID)
	}
	if changed {
		s.publishMessage(ctx, msg)
		s.publishRole(ctx, chatID, userID, role, msg.Seq)
	}
	return s.chatFor(ctx, p.UserID, chatID)
}

// TransferOwnership makes another member the group's owner; the caller, its owner until
// then, becomes an admin.
func (s *Service) TransferOwnership(ctx context.Context, p Principal, chatID, userID int64) (ChatDetail, error) {
	if userID == p.UserID {
		return ChatDetail{}, Invalid("body.user_id", "give the group to another member")
	}
	if _, err := s.groupChat(ctx, p, chatID); err != nil {
		return ChatDetail{}, err
	}
	if err := s.allowChatChange(ctx, p, 1); err != nil {
		return ChatDetail{}, err
	}
	msg, err := s.store.TransferOwner(ctx, chatID, p.UserID, userID, s.now())
	if err != nil {
		return ChatDetail{}, s.adminErr(ctx, p, chatID, err, "transfer chat %d to user %d", chatID, userID)
	}
	s.publishMessage(ctx, msg)
	s.publishRole(ctx, chatID, userID, RoleOwner, msg.Seq)
	s.publishRole(ctx, chatID, p.UserID, RoleAdmin, msg.Seq)
	return s.chatFor(ctx, p.UserID, chatID)
}

// DeleteChat deletes a group, which only its owner may. Its messages are deleted with it;
// every member's devices stop at once (the streams end at a last chat_deleted message that
// nobody receives) and get chat.removed with reason "deleted".
func (s *Service) DeleteChat(ctx context.Context, p Principal, chatID int64) error {
	if _, err := s.groupChat(ctx, p, chatID); err != nil {
		return err
	}
	if err := s.allowChatChange(ctx, p, 1); err != nil {
		return err
	}
	d, err := s.store.DeleteChat(ctx, chatID, p.UserID, s.now())
	if err != nil {
		return s.adminErr(ctx, p, chatID, err, "delete chat %d", chatID)
	}
	s.filesDetached() // those of its messages
	for _, uid := range d.Members {
		s.pub.Publish(ctx, Event{Type: EventChatRemoved, UserID: uid, Seq: d.Message.Seq,
			Data: ChatRemovedData{ChatID: chatID, Reason: "deleted"}})
	}
	s.publishMessage(ctx, d.Message)
	return nil
}

// groupChat loads a group for an admin action: 404 for a chat the caller cannot see, 403 for
// a public group they are not in, 409 for a private chat.
func (s *Service) groupChat(ctx context.Context, p Principal, chatID int64) (ChatSummary, error) {
	c, err := s.memberChat(ctx, p, chatID)
	if err != nil {
		return c, err
	}
	if c.Kind == KindPrivate {
		return c, Errorf(CodePrivateChat, "a private chat has no owner, admins, title or members to manage")
	}
	return c, nil
}

// adminErr turns a refusal of an admin store method into the caller's error.
func (s *Service) adminErr(ctx context.Context, p Principal, chatID int64, err error, format string, args ...any) error {
	switch {
	case errors.Is(err, ErrNotAdmin):
		return Errorf(CodeNotAdmin, "only the group's owner and admins may do this")
	case errors.Is(err, ErrNotOwner):
		return Errorf(CodeNotOwner, "only the group's owner may do this")
	case errors.Is(err, ErrIsOwner):
		return Errorf(CodeForbidden, "the owner cannot be removed or demoted; the owner may hand the group to another member")
	case errors.Is(err, ErrNoMember):
		return Errorf(CodeNotFound, "that user is not a member of chat %d", chatID)
	case errors.Is(err, ErrUnknownUser):
		return Errorf(CodeNotFound, "that user is not a member of chat %d", chatID)
	case errors.Is(err, ErrPrivateChat):
		return Errorf(CodePrivateChat, "a private chat has no owner, admins, title or members to manage")
	case errors.Is(err, ErrNotMember), errors.Is(err, ErrNotFound):
		// Left, was removed, or the chat was deleted since it was loaded.
		return s.refusal(ctx, p, chatID)
	}
	return storeErr(err, format, args...)
}

// publishMessage publishes a system message to the chat's members.
func (s *Service) publishMessage(ctx context.Context, m Message) {
	s.pub.Publish(ctx, Event{Type: EventMessageNew, ChatID: m.ChatID, Seq: m.Seq, Data: MessageData{Message: m}})
}

func (s *Service) publishRole(ctx context.Context, chatID, userID int64, role string, at int64) {
	s.pub.Publish(ctx, Event{Type: EventMemberRole, ChatID: chatID, At: at, Data: MemberRoleData{ChatID: chatID, UserID: userID, Role: role}})
}

// publishRemoval tells of a user taken out of a group: their devices stop at the system
// message (its seq travels with chat.removed), the members learn of it right after that
// message, then of the group's new owner if it changed hands.
func (s *Service) publishRemoval(ctx context.Context, userID int64, r Removed, reason string) {
	chatID, msg := r.ChatID, r.Message
	s.pub.Publish(ctx, Event{Type: EventChatRemoved, UserID: userID, Seq: msg.Seq, Data: ChatRemovedData{ChatID: chatID, Reason: reason}})
	s.publishMessage(ctx, msg)
	s.pub.Publish(ctx, Event{Type: EventMemberLeft, ChatID: chatID, ExceptUser: userID, At: msg.Seq,
		Data: MemberLeftData{ChatID: chatID, UserID: userID}})
	last := msg.Seq
	if next := r.Successor; next != nil {
		s.publishMessage(ctx, *next)
		s.publishRole(ctx, chatID, next.Event.UserID, RoleOwner, next.Seq)
		last = next.Seq
	}
	s.publishReadAll(ctx, chatID, r.ReadAll, last)
}

// checkDescription trims and checks a group's description: up to MaxDescChars characters,
// lines and tabs allowed, no other control characters. A line break is stored as \n, whichever
// way it was written (\r\n from a Windows client, \r).
func checkDescription(field, v string) (string, error) {
	v = strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(v, "\r\n", "\n"), "\r", "\n"))
	if err := checkText(field, v, 0, MaxDescChars, false); err != nil {
		return v, err
	}
	if err := checkMarks(field, v); err != nil {
		return v, err
	}
	for _, r := range v {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			return v, Invalid(field, "%s must not contain control characters other than line breaks and tabs", field)
		}
	}
	return v, nil
}
