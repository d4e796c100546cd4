package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
)

// Reaction is one emoji on a message: its exact count and the first 100 users who used it.
type Reaction struct {
	Emoji   string  `json:"emoji"`
	Count   int     `json:"count"`
	UserIDs []int64 `json:"user_ids"`
}

// ReplyRef is the message a reply answers.
type ReplyRef struct {
	Seq         int64  `json:"seq"`
	SenderID    *int64 `json:"sender_id"`
	BodyPreview string `json:"body_preview"`
	Deleted     bool   `json:"deleted"`
}

// ReactionUpdate is reaction.updated, and the answer of React.
type ReactionUpdate struct {
	ChatID int64  `json:"chat_id"`
	Seq    int64  `json:"seq"`
	Rev    int64  `json:"rev"`
	Emoji  string `json:"emoji"`
	UserID int64  `json:"user_id"`
	Added  bool   `json:"added"`
	Count  int    `json:"count"`
}

// Change is a change of a message that a session hands to OnChange: either the whole new
// state of the message (message.updated, Message set) or one reaction (reaction.updated,
// Reaction set).
type Change struct {
	ChatID, Seq, Rev int64
	Message          *Message
	Reaction         *ReactionUpdate
}

// Apply returns m with the change applied: the whole new state of a message.updated, or a
// reaction's count and user set (idempotent: applying the same reaction.updated twice gives
// the same message).
func (ch Change) Apply(m Message) Message {
	if ch.Message != nil {
		return *ch.Message
	}
	r := ch.Reaction
	if r == nil {
		return m
	}
	m.Rev = max(m.Rev, r.Rev)
	rs := slices.Clone(m.Reactions)
	i := slices.IndexFunc(rs, func(x Reaction) bool { return x.Emoji == r.Emoji })
	if i < 0 {
		if r.Count <= 0 {
			m.Reactions = rs
			return m
		}
		rs = append(rs, Reaction{Emoji: r.Emoji})
		i = len(rs) - 1
	}
	x := rs[i]
	x.Count = r.Count
	x.UserIDs = slices.DeleteFunc(slices.Clone(x.UserIDs), func(id int64) bool { return id == r.UserID })
	if r.Added && len(x.UserIDs) < 100 {
		x.UserIDs = append(x.UserIDs, r.UserID)
	}
	rs[i] = x
	if x.Count <= 0 {
		rs = slices.Delete(rs, i, i+1)
	}
	if len(rs) == 0 {
		rs = nil
	}
	m.Reactions = rs
	return m
}

func messagePath(chatID, seq int64) string {
	return fmt.Sprintf("/api/v1/chats/%d/messages/%d", chatID, seq)
}

// Edit changes the body of one's own message and returns its new state.
func (c *Client) Edit(ctx context.Context, chatID, seq int64, body string) (Message, error) {
	var m Message
	err := c.Do(ctx, http.MethodPatch, messagePath(chatID, seq), map[string]string{"body": body}, &m)
	return m, err
}

// Delete deletes a message (one's own, or any as a group's owner or admin).
func (c *Client) Delete(ctx context.Context, chatID, seq int64) error {
	return c.Do(ctx, http.MethodDelete, messagePath(chatID, seq), nil, nil)
}

// React adds (add true) or removes one's reaction with an emoji to a message.
func (c *Client) React(ctx context.Context, chatID, seq int64, emoji string, add bool) (ReactionUpdate, error) {
	method := http.MethodPut
	if !add {
		method = http.MethodDelete
	}
	var r ReactionUpdate
	err := c.Do(ctx, method, messagePath(chatID, seq)+"/reactions/"+url.PathEscape(emoji), nil, &r)
	return r, err
}
