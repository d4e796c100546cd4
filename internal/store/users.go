package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// CreateUser stores a new account; the email must already be lowercased.
func (s *Store) CreateUser(ctx context.Context, u chat.User) (chat.User, error) {
	err := s.db.QueryRowContext(ctx,
		`INSERT INTO users (email, name, name_fold, password_hash, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		u.Email, u.Name, strings.ToLower(u.Name), u.PasswordHash, ms(u.CreatedAt)).Scan(&u.ID)
	if isUnique(err) {
		return chat.User{}, chat.ErrEmailTaken
	}
	return u, wrap(err)
}

const userColumns = `id, email, name, password_hash, created_at, last_seen_at, deleted_at IS NOT NULL`

func scanUser(row interface{ Scan(...any) error }, more ...any) (chat.User, error) {
	var u chat.User
	var created int64
	var seen sql.NullInt64
	err := row.Scan(append([]any{&u.ID, &u.Email, &u.Name, &u.PasswordHash, &created, &seen, &u.Deleted}, more...)...)
	u.CreatedAt = fromMS(created)
	if seen.Valid {
		u.LastSeenAt = fromMS(seen.Int64)
	}
	return u, wrap(err)
}

// UserByID loads a user.
func (s *Store) UserByID(ctx context.Context, id int64) (chat.User, error) {
	return scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
}

// UserByEmail loads a user by lowercased email. A deleted account has none.
func (s *Store) UserByEmail(ctx context.Context, email string) (chat.User, error) {
	return scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1 AND deleted_at IS NULL`, email))
}

// likePrefix escapes the LIKE metacharacters of a user's query and appends %.
func likePrefix(q string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(q)) + "%"
}

// sharesChat is true when users.id (u) shares a chat with the viewer ($1), or is the viewer.
const sharesChat = `(u.id = $1 OR EXISTS (SELECT 1 FROM members a JOIN members b ON b.chat_id = a.chat_id
	WHERE a.user_id = $1 AND b.user_id = u.id))`

// SearchUsers implements chat.Store. An email prefix matches only users who share a chat
// with the viewer: otherwise a stranger's email could be spelled out prefix by prefix from
// whether a name-only result appears.
func (s *Store) SearchUsers(ctx context.Context, q chat.UserSearch) ([]chat.FoundUser, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT u.id, u.email, u.name, u.password_hash, u.created_at, `+sharesChat+`
		FROM users u
		WHERE (u.name_fold LIKE $2 ESCAPE '\' OR u.email = $3 OR (u.email LIKE $2 ESCAPE '\' AND `+sharesChat+`)) AND u.deleted_at IS NULL
		ORDER BY u.name_fold, u.id LIMIT $4`, q.ViewerID, likePrefix(q.Prefix), q.Email, q.Limit)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []chat.FoundUser
	for rows.Next() {
		var f chat.FoundUser
		var created int64
		if err := rows.Scan(&f.ID, &f.Email, &f.Name, &f.PasswordHash, &created, &f.Shared); err != nil {
			return nil, wrap(err)
		}
		f.CreatedAt = fromMS(created)
		out = append(out, f)
	}
	return out, wrap(rows.Err())
}

const sessionColumns = `id, user_id, user_agent, created_at, last_seen_at, expires_at, revoked_at`

func scanSession(row interface{ Scan(...any) error }) (chat.Session, error) {
	var x chat.Session
	var created, seen, expires int64
	var revoked sql.NullInt64
	err := row.Scan(&x.ID, &x.UserID, &x.UserAgent, &created, &seen, &expires, &revoked)
	x.CreatedAt, x.LastSeenAt, x.ExpiresAt, x.Revoked = fromMS(created), fromMS(seen), fromMS(expires), revoked.Valid
	return x, wrap(err)
}

// CreateSession stores a new session with the hash of its first refresh token.
func (s *Store) CreateSession(ctx context.Context, x chat.Session, refreshHash []byte) (chat.Session, error) {
	err := s.db.QueryRowContext(ctx, `INSERT INTO sessions (user_id, refresh_hash, user_agent, created_at, last_seen_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		x.UserID, refreshHash, x.UserAgent, ms(x.CreatedAt), ms(x.LastSeenAt), ms(x.ExpiresAt)).Scan(&x.ID)
	return x, wrap(err)
}

// SessionByID loads a session.
func (s *Store) SessionByID(ctx context.Context, id int64) (chat.Session, error) {
	return scanSession(s.db.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1`, id))
}

// RotateRefresh implements chat.Store.
func (s *Store) RotateRefresh(ctx context.Context, oldHash, newHash, client []byte, now, expires time.Time) (chat.Session, error) {
	var sess chat.Session
	var reused bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		reused = false
		var err error
		sess, err = scanSession(tx.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE refresh_hash = $1`+s.forUpdate, oldHash))
		if errors.Is(err, chat.ErrNotFound) {
			return s.revokeReused(ctx, tx, oldHash, newHash, client, now, expires, &sess, &reused)
		}
		if err != nil {
			return err
		}
		if sess.Revoked || !now.Before(sess.ExpiresAt) {
			return chat.ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET refresh_hash = $1, expires_at = $2, last_seen_at = $3 WHERE id = $4`,
			newHash, ms(expires), ms(now), sess.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO refresh_rotated (hash, session_id, rotated_at, client) VALUES ($1, $2, $3, $4)`,
			oldHash, sess.ID, ms(now), client); err != nil {
			return err
		}
		sess.ExpiresAt, sess.LastSeenAt = expires, now
		return nil
	})
	if err == nil && reused {
		return sess, chat.ErrRefreshReused
	}
	return sess, err
}

