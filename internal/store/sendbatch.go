package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// Group commit. Every send to a chat takes the chat's row lock for its whole transaction, so
// the sends of one busy chat run one after another, each paying several round trips to the
// database while it holds the lock. Concurrent sends to the same chat therefore wait in one
// queue per chat; whoever finds the queue idle starts a committer that stores everything
// queued in one transaction (one lock, one multi-row insert, one update of the chat and of
// the senders' read marks) and answers every caller once it has committed. A lone send is a
// batch of one; under load the batches grow with the queue, so throughput grows with it while
// nothing is answered before its commit.

// maxSendBatch bounds the messages stored in one transaction (10 parameters each).
const maxSendBatch = 100

// sendQueues holds the per-chat queues; its zero value is ready to use.
type sendQueues struct {
	mu    sync.Mutex
	chats map[int64]*sendQueue
}

type sendQueue struct {
	pending []*sendReq
}

type sendReq struct {
	ctx  context.Context
	nm   chat.NewMessage
	out  chat.Sent
	err  error
	done chan struct{}
}

// SendMessage implements chat.Store. The chat row is locked while seqs are taken, so seqs are
// gapless and follow commit order however many instances send at once.
func (s *Store) SendMessage(ctx context.Context, nm chat.NewMessage) (chat.Sent, error) {
	req := &sendReq{ctx: ctx, nm: nm, done: make(chan struct{})}
	q := &s.sends
	q.mu.Lock()
	if q.chats == nil {
		q.chats = map[int64]*sendQueue{}
	}
	cq := q.chats[nm.ChatID]
	lead := cq == nil
	if lead {
		cq = &sendQueue{}
		q.chats[nm.ChatID] = cq
	}
	cq.pending = append(cq.pending, req)
	q.mu.Unlock()
	if lead {
		go s.commitQueued(nm.ChatID, cq)
	}
	select {
	case <-req.done:
		return req.out, req.err
	case <-ctx.Done():
		// The committer may still store it; a retry with the same client id finds it.
		return chat.Sent{}, wrap(ctx.Err())
	}
}

