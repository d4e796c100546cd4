package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// Wire shapes of message changes.
type wireReaction struct {
	Emoji   string  `json:"emoji"`
	Count   int     `json:"count"`
	UserIDs []int64 `json:"user_ids"`
}

type wireChangedMessage struct {
	wireMessage
	Rev       int64          `json:"rev"`
	EditedAt  *string        `json:"edited_at"`
	DeletedAt *string        `json:"deleted_at"`
	Reactions []wireReaction `json:"reactions"`
	ReplyTo   *struct {
		Seq         int64  `json:"seq"`
		SenderID    *int64 `json:"sender_id"`
		BodyPreview string `json:"body_preview"`
		Deleted     bool   `json:"deleted"`
	} `json:"reply_to"`
}

type wireReactionState struct {
	ChatID int64  `json:"chat_id"`
	Seq    int64  `json:"seq"`
	Rev    int64  `json:"rev"`
	Emoji  string `json:"emoji"`
	UserID int64  `json:"user_id"`
	Added  bool   `json:"added"`
	Count  int    `json:"count"`
}

func messagePath(chatID, seq int64) string { return chatPath(chatID, fmt.Sprintf("/messages/%d", seq)) }

func reactionPath(chatID, seq int64, emoji string) string {
	return messagePath(chatID, seq) + "/reactions/" + url.PathEscape(emoji)
}

// TestMessageChanges: edit, delete and reactions over HTTP, with the message's new fields in
// the answers and in history.
func TestMessageChanges(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		a, b := e.newUser(t, "Ann"), e.newUser(t, "Ben")
		g := e.group(t, a, "Team", false, b)
		m := e.send(t, a, g, "helo")

		r := e.do(t, req{method: "PATCH", path: messagePath(g, m.Seq), token: a.Token, body: map[string]any{"body": "hello"}})
		r.want(t, http.StatusOK, "")
		got := decode[wireChangedMessage](t, r)
		if got.Body != "hello" || got.Rev != 1 || got.EditedAt == nil || got.DeletedAt != nil {
			t.Errorf("edited: %s", r.body)
		} else {
			checkTime(t, "edited_at", *got.EditedAt)
		}

		r = e.do(t, req{method: "PUT", path: reactionPath(g, m.Seq, "👍"), token: b.Token})
		r.want(t, http.StatusOK, "")
		if st := decode[wireReactionState](t, r); st != (wireReactionState{ChatID: g, Seq: m.Seq, Rev: 2, Emoji: "👍", UserID: b.ID, Added: true, Count: 1}) {
			t.Errorf("reaction: %s", r.body)
		}
		// Idempotent: the same PUT changes nothing, and answers the same state.
		r = e.do(t, req{method: "PUT", path: reactionPath(g, m.Seq, "👍"), token: b.Token})
		if st := decode[wireReactionState](t, r); r.status != http.StatusOK || st.Rev != 2 || st.Count != 1 {
			t.Errorf("the same reaction again: %d %s", r.status, r.body)
		}
		e.do(t, req{method: "PUT", path: reactionPath(g, m.Seq, "❤️"), token: a.Token}).want(t, http.StatusOK, "")

		h := decode[struct {
			Messages []wireChangedMessage `json:"messages"`
		}](t, e.do(t, req{method: "GET", path: chatPath(g, "/messages"), token: b.Token}))
		last := h.Messages[len(h.Messages)-1]
		if last.Rev != 3 || len(last.Reactions) != 2 || last.Reactions[0].Emoji != "👍" || last.Reactions[0].Count != 1 ||
			len(last.Reactions[0].UserIDs) != 1 || last.Reactions[0].UserIDs[0] != b.ID || last.Reactions[1].Emoji != "❤️" {
			t.Errorf("history after the reactions: %+v", last)
		}
		r = e.do(t, req{method: "DELETE", path: reactionPath(g, m.Seq, "👍"), token: b.Token})
		if st := decode[wireReactionState](t, r); r.status != http.StatusOK || st.Added || st.Count != 0 || st.Rev != 4 {
			t.Errorf("reaction taken back: %d %s", r.status, r.body)
		}

		e.do(t, req{method: "DELETE", path: messagePath(g, m.Seq), token: a.Token}).want(t, http.StatusNoContent, "")
		e.do(t, req{method: "DELETE", path: messagePath(g, m.Seq), token: a.Token}).want(t, http.StatusNoContent, "")
		h = decode[struct {
			Messages []wireChangedMessage `json:"messages"`
		}](t, e.do(t, req{method: "GET", path: chatPath(g, "/messages"), token: b.Token}))
		last = h.Messages[len(h.Messages)-1]
		if last.Body != "" || last.DeletedAt == nil || len(last.Reactions) != 0 || last.EditedAt != nil || last.Rev != 5 {
			t.Errorf("history after the delete: %+v", last)
		}
		c := decode[struct {
			LastMessage wireChangedMessage `json:"last_message"`
			UnreadCount int64              `json:"unread_count"`
		}](t, e.do(t, req{method: "GET", path: chatPath(g, ""), token: b.Token}))
		if c.LastMessage.Seq != m.Seq || c.LastMessage.DeletedAt == nil || c.LastMessage.Body != "" || c.UnreadCount != 0 {
			t.Errorf("the chat after the delete: %+v", c)
		}
		e.do(t, req{method: "PATCH", path: messagePath(g, m.Seq), token: a.Token, body: map[string]any{"body": "back"}}).
			want(t, http.StatusConflict, chat.CodeMessageDeleted)
		e.do(t, req{method: "PUT", path: reactionPath(g, m.Seq, "👍"), token: a.Token}).want(t, http.StatusConflict, chat.CodeMessageDeleted)
	})
}

