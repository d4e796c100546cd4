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
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/wschat/chat/internal/auth"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
)

func main() {
	dbURL := flag.String("db", "", "database URL (postgres://... or sqlite:///path)")
	var o options
	flag.IntVar(&o.messages, "messages", 500_000, "messages to store")
	flag.IntVar(&o.users, "users", 2000, "users")
	flag.IntVar(&o.chats, "chats", 4000, "group chats")
	flag.IntVar(&o.perChat, "members", 12, "members of a group (average)")
	flag.IntVar(&o.runs, "runs", 40, "searches per query, each by another user")
	flag.DurationVar(&o.showSlow, "show-slow", 0, "print every search slower than this, with its user and chat (0: none)")
	flag.IntVar(&o.indexBatch, "index-batch", 5000, "messages per indexer transaction (a server uses 500 on PostgreSQL, 100 on SQLite)")
	flag.BoolVar(&o.bulkFTS, "bulk-fts", true, "SQLite: index with FTS5's automerge off, then merge the whole index once (false: merge as a server does)")
	flag.BoolVar(&o.resume, "resume", false, "continue an interrupted seed or index of this database")
	flag.BoolVar(&o.measureOnly, "measure-only", false, "only measure a database seeded before")
	flag.Parse()
	if *dbURL == "" || o.indexBatch < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(context.Background(), *dbURL, o); err != nil {
		fmt.Fprintln(os.Stderr, "seedsearch:", err)
		os.Exit(1)
	}
}

type options struct {
	messages, users, chats, perChat, runs, indexBatch int
	resume, measureOnly, bulkFTS                      bool
	showSlow                                          time.Duration
}

func run(ctx context.Context, dbURL string, o options) error {
	st, err := store.Open(ctx, dbURL, store.Options{MaxConns: 4})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	if !o.measureOnly {
		start := time.Now()
		if err := seed(ctx, st, o); err != nil {
			return err
		}
		fmt.Printf("seeded %d messages in %d chats of %d users in %s\n", o.messages, o.chats, o.users, time.Since(start).Round(time.Second))
		start = time.Now()
		if st.Dialect() == "sqlite" && o.bulkFTS {
			// FTS5 merges its segments as it goes; at millions of rows those merges rewrite
			// most of the index again and again (the indexer fell from 13,000 to a few hundred
			// messages a second past 3 million). A bulk load writes segments only, then
			// merges them all once.
			if _, err := st.DB().ExecContext(ctx, `INSERT INTO message_search (message_search, rank) VALUES ('automerge', 0)`); err != nil {
				return err
			}
		}
		total, err := index(ctx, st, o.indexBatch)
		if err != nil {
			return err
		}
		fmt.Printf("indexed %d messages in %s\n", total, time.Since(start).Round(time.Second))
		if st.Dialect() == "sqlite" && o.bulkFTS {
			start = time.Now()
			if _, err := st.DB().ExecContext(ctx, `INSERT INTO message_search (message_search, rank) VALUES ('automerge', 4)`); err != nil {
				return err
			}
			if _, err := st.DB().ExecContext(ctx, `INSERT INTO message_search (message_search) VALUES ('optimize')`); err != nil {
				return err
			}
			fmt.Printf("merged the full-text index in %s\n", time.Since(start).Round(time.Second))
		}
		if _, err := st.DB().ExecContext(ctx, `ANALYZE`); err != nil {
			return err
		}
	}
	return measure(ctx, st, o.runs, o.showSlow)
}

// index runs the server's indexer until it has caught up, batch messages a transaction, and
// says how far it is every few seconds. It starts from the indexer's mark, so an interrupted
// run goes on where it stopped.
func index(ctx context.Context, st *store.Store, batch int) (int, error) {
	var mark, last sql.NullInt64
	if err := st.DB().QueryRowContext(ctx, `SELECT indexed_to FROM search_state WHERE id = 1`).Scan(&mark); err != nil {
		return 0, err
	}
	if err := st.DB().QueryRowContext(ctx, `SELECT max(id) FROM messages`).Scan(&last); err != nil {
		return 0, err
	}
	start, shown, total := time.Now(), time.Now(), 0
	for {
		n, err := st.IndexSearchBatch(ctx, time.Now(), batch)
		if err != nil {
			return total, err
		}
		if n == 0 {
			break
		}
		total += n
		if time.Since(shown) > 10*time.Second {
			shown = time.Now()
			progress("indexed", total, int(last.Int64-mark.Int64), start)
		}
	}
	return total, nil
}

