package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// The metadata of uploaded files (migration 00006); the bytes are in a chat.Blobs store.

var _ chat.FileStore = (*Store)(nil)

const fileColumns = `id, chat_id, uploader_id, state, blob_key, name, size, content_type, sha256, width, height,
	orientation, created_at, message_id, thumb_state, thumb_key, thumb_type, thumb_size, thumb_sha256, thumb_claimed_at`

// scanFile scans fileColumns, then the extra columns that follow them into extra.
func scanFile(row interface{ Scan(...any) error }, extra ...any) (chat.File, error) {
	var f chat.File
	var uploader, message, claimed sql.NullInt64
	var created int64
	err := row.Scan(append([]any{&f.ID, &f.ChatID, &uploader, &f.State, &f.Key, &f.Name, &f.Size, &f.ContentType, &f.SHA256,
		&f.Width, &f.Height, &f.Orientation, &created, &message, &f.Thumb.State, &f.Thumb.Key, &f.Thumb.ContentType,
		&f.Thumb.Size, &f.Thumb.SHA256, &claimed}, extra...)...)
	if err != nil {
		return chat.File{}, wrap(err)
	}
	f.UploaderID, f.MessageID = uploader.Int64, message.Int64
	f.CreatedAt = fromMS(created)
	if claimed.Valid {
		f.Thumb.Claimed = fromMS(claimed.Int64)
	}
	f.SetURLs()
	return f, nil
}

// BeginUpload implements chat.FileStore.
func (s *Store) BeginUpload(ctx context.Context, u chat.NewUpload) (int64, error) {
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := isMember(ctx, tx, u.ChatID, u.UploaderID); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO files (chat_id, uploader_id, state, blob_key, created_at)
			VALUES ($1, $2, 'uploading', $3, $4) RETURNING id`, u.ChatID, u.UploaderID, u.Key, ms(u.Now)).Scan(&id)
	})
	return id, err
}

// isMember is nil when the user belongs to the chat, ErrNotMember when not, ErrNotFound when
// there is no such chat.
func isMember(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, chatID, userID int64) error {
	var member bool
	err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM members WHERE chat_id = $1 AND user_id = $2)
		FROM chats WHERE id = $1`, chatID, userID).Scan(&member)
	if err != nil {
		return wrap(err)
	}
	if !member {
		return chat.ErrNotMember
	}
	return nil
}

// FinishUpload implements chat.FileStore. The chat's and the uploader's rows are locked (in
// that order, as AddMember does) so that concurrent uploads on any instance cannot together
// pass a quota.
func (s *Store) FinishUpload(ctx context.Context, f chat.File, dayStart time.Time, userDaily, chatTotal int64) (chat.File, error) {
	var out chat.File
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var id int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM chats WHERE id = $1`+s.dialect.forCount, f.ChatID).Scan(&id); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE id = $1`+s.dialect.forCount, f.UploaderID).Scan(&id); err != nil {
			return err
		}
		if err := isMember(ctx, tx, f.ChatID, f.UploaderID); err != nil {
			return err
		}
		u, err := fileUsage(ctx, tx, f.UploaderID, f.ChatID, dayStart)
		if err != nil {
			return err
		}
		if u.ChatBytes+f.Size > chatTotal {
			return &chat.QuotaError{Chat: true, Used: u.ChatBytes}
		}
		if u.UserBytes+f.Size > userDaily {
			return &chat.QuotaError{Used: u.UserBytes, Oldest: u.UserOldest}
		}
		out, err = scanFile(tx.QueryRowContext(ctx, `UPDATE files SET state = 'stored', name = $2, size = $3, content_type = $4,
			sha256 = $5, width = $6, height = $7, orientation = $8, thumb_state = $9
			WHERE id = $1 AND state = 'uploading' RETURNING `+fileColumns,
			f.ID, f.Name, f.Size, f.ContentType, f.SHA256, f.Width, f.Height, f.Orientation, f.Thumb.State))
		return err
	})
	return out, err
}

// DropUpload implements chat.FileStore.
func (s *Store) DropUpload(ctx context.Context, id int64) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM files WHERE id = $1 AND state = 'uploading'`, id)
	return wrap(err)
}

// FileUsage implements chat.FileStore.
func (s *Store) FileUsage(ctx context.Context, userID, chatID int64, dayStart time.Time) (chat.FileUsage, error) {
	return fileUsage(ctx, s.db, userID, chatID, dayStart)
}

// counted is the files the quotas count (fileUsage): stored, and not detached from a deleted
// message (message_id NULL with attached_at set), which no one may download or attach again
// and the janitor deletes: such a file stops counting with its message's delete, not at the
// janitor's next pass.
const counted = `state = 'stored' AND (message_id IS NOT NULL OR attached_at IS NULL)`

func fileUsage(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, userID, chatID int64, dayStart time.Time) (chat.FileUsage, error) {
	var u chat.FileUsage
	var oldest sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT
		(SELECT COALESCE(SUM(size), 0) FROM files WHERE uploader_id = $1 AND created_at >= $3 AND `+counted+`),
		(SELECT MIN(created_at) FROM files WHERE uploader_id = $1 AND created_at >= $3 AND `+counted+`),
		(SELECT COALESCE(SUM(size), 0) FROM files WHERE chat_id = $2 AND `+counted+`)`,
		userID, chatID, ms(dayStart)).Scan(&u.UserBytes, &oldest, &u.ChatBytes)
	if oldest.Valid {
		u.UserOldest = fromMS(oldest.Int64)
	}
	return u, wrap(err)
}

