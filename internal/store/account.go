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

// Accounts (chat.AdminStore): names, passwords, deletion and last seen.

// UserFor implements chat.AdminStore.
func (s *Store) UserFor(ctx context.Context, viewerID, userID int64) (chat.User, bool, error) {
	var shared bool
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+`, `+sharesChat+` FROM users u WHERE u.id = $2`,
		viewerID, userID), &shared)
	return u, shared, err
}

// RenameUser implements chat.AdminStore.
func (s *Store) RenameUser(ctx context.Context, userID int64, name string) error {
	return s.updateUser(ctx, `UPDATE users SET name = $1, name_fold = $2 WHERE id = $3 AND deleted_at IS NULL`,
		name, strings.ToLower(name), userID)
}

// SetPasswordHash implements chat.AdminStore.
func (s *Store) SetPasswordHash(ctx context.Context, userID int64, hash string) error {
	return s.updateUser(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2 AND deleted_at IS NULL`, hash, userID)
}

// updateUser runs an update of one user's row: chat.ErrNotFound when it changed none.
func (s *Store) updateUser(ctx context.Context, q string, args ...any) error {
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return wrap(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap(err)
	} else if n == 0 {
		return chat.ErrNotFound
	}
	return nil
}

// RevokeOtherSessions implements chat.AdminStore.
func (s *Store) RevokeOtherSessions(ctx context.Context, userID, keep int64, now time.Time) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, `UPDATE sessions SET revoked_at = $1
		WHERE user_id = $2 AND id <> $3 AND revoked_at IS NULL AND expires_at > $1 RETURNING id`, ms(now), userID, keep)
	if err != nil {
		return nil, wrap(err)
	}
	return scanIDs(rows)
}

func scanIDs(rows *sql.Rows) ([]int64, error) {
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, wrap(err)
		}
		ids = append(ids, id)
	}
	return ids, wrap(rows.Err())
}

// TouchUser implements chat.AdminStore.
func (s *Store) TouchUser(ctx context.Context, userID int64, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE users SET last_seen_at = $1 WHERE id = $2 AND (last_seen_at IS NULL OR last_seen_at < $1)`,
		ms(now), userID)
	return wrap(err)
}

// ChatIDsOf implements chat.AdminStore.
func (s *Store) ChatIDsOf(ctx context.Context, userID int64) ([]int64, error) {
	ids, err := chatIDsOf(ctx, s.db, userID)
	return ids, wrap(err)
}

// chatIDsOf reads the ids of the user's chats, in order.
func chatIDsOf(ctx context.Context, q querier, userID int64) ([]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT chat_id FROM members WHERE user_id = $1 ORDER BY chat_id`, userID)
	if err != nil {
		return nil, err
	}
	return scanIDs(rows)
}

// ChatIDsOfUsers implements chat.AdminStore, reading the users in batches of ids.
func (s *Store) ChatIDsOfUsers(ctx context.Context, userIDs []int64) (map[int64][]int64, error) {
	out := make(map[int64][]int64, len(userIDs))
	const batch = 500
	for start := 0; start < len(userIDs); start += batch {
		in, args := idList(userIDs[start:min(start+batch, len(userIDs))])
		rows, err := s.db.QueryContext(ctx, `SELECT user_id, chat_id FROM members WHERE user_id IN (`+in+`) ORDER BY user_id, chat_id`, args...)
		if err != nil {
			return nil, wrap(err)
		}
		for rows.Next() {
			var u, c int64
			if err := rows.Scan(&u, &c); err != nil {
				rows.Close()
				return nil, wrap(err)
			}
			out[u] = append(out[u], c)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, wrap(err)
		}
	}
	return out, nil
}

// LeaveReason implements chat.AdminStore. The messages after `after` are few: it is a seq the
// caller read while the user was still a member. Of several leaves after it (the user came
// back in between), the last is the one that holds.
func (s *Store) LeaveReason(ctx context.Context, userID, chatID, after int64) (string, error) {
	var deleted bool
	var event sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT c.deleted_at IS NOT NULL,
		(SELECT m.event_type FROM messages m WHERE m.chat_id = c.id AND m.seq > $2 AND m.event_user_id = $3
			AND m.event_type IN ($4, $5) ORDER BY m.seq DESC LIMIT 1)
		FROM chats c WHERE c.id = $1`, chatID, after, userID, chat.SysMemberLeft, chat.SysMemberRemoved).Scan(&deleted, &event)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", chat.ErrNotFound
	case err != nil:
		return "", wrap(err)
	case deleted:
		return "deleted", nil
	case event.String == chat.SysMemberRemoved:
		return "removed", nil
	}
	return "", nil
}

