package store

import (
	"context"
	"database/sql"

	"github.com/wschat/chat/internal/chat"
)

// settingsOf is a member's settings as stored, with the chat's default for a notify never set.
func settingsOf(chatID int64, kind string, members int, notify sql.NullString, muted sql.NullInt64) chat.ChatSettings {
	st := chat.ChatSettings{ChatID: chatID, Notify: chat.DefaultNotify(kind, members)}
	if notify.Valid {
		st.Notify = notify.String
	}
	if muted.Valid {
		t := chat.MillisTime(muted.Int64)
		st.MutedUntil = &t
	}
	return st
}

// UpdateChatSettings implements chat.Store.
func (s *Store) UpdateChatSettings(ctx context.Context, c chat.SettingsChange) (chat.ChatSettings, error) {
	var notify sql.NullString
	if c.Notify != "" {
		notify = sql.NullString{String: c.Notify, Valid: true}
	}
	var muted sql.NullInt64
	if c.MutedUntil != nil {
		muted = sql.NullInt64{Int64: ms(*c.MutedUntil), Valid: true}
	}
	var st chat.ChatSettings
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE members SET notify = COALESCE($1, notify),
			muted_until = CASE WHEN $2 THEN $3 ELSE muted_until END
			WHERE chat_id = $4 AND user_id = $5`, notify, c.SetMuted, muted, c.ChatID, c.UserID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return chat.ErrNotMember
		}
		var kind string
		var members int
		var cur sql.NullString
		var until sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT c.kind, c.member_count, m.notify, m.muted_until FROM chats c
			JOIN members m ON m.chat_id = c.id AND m.user_id = $2 WHERE c.id = $1`, c.ChatID, c.UserID).Scan(&kind, &members, &cur, &until); err != nil {
			return err
		}
		st = settingsOf(c.ChatID, kind, members, cur, until)
		return nil
	})
	return st, err
}
