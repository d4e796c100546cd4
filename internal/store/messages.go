package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/wschat/chat/internal/chat"
)

const messageColumns = `id, chat_id, seq, kind, sender_id, body, client_id, created_at, event_type, event_user_id, event_actor_id, event_text,
	file_count, rev, edited_at, deleted_at, reply_to_seq, mentions, mention_all`

// messageColumnsLM are the message columns of the last message (alias lm) in summarySelect.
const messageColumnsLM = `lm.id, lm.chat_id, lm.seq, lm.kind, lm.sender_id, lm.body, lm.client_id, lm.created_at,
	lm.event_type, lm.event_user_id, lm.event_actor_id, lm.event_text, lm.file_count, lm.rev, lm.edited_at, lm.deleted_at, lm.reply_to_seq,
	lm.mentions, lm.mention_all`

// nullMessage scans a message that may be absent (a LEFT JOIN).
type nullMessage struct {
	id, chatID, seq, created        sql.NullInt64
	kind, body, clientID, eventType sql.NullString
	sender, eventUser, eventActor   sql.NullInt64
	eventText                       sql.NullString
	fileCount                       sql.NullInt64
	rev, edited, deleted, replyTo   sql.NullInt64
	mentions                        sql.NullString
	mentionAll                      sql.NullBool
}

func (n *nullMessage) dest() []any {
	return []any{&n.id, &n.chatID, &n.seq, &n.kind, &n.sender, &n.body, &n.clientID, &n.created, &n.eventType, &n.eventUser, &n.eventActor, &n.eventText,
		&n.fileCount, &n.rev, &n.edited, &n.deleted, &n.replyTo, &n.mentions, &n.mentionAll}
}

func (n *nullMessage) message() *chat.Message {
	if !n.id.Valid {
		return nil
	}
	m := &chat.Message{ID: n.id.Int64, ChatID: n.chatID.Int64, Seq: n.seq.Int64, Kind: n.kind.String, Body: n.body.String,
		CreatedAt: chat.MillisTime(n.created.Int64), FileCount: int(n.fileCount.Int64), Rev: n.rev.Int64, ReplyToSeq: n.replyTo.Int64,
		Mentions: parseMentions(n.mentions.String), MentionAll: n.mentionAll.Bool}
	if n.edited.Valid {
		t := chat.MillisTime(n.edited.Int64)
		m.EditedAt = &t
	}
	if n.deleted.Valid {
		t := chat.MillisTime(n.deleted.Int64)
		m.DeletedAt = &t
	}
	if n.sender.Valid {
		m.SenderID = &n.sender.Int64
	}
	if n.clientID.Valid {
		m.ClientID = &n.clientID.String
	}
	if n.eventType.Valid {
		m.Event = &chat.SystemEvent{Type: n.eventType.String, UserID: n.eventUser.Int64, ActorID: n.eventActor.Int64}
		setEventText(m.Event, n.eventText.String)
	}
	return m
}

// eventText is what a system event says beyond its type and users, as stored in event_text.
func eventText(e *chat.SystemEvent) sql.NullString {
	switch {
	case e.Title != "":
		return sql.NullString{String: e.Title, Valid: true}
	case e.Role != "":
		return sql.NullString{String: e.Role, Valid: true}
	case e.Public != nil:
		return sql.NullString{String: strconv.FormatBool(*e.Public), Valid: true}
	}
	return sql.NullString{}
}

// setEventText is the inverse of eventText, by the event's type.
func setEventText(e *chat.SystemEvent, text string) {
	switch e.Type {
	case chat.SysChatRenamed:
		e.Title = text
	case chat.SysRoleChanged:
		e.Role = text
	case chat.SysVisibilityChanged:
		public := text == "true"
		e.Public = &public
	}
}

func scanMessage(row interface{ Scan(...any) error }) (chat.Message, error) {
	var n nullMessage
	if err := row.Scan(n.dest()...); err != nil {
		return chat.Message{}, wrap(err)
	}
	return *n.message(), nil
}