// FileFor implements chat.FileStore. A file whose message was deleted (detached: attached_at
// set, message_id NULL) is nobody's any more.
func (s *Store) FileFor(ctx context.Context, viewerID, fileID int64) (chat.File, error) {
	return scanFile(s.db.QueryRowContext(ctx, `SELECT `+fileColumns+` FROM files
		WHERE id = $2 AND state = 'stored'
		AND EXISTS (SELECT 1 FROM members m WHERE m.chat_id = files.chat_id AND m.user_id = $1)
		AND (message_id IS NOT NULL OR (attached_at IS NULL AND uploader_id = $1))`, viewerID, fileID))
}

// FileClaims implements chat.Store.
func (s *Store) FileClaims(ctx context.Context, viewerID int64, ids []int64) ([]chat.FileClaim, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	q := &query{}
	v := q.arg(viewerID)
	q.WriteString(`SELECT f.id, f.chat_id, COALESCE(f.uploader_id, 0), f.state = 'stored',
		f.message_id IS NOT NULL OR f.attached_at IS NOT NULL, f.created_at,
		EXISTS (SELECT 1 FROM members m WHERE m.chat_id = f.chat_id AND m.user_id = ` + v + `)
		FROM files f WHERE f.id IN (`)
	q.list(ids)
	q.WriteString(`)`)
	rows, err := s.db.QueryContext(ctx, q.String(), q.args...)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []chat.FileClaim
	for rows.Next() {
		var c chat.FileClaim
		var created int64
		if err := rows.Scan(&c.ID, &c.ChatID, &c.UploaderID, &c.Stored, &c.Attached, &created, &c.Visible); err != nil {
			return nil, wrap(err)
		}
		c.CreatedAt = fromMS(created)
		out = append(out, c)
	}
	return out, wrap(rows.Err())
}

// ClaimThumbnail implements chat.FileStore.
func (s *Store) ClaimThumbnail(ctx context.Context, fileID int64, now, staleBefore time.Time) (chat.File, bool, error) {
	f, err := scanFile(s.db.QueryRowContext(ctx, `UPDATE files SET thumb_claimed_at = $2
		WHERE id = $1 AND state = 'stored' AND thumb_state = 'pending'
		AND (thumb_claimed_at IS NULL OR thumb_claimed_at < $3) RETURNING `+fileColumns, fileID, ms(now), ms(staleBefore)))
	if err == chat.ErrNotFound {
		return chat.File{}, false, nil
	}
	return f, err == nil, err
}

// SetThumbnail implements chat.FileStore.
func (s *Store) SetThumbnail(ctx context.Context, fileID int64, t chat.Thumbnail) error {
	_, err := s.db.ExecContext(ctx, `UPDATE files SET thumb_state = $2, thumb_key = $3, thumb_type = $4, thumb_size = $5,
		thumb_sha256 = $6, thumb_claimed_at = NULL WHERE id = $1`, fileID, t.State, t.Key, t.ContentType, t.Size, t.SHA256)
	return wrap(err)
}

// PendingThumbnails implements chat.FileStore.
func (s *Store) PendingThumbnails(ctx context.Context, createdBefore, staleBefore time.Time, limit int) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM files WHERE thumb_state = 'pending' AND state = 'stored'
		AND created_at < $1 AND (thumb_claimed_at IS NULL OR thumb_claimed_at < $2) ORDER BY created_at LIMIT $3`,
		ms(createdBefore), ms(staleBefore), limit)
	if err != nil {
		return nil, wrap(err)
	}
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

// ExpiredFiles implements chat.FileStore.
func (s *Store) ExpiredFiles(ctx context.Context, unattachedBefore, uploadingBefore time.Time, limit int) ([]chat.File, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+fileColumns+` FROM files
		WHERE message_id IS NULL AND (
			(state = 'stored' AND (attached_at IS NOT NULL OR created_at < $1))
			OR (state = 'uploading' AND created_at < $2))
		ORDER BY id LIMIT $3`, ms(unattachedBefore), ms(uploadingBefore), limit)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []chat.File
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, wrap(rows.Err())
}

// DeleteExpired implements chat.FileStore.
func (s *Store) DeleteExpired(ctx context.Context, fileID int64) (bool, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM files WHERE id = $1 AND message_id IS NULL`, fileID)
	if err != nil {
		return false, wrap(err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrap(err)
}

// StoredBytes implements chat.FileStore.
func (s *Store) StoredBytes(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(size + thumb_size), 0) FROM files WHERE state = 'stored'`).Scan(&n)
	return n, wrap(err)
}
