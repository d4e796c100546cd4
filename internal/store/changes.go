package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// Message changes (chat.ChangeStore). Each change locks the chat's row first, like a send
// (send_messages and sendsqlite.go take the same lock), then takes the chat's next rev: two
// changes, or a change and a send, to one chat on any instance are stored one after another,
// and revs follow commit order with no gap.

var _ chat.ChangeStore = (*Store)(nil)

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// target is the message a change is about, read under the chat's lock.
type target struct {
	kind     string
	sender   sql.NullInt64
	body     string
	created  int64
	deleted  bool
	readOnly bool
}

// lockTarget locks the chat, checks that userID is a member (chat.ErrNotMember) and reads the
// message at seq (chat.ErrNoMessage) and the actor's role.
func (s *Store) lockTarget(ctx context.Context, tx *sql.Tx, chatID, seq, userID int64) (lockedChat, string, target, error) {
	var m target
	c, err := s.lockChat(ctx, tx, chatID)
	if err != nil {
		return c, "", m, err
	}
	role, err := roleOf(ctx, tx, chatID, userID)
	if err != nil {
		return c, "", m, err
	}
	err = tx.QueryRowContext(ctx, `SELECT m.kind, m.sender_id, m.body, m.created_at, m.deleted_at IS NOT NULL, c.read_only
		FROM messages m JOIN chats c ON c.id = m.chat_id WHERE m.chat_id = $1 AND m.seq = $2`, chatID, seq).
		Scan(&m.kind, &m.sender, &m.body, &m.created, &m.deleted, &m.readOnly)
	if errors.Is(err, sql.ErrNoRows) {
		return c, role, m, chat.ErrNoMessage
	}
	return c, role, m, err
}

// nextRev takes the chat's next change number; the chat's row is locked.
func nextRev(ctx context.Context, tx *sql.Tx, chatID int64) (int64, error) {
	var rev int64
	err := tx.QueryRowContext(ctx, `UPDATE chats SET last_rev = last_rev + 1 WHERE id = $1 RETURNING last_rev`, chatID).Scan(&rev)
	return rev, err
}

