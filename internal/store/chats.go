package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// summarySelect reads chats as one viewer ($1) sees them, with the last message, the viewer's
// unread count and the peer of a private chat, in one query whatever the number of chats.
var summarySelect = `SELECT c.id, c.kind, c.title, c.public, c.description, c.read_only, c.created_at, c.activity_at, c.member_count,
	c.last_seq, c.last_rev, c.read_all_seq, m.user_id IS NOT NULL, COALESCE(m.last_read_seq, 0),
	CASE WHEN m.user_id IS NULL THEN 0 ELSE ` + unreadCount("c.id", "m.last_read_seq", "m.user_id") + ` END,
	CASE WHEN m.user_id IS NULL THEN 0 ELSE ` + unreadMentions("c.id", "m.last_read_seq", "m.user_id") + ` END,
	c.mention_all_admins,
	p.id, p.name, p.deleted_at IS NOT NULL, m.notify, m.muted_until,
	` + messageColumnsLM + `
FROM chats c
LEFT JOIN members m ON m.chat_id = c.id AND m.user_id = $1
LEFT JOIN members pm ON c.kind = 'private' AND pm.chat_id = c.id AND pm.user_id <> $1
LEFT JOIN users p ON p.id = pm.user_id
LEFT JOIN messages lm ON lm.chat_id = c.id AND lm.seq = c.last_seq AND c.last_seq > 0`

func scanSummary(row interface{ Scan(...any) error }) (chat.ChatSummary, error) {
	var c chat.ChatSummary
	var created, activity int64
	var peerID sql.NullInt64
	var peerName sql.NullString
	var peerDeleted sql.NullBool
	var notify sql.NullString
	var muted sql.NullInt64
	var lm nullMessage
	var allAdmins bool
	dest := []any{&c.ID, &c.Kind, &c.Title, &c.Public, &c.Description, &c.ReadOnly, &created, &activity, &c.MemberCount,
		&c.LastSeq, &c.LastRev, &c.ReadAllSeq, &c.IsMember, &c.MyLastReadSeq, &c.UnreadCount, &c.UnreadMentions, &allAdmins, &peerID, &peerName, &peerDeleted, &notify, &muted}
	if err := row.Scan(append(dest, lm.dest()...)...); err != nil {
		return c, wrap(err)
	}
	c.CreatedAt, c.Activity = chat.MillisTime(created), fromMS(activity)
	if peerID.Valid {
		c.Peer = &chat.Peer{ID: peerID.Int64, Name: peerName.String, Deleted: peerDeleted.Bool}
		c.Title = peerName.String
	}
	c.LastMessage = lm.message()
	if c.Kind == chat.KindGroup {
		c.MentionAll = chat.MentionAllEveryone
		if allAdmins {
			c.MentionAll = chat.MentionAllAdmins
		}
	}
	st := settingsOf(c.ID, c.Kind, c.MemberCount, notify, muted)
	c.Notify, c.MutedUntil = st.Notify, st.MutedUntil
	return c, nil
}

// ChatsOf implements chat.Store.
func (s *Store) ChatsOf(ctx context.Context, userID int64) ([]chat.ChatSummary, error) {
	rows, err := s.db.QueryContext(ctx, summarySelect+` WHERE m.user_id IS NOT NULL ORDER BY c.activity_at DESC, c.id DESC`, userID)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	out := []chat.ChatSummary{}
	for rows.Next() {
		c, err := scanSummary(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err)
	}
	rows.Close()
	if err := lastMessageFiles(ctx, s.db, out); err != nil {
		return nil, err
	}
	return out, nil
}

// ChatFor implements chat.Store.
func (s *Store) ChatFor(ctx context.Context, viewerID, chatID int64) (chat.ChatSummary, error) {
	c, err := scanSummary(s.db.QueryRowContext(ctx, summarySelect+` WHERE c.id = $2`, viewerID, chatID))
	if err != nil {
		return c, err
	}
	cs := []chat.ChatSummary{c}
	if err := lastMessageFiles(ctx, s.db, cs); err != nil {
		return c, err
	}
	return cs[0], nil
}

// lastMessageFiles sets the files of the chats' last messages.
func lastMessageFiles(ctx context.Context, db querier, cs []chat.ChatSummary) error {
	var msgs []chat.Message
	var of []int
	for i, c := range cs {
		if c.LastMessage != nil && c.LastMessage.FileCount > 0 {
			msgs = append(msgs, *c.LastMessage)
			of = append(of, i)
		}
	}
	if err := loadFiles(ctx, db, msgs); err != nil {
		return err
	}
	for k, i := range of {
		cs[i].LastMessage = &msgs[k]
	}
	return nil
}