// insertMessage stores m (its seq already taken) and returns it with its id.
func insertMessage(ctx context.Context, tx *sql.Tx, m chat.Message) (chat.Message, error) {
	var evType, evText, clientID sql.NullString
	var evUser, evActor, sender sql.NullInt64
	if m.Event != nil {
		evType = sql.NullString{String: m.Event.Type, Valid: true}
		evUser = sql.NullInt64{Int64: m.Event.UserID, Valid: true}
		evActor = sql.NullInt64{Int64: m.Event.ActorID, Valid: true}
		evText = eventText(m.Event)
	}
	if m.SenderID != nil {
		sender = sql.NullInt64{Int64: *m.SenderID, Valid: true}
	}
	if m.ClientID != nil {
		clientID = sql.NullString{String: *m.ClientID, Valid: true}
	}
	m.CreatedAt = chat.MillisTime(ms(m.CreatedAt.Time))
	err := tx.QueryRowContext(ctx, `INSERT INTO messages (chat_id, seq, kind, sender_id, body, client_id, created_at, event_type, event_user_id, event_actor_id, event_text)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
		m.ChatID, m.Seq, m.Kind, sender, m.Body, clientID, ms(m.CreatedAt.Time), evType, evUser, evActor, evText).Scan(&m.ID)
	return m, err
}

// History implements chat.Store.
func (s *Store) History(ctx context.Context, q chat.HistoryQuery) ([]chat.Message, bool, error) {
	var rows *sql.Rows
	var err error
	before := q.Before
	if before <= 0 {
		before = 1<<63 - 1
	}
	if q.HasAfter {
		rows, err = s.db.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages
			WHERE chat_id = $1 AND seq > $2 AND seq < $3 ORDER BY seq ASC LIMIT $4`, q.ChatID, q.After, before, q.Limit+1)
	} else {
		rows, err = s.db.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages
			WHERE chat_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, q.ChatID, before, q.Limit+1)
	}
	if err != nil {
		return nil, false, wrap(err)
	}
	defer rows.Close()
	msgs := make([]chat.Message, 0, q.Limit+1)
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, false, err
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, false, wrap(err)
	}
	more := len(msgs) > q.Limit
	if more {
		msgs = msgs[:q.Limit]
	}
	if !q.HasAfter {
		slices.Reverse(msgs)
	}
	if err := fillMessages(ctx, s.db, q.ChatID, msgs); err != nil {
		return nil, false, wrap(err)
	}
	if err := loadFiles(ctx, s.db, msgs); err != nil {
		return nil, false, err
	}
	return msgs, more, nil
}