// EditMessage implements chat.ChangeStore.
func (s *Store) EditMessage(ctx context.Context, e chat.MessageEdit) (chat.Changed, error) {
	var out chat.Changed
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = chat.Changed{}
		c, _, m, err := s.lockTarget(ctx, tx, e.ChatID, e.Seq, e.UserID)
		switch {
		case err != nil:
			return err
		case m.readOnly:
			return chat.ErrNotMember
		case m.kind == chat.MessageSystem:
			return chat.ErrSystemMessage
		case m.deleted:
			return chat.ErrMessageDeleted
		case !m.sender.Valid || m.sender.Int64 != e.UserID:
			return chat.ErrNotAuthor
		case m.body != e.Body && e.Window > 0 && ms(e.Now)-m.created > e.Window.Milliseconds():
			// The same body changes nothing, so it is no edit, whenever it comes (a retry of an
			// edit whose answer was lost, arriving after the window closed).
			return chat.ErrEditWindow
		}
		if m.body != e.Body {
			rev, err := nextRev(ctx, tx, e.ChatID)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE messages SET body = $1, edited_at = $2, rev = $3 WHERE chat_id = $4 AND seq = $5`,
				e.Body, ms(e.Now), rev, e.ChatID, e.Seq); err != nil {
				return err
			}
			if err := s.reindexMessage(ctx, tx, e.ChatID, e.Seq); err != nil {
				return err
			}
			out.Changed, out.At = true, c.lastSeq
		}
		out.Message, err = messageAt(ctx, tx, e.ChatID, e.Seq)
		return err
	})
	return out, err
}

// DeleteMessage implements chat.ChangeStore.
func (s *Store) DeleteMessage(ctx context.Context, chatID, seq, actorID int64, now time.Time) (chat.Changed, error) {
	var out chat.Changed
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = chat.Changed{}
		c, role, m, err := s.lockTarget(ctx, tx, chatID, seq, actorID)
		switch {
		case err != nil:
			return err
		case m.kind == chat.MessageSystem:
			return chat.ErrSystemMessage
		case (!m.sender.Valid || m.sender.Int64 != actorID) && !(c.kind == chat.KindGroup && isAdmin(role)):
			return chat.ErrNotAuthor
		}
		if !m.deleted {
			rev, err := nextRev(ctx, tx, chatID)
			if err != nil {
				return err
			}
			// Erased, not hidden: the body, the edit and the reply go, and the reactions; its
			// files are nobody's any more (message_id NULL, attached_at set), so that no one
			// may download them and the janitor deletes them with their blobs.
			if _, err := tx.ExecContext(ctx, `DELETE FROM reactions WHERE chat_id = $1 AND seq = $2`, chatID, seq); err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, `UPDATE files SET message_id = NULL
				WHERE message_id = (SELECT id FROM messages WHERE chat_id = $1 AND seq = $2)`, chatID, seq)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			out.Detached = int(n)
			if _, err := tx.ExecContext(ctx, `UPDATE messages SET body = '', edited_at = NULL, reply_to_seq = NULL, file_count = 0,
				mentions = NULL, mention_all = FALSE, deleted_at = $1, rev = $2 WHERE chat_id = $3 AND seq = $4`, ms(now), rev, chatID, seq); err != nil {
				return err
			}
			// Its mentions go with its body: nobody has an unread mention of it any more.
			if _, err := tx.ExecContext(ctx, `DELETE FROM mentions WHERE chat_id = $1 AND seq = $2`, chatID, seq); err != nil {
				return err
			}
			if err := s.reindexMessage(ctx, tx, chatID, seq); err != nil {
				return err
			}
			out.Changed, out.At = true, c.lastSeq
		}
		out.Message, err = messageAt(ctx, tx, chatID, seq)
		return err
	})
	return out, err
}

// React implements chat.ChangeStore.
func (s *Store) React(ctx context.Context, r chat.ReactionChange) (chat.Reacted, error) {
	var out chat.Reacted
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = chat.Reacted{}
		c, _, m, err := s.lockTarget(ctx, tx, r.ChatID, r.Seq, r.UserID)
		switch {
		case err != nil:
			return err
		case m.readOnly:
			return chat.ErrNotMember
		case m.kind == chat.MessageSystem:
			return chat.ErrSystemMessage
		case m.deleted:
			return chat.ErrMessageDeleted
		}
		var distinct, count, mine int
		if err := tx.QueryRowContext(ctx, `SELECT count(DISTINCT emoji),
			COALESCE(SUM(CASE WHEN emoji = $3 THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN emoji = $3 AND user_id = $4 THEN 1 ELSE 0 END), 0)
			FROM reactions WHERE chat_id = $1 AND seq = $2`, r.ChatID, r.Seq, r.Emoji, r.UserID).Scan(&distinct, &count, &mine); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT rev FROM messages WHERE chat_id = $1 AND seq = $2`, r.ChatID, r.Seq).Scan(&out.Rev); err != nil {
			return err
		}
		out.Count = count
		switch {
		case r.Add && mine > 0, !r.Add && mine == 0:
			return nil // what is asked for is already so
		case r.Add && count == 0 && distinct >= chat.MaxReactions:
			return chat.ErrTooManyReaction
		case r.Add:
			_, err = tx.ExecContext(ctx, `INSERT INTO reactions (chat_id, seq, emoji, user_id, created_at) VALUES ($1, $2, $3, $4, $5)`,
				r.ChatID, r.Seq, r.Emoji, r.UserID, ms(r.Now))
			out.Count++
		default:
			_, err = tx.ExecContext(ctx, `DELETE FROM reactions WHERE chat_id = $1 AND seq = $2 AND emoji = $3 AND user_id = $4`,
				r.ChatID, r.Seq, r.Emoji, r.UserID)
			out.Count--
		}
		if err != nil {
			return err
		}
		if out.Rev, err = nextRev(ctx, tx, r.ChatID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET rev = $1 WHERE chat_id = $2 AND seq = $3`, out.Rev, r.ChatID, r.Seq); err != nil {
			return err
		}
		out.Changed, out.At = true, c.lastSeq
		return nil
	})
	return out, err
}

// ChatHeads implements chat.ChangeStore, reading the chats in batches of ids.
func (s *Store) ChatHeads(ctx context.Context, ids []int64) (map[int64]chat.ChatHead, error) {
	heads := make(map[int64]chat.ChatHead, len(ids))
	const batch = 500
	for start := 0; start < len(ids); start += batch {
		in, args := idList(ids[start:min(start+batch, len(ids))])
		rows, err := s.db.QueryContext(ctx, `SELECT id, last_seq, last_rev, read_all_seq FROM chats WHERE id IN (`+in+`)`, args...)
		if err != nil {
			return nil, wrap(err)
		}
		for rows.Next() {
			var id int64
			var h chat.ChatHead
			if err := rows.Scan(&id, &h.Seq, &h.Rev, &h.ReadAll); err != nil {
				rows.Close()
				return nil, wrap(err)
			}
			heads[id] = h
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, wrap(err)
		}
	}
	return heads, nil
}

// Changes implements chat.ChangeStore. The chat's last seq is read by the same statement as
// the changes, so it is as of the same moment: every change read was made at or before it.
func (s *Store) Changes(ctx context.Context, chatID, afterRev int64, limit int) (chat.ChangePage, error) {
	var page chat.ChangePage
	rows, err := s.db.QueryContext(ctx, `SELECT `+messageColumns+`, (SELECT c.last_seq FROM chats c WHERE c.id = $1) FROM messages
		WHERE chat_id = $1 AND rev > $2 AND rev > 0 ORDER BY rev LIMIT $3`, chatID, afterRev, limit+1)
	if err != nil {
		return page, wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n nullMessage
		if err := rows.Scan(append(n.dest(), &page.LastSeq)...); err != nil {
			return page, wrap(err)
		}
		page.Messages = append(page.Messages, *n.message())
	}
	if err := rows.Err(); err != nil {
		return page, wrap(err)
	}
	rows.Close()
	if page.More = len(page.Messages) > limit; page.More {
		page.Messages = page.Messages[:limit]
	}
	if err := fillMessages(ctx, s.db, chatID, page.Messages); err != nil {
		return page, wrap(err)
	}
	return page, wrap(loadFiles(ctx, s.db, page.Messages))
}

// Message implements chat.ChangeStore.
func (s *Store) Message(ctx context.Context, chatID, seq int64) (chat.Message, error) {
	m, err := messageAt(ctx, s.db, chatID, seq)
	return m, wrap(err)
}

// messageAt reads one message, filled (messagesAt); chat.ErrNotFound if the chat has no such seq.
func messageAt(ctx context.Context, q querier, chatID, seq int64) (chat.Message, error) {
	msgs, err := messagesAt(ctx, q, chatID, []int64{seq})
	if err != nil {
		return chat.Message{}, err
	}
	if len(msgs) == 0 {
		return chat.Message{}, chat.ErrNotFound
	}
	return msgs[0], nil
}

// messagesAt reads the messages of a chat at seqs (those it has) in seq order, filled as
// history has them: reactions, reply quotes and files; one query each, whatever the number.
func messagesAt(ctx context.Context, q querier, chatID int64, seqs []int64) ([]chat.Message, error) {
	in := &query{}
	in.WriteString(`SELECT ` + messageColumns + ` FROM messages WHERE chat_id = ` + in.arg(chatID) + ` AND seq IN (`)
	in.list(seqs)
	in.WriteString(`) ORDER BY seq`)
	rows, err := q.QueryContext(ctx, in.String(), in.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var msgs []chat.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := fillMessages(ctx, q, chatID, msgs); err != nil {
		return nil, err
	}
	return msgs, loadFiles(ctx, q, msgs)
}

// fillMessages adds to messages of one chat their reactions and the quotes of the messages
// they answer, with at most one query each. Only a message that changed (rev > 0) can have
// reactions, so a page of messages that never changed costs no query.
func fillMessages(ctx context.Context, q querier, chatID int64, msgs []chat.Message) error {
	var reacted, replies []int64
	for _, m := range msgs {
		if m.Rev > 0 && m.DeletedAt == nil {
			reacted = append(reacted, m.Seq)
		}
		if m.ReplyToSeq > 0 && m.DeletedAt == nil {
			replies = append(replies, m.ReplyToSeq)
		}
	}
	if len(reacted) > 0 {
		if err := fillReactions(ctx, q, chatID, reacted, msgs); err != nil {
			return err
		}
	}
	if len(replies) > 0 {
		return fillReplies(ctx, q, chatID, replies, msgs)
	}
	return nil
}

func fillReactions(ctx context.Context, q querier, chatID int64, seqs []int64, msgs []chat.Message) error {
	in := &query{}
	in.WriteString(`SELECT seq, emoji, user_id FROM reactions WHERE chat_id = ` + in.arg(chatID) + ` AND seq IN (`)
	in.list(seqs)
	in.WriteString(`) ORDER BY seq, created_at, user_id`)
	rows, err := q.QueryContext(ctx, in.String(), in.args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	bySeq := map[int64][]chat.Reaction{}
	for rows.Next() {
		var seq, user int64
		var emoji string
		if err := rows.Scan(&seq, &emoji, &user); err != nil {
			return err
		}
		rs := bySeq[seq]
		k := 0
		for k < len(rs) && rs[k].Emoji != emoji {
			k++
		}
		if k == len(rs) { // first use of the emoji: reactions are listed in that order
			rs = append(rs, chat.Reaction{Emoji: emoji, UserIDs: []int64{}})
		}
		rs[k].Count++
		if len(rs[k].UserIDs) < chat.MaxReactionUsers {
			rs[k].UserIDs = append(rs[k].UserIDs, user)
		}
		bySeq[seq] = rs
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for i := range msgs {
		if rs, ok := bySeq[msgs[i].Seq]; ok {
			msgs[i].Reactions = rs
		}
	}
	return nil
}

func fillReplies(ctx context.Context, q querier, chatID int64, seqs []int64, msgs []chat.Message) error {
	in := &query{}
	in.WriteString(`SELECT seq, sender_id, body, deleted_at IS NOT NULL FROM messages WHERE chat_id = ` + in.arg(chatID) + ` AND seq IN (`)
	in.list(seqs)
	in.WriteString(`)`)
	rows, err := q.QueryContext(ctx, in.String(), in.args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	refs := map[int64]*chat.ReplyRef{}
	for rows.Next() {
		var r chat.ReplyRef
		var sender sql.NullInt64
		if err := rows.Scan(&r.Seq, &sender, &r.BodyPreview, &r.Deleted); err != nil {
			return err
		}
		if sender.Valid {
			r.SenderID = &sender.Int64
		}
		r.BodyPreview = preview(r.BodyPreview)
		refs[r.Seq] = &r
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for i := range msgs {
		if r := refs[msgs[i].ReplyToSeq]; r != nil && msgs[i].DeletedAt == nil {
			msgs[i].ReplyTo = r
		}
	}
	return nil
}

// preview is the first chat.ReplyPreviewChars characters of a body.
func preview(body string) string {
	n := 0
	for i := range body {
		if n == chat.ReplyPreviewChars {
			return body[:i]
		}
		n++
	}
	return body
}