// Members lists a chat's members in the order they joined.
func (s *Store) Members(ctx context.Context, chatID int64) ([]chat.Member, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT u.id, u.name, m.role, m.joined_at, m.last_read_seq, u.last_seen_at, u.deleted_at IS NOT NULL
		FROM members m JOIN users u ON u.id = m.user_id WHERE m.chat_id = $1 ORDER BY m.joined_at, u.id`, chatID)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	out := []chat.Member{}
	for rows.Next() {
		var m chat.Member
		var joined int64
		var seen sql.NullInt64
		if err := rows.Scan(&m.ID, &m.Name, &m.Role, &joined, &m.LastReadSeq, &seen, &m.Deleted); err != nil {
			return nil, wrap(err)
		}
		m.JoinedAt = chat.MillisTime(joined)
		if seen.Valid {
			t := chat.MillisTime(seen.Int64)
			m.LastSeenAt = &t
		}
		out = append(out, m)
	}
	return out, wrap(rows.Err())
}

// MemberIDs lists the ids of a chat's members.
func (s *Store) MemberIDs(ctx context.Context, chatID int64) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT user_id FROM members WHERE chat_id = $1 ORDER BY user_id`, chatID)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, wrap(err)
		}
		out = append(out, id)
	}
	return out, wrap(rows.Err())
}

// Discover finds public groups the user is not in whose title contains query.
func (s *Store) Discover(ctx context.Context, userID int64, query string, limit int) ([]chat.DiscoveredChat, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT c.id, c.title, c.member_count FROM chats c
		WHERE c.kind = 'group' AND c.public AND c.title_fold LIKE $2 ESCAPE '\'
		AND NOT EXISTS (SELECT 1 FROM members m WHERE m.chat_id = c.id AND m.user_id = $1)
		ORDER BY c.member_count DESC, c.id LIMIT $3`, userID, "%"+likePrefix(query), limit)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	out := []chat.DiscoveredChat{}
	for rows.Next() {
		var d chat.DiscoveredChat
		if err := rows.Scan(&d.ID, &d.Title, &d.MemberCount); err != nil {
			return nil, wrap(err)
		}
		out = append(out, d)
	}
	return out, wrap(rows.Err())
}

// CreateGroup implements chat.Store.
func (s *Store) CreateGroup(ctx context.Context, g chat.NewGroup) (int64, error) {
	var id int64
	now := ms(g.Now)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO chats (kind, title, title_fold, public, creator_id, created_at, activity_at, last_seq, read_all_seq, member_count)
			VALUES ('group', $1, $6, $2, $3, $4, $4, 1, 1, $5) RETURNING id`,
			g.Title, g.Public, g.CreatorID, now, len(g.MemberIDs)+1, strings.ToLower(g.Title)).Scan(&id)
		if err != nil {
			return err
		}
		if err := insertMembers(ctx, tx, id, g.CreatorID, g.MemberIDs, now); err != nil {
			return err
		}
		if err := s.joinChats(ctx, tx, append([]int64{g.CreatorID}, g.MemberIDs...)...); err != nil {
			return err
		}
		_, err = insertMessage(ctx, tx, chat.Message{ChatID: id, Seq: 1, Kind: chat.MessageSystem, CreatedAt: chat.Time{Time: g.Now},
			Event: &chat.SystemEvent{Type: chat.SysChatCreated, UserID: g.CreatorID, ActorID: g.CreatorID}})
		return err
	})
	return id, err
}