// TestReactionSpellings: an emoji typed two ways is one reaction: "❤" (U+2764), "❤️" (with
// U+FE0F) and "❤︎" (with U+FE0E) all react with the red heart, spelled "❤️" in answers, events
// and history, and taking it back by any spelling takes it back.
func TestReactionSpellings(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		a, b := e.newUser(t, "Ann"), e.newUser(t, "Ben")
		g := e.group(t, a, "Team", false, b)
		m := e.send(t, a, g, "hi")
		for _, c := range []struct {
			by    string
			emoji string
			count int
		}{{a.Token, "\u2764", 1}, {b.Token, "\u2764\ufe0f", 2}, {a.Token, "\u2764\ufe0e", 2}, {b.Token, "1\u20e3", 1}} {
			got := decode[wireReactionState](t, e.do(t, req{method: "PUT", path: reactionPath(g, m.Seq, c.emoji), token: c.by}))
			want, _ := chat.NormalizeEmoji("emoji", c.emoji)
			if got.Emoji != want || got.Count != c.count {
				t.Errorf("PUT %+q: %+q count %d, want %+q count %d", c.emoji, got.Emoji, got.Count, want, c.count)
			}
		}
		history := func() []wireReaction {
			h := decode[struct {
				Messages []wireChangedMessage `json:"messages"`
			}](t, e.do(t, req{method: "GET", path: chatPath(g, "/messages"), token: b.Token}))
			return h.Messages[len(h.Messages)-1].Reactions
		}
		if got := history(); len(got) != 2 || got[0].Emoji != "\u2764\ufe0f" || got[0].Count != 2 || got[1].Emoji != "1\ufe0f\u20e3" {
			t.Errorf("reactions %+v, want one \"\u2764\ufe0f\" of 2 and one keycap", got)
		}
		e.do(t, req{method: "DELETE", path: reactionPath(g, m.Seq, "\u2764"), token: b.Token}).want(t, http.StatusOK, "")
		if got := history(); len(got) != 2 || got[0].Count != 1 || len(got[0].UserIDs) != 1 || got[0].UserIDs[0] != a.ID {
			t.Errorf("after Ben took back \"\u2764\": %+v", got)
		}
	})
}

