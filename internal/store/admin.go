package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// Running a group (chat.AdminStore). Each change locks the chat's row first, then reads the
// roles it depends on: two admins acting at once on any instance see each other's changes,
// and a role is checked as it is when the change commits.

// roleOf reads a member's role; chat.ErrNotMember when the user is not a member.
func roleOf(ctx context.Context, tx *sql.Tx, chatID, userID int64) (string, error) {
	var role string
	err := tx.QueryRowContext(ctx, `SELECT role FROM members WHERE chat_id = $1 AND user_id = $2`, chatID, userID).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", chat.ErrNotMember
	}
	return role, err
}

// lockGroup locks a group and reads the actor's role in it.
func (s *Store) lockGroup(ctx context.Context, tx *sql.Tx, chatID, actorID int64) (lockedChat, string, error) {
	c, err := s.lockChat(ctx, tx, chatID)
	if err != nil {
		return c, "", err
	}
	if c.kind == chat.KindPrivate {
		return c, "", chat.ErrPrivateChat
	}
	role, err := roleOf(ctx, tx, chatID, actorID)
	return c, role, err
}

func isAdmin(role string) bool { return role == chat.RoleOwner || role == chat.RoleAdmin }

// systemMessage stores a system message with the seq after seq.
func systemMessage(ctx context.Context, tx *sql.Tx, chatID int64, seq *int64, now time.Time, ev chat.SystemEvent) (chat.Message, error) {
	*seq++
	return insertMessage(ctx, tx, chat.Message{ChatID: chatID, Seq: *seq, Kind: chat.MessageSystem, CreatedAt: chat.Time{Time: now}, Event: &ev})
}

// UpdateChat implements chat.AdminStore.
func (s *Store) UpdateChat(ctx context.Context, u chat.ChatUpdate) ([]chat.Message, error) {
	var out []chat.Message
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = nil
		c, role, err := s.lockGroup(ctx, tx, u.ChatID, u.ActorID)
		if err != nil {
			return err
		}
		if !isAdmin(role) {
			return chat.ErrNotAdmin
		}
		var title, desc string
		var public bool
		if err := tx.QueryRowContext(ctx, `SELECT title, public, description FROM chats WHERE id = $1`, u.ChatID).Scan(&title, &public, &desc); err != nil {
			return err
		}
		seq := c.lastSeq
		ev := chat.SystemEvent{UserID: u.ActorID, ActorID: u.ActorID}
		add := func(typ string, set func(*chat.SystemEvent)) error {
			e := ev
			e.Type = typ
			set(&e)
			m, err := systemMessage(ctx, tx, u.ChatID, &seq, u.Now, e)
			out = append(out, m)
			return err
		}
		if u.Title != nil && *u.Title != title {
			if _, err := tx.ExecContext(ctx, `UPDATE chats SET title = $1, title_fold = $2 WHERE id = $3`,
				*u.Title, strings.ToLower(*u.Title), u.ChatID); err != nil {
				return err
			}
			if err := add(chat.SysChatRenamed, func(e *chat.SystemEvent) { e.Title = *u.Title }); err != nil {
				return err
			}
		}
		if u.Public != nil && *u.Public != public {
			if _, err := tx.ExecContext(ctx, `UPDATE chats SET public = $1 WHERE id = $2`, *u.Public, u.ChatID); err != nil {
				return err
			}
			v := *u.Public
			if err := add(chat.SysVisibilityChanged, func(e *chat.SystemEvent) { e.Public = &v }); err != nil {
				return err
			}
		}
		if u.Description != nil && *u.Description != desc {
			if _, err := tx.ExecContext(ctx, `UPDATE chats SET description = $1 WHERE id = $2`, *u.Description, u.ChatID); err != nil {
				return err
			}
			if err := add(chat.SysDescriptionChanged, func(*chat.SystemEvent) {}); err != nil {
				return err
			}
		}
		if u.MentionAllAdmins != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE chats SET mention_all_admins = $1 WHERE id = $2`, *u.MentionAllAdmins, u.ChatID); err != nil {
				return err
			}
		}
		if len(out) == 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE chats SET last_seq = $1, activity_at = $2 WHERE id = $3`, seq, ms(u.Now), u.ChatID)
		return err
	})
	return out, err
}

// RemoveFromChat implements chat.AdminStore.
func (s *Store) RemoveFromChat(ctx context.Context, r chat.Removal) (chat.Removed, error) {
	var out chat.Removed
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.removeTx(ctx, tx, r)
		return err
	})
	return out, err
}

