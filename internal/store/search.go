package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/wschat/chat/internal/chat"
)

// Short queries. A term the index cannot serve (fewer than three characters, or on
// PostgreSQL no run of three letters or digits, which is all pg_trgm keys on) is checked on
// the rows the index found. A query of such terms only (a two-character Chinese word, an
// emoji) has no index to start from: it reads the caller's newest messages instead, about
// shortScanRows of them in all (at least shortScanMin of each chat), and the page says where
// to go on. Each page of such a search costs a bounded read, however large the history.
const (
	shortScanRows = 2000
	shortScanMin  = 10
)

// searchColumns are a hit's columns: the message (m), its chat (c) and a private chat's peer (p).
const searchColumns = `m.id, m.chat_id, m.seq, m.kind, m.sender_id, m.body, m.client_id, m.created_at,
	m.event_type, m.event_user_id, m.event_actor_id, m.event_text, m.file_count, m.rev, m.edited_at, m.deleted_at,
	m.reply_to_seq, m.mentions, m.mention_all, c.kind, c.title, p.name`

// searchJoins add a hit's chat and the peer of a private chat; $1 is the caller.
const searchJoins = ` JOIN chats c ON c.id = m.chat_id
	LEFT JOIN members pm ON c.kind = 'private' AND pm.chat_id = c.id AND pm.user_id <> $1
	LEFT JOIN users p ON p.id = pm.user_id`

// SearchMessages implements chat.Store.
func (s *Store) SearchMessages(ctx context.Context, q chat.SearchQuery) (chat.SearchBatch, error) {
	out, err := s.searchMessages(ctx, q)
	if err != nil {
		return out, err
	}
	// A hit is a whole message, as history has it: reactions, the answered message, files.
	byChat := map[int64][]int{}
	msgs := make([]chat.Message, len(out.Hits))
	for i, h := range out.Hits {
		msgs[i] = h.Message
		byChat[h.Message.ChatID] = append(byChat[h.Message.ChatID], i)
	}
	for chatID, at := range byChat {
		part := make([]chat.Message, len(at))
		for j, i := range at {
			part[j] = msgs[i]
		}
		if err := fillMessages(ctx, s.db, chatID, part); err != nil {
			return out, wrap(err)
		}
		for j, i := range at {
			msgs[i] = part[j]
		}
	}
	if err := loadFiles(ctx, s.db, msgs); err != nil {
		return out, err
	}
	for i := range out.Hits {
		out.Hits[i].Message = msgs[i]
	}
	return out, nil
}

func (s *Store) searchMessages(ctx context.Context, q chat.SearchQuery) (chat.SearchBatch, error) {
	if q.Before <= 0 {
		q.Before = 1<<63 - 1
	}
	var indexed, checked []string
	for _, t := range q.Terms {
		if s.indexable(t) {
			indexed = append(indexed, t)
		} else {
			checked = append(checked, t)
		}
	}
	if len(indexed) == 0 {
		return s.scanRecent(ctx, q)
	}
	if q.ChatID != 0 {
		var size int64
		err := s.db.QueryRowContext(ctx, `SELECT last_seq FROM chats WHERE id = $1`, q.ChatID).Scan(&size)
		if err != nil && err != sql.ErrNoRows {
			return chat.SearchBatch{}, wrap(err)
		}
		if size <= s.chatWalkMax {
			return s.walkChat(ctx, q)
		}
	}
	var b query
	user := b.arg(q.UserID)
	if s.dialect.name == postgres.name {
		b.WriteString(`SELECT ` + searchColumns + ` FROM message_search s
			JOIN members mb ON mb.chat_id = s.chat_id AND mb.user_id = ` + user + `
			JOIN messages m ON m.id = s.id` + searchJoins + `
			WHERE s.id < ` + b.arg(q.Before))
		for _, t := range indexed {
			b.WriteString(` AND s.body LIKE ` + b.arg("%"+likeEscape(t)+"%"))
		}
		for _, t := range checked {
			b.WriteString(` AND strpos(s.body, ` + b.arg(t) + `) > 0`)
		}
		if q.ChatID != 0 {
			b.WriteString(` AND s.chat_id = ` + b.arg(q.ChatID))
		}
		b.WriteString(` ORDER BY s.id DESC LIMIT ` + b.arg(q.Limit))
	} else {
		// CROSS JOIN keeps the full-text table the outer loop: SQLite would otherwise run the
		// MATCH once per chat of the caller.
		phrases := make([]string, len(indexed))
		for i, t := range indexed {
			phrases[i] = `"` + strings.ReplaceAll(t, `"`, `""`) + `"`
		}
		b.WriteString(`SELECT ` + searchColumns + ` FROM message_search s
			CROSS JOIN members mb CROSS JOIN messages m` + searchJoins + `
			WHERE message_search MATCH ` + b.arg(strings.Join(phrases, " ")) + ` AND s.rowid < ` + b.arg(q.Before) + `
			AND mb.chat_id = s.chat_id AND mb.user_id = ` + user + ` AND m.id = s.rowid`)
		for _, t := range checked {
			b.WriteString(` AND instr(s.body, ` + b.arg(t) + `) > 0`)
		}
		if q.ChatID != 0 {
			b.WriteString(` AND s.chat_id = ` + b.arg(q.ChatID))
		}
		b.WriteString(` ORDER BY s.rowid DESC LIMIT ` + b.arg(q.Limit))
	}
	return s.searchPage(ctx, &b, q.Limit)
}

