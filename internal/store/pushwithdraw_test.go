package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

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
