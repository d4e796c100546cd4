// Command seedsearch fills a database with a large multilingual history, indexes it for
// message search and measures typical searches (issue 16). It writes rows directly, many at a
// time, so that millions of messages take minutes, then runs the server's own indexer and the
// service's own search.
//
//	go run ./scripts/seedsearch -db postgres://postgres@127.0.0.1:5432/seed?sslmode=disable -messages 5000000
//	go run ./scripts/seedsearch -db sqlite:///tmp/seed.db -messages 5000000
//
// The database must be empty (a new one); -measure-only measures one that was seeded before.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/wschat/chat/internal/auth"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
)

func main() {
	dbURL := flag.String("db", "", "database URL (postgres://... or sqlite:///path)")
	messages := flag.Int("messages", 500_000, "messages to store")
	users := flag.Int("users", 2000, "users")
	chats := flag.Int("chats", 4000, "group chats")
	perChat := flag.Int("members", 12, "members of a group (average)")
	runs := flag.Int("runs", 40, "searches per query, each by another user")
	measureOnly := flag.Bool("measure-only", false, "only measure a database seeded before")
	flag.Parse()
	if *dbURL == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(context.Background(), *dbURL, *messages, *users, *chats, *perChat, *runs, *measureOnly); err != nil {
		fmt.Fprintln(os.Stderr, "seedsearch:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dbURL string, messages, users, chats, perChat, runs int, measureOnly bool) error {
	st, err := store.Open(ctx, dbURL, store.Options{MaxConns: 4})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	if !measureOnly {
		start := time.Now()
		if err := seed(ctx, st, messages, users, chats, perChat); err != nil {
			return err
		}
		fmt.Printf("seeded %d messages in %d chats of %d users in %s\n", messages, chats, users, time.Since(start).Round(time.Second))
		start = time.Now()
		total := 0
		for {
			n, err := st.IndexSearch(ctx, time.Now())
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
			total += n
		}
		fmt.Printf("indexed %d messages in %s\n", total, time.Since(start).Round(time.Second))
		if _, err := st.DB().ExecContext(ctx, `ANALYZE`); err != nil {
			return err
		}
	}
	return measure(ctx, st, users, runs)
}

// Words of the history, by language; a message is a handful of them.
var vocab = [][]string{
	strings.Fields("the meeting project deadline report tomorrow please review budget client release server issue thanks coffee lunch team update plan weekly design question answer to be or not is it"),
	strings.Fields("die Krankenversicherungskarte Versicherung Termin morgen bitte Bericht Projekt Besprechung Bahnhof Rechnung Urlaub danke Mittagessen Kunde"),
	strings.Fields("привет встреча проект завтра отчёт пожалуйста Москва спасибо бюджет клиент обед команда"),
	strings.Fields("我们 明天 在 北京 见面 项目 报告 会议 谢谢 客户 午饭 团队"),
	strings.Fields("東京 会議 明日 報告 お願いします プロジェクト ありがとう 昼ご飯 チーム 予算"),
	strings.Fields("🎉 👍 🚀 ☕ https://example.com/docs https://intranet.example.org/wiki/Plan #release @team"),
}

func body(r *rand.Rand) string {
	lang := r.IntN(len(vocab) - 1)
	n := 4 + r.IntN(10)
	words := make([]string, n)
	for i := range words {
		v := vocab[lang]
		if r.IntN(8) == 0 {
			v = vocab[len(vocab)-1]
		}
		words[i] = v[r.IntN(len(v))]
	}
	sep := " "
	if lang >= 3 && r.IntN(2) == 0 { // Chinese and Japanese often go without spaces
		sep = ""
	}
	return strings.Join(words, sep)
}

func seed(ctx context.Context, st *store.Store, messages, users, chats, perChat int) error {
	db := st.DB()
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now().Add(-time.Duration(messages) * time.Second).UnixMilli()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	userIDs := make([]int64, users)
	for i := range userIDs {
		name := fmt.Sprintf("seed%d", i)
		if err := tx.QueryRowContext(ctx, `INSERT INTO users (email, name, name_fold, password_hash, created_at) VALUES ($1, $2, $2, 'x', $3) RETURNING id`,
			name+"@seed.test", name, now).Scan(&userIDs[i]); err != nil {
			return fmt.Errorf("user: %w", err)
		}
	}
	chatIDs := make([]int64, chats)
	chatMembers := make([][]int64, chats)
	for i := range chatIDs {
		k := max(2, perChat/2+r.IntN(perChat))
		ms := map[int64]bool{}
		for len(ms) < min(k, users) {
			ms[userIDs[r.IntN(users)]] = true
		}
		for id := range ms {
			chatMembers[i] = append(chatMembers[i], id)
		}
		slices.Sort(chatMembers[i])
		if err := tx.QueryRowContext(ctx, `INSERT INTO chats (kind, title, title_fold, public, created_at, activity_at, member_count)
			VALUES ('group', $1, $1, FALSE, $2, $2, $3) RETURNING id`, fmt.Sprintf("group %d", i), now, len(ms)).Scan(&chatIDs[i]); err != nil {
			return fmt.Errorf("chat: %w", err)
		}
		for j, u := range chatMembers[i] {
			role := "member"
			if j == 0 {
				role = "owner"
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO members (chat_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)`, chatIDs[i], u, role, now); err != nil {
				return fmt.Errorf("member: %w", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	seqs := make([]int64, chats)
	const batch = 5000
	for done := 0; done < messages; done += batch {
		n := min(batch, messages-done)
		cs, ss, senders, bodies, ats := make([]int64, n), make([]int64, n), make([]int64, n), make([]string, n), make([]int64, n)
		for i := range n {
			// A few chats are much busier than the others, as in life.
			c := r.IntN(chats)
			if r.IntN(4) == 0 {
				c = r.IntN(max(1, chats/50))
			}
			seqs[c]++
			cs[i], ss[i], senders[i] = chatIDs[c], seqs[c], chatMembers[c][r.IntN(len(chatMembers[c]))]
			bodies[i], ats[i] = body(r), now+int64(done+i)*1000
		}
		if err := insertMessages(ctx, st, cs, ss, senders, bodies, ats); err != nil {
			return err
		}
		if done%(20*batch) == 0 {
			fmt.Printf("\r%d messages", done+n)
		}
	}
	fmt.Println()
	for i, id := range chatIDs {
		if _, err := db.ExecContext(ctx, `UPDATE chats SET last_seq = $1, activity_at = $2 WHERE id = $3`, seqs[i], now+int64(messages)*1000, id); err != nil {
			return err
		}
	}
	_, err = db.ExecContext(ctx, `ANALYZE`)
	return err
}

func insertMessages(ctx context.Context, st *store.Store, cs, ss, senders []int64, bodies []string, ats []int64) error {
	db := st.DB()
	if st.Dialect() == "postgres" {
		_, err := db.ExecContext(ctx, `INSERT INTO messages (chat_id, seq, kind, sender_id, body, created_at)
			SELECT c, s, 'text', u, b, a FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[]) AS t (c, s, u, b, a)`,
			cs, ss, senders, bodies, ats)
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO messages (chat_id, seq, kind, sender_id, body, created_at) VALUES ($1, $2, 'text', $3, $4, $5)`)
	if err != nil {
		return err
	}
	for i := range cs {
		if _, err := stmt.ExecContext(ctx, cs[i], ss[i], senders[i], bodies[i], ats[i]); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// measure runs each typical query runs times, each time by another user, through the
// service (the store's candidates and the check against the current body), and prints p50
// and p99 of one page of 20 hits.
func measure(ctx context.Context, st *store.Store, users, runs int) error {
	svc := chat.NewService(st, nil, chat.Options{PasswordParams: auth.FastPasswordParams, Logger: slog.New(slog.DiscardHandler)})
	var ids []int64
	rows, err := st.DB().QueryContext(ctx, `SELECT id FROM users WHERE email LIKE '%@seed.test' ORDER BY id`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) == 0 {
		return fmt.Errorf("no seeded users")
	}
	r := rand.New(rand.NewPCG(3, 4))
	fmt.Printf("%-32s %8s %8s %6s\n", "query ("+st.Dialect()+")", "p50 ms", "p99 ms", "hits")
	for _, q := range []string{"deadline", "krankenversicherung", "москва", `"review budget"`, "東京", "会議", "🚀", "example.com/docs", "zebra", "to be"} {
		var lat []time.Duration
		hits := 0
		for range runs {
			u := ids[r.IntN(len(ids))]
			t0 := time.Now()
			p, err := svc.SearchMessages(ctx, chat.Principal{UserID: u}, chat.SearchInput{Q: q, Limit: 20})
			if err != nil {
				return fmt.Errorf("search %q: %w", q, err)
			}
			lat = append(lat, time.Since(t0))
			hits += len(p.Hits)
		}
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		fmt.Printf("%-32s %8.1f %8.1f %6.1f\n", q, ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), float64(hits)/float64(runs))
	}
	return nil
}
