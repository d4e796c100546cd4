package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
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
