package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/wschat/chat/internal/chat"
)

// Group commit. Every send to a chat takes the chat's row lock for its whole transaction, so
// the sends of one busy chat run one after another, each paying several round trips to the
// database while it holds the lock; and every transaction, whatever it holds, takes a pooled
// connection for those round trips and a commit. Sends therefore wait in one queue per chat,
// and a few committers (maxCommitters) store what is queued: each takes the queues of up to
// maxCommitChats ready chats (at most maxSendBatch sends of each), stores them in one
// transaction (per chat: one lock, one multi-row insert, one update of the chat and of the
// senders' read marks) and answers every caller once it has committed. A chat is in one
// committer's hands at a time, so its sends are stored in queue order. A lone send is a
// batch of one; under load the batches grow with the queues, so throughput grows with the
// load while nothing is answered before its commit.

const (
	// maxSendBatch bounds the messages of one chat stored in one transaction (one insert
	// statement of 7 parameters each).
	maxSendBatch = 100
	// maxCommitChats bounds the chats stored in one transaction.
	maxCommitChats = 64
	// maxCommitters bounds the transactions of sends in flight at once on one instance:
	// enough to keep the database busy, few enough that queued sends wait for the next
	// transaction (and share it) rather than for a pooled connection.
	maxCommitters = 4
)

// sendQueues holds the per-chat queues; its zero value is ready to use.
type sendQueues struct {
	mu         sync.Mutex
	chats      map[int64]*sendQueue // chats with sends queued or being stored
	ready      []*sendQueue         // chats with sends queued and no committer, oldest first
	committers int
}

type sendQueue struct {
	chatID  int64
	pending []*sendReq
	busy    bool // a committer is storing this chat's sends
	ready   bool // in sendQueues.ready
}

type sendReq struct {
	ctx  context.Context
	nm   chat.NewMessage
	out  chat.Sent
	err  error
	done chan struct{}
}

// chatSends are the sends of one chat stored together.
type chatSends struct {
	chatID int64
	reqs   []*sendReq
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
	if cq == nil {
		cq = &sendQueue{chatID: nm.ChatID}
		q.chats[nm.ChatID] = cq
	}
	cq.pending = append(cq.pending, req)
	if !cq.busy && !cq.ready {
		cq.ready = true
		q.ready = append(q.ready, cq)
	}
	start := q.committers < maxCommitters
	if start {
		q.committers++
	}
	q.mu.Unlock()
	if start {
		go s.commitQueued()
	}
	select {
	case <-req.done:
		return req.out, req.err
	case <-ctx.Done():
		// The committer may still store it; a retry with the same client id finds it.
		return chat.Sent{}, wrap(ctx.Err())
	}
}

