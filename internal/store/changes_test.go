package store_test

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
)

func edit(s *store.Store, chatID, seq int64, by chat.User, body string, n int, window time.Duration) (chat.Changed, error) {
	return s.EditMessage(context.Background(), chat.MessageEdit{ChatID: chatID, Seq: seq, UserID: by.ID, Body: body, Now: at(n), Window: window})
}

func react(s *store.Store, chatID, seq int64, by chat.User, emoji string, add bool, n int) (chat.Reacted, error) {
	return s.React(context.Background(), chat.ReactionChange{ChatID: chatID, Seq: seq, UserID: by.ID, Emoji: emoji, Add: add, Now: at(n)})
}

func lastRev(t *testing.T, s *store.Store, chatID int64) int64 {
	t.Helper()
	var rev int64
	if err := s.DB().QueryRow(`SELECT last_rev FROM chats WHERE id = $1`, chatID).Scan(&rev); err != nil {
		t.Fatal(err)
	}
	return rev
}

func messageAt(t *testing.T, s *store.Store, chatID, seq int64) chat.Message {
	t.Helper()
	m, err := s.Message(context.Background(), chatID, seq)
	if err != nil {
		t.Fatalf("message %d of chat %d: %v", seq, chatID, err)
	}
	return m
}

func TestEditMessage(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		a, b, out := mkUser(t, s, "a"), mkUser(t, s, "b"), mkUser(t, s, "out")
		g := mkGroup(t, s, a, "g", true, at(0), b)
		m := send(t, s, g, a, "helo", at(1)).Message
		day := 24 * time.Hour

		c, err := edit(s, g, m.Seq, a, "hello", 2, day)
		if err != nil || !c.Changed || c.Message.Body != "hello" || c.Message.Rev != 1 || c.Message.EditedAt == nil || c.At != m.Seq {
			t.Fatalf("edit: %+v, %v; want body hello, rev 1, edited, at %d", c, err, m.Seq)
		}
		if got := messageAt(t, s, g, m.Seq); got.Body != "hello" || got.Rev != 1 || !got.EditedAt.Equal(at(2)) {
			t.Errorf("history after edit: %+v", got)
		}
		// The same body is no change and takes no rev.
		if c, err := edit(s, g, m.Seq, a, "hello", 3, day); err != nil || c.Changed || c.Message.Rev != 1 {
			t.Errorf("same body: %+v, %v; want unchanged at rev 1", c, err)
		}
		_, err = edit(s, g, m.Seq, b, "mine now", 3, day)
		wantErr(t, "another member edits", err, chat.ErrNotAuthor)
		_, err = edit(s, g, m.Seq, out, "x", 3, day)
		wantErr(t, "a non-member edits", err, chat.ErrNotMember)
		_, err = edit(s, g, 1, a, "x", 3, day)
		wantErr(t, "edit of the chat_created message", err, chat.ErrSystemMessage)
		_, err = edit(s, g, 99, a, "x", 3, day)
		wantErr(t, "edit of an unknown seq", err, chat.ErrNoMessage)
		_, err = edit(s, g, m.Seq, a, "late", 1+int(day/time.Second)+1, day)
		wantErr(t, "edit after the window", err, chat.ErrEditWindow)
		// The same body after the window is still no change: a retry whose answer was lost.
		if c, err := edit(s, g, m.Seq, a, "hello", 1+int(day/time.Second)+1, day); err != nil || c.Changed || c.Message.Rev != 1 {
			t.Errorf("same body after the window: %+v, %v; want unchanged at rev 1", c, err)
		}
		if c, err := edit(s, g, m.Seq, a, "forever", 1+int(day/time.Second)+1, 0); err != nil || !c.Changed {
			t.Errorf("edit with no window: %+v, %v", c, err)
		}
		if _, err := s.DeleteMessage(context.Background(), g, m.Seq, a.ID, at(5)); err != nil {
			t.Fatal(err)
		}
		_, err = edit(s, g, m.Seq, a, "back", 6, 0)
		wantErr(t, "edit of a deleted message", err, chat.ErrMessageDeleted)
		if got := lastRev(t, s, g); got != 3 {
			t.Errorf("last_rev %d, want 3 (two edits and a delete)", got)
		}
		// An ex-member edits nothing, not even their own message.
		bm := send(t, s, g, b, "bye", at(7)).Message
		if _, err := kick(s, g, a, b, 8); err != nil {
			t.Fatal(err)
		}
		_, err = edit(s, g, bm.Seq, b, "x", 9, 0)
		wantErr(t, "an ex-member edits", err, chat.ErrNotMember)
	})
}