// revokeReused looks hash up among rotated tokens and revokes its session if found, unless
// it is a prompt retry of the session's last rotation (chat.RefreshRetryGrace) by the client
// that rotation came from. A retry that asks for the token the session already has (the
// service derives each next token from the one presented) gets the session as it is: every
// tab of a browser refreshing with one token at once gets the same answer, and its cookie
// jar the one token, whichever answer it keeps. Otherwise the session is rotated again to
// newHash, and the token of the answer the client lost is recorded as rotated, so that it
// revokes the session if it ever shows up.
func (s *Store) revokeReused(ctx context.Context, tx *sql.Tx, hash, newHash, client []byte, now, expires time.Time, sess *chat.Session, reused *bool) error {
	var sid, rotatedAt int64
	var rotatedBy []byte
	err := tx.QueryRowContext(ctx, `SELECT session_id, rotated_at, client FROM refresh_rotated WHERE hash = $1`, hash).Scan(&sid, &rotatedAt, &rotatedBy)
	if err != nil {
		return wrap(err)
	}
	x, err := scanSession(tx.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1`+s.forUpdate, sid))
	if err != nil {
		return err
	}
	sameClient := len(rotatedBy) > 0 && bytes.Equal(rotatedBy, client)
	if sameClient && !x.Revoked && now.Before(x.ExpiresAt) && now.Sub(fromMS(rotatedAt)) <= chat.RefreshRetryGrace {
		var later int
		var current []byte
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM refresh_rotated WHERE session_id = $1 AND rotated_at >= $2 AND hash <> $3`,
			sid, rotatedAt, hash).Scan(&later); err != nil {
			return err
		}
		if later == 0 {
			if err := tx.QueryRowContext(ctx, `SELECT refresh_hash FROM sessions WHERE id = $1`, sid).Scan(&current); err != nil {
				return err
			}
			if bytes.Equal(current, newHash) {
				*sess = x
				return nil
			}
			if _, err := tx.ExecContext(ctx, `UPDATE sessions SET refresh_hash = $1, expires_at = $2, last_seen_at = $3 WHERE id = $4`,
				newHash, ms(expires), ms(now), sid); err != nil {
				return err
			}
			// The lost answer's token is recorded with no client: it was never presented, so
			// no retry of it can be a lost answer, and it revokes the session wherever it
			// shows up (with the client, it was the newest rotation and passed as a retry).
			if _, err := tx.ExecContext(ctx, `INSERT INTO refresh_rotated (hash, session_id, rotated_at, client) VALUES ($1, $2, $3, NULL)`,
				current, sid, ms(now)); err != nil {
				return err
			}
			x.ExpiresAt, x.LastSeenAt = expires, now
			*sess = x
			return nil
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, ms(now), sid); err != nil {
		return err
	}
	*sess, *reused = x, true
	return nil
}

// TouchSession records that the session was used.
func (s *Store) TouchSession(ctx context.Context, id int64, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $1`, ms(now), id)
	return wrap(err)
}

// RevokeSessions implements chat.Store.
func (s *Store) RevokeSessions(ctx context.Context, userID, sessionID int64, now time.Time) ([]int64, error) {
	q := `UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL AND expires_at > $1`
	args := []any{ms(now), userID}
	if sessionID > 0 {
		q += ` AND id = $3`
		args = append(args, sessionID)
	}
	rows, err := s.db.QueryContext(ctx, q+` RETURNING id`, args...)
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

// ListSessions lists the user's live sessions, newest first.
func (s *Store) ListSessions(ctx context.Context, userID int64, now time.Time) ([]chat.Session, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC, id DESC`, userID, ms(now))
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []chat.Session
	for rows.Next() {
		x, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, wrap(rows.Err())
}

// PruneSessions implements chat.Store.
func (s *Store) PruneSessions(ctx context.Context, sessionsBefore, tokensBefore time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1`, ms(sessionsBefore))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM refresh_rotated WHERE rotated_at < $1`, ms(tokensBefore))
		return err
	})
	return n, err
}