// chatWalkMax is the largest chat (in messages) whose search reads the chat's history,
// newest first, instead of asking the trigram index. Reading a chat stops at the page's last
// hit, and costs at most the chat's size (a rare phrase reads all of it). PostgreSQL's
// trigram index builds the set of all of a term's matches in the whole database before the
// chat's are kept (a common word's hundreds of thousands: seconds at 5 million messages,
// docs/PERFORMANCE.md), so every chat but a huge one is read instead. SQLite's full-text
// table walks the matches newest first and stops at the page's last hit in the chat, which is
// quick when the chat holds a fair share of the history: only small chats are read there.
const (
	chatWalkMax       = 50_000
	chatWalkMaxSQLite = 5_000
)

// walkChat is the search of one chat by its history: its messages newest first through the
// (chat_id, seq) index, each checked against its copy in the search index, so that it finds
// what the index query finds (the indexed copy, not the body, is compared), in the same order
// (a chat's seq grows with the id).
func (s *Store) walkChat(ctx context.Context, q chat.SearchQuery) (chat.SearchBatch, error) {
	var b query
	user := b.arg(q.UserID)
	contains := `strpos(s.body, %s) > 0`
	join := ` JOIN message_search s ON s.id = m.id`
	if s.dialect.name != postgres.name {
		// CROSS JOIN keeps the chat's messages the outer loop; the full-text table is
		// reached by its rowid.
		contains, join = `instr(s.body, %s) > 0`, ` CROSS JOIN message_search s`
	}
	b.WriteString(`SELECT ` + searchColumns + ` FROM messages m` + join + searchJoins + `
		JOIN members mb ON mb.chat_id = m.chat_id AND mb.user_id = ` + user + `
		WHERE m.chat_id = ` + b.arg(q.ChatID) + ` AND m.id < ` + b.arg(q.Before))
	if s.dialect.name != postgres.name {
		b.WriteString(` AND s.rowid = m.id`)
	}
	for _, t := range q.Terms {
		b.WriteString(` AND ` + fmt.Sprintf(contains, b.arg(t)))
	}
	b.WriteString(` ORDER BY m.seq DESC LIMIT ` + b.arg(q.Limit))
	return s.searchPage(ctx, &b, q.Limit)
}