// A repeat of a send (its client id again, a client's retry) is answered with the message as
// it stands, as history reads it: its edit, reactions and reply quote, not only what the send's
// call returns.
func TestRepeatAnswersTheMessageAsItStands(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := mkUser(t, s, "a"), mkUser(t, s, "b")
		g := mkGroup(t, s, a, "g", true, at(0), b)
		quoted := send(t, s, g, b, "the question", at(1)).Message
		nm := chat.NewMessage{ChatID: g, SenderID: a.ID, Body: "the answr", ClientID: "r1", ReplyToSeq: quoted.Seq, Now: at(2)}
		first, err := s.SendMessage(ctx, nm)
		if err != nil || !first.Created {
			t.Fatalf("reply: %+v, %v", first, err)
		}
		if _, err := edit(s, g, first.Message.Seq, a, "the answer", 3, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := react(s, g, first.Message.Seq, b, "👍", true, 4); err != nil {
			t.Fatal(err)
		}
		nm.Now = at(5)
		again, err := s.SendMessage(ctx, nm)
		if err != nil || again.Created {
			t.Fatalf("repeat: %+v, %v; want the stored message, Created=false", again, err)
		}
		m := again.Message
		if m.Seq != first.Message.Seq || m.Body != "the answer" || m.EditedAt == nil || m.ReplyToSeq != quoted.Seq ||
			m.ReplyTo == nil || m.ReplyTo.BodyPreview != "the question" || len(m.Reactions) != 1 || m.Reactions[0].Emoji != "👍" {
			t.Errorf("repeat answered %+v (reply to %+v, reactions %+v); want seq %d edited to \"the answer\", quoting %q, with b's 👍",
				m, m.ReplyTo, m.Reactions, first.Message.Seq, quoted.Body)
		}
		if want := messageAt(t, s, g, m.Seq); !reflect.DeepEqual(m, want) {
			t.Errorf("repeat answered\n%+v\nhistory holds\n%+v", m, want)
		}
	})
}

