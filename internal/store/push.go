package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// pushMaxAge: a message older than this when the scanner reaches it starts no push (an
// instance that was down for a while does not ping everyone about old news).
const pushMaxAge = 10 * time.Minute

// SavePushSubscription stores a browser's subscription for a user's session. An endpoint seen
// before is taken over when it is the same user's (a browser subscribing again, maybe from a
// new session), when its session has ended (another user signing in on the same browser), or
// when the request carries its keys (the same browser, whose first user is still signed in:
// only the browser and we know the auth secret). Otherwise it stays whose it is:
// chat.ErrPushEndpointTaken. Knowing an endpoint alone must not move another user's pushes.
func (s *Store) SavePushSubscription(ctx context.Context, sub chat.PushSubscription, now time.Time) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO push_subscriptions (user_id, session_id, endpoint, p256dh, auth, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, session_id = excluded.session_id,
			p256dh = excluded.p256dh, auth = excluded.auth, created_at = excluded.created_at
		WHERE push_subscriptions.user_id = excluded.user_id
			OR (push_subscriptions.p256dh = excluded.p256dh AND push_subscriptions.auth = excluded.auth)
			OR NOT EXISTS (SELECT 1 FROM sessions se WHERE se.id = push_subscriptions.session_id
				AND se.revoked_at IS NULL AND se.expires_at > $6)`,
		sub.UserID, nullID(sub.SessionID), sub.Endpoint, sub.P256dh, sub.Auth, ms(now))
	if err != nil {
		return wrap(err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if err != nil {
			return wrap(err)
		}
		return chat.ErrPushEndpointTaken
	}
	return nil
}

// DeletePushSubscription deletes a user's subscription (ErrNotFound when they have none there).
func (s *Store) DeletePushSubscription(ctx context.Context, userID int64, endpoint string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM push_subscriptions WHERE user_id = $1 AND endpoint = $2`, userID, endpoint)
	if err != nil {
		return wrap(err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return chat.ErrNotFound
	}
	return wrap(err)
}

// DropPushEndpoint deletes the subscription of an endpoint its push service called gone.
func (s *Store) DropPushEndpoint(ctx context.Context, endpoint string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM push_subscriptions WHERE endpoint = $1`, endpoint)
	return wrap(err)
}

// PushSubscriptions lists a user's subscriptions whose session is live at now: not revoked,
// not expired. (Those of ended sessions go with the sessions, when PruneSessions deletes them.)
func (s *Store) PushSubscriptions(ctx context.Context, userID int64, now time.Time) ([]chat.PushSubscription, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT p.endpoint, p.p256dh, p.auth, p.session_id FROM push_subscriptions p
		JOIN sessions se ON se.id = p.session_id
		WHERE p.user_id = $1 AND se.revoked_at IS NULL AND se.expires_at > $2 ORDER BY p.id`, userID, ms(now))
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []chat.PushSubscription
	for rows.Next() {
		sub := chat.PushSubscription{UserID: userID}
		if err := rows.Scan(&sub.Endpoint, &sub.P256dh, &sub.Auth, &sub.SessionID); err != nil {
			return nil, wrap(err)
		}
		out = append(out, sub)
	}
	return out, wrap(rows.Err())
}

// notifySetting is the notify setting of a member (mb) of a chat (c), the default included
// (chat.DefaultNotify).
const notifySetting = `COALESCE(mb.notify, CASE WHEN c.kind = 'group' AND c.member_count > 50 THEN 'mentions' ELSE 'all' END)`

// notifiedOf is true for a member (mb) of a chat (c) to be told of its message m: a text
// message by someone else, past the member's read mark, when they notify of all, or of
// mentions and m mentions them (or @all).
const notifiedOf = `m.kind = 'text' AND m.seq > mb.last_read_seq AND COALESCE(m.sender_id, 0) <> mb.user_id
	AND (` + notifySetting + ` = 'all' OR (` + notifySetting + ` = 'mentions'
	AND (m.mention_all OR EXISTS (SELECT 1 FROM mentions x WHERE x.user_id = mb.user_id AND x.chat_id = mb.chat_id AND x.seq = m.seq))))`

// pushJobsOfChat queues or raises the push jobs of one chat ($1) for its text messages of a
// scan: seqs $2..$3, ids past $4 up to $5, created after $6. A subscribed member is told of
// the last of them they are to be told of (job seq), due $7 ms after the first (a job already
// queued keeps its due time and takes the greater seq): what one statement per message, in
// order, did before.
func pushJobsOfChat(greatest string) string {
	of := `FROM messages m WHERE m.chat_id = mb.chat_id AND m.seq >= $2 AND m.seq <= $3 AND m.id > $4 AND m.id <= $5
		AND m.created_at > $6 AND ` + notifiedOf
	return `INSERT INTO push_jobs (user_id, chat_id, seq, due_at)
		SELECT j.user_id, j.chat_id, j.seq, j.first_at + $7 FROM (
			SELECT mb.user_id, mb.chat_id, (SELECT m.seq ` + of + ` ORDER BY m.seq DESC LIMIT 1) AS seq,
				(SELECT m.created_at ` + of + ` ORDER BY m.seq LIMIT 1) AS first_at
			FROM members mb JOIN chats c ON c.id = mb.chat_id
			WHERE mb.chat_id = $1 AND mb.last_read_seq < $3
				AND EXISTS (SELECT 1 FROM push_subscriptions ps WHERE ps.user_id = mb.user_id)) j
		WHERE j.seq IS NOT NULL
		ON CONFLICT (user_id, chat_id) DO UPDATE SET seq = ` + greatest + `(push_jobs.seq, excluded.seq)`
}

