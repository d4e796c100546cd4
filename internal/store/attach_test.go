package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
)

func fileIDs(fs []chat.File) []int64 {
	var ids []int64
	for _, f := range fs {
		ids = append(ids, f.ID)
	}
	return ids
}

// TestFileAttach: a send attaches its sender's free uploads into its chat in the same
// transaction, in the order named, or stores nothing; every read of the message carries them.
func TestFileAttach(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b, out := mkUser(t, s, "A"), mkUser(t, s, "B"), mkUser(t, s, "Out")
		g := mkGroup(t, s, a, "attach", false, at(0), b)
		h := mkGroup(t, s, a, "elsewhere", false, at(0))
		f1, f2 := upload(t, s, g, a, 10, at(1)), upload(t, s, g, a, 20, at(1))
		ofB := upload(t, s, g, b, 30, at(1))
		inH := upload(t, s, h, a, 40, at(1))
		old := upload(t, s, g, a, 50, at(1))

		// A message of files alone, in the order named.
		m := sendFiles(t, s, g, a, "", at(2), f2.ID, f1.ID)
		if !m.Created || m.Message.Body != "" || !slices.Equal(fileIDs(m.Message.Files), []int64{f2.ID, f1.ID}) ||
			m.Message.Files[0].Size != 20 || m.Message.Files[0].URL != chat.FileURL(f2.ID) {
			t.Fatalf("sent: %+v", m)
		}
		// A retry of that send answers the stored message, files and all.
		again, err := s.SendMessage(ctx, chat.NewMessage{ChatID: g, SenderID: a.ID, ClientID: *m.Message.ClientID,
			FileIDs: []int64{f2.ID, f1.ID}, Now: at(3)})
		if err != nil || again.Created || again.Message.ID != m.Message.ID || !slices.Equal(fileIDs(again.Message.Files), []int64{f2.ID, f1.ID}) {
			t.Errorf("retry: %+v, %v; want message %d with its files, not created", again, err, m.Message.ID)
		}

		refused := func(what string, by chat.User, chatID int64, ids ...int64) {
			t.Helper()
			last := chatFor(t, s, a, g).LastSeq
			_, err := s.SendMessage(ctx, chat.NewMessage{ChatID: chatID, SenderID: by.ID, Body: what,
				ClientID: fmt.Sprintf("r%d", clientSeq.Add(1)), FileIDs: ids, Now: at(3)})
			wantErr(t, what, err, chat.ErrFilesRefused)
			if got := chatFor(t, s, a, g).LastSeq; got != last {
				t.Errorf("%s: the chat's last seq moved from %d to %d", what, last, got)
			}
		}
		refused("attached twice", a, g, f1.ID)
		refused("another member's upload", a, g, ofB.ID)
		refused("an upload into another chat", a, g, inH.ID)
		refused("an unknown file", a, g, 1<<40)
		refused("one free file and one attached", a, g, old.ID, f1.ID)
		_, err = s.SendMessage(ctx, chat.NewMessage{ChatID: g, SenderID: out.ID, Body: "x", ClientID: "out", FileIDs: []int64{old.ID}, Now: at(3)})
		wantErr(t, "a non-member's send", err, chat.ErrNotMember)
		// A file stays free after a refused send, until its attach window closes.
		late := at(1).Add(chat.FileAttachWindow)
		_, err = s.SendMessage(ctx, chat.NewMessage{ChatID: g, SenderID: a.ID, ClientID: "late", FileIDs: []int64{old.ID}, Now: late})
		wantErr(t, "a file uploaded 24 hours before", err, chat.ErrFilesRefused)
		sendFiles(t, s, g, a, "just in time", late.Add(-time.Second), old.ID)

		// How each stands for a send by A, for the service to say why.
		claims, err := s.FileClaims(ctx, a.ID, []int64{f1.ID, ofB.ID, inH.ID, 1 << 40})
		if err != nil {
			t.Fatal(err)
		}
		byID := map[int64]chat.FileClaim{}
		for _, c := range claims {
			byID[c.ID] = c
		}
		if c := byID[f1.ID]; !c.Attached || !c.Stored || c.UploaderID != a.ID || c.ChatID != g || !c.Visible {
			t.Errorf("claim of the attached file: %+v", c)
		}
		if c := byID[ofB.ID]; c.Attached || c.UploaderID != b.ID || !c.Visible || !c.CreatedAt.Equal(at(1)) {
			t.Errorf("claim of B's file: %+v", c)
		}
		if c := byID[inH.ID]; c.ChatID != h || c.Attached {
			t.Errorf("claim of the file in the other chat: %+v", c)
		}
		if len(claims) != 3 {
			t.Errorf("%d claims, want 3 (none for the unknown id)", len(claims))
		}
		if claims, _ := s.FileClaims(ctx, out.ID, []int64{f1.ID}); len(claims) != 1 || claims[0].Visible {
			t.Errorf("claims for an outsider: %+v, want one not visible", claims)
		}

		// History, the chat's last message and the download rights carry the attachment.
		msgs, _, err := s.History(ctx, chat.HistoryQuery{ChatID: g, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		var withFiles int
		for _, hm := range msgs {
			if hm.ID == m.Message.ID {
				withFiles++
				if !slices.Equal(fileIDs(hm.Files), []int64{f2.ID, f1.ID}) || hm.Files[1].Name != "a.png" {
					t.Errorf("history: %+v", hm.Files)
				}
			} else if hm.Body != "just in time" && len(hm.Files) > 0 {
				t.Errorf("message %d has files %v", hm.Seq, hm.Files)
			}
		}
		if withFiles != 1 {
			t.Errorf("the message with files is in the history %d times", withFiles)
		}
		if lm := chatFor(t, s, b, g).LastMessage; lm == nil || !slices.Equal(fileIDs(lm.Files), []int64{old.ID}) {
			t.Errorf("last message: %+v", lm)
		}
		cs, err := s.ChatsOf(ctx, b.ID)
		if err != nil || len(cs) != 1 || cs[0].LastMessage == nil || len(cs[0].LastMessage.Files) != 1 {
			t.Errorf("chats of B: %+v, %v", cs, err)
		}
		if _, err := s.FileFor(ctx, b.ID, f1.ID); err != nil {
			t.Errorf("a member cannot download an attached file: %v", err)
		}
		// Attached files never expire.
		if exp, _ := s.ExpiredFiles(ctx, at(1_000_000), at(1_000_000), 100); len(exp) != 2 {
			t.Errorf("expired: %d files, want the 2 never attached (B's and the other chat's)", len(exp))
		}
	})
}