func TestDeleteMessage(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner, admin, a, b := mkUser(t, s, "owner"), mkUser(t, s, "admin"), mkUser(t, s, "a"), mkUser(t, s, "b")
		g := mkGroup(t, s, owner, "g", false, at(0), admin, a, b)
		if _, _, err := setRole(s, g, owner, admin, chat.RoleAdmin, 1); err != nil {
			t.Fatal(err)
		}
		m1 := send(t, s, g, a, "secret one", at(2)).Message
		m2 := send(t, s, g, a, "secret two", at(3)).Message
		m3 := send(t, s, g, a, "secret three", at(4)).Message
		if _, err := react(s, g, m3.Seq, b, "👍", true, 5); err != nil {
			t.Fatal(err)
		}
		before := chatFor(t, s, b, g).UnreadCount

		_, err := s.DeleteMessage(ctx, g, m1.Seq, b.ID, at(6))
		wantErr(t, "another member deletes", err, chat.ErrNotAuthor)
		_, err = s.DeleteMessage(ctx, g, 1, owner.ID, at(6))
		wantErr(t, "delete of a system message", err, chat.ErrSystemMessage)
		_, err = s.DeleteMessage(ctx, g, 99, a.ID, at(6))
		wantErr(t, "delete of an unknown seq", err, chat.ErrNoMessage)
		for _, x := range []struct {
			seq int64
			by  chat.User
		}{{m1.Seq, a}, {m2.Seq, admin}, {m3.Seq, owner}} {
			c, err := s.DeleteMessage(ctx, g, x.seq, x.by.ID, at(7))
			if err != nil || !c.Changed || c.Message.DeletedAt == nil || c.Message.Body != "" {
				t.Fatalf("delete of %d by %s: %+v, %v", x.seq, x.by.Name, c, err)
			}
		}
		if c, err := s.DeleteMessage(ctx, g, m1.Seq, a.ID, at(8)); err != nil || c.Changed {
			t.Errorf("a second delete: %+v, %v; want no change", c, err)
		}
		// Erased everywhere: history, changes, the chat list, the database's rows.
		msgs, _, err := s.History(ctx, chat.HistoryQuery{ChatID: g, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if strings.Contains(m.Body, "secret") || len(m.Reactions) > 0 {
				t.Errorf("history shows a deleted message: %+v", m)
			}
		}
		page, err := s.Changes(ctx, g, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Messages {
			if m.Body != "" || m.DeletedAt == nil || len(m.Reactions) > 0 {
				t.Errorf("changes show a deleted message's content: %+v", m)
			}
		}
		sum := chatFor(t, s, b, g)
		if lm := sum.LastMessage; lm == nil || lm.Seq != m3.Seq || lm.DeletedAt == nil || lm.Body != "" {
			t.Errorf("last_message %+v; want seq %d deleted", lm, m3.Seq)
		}
		if sum.UnreadCount != before-3 || sum.UnreadCount != 0 {
			t.Errorf("unread %d (before %d); deleted messages are not unread", sum.UnreadCount, before)
		}
		var n int
		if err := s.DB().QueryRow(`SELECT count(*) FROM messages WHERE body LIKE '%secret%'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d rows still hold a deleted body (%v)", n, err)
		}
		if err := s.DB().QueryRow(`SELECT count(*) FROM reactions WHERE chat_id = $1`, g).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d reactions of deleted messages remain (%v)", n, err)
		}
		// In a private chat only the author deletes.
		p := mkPrivate(t, s, a, b, at(9))
		pm := send(t, s, p, a, "hi", at(10)).Message
		_, err = s.DeleteMessage(ctx, p, pm.Seq, b.ID, at(11))
		wantErr(t, "the peer deletes in a private chat", err, chat.ErrNotAuthor)
	})
}

func TestReactions(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		a, b, out := mkUser(t, s, "a"), mkUser(t, s, "b"), mkUser(t, s, "out")
		g := mkGroup(t, s, a, "g", true, at(0), b)
		m := send(t, s, g, a, "hi", at(1)).Message

		r, err := react(s, g, m.Seq, a, "👍", true, 2)
		if err != nil || !r.Changed || r.Count != 1 || r.Rev != 1 {
			t.Fatalf("first reaction: %+v, %v", r, err)
		}
		if r, err := react(s, g, m.Seq, a, "👍", true, 3); err != nil || r.Changed || r.Count != 1 || r.Rev != 1 {
			t.Errorf("the same reaction again: %+v, %v; want no change", r, err)
		}
		if r, err := react(s, g, m.Seq, b, "👍", true, 4); err != nil || !r.Changed || r.Count != 2 || r.Rev != 2 {
			t.Errorf("a second user: %+v, %v", r, err)
		}
		if r, err := react(s, g, m.Seq, b, "🎉", true, 5); err != nil || !r.Changed || r.Count != 1 {
			t.Errorf("a second emoji: %+v, %v", r, err)
		}
		got := messageAt(t, s, g, m.Seq).Reactions
		want := []chat.Reaction{{Emoji: "👍", Count: 2, UserIDs: []int64{a.ID, b.ID}}, {Emoji: "🎉", Count: 1, UserIDs: []int64{b.ID}}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("reactions %v, want %v", got, want)
		}
		if r, err := react(s, g, m.Seq, a, "🎉", false, 6); err != nil || r.Changed {
			t.Errorf("removing a reaction one never made: %+v, %v; want no change", r, err)
		}
		if r, err := react(s, g, m.Seq, a, "👍", false, 6); err != nil || !r.Changed || r.Count != 1 || r.Rev != 4 {
			t.Errorf("removing: %+v, %v", r, err)
		}
		_, err = react(s, g, m.Seq, out, "👍", true, 7)
		wantErr(t, "a non-member reacts", err, chat.ErrNotMember)
		_, err = react(s, g, 1, a, "👍", true, 7)
		wantErr(t, "a reaction to a system message", err, chat.ErrSystemMessage)
		_, err = react(s, g, 42, a, "👍", true, 7)
		wantErr(t, "a reaction to an unknown seq", err, chat.ErrNoMessage)
		// At most MaxReactions distinct emoji; more users of one already there are fine.
		emojis := []rune("😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙😚🙂🤗🤩🤔")
		for i := 0; len(messageAt(t, s, g, m.Seq).Reactions) < chat.MaxReactions; i++ {
			if _, err := react(s, g, m.Seq, a, string(emojis[i]), true, 8); err != nil {
				t.Fatalf("reaction %d: %v", i, err)
			}
		}
		_, err = react(s, g, m.Seq, b, "🙈", true, 9)
		wantErr(t, "one emoji too many", err, chat.ErrTooManyReaction)
		if _, err := react(s, g, m.Seq, a, "🎉", true, 9); err != nil {
			t.Errorf("another user of an emoji already there: %v", err)
		}
	})
}

// TestRevGapless: edits, reactions and deletes from many goroutines on two handles (two
// instances) of one database, while sends go on: every change takes its own rev, and the revs
// are 1..N with no gap; sends keep gapless seqs.
func TestRevGapless(t *testing.T) {
	eachBackendURL(t, func(t *testing.T, h [2]*store.Store) {
		ctx := context.Background()
		users := []chat.User{mkUser(t, h[0], "a"), mkUser(t, h[0], "b"), mkUser(t, h[0], "c"), mkUser(t, h[0], "d")}
		g := mkGroup(t, h[0], users[0], "g", false, at(0), users[1:]...)
		var targets []int64
		for i := range 8 {
			targets = append(targets, send(t, h[0], g, users[i%4], "m", at(1)).Message.Seq)
		}
		var mu sync.Mutex
		var revs []int64
		var sends int
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, u := h[w%2], users[w%4]
				for i := range 20 {
					seq := targets[(w+i)%len(targets)]
					var rev int64
					var changed bool
					var err error
					switch i % 4 {
					case 0, 1:
						var r chat.Reacted
						r, err = react(s, g, seq, u, []string{"👍", "🎉", "❤️"}[i%3], i%2 == 0, 2+i)
						rev, changed = r.Rev, r.Changed
					case 2:
						var c chat.Changed
						c, err = edit(s, g, seq, u, fmt.Sprintf("w%d i%d", w, i), 2+i, 0)
						if err == chat.ErrNotAuthor || err == chat.ErrMessageDeleted {
							err = nil
						}
						rev, changed = c.Message.Rev, c.Changed
					case 3:
						_, err = s.SendMessage(ctx, chat.NewMessage{ChatID: g, SenderID: u.ID, Body: "x", ClientID: fmt.Sprintf("w%d-%d", w, i), Now: at(2 + i)})
						mu.Lock()
						sends++
						mu.Unlock()
					}
					if err != nil && err != chat.ErrMessageDeleted {
						t.Errorf("worker %d step %d: %v", w, i, err)
					}
					if changed {
						mu.Lock()
						revs = append(revs, rev)
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		slices.Sort(revs)
		for i, r := range revs {
			if r != int64(i+1) {
				t.Fatalf("revs %v: not 1..%d", revs, len(revs))
			}
		}
		if got := lastRev(t, h[0], g); got != int64(len(revs)) {
			t.Errorf("last_rev %d, want %d", got, len(revs))
		}
		seqs, _ := history(t, h[0], chat.HistoryQuery{ChatID: g, Limit: 200})
		if want := seqRange(1, int64(1+8+sends)); !slices.Equal(seqs, want) {
			t.Errorf("seqs %v, want %v", seqs, want)
		}
	})
}

// TestChanges: the latest state of each message changed after a rev, once each, in rev
// order, in pages; with the chat's last seq as of the read.
func TestChanges(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := mkUser(t, s, "a")
		g := mkGroup(t, s, a, "g", false, at(0))
		var seqs []int64
		for i := range 5 {
			seqs = append(seqs, send(t, s, g, a, fmt.Sprint("m", i), at(1)).Message.Seq)
		}
		// rev 1..10: two edits of each message, in turns.
		for round := range 2 {
			for i, seq := range seqs {
				if _, err := edit(s, g, seq, a, fmt.Sprintf("m%d v%d", i, round+1), 2, 0); err != nil {
					t.Fatal(err)
				}
			}
		}
		page, err := s.Changes(ctx, g, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range page.Messages {
			got = append(got, fmt.Sprintf("%d@%d:%s", m.Seq, m.Rev, m.Body))
		}
		want := []string{"2@6:m0 v2", "3@7:m1 v2", "4@8:m2 v2", "5@9:m3 v2", "6@10:m4 v2"}
		if !slices.Equal(got, want) || page.More || page.LastSeq != 6 {
			t.Errorf("changes after 0: %v more=%v last_seq=%d; want %v, no more, last seq 6", got, page.More, page.LastSeq, want)
		}
		page, err = s.Changes(ctx, g, 8, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Messages) != 1 || page.Messages[0].Rev != 9 || !page.More {
			t.Errorf("a page of one after rev 8: %+v", page)
		}
		if page, err = s.Changes(ctx, g, 10, 10); err != nil || len(page.Messages) != 0 || page.More {
			t.Errorf("changes after the last rev: %+v, %v", page, err)
		}
	})
}

// TestChatHeads: each chat's last seq and last rev, read in batches (more ids than one
// statement takes); an unknown chat is left out.
func TestChatHeads(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		a, b := mkUser(t, s, "a"), mkUser(t, s, "b")
		g, h := mkGroup(t, s, a, "g", false, at(0), b), mkGroup(t, s, a, "h", false, at(0))
		m := send(t, s, g, a, "m", at(1)).Message
		send(t, s, g, a, "n", at(1))
		if _, err := edit(s, g, m.Seq, a, "m v2", 2, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.MarkRead(context.Background(), g, b.ID, m.Seq); err != nil { // b has read m, not n
			t.Fatal(err)
		}
		ids := []int64{g, h}
		for i := range 1200 { // unknown ids, so that the read takes three statements
			ids = append(ids, 1<<40+int64(i))
		}
		heads, err := s.ChatHeads(context.Background(), ids)
		if err != nil {
			t.Fatal(err)
		}
		want := map[int64]chat.ChatHead{g: {Seq: 3, Rev: 1, ReadAll: 2}, h: {Seq: 1, Rev: 0, ReadAll: 1}}
		if !maps.Equal(heads, want) {
			t.Errorf("heads %v, want %v", heads, want)
		}
	})
}

// TestChatIDsOfUsers: each user's chats, a user who left one no longer listed in it, a user in
// none left out, over more ids than one statement takes.
func TestChatIDsOfUsers(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b, c, d := mkUser(t, s, "a"), mkUser(t, s, "b"), mkUser(t, s, "c"), mkUser(t, s, "d")
		g := mkGroup(t, s, a, "g", false, at(0), b, c)
		h := mkGroup(t, s, a, "h", false, at(0), b)
		if _, _, err := s.RemoveMember(ctx, g, c.ID, at(1)); err != nil {
			t.Fatal(err)
		}
		ids := []int64{a.ID, b.ID, c.ID, d.ID}
		for i := range 1200 { // unknown ids, so that the read takes three statements
			ids = append(ids, 1<<40+int64(i))
		}
		got, err := s.ChatIDsOfUsers(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		want := map[int64][]int64{a.ID: {g, h}, b.ID: {g, h}}
		if !maps.EqualFunc(got, want, slices.Equal) {
			t.Errorf("chats %v, want %v", got, want)
		}
	})
}

// TestMigration00009: the migration adds revs to a database with messages, which keep their
// bodies and seqs and have rev 0; it goes down and up again.
func TestMigration00009(t *testing.T) {
	eachUnmigrated(t, func(t *testing.T, ctx context.Context, name string, s *store.Store) {
		const before = 8 // the version before 00009
		if err := store.MigrateTo(ctx, s, before); err != nil {
			t.Fatal(err)
		}
		a := mkUserRaw(t, s, "a@m9.test")
		g := mkGroup(t, s, a, "g", false, at(0))
		if _, err := s.DB().Exec(`INSERT INTO messages (chat_id, seq, kind, sender_id, body, client_id, created_at) VALUES ($1, 2, 'text', $2, 'old', 'c1', 0)`, g, a.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB().Exec(`UPDATE chats SET last_seq = 2 WHERE id = $1`, g); err != nil {
			t.Fatal(err)
		}
		for range 2 { // up, then down and up again
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			m := messageAt(t, s, g, 2)
			if m.Body != "old" || m.Rev != 0 || m.EditedAt != nil || m.DeletedAt != nil {
				t.Errorf("an old message after the migration: %+v", m)
			}
			if c, err := edit(s, g, 2, a, "new", 1, 0); err != nil || c.Message.Rev != 1 {
				t.Errorf("edit after the migration: %+v, %v", c, err)
			}
			if _, err := react(s, g, 2, a, "👍", true, 1); err != nil {
				t.Errorf("react after the migration: %v", err)
			}
			if _, err := s.SendMessage(ctx, chat.NewMessage{ChatID: g, SenderID: a.ID, Body: "hi", ClientID: fmt.Sprint("m9-", time.Now().UnixNano()), Now: at(1)}); err != nil {
				t.Errorf("send after the migration: %v", err)
			}
			if err := store.MigrateTo(ctx, s, before); err != nil {
				t.Fatalf("down to %d: %v", before, err)
			}
			if _, err := s.DB().Exec(`UPDATE messages SET body = 'old' WHERE chat_id = $1 AND seq = 2`, g); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// mkUserRaw stores a user with plain SQL, which any schema version takes.
func mkUserRaw(t *testing.T, s *store.Store, email string) chat.User {
	t.Helper()
	u := chat.User{Email: email, Name: "a"}
	if err := s.DB().QueryRow(`INSERT INTO users (email, name, name_fold, password_hash, created_at) VALUES ($1, 'a', 'a', 'x', 0) RETURNING id`,
		email).Scan(&u.ID); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestReplies: a send may answer a message of its chat; the reply carries a quote of it (the
// first 100 characters), which follows the answered message's delete. A reply to a seq the
// chat does not have stores nothing.
func TestReplies(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := mkUser(t, s, "a"), mkUser(t, s, "b")
		g := mkGroup(t, s, a, "g", false, at(0), b)
		long := strings.Repeat("é", 99) + "xyz"
		q := send(t, s, g, a, long, at(1)).Message
		r, err := s.SendMessage(ctx, chat.NewMessage{ChatID: g, SenderID: b.ID, Body: "answer", ClientID: "r1", ReplyToSeq: q.Seq, Now: at(2)})
		if err != nil {
			t.Fatal(err)
		}
		check := func(what string, m chat.Message, deleted bool) {
			t.Helper()
			want := strings.Repeat("é", 99) + "x"
			if deleted {
				want = ""
			}
			if m.ReplyTo == nil || m.ReplyTo.Seq != q.Seq || m.ReplyTo.SenderID == nil || *m.ReplyTo.SenderID != a.ID ||
				m.ReplyTo.BodyPreview != want || m.ReplyTo.Deleted != deleted {
				t.Errorf("%s: reply_to %+v, want a quote of %d (deleted %v)", what, m.ReplyTo, q.Seq, deleted)
			}
		}
		check("the send's answer", r.Message, false)
		check("history", messageAt(t, s, g, r.Message.Seq), false)
		_, err = s.SendMessage(ctx, chat.NewMessage{ChatID: g, SenderID: b.ID, Body: "to the future", ClientID: "r2", ReplyToSeq: r.Message.Seq + 5, Now: at(3)})
		wantErr(t, "a reply to a seq the chat does not have", err, chat.ErrNoReplyTarget)
		if got := chatFor(t, s, a, g).LastSeq; got != r.Message.Seq {
			t.Errorf("last seq %d after a refused reply, want %d", got, r.Message.Seq)
		}
		if _, err := s.DeleteMessage(ctx, g, q.Seq, a.ID, at(4)); err != nil {
			t.Fatal(err)
		}
		check("history after the answered message was deleted", messageAt(t, s, g, r.Message.Seq), true)
		// A deleted reply quotes nothing.
		if _, err := s.DeleteMessage(ctx, g, r.Message.Seq, b.ID, at(5)); err != nil {
			t.Fatal(err)
		}
		if m := messageAt(t, s, g, r.Message.Seq); m.ReplyTo != nil {
			t.Errorf("a deleted reply still quotes: %+v", m.ReplyTo)
		}
	})
}

// TestDeleteMessageFiles: a deleted message's files are nobody's: no member may download them
// and the janitor's next pass deletes them.
func TestDeleteMessageFiles(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := mkUser(t, s, "a"), mkUser(t, s, "b")
		g := mkGroup(t, s, a, "g", false, at(0), b)
		f1, f2 := upload(t, s, g, a, 10, at(1)), upload(t, s, g, a, 20, at(1))
		m := sendFiles(t, s, g, a, "two files", at(2), f1.ID, f2.ID).Message
		keep := sendFiles(t, s, g, a, "one file", at(2), upload(t, s, g, a, 30, at(1)).ID).Message
		if got := messageAt(t, s, g, m.Seq); len(got.Files) != 2 {
			t.Fatalf("before the delete: %d files", len(got.Files))
		}
		usage := func() chat.FileUsage {
			t.Helper()
			u, err := s.FileUsage(ctx, a.ID, g, at(0))
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		if u := usage(); u.UserBytes != 60 || u.ChatBytes != 60 {
			t.Fatalf("usage before the delete: %+v, want 60 bytes of the user's, 60 of the chat's", u)
		}
		if _, err := tryUpload(s, g, a, 1, at(2), 60, 1<<40); err == nil {
			t.Fatal("an upload past the day's quota was stored")
		}
		if _, err := s.DeleteMessage(ctx, g, m.Seq, a.ID, at(3)); err != nil {
			t.Fatal(err)
		}
		// The deleted message's files stop counting at once, before the janitor deletes them.
		if u := usage(); u.UserBytes != 30 || u.ChatBytes != 30 || !u.UserOldest.Equal(at(1)) {
			t.Errorf("usage after the delete: %+v, want 30 bytes of the user's (the kept file's, uploaded at %v), 30 of the chat's", u, at(1))
		}
		if _, err := tryUpload(s, g, a, 30, at(4), 60, 60); err != nil {
			t.Errorf("an upload into what the delete freed: %v", err)
		}
		if got := messageAt(t, s, g, m.Seq); len(got.Files) != 0 {
			t.Errorf("a deleted message shows %d files", len(got.Files))
		}
		for _, f := range []chat.File{f1, f2} {
			_, err := s.FileFor(ctx, b.ID, f.ID)
			wantErr(t, "a member downloads a deleted message's file", err, chat.ErrNotFound)
		}
		ids := expiredIDs(t, s, at(0))
		if want := []int64{f1.ID, f2.ID}; !slices.Equal(ids, want) {
			t.Errorf("the janitor finds %v, want the deleted message's files %v", ids, want)
		}
		if got := messageAt(t, s, g, keep.Seq); len(got.Files) != 1 {
			t.Errorf("another message lost its file: %+v", got.Files)
		}
	})
}

// TestDeletedGroupUploads: a deleted group's uploads that no message had taken yet stop
// counting toward their uploader's day with the delete, and the janitor's next pass deletes
// them, as a deleted message's files: nobody may attach or download them any more. They
// counted, and stayed, for the hour an unattached upload is kept.
func TestDeletedGroupUploads(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := mkUser(t, s, "a"), mkUser(t, s, "b")
		g := mkGroup(t, s, a, "g", false, at(0), b)
		other := mkGroup(t, s, a, "other", false, at(0))
		f1, f2 := upload(t, s, g, a, 10, at(1)), upload(t, s, g, b, 20, at(1))
		kept := upload(t, s, other, a, 30, at(1))
		if _, err := s.DeleteChat(ctx, g, a.ID, at(2)); err != nil {
			t.Fatal(err)
		}
		for _, w := range []struct {
			user chat.User
			want int64
		}{{a, 30}, {b, 0}} {
			u, err := s.FileUsage(ctx, w.user.ID, other, at(0))
			if err != nil {
				t.Fatal(err)
			}
			if u.UserBytes != w.want {
				t.Errorf("%s's day after the group's delete: %d bytes, want %d", w.user.Name, u.UserBytes, w.want)
			}
		}
		// The janitor's pass of now (unattached uploads of the last hour are not due yet).
		ids := expiredIDs(t, s, at(0))
		if want := []int64{f1.ID, f2.ID}; !slices.Equal(ids, want) {
			t.Errorf("the janitor finds %v, want the deleted group's uploads %v (not %d)", ids, want, kept.ID)
		}
	})
}

// TestMigration00016: reactions stored as the same emoji typed two ways ("❤" and "❤️", "👍"
// with a needless U+FE0F) become one, spelled as chat.NormalizeEmoji spells it; a user who
// had both keeps one, at the earlier time; the messages changed take a new rev.
func TestMigration00016(t *testing.T) {
	eachUnmigrated(t, func(t *testing.T, ctx context.Context, name string, s *store.Store) {
		const before = 15
		if err := store.MigrateTo(ctx, s, before); err != nil {
			t.Fatal(err)
		}
		a, b := mkUserRaw(t, s, "a@m16.test"), mkUserRaw(t, s, "b@m16.test")
		g := mkGroup(t, s, a, "g", false, at(0))
		for seq := int64(2); seq <= 4; seq++ {
			if _, err := s.DB().Exec(`INSERT INTO messages (chat_id, seq, kind, sender_id, body, client_id, created_at) VALUES ($1, $2, 'text', $3, 'm', $4, 0)`,
				g, seq, a.ID, fmt.Sprint("c", seq)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.DB().Exec(`UPDATE chats SET last_seq = 4 WHERE id = $1`, g); err != nil {
			t.Fatal(err)
		}
		for _, r := range []struct {
			seq   int64
			emoji string
			user  int64
			at    int64
		}{
			{2, "\u2764", a.ID, 10}, {2, "\u2764\ufe0f", a.ID, 5}, {2, "\u2764", b.ID, 20}, {2, "😀", b.ID, 1},
			{3, "👍\ufe0f", a.ID, 1}, {3, "👍", b.ID, 2},
			{4, "\u2764\ufe0f", a.ID, 1},
		} {
			if _, err := s.DB().Exec(`INSERT INTO reactions (chat_id, seq, emoji, user_id, created_at) VALUES ($1, $2, $3, $4, $5)`, g, r.seq, r.emoji, r.user, r.at); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		type row struct {
			seq   int64
			emoji string
			user  int64
			at    int64
		}
		rows, err := s.DB().Query(`SELECT seq, emoji, user_id, created_at FROM reactions WHERE chat_id = $1 ORDER BY seq, created_at`, g)
		if err != nil {
			t.Fatal(err)
		}
		var got []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.seq, &r.emoji, &r.user, &r.at); err != nil {
				t.Fatal(err)
			}
			got = append(got, r)
		}
		rows.Close()
		want := []row{
			{2, "😀", b.ID, 1}, {2, "\u2764\ufe0f", a.ID, 5}, {2, "\u2764\ufe0f", b.ID, 20},
			{3, "👍", a.ID, 1}, {3, "👍", b.ID, 2},
			{4, "\u2764\ufe0f", a.ID, 1},
		}
		if !slices.Equal(got, want) {
			t.Errorf("reactions after the migration:\n got %+v\nwant %+v", got, want)
		}
		if r2, r3, r4 := messageAt(t, s, g, 2).Rev, messageAt(t, s, g, 3).Rev, messageAt(t, s, g, 4).Rev; r2 == 0 || r3 == 0 || r2 == r3 || r4 != 0 || lastRev(t, s, g) != max(r2, r3) {
			t.Errorf("revs after the migration: %d, %d, %d, chat %d; want the first two new", r2, r3, r4, lastRev(t, s, g))
		}
		if err := store.MigrateTo(ctx, s, before); err != nil {
			t.Fatalf("down to %d: %v", before, err)
		}
	})
}

// expiredIDs lists, in order, the ids of the files the janitor's pass at now deletes.
func expiredIDs(t *testing.T, s *store.Store, now time.Time) []int64 {
	t.Helper()
	exp, err := s.ExpiredFiles(t.Context(), now, now, 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, f := range exp {
		ids = append(ids, f.ID)
	}
	slices.Sort(ids)
	return ids
}