// progress prints how far a long step is, its rate and the time it still needs.
func progress(what string, done, of int, start time.Time) {
	rate := float64(done) / time.Since(start).Seconds()
	eta := time.Duration(float64(max(0, of-done))/max(rate, 1)) * time.Second
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fmt.Printf("%s %d of %d (%.0f/s, %s to go, heap %d MB)\n", what, done, of, rate, eta.Round(time.Second), m.HeapAlloc>>20)
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
	if r.IntN(10000) == 0 { // a rare word
		words[r.IntN(n)] = "xylophone"
	}
	sep := " "
	if lang >= 3 && r.IntN(2) == 0 { // Chinese and Japanese often go without spaces
		sep = ""
	}
	return strings.Join(words, sep)
}

// seedBatch is the messages of one insert; each batch is generated from its own random source,
// so a resumed seed writes the same history as one that was never interrupted.
const seedBatch = 5000

func seed(ctx context.Context, st *store.Store, o options) error {
	db := st.DB()
	var seeded int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE email LIKE '%@seed.test'`).Scan(&seeded); err != nil {
		return err
	}
	if seeded > 0 && !o.resume {
		return fmt.Errorf("the database was seeded before: -resume goes on, -measure-only measures it")
	}
	if seeded == 0 {
		if err := seedChats(ctx, st, o); err != nil {
			return err
		}
	}
	// What is there: the chats with their members, each chat's last seq, the messages stored.
	var now int64
	var chatIDs []int64
	chatMembers := map[int64][]int64{}
	rows, err := db.QueryContext(ctx, `SELECT c.id, c.created_at, m.user_id FROM chats c JOIN members m ON m.chat_id = c.id
		WHERE c.title LIKE 'group %' ORDER BY c.id, m.user_id`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var c, at, u int64
		if err := rows.Scan(&c, &at, &u); err != nil {
			rows.Close()
			return err
		}
		if len(chatIDs) == 0 || chatIDs[len(chatIDs)-1] != c {
			chatIDs = append(chatIDs, c)
		}
		now = at
		chatMembers[c] = append(chatMembers[c], u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(chatIDs) != o.chats {
		return fmt.Errorf("the database has %d seeded chats, not %d", len(chatIDs), o.chats)
	}
	seqs := map[int64]int64{}
	done := 0
	rows, err = db.QueryContext(ctx, `SELECT chat_id, max(seq), count(*) FROM messages GROUP BY chat_id`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var c, s int64
		var n int
		if err := rows.Scan(&c, &s, &n); err != nil {
			rows.Close()
			return err
		}
		if _, ok := chatMembers[c]; ok { // not the chats a migration made
			seqs[c], done = s, done+n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if done%seedBatch != 0 && done < o.messages {
		return fmt.Errorf("%d messages stored, not a whole number of batches of %d", done, seedBatch)
	}
	if done > 0 {
		fmt.Printf("resuming at %d messages\n", done)
	}
	start, shown, from := time.Now(), time.Now(), done
	for ; done < o.messages; done += seedBatch {
		r := rand.New(rand.NewPCG(uint64(done/seedBatch), 7))
		n := min(seedBatch, o.messages-done)
		cs, ss, senders, bodies, ats := make([]int64, n), make([]int64, n), make([]int64, n), make([]string, n), make([]int64, n)
		for i := range n {
			// A few chats are much busier than the others, as in life.
			c := r.IntN(len(chatIDs))
			if r.IntN(4) == 0 {
				c = r.IntN(max(1, len(chatIDs)/50))
			}
			id := chatIDs[c]
			seqs[id]++
			ms := chatMembers[id]
			cs[i], ss[i], senders[i] = id, seqs[id], ms[r.IntN(len(ms))]
			bodies[i], ats[i] = body(r), now+int64(done+i)*1000
		}
		if err := insertMessages(ctx, st, cs, ss, senders, bodies, ats); err != nil {
			return err
		}
		if time.Since(shown) > 10*time.Second {
			shown = time.Now()
			progress("seeded", done+n-from, o.messages-from, start)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, id := range chatIDs {
		if _, err := tx.ExecContext(ctx, `UPDATE chats SET last_seq = $1, activity_at = $2 WHERE id = $3`, seqs[id], now+int64(o.messages)*1000, id); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `ANALYZE`)
	return err
}

// seedChats stores the users and the groups with their members, in one transaction. The
// history starts o.messages seconds ago, a message a second; the groups' created_at says when.
func seedChats(ctx context.Context, st *store.Store, o options) error {
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now().Add(-time.Duration(o.messages) * time.Second).UnixMilli()
	tx, err := st.DB().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	userIDs := make([]int64, o.users)
	for i := range userIDs {
		name := fmt.Sprintf("seed%d", i)
		if err := tx.QueryRowContext(ctx, `INSERT INTO users (email, name, name_fold, password_hash, created_at) VALUES ($1, $2, $2, 'x', $3) RETURNING id`,
			name+"@seed.test", name, now).Scan(&userIDs[i]); err != nil {
			return fmt.Errorf("user: %w", err)
		}
	}
	for i := range o.chats {
		k := max(2, o.perChat/2+r.IntN(o.perChat))
		ms := map[int64]bool{}
		for len(ms) < min(k, o.users) {
			ms[userIDs[r.IntN(o.users)]] = true
		}
		members := slices.Sorted(maps.Keys(ms))
		var id int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO chats (kind, title, title_fold, public, created_at, activity_at, member_count)
			VALUES ('group', $1, $1, FALSE, $2, $2, $3) RETURNING id`, fmt.Sprintf("group %d", i), now, len(ms)).Scan(&id); err != nil {
			return fmt.Errorf("chat: %w", err)
		}
		for j, u := range members {
			role := "member"
			if j == 0 {
				role = "owner"
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO members (chat_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)`, id, u, role, now); err != nil {
				return fmt.Errorf("member: %w", err)
			}
		}
	}
	return tx.Commit()
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

// The typical queries, each timed through the service; scoped ones search one chat of the
// caller (picked at random among theirs).
var queries = []struct {
	q, what string
	scoped  bool
}{
	{"deadline", "a common English word", false},
	{"krankenversicherung", "a common German compound", false},
	{"москва", "Russian", false},
	{"xylophone", "a rare word (1 message in 10,000)", false},
	{`"review budget"`, "a phrase of two common words", false},
	{"東京", "a 2-character Japanese word", false},
	{"会議", "2 Chinese characters", false},
	{"🚀", "one emoji", false},
	{"example.com/docs", "a URL", false},
	{"zebra", "nothing matches", false},
	{"to be", "two stop words, unquoted", false},
	{"deadline", "a common word in one chat", true},
	{`"review budget"`, "a phrase in one chat", true},
}

// measure runs each typical query runs times, each time by another user, through the
// service (the store's candidates and the check against the current body), and prints p50
// and p99 of one page of 20 hits.
func measure(ctx context.Context, st *store.Store, runs int, showSlow time.Duration) error {
	svc := chat.NewService(st, nil, chat.Options{PasswordParams: auth.FastPasswordParams, Logger: slog.New(slog.DiscardHandler)})
	var ids []int64
	userChats := map[int64][]int64{}
	rows, err := st.DB().QueryContext(ctx, `SELECT u.id, m.chat_id FROM users u JOIN members m ON m.user_id = u.id
		WHERE u.email LIKE '%@seed.test' ORDER BY u.id, m.chat_id`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id, c int64
		if err := rows.Scan(&id, &c); err != nil {
			rows.Close()
			return err
		}
		if len(ids) == 0 || ids[len(ids)-1] != id {
			ids = append(ids, id)
		}
		userChats[id] = append(userChats[id], c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(ids) == 0 {
		return fmt.Errorf("no seeded users")
	}
	r := rand.New(rand.NewPCG(3, 4))
	fmt.Printf("%-24s %-36s %8s %8s %6s\n", "query ("+st.Dialect()+")", "", "p50 ms", "p99 ms", "hits")
	for _, q := range queries {
		var lat []time.Duration
		hits := 0
		for range runs {
			u := ids[r.IntN(len(ids))]
			in := chat.SearchInput{Q: q.q, Limit: 20}
			if q.scoped {
				cs := userChats[u]
				in.ChatID = cs[r.IntN(len(cs))]
			}
			t0 := time.Now()
			p, err := svc.SearchMessages(ctx, chat.Principal{UserID: u}, in)
			if err != nil {
				return fmt.Errorf("search %q: %w", q.q, err)
			}
			lat = append(lat, time.Since(t0))
			if showSlow > 0 && lat[len(lat)-1] > showSlow {
				fmt.Printf("  slow: %q by user %d in chat %d: %s, %d hits\n", q.q, u, in.ChatID, lat[len(lat)-1].Round(time.Millisecond), len(p.Hits))
			}
			hits += len(p.Hits)
		}
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		fmt.Printf("%-24s %-36s %8.1f %8.1f %6.1f\n", q.q, q.what, ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), float64(hits)/float64(runs))
	}
	return nil
}