// commitQueued stores queued sends, a transaction at a time, until no chat is ready.
func (s *Store) commitQueued() {
	q := &s.sends
	for {
		q.mu.Lock()
		n := min(len(q.ready), maxCommitChats)
		if n == 0 {
			q.committers--
			q.mu.Unlock()
			return
		}
		taken := make([]*sendQueue, n)
		copy(taken, q.ready)
		q.ready = append(q.ready[:0], q.ready[n:]...)
		groups := make([]chatSends, 0, n)
		for _, cq := range taken {
			cq.ready, cq.busy = false, true
			batch := cq.pending[:min(len(cq.pending), maxSendBatch)]
			cq.pending = cq.pending[len(batch):]
			groups = append(groups, chatSends{cq.chatID, batch})
		}
		q.mu.Unlock()

		live := groups[:0]
		for _, g := range groups {
			reqs := g.reqs[:0:0]
			for _, r := range g.reqs {
				if r.ctx.Err() != nil { // its caller is gone: do not store what nobody waits for
					r.err = wrap(r.ctx.Err())
					close(r.done)
					continue
				}
				reqs = append(reqs, r)
			}
			if len(reqs) > 0 {
				live = append(live, chatSends{g.chatID, reqs})
			}
		}
		if len(live) > 0 {
			s.sendBatch(live)
		}

		q.mu.Lock()
		for _, cq := range taken {
			cq.busy = false
			switch {
			case len(cq.pending) > 0:
				cq.ready = true
				q.ready = append(q.ready, cq)
			default:
				delete(q.chats, cq.chatID)
			}
		}
		q.mu.Unlock()
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
		err = tx.QueryRowContext(ctx, `SELECT m.last_read_seq FROM members m JOIN chats c ON c.id = m.chat_id
			WHERE m.chat_id = $1 AND m.user_id = $2 AND NOT c.read_only`, nm.ChatID, nm.SenderID).Scan(&myRead)
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

// sendBatch stores the sends of several chats in one transaction, each chat's in queue
// order, and answers each: it has the effect of sendOne on each in turn. Round trips to the
// database are what a busy chat waits for, above all those made while its row is locked, so
// the statements are few: the client ids already stored are looked up with the lock, in the
// same round trip; the insert and both updates are one statement. On PostgreSQL the whole
// transaction takes two round trips however many chats it holds (sendBatchPG); SQLite,
// in-process, runs the same steps one by one. The chats are locked in id order, so two
// transactions of sends never wait for each other in a cycle. If the transaction fails on a
// unique client id (a retry racing on another instance), each send is stored alone instead.
func (s *Store) sendBatch(groups []chatSends) {
	slices.SortFunc(groups, func(a, b chatSends) int { return cmp.Compare(a.chatID, b.chatID) })
	// Callers wait for this commit; none of their contexts may cut it short for the others.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(groups[0].reqs[0].ctx), 15*time.Second)
	defer cancel()
	var plans []*sendPlan
	var err error
	if s.dialect.name == postgres.name {
		plans, err = s.sendBatchPG(ctx, groups)
	} else {
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			plans = plans[:0]
			for _, g := range groups {
				p, err := s.sendChatTx(ctx, tx, g)
				if err != nil {
					return err
				}
				plans = append(plans, p)
			}
			return nil
		})
		err = wrap(err)
	}
	if err != nil && isUniqueErr(err) {
		for _, g := range groups {
			for _, r := range g.reqs {
				r.out, r.err = s.sendOne(ctx, r.nm)
				close(r.done)
			}
		}
		return
	}
	for k, g := range groups {
		for i, r := range g.reqs {
			if err != nil {
				r.err = err
			} else {
				r.out, r.err = plans[k].answer(i)
			}
			close(r.done)
		}
	}
}

// sendChatTx stores one chat's sends in tx, statement by statement (SQLite).
func (s *Store) sendChatTx(ctx context.Context, tx *sql.Tx, g chatSends) (*sendPlan, error) {
	prev, err := storedByClientID(ctx, tx, g.chatID, g.reqs)
	if err != nil {
		return nil, err
	}
	lastSeq, readAllSeq, marks, err := s.lockForSend(ctx, tx, g.chatID, g.reqs)
	if errors.Is(err, chat.ErrNotFound) {
		return missingChat(g), nil
	}
	if err != nil {
		return nil, err
	}
	p := planBatch(g.chatID, g.reqs, prev, lastSeq, readAllSeq, marks)
	if len(p.fresh) == 0 {
		return p, nil
	}
	for _, q := range []*query{p.updateChat(), p.updateMarks()} {
		if _, err := tx.ExecContext(ctx, q.String(), q.args...); err != nil {
			return nil, err
		}
	}
	ins := p.insert()
	rows, err := tx.QueryContext(ctx, ins.String(), ins.args...)
	if err != nil {
		return nil, err
	}
	if err := p.setIDs(sqlRows{rows}); err != nil {
		return nil, err
	}
	if p.holdsMin { // a sender may have been the one holding the minimum back
		ra, err := raiseReadAll(ctx, tx, g.chatID, readAllSeq, p.seq)
		if err != nil {
			return nil, err
		}
		p.outs[p.fresh[len(p.fresh)-1]].ReadAll = ra // one chat.read_all, with the final mark
	}
	return p, nil
}

// missingChat is the plan for the sends to a chat that does not exist: each is refused.
func missingChat(g chatSends) *sendPlan {
	p := &sendPlan{chatID: g.chatID, outs: make([]chat.Sent, len(g.reqs)), errs: make([]error, len(g.reqs))}
	for i := range p.errs {
		p.errs[i] = chat.ErrNotFound
	}
	return p
}

// sendPlan is what a batch does, decided under the chat's lock: which sends are stored under
// which seqs, which were stored before, which are refused.
type sendPlan struct {
	chatID   int64
	outs     []chat.Sent
	errs     []error
	dupOf    map[int]int // batch index -> the earlier index with the same sender and client id
	fresh    []int       // batch indexes of the messages to insert
	seq      int64       // the chat's last seq after the batch
	latest   time.Time
	readAll  int64
	holdsMin bool // a sender may have held read_all_seq back: it may rise
}

