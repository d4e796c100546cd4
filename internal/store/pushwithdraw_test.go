package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
)

// TestPushWithdrawals: a shown push becomes one job once its member reads up to it, not
// before, and not again while that job is queued; a cleared one never. Migration 00012 goes
// down and up again. On both databases.
func TestPushWithdrawals(t *testing.T) {
	eachUnmigrated(t, func(t *testing.T, ctx context.Context, name string, s *store.Store) {
		for round := range 2 { // up, then down and up again
			if round == 1 {
				if err := store.MigrateTo(ctx, s, 10); err != nil {
					t.Fatalf("down to 10: %v", err)
				}
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			a, b := mkUser(t, s, fmt.Sprint("A", round)), mkUser(t, s, fmt.Sprint("B", round))
			p := mkPrivate(t, s, a, b, at(0))
			m1 := send(t, s, p, a, "one", at(1))
			m2 := send(t, s, p, a, "two", at(2))
			now := time.Now()
			scan := func(want int) {
				t.Helper()
				n, err := s.ScanPushWithdrawals(ctx, now)
				if err != nil || n != want {
					t.Fatalf("round %d: queued %d withdrawals (%v), want %d", round, n, err, want)
				}
			}
			if err := s.MarkPushShown(ctx, b.ID, p, m1.Message.Seq, now); err != nil {
				t.Fatal(err)
			}
			if err := s.MarkPushShown(ctx, b.ID, p, m2.Message.Seq, now); err != nil {
				t.Fatal(err)
			}
			if _, err := s.MarkRead(ctx, p, b.ID, m1.Message.Seq); err != nil {
				t.Fatal(err)
			}
			scan(0) // read short of the shown message
			if _, err := s.MarkRead(ctx, p, b.ID, m2.Message.Seq); err != nil {
				t.Fatal(err)
			}
			scan(1)
			scan(0) // queued already
			jobs, err := s.ClaimPushJobs(ctx, "me", now, time.Minute, 10)
			if err != nil || len(jobs) != 1 || jobs[0].UserID != b.ID || jobs[0].ChatID != p || jobs[0].Seq != m2.Message.Seq {
				t.Fatalf("round %d: jobs %+v, %v; want b's of chat %d at seq %d", round, jobs, err, p, m2.Message.Seq)
			}
			pc, err := s.PushContext(ctx, jobs[0])
			if err != nil || pc.ShownSeq != m2.Message.Seq || pc.LastReadSeq != m2.Message.Seq {
				t.Fatalf("round %d: push context %+v, %v", round, pc, err)
			}
			if err := s.ClearPushShown(ctx, b.ID, p, pc.LastReadSeq); err != nil {
				t.Fatal(err)
			}
			if err := s.FinishPushJob(ctx, jobs[0], "me", now, time.Second); err != nil {
				t.Fatal(err)
			}
			scan(0) // withdrawn
		}
	})
}

// TestPushContextTellsOfWhatIsLeft: a push job tells of the newest message the member is to
// be told of that is still there: its own message deleted since it was queued, the one before
// it; all of them deleted, none (Seq 0: nothing to push). It was the job's own message, whose
// empty body then dropped the job, so a burst ending in a deleted message was never pushed.
func TestPushContextTellsOfWhatIsLeft(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := mkUser(t, s, "A"), mkUser(t, s, "B")
		p := mkPrivate(t, s, a, b, at(0))
		one := send(t, s, p, a, "one", at(1)).Message
		two := send(t, s, p, a, "two", at(2)).Message
		job := chat.PushJob{UserID: b.ID, ChatID: p, Seq: two.Seq}
		check := func(what string, seq int64, body string) {
			t.Helper()
			pc, err := s.PushContext(ctx, job)
			if err != nil || pc.Seq != seq || pc.Body != body {
				t.Errorf("%s: push context seq %d, body %q (%v); want %d, %q", what, pc.Seq, pc.Body, err, seq, body)
			}
		}
		check("nothing deleted", two.Seq, "two")
		del := func(m chat.Message) {
			t.Helper()
			if _, err := s.DeleteMessage(ctx, p, m.Seq, a.ID, at(3)); err != nil {
				t.Fatal(err)
			}
		}
		del(two)
		check("the job's own deleted", one.Seq, "one")
		del(one)
		check("both deleted", 0, "")
	})
}
