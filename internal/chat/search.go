package chat

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf16"
)

// Message search (issue 16). A query is a list of terms: words separated by spaces, and
// phrases in double quotes. A text message matches when its body holds every term as a
// substring, compared after FoldSearch on both sides. Substrings, not words, because that is
// the one meaning that is the same for every language (Chinese and Japanese have no spaces,
// German glues nouns together) and the same on both databases: PostgreSQL's trigram index and
// SQLite's FTS5 trigram tokenizer both find substrings. Stop words are ordinary terms.
//
// The store finds candidates through its index and returns them with the message's current
// body; the service keeps those whose current body matches (an edit or deletion not yet
// re-indexed never yields a wrong hit) and computes the highlights from that body.

// Limits of a search.
const (
	MaxSearchChars    = 200
	MaxSearchTerms    = 10
	DefaultSearchHits = 20
	MaxSearchHits     = 50
	// searchRounds bounds the store calls one page may take when candidates fail the check
	// against the current body or a short query's bounded scans find few hits.
	searchRounds = 4
)

// SearchChat is the chat of a hit, enough to show it in a result list.
type SearchChat struct {
	ID    int64  `json:"id"`
	Kind  string `json:"kind" enum:"private,group"`
	Title string `json:"title" doc:"a group's title; for a private chat the other member's name"`
}

// TextSpan is a highlighted part of a message body: [Start, End) in UTF-16 code units, the
// unit of JavaScript strings (body.slice(start, end)).
type TextSpan struct {
	Start int `json:"start" doc:"first UTF-16 code unit of the match in message.body"`
	End   int `json:"end" doc:"UTF-16 code unit just after the match"`
}

// SearchHit is one message a search found, with its chat and where the terms are in its body.
type SearchHit struct {
	Message    Message    `json:"message"`
	Chat       SearchChat `json:"chat"`
	Highlights []TextSpan `json:"highlights" doc:"where the query's terms are in message.body, in order, not overlapping; UTF-16 code unit offsets (not HTML)"`
}

// SearchQuery is one store call of a search: candidates among the text messages of the chats
// the user is a member of now (or of ChatID only), with ids below Before (0: any), newest
// first, at most Limit of them. Terms are folded (FoldSearch).
type SearchQuery struct {
	UserID int64
	ChatID int64
	Terms  []string
	Before int64
	Limit  int
}

// SearchBatch is what a store call found: candidates newest first, each with its current
// body, and Next, the Before of the call that goes on where this one stopped (0: nothing older
// is left). A store may examine a bounded window only (a query its index cannot serve); then
// Hits may be few or none while Next is not 0.
type SearchBatch struct {
	Hits []SearchHit
	Next int64
}

// SearchInput is a search request.
type SearchInput struct {
	Q      string
	ChatID int64
	Before int64
	Limit  int
}

// SearchPage is one page of results. NextBefore is the before of the next page; 0 when the
// search has looked through everything.
type SearchPage struct {
	Hits       []SearchHit
	NextBefore int64
}

// FoldSearch is the case folding of search, rune by rune so that offsets into a folded text
// are offsets into the original. The store indexes folded bodies; queries are folded alike.
func FoldSearch(s string) string {
	return strings.Map(FoldRune, s)
}

// FoldRune is one letter's case folding (Unicode's simple folding): its lower case, or for a
// lowercase letter that has another form (a final sigma ς, the micro sign, the long s ſ), the
// lower case of its upper case, σ, μ, s. The Turkish dotless ı stays itself, as in Unicode's
// folding. Migration 00014 folded the index anew when this grew past lower case.
func FoldRune(r rune) rune {
	l := unicode.ToLower(r)
	if r == 'ı' {
		return l
	}
	if u := unicode.ToUpper(r); u != r {
		if f := unicode.ToLower(u); f != l {
			return f
		}
	}
	return l
}

// ParseSearch splits a query into folded terms: words, and "phrases" (an unclosed quote runs
// to the end). Repeated terms count once.
func ParseSearch(q string) []string {
	var terms []string
	seen := map[string]bool{}
	add := func(t string) {
		t = strings.TrimSpace(t)
		if t == "" || seen[t] {
			return
		}
		seen[t] = true
		terms = append(terms, t)
	}
	q = FoldSearch(q)
	for q != "" {
		q = strings.TrimLeftFunc(q, unicode.IsSpace)
		if strings.HasPrefix(q, `"`) {
			phrase, rest, _ := strings.Cut(q[1:], `"`)
			add(strings.Join(strings.Fields(phrase), " "))
			q = rest
			continue
		}
		end := strings.IndexFunc(q, func(r rune) bool { return unicode.IsSpace(r) || r == '"' })
		if end < 0 {
			end = len(q)
		}
		add(q[:end])
		q = q[end:]
	}
	return terms
}

