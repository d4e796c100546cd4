package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/wschat/chat/internal/chat"
)

// sendMessagesSQL calls the function of migration 00005 (replaced in 00007, 00008, 00009 and 00011;
// a procedure since 00013, the same arguments and results). Outside a transaction the call is a
// transaction of its own: the chats are locked while it runs and committed at its end, all in
// one round trip, and its rows are read to the end (pgx reads up to the commit's answer) before
// anyone is answered.
const sendMessagesSQL = `SELECT k, status, id, seq, body, created_at, read_all, grown, mentions, mention_all
	FROM send_messages($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`

// Statuses of send_messages' rows.
const (
	sendStored    = 0
	sendStoredDup = 1
	sendNotMember = 2
	sendNoChat    = 3
	sendNoFiles   = 4 // a file of the send cannot be attached
	sendNoReply   = 5 // the send answers a seq the chat does not have (migration 00009)
	sendNoAll     = 6 // the send mentions @all where its sender may not (migration 00011)
)

// sendBatchPG stores the batch with one call of send_messages, the sends passed as arrays. A
// call that gave way to another transaction (a deadlock) stored nothing and is made again
// (retryGaveWay); each call answers every send afresh, and nobody is answered before the
// call that committed.
func (s *Store) sendBatchPG(ctx context.Context, groups []chatSends) error {
	var reqs []*sendReq
	for _, g := range groups {
		reqs = append(reqs, g.reqs...)
	}
	chats, senders := make([]int64, len(reqs)), make([]int64, len(reqs))
	clients, bodies := make([]string, len(reqs)), make([]string, len(reqs))
	ats, replies := make([]int64, len(reqs)), make([]int64, len(reqs))
	fileSends, fileIDs := []int64{}, []int64{}         // pairwise: the send's 1-based index, a file it attaches
	mentionSends, mentionUsers := []int64{}, []int64{} // pairwise: the send's 1-based index, a user it mentions
	mentionAll := make([]bool, len(reqs))
	for i, r := range reqs {
		mentionAll[i] = r.nm.MentionAll
		for _, id := range r.nm.Mentions {
			mentionSends, mentionUsers = append(mentionSends, int64(i+1)), append(mentionUsers, id)
		}
		chats[i], senders[i], clients[i], bodies[i], ats[i] = r.nm.ChatID, r.nm.SenderID, r.nm.ClientID, r.nm.Body, ms(r.nm.Now)
		replies[i] = r.nm.ReplyToSeq
		for _, id := range r.nm.FileIDs {
			fileSends, fileIDs = append(fileSends, int64(i+1)), append(fileIDs, id)
		}
	}
	args := []any{chats, senders, clients, bodies, ats, fileSends, fileIDs, replies, mentionSends, mentionUsers, mentionAll}
	var withFiles []*sendReq // stored now with files (a repeat is read whole after the commit: sentRepeats)
	err := s.retryGaveWay(ctx, func(replay bool) error {
		var err error
		withFiles, err = s.callSendMessages(ctx, reqs, args, replay)
		return err
	})
	if err != nil {
		return wrap(err)
	}
	return s.sentFiles(ctx, withFiles)
}

// callSendMessages makes one call of send_messages and sets each send's answer from its rows,
// all of them: nothing of an earlier call that gave way is left. It returns the sends stored
// with files. With replay (tests: ReplayTransactions) the call runs in a transaction that is
// rolled back.
func (s *Store) callSendMessages(ctx context.Context, reqs []*sendReq, args []any, replay bool) ([]*sendReq, error) {
	for _, r := range reqs {
		r.out, r.err = chat.Sent{}, nil
	}
	var q querier = s.db
	if replay {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return nil, err
		}
		defer tx.Rollback()
		q = tx
	}
	rows, err := q.QueryContext(ctx, sendMessagesSQL, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	answered := 0
	var withFiles []*sendReq
	for rows.Next() {
		var k int
		var status int16
		var id, seq, at, readAll sql.NullInt64
		var body sql.NullString
		var grown bool
		var mentions sql.NullString
		var all sql.NullBool
		if err := rows.Scan(&k, &status, &id, &seq, &body, &at, &readAll, &grown, &mentions, &all); err != nil {
			return nil, err
		}
		if k < 1 || k > len(reqs) {
			return nil, fmt.Errorf("send_messages answered send %d of %d", k, len(reqs))
		}
		r := reqs[k-1]
		switch status {
		case sendStored, sendStoredDup:
			sender, clientID := r.nm.SenderID, r.nm.ClientID
			r.out = chat.Sent{Message: chat.Message{ID: id.Int64, ChatID: r.nm.ChatID, Seq: seq.Int64, Kind: chat.MessageText,
				SenderID: &sender, Body: body.String, ClientID: &clientID, CreatedAt: chat.MillisTime(at.Int64),
				Mentions: parseMentions(mentions.String), MentionAll: all.Bool},
				Created: status == sendStored, ReadAll: chat.ReadAll{Seq: readAll.Int64, Grown: grown}}
			if status == sendStored {
				r.out.Message.ReplyToSeq = r.nm.ReplyToSeq
			}
			if status == sendStored && len(r.nm.FileIDs) > 0 {
				withFiles = append(withFiles, r)
			}
		case sendNoReply:
			r.err = chat.ErrNoReplyTarget
		case sendNoAll:
			r.err = chat.ErrMentionAllRefused
		case sendNoFiles:
			r.err = chat.ErrFilesRefused
		case sendNotMember:
			r.err = chat.ErrNotMember
		case sendNoChat:
			r.err = chat.ErrNotFound
		default:
			return nil, fmt.Errorf("send_messages: unknown status %d", status)
		}
		answered++
	}
	// Err includes a failed commit: the rows come before it, its answer after them.
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if answered != len(reqs) {
		return nil, fmt.Errorf("send_messages answered %d of %d sends", answered, len(reqs))
	}
	if replay {
		return nil, errReplay
	}
	return withFiles, nil
}

// sentFiles reads the files of stored messages, after the commit: the lock on the chat is
// not held for it. A message stored before (a repeat) may or may not have files; the query
// says. If it fails, those sends are answered with the error (their messages are stored: a
// retry with the same client id gets them); the others' answers stand.
func (s *Store) sentFiles(ctx context.Context, reqs []*sendReq) error {
	if len(reqs) == 0 {
		return nil
	}
	msgs := make([]chat.Message, len(reqs))
	for i, r := range reqs {
		msgs[i] = r.out.Message
		msgs[i].FileCount = 1 // look
	}
	if err := loadFiles(ctx, s.db, msgs); err != nil {
		for _, r := range reqs {
			r.out, r.err = chat.Sent{}, fmt.Errorf("files of sent messages: %w", err)
		}
		return nil
	}
	for i, r := range reqs {
		r.out.Message.Files = msgs[i].Files
		r.out.Message.FileCount = len(msgs[i].Files)
	}
	return nil
}