// insertMembers adds the owner and the members of a new group, in batches of rows.
func insertMembers(ctx context.Context, tx *sql.Tx, chatID, ownerID int64, memberIDs []int64, now int64) error {
	type row struct {
		user int64
		role string
	}
	all := append([]row{{ownerID, chat.RoleOwner}}, make([]row, 0, len(memberIDs))...)
	for _, id := range memberIDs {
		all = append(all, row{id, chat.RoleMember})
	}
	const batch = 500 // 5 parameters a row stay far below every driver's limit
	for start := 0; start < len(all); start += batch {
		part := all[start:min(start+batch, len(all))]
		var sb strings.Builder
		sb.WriteString(`INSERT INTO members (chat_id, user_id, role, joined_at, last_read_seq) VALUES `)
		args := make([]any, 0, 5*len(part))
		for i, r := range part {
			if i > 0 {
				sb.WriteString(", ")
			}
			n := len(args)
			fmt.Fprintf(&sb, "($%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5)
			args = append(args, chatID, r.user, r.role, now, 1)
		}
		if _, err := tx.ExecContext(ctx, sb.String(), args...); err != nil {
			if isForeignKey(err) {
				return chat.ErrUnknownUser
			}
			return err
		}
	}
	return nil
}

// CreatePrivate implements chat.Store.
func (s *Store) CreatePrivate(ctx context.Context, a, b int64, now time.Time) (int64, bool, error) {
	lo, hi := min(a, b), max(a, b)
	key := fmt.Sprintf("%d:%d", lo, hi)
	var id int64
	var created bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		id, created = 0, false
		err := tx.QueryRowContext(ctx, `SELECT id FROM chats WHERE pair_key = $1`, key).Scan(&id)
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO chats (kind, title, public, creator_id, pair_key, created_at, activity_at, member_count)
			VALUES ('private', '', FALSE, $1, $2, $3, $3, 2) ON CONFLICT (pair_key) WHERE pair_key IS NOT NULL DO NOTHING RETURNING id`,
			a, key, ms(now)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) { // created meanwhile by the other user
			return tx.QueryRowContext(ctx, `SELECT id FROM chats WHERE pair_key = $1`, key).Scan(&id)
		}
		if err != nil {
			return err
		}
		created = true
		_, err = tx.ExecContext(ctx, `INSERT INTO members (chat_id, user_id, role, joined_at, last_read_seq)
			VALUES ($1, $2, 'member', $4, 0), ($1, $3, 'member', $4, 0)`, id, lo, hi, ms(now))
		if isForeignKey(err) {
			return chat.ErrUnknownUser
		}
		if err != nil {
			return err
		}
		return s.joinChats(ctx, tx, lo, hi)
	})
	return id, created, err
}

// lockedChat is a chat row read under lock inside a write transaction.
type lockedChat struct {
	kind       string
	lastSeq    int64
	readAllSeq int64
	members    int
}

// lockChat locks a chat's row; a deleted group is chat.ErrNotFound. On PostgreSQL the lock is
// FOR NO KEY UPDATE, as send_messages takes it: every change of the chat waits for the others
// and for sends, but not for the foreign-key checks of rows being inserted that refer to the
// chat (an upload's file, a push job), which take a key-share lock on it outside the chat's
// lock. FOR UPDATE waited for those, and a removal waiting so met an upload's insert waiting
// for it in turn: PostgreSQL aborted one with "deadlock detected".
func (s *Store) lockChat(ctx context.Context, tx *sql.Tx, chatID int64) (lockedChat, error) {
	var c lockedChat
	var deleted bool
	err := tx.QueryRowContext(ctx, `SELECT kind, last_seq, read_all_seq, member_count, deleted_at IS NOT NULL FROM chats WHERE id = $1`+s.dialect.forCount, chatID).
		Scan(&c.kind, &c.lastSeq, &c.readAllSeq, &c.members, &deleted)
	if err == nil && deleted {
		return c, chat.ErrNotFound
	}
	return c, wrap(err)
}

// AddMember implements chat.Store.
func (s *Store) AddMember(ctx context.Context, chatID, userID, actorID int64, event string, now time.Time) (chat.Message, error) {
	var msg chat.Message
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		msg = chat.Message{}
		c, err := s.lockChat(ctx, tx, chatID)
		if err != nil {
			return err
		}
		if c.kind == chat.KindPrivate {
			return chat.ErrPrivateChat
		}
		if c.members >= s.maxMembers {
			return chat.ErrChatFull
		}
		if actorID != userID {
			if err := checkMember(ctx, tx, chatID, actorID); err != nil {
				return err
			}
		}
		if event == chat.SysMemberJoined {
			if err := checkPublic(ctx, tx, chatID); err != nil {
				return err
			}
		}
		seq := c.lastSeq + 1
		role := chat.RoleMember
		if c.members == 0 { // a group everyone had left: the newcomer owns it
			role = chat.RoleOwner
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO members (chat_id, user_id, role, joined_at, last_read_seq) VALUES ($1, $2, $3, $4, $5)`,
			chatID, userID, role, ms(now), seq)
		switch {
		case isUnique(err):
			return chat.ErrAlreadyMember
		case isForeignKey(err):
			return chat.ErrUnknownUser
		case err != nil:
			return err
		}
		if err := s.joinChats(ctx, tx, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE chats SET last_seq = $1, activity_at = $2, member_count = member_count + 1 WHERE id = $3`,
			seq, ms(now), chatID); err != nil {
			return err
		}
		if c.members == 0 { // a group everyone had left: the newcomer alone is the minimum
			if _, err := tx.ExecContext(ctx, `UPDATE chats SET read_all_seq = $1 WHERE id = $2`, seq, chatID); err != nil {
				return err
			}
		}
		msg, err = insertMessage(ctx, tx, chat.Message{ChatID: chatID, Seq: seq, Kind: chat.MessageSystem, CreatedAt: chat.Time{Time: now},
			Event: &chat.SystemEvent{Type: event, UserID: userID, ActorID: actorID}})
		return err
	})
	return msg, err
}

// joinChats counts one more chat for each of userIDs, who have just become members of one. It
// refuses with a *chat.TooManyChatsError when one of them already belongs to s.maxUserChats
// chats, and with chat.ErrUnknownUser when one does not exist. The users' rows are locked in id
// order, so that concurrent changes on any instance count exactly and never deadlock each
// other; on SQLite the write transaction holds the whole database anyway.
func (s *Store) joinChats(ctx context.Context, tx *sql.Tx, userIDs ...int64) error {
	ids := slices.Compact(slices.Sorted(slices.Values(userIDs)))
	const batch = 500
	for start := 0; start < len(ids); start += batch {
		part := ids[start:min(start+batch, len(ids))]
		in, args := idList(part)
		// A deleted account joins nothing: it counts as unknown.
		rows, err := tx.QueryContext(ctx, `SELECT id, chat_count FROM users WHERE id IN (`+in+`) AND deleted_at IS NULL ORDER BY id`+s.dialect.forCount, args...)
		if err != nil {
			return err
		}
		found, full := 0, int64(0)
		for rows.Next() {
			var id int64
			var n int
			if err := rows.Scan(&id, &n); err != nil {
				rows.Close()
				return err
			}
			found++
			if n >= s.maxUserChats && full == 0 {
				full = id
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		switch {
		case found < len(part):
			return chat.ErrUnknownUser
		case full != 0:
			return &chat.TooManyChatsError{UserID: full}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET chat_count = chat_count + 1 WHERE id IN (`+in+`)`, args...); err != nil {
			return err
		}
	}
	return nil
}

