package store_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wschat/chat/internal/auth"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
)

// indexAll runs the search indexer until it has nothing left to do.
func indexAll(t *testing.T, s *store.Store) {
	t.Helper()
	for {
		// Far ahead of the suite's clock: no gap in the ids is waited for.
		n, err := s.IndexSearch(context.Background(), t0.Add(24*time.Hour))
		if err != nil {
			t.Fatalf("index: %v", err)
		}
		if n == 0 {
			return
		}
	}
}

// searchAll pages through a search to its end and returns the ids of the hits, in order.
func searchAll(t *testing.T, svc *chat.Service, u chat.User, in chat.SearchInput) []int64 {
	t.Helper()
	ids := []int64{}
	for page := 0; ; page++ {
		p, err := svc.SearchMessages(context.Background(), chat.Principal{UserID: u.ID}, in)
		if err != nil {
			t.Fatalf("search %+v: %v", in, err)
		}
		for _, h := range p.Hits {
			ids = append(ids, h.Message.ID)
		}
		if p.NextBefore == 0 {
			return ids
		}
		if page > 100 || (in.Before != 0 && p.NextBefore >= in.Before) {
			t.Fatalf("search %+v: paging does not end (next_before %d)", in, p.NextBefore)
		}
		in.Before = p.NextBefore
	}
}