// MarkRead implements chat.Store: progress only moves forward and is clamped to the last seq.
//
// Membership is checked first, with one plain read: a stranger's mark, and a mark that moves
// nothing (a client marking again what it already marked), take neither the chat's row lock
// (PostgreSQL) nor a write transaction (SQLite), which every send to the chat needs too.
// Non-members' marks once stretched a member's send latency sixfold.
func (s *Store) MarkRead(ctx context.Context, chatID, userID, seq int64) (chat.Read, error) {
	var lastSeq, readAll int64
	var member sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT c.last_seq, c.read_all_seq, m.last_read_seq
		FROM chats c LEFT JOIN members m ON m.chat_id = c.id AND m.user_id = $2 WHERE c.id = $1`, chatID, userID).Scan(&lastSeq, &readAll, &member)
	if err != nil {
		return chat.Read{}, wrap(err)
	}
	if !member.Valid {
		return chat.Read{}, chat.ErrNotMember
	}
	cur := member.Int64
	if min(seq, lastSeq) <= cur {
		r := chat.Read{State: chat.ReadState{ChatID: chatID, MyLastReadSeq: cur, ReadAllSeq: readAll}, ReadAll: chat.ReadAll{Seq: readAll}, LastSeq: lastSeq}
		err := s.db.QueryRowContext(ctx, unreadSQL, chatID, cur, userID).Scan(&r.State.UnreadCount, &r.State.UnreadMentions)
		return r, wrap(err)
	}
	var r chat.Read
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		r = chat.Read{}
		c, err := s.lockChat(ctx, tx, chatID)
		if err != nil {
			return err
		}
		var cur int64
		err = tx.QueryRowContext(ctx, `SELECT last_read_seq FROM members WHERE chat_id = $1 AND user_id = $2`, chatID, userID).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return chat.ErrNotMember
		}
		if err != nil {
			return err
		}
		target := min(seq, c.lastSeq)
		r.ReadAll, r.LastSeq = chat.ReadAll{Seq: c.readAllSeq}, c.lastSeq
		if target > cur {
			if _, err := tx.ExecContext(ctx, `UPDATE members SET last_read_seq = $1 WHERE chat_id = $2 AND user_id = $3`, target, chatID, userID); err != nil {
				return err
			}
			r.Changed = true
			if cur <= c.readAllSeq {
				if r.ReadAll, err = raiseReadAll(ctx, tx, chatID, c.readAllSeq, c.lastSeq); err != nil {
					return err
				}
			}
			cur = target
		}
		r.State = chat.ReadState{ChatID: chatID, MyLastReadSeq: cur, ReadAllSeq: r.ReadAll.Seq}
		return tx.QueryRowContext(ctx, unreadSQL, chatID, cur, userID).Scan(&r.State.UnreadCount, &r.State.UnreadMentions)
	})
	return r, err
}

// unreadSQL counts a member's ($3) unread messages in a chat ($1) above their read mark ($2),
// and those of them that mention the member.
var unreadSQL = `SELECT ` + unreadCount("$1", "$2", "$3") + `, ` + unreadMentions("$1", "$2", "$3")

// unreadCount counts the unread messages of a member (user) in a chat (chatID) above their
// read mark (after): text messages of others, not deleted. The arguments are SQL expressions
// (parameters, or columns of the query it is part of).
func unreadCount(chatID, after, user string) string {
	return `(SELECT count(*) FROM messages x WHERE x.chat_id = ` + chatID + ` AND x.seq > ` + after +
		` AND x.kind = 'text' AND x.sender_id <> ` + user + ` AND x.deleted_at IS NULL)`
}

// unreadMentions counts those of them that mention the member: their rows of mentions (the
// sender is never among them; a deleted message's rows are deleted with its body) and the
// chat's @all messages of others. Both are index ranges.
func unreadMentions(chatID, after, user string) string {
	return `((SELECT count(*) FROM mentions x WHERE x.user_id = ` + user + ` AND x.chat_id = ` + chatID + ` AND x.seq > ` + after + `)
	+ (SELECT count(*) FROM messages x WHERE x.chat_id = ` + chatID + ` AND x.mention_all AND x.seq > ` + after +
		` AND x.sender_id <> ` + user + ` AND x.deleted_at IS NULL))`
}

// parseMentions reads messages.mentions ("12,45"; "" none).
func parseMentions(s string) []int64 {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := make([]int64, 0, len(parts))
	for _, p := range parts {
		if id, err := strconv.ParseInt(p, 10, 64); err == nil {
			out = append(out, id)
		}
	}
	return out
}

// mentionList is messages.mentions for the ids: NULL for none.
func mentionList(ids []int64) sql.NullString {
	if len(ids) == 0 {
		return sql.NullString{}
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return sql.NullString{String: strings.Join(parts, ","), Valid: true}
}

// loadFiles sets the Files of the messages that carry some (FileCount > 0), in one query.
func loadFiles(ctx context.Context, db querier, msgs []chat.Message) error {
	at := map[int64][]int{} // a message may be there twice (a send and its repeat)
	q := &query{}
	for i, m := range msgs {
		if m.FileCount > 0 {
			if _, ok := at[m.ID]; !ok {
				if len(at) > 0 {
					q.WriteString(", ")
				}
				q.WriteString(q.arg(m.ID))
			}
			at[m.ID] = append(at[m.ID], i)
		}
	}
	if len(at) == 0 {
		return nil
	}
	rows, err := db.QueryContext(ctx, `SELECT `+fileColumns+` FROM files WHERE message_id IN (`+q.String()+`)
		ORDER BY message_id, position`, q.args...)
	if err != nil {
		return wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return err
		}
		for _, i := range at[f.MessageID] {
			msgs[i].Files = append(msgs[i].Files, f)
		}
	}
	return wrap(rows.Err())
}