// indexable reports whether the dialect's index can find the term by itself.
func (s *Store) indexable(term string) bool {
	if s.dialect.name != postgres.name {
		return utf8.RuneCountInString(term) >= 3
	}
	run := 0
	for _, r := range term {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if run++; run == 3 {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// scanRecent returns the newest text messages of each of the caller's chats below q.Before,
// at most perChat of each, as candidates: the service checks each against the terms. It
// returns them down to the point where every chat's messages are complete (the oldest of the
// chat whose perChat-th message is the newest such), so paging on from Next skips nothing.
// Messages are read from their table: what was sent a moment ago is found before the indexer
// gets to it.
func (s *Store) scanRecent(ctx context.Context, q chat.SearchQuery) (chat.SearchBatch, error) {
	var chats []int64
	if q.ChatID != 0 {
		chats = []int64{q.ChatID}
	} else {
		rows, err := s.db.QueryContext(ctx, `SELECT chat_id FROM members WHERE user_id = $1`, q.UserID)
		if err != nil {
			return chat.SearchBatch{}, wrap(err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return chat.SearchBatch{}, wrap(err)
			}
			chats = append(chats, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return chat.SearchBatch{}, wrap(err)
		}
	}
	if len(chats) == 0 {
		return chat.SearchBatch{}, nil
	}
	perChat := max(shortScanMin, shortScanRows/len(chats))
	var hits []chat.SearchHit
	if s.dialect.name == postgres.name {
		// One statement: each chat's newest through its (chat_id, seq) index.
		var b query
		user := b.arg(q.UserID)
		b.WriteString(`SELECT ` + searchColumns + ` FROM members mb
			CROSS JOIN LATERAL (SELECT * FROM messages x WHERE x.chat_id = mb.chat_id AND x.id < ` + b.arg(q.Before) + `
				AND x.kind = 'text' ORDER BY x.seq DESC LIMIT ` + b.arg(perChat) + `) m` + searchJoins + `
			WHERE mb.user_id = ` + user)
		if q.ChatID != 0 {
			b.WriteString(` AND mb.chat_id = ` + b.arg(q.ChatID))
		}
		var err error
		if hits, err = s.searchRows(ctx, &b); err != nil {
			return chat.SearchBatch{}, err
		}
	} else {
		// SQLite has no LATERAL; its queries cost no round trip.
		for _, id := range chats {
			var b query
			user := b.arg(q.UserID)
			b.WriteString(`SELECT ` + searchColumns + ` FROM messages m` + searchJoins + `
				WHERE m.chat_id = ` + b.arg(id) + ` AND m.id < ` + b.arg(q.Before) + ` AND m.kind = 'text'
				AND EXISTS (SELECT 1 FROM members mb WHERE mb.chat_id = m.chat_id AND mb.user_id = ` + user + `)
				ORDER BY m.seq DESC LIMIT ` + b.arg(perChat))
			h, err := s.searchRows(ctx, &b)
			if err != nil {
				return chat.SearchBatch{}, err
			}
			hits = append(hits, h...)
		}
	}
	// The cut: below the oldest message of a chat that had perChat of them, that chat's
	// older messages were not read.
	count, oldest := map[int64]int{}, map[int64]int64{}
	for _, h := range hits {
		count[h.Message.ChatID]++
		if o, ok := oldest[h.Message.ChatID]; !ok || h.Message.ID < o {
			oldest[h.Message.ChatID] = h.Message.ID
		}
	}
	var cut int64
	for c, n := range count {
		if n == perChat {
			cut = max(cut, oldest[c])
		}
	}
	slices.SortFunc(hits, func(a, b chat.SearchHit) int { return cmp.Compare(b.Message.ID, a.Message.ID) })
	out := chat.SearchBatch{Next: cut}
	for _, h := range hits {
		if h.Message.ID < cut {
			break
		}
		out.Hits = append(out.Hits, h)
	}
	return out, nil
}

// searchPage runs a search query whose answer is a page of at most limit hits, newest first:
// a full page names where the next one starts.
func (s *Store) searchPage(ctx context.Context, b *query, limit int) (chat.SearchBatch, error) {
	hits, err := s.searchRows(ctx, b)
	if err != nil {
		return chat.SearchBatch{}, err
	}
	out := chat.SearchBatch{Hits: hits}
	if len(hits) == limit {
		out.Next = hits[len(hits)-1].Message.ID
	}
	return out, nil
}

func (s *Store) searchRows(ctx context.Context, b *query) ([]chat.SearchHit, error) {
	rows, err := s.db.QueryContext(ctx, b.String(), b.args...)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var hits []chat.SearchHit
	for rows.Next() {
		var n nullMessage
		var h chat.SearchHit
		var peer sql.NullString
		if err := rows.Scan(append(n.dest(), &h.Chat.Kind, &h.Chat.Title, &peer)...); err != nil {
			return nil, wrap(err)
		}
		h.Message = *n.message()
		h.Chat.ID = h.Message.ChatID
		if h.Chat.Kind == chat.KindPrivate && peer.Valid {
			h.Chat.Title = peer.String
		}
		hits = append(hits, h)
	}
	return hits, wrap(rows.Err())
}

// likeEscape escapes LIKE's wildcards and its escape character (PostgreSQL's default: \).
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
