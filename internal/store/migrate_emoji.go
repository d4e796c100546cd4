package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pressly/goose/v3"

	"github.com/wschat/chat/internal/chat"
)

// emojiMigration is migration 00016, in Go because the rule it applies is chat.NormalizeEmoji
// (a table of the emoji drawn as text without U+FE0F): it respells every stored reaction so, and
// so merges the reactions that were one emoji typed two ways ("❤" and "❤️" on one message
// were two chips, counted apart). A user who had both keeps one, from the earlier time. Each
// message whose reactions changed takes the chat's next rev, so that devices syncing by rev
// get it anew. Down changes nothing: the old code reads the new spelling as any other emoji.
func emojiMigration() *goose.Migration {
	return goose.NewGoMigration(16, &goose.GoFunc{RunTx: normalizeReactions}, &goose.GoFunc{RunTx: func(context.Context, *sql.Tx) error { return nil }})
}

func normalizeReactions(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT emoji FROM reactions`)
	if err != nil {
		return fmt.Errorf("list emoji: %w", err)
	}
	respell := map[string]string{}
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			rows.Close()
			return err
		}
		if n, err := chat.NormalizeEmoji("emoji", e); err == nil && n != e {
			respell[e] = n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	type target struct{ chatID, seq int64 }
	touched := map[target]bool{}
	for old, canon := range respell {
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT chat_id, seq FROM reactions WHERE emoji = $1`, old)
		if err != nil {
			return err
		}
		for rows.Next() {
			var t target
			if err := rows.Scan(&t.chatID, &t.seq); err != nil {
				rows.Close()
				return err
			}
			touched[t] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// A user who reacted both ways keeps the earlier time (reactions are listed in order of
		// first use).
		if _, err := tx.ExecContext(ctx, `UPDATE reactions SET created_at = (SELECT o.created_at FROM reactions o
			WHERE o.chat_id = reactions.chat_id AND o.seq = reactions.seq AND o.user_id = reactions.user_id AND o.emoji = $1)
			WHERE emoji = $2 AND EXISTS (SELECT 1 FROM reactions o WHERE o.chat_id = reactions.chat_id AND o.seq = reactions.seq
			AND o.user_id = reactions.user_id AND o.emoji = $1 AND o.created_at < reactions.created_at)`, old, canon); err != nil {
			return fmt.Errorf("merge %+q into %+q: %w", old, canon, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO reactions (chat_id, seq, emoji, user_id, created_at)
			SELECT chat_id, seq, $2, user_id, created_at FROM reactions WHERE emoji = $1
			ON CONFLICT DO NOTHING`, old, canon); err != nil {
			return fmt.Errorf("respell %+q as %+q: %w", old, canon, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM reactions WHERE emoji = $1`, old); err != nil {
			return err
		}
	}
	for t := range touched {
		rev, err := nextRev(ctx, tx, t.chatID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET rev = $1 WHERE chat_id = $2 AND seq = $3`, rev, t.chatID, t.seq); err != nil {
			return err
		}
	}
	return nil
}