// TestChangesAuthz is the authorization matrix of the change endpoints: who may edit, delete
// and react, on each kind of chat, for the author, another member, the owner, an admin, a
// non-member and an ex-member (the author after leaving).
func TestChangesAuthz(t *testing.T) {
	const (
		author, other, owner, admin, stranger, ex, anon = "author", "other member", "owner", "admin", "non-member", "ex-member", "unauthenticated"
		react, unreact, edit, del                       = "PUT reaction", "DELETE reaction", "PATCH message", "DELETE message"
	)
	expect := func(caller, kind, endpoint string) (int, string) {
		switch caller {
		case anon:
			return http.StatusUnauthorized, chat.CodeUnauthenticated
		case stranger, ex:
			if kind == kPublicGroup {
				return http.StatusForbidden, chat.CodeNotMember
			}
			return http.StatusNotFound, chat.CodeNotFound
		}
		switch endpoint {
		case react, unreact:
			return http.StatusOK, ""
		case edit:
			if caller == author {
				return http.StatusOK, ""
			}
			return http.StatusForbidden, chat.CodeNotAuthor
		}
		if caller == author || (kind != kPrivate && (caller == owner || caller == admin)) {
			return http.StatusNoContent, ""
		}
		return http.StatusForbidden, chat.CodeNotAuthor
	}
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		for _, kind := range []string{kPrivate, kPrivateGroup, kPublicGroup} {
			for _, caller := range []string{author, other, owner, admin, stranger, ex, anon} {
				if kind == kPrivate && (caller == owner || caller == admin || caller == ex) {
					continue // a private chat has neither, and nobody leaves it
				}
				t.Run(kind+"/"+caller, func(t *testing.T) {
					o, au, ot, ad := e.newUser(t, "Owner"), e.newUser(t, "Author"), e.newUser(t, "Other"), e.newUser(t, "Admin")
					var chatID int64
					if kind == kPrivate {
						chatID = e.private(t, au, ot)
					} else {
						chatID = e.group(t, o, "g", kind == kPublicGroup, au, ot, ad)
						if _, err := e.svc.SetRole(ctx, o.P(), chatID, ad.ID, chat.RoleAdmin); err != nil {
							t.Fatal(err)
						}
					}
					m := e.send(t, au, chatID, "mine")
					token := map[string]string{author: au.Token, other: ot.Token, owner: o.Token, admin: ad.Token,
						stranger: e.newUser(t, "Stranger").Token, ex: au.Token}[caller]
					if caller == ex {
						e.leave(t, au, chatID)
					}
					for _, ep := range []struct{ name, method, path string }{
						{react, "PUT", reactionPath(chatID, m.Seq, "👍")},
						{unreact, "DELETE", reactionPath(chatID, m.Seq, "👍")},
						{edit, "PATCH", messagePath(chatID, m.Seq)},
						{del, "DELETE", messagePath(chatID, m.Seq)},
					} {
						r := req{method: ep.method, path: ep.path, token: token}
						if ep.name == edit {
							r.body = map[string]any{"body": "changed by " + caller}
						}
						status, code := expect(caller, kind, ep.name)
						t.Run(ep.name, func(t *testing.T) { e.do(t, r).want(t, status, code) })
					}
				})
			}
		}
	})
}

// TestChangesBadInput: out-of-range and hostile input to the change endpoints answers a
// precise 4xx (do checks that none is a 5xx).
func TestChangesBadInput(t *testing.T) {
	bothBackends(t, envOptions{editWindow: time.Millisecond}, func(t *testing.T, e *env) {
		a, b := e.newUser(t, "Ann"), e.newUser(t, "Ben")
		g := e.group(t, a, "Team", true, b)
		m := e.send(t, a, g, "hello")
		gone := e.send(t, a, g, "bye")
		e.do(t, req{method: "DELETE", path: messagePath(g, gone.Seq), token: a.Token}).want(t, http.StatusNoContent, "")
		time.Sleep(10 * time.Millisecond) // past the edit window of a millisecond
		huge := `{"body":"` + strings.Repeat("x", 70<<10) + `"}`
		const invalid, notFound, conflict = http.StatusUnprocessableEntity, http.StatusNotFound, http.StatusConflict
		for _, tc := range []struct {
			name   string
			r      req
			status int
			code   string
		}{
			{"a body over 64 KiB", req{method: "PATCH", path: messagePath(g, m.Seq), body: huge}, http.StatusRequestEntityTooLarge, chat.CodeTooLarge},
			{"a body over 4000 characters", req{method: "PATCH", path: messagePath(g, m.Seq), body: map[string]any{"body": strings.Repeat("é", 4001)}}, invalid, chat.CodeInvalid},
			{"an empty body", req{method: "PATCH", path: messagePath(g, m.Seq), body: map[string]any{"body": ""}}, invalid, chat.CodeInvalid},
			{"a blank body", req{method: "PATCH", path: messagePath(g, m.Seq), body: map[string]any{"body": "  \n "}}, invalid, chat.CodeInvalid},
			{"a body of the wrong type", req{method: "PATCH", path: messagePath(g, m.Seq), body: `{"body":5}`}, invalid, chat.CodeInvalid},
			{"no body at all", req{method: "PATCH", path: messagePath(g, m.Seq)}, invalid, chat.CodeInvalid},
			{"an edit after the window", req{method: "PATCH", path: messagePath(g, m.Seq), body: map[string]any{"body": "late"}}, http.StatusForbidden, chat.CodeEditWindow},
			{"an unknown seq (edit)", req{method: "PATCH", path: messagePath(g, 999), body: map[string]any{"body": "x"}}, notFound, chat.CodeNotFound},
			{"an unknown seq (delete)", req{method: "DELETE", path: messagePath(g, 999)}, notFound, chat.CodeNotFound},
			{"an unknown seq (reaction)", req{method: "PUT", path: reactionPath(g, 999, "👍")}, notFound, chat.CodeNotFound},
			{"seq 0", req{method: "DELETE", path: messagePath(g, 0)}, invalid, chat.CodeInvalid},
			{"a negative seq", req{method: "DELETE", path: messagePath(g, -1)}, invalid, chat.CodeInvalid},
			{"a seq that is not a number", req{method: "DELETE", path: chatPath(g, "/messages/abc")}, invalid, chat.CodeInvalid},
			{"a seq overflowing", req{method: "DELETE", path: chatPath(g, "/messages/99999999999999999999")}, invalid, chat.CodeInvalid},
			{"an unknown chat", req{method: "DELETE", path: messagePath(99999999, 1)}, notFound, chat.CodeNotFound},
			{"the system message (edit)", req{method: "PATCH", path: messagePath(g, 1), body: map[string]any{"body": "x"}}, conflict, chat.CodeSystemMessage},
			{"the system message (delete)", req{method: "DELETE", path: messagePath(g, 1)}, conflict, chat.CodeSystemMessage},
			{"the system message (reaction)", req{method: "PUT", path: reactionPath(g, 1, "👍")}, conflict, chat.CodeSystemMessage},
			{"a reaction to a deleted message", req{method: "PUT", path: reactionPath(g, gone.Seq, "👍")}, conflict, chat.CodeMessageDeleted},
			{"text as an emoji", req{method: "PUT", path: reactionPath(g, m.Seq, "ok")}, invalid, chat.CodeInvalid},
			{"two emoji", req{method: "PUT", path: reactionPath(g, m.Seq, "👍👍")}, invalid, chat.CodeInvalid},
			{"a lone skin tone", req{method: "PUT", path: reactionPath(g, m.Seq, "🏽")}, invalid, chat.CodeInvalid},
			{"markup as an emoji", req{method: "PUT", path: reactionPath(g, m.Seq, "<b>")}, invalid, chat.CodeInvalid},
			{"a long emoji", req{method: "PUT", path: reactionPath(g, m.Seq, strings.Repeat("👍", 40))}, invalid, chat.CodeInvalid},
			{"invalid UTF-8", req{method: "PUT", path: messagePath(g, m.Seq) + "/reactions/%FF"}, invalid, chat.CodeInvalid},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.r.token = a.Token
				e.do(t, tc.r).want(t, tc.status, tc.code)
			})
		}
		// At most 20 different emoji on a message.
		emojis := []rune("😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙😚🙂🤗")
		for _, em := range emojis {
			e.do(t, req{method: "PUT", path: reactionPath(g, m.Seq, string(em)), token: b.Token}).want(t, http.StatusOK, "")
		}
		e.do(t, req{method: "PUT", path: reactionPath(g, m.Seq, "🙈"), token: b.Token}).want(t, conflict, chat.CodeTooManyReactions)
	})
}