// scanChat is a chat's share of a push scan: the least and greatest seq of its messages.
type scanChat struct{ chatID, lo, hi int64 }

// chatsOf groups a scan's messages by chat, in the order the chats first appear.
func chatsOf(news []pushNews) []scanChat {
	var out []scanChat
	at := map[int64]int{}
	for _, m := range news {
		i, ok := at[m.chatID]
		if !ok {
			at[m.chatID] = len(out)
			out = append(out, scanChat{chatID: m.chatID, lo: m.seq, hi: m.seq})
			continue
		}
		out[i].lo, out[i].hi = min(out[i].lo, m.seq), max(out[i].hi, m.seq)
	}
	return out
}

// pushNews is a text message a push scan found.
type pushNews struct{ chatID, seq int64 }

// ScanPushJobs turns the text messages committed since the last call into push jobs, due
// delay after each message: one job per member to tell and chat, a later message of the
// chat raising the job's seq. Members told are those with a subscription, notify all (or
// mentions, and the message mentions them or @all) and the message unread. It walks messages
// by id as the search indexer does (searchindex.go), takes each chat's messages of the walk
// in one statement (pushJobsOfChat), and reports whether it took a whole batch (more may be
// waiting: call again at once).
func (s *Store) ScanPushJobs(ctx context.Context, now time.Time, delay time.Duration) (bool, error) {
	if behind, err := s.behind(ctx, `SELECT scanned_to FROM push_state WHERE id = 1`); err != nil || !behind {
		return false, err
	}
	full := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		full = false
		lock := ""
		if s.dialect.name == postgres.name {
			lock = " FOR UPDATE SKIP LOCKED"
		}
		var mark int64
		err := tx.QueryRowContext(ctx, `SELECT scanned_to FROM push_state WHERE id = 1`+lock).Scan(&mark)
		if err == sql.ErrNoRows {
			return nil
		}
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, chat_id, seq, kind, created_at FROM messages
			WHERE id > $1 ORDER BY id LIMIT $2`, mark, searchBatch)
		if err != nil {
			return err
		}
		var news []pushNews
		next := mark
		taken := 0 // messages walked past
		for rows.Next() {
			var id, created int64
			var m pushNews
			var kind string
			if err := rows.Scan(&id, &m.chatID, &m.seq, &kind, &created); err != nil {
				rows.Close()
				return err
			}
			if id != next+1 && fromMS(created).After(now.Add(-searchGapGrace)) {
				break
			}
			next = id
			taken++
			if kind == chat.MessageText && fromMS(created).After(now.Add(-pushMaxAge)) {
				news = append(news, m)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if next == mark {
			return nil
		}
		// One statement per chat, whatever the number of its messages in the batch: a busy
		// chat's members are read once per round, not once per message.
		for _, c := range chatsOf(news) {
			if _, err := tx.ExecContext(ctx, pushJobsOfChat(s.dialect.greatest),
				c.chatID, c.lo, c.hi, mark, next, ms(now.Add(-pushMaxAge)), delay.Milliseconds()); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE push_state SET scanned_to = $1 WHERE id = 1`, next); err != nil {
			return err
		}
		full = taken == searchBatch
		return nil
	})
	if err != nil {
		// A batch the commit failed to write (a full disk) was not taken: not "more at once"
		// (searchindex.go's indexSearch says the same).
		return false, err
	}
	return full, nil
}

