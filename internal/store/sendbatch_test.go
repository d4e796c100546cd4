package store_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
	"github.com/wschat/chat/internal/testdb"
)

// TestGroupCommit fires many sends at one chat at once, so that they are stored in batches:
// members, a stranger and repeated client ids mixed. Every caller must get what a lone send
// would have given it: its own message under a unique gapless seq, the first message again
// for a repeated client id, not_member for the stranger.
func TestGroupCommit(t *testing.T) {
	eachBackendURL(t, func(t *testing.T, handles [2]*store.Store) {
		ctx := context.Background()
		const senders, each = 6, 40
		users := make([]chat.User, senders)
		for i := range users {
			users[i] = mkUser(t, handles[0], fmt.Sprint("S", i))
		}
		stranger := mkUser(t, handles[0], "Stranger")
		id := mkGroup(t, handles[0], users[0], "Batch", false, at(0), users[1:]...)

		type call struct {
			user   chat.User
			client string
			sent   chat.Sent
			err    error
		}
		var calls []*call
		for i := range each {
			for _, u := range users {
				calls = append(calls, &call{user: u, client: fmt.Sprintf("c%d", i)})
			}
			// The same send again (a retry), and a stranger's.
			calls = append(calls, &call{user: users[i%senders], client: fmt.Sprintf("c%d", i)})
			calls = append(calls, &call{user: stranger, client: fmt.Sprintf("x%d", i)})
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, c := range calls {
			wg.Go(func() {
				<-start
				c.sent, c.err = handles[i%2].SendMessage(ctx, chat.NewMessage{ChatID: id, SenderID: c.user.ID,
					Body: c.user.Name + "/" + c.client, ClientID: c.client, Now: time.Now()})
			})
		}
		close(start)
		wg.Wait()

		byKey := map[string]chat.Message{}
		seqs := map[int64]string{}
		for _, c := range calls {
			key := c.user.Name + "/" + c.client
			if c.user.ID == stranger.ID {
				if !errors.Is(c.err, chat.ErrNotMember) {
					t.Errorf("stranger's send: got %v, want not a member", c.err)
				}
				continue
			}
			if c.err != nil {
				t.Fatalf("send %s: %v", key, c.err)
			}
			m := c.sent.Message
			if m.Body != key || m.ID == 0 || *m.SenderID != c.user.ID {
				t.Errorf("send %s: got message %d %q from %d", key, m.ID, m.Body, *m.SenderID)
			}
			if prev, ok := byKey[key]; ok {
				if prev.ID != m.ID || prev.Seq != m.Seq {
					t.Errorf("send %s twice: messages %d (seq %d) and %d (seq %d)", key, prev.ID, prev.Seq, m.ID, m.Seq)
				}
				continue
			}
			byKey[key] = m
			if other, dup := seqs[m.Seq]; dup {
				t.Errorf("seq %d given to %s and %s", m.Seq, other, key)
			}
			seqs[m.Seq] = key
		}
		created := 0
		for _, c := range calls {
			if c.sent.Created {
				created++
			}
		}
		if want := senders * each; created != want || len(seqs) != want {
			t.Fatalf("created %d messages under %d seqs, want %d", created, len(seqs), want)
		}
		for seq := int64(2); seq <= senders*each+1; seq++ {
			if _, ok := seqs[seq]; !ok {
				t.Errorf("seq %d missing: seqs must be gapless", seq)
			}
		}
		page, _, err := handles[1].History(ctx, chat.HistoryQuery{ChatID: id, HasAfter: true, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page[1:] {
			if got := byKey[seqs[m.Seq]]; got.ID != m.ID || got.Body != m.Body {
				t.Errorf("seq %d: stored %d %q, answered %d %q", m.Seq, m.ID, m.Body, got.ID, got.Body)
			}
		}
		// Every sender's read mark is their last message; read_all_seq is the smallest.
		c := chatFor(t, handles[0], users[0], id)
		last := map[int64]int64{}
		for _, m := range byKey {
			last[*m.SenderID] = max(last[*m.SenderID], m.Seq)
		}
		minLast := int64(1 << 62)
		for _, u := range users {
			minLast = min(minLast, last[u.ID])
		}
		ms := members(t, handles[0], id)
		for _, u := range users {
			if got := ms[u.ID].LastReadSeq; got != last[u.ID] {
				t.Errorf("%s: read mark %d, want their last message %d", u.Name, got, last[u.ID])
			}
		}
		if c.LastSeq != senders*each+1 || c.ReadAllSeq != minLast {
			t.Errorf("chat: last seq %d, read all %d; want %d, %d", c.LastSeq, c.ReadAllSeq, senders*each+1, minLast)
		}
	})
}

// TestGroupCommitAcrossChats fires sends at many chats at once, so that one transaction
// stores the sends of several chats: among them a chat that does not exist and a chat the
// sender left. Each chat's seqs must be gapless and every caller answered as if alone.
func TestGroupCommitAcrossChats(t *testing.T) {
	eachBackendURL(t, func(t *testing.T, handles [2]*store.Store) {
		ctx := context.Background()
		const chats, each = 12, 15
		a, b := mkUser(t, handles[0], "A"), mkUser(t, handles[0], "B")
		ids := make([]int64, chats)
		for i := range ids {
			ids[i] = mkGroup(t, handles[0], a, fmt.Sprint("G", i), false, at(0), b)
		}
		left := mkGroup(t, handles[0], a, "Left", false, at(0), b)
		if _, _, err := handles[0].RemoveMember(ctx, left, b.ID, at(1)); err != nil {
			t.Fatal(err)
		}
		const missing = int64(1 << 40)

		type call struct {
			chatID int64
			user   chat.User
			client string
			sent   chat.Sent
			err    error
		}
		var calls []*call
		for i := range each {
			for _, id := range ids {
				calls = append(calls, &call{chatID: id, user: []chat.User{a, b}[i%2], client: fmt.Sprint("c", i)})
			}
			calls = append(calls, &call{chatID: missing, user: a, client: fmt.Sprint("m", i)})
			calls = append(calls, &call{chatID: left, user: b, client: fmt.Sprint("l", i)})
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, c := range calls {
			wg.Go(func() {
				<-start
				c.sent, c.err = handles[i%2].SendMessage(ctx, chat.NewMessage{ChatID: c.chatID, SenderID: c.user.ID,
					Body: fmt.Sprint(c.chatID, "/", c.client), ClientID: c.client, Now: time.Now()})
			})
		}
		close(start)
		wg.Wait()

		seqs := map[int64]map[int64]string{} // chat -> seq -> body
		for _, c := range calls {
			switch c.chatID {
			case missing:
				if !errors.Is(c.err, chat.ErrNotFound) {
					t.Errorf("send to a missing chat: got %v, want not found", c.err)
				}
				continue
			case left:
				if !errors.Is(c.err, chat.ErrNotMember) {
					t.Errorf("send by an ex-member: got %v, want not a member", c.err)
				}
				continue
			}
			if c.err != nil {
				t.Fatalf("send %d/%s: %v", c.chatID, c.client, c.err)
			}
			m := c.sent.Message
			if !c.sent.Created || m.ChatID != c.chatID || m.Body != fmt.Sprint(c.chatID, "/", c.client) || m.ID == 0 {
				t.Errorf("send %d/%s: got %+v", c.chatID, c.client, c.sent)
			}
			if seqs[m.ChatID] == nil {
				seqs[m.ChatID] = map[int64]string{}
			}
			if other, dup := seqs[m.ChatID][m.Seq]; dup {
				t.Errorf("chat %d: seq %d given to %q and %q", m.ChatID, m.Seq, other, m.Body)
			}
			seqs[m.ChatID][m.Seq] = m.Body
		}
		for _, id := range ids {
			page, _, err := handles[1].History(ctx, chat.HistoryQuery{ChatID: id, HasAfter: true, Limit: 500})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) != each+1 {
				t.Fatalf("chat %d: %d messages stored, want %d", id, len(page), each+1)
			}
			for k, m := range page {
				if m.Seq != int64(k+1) {
					t.Fatalf("chat %d: message %d has seq %d: seqs must be gapless", id, k, m.Seq)
				}
				if k > 0 && seqs[id][m.Seq] != m.Body {
					t.Errorf("chat %d seq %d: stored %q, answered %q", id, m.Seq, m.Body, seqs[id][m.Seq])
				}
			}
		}
	})
}

// TestSendBatch stores hand-made batches, past the queue, and checks every answer exactly, on
// both databases alike: seqs in batch order, a repeat within a batch and across batches, a
// stranger and a missing chat among them, several chats in one batch, and the read-all mark
// rising exactly when the last member holding it back sends (reported once, on the chat's last
// stored send of the batch).
func TestSendBatch(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b, c, x := mkUser(t, s, "A"), mkUser(t, s, "B"), mkUser(t, s, "C"), mkUser(t, s, "Stranger")
		id := mkGroup(t, s, a, "Marks", false, at(0), b, c) // seq 1; every read mark 1, read_all 1
		other := mkGroup(t, s, a, "Other", false, at(0), b)
		const missing = int64(1 << 40)
		send := func(chatID int64, u chat.User, client string, n int) chat.NewMessage {
			return chat.NewMessage{ChatID: chatID, SenderID: u.ID, Body: "body " + client, ClientID: client, Now: at(n)}
		}
		type want struct {
			seq     int64 // 0: an error is wanted
			created bool
			readAll chat.ReadAll
			err     error
		}
		stored := map[string]chat.Message{} // by client id, as first answered
		batch := func(step string, nms []chat.NewMessage, wants []want) {
			t.Helper()
			outs, errs := store.SendBatch(s, nms)
			for i, w := range wants {
				nm, got, err := nms[i], outs[i], errs[i]
				if w.err != nil {
					if !errors.Is(err, w.err) {
						t.Errorf("%s, send %d (%s): got %v, want %v", step, i, nm.ClientID, err, w.err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s, send %d (%s): %v", step, i, nm.ClientID, err)
				}
				m := got.Message
				if m.Seq != w.seq || got.Created != w.created || got.ReadAll != w.readAll {
					t.Errorf("%s, send %d (%s): got seq %d created %v read-all %+v; want seq %d created %v read-all %+v",
						step, i, nm.ClientID, m.Seq, got.Created, got.ReadAll, w.seq, w.created, w.readAll)
				}
				if m.ChatID != nm.ChatID || m.Kind != chat.MessageText || *m.SenderID != nm.SenderID || *m.ClientID != nm.ClientID || m.ID == 0 {
					t.Errorf("%s, send %d (%s): got message %+v", step, i, nm.ClientID, m)
				}
				if first, ok := stored[nm.ClientID]; ok {
					if m.ID != first.ID || m.Body != first.Body || !m.CreatedAt.Equal(first.CreatedAt.Time) {
						t.Errorf("%s, send %d (%s): got message %d %q at %v, want the first: %d %q at %v", step, i, nm.ClientID,
							m.ID, m.Body, m.CreatedAt, first.ID, first.Body, first.CreatedAt)
					}
				} else {
					if m.Body != nm.Body || !m.CreatedAt.Equal(nm.Now) {
						t.Errorf("%s, send %d (%s): got body %q at %v, want %q at %v", step, i, nm.ClientID, m.Body, m.CreatedAt, nm.Body, nm.Now)
					}
					stored[nm.ClientID] = m
				}
			}
		}
		// A and B send; C still holds the mark at 1.
		batch("1", []chat.NewMessage{send(id, a, "a1", 1), send(id, b, "b1", 2)}, []want{
			{seq: 2, created: true, readAll: chat.ReadAll{Seq: 1}},
			{seq: 3, created: true, readAll: chat.ReadAll{Seq: 1}},
		})
		// C sends: the least mark is now B's 3, reported on the batch's last send only.
		batch("2", []chat.NewMessage{send(id, c, "c1", 3), send(id, a, "a2", 4)}, []want{
			{seq: 4, created: true, readAll: chat.ReadAll{Seq: 1}},
			{seq: 5, created: true, readAll: chat.ReadAll{Seq: 3, Grown: true}},
		})
		// B (holding the mark at 3) sends once, then repeats it in the batch; A repeats a1 from
		// batch 1; a stranger and a missing chat in between. C's 4 is the least mark now.
		batch("3", []chat.NewMessage{send(id, b, "b2", 5), send(id, x, "x1", 5), send(missing, a, "m1", 5),
			send(id, b, "b2", 6), send(id, a, "a1", 6)}, []want{
			{seq: 6, created: true, readAll: chat.ReadAll{Seq: 4, Grown: true}},
			{err: chat.ErrNotMember},
			{err: chat.ErrNotFound},
			{seq: 6, readAll: chat.ReadAll{Seq: 3}},
			{seq: 2, readAll: chat.ReadAll{Seq: 3}},
		})
		// A is not holding the mark back: it stays.
		batch("4", []chat.NewMessage{send(id, a, "a3", 7)}, []want{{seq: 7, created: true, readAll: chat.ReadAll{Seq: 4}}})
		// Two chats in one batch, interleaved; each numbered and marked on its own.
		batch("5", []chat.NewMessage{send(other, a, "z1", 8), send(id, c, "c2", 8), send(other, b, "z2", 9)}, []want{
			{seq: 2, created: true, readAll: chat.ReadAll{Seq: 1}},
			{seq: 8, created: true, readAll: chat.ReadAll{Seq: 6, Grown: true}},
			{seq: 3, created: true, readAll: chat.ReadAll{Seq: 2, Grown: true}},
		})
		// A batch of nothing but repeats and refusals changes nothing.
		batch("6", []chat.NewMessage{send(id, c, "c2", 10), send(id, x, "x2", 10)}, []want{
			{seq: 8, readAll: chat.ReadAll{Seq: 6}},
			{err: chat.ErrNotMember},
		})

		for _, tc := range []struct {
			chatID, lastSeq, readAll int64
			activity                 time.Time
			marks                    map[int64]int64
		}{
			{id, 8, 6, at(8), map[int64]int64{a.ID: 7, b.ID: 6, c.ID: 8}},
			{other, 3, 2, at(9), map[int64]int64{a.ID: 2, b.ID: 3}},
		} {
			got := chatFor(t, s, a, tc.chatID)
			if got.LastSeq != tc.lastSeq || got.ReadAllSeq != tc.readAll {
				t.Errorf("chat %d: last seq %d, read all %d; want %d, %d", tc.chatID, got.LastSeq, got.ReadAllSeq, tc.lastSeq, tc.readAll)
			}
			if got.LastMessage == nil || !got.LastMessage.CreatedAt.Equal(tc.activity) {
				t.Errorf("chat %d: last message %+v, want one at %v", tc.chatID, got.LastMessage, tc.activity)
			}
			ms := members(t, s, tc.chatID)
			for u, mark := range tc.marks {
				if ms[u].LastReadSeq != mark {
					t.Errorf("chat %d: user %d's read mark %d, want %d", tc.chatID, u, ms[u].LastReadSeq, mark)
				}
			}
			page, _, err := s.History(ctx, chat.HistoryQuery{ChatID: tc.chatID, HasAfter: true, Limit: 50})
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(page)) != tc.lastSeq {
				t.Fatalf("chat %d: %d messages stored, want %d", tc.chatID, len(page), tc.lastSeq)
			}
			for i, m := range page[1:] {
				if m.Seq != int64(i+2) || stored[*m.ClientID].ID != m.ID || stored[*m.ClientID].Seq != m.Seq {
					t.Errorf("chat %d: stored seq %d %q (id %d), answered %+v", tc.chatID, m.Seq, *m.ClientID, m.ID, stored[*m.ClientID])
				}
			}
		}
	})
}

// TestSendCommitOrder sends from many goroutines through two handles on one database and
// checks that seqs follow commit order: a send answered before another began has the lower
// seq (the answer comes after the commit, so this is what a client can see of it).
func TestSendCommitOrder(t *testing.T) {
	const workers, each = 24, 15
	eachBackendURL(t, func(t *testing.T, handles [2]*store.Store) {
		ctx := context.Background()
		users := make([]chat.User, 4)
		for i := range users {
			users[i] = mkUser(t, handles[0], fmt.Sprint("O", i))
		}
		id := mkGroup(t, handles[0], users[0], "Order", false, at(0), users[1:]...)
		var clock atomic.Int64 // a logical clock: start and end of every send, in real order
		type done struct{ start, end, seq int64 }
		results := make([][]done, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					start := clock.Add(1)
					sent, err := handles[(w+i)%2].SendMessage(ctx, chat.NewMessage{ChatID: id, SenderID: users[w%len(users)].ID,
						Body: "m", ClientID: fmt.Sprintf("w%d-%d", w, i), Now: time.Now()})
					end := clock.Add(1)
					if err != nil {
						t.Errorf("worker %d send %d: %v", w, i, err)
						return
					}
					results[w] = append(results[w], done{start, end, sent.Message.Seq})
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		type event struct {
			at, seq int64
			end     bool
		}
		var events []event
		seqs := map[int64]bool{}
		for _, list := range results {
			for _, d := range list {
				events = append(events, event{d.start, d.seq, false}, event{d.end, d.seq, true})
				if seqs[d.seq] {
					t.Errorf("seq %d answered twice", d.seq)
				}
				seqs[d.seq] = true
			}
		}
		for seq := int64(2); seq <= workers*each+1; seq++ {
			if !seqs[seq] {
				t.Errorf("seq %d missing: seqs must be gapless", seq)
			}
		}
		slices.SortFunc(events, func(x, y event) int { return cmp.Compare(x.at, y.at) })
		var answered int64 // the highest seq answered so far
		for _, e := range events {
			switch {
			case e.end:
				answered = max(answered, e.seq)
			case e.seq <= answered:
				t.Errorf("a send began after seq %d was answered and got seq %d", answered, e.seq)
			}
		}
	})
}

// TestSendBatchGrowsWithQueue holds a chat's lock from outside while its sends queue up: the
// first send's batch waits for the lock, the others wait in the queue, and once the lock is
// free all of them are stored by one more call.
func TestSendBatchGrowsWithQueue(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := mkUser(t, s, "A"), mkUser(t, s, "B")
		id := mkGroup(t, s, a, "Queue", false, at(0), b)
		lock, err := s.DB().BeginTx(ctx, nil) // SQLite: an immediate transaction holds the write lock
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Rollback()
		if s.Dialect() == "postgres" {
			if _, err := lock.ExecContext(ctx, `SELECT 1 FROM chats WHERE id = $1 FOR UPDATE`, id); err != nil {
				t.Fatal(err)
			}
		}
		_, _, before := store.SendQueue(s, id)
		const queued = 60
		errs := make(chan error, queued+1)
		sendAs := func(u chat.User, client string) {
			_, err := s.SendMessage(ctx, chat.NewMessage{ChatID: id, SenderID: u.ID, Body: client, ClientID: client, Now: time.Now()})
			errs <- err
		}
		waitQueue := func(what string, cond func(pending int, busy bool) bool) {
			t.Helper()
			deadline := time.Now().Add(8 * time.Second) // SQLite's busy timeout is 10 s
			for {
				pending, busy, _ := store.SendQueue(s, id)
				if cond(pending, busy) {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: %d queued, busy %v", what, pending, busy)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		go sendAs(a, "first")
		waitQueue("the first batch never started", func(pending int, busy bool) bool { return pending == 0 && busy })
		for i := range queued {
			go sendAs([]chat.User{a, b}[i%2], fmt.Sprint("q", i))
		}
		waitQueue("the sends did not queue behind the first batch", func(pending int, busy bool) bool { return pending == queued })
		if err := lock.Rollback(); err != nil {
			t.Fatal(err)
		}
		for range queued + 1 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if _, _, after := store.SendQueue(s, id); after-before != 2 {
			t.Errorf("%d sends took %d batches, want 2: the first alone, then everything queued meanwhile", queued+1, after-before)
		}
		if got := chatFor(t, s, a, id).LastSeq; got != queued+2 {
			t.Errorf("last seq %d, want %d", got, queued+2)
		}
	})
}

// TestSendMessagesUsesIndexes: send_messages keeps the plan it makes at its first call in a
// session, and that call may come on a fresh database whose tables look empty, where scanning
// a table whole looks cheapest; such a plan would scan every stored message at every send
// later on. No call may scan chats, members or messages whole (the counters of the
// transaction tell; a session's counters of earlier transactions may not have been flushed
// yet, hence the difference).
func TestSendMessagesUsesIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, testdb.Postgres(t))
	a, b := mkUser(t, s, "A"), mkUser(t, s, "B")
	id := mkGroup(t, s, a, "Fresh", false, at(0), b)
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	scans := func() map[string]int64 {
		t.Helper()
		rows, err := tx.QueryContext(ctx, `SELECT relname, seq_scan FROM pg_stat_xact_user_tables WHERE relname IN ('chats', 'members', 'messages')`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int64{}
		for rows.Next() {
			var table string
			var n int64
			if err := rows.Scan(&table, &n); err != nil {
				t.Fatal(err)
			}
			out[table] = n
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := scans()
	for i := range 3 {
		rows, err := tx.QueryContext(ctx, `SELECT * FROM send_messages($1, $2, $3, $4, $5)`,
			[]int64{id, id}, []int64{a.ID, b.ID}, []string{fmt.Sprint("a", i), fmt.Sprint("b", i)}, []string{"x", "y"}, []int64{1, 2})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil || n != 2 {
			t.Fatalf("call %d: %d rows, %v", i, n, err)
		}
	}
	after := scans()
	if len(after) != 3 {
		t.Fatalf("counters of %v, want chats, members and messages", after)
	}
	for table, n := range after {
		if d := n - before[table]; d != 0 {
			t.Errorf("%s scanned whole %d times in 3 calls", table, d)
		}
	}
}

// TestQueueMessageKeepsOrder queues sends one after another without waiting, as a connection
// with several sends in flight would, while others send to the same chat through both handles:
// the queued sends get their seqs in the order they were queued.
func TestQueueMessageKeepsOrder(t *testing.T) {
	eachBackendURL(t, func(t *testing.T, handles [2]*store.Store) {
		ctx := context.Background()
		a, b := mkUser(t, handles[0], "A"), mkUser(t, handles[0], "B")
		id := mkGroup(t, handles[0], a, "Pipelined", false, at(0), b)
		var wg sync.WaitGroup
		for w := range 4 { // the others: B sends one at a time through both handles
			wg.Go(func() {
				for i := range 25 {
					if _, err := handles[(w+i)%2].SendMessage(ctx, chat.NewMessage{ChatID: id, SenderID: b.ID, Body: "other",
						ClientID: fmt.Sprintf("o%d-%d", w, i), Now: time.Now()}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		const n = 200
		waits := make([]func() (chat.Sent, error), n)
		for i := range waits {
			waits[i] = handles[0].QueueMessage(ctx, chat.NewMessage{ChatID: id, SenderID: a.ID, Body: fmt.Sprint(i),
				ClientID: fmt.Sprint("p", i), Now: time.Now()})
		}
		var prev int64
		for i, wait := range waits {
			sent, err := wait()
			if err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
			if sent.Message.Seq <= prev || sent.Message.Body != fmt.Sprint(i) || !sent.Created {
				t.Errorf("send %d: seq %d after %d, body %q, created %v", i, sent.Message.Seq, prev, sent.Message.Body, sent.Created)
			}
			prev = sent.Message.Seq
		}
		wg.Wait()
	})
}

// TestMigration00013: send_messages is a procedure since 00013; down to 12 the statement of
// 00011 is back and sends go on where the procedure left them (the next seq, a repeat answered
// with its message), and up again the procedure takes over from the statement.
func TestMigration00013(t *testing.T) {
	eachUnmigrated(t, func(t *testing.T, ctx context.Context, name string, s *store.Store) {
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		a, b := mkUser(t, s, "a"), mkUser(t, s, "b")
		g := mkGroup(t, s, a, "g", false, at(0), b) // seq 1
		send := func(step, client string, wantSeq int64, wantCreated bool) {
			t.Helper()
			out, err := s.SendMessage(ctx, chat.NewMessage{ChatID: g, SenderID: b.ID, Body: "body " + client, ClientID: client, Now: at(2)})
			if err != nil || out.Message.Seq != wantSeq || out.Created != wantCreated || out.Message.Body != "body "+client {
				t.Fatalf("%s: send %s: seq %d created %v body %q, %v; want seq %d created %v", step, client,
					out.Message.Seq, out.Created, out.Message.Body, err, wantSeq, wantCreated)
			}
		}
		// Which send_messages is in place: the statement of 00011 is one query over a WITH
		// whose first part is req; the procedure has none.
		isStatement := func(step string, want bool) {
			t.Helper()
			if name != "postgres" {
				return
			}
			var src string
			if err := s.DB().QueryRow(`SELECT prosrc FROM pg_proc WHERE proname = 'send_messages'`).Scan(&src); err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(src, "WITH req AS"); got != want {
				t.Fatalf("%s: send_messages is the statement of 00011: %v, want %v", step, got, want)
			}
		}
		isStatement("latest", false)
		send("latest", "m1", 2, true)
		if err := store.MigrateTo(ctx, s, 12); err != nil {
			t.Fatal(err)
		}
		isStatement("at 12", true)
		send("at 12", "m2", 3, true)
		send("at 12", "m1", 2, false)
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		isStatement("up again", false)
		send("up again", "m3", 4, true)
		send("up again", "m2", 3, false)
		if c := chatFor(t, s, a, g); c.LastSeq != 4 || c.UnreadCount != 3 {
			t.Errorf("chat after the sends: last seq %d, unread for the owner %d; want 4, 3", c.LastSeq, c.UnreadCount)
		}
	})
}

// TestObserveSendBatches: each call that stores sends is reported once, with the sends it
// held (over all its chats) and its outcome; a lone send is a call of one.
func TestObserveSendBatches(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		a, b := mkUser(t, s, "A"), mkUser(t, s, "B")
		g1 := mkGroup(t, s, a, "One", false, at(0), b)
		g2 := mkGroup(t, s, a, "Two", false, at(0), b)
		var mu sync.Mutex
		var calls []int
		s.ObserveSendBatches(func(sends int, d time.Duration, err error) {
			if err != nil || d <= 0 {
				t.Errorf("call of %d sends reported %v, %v", sends, d, err)
			}
			mu.Lock()
			calls = append(calls, sends)
			mu.Unlock()
		})
		nm := func(chatID int64, client string) chat.NewMessage {
			return chat.NewMessage{ChatID: chatID, SenderID: a.ID, Body: client, ClientID: client, Now: at(1)}
		}
		if _, errs := store.SendBatch(s, []chat.NewMessage{nm(g1, "x1"), nm(g2, "y1"), nm(g1, "x2")}); errs[0] != nil || errs[1] != nil || errs[2] != nil {
			t.Fatal(errs)
		}
		if _, err := s.SendMessage(context.Background(), nm(g2, "y2")); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(calls, []int{3, 1}) {
			t.Errorf("calls reported %v, want [3 1]", calls)
		}
	})
}