// TestFileAttachRace: sends committed together or one after another never attach one file
// twice: one of them wins, the others are refused and store nothing.
func TestFileAttachRace(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := mkUser(t, s, "A")
		g := mkGroup(t, s, a, "race", false, at(0))
		for round := range 5 {
			f := upload(t, s, g, a, 1, at(1))
			var waits []func() (chat.Sent, error)
			for i := range 4 {
				waits = append(waits, s.QueueMessage(ctx, chat.NewMessage{ChatID: g, SenderID: a.ID, Body: "race",
					ClientID: fmt.Sprintf("race-%d-%d", round, i), FileIDs: []int64{f.ID}, Now: at(2)}))
			}
			// A repeat of the first send in the same batch is answered with its message.
			waits = append(waits, s.QueueMessage(ctx, chat.NewMessage{ChatID: g, SenderID: a.ID, Body: "race",
				ClientID: fmt.Sprintf("race-%d-0", round), FileIDs: []int64{f.ID}, Now: at(2)}))
			// Queued first, the first send is stored first: it wins, whatever the batches.
			first, err := waits[0]()
			if err != nil || !first.Created || !slices.Equal(fileIDs(first.Message.Files), []int64{f.ID}) {
				t.Fatalf("round %d: the first send: %+v, %v", round, first, err)
			}
			for i, w := range waits[1:4] {
				if _, err := w(); !errors.Is(err, chat.ErrFilesRefused) {
					t.Errorf("round %d: send %d of the same file: %v, want refused", round, i+1, err)
				}
			}
			if sent, err := waits[4](); err != nil || sent.Created || sent.Message.ID != first.Message.ID ||
				!slices.Equal(fileIDs(sent.Message.Files), []int64{f.ID}) {
				t.Errorf("round %d: the repeat of the first send: %+v, %v", round, sent, err)
			}
		}
		var seqs, n int
		s.DB().QueryRow(`SELECT count(*) FROM messages WHERE chat_id = $1 AND kind = 'text'`, g).Scan(&seqs)
		s.DB().QueryRow(`SELECT count(*) FROM files WHERE chat_id = $1 AND message_id IS NOT NULL`, g).Scan(&n)
		if seqs != 5 || n != 5 {
			t.Errorf("%d messages and %d attached files after 5 rounds, want 5 and 5", seqs, n)
		}
	})
}

