package chat

import (
	"context"
	"errors"
	"time"
)

// Messages that change (issue 13): an author edits their message within the edit window, an
// author (or a group's owner or admin) deletes one, members react to messages. Every change
// takes the chat's next change number, rev (1, 2, 3 ... with no gaps, in commit order), in the
// transaction that makes it, under the chat's lock like a send's seq; the message records the
// rev of its last change. Receivers order changes by rev and heal gaps from the store
// (ChangeStore.Changes) exactly as they order and heal messages by seq.

// Frame types of message changes.
const (
	EventMessageUpdated  = "message.updated"
	EventReactionUpdated = "reaction.updated"
)

// Error codes of message changes.
const (
	// CodeNotAuthor: only the message's author may do this (edit; delete, outside the owner
	// and admins of a group) (403).
	CodeNotAuthor = "not_author"
	// CodeEditWindow: the message is older than the edit window (403).
	CodeEditWindow = "edit_window_closed"
	// CodeSystemMessage: system messages cannot be edited, deleted or reacted to (409).
	CodeSystemMessage = "system_message"
	// CodeMessageDeleted: the message was deleted; it cannot be edited or reacted to (409).
	CodeMessageDeleted = "message_deleted"
	// CodeTooManyReactions: the message has MaxReactions distinct emoji already (409).
	CodeTooManyReactions = "too_many_reactions"
)

// Limits of message changes.
const (
	// MaxReactions is the number of distinct emoji one message may carry.
	MaxReactions = 20
	// MaxReactionUsers is how many of an emoji's users a message lists (its count is exact).
	MaxReactionUsers = 100
	// ReplyPreviewChars is how much of an answered message's body a reply quotes.
	ReplyPreviewChars = 100
	// DefaultEditWindow is how long after sending an author may edit a message.
	DefaultEditWindow = 24 * time.Hour
)

// Sentinel errors of the change store methods.
var (
	ErrNoMessage       = errors.New("no such message")
	ErrNotAuthor       = errors.New("not the author")
	ErrEditWindow      = errors.New("edit window closed")
	ErrSystemMessage   = errors.New("system message")
	ErrMessageDeleted  = errors.New("message deleted")
	ErrTooManyReaction = errors.New("too many reactions")
)

// Reaction is one emoji on a message: how many members used it, and the first
// MaxReactionUsers of them (in the order they reacted), so that a client knows its own.
type Reaction struct {
	Emoji   string  `json:"emoji"`
	Count   int     `json:"count" doc:"how many members reacted with this emoji (exact)"`
	UserIDs []int64 `json:"user_ids" doc:"the first 100 members who reacted with it, in the order they did"`
}

// ReplyRef is the message a reply answers, as a quote: enough to show it without a request.
type ReplyRef struct {
	Seq         int64  `json:"seq"`
	SenderID    *int64 `json:"sender_id"`
	BodyPreview string `json:"body_preview" doc:"the first 100 characters of the answered message's body; empty when it was deleted"`
	Deleted     bool   `json:"deleted" doc:"the answered message was deleted"`
}

// ChangeStore is what message changes need of the store. Each method is one transaction that
// locks the chat's row, so that its rev is taken in commit order with no gap, alongside sends.
type ChangeStore interface {
	// EditMessage replaces the body of a text message by its author (ErrNotAuthor), within
	// Window of its sending (0: any time; ErrEditWindow), unless it was deleted
	// (ErrMessageDeleted) or is a system message (ErrSystemMessage). The same body changes
	// nothing (Changed.Changed false). A read-only chat refuses it (ErrNotMember), as it
	// refuses sends.
	EditMessage(ctx context.Context, e MessageEdit) (Changed, error)
	// DeleteMessage makes a message a tombstone: body emptied, reactions deleted, deleted_at
	// set; by its author, or by the owner or an admin of a group (ErrNotAuthor otherwise).
	// Deleting a deleted message changes nothing.
	DeleteMessage(ctx context.Context, chatID, seq, actorID int64, now time.Time) (Changed, error)
	// React adds or removes the user's reaction with an emoji. Adding what is there, or
	// removing what is not, changes nothing (Reacted.Changed false). A message carries at most
	// MaxReactions distinct emoji (ErrTooManyReaction).
	React(ctx context.Context, r ReactionChange) (Reacted, error)
	// Changes returns the latest state of each message of the chat changed after rev, in rev
	// order, at most limit of them, whether more follow, and the chat's last seq as of the
	// same read (every change returned was made at or before it).
	Changes(ctx context.Context, chatID, afterRev int64, limit int) (ChangePage, error)
	// Message returns one message of a chat, as History would.
	Message(ctx context.Context, chatID, seq int64) (Message, error)
	// ChatHeads returns the last seq, the last rev and the read-all mark of each of the chats
	// (a chat that does not exist is left out).
	ChatHeads(ctx context.Context, ids []int64) (map[int64]ChatHead, error)
}

// ChatHead is where a chat's messages, changes and reads stand: its last seq, its last rev and
// its read-all mark (read_all_seq).
type ChatHead struct {
	Seq, Rev, ReadAll int64
}

// MessageEdit is an edit to store.
type MessageEdit struct {
	ChatID, Seq, UserID int64
	Body                string
	Now                 time.Time
	Window              time.Duration
}

// ReactionChange is a reaction to add (Add) or remove.
type ReactionChange struct {
	ChatID, Seq, UserID int64
	Emoji               string
	Add                 bool
	Now                 time.Time
}

// Changed is the result of an edit or a delete: the message's new state, whether it changed,
// and the chat's last seq when it did (the change follows that message in the chat's stream).
type Changed struct {
	Message Message
	Changed bool
	At      int64
	// Detached is how many files the change took from their message (a delete's): nobody's
	// any more, for the janitor to delete.
	Detached int
}

