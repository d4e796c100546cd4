package store

import (
	"context"
	"time"
)

// Withdrawing pushes (issue 16): push_shown remembers the newest message each user's
// browsers were told of per chat (migration 00012). When the member's read mark reaches it,
// on any device, the push worker queues a job for the pair, and the job sends the
// withdrawal. Nothing of this runs on the read path.

// shownAndRead selects the push_shown rows (s) whose member (mb) has read up to them, and
// that no job is queued for yet.
const shownAndRead = `FROM push_shown s JOIN members mb ON mb.chat_id = s.chat_id AND mb.user_id = s.user_id
	WHERE mb.last_read_seq >= s.seq
		AND NOT EXISTS (SELECT 1 FROM push_jobs j WHERE j.user_id = s.user_id AND j.chat_id = s.chat_id)`

// ScanPushWithdrawals queues a job, due now, for each user and chat whose shown push the
// user has read since (a job already queued for the pair does the withdrawal when it is
// due). It reports how many it queued.
func (s *Store) ScanPushWithdrawals(ctx context.Context, now time.Time) (int, error) {
	// Nothing to withdraw: no write (on SQLite it would take the lock sends wait for).
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 `+shownAndRead+` LIMIT 1) x`).Scan(&n); err != nil || n == 0 {
		return 0, wrap(err)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO push_jobs (user_id, chat_id, seq, due_at)
		SELECT s.user_id, s.chat_id, s.seq, $1 `+shownAndRead+`
		ON CONFLICT (user_id, chat_id) DO NOTHING`, ms(now))
	if err != nil {
		return 0, wrap(err)
	}
	k, err := res.RowsAffected()
	return int(k), wrap(err)
}

// MarkPushShown records that the user's browsers were told of the chat up to seq.
func (s *Store) MarkPushShown(ctx context.Context, userID, chatID, seq int64, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO push_shown (user_id, chat_id, seq, shown_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, chat_id) DO UPDATE SET seq = `+s.dialect.greatest+`(push_shown.seq, excluded.seq), shown_at = excluded.shown_at`,
		userID, chatID, seq, ms(now))
	return wrap(err)
}

// ClearPushShown forgets the user's shown push of the chat once it is withdrawn, unless a
// newer one (past readSeq) was shown meanwhile.
func (s *Store) ClearPushShown(ctx context.Context, userID, chatID, readSeq int64) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM push_shown WHERE user_id = $1 AND chat_id = $2 AND seq <= $3`, userID, chatID, readSeq)
	return wrap(err)
}