func planBatch(chatID int64, batch []*sendReq, prev map[senderClient]chat.Message, lastSeq, readAll int64, marks map[int64]int64) *sendPlan {
	p := &sendPlan{chatID: chatID, outs: make([]chat.Sent, len(batch)), errs: make([]error, len(batch)),
		dupOf: map[int]int{}, seq: lastSeq, readAll: readAll}
	first := map[senderClient]int{}
	for i, r := range batch {
		read, member := marks[r.nm.SenderID]
		if !member {
			p.errs[i] = chat.ErrNotMember
			continue
		}
		key := senderClient{r.nm.SenderID, r.nm.ClientID}
		if m, ok := prev[key]; ok {
			p.outs[i] = chat.Sent{Message: m, ReadAll: chat.ReadAll{Seq: readAll}}
			continue
		}
		if j, ok := first[key]; ok { // the same send twice in this batch: the first wins
			p.dupOf[i] = j
			continue
		}
		first[key] = i
		p.seq++
		sender, clientID := r.nm.SenderID, r.nm.ClientID
		p.outs[i] = chat.Sent{Message: chat.Message{ChatID: chatID, Seq: p.seq, Kind: chat.MessageText, SenderID: &sender,
			Body: r.nm.Body, ClientID: &clientID, CreatedAt: chat.MillisTime(ms(r.nm.Now))}, Created: true,
			ReadAll: chat.ReadAll{Seq: readAll}}
		p.fresh = append(p.fresh, i)
		p.holdsMin = p.holdsMin || read <= readAll
		marks[r.nm.SenderID] = p.seq
		if r.nm.Now.After(p.latest) {
			p.latest = r.nm.Now
		}
	}
	return p
}

// answer is what the send at batch index i gets once the batch has committed.
func (p *sendPlan) answer(i int) (chat.Sent, error) {
	if j, ok := p.dupOf[i]; ok {
		return chat.Sent{Message: p.outs[j].Message, ReadAll: chat.ReadAll{Seq: p.readAll}}, nil
	}
	if p.errs[i] != nil {
		return chat.Sent{}, p.errs[i]
	}
	return p.outs[i], nil
}

// sendBatchPG runs the transaction in two round trips, pipelined on one connection: BEGIN,
// then for each chat the stored client ids and the lock with the senders' read marks; then
// each chat's writes and read-all mark, and COMMIT. The chats' rows are locked for one round
// trip and the commit.
func (s *Store) sendBatchPG(ctx context.Context, groups []chatSends) ([]*sendPlan, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, wrap(err)
	}
	defer conn.Close()
	plans := make([]*sendPlan, len(groups))
	err = conn.Raw(func(dc any) error {
		c := dc.(*stdlib.Conn).Conn()
		inTx := false
		fail := func(err error) error {
			if inTx {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				if _, rerr := c.Exec(rctx, "ROLLBACK"); rerr != nil {
					c.Close(rctx) // never hand the pool a connection left in a transaction
				}
				cancel()
			}
			return err
		}
		var b pgx.Batch
		b.Queue("BEGIN")
		for _, g := range groups {
			prevQ := storedByClientIDQuery(g.chatID, g.reqs)
			lockQ := s.lockForSendQuery(g.chatID, g.reqs)
			b.Queue(prevQ.String(), prevQ.args...)
			b.Queue(lockQ.String(), lockQ.args...)
		}
		res := c.SendBatch(ctx, &b)
		_, err := res.Exec()
		inTx = err == nil
		for k, g := range groups {
			if err != nil {
				break
			}
			var prev map[senderClient]chat.Message
			prev, err = scanStored(batchRows(res))
			if err != nil {
				break
			}
			lastSeq, readAll, marks, lerr := scanLock(batchRows(res))
			switch {
			case errors.Is(lerr, chat.ErrNotFound):
				plans[k] = missingChat(g)
			case lerr != nil:
				err = lerr
			default:
				plans[k] = planBatch(g.chatID, g.reqs, prev, lastSeq, readAll, marks)
			}
		}
		if cerr := res.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fail(err)
		}
		b = pgx.Batch{}
		for _, p := range plans {
			if len(p.fresh) == 0 {
				continue
			}
			w := p.writeAll()
			b.Queue(w.String(), w.args...)
			if p.holdsMin {
				b.Queue(`UPDATE chats SET read_all_seq = m.v FROM (SELECT min(last_read_seq) AS v FROM members WHERE chat_id = $1) m
					WHERE chats.id = $1 AND m.v > chats.read_all_seq RETURNING chats.read_all_seq`, p.chatID)
			}
		}
		b.Queue("COMMIT")
		res = c.SendBatch(ctx, &b)
		for _, p := range plans {
			if err != nil || len(p.fresh) == 0 {
				continue
			}
			err = p.setIDs(batchRows(res))
			if err == nil && p.holdsMin {
				var v int64
				switch err = res.QueryRow().Scan(&v); {
				case err == nil:
					p.outs[p.fresh[len(p.fresh)-1]].ReadAll = chat.ReadAll{Seq: v, Grown: true}
				case errors.Is(err, pgx.ErrNoRows):
					err = nil
				}
			}
		}
		if err == nil {
			_, err = res.Exec()
		}
		if cerr := res.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fail(err)
		}
		return nil
	})
	return plans, wrap(err)
}