// TestSearchCorpus: the same queries give the same answers on both databases, in every
// language of the corpus, and only from the chats the searcher is a member of now.
func TestSearchCorpus(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		svc := chat.NewService(s, nil, chat.Options{PasswordParams: auth.FastPasswordParams})
		alice, bob, carol, dave := mkUser(t, s, "Alice"), mkUser(t, s, "Bob"), mkUser(t, s, "Carol"), mkUser(t, s, "Dave")
		g := mkGroup(t, s, alice, "Corpus", false, at(1), bob, dave)
		priv := mkPrivate(t, s, alice, bob, at(1))
		other := mkGroup(t, s, carol, "Carol's", false, at(1))
		id := map[string]int64{}
		n := 10
		put := func(key string, chatID int64, from chat.User, body string) {
			n++
			id[key] = send(t, s, chatID, from, body, at(n)).Message.ID
		}
		put("hamlet", g, bob, "To be or not to be, that is the question")
		put("tobe", g, bob, "Tobe continued")
		put("karte", g, bob, "Bitte die Krankenversicherungskarte mitbringen")
		put("zahlt", g, alice, "Die Versicherung zahlt")
		put("moskau", g, dave, "Привет, как дела? Москва ждёт")
		put("beijing", g, bob, "我们明天在北京见面")
		put("tower", g, bob, "東京タワーに行きました")
		put("meeting", g, bob, "今日は東京で会議")
		put("party", g, bob, "Party tonight 🎉🎉 bring snacks")
		put("url", g, bob, "See https://example.com/docs?q=1&lang=de for details")
		put("honest", g, bob, "to be honest, I forgot")
		put("percent", g, bob, "100% sure")
		put("greek", g, bob, "ΚΑΛΗΜΕΡΑ ΚΟΣΜΟΣ")
		put("greek2", g, bob, "καλημέρα κόσμος")
		put("private", priv, bob, "Versicherung privat")
		put("carol1", other, carol, "Versicherung von Carol")
		put("carol2", other, carol, "to be or not to be")
		// Dave leaves after he wrote: he finds nothing of the group any more.
		if _, _, err := s.RemoveMember(context.Background(), g, dave.ID, at(100)); err != nil {
			t.Fatal(err)
		}
		indexAll(t, s)

		ids := func(keys ...string) []int64 {
			out := []int64{}
			for _, k := range keys {
				out = append(out, id[k])
			}
			return out
		}
		for _, c := range []struct {
			who  chat.User
			q    string
			chat int64
			want []int64
		}{
			{alice, `"to be or not to be"`, 0, ids("hamlet")},
			{alice, `to be or not to be`, 0, ids("hamlet")},
			{alice, `"to be"`, 0, ids("honest", "hamlet")},
			{alice, `"not to"`, 0, ids("hamlet")},
			{alice, `versicherung`, 0, ids("private", "zahlt", "karte")},
			{alice, `VERSICHERUNG`, 0, ids("private", "zahlt", "karte")},
			{alice, `Krankenversicherungskarte`, 0, ids("karte")},
			{alice, `versicherung`, priv, ids("private")},
			{alice, `москва`, 0, ids("moskau")},
			{alice, `κοσμος`, 0, ids("greek")},  // final sigma: ς and Σ fold alike
			{alice, `ΚΌΣΜΟΣ`, 0, ids("greek2")}, // accents are not folded away
			{alice, `καλημέρα κόσμος`, 0, ids("greek2")},
			{alice, `Москва ждёт`, 0, ids("moskau")},
			{alice, `"как дела"`, 0, ids("moskau")},
			{alice, `北京`, 0, ids("beijing")},
			{alice, `明天在北京`, 0, ids("beijing")},
			{alice, `東京`, 0, ids("meeting", "tower")},
			{alice, `東京タワー`, 0, ids("tower")},
			{alice, `東京 会議`, 0, ids("meeting")},
			{alice, `🎉`, 0, ids("party")},
			{alice, `🎉🎉 snacks`, 0, ids("party")},
			{alice, `https://example.com/docs`, 0, ids("url")},
			{alice, `lang=de`, 0, ids("url")},
			{alice, `%`, 0, ids("percent")},
			{alice, `100%`, 0, ids("percent")},
			{alice, `_`, 0, ids()},
			{alice, `nothing-like-this`, 0, ids()},
			{carol, `versicherung`, 0, ids("carol1")},
			{carol, `"to be or not to be"`, 0, ids("carol2")},
			{dave, `Москва`, 0, ids()},
			{dave, `versicherung`, 0, ids()},
			{dave, `東京`, 0, ids()},
			// One chat: searched by reading its history, or through the index (below).
			{alice, `versicherung`, g, ids("zahlt", "karte")},
			{alice, `"to be"`, g, ids("honest", "hamlet")},
			{alice, `to be or not to be`, g, ids("hamlet")},
			{alice, `Москва ждёт`, g, ids("moskau")},
			{alice, `明天在北京`, g, ids("beijing")},
			{alice, `東京タワー`, g, ids("tower")},
			{alice, `🎉🎉 snacks`, g, ids("party")},
			{alice, `https://example.com/docs`, g, ids("url")},
			{alice, `100%`, g, ids("percent")},
			{alice, `_tobe`, g, ids()},
			{carol, `versicherung`, other, ids("carol1")},
		} {
			// A chat's search reads the chat's history when the chat is small enough, else it
			// asks the index: both answer alike.
			for _, walkMax := range []int64{1_000_000, -1} {
				store.SetChatWalkMax(s, walkMax)
				for _, limit := range []int{1, 20} {
					got := searchAll(t, svc, c.who, chat.SearchInput{Q: c.q, ChatID: c.chat, Limit: limit})
					if !slices.Equal(got, c.want) {
						t.Errorf("%s searches %q (limit %d, walk up to %d): got %v, want %v", c.who.Name, c.q, limit, walkMax, got, c.want)
					}
				}
			}
		}
		store.SetChatWalkMax(s, 1_000_000)

		// Highlights are UTF-16 offsets into the body, merged where they touch.
		for _, c := range []struct {
			q    string
			want []chat.TextSpan
		}{
			{"versicherung", []chat.TextSpan{{Start: 17, End: 29}}},
			{"🎉", []chat.TextSpan{{Start: 14, End: 18}}},
			{`"to be" be`, []chat.TextSpan{{Start: 0, End: 5}, {Start: 13, End: 18}}},
		} {
			p, err := svc.SearchMessages(context.Background(), chat.Principal{UserID: bob.ID}, chat.SearchInput{Q: c.q, ChatID: g, Limit: 50})
			if err != nil || len(p.Hits) == 0 {
				t.Fatalf("search %q: %v, %d hits", c.q, err, len(p.Hits))
			}
			h := p.Hits[len(p.Hits)-1]
			if !slices.Equal(h.Highlights, c.want) {
				t.Errorf("highlights of %q in %q: got %v, want %v", c.q, h.Message.Body, h.Highlights, c.want)
			}
			if h.Chat != (chat.SearchChat{ID: g, Kind: chat.KindGroup, Title: "Corpus"}) {
				t.Errorf("hit's chat: got %+v", h.Chat)
			}
		}
		p, err := svc.SearchMessages(context.Background(), chat.Principal{UserID: alice.ID}, chat.SearchInput{Q: "privat", Limit: 5})
		if err != nil || len(p.Hits) != 1 || p.Hits[0].Chat != (chat.SearchChat{ID: priv, Kind: chat.KindPrivate, Title: "Bob"}) {
			t.Errorf("a private chat's hit: got %+v, %v; want the chat titled with the peer's name", p.Hits, err)
		}

		// Not a member of the chat asked for: refused, as history is.
		_, err = svc.SearchMessages(context.Background(), chat.Principal{UserID: carol.ID}, chat.SearchInput{Q: "versicherung", ChatID: g})
		if chat.ErrorCode(err) != chat.CodeNotFound {
			t.Errorf("a stranger searches a private group: got %v, want not_found", err)
		}
		_, err = svc.SearchMessages(context.Background(), chat.Principal{UserID: dave.ID}, chat.SearchInput{Q: "versicherung", ChatID: g})
		if chat.ErrorCode(err) != chat.CodeNotFound {
			t.Errorf("an ex-member searches the group: got %v, want not_found", err)
		}
	})
}