// TestReplies: POST .../messages with reply_to_seq answers a message of the chat; the answer
// and history carry reply_to; a seq the chat does not have is a 422 naming the field.
func TestReplies(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		a, b := e.newUser(t, "Ann"), e.newUser(t, "Ben")
		g := e.group(t, a, "Team", false, b)
		q := e.send(t, a, g, "question?")
		r := e.do(t, req{method: "POST", path: chatPath(g, "/messages"), token: b.Token,
			body: map[string]any{"body": "answer", "client_id": "r1", "reply_to_seq": q.Seq}})
		r.want(t, http.StatusCreated, "")
		m := decode[wireChangedMessage](t, r)
		if m.ReplyTo == nil || m.ReplyTo.Seq != q.Seq || m.ReplyTo.BodyPreview != "question?" || m.ReplyTo.Deleted ||
			m.ReplyTo.SenderID == nil || *m.ReplyTo.SenderID != a.ID {
			t.Errorf("reply: %s", r.body)
		}
		e.do(t, req{method: "POST", path: chatPath(g, "/messages"), token: b.Token,
			body: map[string]any{"body": "x", "client_id": "r2", "reply_to_seq": 999}}).wantField(t, "body.reply_to_seq")
		e.do(t, req{method: "POST", path: chatPath(g, "/messages"), token: b.Token,
			body: map[string]any{"body": "x", "client_id": "r3", "reply_to_seq": -1}}).want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)
		e.do(t, req{method: "DELETE", path: messagePath(g, q.Seq), token: a.Token}).want(t, http.StatusNoContent, "")
		h := decode[struct {
			Messages []wireChangedMessage `json:"messages"`
		}](t, e.do(t, req{method: "GET", path: chatPath(g, "/messages"), token: b.Token}))
		last := h.Messages[len(h.Messages)-1]
		if last.ReplyTo == nil || !last.ReplyTo.Deleted || last.ReplyTo.BodyPreview != "" {
			t.Errorf("a reply to a deleted message: %+v", last.ReplyTo)
		}
	})
}
