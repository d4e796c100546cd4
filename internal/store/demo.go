package store

import "context"

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