// TestSearchEditsAndDeletes: a hit is the message's current body. A deleted message (its
// body emptied) is never found, before any re-index too; an edited one is found by its new
// text once re-indexed, and never by its old text.
func TestSearchEditsAndDeletes(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		svc := chat.NewService(s, nil, chat.Options{PasswordParams: auth.FastPasswordParams})
		ann, ben := mkUser(t, s, "Ann"), mkUser(t, s, "Ben")
		g := mkGroup(t, s, ann, "Edits", false, at(1), ben)
		gone := send(t, s, g, ann, "quarterly report draft", at(2)).Message
		edited := send(t, s, g, ann, "quarterly numbers", at(3)).Message
		late := send(t, s, g, ann, "quarterly plan", at(4)).Message
		indexAll(t, s)
		find := func(q string) []int64 {
			return searchAll(t, svc, ben, chat.SearchInput{Q: q, Limit: 20})
		}
		db := s.DB()
		if _, err := db.Exec(`UPDATE messages SET body = '' WHERE id = $1`, gone.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`UPDATE messages SET body = 'yearly totals' WHERE id = $1`, edited.ID); err != nil {
			t.Fatal(err)
		}
		if got, want := find("quarterly"), []int64{late.ID}; !slices.Equal(got, want) {
			t.Errorf("before re-indexing: got %v, want %v (deleted and edited messages never match their old text)", got, want)
		}
		for _, m := range []chat.Message{gone, edited} {
			if err := store.ReindexMessage(s, g, m.Seq); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := find("yearly"), []int64{edited.ID}; !slices.Equal(got, want) {
			t.Errorf("the edited text: got %v, want %v", got, want)
		}
		if got, want := find("quarterly"), []int64{late.ID}; !slices.Equal(got, want) {
			t.Errorf("after re-indexing: got %v, want %v", got, want)
		}
		// A message the indexer has not reached yet is left to it, which reads the new body.
		fresh := send(t, s, g, ann, "draft one", at(5)).Message
		if _, err := db.Exec(`UPDATE messages SET body = 'final version' WHERE id = $1`, fresh.ID); err != nil {
			t.Fatal(err)
		}
		if err := store.ReindexMessage(s, g, fresh.Seq); err != nil {
			t.Fatal(err)
		}
		indexAll(t, s)
		if got, want := find("final version"), []int64{fresh.ID}; !slices.Equal(got, want) {
			t.Errorf("edited before indexing: got %v, want %v", got, want)
		}
		if got := find("draft"); len(got) != 0 {
			t.Errorf("old text of messages edited or deleted: got %v, want none", got)
		}
	})
}