// ClaimPushJobs claims up to n due jobs for owner until now+lease: jobs nobody holds, or
// whose holder's lease ran out (it crashed or hung).
func (s *Store) ClaimPushJobs(ctx context.Context, owner string, now time.Time, lease time.Duration, n int) ([]chat.PushJob, error) {
	lock := ""
	if s.dialect.name == postgres.name {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	// Nothing due: no transaction (on SQLite it would take the write lock sends wait for).
	var due int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM push_jobs
		WHERE due_at <= $1 AND (lease_until IS NULL OR lease_until < $1) LIMIT 1) x`, ms(now)).Scan(&due)
	if err != nil || due == 0 {
		return nil, wrap(err)
	}
	var jobs []chat.PushJob
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		jobs = nil
		rows, err := tx.QueryContext(ctx, `UPDATE push_jobs SET lease_until = $1, claimed_by = $2, attempts = attempts + 1
			WHERE (user_id, chat_id) IN (SELECT user_id, chat_id FROM push_jobs
				WHERE due_at <= $3 AND (lease_until IS NULL OR lease_until < $3) ORDER BY due_at LIMIT $4`+lock+`)
			RETURNING user_id, chat_id, seq, attempts`, ms(now.Add(lease)), owner, ms(now), n)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var j chat.PushJob
			if err := rows.Scan(&j.UserID, &j.ChatID, &j.Seq, &j.Attempts); err != nil {
				return err
			}
			jobs = append(jobs, j)
		}
		return rows.Err()
	})
	return jobs, err
}

// FinishPushJob ends a claimed job. A job whose seq grew meanwhile (more messages came while
// it was being sent) stays, released and due again delay later, for the rest of the burst.
func (s *Store) FinishPushJob(ctx context.Context, j chat.PushJob, owner string, now time.Time, delay time.Duration) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM push_jobs WHERE user_id = $1 AND chat_id = $2 AND seq = $3 AND claimed_by = $4`,
			j.UserID, j.ChatID, j.Seq, owner)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE push_jobs SET lease_until = NULL, claimed_by = NULL, attempts = 0, due_at = $3
			WHERE user_id = $1 AND chat_id = $2 AND claimed_by = $4`, j.UserID, j.ChatID, ms(now.Add(delay)), owner)
		return err
	})
}

// RetryPushJob releases a claimed job to be tried again at due.
func (s *Store) RetryPushJob(ctx context.Context, j chat.PushJob, owner string, due time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE push_jobs SET lease_until = NULL, claimed_by = NULL, due_at = $3
		WHERE user_id = $1 AND chat_id = $2 AND claimed_by = $4`, j.UserID, j.ChatID, ms(due), owner)
	return wrap(err)
}

// PushContext loads what a due job needs: the member's read mark and settings, and the chat
// and message to tell of.
func (s *Store) PushContext(ctx context.Context, j chat.PushJob) (chat.PushContext, error) {
	var pc chat.PushContext
	var notify sql.NullString
	var muted sql.NullInt64
	var members int
	var peer, sender, body, file sql.NullString
	var seq, shown, at sql.NullInt64
	// The message told of is the newest up to the job's seq that the member is to be told of
	// and that is not deleted: the job's own may have been deleted since it was queued.
	err := s.db.QueryRowContext(ctx, `SELECT mb.last_read_seq, mb.notify, mb.muted_until, c.kind, c.title, c.member_count, p.name,
			m.seq, su.name, m.body, (SELECT COUNT(*) FROM files f WHERE f.message_id = m.id),
			(SELECT f.name FROM files f WHERE f.message_id = m.id ORDER BY f.position LIMIT 1),
			fu.created_at, sh.seq,
			COALESCE(m.mention_all AND m.sender_id <> mb.user_id, FALSE)
			OR EXISTS (SELECT 1 FROM mentions x WHERE x.user_id = mb.user_id AND x.chat_id = mb.chat_id AND x.seq = m.seq)
		FROM members mb JOIN chats c ON c.id = mb.chat_id
		LEFT JOIN members pm ON c.kind = 'private' AND pm.chat_id = c.id AND pm.user_id <> mb.user_id
		LEFT JOIN users p ON p.id = pm.user_id
		LEFT JOIN messages m ON m.chat_id = c.id AND m.seq = (SELECT m.seq FROM messages m
			WHERE m.chat_id = mb.chat_id AND m.seq <= $3 AND m.deleted_at IS NULL AND `+notifiedOf+`
			ORDER BY m.seq DESC LIMIT 1)
		LEFT JOIN users su ON su.id = m.sender_id
		LEFT JOIN messages fu ON fu.chat_id = c.id AND fu.seq = mb.last_read_seq + 1
		LEFT JOIN push_shown sh ON sh.user_id = mb.user_id AND sh.chat_id = mb.chat_id
		WHERE mb.chat_id = $1 AND mb.user_id = $2`, j.ChatID, j.UserID, j.Seq).Scan(
		&pc.LastReadSeq, &notify, &muted, &pc.ChatKind, &pc.ChatTitle, &members, &peer,
		&seq, &sender, &body, &pc.Files, &file, &at, &shown, &pc.Mentioned)
	if err == sql.ErrNoRows {
		return pc, nil
	}
	if err != nil {
		return pc, wrap(err)
	}
	pc.Member = true
	pc.Settings = settingsOf(j.ChatID, pc.ChatKind, members, notify, muted)
	if pc.ChatKind == chat.KindPrivate && peer.Valid {
		pc.ChatTitle = peer.String
	}
	pc.Seq, pc.SenderName, pc.Body, pc.File, pc.ShownSeq = seq.Int64, sender.String, body.String, file.String, shown.Int64
	if at.Valid {
		pc.FirstUnreadAt = fromMS(at.Int64)
	}
	return pc, nil
}