// TestFileClashInOneBatch: sends stored in one call that name the same file: the first
// attaches it, a later one (another client id) is refused and stores nothing, a repeat of the
// first is answered with its message and the file, and a send after them in the call is
// numbered right after the first.
func TestFileClashInOneBatch(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		a := mkUser(t, s, "A")
		g := mkGroup(t, s, a, "clash", false, at(0)) // seq 1
		f := upload(t, s, g, a, 1, at(1))
		send := func(client string, files ...int64) chat.NewMessage {
			return chat.NewMessage{ChatID: g, SenderID: a.ID, Body: "clash " + client, ClientID: client, FileIDs: files, Now: at(2)}
		}
		outs, errs := store.SendBatch(s, []chat.NewMessage{send("c1", f.ID), send("c2", f.ID), send("c1", f.ID), send("c3")})
		if errs[0] != nil || !outs[0].Created || outs[0].Message.Seq != 2 || !slices.Equal(fileIDs(outs[0].Message.Files), []int64{f.ID}) {
			t.Errorf("the first send: %+v, %v", outs[0], errs[0])
		}
		if !errors.Is(errs[1], chat.ErrFilesRefused) {
			t.Errorf("a second send of the file in the same call: %+v, %v; want refused", outs[1], errs[1])
		}
		if errs[2] != nil || outs[2].Created || outs[2].Message.ID != outs[0].Message.ID ||
			!slices.Equal(fileIDs(outs[2].Message.Files), []int64{f.ID}) {
			t.Errorf("the repeat of the first send: %+v, %v", outs[2], errs[2])
		}
		if errs[3] != nil || !outs[3].Created || outs[3].Message.Seq != 3 {
			t.Errorf("a send after them: %+v, %v; want seq 3", outs[3], errs[3])
		}
		var msgs, attached int
		s.DB().QueryRow(`SELECT count(*) FROM messages WHERE chat_id = $1 AND kind = 'text'`, g).Scan(&msgs)
		s.DB().QueryRow(`SELECT count(*) FROM files WHERE chat_id = $1 AND message_id = $2`, g, outs[0].Message.ID).Scan(&attached)
		if msgs != 2 || attached != 1 {
			t.Errorf("%d messages stored and %d files on the first, want 2 and 1", msgs, attached)
		}
	})
}

// TestMigration00008: from version 7, messages gain file_count 0 and send_messages takes
// files; a caller with the old five arguments (an instance not yet upgraded) still sends; the
// migration goes down and up again with sends working.
func TestMigration00008(t *testing.T) {
	eachUnmigrated(t, func(t *testing.T, ctx context.Context, name string, s *store.Store) {
		if err := store.MigrateTo(ctx, s, 7); err != nil {
			t.Fatal(err)
		}
		a := mkUser(t, s, "A")
		g := mkGroup(t, s, a, "m8", false, at(0))
		// A message stored at version 7 (raw: this code's sends need version 8).
		var beforeID int64
		if err := s.DB().QueryRow(`INSERT INTO messages (chat_id, seq, kind, sender_id, body, client_id, created_at)
			VALUES ($1, 2, 'text', $2, 'before', 'before', 0) RETURNING id`, g, a.ID).Scan(&beforeID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB().Exec(`UPDATE chats SET last_seq = 2 WHERE id = $1`, g); err != nil {
			t.Fatal(err)
		}
		for round := range 2 { // up, then down and up again
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			msgs, _, err := s.History(ctx, chat.HistoryQuery{ChatID: g, Limit: 50})
			if err != nil || len(msgs) < 2 || msgs[1].ID != beforeID || msgs[1].FileCount != 0 || msgs[1].Files != nil {
				t.Fatalf("history after the migration: %+v, %v", msgs, err)
			}
			f := upload(t, s, g, a, 5, at(2))
			m := sendFiles(t, s, g, a, "", at(3), f.ID)
			if len(m.Message.Files) != 1 {
				t.Errorf("round %d: sent with files %v", round, m.Message.Files)
			}
			if name == "postgres" {
				var status int
				err := s.DB().QueryRow(`SELECT status FROM send_messages(ARRAY[$1::BIGINT], ARRAY[$2::BIGINT], ARRAY[$3::TEXT], ARRAY['old'], ARRAY[$4::BIGINT])`,
					g, a.ID, fmt.Sprint("old-", round), at(4).UnixMilli()).Scan(&status)
				if err != nil || status != 0 {
					t.Errorf("round %d: a send with the old arguments: status %d, %v", round, status, err)
				}
			}
			if err := store.MigrateTo(ctx, s, 7); err != nil {
				t.Fatalf("down to 7: %v", err)
			}
		}
	})
}