// TestSearchMigration: migration 10 on a database of version 9 with history: the indexer
// indexes the messages that were there before, and down and up again works.
func TestSearchMigration(t *testing.T) {
	eachUnmigrated(t, func(t *testing.T, ctx context.Context, _ string, s *store.Store) {
		if err := store.MigrateTo(ctx, s, 9); err != nil {
			t.Fatal(err)
		}
		a, b := mkUser(t, s, "A"), mkUser(t, s, "B")
		g := mkGroup(t, s, a, "Old", false, at(1), b)
		// Written with plain SQL: this code sends to the schema of its own version only.
		var old chat.Message
		if err := s.DB().QueryRow(`INSERT INTO messages (chat_id, seq, kind, sender_id, body, client_id, created_at)
		VALUES ($1, 2, 'text', $2, 'written before search existed', 'c1', $3) RETURNING id`, g, a.ID, at(2).UnixMilli()).Scan(&old.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB().Exec(`UPDATE chats SET last_seq = 2 WHERE id = $1`, g); err != nil {
			t.Fatal(err)
		}
		for _, v := range []int64{10, 9, 10} {
			if err := store.MigrateTo(ctx, s, v); err != nil {
				t.Fatalf("migrate to %d: %v", v, err)
			}
		}
		if err := s.Migrate(ctx); err != nil { // the rest, which this code needs
			t.Fatal(err)
		}
		indexAll(t, s)
		svc := chat.NewService(s, nil, chat.Options{PasswordParams: auth.FastPasswordParams})
		if got := searchAll(t, svc, b, chat.SearchInput{Q: "before search", Limit: 5}); !slices.Equal(got, []int64{old.ID}) {
			t.Errorf("history from before the migration: got %v, want %v", got, []int64{old.ID})
		}
	})
}

// TestSearchFoldMigration: an index written with the folding of before migration 00014 (lower
// case only, so a final sigma stayed ς) finds what the folding of now looks for once migrated.
func TestSearchFoldMigration(t *testing.T) {
	eachUnmigrated(t, func(t *testing.T, ctx context.Context, _ string, s *store.Store) {
		if err := store.MigrateTo(ctx, s, 13); err != nil {
			t.Fatal(err)
		}
		a, b := mkUser(t, s, "A"), mkUser(t, s, "B")
		g := mkGroup(t, s, a, "Old", false, at(1), b)
		m := send(t, s, g, a, "καλημέρα κόσμος, µ-meter", at(2)).Message
		indexAll(t, s)
		// As the indexer of before wrote it.
		var old string
		if _, err := s.DB().Exec(`UPDATE message_search SET body = $1`, strings.ToLower(m.Body)); err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.DB().QueryRow(`SELECT body FROM message_search`).Scan(&old); err != nil {
			t.Fatal(err)
		}
		if want := chat.FoldSearch(m.Body); old != want {
			t.Errorf("the index holds %q, want %q", old, want)
		}
		svc := chat.NewService(s, nil, chat.Options{PasswordParams: auth.FastPasswordParams})
		for _, q := range []string{"ΚΌΣΜΟΣ", "κόσμοσ", "μ-meter"} {
			if got := searchAll(t, svc, b, chat.SearchInput{Q: q, Limit: 5}); !slices.Equal(got, []int64{m.ID}) {
				t.Errorf("%q after the migration: got %v, want %v", q, got, []int64{m.ID})
			}
		}
	})
}

// TestSearchIndexerWakesOnSend: a message sent while the indexer idles is indexed at once, by
// the send's wake-up (the indexer's interval here is an hour), and the round that indexed it is
// followed by the interval's wait, not by a round per send.
func TestSearchIndexerWakesOnSend(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		if strings.HasSuffix(t.Name(), "/postgres-replayed") {
			// The rolled-back first run of each send took a message id: the indexer waits for
			// such a gap to fill (searchGapGrace) rather than index past it, as it must.
			t.Skip("each replayed send leaves a gap in message ids")
		}
		type round struct {
			moved    int
			caughtUp bool
		}
		rounds := make(chan round, 16)
		store.ObserveSearchRounds(s, func(moved int, caughtUp bool) { rounds <- round{moved, caughtUp} })
		svc := chat.NewService(s, nil, chat.Options{PasswordParams: auth.FastPasswordParams})
		alice, bob := mkUser(t, s, "Alice"), mkUser(t, s, "Bob")
		g := mkGroup(t, s, alice, "Wake", false, at(1), bob)
		indexAll(t, s)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.RunSearchIndexer(ctx, time.Hour, slog.New(slog.DiscardHandler))
		}()
		t.Cleanup(func() { cancel(); <-done })
		next := func() round {
			t.Helper()
			select {
			case r := <-rounds:
				return r
			case <-time.After(time.Minute): // only a hang gets here: the interval is an hour
				t.Fatal("no round of the indexer")
				return round{}
			}
		}
		if r := next(); r != (round{0, true}) {
			t.Fatalf("first round %+v, want nothing to do", r)
		}
		first := send(t, s, g, bob, "wake needle one", at(2)).Message.ID
		if r := next(); r.moved != 1 || r.caughtUp {
			t.Fatalf("round after the send %+v, want the one message indexed", r)
		}
		if got := searchAll(t, svc, alice, chat.SearchInput{Q: "needle"}); !slices.Equal(got, []int64{first}) {
			t.Fatalf("search after the wake-up: %v, want [%d]", got, first)
		}
		// The round moved something, so the next waits for the interval: this send starts none.
		send(t, s, g, bob, "wake needle two", at(3))
		select {
		case r := <-rounds:
			t.Fatalf("a round (%+v) right after a round that indexed", r)
		case <-time.After(300 * time.Millisecond):
		}
	})
}
