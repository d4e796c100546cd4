package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
	"github.com/wschat/chat/internal/testdb"
)

// BenchmarkSendOneChat is the store's side of the one-chat load shape: senders goroutines send
// to one chat of two members at once, each waiting for its answer before its next send (a
// connection with that many sends in flight). It reports messages stored per second and the
// 50th and 99th percentile of one send's time (queue, statement, commit), e.g.
//
//	go test -run '^$' -bench SendOneChat -benchtime 3000x ./internal/store
func BenchmarkSendOneChat(b *testing.B) {
	for _, backend := range []string{"postgres", "sqlite"} {
		for _, senders := range []int{1, 8, 32, 128} {
			b.Run(fmt.Sprintf("%s/senders=%d", backend, senders), func(b *testing.B) { benchSend(b, backend, senders, false) })
		}
	}
}

// BenchmarkSendWithIndexer is BenchmarkSendOneChat with the search indexer running beside
// the senders at chatd's default interval, as it does in a server: what indexing costs sends.
func BenchmarkSendWithIndexer(b *testing.B) {
	for _, backend := range []string{"postgres", "sqlite"} {
		for _, senders := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/senders=%d", backend, senders), func(b *testing.B) { benchSend(b, backend, senders, true) })
		}
	}
}

func benchSend(b *testing.B, backend string, senders int, indexer bool) {
	url := "sqlite://" + filepath.Join(b.TempDir(), "chat.db")
	if backend == "postgres" {
		url = testdb.Postgres(b)
	}
	ctx := context.Background()
	s, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	var ids [2]int64
	for i := range ids {
		u, err := s.CreateUser(ctx, chat.User{Email: fmt.Sprintf("bench%d@example.com", i), Name: "Bench", PasswordHash: "x", CreatedAt: time.Now()})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = u.ID
	}
	chatID, err := s.CreateGroup(ctx, chat.NewGroup{CreatorID: ids[0], Title: "Bench", MemberIDs: ids[1:], Now: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	if indexer {
		ictx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.RunSearchIndexer(ictx, 500*time.Millisecond, slog.New(slog.DiscardHandler))
		}()
		defer func() { stop(); <-done }()
	}
	var next atomic.Int64
	lat := make([][]time.Duration, senders)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range senders {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				t0 := time.Now()
				_, err := s.SendMessage(ctx, chat.NewMessage{ChatID: chatID, SenderID: ids[0], Body: "a message of about a hundred bytes, like the load tool's: xxxxxxxxxxxxxxxxxxxxxxxxxxxx",
					ClientID: fmt.Sprint("c", i), Now: time.Now()})
				if err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
}
