package chat

import (
	"context"
)

// Mentions (issue 16): a message names members it is for (@name) and, in a group, everyone
// (@all). The client sends the ids it completed; the server keeps only those who are members
// of the chat when the message is stored (a mention of anyone else is dropped, not refused: the
// composer's member list may be a moment old, and the message matters more than the mention).
// Unread mentions are counted per chat beside unread messages; a member whose setting is
// notify=mentions is told only of messages that mention them or @all.

// MaxMentions caps the users one message mentions (API.md is silent): more is refused.
const MaxMentions = 50

// Who may mention @all in a group (ChatSummary.MentionAll).
const (
	MentionAllEveryone = "everyone"
	MentionAllAdmins   = "admins"
)

// CodeMentionAllRefused: the message mentions @all in a private chat, or in a group that
// keeps @all to its owner and admins, by a member (403).
const CodeMentionAllRefused = "mention_all_refused"

// checkMentions validates a send's mentions and returns them each once, in order, without the
// sender.
func checkMentions(ids []int64, sender int64) ([]int64, error) {
	if len(ids) > MaxMentions {
		return nil, Invalid("body.mentions", "a message mentions at most %d users", MaxMentions)
	}
	var out []int64
	seen := make(map[int64]bool, len(ids))
	for _, id := range ids {
		if id <= 0 {
			return nil, Invalid("body.mentions", "mentions are user ids")
		}
		if id == sender || seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, id)
	}
	return out, nil
}

// mentionAllRefusal says why a send's @all was refused.
func (s *Service) mentionAllRefusal(ctx context.Context, p Principal, chatID int64) error {
	c, err := s.store.ChatFor(ctx, p.UserID, chatID)
	if err != nil {
		return storeErr(err, "load chat %d", chatID)
	}
	if c.Kind != KindGroup {
		return Errorf(CodeMentionAllRefused, "@all is for groups: a private chat has one other member to mention")
	}
	return Errorf(CodeMentionAllRefused, "in this group only the owner and admins may mention @all")
}