// RemoveMember implements chat.Store: the user's own leave.
func (s *Store) RemoveMember(ctx context.Context, chatID, userID int64, now time.Time) (chat.Message, chat.ReadAll, error) {
	r, err := s.RemoveFromChat(ctx, chat.Removal{ChatID: chatID, UserID: userID, ActorID: userID, Now: now})
	return r.Message, r.ReadAll, err
}

// removeTx is RemoveFromChat in tx.
func (s *Store) removeTx(ctx context.Context, tx *sql.Tx, r chat.Removal) (chat.Removed, error) {
	out := chat.Removed{ChatID: r.ChatID}
	c, err := s.lockChat(ctx, tx, r.ChatID)
	if err != nil {
		return out, err
	}
	if c.kind == chat.KindPrivate {
		return out, chat.ErrPrivateChat
	}
	event := chat.SysMemberLeft
	var target string
	if r.ActorID == r.UserID {
		if target, err = roleOf(ctx, tx, r.ChatID, r.UserID); err != nil {
			return out, err
		}
	} else {
		event = chat.SysMemberRemoved
		actor, err := roleOf(ctx, tx, r.ChatID, r.ActorID)
		if err != nil {
			return out, err
		}
		if !isAdmin(actor) {
			return out, chat.ErrNotAdmin
		}
		target, err = roleOf(ctx, tx, r.ChatID, r.UserID)
		switch {
		case errors.Is(err, chat.ErrNotMember):
			return out, chat.ErrNoMember
		case err != nil:
			return out, err
		case target == chat.RoleOwner:
			return out, chat.ErrIsOwner
		case target == chat.RoleAdmin && actor != chat.RoleOwner:
			return out, chat.ErrNotOwner
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM members WHERE chat_id = $1 AND user_id = $2`, r.ChatID, r.UserID); err != nil {
		return out, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE users SET chat_count = chat_count - 1 WHERE id = $1`, r.UserID); err != nil {
		return out, err
	}
	seq := c.lastSeq
	if out.Message, err = systemMessage(ctx, tx, r.ChatID, &seq, r.Now,
		chat.SystemEvent{Type: event, UserID: r.UserID, ActorID: r.ActorID}); err != nil {
		return out, err
	}
	if target == chat.RoleOwner && c.members > 1 {
		// The group is handed on: to the admin who joined first, else to the member who did.
		var next int64
		if err := tx.QueryRowContext(ctx, `SELECT user_id FROM members WHERE chat_id = $1
			ORDER BY CASE role WHEN 'admin' THEN 0 ELSE 1 END, joined_at, user_id LIMIT 1`, r.ChatID).Scan(&next); err != nil {
			return out, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE members SET role = 'owner' WHERE chat_id = $1 AND user_id = $2`, r.ChatID, next); err != nil {
			return out, err
		}
		m, err := systemMessage(ctx, tx, r.ChatID, &seq, r.Now, chat.SystemEvent{Type: chat.SysOwnerTransferred, UserID: next, ActorID: r.UserID})
		if err != nil {
			return out, err
		}
		out.Successor = &m
	}
	if _, err := tx.ExecContext(ctx, `UPDATE chats SET last_seq = $1, activity_at = $2, member_count = member_count - 1 WHERE id = $3`,
		seq, ms(r.Now), r.ChatID); err != nil {
		return out, err
	}
	out.ReadAll, err = raiseReadAll(ctx, tx, r.ChatID, c.readAllSeq, seq)
	return out, err
}

// SetRole implements chat.AdminStore.
func (s *Store) SetRole(ctx context.Context, r chat.RoleChange) (chat.Message, bool, error) {
	var msg chat.Message
	var changed bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		msg, changed = chat.Message{}, false
		c, actor, err := s.lockGroup(ctx, tx, r.ChatID, r.ActorID)
		if err != nil {
			return err
		}
		if !isAdmin(actor) {
			return chat.ErrNotAdmin
		}
		target, err := roleOf(ctx, tx, r.ChatID, r.UserID)
		switch {
		case errors.Is(err, chat.ErrNotMember):
			return chat.ErrNoMember
		case err != nil:
			return err
		case target == chat.RoleOwner:
			return chat.ErrIsOwner
		case target == r.Role:
			return nil
		case r.Role == chat.RoleMember && actor != chat.RoleOwner && r.UserID != r.ActorID:
			return chat.ErrNotOwner // an admin demotes only themselves
		}
		if _, err := tx.ExecContext(ctx, `UPDATE members SET role = $1 WHERE chat_id = $2 AND user_id = $3`, r.Role, r.ChatID, r.UserID); err != nil {
			return err
		}
		seq := c.lastSeq
		if msg, err = systemMessage(ctx, tx, r.ChatID, &seq, r.Now,
			chat.SystemEvent{Type: chat.SysRoleChanged, UserID: r.UserID, ActorID: r.ActorID, Role: r.Role}); err != nil {
			return err
		}
		changed = true
		_, err = tx.ExecContext(ctx, `UPDATE chats SET last_seq = $1, activity_at = $2 WHERE id = $3`, seq, ms(r.Now), r.ChatID)
		return err
	})
	return msg, changed, err
}

// TransferOwner implements chat.AdminStore.
func (s *Store) TransferOwner(ctx context.Context, chatID, actorID, toID int64, now time.Time) (chat.Message, error) {
	var msg chat.Message
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		msg = chat.Message{}
		c, actor, err := s.lockGroup(ctx, tx, chatID, actorID)
		if err != nil {
			return err
		}
		if actor != chat.RoleOwner {
			return chat.ErrNotOwner
		}
		if _, err := roleOf(ctx, tx, chatID, toID); errors.Is(err, chat.ErrNotMember) {
			return chat.ErrNoMember
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE members SET role = CASE user_id WHEN $1 THEN 'owner' ELSE 'admin' END
			WHERE chat_id = $2 AND user_id IN ($1, $3)`, toID, chatID, actorID); err != nil {
			return err
		}
		seq := c.lastSeq
		if msg, err = systemMessage(ctx, tx, chatID, &seq, now,
			chat.SystemEvent{Type: chat.SysOwnerTransferred, UserID: toID, ActorID: actorID}); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE chats SET last_seq = $1, activity_at = $2 WHERE id = $3`, seq, ms(now), chatID)
		return err
	})
	return msg, err
}

// DeleteChat implements chat.AdminStore. The group's messages are deleted (their files, now
// of no message, go with the janitor's next pass), and its members; the row stays, with no
// title, private, read-only, its last seq that of the chat_deleted message.
func (s *Store) DeleteChat(ctx context.Context, chatID, actorID int64, now time.Time) (chat.DeletedChat, error) {
	var out chat.DeletedChat
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = chat.DeletedChat{}
		c, actor, err := s.lockGroup(ctx, tx, chatID, actorID)
		if err != nil {
			return err
		}
		if actor != chat.RoleOwner {
			return chat.ErrNotOwner
		}
		// The members' counts of chats, locked in id order like every membership change.
		rows, err := tx.QueryContext(ctx, `SELECT id FROM users WHERE id IN (SELECT user_id FROM members WHERE chat_id = $1)
			ORDER BY id`+s.dialect.forCount, chatID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			out.Members = append(out.Members, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, q := range []string{
			`UPDATE users SET chat_count = chat_count - 1 WHERE id IN (SELECT user_id FROM members WHERE chat_id = $1)`,
			`DELETE FROM members WHERE chat_id = $1`,
			`DELETE FROM messages WHERE chat_id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, chatID); err != nil {
				return err
			}
		}
		// Uploads not attached yet can be attached and downloaded only by members, of whom
		// there are none now: they are detached as a deleted message's files are, so that they
		// stop counting toward their uploaders' day at once and the janitor deletes them (they
		// counted for the hour an unattached upload is kept).
		if _, err := tx.ExecContext(ctx, `UPDATE files SET attached_at = $1 WHERE chat_id = $2 AND message_id IS NULL AND attached_at IS NULL`,
			ms(now), chatID); err != nil {
			return err
		}
		seq := c.lastSeq + 1
		if _, err := tx.ExecContext(ctx, `UPDATE chats SET deleted_at = $1, activity_at = $1, title = '', title_fold = '', description = '',
			public = FALSE, read_only = TRUE, member_count = 0, last_seq = $2, read_all_seq = $2 WHERE id = $3`, ms(now), seq, chatID); err != nil {
			return err
		}
		out.Message = chat.Message{ChatID: chatID, Seq: seq, Kind: chat.MessageSystem, CreatedAt: chat.MillisTime(ms(now)),
			Event: &chat.SystemEvent{Type: chat.SysChatDeleted, UserID: actorID, ActorID: actorID}}
		return nil
	})
	return out, err
}