// rowSet is what the scanners need of database/sql's and pgx's row sets.
type rowSet interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

// batchRows is the next result of a pipelined batch as a rowSet; a query that failed shows
// its error from Err, after a Next that returns false.
func batchRows(res pgx.BatchResults) rowSet {
	rs, err := res.Query()
	if err != nil {
		return errRows{err}
	}
	return rs
}

type errRows struct{ err error }

func (e errRows) Next() bool        { return false }
func (e errRows) Scan(...any) error { return e.err }
func (e errRows) Err() error        { return e.err }
func (e errRows) Close()            {}

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

// lockForSendQuery locks the chat row and reads the chat's last seq and read-all mark, and
// the read mark of each sender who is a member, in one query.
func (s *Store) lockForSendQuery(chatID int64, batch []*sendReq) *query {
	var senders []int64
	seen := map[int64]bool{}
	for _, r := range batch {
		if !seen[r.nm.SenderID] {
			seen[r.nm.SenderID] = true
			senders = append(senders, r.nm.SenderID)
		}
	}
	q := &query{}
	// A read-only chat (a private chat whose peer deleted their account) has no senders: its
	// members are not found here, and the service tells them why (peer_deleted).
	q.WriteString(`SELECT c.last_seq, c.read_all_seq, m.user_id, m.last_read_seq FROM chats c
		LEFT JOIN members m ON m.chat_id = c.id AND NOT c.read_only AND m.user_id IN (`)
	q.list(senders)
	q.WriteString(`) WHERE c.id = ` + q.arg(chatID))
	if s.forUpdate != "" {
		q.WriteString(s.forUpdate + " OF c")
	}
	return q
}

func (s *Store) lockForSend(ctx context.Context, tx *sql.Tx, chatID int64, batch []*sendReq) (lastSeq, readAll int64, marks map[int64]int64, err error) {
	q := s.lockForSendQuery(chatID, batch)
	rs, err := tx.QueryContext(ctx, q.String(), q.args...)
	if err != nil {
		return 0, 0, nil, err
	}
	return scanLock(sqlRows{rs})
}

func scanLock(rs rowSet) (lastSeq, readAll int64, marks map[int64]int64, err error) {
	defer rs.Close()
	marks = map[int64]int64{}
	found := false
	for rs.Next() {
		var user, read sql.NullInt64
		if err := rs.Scan(&lastSeq, &readAll, &user, &read); err != nil {
			return 0, 0, nil, err
		}
		found = true
		if user.Valid {
			marks[user.Int64] = read.Int64
		}
	}
	if err := rs.Err(); err != nil {
		return 0, 0, nil, err
	}
	if !found {
		return 0, 0, nil, chat.ErrNotFound
	}
	return lastSeq, readAll, marks, nil
}

// storedByClientIDQuery selects the messages already stored under the batch's (sender,
// client id).
func storedByClientIDQuery(chatID int64, batch []*sendReq) *query {
	q := &query{}
	q.WriteString(`SELECT ` + messageColumns + ` FROM messages WHERE chat_id = ` + q.arg(chatID) + ` AND (`)
	for i, r := range batch {
		if i > 0 {
			q.WriteString(" OR ")
		}
		q.WriteString("(sender_id = " + q.arg(r.nm.SenderID) + " AND client_id = " + q.arg(r.nm.ClientID) + ")")
	}
	q.WriteString(")")
	return q
}