// EndedSessions implements chat.AdminStore.
func (s *Store) EndedSessions(ctx context.Context, ids []int64, now time.Time) ([]int64, error) {
	live := make(map[int64]bool, len(ids))
	const batch = 500
	for start := 0; start < len(ids); start += batch {
		in, args := idList(ids[start:min(start+batch, len(ids))])
		rows, err := s.db.QueryContext(ctx, fmt.Sprintf(`SELECT id FROM sessions WHERE id IN (%s) AND revoked_at IS NULL AND expires_at > $%d`,
			in, len(args)+1), append(args, ms(now))...)
		if err != nil {
			return nil, wrap(err)
		}
		got, err := scanIDs(rows)
		if err != nil {
			return nil, err
		}
		for _, id := range got {
			live[id] = true
		}
	}
	var ended []int64
	for _, id := range ids {
		if !live[id] {
			ended = append(ended, id)
		}
	}
	return ended, nil
}

// DeleteUser implements chat.AdminStore. Locks are taken in the order every other change
// takes them, chats before users: the user's chats, groups and private ones (in id order),
// then the user's row, so that a leave, an invitation or a send racing with the deletion
// waits rather than deadlocks. (A send locks its chat, then, storing a message, the sender's
// row for its foreign key: had the private chats been locked after the user's row, to make
// them read-only, the user's own send to one of them and the deletion would each have held
// what the other waited for.) A chat the user joined after the chats were read and before
// their row was locked (from then on no membership of theirs can be added) would be locked
// after the row: the deletion starts over instead, up to deleteAttempts times, and the next
// run reads and locks it first.
func (s *Store) DeleteUser(ctx context.Context, userID int64, now time.Time) (chat.DeletedAccount, error) {
	for n := 1; ; n++ {
		out, err := s.deleteUser(ctx, userID, now, n < deleteAttempts)
		if !errors.Is(err, errJoinedMeanwhile) {
			return out, err
		}
	}
}

// deleteAttempts bounds the runs of a deletion whose user keeps joining chats; the last run
// locks what they joined after their row, and a deadlock it meets runs it again (inTx).
const deleteAttempts = 3

// errJoinedMeanwhile: the user joined a chat between the deletion's read of their chats and
// its lock of their row.
var errJoinedMeanwhile = errors.New("joined a chat during the account's deletion")

// deleteUser is one run of DeleteUser. With strict, it gives up with errJoinedMeanwhile
// rather than lock a chat after the user's row.
func (s *Store) deleteUser(ctx context.Context, userID int64, now time.Time, strict bool) (chat.DeletedAccount, error) {
	var out chat.DeletedAccount
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = chat.DeletedAccount{}
		chats, err := chatIDsOf(ctx, tx, userID)
		if err != nil {
			return err
		}
		if len(chats) > 0 {
			in, args := idList(chats)
			if _, err := tx.ExecContext(ctx, `SELECT id FROM chats WHERE id IN (`+in+`) ORDER BY id`+s.dialect.forCount, args...); err != nil {
				return err
			}
		}
		var deleted sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT deleted_at FROM users WHERE id = $1`+s.forUpdate, userID).Scan(&deleted); err != nil {
			return err
		}
		if deleted.Valid {
			return chat.ErrNotFound
		}
		if strict {
			current, err := chatIDsOf(ctx, tx, userID)
			if err != nil {
				return err
			}
			for _, id := range current {
				if _, found := slices.BinarySearch(chats, id); !found {
					return errJoinedMeanwhile
				}
			}
		}
		groups, err := s.groupsOf(ctx, tx, userID)
		if err != nil {
			return err
		}
		for _, id := range groups {
			r, err := s.removeTx(ctx, tx, chat.Removal{ChatID: id, UserID: userID, ActorID: userID, Now: now})
			if err != nil {
				return fmt.Errorf("leave chat %d: %w", id, err)
			}
			out.Groups = append(out.Groups, r)
		}
		rows, err := tx.QueryContext(ctx, `UPDATE chats SET read_only = TRUE
			WHERE kind = 'private' AND id IN (SELECT chat_id FROM members WHERE user_id = $1) RETURNING id`, userID)
		if err != nil {
			return err
		}
		if out.Private, err = scanIDs(rows); err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, `UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL RETURNING id`, ms(now), userID)
		if err != nil {
			return err
		}
		if out.Sessions, err = scanIDs(rows); err != nil {
			return err
		}
		// The email is freed for a new sign-up; what replaces it holds no "@", so it can be
		// neither signed up with nor logged in with.
		_, err = tx.ExecContext(ctx, `UPDATE users SET name = $1, name_fold = '', email = $2, password_hash = '', deleted_at = $3
			WHERE id = $4`, chat.DeletedName, fmt.Sprintf("deleted-%d", userID), ms(now), userID)
		return err
	})
	return out, err
}

// groupsOf lists the groups a user is a member of, in id order.
func (s *Store) groupsOf(ctx context.Context, tx *sql.Tx, userID int64) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT m.chat_id FROM members m JOIN chats c ON c.id = m.chat_id
		WHERE m.user_id = $1 AND c.kind = 'group' ORDER BY m.chat_id`, userID)
	if err != nil {
		return nil, err
	}
	return scanIDs(rows)
}
