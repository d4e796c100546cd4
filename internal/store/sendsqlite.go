package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// sendBatchSQLite stores the batch in one immediate transaction, statement by statement: what
// send_messages does on PostgreSQL. The transaction holds the database's write lock from its
// BEGIN, so what it reads (stored client ids, members, the counters) stays true until it commits.
func (s *Store) sendBatchSQLite(ctx context.Context, groups []chatSends) error {
	plans := make([]*sendPlan, len(groups))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for k, g := range groups {
			p, err := sendChatTx(ctx, tx, g)
			if err != nil {
				return err
			}
			plans[k] = p
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k, g := range groups {
		for i, r := range g.reqs {
			r.out, r.err = plans[k].answer(i)
		}
	}
	return nil
}

// sendChatTx stores one chat's sends in tx.
func sendChatTx(ctx context.Context, tx *sql.Tx, g chatSends) (*sendPlan, error) {
	lastSeq, readAllSeq, marks, err := lockForSend(ctx, tx, g.chatID, g.reqs)
	var ma *mentionRules
	if err == nil {
		ma, err = mentionRulesOf(ctx, tx, g.chatID, g.reqs)
	}
	if errors.Is(err, chat.ErrNotFound) {
		return missingChat(g), nil
	}
	if err != nil {
		return nil, err
	}
	prev, err := storedByClientID(ctx, tx, g.chatID, g.reqs)
	if err != nil {
		return nil, err
	}
	files, err := filesToAttach(ctx, tx, g.reqs)
	if err != nil {
		return nil, err
	}
	p := planBatch(g.chatID, g.reqs, prev, files, lastSeq, readAllSeq, marks, ma)
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
	if err := p.setIDs(rows); err != nil {
		return nil, err
	}
	if err := p.attach(ctx, tx, g.reqs); err != nil {
		return nil, err
	}
	if q := p.insertMentions(); q != nil {
		if _, err := tx.ExecContext(ctx, q.String(), q.args...); err != nil {
			return nil, err
		}
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

// sendPlan is what a batch does, decided with the chat's counters in hand: which sends are
// stored under which seqs, which were stored before, which are refused.
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

// planBatch decides the batch as send_messages does: a send by a non-member is refused; one
// stored before is answered with that message; one whose files cannot all be attached (see
// fileFree) is refused, and so is one naming a file an earlier send of the batch names (unless
// it repeats that send); a repeat within the batch gets the first's message; the others are
// stored in queue order.
func planBatch(chatID int64, batch []*sendReq, prev map[senderClient]chat.Message, files map[int64]fileRow, lastSeq, readAll int64, marks map[int64]int64, ma *mentionRules) *sendPlan {
	p := &sendPlan{chatID: chatID, outs: make([]chat.Sent, len(batch)), errs: make([]error, len(batch)),
		dupOf: map[int]int{}, seq: lastSeq, readAll: readAll}
	first := map[senderClient]int{}
	owner := map[int64]senderClient{}
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
		if r.nm.ReplyToSeq > lastSeq {
			p.errs[i] = chat.ErrNoReplyTarget
			continue
		}
		if r.nm.MentionAll && !ma.allowAll(r.nm.SenderID) {
			p.errs[i] = chat.ErrMentionAllRefused
			continue
		}
		free := true
		for _, id := range r.nm.FileIDs {
			free = free && fileFree(files[id], chatID, r.nm.SenderID, r.nm.Now)
		}
		if !free {
			p.errs[i] = chat.ErrFilesRefused
			continue
		}
		for _, id := range r.nm.FileIDs { // a file goes to the first send naming it, and its repeats
			if _, ok := owner[id]; !ok {
				owner[id] = key
			}
			free = free && owner[id] == key
		}
		if !free {
			p.errs[i] = chat.ErrFilesRefused
			continue
		}
		if j, ok := first[key]; ok { // the same send twice in this batch: the first wins
			p.dupOf[i] = j
			continue
		}
		first[key] = i
		p.seq++
		sender, clientID := r.nm.SenderID, r.nm.ClientID
		var attached []chat.File
		for _, id := range r.nm.FileIDs {
			attached = append(attached, files[id].file)
		}
		p.outs[i] = chat.Sent{Message: chat.Message{ChatID: chatID, Seq: p.seq, Kind: chat.MessageText, SenderID: &sender,
			Body: r.nm.Body, ClientID: &clientID, CreatedAt: chat.MillisTime(ms(r.nm.Now)), Files: attached,
			FileCount: len(attached), ReplyToSeq: r.nm.ReplyToSeq, Mentions: ma.members(r.nm.Mentions), MentionAll: r.nm.MentionAll},
			Created: true, ReadAll: chat.ReadAll{Seq: readAll}}
		p.fresh = append(p.fresh, i)
		p.holdsMin = p.holdsMin || read <= readAll
		marks[r.nm.SenderID] = p.seq
		if r.nm.Now.After(p.latest) {
			p.latest = r.nm.Now
		}
	}
	return p
}

// fileRow is a file a send of the batch names, as it stands.
type fileRow struct {
	file     chat.File
	found    bool
	attached bool // attached now or before (attached_at set)
}

// fileFree reports whether a send by sender to chatID at now may attach the file: a stored
// upload of the sender into that chat, never attached, uploaded less than FileAttachWindow
// before (send_messages checks the same).
func fileFree(f fileRow, chatID, sender int64, now time.Time) bool {
	return f.found && !f.attached && f.file.State == chat.FileStored && f.file.ChatID == chatID &&
		f.file.UploaderID == sender && f.file.CreatedAt.After(now.Add(-chat.FileAttachWindow))
}

// filesToAttach reads the files the batch's sends name; nil when they name none.
func filesToAttach(ctx context.Context, tx *sql.Tx, batch []*sendReq) (map[int64]fileRow, error) {
	var ids []int64
	for _, r := range batch {
		ids = append(ids, r.nm.FileIDs...)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	q := &query{}
	q.WriteString(`SELECT ` + fileColumns + `, attached_at IS NOT NULL FROM files WHERE id IN (`)
	q.list(ids)
	q.WriteString(`)`)
	rs, err := tx.QueryContext(ctx, q.String(), q.args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := map[int64]fileRow{}
	for rs.Next() {
		var attached bool
		f, err := scanFile(rs, &attached)
		if err != nil {
			return nil, err
		}
		out[f.ID] = fileRow{file: f, found: true, attached: attached || f.MessageID != 0}
	}
	return out, rs.Err()
}

// attach makes the new messages' files theirs.
func (p *sendPlan) attach(ctx context.Context, tx *sql.Tx, batch []*sendReq) error {
	for _, i := range p.fresh {
		m := p.outs[i].Message
		for pos, id := range batch[i].nm.FileIDs {
			_, err := tx.ExecContext(ctx, `UPDATE files SET message_id = $1, position = $2, attached_at = $3 WHERE id = $4`,
				m.ID, pos, ms(m.CreatedAt.Time), id)
			if err != nil {
				return err
			}
			p.outs[i].Message.Files[pos].MessageID = m.ID
		}
	}
	return nil
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

type senderClient struct {
	sender   int64
	clientID string
}

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

// lockForSend reads the chat's last seq and read-all mark, and the read mark of each sender
// who is a member, in one query (the transaction already holds the write lock).
func lockForSend(ctx context.Context, tx *sql.Tx, chatID int64, batch []*sendReq) (lastSeq, readAll int64, marks map[int64]int64, err error) {
	var senders []int64
	seen := map[int64]bool{}
	for _, r := range batch {
		if !seen[r.nm.SenderID] {
			seen[r.nm.SenderID] = true
			senders = append(senders, r.nm.SenderID)
		}
	}
	// A read-only chat (a private chat whose peer deleted their account) has no senders: its
	// members are not found here, and the service tells them why (peer_deleted).
	q := &query{}
	q.WriteString(`SELECT c.last_seq, c.read_all_seq, m.user_id, m.last_read_seq FROM chats c
		LEFT JOIN members m ON m.chat_id = c.id AND NOT c.read_only AND m.user_id IN (`)
	q.list(senders)
	q.WriteString(`) WHERE c.id = ` + q.arg(chatID))
	rs, err := tx.QueryContext(ctx, q.String(), q.args...)
	if err != nil {
		return 0, 0, nil, err
	}
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

// storedByClientID finds the messages already stored under the batch's (sender, client id),
// one lookup of messages_client per distinct pair. One query with a term per send, (sender_id
// = $2 AND client_id = $3) OR ..., read the chat's whole history instead: from about five
// terms on, SQLite's planner (without statistics) walked messages_seq for chat_id and tested
// every message, so a send to a chat of 20,000 messages cost 0.5 ms of CPU in this query alone
// under load (docs/PERFORMANCE.md, "Embedded mode").
func storedByClientID(ctx context.Context, q querier, chatID int64, batch []*sendReq) (map[senderClient]chat.Message, error) {
	out := map[senderClient]chat.Message{}
	asked := map[senderClient]bool{}
	for _, r := range batch {
		key := senderClient{r.nm.SenderID, r.nm.ClientID}
		if asked[key] {
			continue
		}
		asked[key] = true
		rs, err := q.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages WHERE chat_id = $1 AND sender_id = $2 AND client_id = $3`,
			chatID, key.sender, key.clientID)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			m, err := scanMessage(rs)
			if err != nil {
				rs.Close()
				return nil, err
			}
			out[key] = m
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// insert inserts the plan's new messages, returning their ids and seqs.
func (p *sendPlan) insert() *query {
	q := &query{}
	q.WriteString(`INSERT INTO messages (chat_id, seq, kind, sender_id, body, client_id, created_at, file_count, reply_to_seq,
		mentions, mention_all) VALUES `)
	for k, i := range p.fresh {
		m := p.outs[i].Message
		if k > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(" + q.arg(m.ChatID) + ", " + q.arg(m.Seq) + ", " + q.arg(m.Kind) + ", " + q.arg(*m.SenderID) + ", " +
			q.arg(m.Body) + ", " + q.arg(*m.ClientID) + ", " + q.arg(ms(m.CreatedAt.Time)) + ", " + q.arg(m.FileCount) + ", " + q.arg(nullID(m.ReplyToSeq)) + ", " +
			q.arg(mentionList(m.Mentions)) + ", " + q.arg(m.MentionAll) + ")")
	}
	q.WriteString(` RETURNING id, seq`)
	return q
}

// updateChat moves the chat's last seq and activity.
func (p *sendPlan) updateChat() *query {
	q := &query{}
	q.WriteString(`UPDATE chats SET last_seq = ` + q.arg(p.seq) + `, activity_at = ` + q.arg(ms(p.latest)) + ` WHERE id = ` + q.arg(p.chatID))
	return q
}

// updateMarks moves each sender's read mark to their last message of the batch.
func (p *sendPlan) updateMarks() *query {
	last := map[int64]int64{}
	var senders []int64
	for _, i := range p.fresh {
		m := p.outs[i].Message
		if _, ok := last[*m.SenderID]; !ok {
			senders = append(senders, *m.SenderID)
		}
		last[*m.SenderID] = m.Seq
	}
	q := &query{}
	q.WriteString(`UPDATE members SET last_read_seq = CASE user_id`)
	for _, u := range senders {
		q.WriteString(" WHEN " + q.arg(u) + " THEN " + q.arg(last[u]))
	}
	q.WriteString(` ELSE last_read_seq END WHERE chat_id = ` + q.arg(p.chatID) + ` AND user_id IN (`)
	q.list(senders)
	q.WriteString(")")
	return q
}

// setIDs reads the ids of the inserted messages.
func (p *sendPlan) setIDs(rs *sql.Rows) error {
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

// mentionRules are what a batch's mentions are checked against (send_messages does the same):
// whether @all is allowed in the chat and to whom, and which mentioned users are members.
type mentionRules struct {
	group      bool
	allAdmins  bool             // only the owner and admins may mention @all
	roles      map[int64]string // the senders' roles
	membership map[int64]bool   // the mentioned users who are members
}

// mentionRulesOf reads the rules for the batch's mentions; nothing when it has none.
func mentionRulesOf(ctx context.Context, tx *sql.Tx, chatID int64, batch []*sendReq) (*mentionRules, error) {
	ma := &mentionRules{roles: map[int64]string{}, membership: map[int64]bool{}}
	var users, senders []int64
	for _, r := range batch {
		users = append(users, r.nm.Mentions...)
		if r.nm.MentionAll {
			senders = append(senders, r.nm.SenderID)
		}
	}
	if len(senders) > 0 {
		var kind string
		if err := tx.QueryRowContext(ctx, `SELECT kind, mention_all_admins FROM chats WHERE id = $1`, chatID).Scan(&kind, &ma.allAdmins); err != nil {
			return nil, wrap(err)
		}
		ma.group = kind == chat.KindGroup
	}
	for _, part := range []struct {
		ids  []int64
		role bool
	}{{senders, true}, {users, false}} {
		if len(part.ids) == 0 {
			continue
		}
		q := &query{}
		q.WriteString(`SELECT user_id, role FROM members WHERE chat_id = ` + q.arg(chatID) + ` AND user_id IN (`)
		q.list(part.ids)
		q.WriteString(`)`)
		rs, err := tx.QueryContext(ctx, q.String(), q.args...)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			var id int64
			var role string
			if err := rs.Scan(&id, &role); err != nil {
				rs.Close()
				return nil, err
			}
			if part.role {
				ma.roles[id] = role
			} else {
				ma.membership[id] = true
			}
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, err
		}
	}
	return ma, nil
}

// allowAll reports whether the sender may mention @all.
func (ma *mentionRules) allowAll(sender int64) bool {
	return ma.group && (!ma.allAdmins || isAdmin(ma.roles[sender]))
}

// members keeps the mentioned users who are members, in order.
func (ma *mentionRules) members(ids []int64) []int64 {
	var out []int64
	for _, id := range ids {
		if ma.membership[id] {
			out = append(out, id)
		}
	}
	return out
}

// insertMentions stores the rows that count the new messages' mentions (none for @all, which
// counts by itself); nil when there are none.
func (p *sendPlan) insertMentions() *query {
	q := &query{}
	q.WriteString(`INSERT INTO mentions (user_id, chat_id, seq) VALUES `)
	n := 0
	for _, i := range p.fresh {
		m := p.outs[i].Message
		if m.MentionAll {
			continue
		}
		for _, u := range m.Mentions {
			if n > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(" + q.arg(u) + ", " + q.arg(m.ChatID) + ", " + q.arg(m.Seq) + ")")
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return q
}