// MatchSpans reports whether body holds every term (folded) and where: the spans of every
// occurrence of every term, merged where they overlap, in UTF-16 code units.
func MatchSpans(body string, terms []string) ([]TextSpan, bool) {
	if len(terms) == 0 {
		return nil, false
	}
	folded := FoldSearch(body)
	// Byte offsets of folded are byte offsets of body only when folding kept every rune's
	// length; map through rune indexes instead.
	type rng struct{ from, to int } // byte offsets in folded
	var found []rng
	for _, t := range terms {
		hit := false
		for at := 0; at <= len(folded); {
			i := strings.Index(folded[at:], t)
			if i < 0 {
				break
			}
			hit = true
			found = append(found, rng{at + i, at + i + len(t)})
			at += i + len(t)
		}
		if !hit {
			return nil, false
		}
	}
	// UTF-16 offset of each byte offset of folded that starts a rune (and of its end).
	u16 := make(map[int]int, 2*len(found))
	for _, r := range found {
		u16[r.from], u16[r.to] = 0, 0
	}
	units := 0
	for i, r := range folded {
		if _, ok := u16[i]; ok {
			u16[i] = units
		}
		units += utf16.RuneLen(r) // range yields U+FFFD for invalid bytes: never -1
	}
	if _, ok := u16[len(folded)]; ok {
		u16[len(folded)] = units
	}
	spans := make([]TextSpan, 0, len(found))
	for _, r := range found {
		spans = append(spans, TextSpan{u16[r.from], u16[r.to]})
	}
	return mergeSpans(spans), true
}

func mergeSpans(spans []TextSpan) []TextSpan {
	for i := 1; i < len(spans); i++ { // insertion sort: a handful of spans
		for j := i; j > 0 && spans[j].Start < spans[j-1].Start; j-- {
			spans[j], spans[j-1] = spans[j-1], spans[j]
		}
	}
	out := spans[:0]
	for _, s := range spans {
		if n := len(out); n > 0 && s.Start <= out[n-1].End {
			out[n-1].End = max(out[n-1].End, s.End)
			continue
		}
		out = append(out, s)
	}
	return out
}

// SearchMessages finds the text messages of the caller's chats (or of one of them) that hold
// every term of the query, newest first.
func (s *Service) SearchMessages(ctx context.Context, p Principal, in SearchInput) (SearchPage, error) {
	if in.Limit == 0 {
		in.Limit = DefaultSearchHits
	}
	if in.Limit < 1 || in.Limit > MaxSearchHits {
		return SearchPage{}, Invalid("query.limit", "limit must be between 1 and %d", MaxSearchHits)
	}
	if in.Before < 0 {
		return SearchPage{}, Invalid("query.before", "before must not be negative")
	}
	if n := len([]rune(in.Q)); n > MaxSearchChars {
		return SearchPage{}, Invalid("query.q", "a query has at most %d characters", MaxSearchChars)
	}
	if strings.ContainsRune(in.Q, 0) { // no text holds it, and PostgreSQL refuses it in a string
		return SearchPage{}, Invalid("query.q", "q must not contain NUL")
	}
	terms := ParseSearch(in.Q)
	if len(terms) == 0 {
		return SearchPage{}, Invalid("query.q", "the query is empty")
	}
	if len(terms) > MaxSearchTerms {
		return SearchPage{}, Invalid("query.q", "a query has at most %d terms", MaxSearchTerms)
	}
	if in.ChatID != 0 {
		if _, err := s.memberChat(ctx, p, in.ChatID); err != nil {
			return SearchPage{}, err
		}
	}
	page := SearchPage{Hits: []SearchHit{}}
	before := in.Before
	for round := 0; round < searchRounds; round++ {
		b, err := s.store.SearchMessages(ctx, SearchQuery{UserID: p.UserID, ChatID: in.ChatID, Terms: terms,
			Before: before, Limit: in.Limit - len(page.Hits)})
		if err != nil {
			return SearchPage{}, storeErr(err, "search messages")
		}
		page.NextBefore = b.Next
		for i, h := range b.Hits {
			spans, ok := MatchSpans(h.Message.Body, terms)
			if !ok { // edited or deleted since it was indexed
				continue
			}
			h.Highlights = spans
			page.Hits = append(page.Hits, h)
			if len(page.Hits) == in.Limit {
				if i < len(b.Hits)-1 || b.Next != 0 {
					page.NextBefore = h.Message.ID
				}
				return page, nil
			}
		}
		if b.Next == 0 {
			break
		}
		before = b.Next
	}
	return page, nil
}