// Reacted is the result of React: the rev the change took, the emoji's count after it, and
// the chat's last seq then.
type Reacted struct {
	Rev     int64
	Count   int
	Changed bool
	At      int64
}

// ChangePage is a page of Changes.
type ChangePage struct {
	Messages []Message
	More     bool
	LastSeq  int64
}

// Event payloads of message changes.
type (
	// ReactionUpdatedData is reaction.updated: small, so that a reaction in a large room does
	// not resend the message.
	ReactionUpdatedData struct {
		ChatID int64  `json:"chat_id"`
		Seq    int64  `json:"seq"`
		Rev    int64  `json:"rev"`
		Emoji  string `json:"emoji"`
		UserID int64  `json:"user_id"`
		Added  bool   `json:"added"`
		Count  int    `json:"count" doc:"how many members reacted with this emoji after the change"`
	}
)

// editWindow is the window the store checks (0: none).
func (s *Service) editWindow() time.Duration {
	switch w := s.opts.EditWindow; {
	case w < 0:
		return 0
	case w == 0:
		return DefaultEditWindow
	default:
		return w
	}
}

// changeErr turns a refusal of a change store method into the caller's error.
func (s *Service) changeErr(ctx context.Context, p Principal, chatID, seq int64, err error) error {
	switch {
	case errors.Is(err, ErrNoMessage):
		return Errorf(CodeNotFound, "message %d of chat %d not found", seq, chatID)
	case errors.Is(err, ErrNotAuthor):
		return Errorf(CodeNotAuthor, "only the author of message %d may do this", seq)
	case errors.Is(err, ErrEditWindow):
		return Errorf(CodeEditWindow, "message %d can no longer be edited: the edit window is %s", seq, s.editWindow())
	case errors.Is(err, ErrSystemMessage):
		return Errorf(CodeSystemMessage, "message %d is a system message: it cannot be changed", seq)
	case errors.Is(err, ErrMessageDeleted):
		return Errorf(CodeMessageDeleted, "message %d was deleted", seq)
	case errors.Is(err, ErrTooManyReaction):
		return Errorf(CodeTooManyReactions, "message %d has %d different reactions already", seq, MaxReactions)
	case errors.Is(err, ErrNotMember), errors.Is(err, ErrNotFound):
		return s.refusal(ctx, p, chatID)
	}
	return storeErr(err, "change message %d of chat %d", seq, chatID)
}

// EditMessage replaces the body of the caller's message and tells every member's devices
// (message.updated). The same body changes nothing and publishes nothing.
func (s *Service) EditMessage(ctx context.Context, p Principal, chatID, seq int64, body string) (Message, error) {
	if err := checkBody("body.body", body); err != nil {
		return Message{}, err
	}
	if err := s.take(ctx, s.sendByUser, userKey(p), 1); err != nil {
		return Message{}, err
	}
	c, err := s.store.EditMessage(ctx, MessageEdit{ChatID: chatID, Seq: seq, UserID: p.UserID, Body: body, Now: s.now(), Window: s.editWindow()})
	if err != nil {
		return Message{}, s.changeErr(ctx, p, chatID, seq, err)
	}
	s.publishChanged(ctx, c)
	return c.Message, nil
}

// DeleteMessage makes a message a tombstone (its author, or a group's owner or admin) and
// tells every member's devices (message.updated with deleted_at). Deleting a deleted message
// changes nothing.
func (s *Service) DeleteMessage(ctx context.Context, p Principal, chatID, seq int64) error {
	if err := s.take(ctx, s.sendByUser, userKey(p), 1); err != nil {
		return err
	}
	c, err := s.store.DeleteMessage(ctx, chatID, seq, p.UserID, s.now())
	if err != nil {
		return s.changeErr(ctx, p, chatID, seq, err)
	}
	s.publishChanged(ctx, c)
	if c.Detached > 0 {
		s.filesDetached()
	}
	return nil
}

func (s *Service) publishChanged(ctx context.Context, c Changed) {
	if !c.Changed {
		return
	}
	m := c.Message
	s.pub.Publish(ctx, Event{Type: EventMessageUpdated, ChatID: m.ChatID, At: c.At, Rev: m.Rev, Data: MessageData{Message: m}})
}

// React adds (add) or removes the caller's reaction with an emoji to a message, and tells
// every member's devices (reaction.updated). What is already so changes nothing; the answer
// is the reaction's state either way (Added: the caller's reaction is there now).
func (s *Service) React(ctx context.Context, p Principal, chatID, seq int64, emoji string, add bool) (ReactionUpdatedData, error) {
	emoji, err := NormalizeEmoji("path.emoji", emoji)
	if err != nil {
		return ReactionUpdatedData{}, err
	}
	if err := s.take(ctx, s.sendByUser, userKey(p), 1); err != nil {
		return ReactionUpdatedData{}, err
	}
	r, err := s.store.React(ctx, ReactionChange{ChatID: chatID, Seq: seq, UserID: p.UserID, Emoji: emoji, Add: add, Now: s.now()})
	if err != nil {
		return ReactionUpdatedData{}, s.changeErr(ctx, p, chatID, seq, err)
	}
	d := ReactionUpdatedData{ChatID: chatID, Seq: seq, Rev: r.Rev, Emoji: emoji, UserID: p.UserID, Added: add, Count: r.Count}
	if r.Changed {
		s.pub.Publish(ctx, Event{Type: EventReactionUpdated, ChatID: chatID, At: r.At, Rev: r.Rev, Data: d})
	}
	return d, nil
}
