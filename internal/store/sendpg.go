package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/wschat/chat/internal/chat"
)

// sendMessagesSQL calls the function of migration 00005. Outside a transaction the call is a
// transaction of its own: the chats are locked while it runs and committed at its end, all in
// one round trip, and its rows are read to the end (pgx reads up to the commit's answer) before
// anyone is answered.
const sendMessagesSQL = `SELECT k, status, id, seq, body, created_at, read_all, grown FROM send_messages($1, $2, $3, $4, $5)`

// Statuses of send_messages' rows.
const (
	sendStored    = 0
	sendStoredDup = 1
	sendNotMember = 2
	sendNoChat    = 3
)

// sendBatchPG stores the batch with one call of send_messages, the sends passed as arrays.
func (s *Store) sendBatchPG(ctx context.Context, groups []chatSends) error {
	var reqs []*sendReq
	for _, g := range groups {
		reqs = append(reqs, g.reqs...)
	}
	chats, senders := make([]int64, len(reqs)), make([]int64, len(reqs))
	clients, bodies := make([]string, len(reqs)), make([]string, len(reqs))
	ats := make([]int64, len(reqs))
	for i, r := range reqs {
		chats[i], senders[i], clients[i], bodies[i], ats[i] = r.nm.ChatID, r.nm.SenderID, r.nm.ClientID, r.nm.Body, ms(r.nm.Now)
	}
	rows, err := s.db.QueryContext(ctx, sendMessagesSQL, chats, senders, clients, bodies, ats)
	if err != nil {
		return wrap(err)
	}
	defer rows.Close()
	answered := 0
	for rows.Next() {
		var k int
		var status int16
		var id, seq, at, readAll sql.NullInt64
		var body sql.NullString
		var grown bool
		if err := rows.Scan(&k, &status, &id, &seq, &body, &at, &readAll, &grown); err != nil {
			return wrap(err)
		}
		if k < 1 || k > len(reqs) {
			return fmt.Errorf("send_messages answered send %d of %d", k, len(reqs))
		}
		r := reqs[k-1]
		switch status {
		case sendStored, sendStoredDup:
			sender, clientID := r.nm.SenderID, r.nm.ClientID
			r.out = chat.Sent{Message: chat.Message{ID: id.Int64, ChatID: r.nm.ChatID, Seq: seq.Int64, Kind: chat.MessageText,
				SenderID: &sender, Body: body.String, ClientID: &clientID, CreatedAt: chat.MillisTime(at.Int64)},
				Created: status == sendStored, ReadAll: chat.ReadAll{Seq: readAll.Int64, Grown: grown}}
		case sendNotMember:
			r.err = chat.ErrNotMember
		case sendNoChat:
			r.err = chat.ErrNotFound
		default:
			return fmt.Errorf("send_messages: unknown status %d", status)
		}
		answered++
	}
	// Err includes a failed commit: the rows come before it, its answer after them.
	if err := rows.Err(); err != nil {
		return wrap(err)
	}
	if answered != len(reqs) {
		return fmt.Errorf("send_messages answered %d of %d sends", answered, len(reqs))
	}
	return nil
}