// commitQueued stores the chat's queued sends, a batch per transaction, until none is left.
func (s *Store) commitQueued(chatID int64, cq *sendQueue) {
	q := &s.sends
	for {
		q.mu.Lock()
		batch := cq.pending[:min(len(cq.pending), maxSendBatch)]
		cq.pending = cq.pending[len(batch):]
		if len(batch) == 0 {
			delete(q.chats, chatID)
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		live := batch[:0:0]
		for _, r := range batch {
			if r.ctx.Err() != nil { // its caller is gone: do not store what nobody waits for
				r.err = wrap(r.ctx.Err())
				close(r.done)
				continue
			}
			live = append(live, r)
		}
		if len(live) > 0 {
			s.sendBatch(chatID, live)
		}
	}
}

// sendOne stores one message in its own transaction, statement by statement: the fallback of
// a batch that hit a unique client id.
func (s *Store) sendOne(ctx context.Context, nm chat.NewMessage) (chat.Sent, error) {
	var out chat.Sent
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		c, err := s.lockChat(ctx, tx, nm.ChatID)
		if err != nil {
			return err
		}
		var myRead int64
		err = tx.QueryRowContext(ctx, `SELECT last_read_seq FROM members WHERE chat_id = $1 AND user_id = $2`, nm.ChatID, nm.SenderID).Scan(&myRead)
		if errors.Is(err, sql.ErrNoRows) {
			return chat.ErrNotMember
		}
		if err != nil {
			return err
		}
		prev, err := scanMessage(tx.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM messages
			WHERE chat_id = $1 AND sender_id = $2 AND client_id = $3`, nm.ChatID, nm.SenderID, nm.ClientID))
		if err == nil {
			out = chat.Sent{Message: prev, ReadAll: chat.ReadAll{Seq: c.readAllSeq}}
			return nil
		}
		if !errors.Is(err, chat.ErrNotFound) {
			return err
		}
		seq := c.lastSeq + 1
		sender, clientID := nm.SenderID, nm.ClientID
		m, err := insertMessage(ctx, tx, chat.Message{ChatID: nm.ChatID, Seq: seq, Kind: chat.MessageText, SenderID: &sender,
			Body: nm.Body, ClientID: &clientID, CreatedAt: chat.Time{Time: nm.Now}})
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE chats SET last_seq = $1, activity_at = $2 WHERE id = $3`, seq, ms(nm.Now), nm.ChatID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE members SET last_read_seq = $1 WHERE chat_id = $2 AND user_id = $3`, seq, nm.ChatID, nm.SenderID); err != nil {
			return err
		}
		ra := chat.ReadAll{Seq: c.readAllSeq}
		if myRead <= c.readAllSeq { // the sender may have been the one holding the minimum back
			if ra, err = raiseReadAll(ctx, tx, nm.ChatID, c.readAllSeq, seq); err != nil {
				return err
			}
		}
		out = chat.Sent{Message: m, Created: true, ReadAll: ra}
		return nil
	})
	return out, err
}

type senderClient struct {
	sender   int64
	clientID string
}

// sendBatch stores the sends of one chat in one transaction, in queue order, and answers
// each: it has the effect of sendOne on each in turn. Round trips to the database are what a
// busy chat waits for, above all those made while its row is locked, so the statements are
// few: the client ids already stored are looked up before the lock; the lock and the
// senders' memberships are one query; on PostgreSQL the insert and both updates are one
// statement. If the batch fails on a unique client id (a retry racing on another instance),
// each send is stored alone instead.
func (s *Store) sendBatch(chatID int64, batch []*sendReq) {
	// Callers wait for this commit; none of their contexts may cut it short for the others.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].ctx), 15*time.Second)
	defer cancel()
	outs := make([]chat.Sent, len(batch))
	errs := make([]error, len(batch))
	dupOf := map[int]int{} // batch index -> the earlier index with the same sender and client id
	var readAll int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		clear(errs)
		clear(dupOf)
		prev, err := storedByClientID(ctx, tx, chatID, batch)
		if err != nil {
			return err
		}
		lastSeq, readAllSeq, myRead, err := s.lockForSend(ctx, tx, chatID, batch)
		if err != nil {
			return err
		}
		readAll = readAllSeq
		seq := lastSeq
		var fresh []int // batch indexes of the messages to insert
		first := map[senderClient]int{}
		holdsMin := false
		var latest time.Time
		for i, r := range batch {
			read, member := myRead[r.nm.SenderID]
			if !member {
				errs[i] = chat.ErrNotMember
				continue
			}
			key := senderClient{r.nm.SenderID, r.nm.ClientID}
			if m, ok := prev[key]; ok {
				outs[i] = chat.Sent{Message: m, ReadAll: chat.ReadAll{Seq: readAllSeq}}
				continue
			}
			if j, ok := first[key]; ok { // the same send twice in this batch: the first wins
				dupOf[i] = j
				continue
			}
			first[key] = i
			seq++
			sender, clientID := r.nm.SenderID, r.nm.ClientID
			outs[i] = chat.Sent{Message: chat.Message{ChatID: chatID, Seq: seq, Kind: chat.MessageText, SenderID: &sender,
				Body: r.nm.Body, ClientID: &clientID, CreatedAt: chat.MillisTime(ms(r.nm.Now))}, Created: true,
				ReadAll: chat.ReadAll{Seq: readAllSeq}}
			fresh = append(fresh, i)
			holdsMin = holdsMin || read <= readAllSeq
			myRead[r.nm.SenderID] = seq
			if r.nm.Now.After(latest) {
				latest = r.nm.Now
			}
		}
		if len(fresh) == 0 {
			return nil
		}
		if err := s.writeBatch(ctx, tx, chatID, seq, latest, outs, fresh); err != nil {
			return err
		}
		if holdsMin { // a sender may have been the one holding the minimum back
			ra, err := raiseReadAll(ctx, tx, chatID, readAllSeq, seq)
			if err != nil {
				return err
			}
			outs[fresh[len(fresh)-1]].ReadAll = ra // one chat.read_all, with the final mark
		}
		return nil
	})
	if err != nil && isUniqueErr(err) {
		for _, r := range batch {
			r.out, r.err = s.sendOne(ctx, r.nm)
			close(r.done)
		}
		return
	}
	for i, r := range batch {
		j, dup := dupOf[i]
		switch {
		case err != nil:
			r.err = err
		case dup:
			r.out = chat.Sent{Message: outs[j].Message, ReadAll: chat.ReadAll{Seq: readAll}}
		case errs[i] != nil:
			r.err = errs[i]
		default:
			r.out = outs[i]
		}
		close(r.done)
	}
}

// isUniqueErr sees a unique violation through wrap.
func isUniqueErr(err error) bool { return isUnique(err) || isUnique(errors.Unwrap(err)) }

// query is SQL built with its parameters: arg appends a value and returns its placeholder.
type query struct {
	strings.Builder
	args []any
}

func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

// list writes the values as a comma-separated list of placeholders.
func (q *query) list(vs []int64) {
	for i, v := range vs {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(q.arg(v))
	}
}

// lockForSend locks the chat row and reads the chat's last seq and read-all mark, and the
// read mark of each sender who is a member, in one query.
func (s *Store) lockForSend(ctx context.Context, tx *sql.Tx, chatID int64, batch []*sendReq) (lastSeq, readAll int64, marks map[int64]int64, err error) {
	var senders []int64
	seen := map[int64]bool{}
	for _, r := range batch {
		if !seen[r.nm.SenderID] {
			seen[r.nm.SenderID] = true
			senders = append(senders, r.nm.SenderID)
		}
	}
	var q query
	q.WriteString(`SELECT c.last_seq, c.read_all_seq, m.user_id, m.last_read_seq FROM chats c
		LEFT JOIN members m ON m.chat_id = c.id AND m.user_id IN (`)
	q.list(senders)
	q.WriteString(`) WHERE c.id = ` + q.arg(chatID))
	if s.forUpdate != "" {
		q.WriteString(s.forUpdate + " OF c")
	}
	rows, err := tx.QueryContext(ctx, q.String(), q.args...)
	if err != nil {
		return 0, 0, nil, err
	}
	defer rows.Close()
	marks = make(map[int64]int64, len(senders))
	found := false
	for rows.Next() {
		var user, read sql.NullInt64
		if err := rows.Scan(&lastSeq, &readAll, &user, &read); err != nil {
			return 0, 0, nil, err
		}
		found = true
		if user.Valid {
			marks[user.Int64] = read.Int64
		}
	}
	if err := rows.Err(); err != nil {
		return 0, 0, nil, err
	}
	if !found {
		return 0, 0, nil, chat.ErrNotFound
	}
	return lastSeq, readAll, marks, nil
}

// storedByClientID returns the messages already stored under the batch's (sender, client id).
func storedByClientID(ctx context.Context, tx *sql.Tx, chatID int64, batch []*sendReq) (map[senderClient]chat.Message, error) {
	var q query
	q.WriteString(`SELECT ` + messageColumns + ` FROM messages WHERE chat_id = ` + q.arg(chatID) + ` AND (`)
	for i, r := range batch {
		if i > 0 {
			q.WriteString(" OR ")
		}
		q.WriteString("(sender_id = " + q.arg(r.nm.SenderID) + " AND client_id = " + q.arg(r.nm.ClientID) + ")")
	}
	q.WriteString(")")
	rows, err := tx.QueryContext(ctx, q.String(), q.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[senderClient]chat.Message{}
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		out[senderClient{*m.SenderID, *m.ClientID}] = m
	}
	return out, rows.Err()
}

// writeBatch inserts outs[i] for i in fresh (setting their ids), moves the chat's last seq and
// activity, and moves each sender's read mark to their last message of the batch: on
// PostgreSQL in one statement, on SQLite (no round trips to save) in three.
func (s *Store) writeBatch(ctx context.Context, tx *sql.Tx, chatID, lastSeq int64, latest time.Time, outs []chat.Sent, fresh []int) error {
	insert := func(q *query) {
		q.WriteString(`INSERT INTO messages (chat_id, seq, kind, sender_id, body, client_id, created_at) VALUES `)
		for k, i := range fresh {
			m := outs[i].Message
			if k > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(" + q.arg(m.ChatID) + ", " + q.arg(m.Seq) + ", " + q.arg(m.Kind) + ", " + q.arg(*m.SenderID) + ", " +
				q.arg(m.Body) + ", " + q.arg(*m.ClientID) + ", " + q.arg(ms(m.CreatedAt.Time)) + ")")
		}
		q.WriteString(` RETURNING id, seq`)
	}
	updateChat := func(q *query) {
		q.WriteString(`UPDATE chats SET last_seq = ` + q.arg(lastSeq) + `, activity_at = ` + q.arg(ms(latest)) + ` WHERE id = ` + q.arg(chatID))
	}
	last := map[int64]int64{}
	var senders []int64
	for _, i := range fresh {
		m := outs[i].Message
		if _, ok := last[*m.SenderID]; !ok {
			senders = append(senders, *m.SenderID)
		}
		last[*m.SenderID] = m.Seq
	}
	updateMarks := func(q *query) {
		q.WriteString(`UPDATE members SET last_read_seq = CASE user_id`)
		for _, u := range senders {
			q.WriteString(" WHEN " + q.arg(u) + " THEN " + q.arg(last[u]))
		}
		q.WriteString(` ELSE last_read_seq END WHERE chat_id = ` + q.arg(chatID) + ` AND user_id IN (`)
		q.list(senders)
		q.WriteString(")")
	}

	var ids *sql.Rows
	var err error
	if s.dialect.name == postgres.name {
		var q query
		q.WriteString("WITH ins AS (")
		insert(&q)
		q.WriteString("), c AS (")
		updateChat(&q)
		q.WriteString("), m AS (")
		updateMarks(&q)
		q.WriteString(") SELECT id, seq FROM ins")
		ids, err = tx.QueryContext(ctx, q.String(), q.args...)
	} else {
		for _, part := range []func(*query){updateChat, updateMarks} {
			var q query
			part(&q)
			if _, err := tx.ExecContext(ctx, q.String(), q.args...); err != nil {
				return err
			}
		}
		var q query
		insert(&q)
		ids, err = tx.QueryContext(ctx, q.String(), q.args...)
	}
	if err != nil {
		return err
	}
	defer ids.Close()
	bySeq := make(map[int64]int, len(fresh))
	for _, i := range fresh {
		bySeq[outs[i].Message.Seq] = i
	}
	n := 0
	for ids.Next() {
		var id, seq int64
		if err := ids.Scan(&id, &seq); err != nil {
			return err
		}
		outs[bySeq[seq]].Message.ID = id
		n++
	}
	if err := ids.Err(); err != nil {
		return err
	}
	if n != len(fresh) {
		return errors.New("insert messages: fewer rows returned than inserted")
	}
	return nil
}
