package store

import (
	"context"
	"database/sql"
	"time"
)

// The demo users' password, "password" (first@, second@ and third@example.com), as migration
// 00002 stores it (argon2id at the default cost) and as test runs store it (argon2id at the
// test cost, auth.FastPasswordParams). A change of the password stores a new hash with a new
// salt, so either value in the row means the demo password still works.
const (
	DemoPasswordHash     = "$argon2id$v=19$m=19456,t=2,p=1$HroKhCcqDSM0rhQoA44aig$MarbjPJaR28bX0nI9dMVOLfGC9X4ZPw0fo5MjdsHDfE"
	DemoPasswordHashTest = "$argon2id$v=19$m=64,t=1,p=1$eqv57QfNNmJzNnPnbts6Pg$6QyXaYNjEZrn11CMBh991h4wnIOylL8l6jJxSUDPojk"
)

// CheapenDemoPasswords stores DemoPasswordHashTest for the demo users that still have the demo
// password (the same password, hashed at the test cost), and leaves every other user alone.
// Only for test runs (CHAT_PASSWORD_COST=test), which sign the demo users in again and again:
// under the race detector one check at the default cost takes about half a second of CPU, and
// they were most of cmd/chatd's test CPU (68 -> 13 CPU-s).
func (s *Store) CheapenDemoPasswords(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `UPDATE users SET password_hash = $1 WHERE password_hash = $2`,
		DemoPasswordHashTest, DemoPasswordHash)
	return wrap(err)
}

// LockDemoPasswords takes the demo password from the demo users that still have it (their
// hash becomes empty: no password signs in, as for a deleted account), revokes their sessions
// (a socket of one is closed by its instance's audit) and returns how many users it locked.
// For a server whose demo is off (config.Config.DemoOn): migration 00002 adds the demo users to
// every database. UnlockDemoPasswords undoes it.
func (s *Store) LockDemoPasswords(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = $1 WHERE revoked_at IS NULL
			AND user_id IN (SELECT id FROM users WHERE password_hash IN ($2, $3))`, ms(now), DemoPasswordHash, DemoPasswordHashTest); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = '' WHERE password_hash IN ($1, $2)`,
			DemoPasswordHash, DemoPasswordHashTest)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, wrap(err)
}

// UnlockDemoPasswords gives the demo password (DemoPasswordHash) back to the demo users that
// LockDemoPasswords locked, and returns how many: the users of migration 00002, by id and
// email, not deleted, whose hash is empty. Only a lock leaves a live account without a hash,
// so a demo user who changed the password keeps theirs, and a deleted one stays deleted. For
// a server whose demo is on: a database that was once started with it off had them for good.
func (s *Store) UnlockDemoPasswords(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE users SET password_hash = $1
		WHERE password_hash = '' AND deleted_at IS NULL AND (
			(id = 1 AND email = 'first@example.com') OR (id = 2 AND email = 'second@example.com') OR
			(id = 3 AND email = 'third@example.com'))`, DemoPasswordHash)
	if err != nil {
		return 0, wrap(err)
	}
	n, err := res.RowsAffected()
	return n, wrap(err)
}