// idList is the placeholders "$1, $2, ..." for ids, with ids as arguments.
func idList(ids []int64) (string, []any) {
	var sb strings.Builder
	args := make([]any, len(ids))
	for i, id := range ids {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "$%d", i+1)
		args[i] = id
	}
	return sb.String(), args
}

// checkPublic is nil when the group is public, as a join needs; chat.ErrNotFound otherwise,
// what a non-member is told of a group they cannot see. It reads the chat's row under its lock:
// a group made private while someone's join was on its way is not joined.
func checkPublic(ctx context.Context, tx *sql.Tx, chatID int64) error {
	var public bool
	if err := tx.QueryRowContext(ctx, `SELECT public FROM chats WHERE id = $1`, chatID).Scan(&public); err != nil {
		return err
	}
	if !public {
		return chat.ErrNotFound
	}
	return nil
}

func checkMember(ctx context.Context, tx *sql.Tx, chatID, userID int64) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM members WHERE chat_id = $1 AND user_id = $2`, chatID, userID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return chat.ErrNotMember
	}
	return err
}

// raiseReadAll recomputes a chat's read_all_seq (the members' minimum last_read_seq; lastSeq
// when nobody is left) and stores it when it grew from old.
func raiseReadAll(ctx context.Context, tx *sql.Tx, chatID, old, lastSeq int64) (chat.ReadAll, error) {
	var minRead sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT min(last_read_seq) FROM members WHERE chat_id = $1`, chatID).Scan(&minRead); err != nil {
		return chat.ReadAll{}, err
	}
	v := lastSeq
	if minRead.Valid {
		v = minRead.Int64
	}
	if v <= old {
		return chat.ReadAll{Seq: old}, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE chats SET read_all_seq = $1 WHERE id = $2`, v, chatID); err != nil {
		return chat.ReadAll{}, err
	}
	return chat.ReadAll{Seq: v, Grown: true}, nil
}