func storedByClientID(ctx context.Context, tx *sql.Tx, chatID int64, batch []*sendReq) (map[senderClient]chat.Message, error) {
	q := storedByClientIDQuery(chatID, batch)
	rs, err := tx.QueryContext(ctx, q.String(), q.args...)
	if err != nil {
		return nil, err
	}
	return scanStored(sqlRows{rs})
}

func scanStored(rs rowSet) (map[senderClient]chat.Message, error) {
	defer rs.Close()
	out := map[senderClient]chat.Message{}
	for rs.Next() {
		m, err := scanMessage(rs)
		if err != nil {
			return nil, err
		}
		out[senderClient{*m.SenderID, *m.ClientID}] = m
	}
	return out, rs.Err()
}

// insert inserts the plan's new messages, returning their ids and seqs.
func (p *sendPlan) insert() *query {
	q := &query{}
	p.writeInsert(q)
	return q
}

func (p *sendPlan) writeInsert(q *query) {
	q.WriteString(`INSERT INTO messages (chat_id, seq, kind, sender_id, body, client_id, created_at) VALUES `)
	for k, i := range p.fresh {
		m := p.outs[i].Message
		if k > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(" + q.arg(m.ChatID) + ", " + q.arg(m.Seq) + ", " + q.arg(m.Kind) + ", " + q.arg(*m.SenderID) + ", " +
			q.arg(m.Body) + ", " + q.arg(*m.ClientID) + ", " + q.arg(ms(m.CreatedAt.Time)) + ")")
	}
	q.WriteString(` RETURNING id, seq`)
}

// updateChat moves the chat's last seq and activity.
func (p *sendPlan) updateChat() *query {
	q := &query{}
	p.writeUpdateChat(q)
	return q
}

func (p *sendPlan) writeUpdateChat(q *query) {
	q.WriteString(`UPDATE chats SET last_seq = ` + q.arg(p.seq) + `, activity_at = ` + q.arg(ms(p.latest)) + ` WHERE id = ` + q.arg(p.chatID))
}

// updateMarks moves each sender's read mark to their last message of the batch.
func (p *sendPlan) updateMarks() *query {
	q := &query{}
	p.writeUpdateMarks(q)
	return q
}

func (p *sendPlan) writeUpdateMarks(q *query) {
	last := map[int64]int64{}
	var senders []int64
	for _, i := range p.fresh {
		m := p.outs[i].Message
		if _, ok := last[*m.SenderID]; !ok {
			senders = append(senders, *m.SenderID)
		}
		last[*m.SenderID] = m.Seq
	}
	q.WriteString(`UPDATE members SET last_read_seq = CASE user_id`)
	for _, u := range senders {
		q.WriteString(" WHEN " + q.arg(u) + " THEN " + q.arg(last[u]))
	}
	q.WriteString(` ELSE last_read_seq END WHERE chat_id = ` + q.arg(p.chatID) + ` AND user_id IN (`)
	q.list(senders)
	q.WriteString(")")
}

// writeAll is insert and both updates in one PostgreSQL statement (data-modifying CTEs).
func (p *sendPlan) writeAll() *query {
	q := &query{}
	q.WriteString("WITH ins AS (")
	p.writeInsert(q)
	q.WriteString("), c AS (")
	p.writeUpdateChat(q)
	q.WriteString("), m AS (")
	p.writeUpdateMarks(q)
	q.WriteString(") SELECT id, seq FROM ins")
	return q
}

// setIDs reads the ids of the inserted messages.
func (p *sendPlan) setIDs(rs rowSet) error {
	defer rs.Close()
	bySeq := make(map[int64]int, len(p.fresh))
	for _, i := range p.fresh {
		bySeq[p.outs[i].Message.Seq] = i
	}
	n := 0
	for rs.Next() {
		var id, seq int64
		if err := rs.Scan(&id, &seq); err != nil {
			return err
		}
		p.outs[bySeq[seq]].Message.ID = id
		n++
	}
	if err := rs.Err(); err != nil {
		return err
	}
	if n != len(p.fresh) {
		return errors.New("insert messages: fewer rows returned than inserted")
	}
	return nil
}
