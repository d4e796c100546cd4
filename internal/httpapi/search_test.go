package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestSearchMessagesContract: the answer's shape, paging by next_before, bad input as precise
// problems, and only chats the caller is a member of.
func TestSearchMessagesContract(t *testing.T) {
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		ann, ben, eve := e.newUser(t, "Ann"), e.newUser(t, "Ben"), e.newUser(t, "Eve")
		g := e.group(t, ann, "Plans", false, ben)
		first := e.send(t, ann, g, "Let's meet at the Bahnhof")
		second := e.send(t, ben, g, "bahnhof at noon? 🚉")
		// Index everything. IndexSearch also answers 0 while another instance (the server's own
		// indexer) holds the mark, so wait for the mark to pass the last message.
		for deadline := time.Now().Add(time.Minute); ; {
			n, err := e.store.IndexSearch(context.Background(), time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				continue
			}
			var mark, last int64
			if err := e.store.DB().QueryRow(`SELECT indexed_to FROM search_state`).Scan(&mark); err != nil {
				t.Fatal(err)
			}
			if err := e.store.DB().QueryRow(`SELECT max(id) FROM messages`).Scan(&last); err != nil {
				t.Fatal(err)
			}
			if mark >= last {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the search index stays at %d, the last message is %d", mark, last)
			}
			time.Sleep(10 * time.Millisecond)
		}
		search := func(u *user, q string) resp {
			return e.do(t, req{method: "GET", path: "/api/v1/search/messages?" + q, token: u.Token})
		}
		type hit struct {
			Message struct {
				ID   int64  `json:"id"`
				Body string `json:"body"`
			} `json:"message"`
			Chat struct {
				ID    int64  `json:"id"`
				Kind  string `json:"kind"`
				Title string `json:"title"`
			} `json:"chat"`
			Highlights []struct{ Start, End int } `json:"highlights"`
		}
		type page struct {
			Hits       []hit  `json:"hits"`
			NextBefore *int64 `json:"next_before"`
		}
		r := search(ben, "q=BAHNHOF&limit=1")
		r.want(t, http.StatusOK, "")
		if got := keys(t, r.body); fmt.Sprint(got) != "[hits next_before]" {
			t.Errorf("keys: got %v", got)
		}
		p := decode[page](t, r)
		if len(p.Hits) != 1 || p.Hits[0].Message.ID != second.ID || p.NextBefore == nil || p.Hits[0].Chat.Title != "Plans" ||
			p.Hits[0].Chat.Kind != "group" || p.Hits[0].Chat.ID != g || fmt.Sprint(p.Hits[0].Highlights) != "[{0 7}]" {
			t.Fatalf("first page: got %+v", p)
		}
		p = decode[page](t, search(ben, fmt.Sprintf("q=bahnhof&limit=1&before=%d", *p.NextBefore)))
		if len(p.Hits) != 1 || p.Hits[0].Message.ID != first.ID || fmt.Sprint(p.Hits[0].Highlights) != "[{18 25}]" {
			t.Fatalf("second page: got %+v", p)
		}
		p = decode[page](t, search(ben, "q="+url.QueryEscape("🚉")))
		if len(p.Hits) != 1 || p.NextBefore != nil {
			t.Errorf("an emoji: got %+v, want one hit and no next page", p)
		}
		if p := decode[page](t, search(eve, "q=bahnhof")); len(p.Hits) != 0 {
			t.Errorf("a stranger finds %+v, want nothing", p.Hits)
		}
		search(eve, fmt.Sprintf("q=bahnhof&chat_id=%d", g)).want(t, http.StatusNotFound, "not_found")
		search(ben, "q=").wantField(t, "query.q")
		search(ben, "q=%20%20").wantField(t, "query.q")
		search(ben, "q=a&limit=51").wantField(t, "query.limit")
		search(ben, "q=a&before=-1").wantField(t, "query.before")
		e.do(t, req{method: "GET", path: "/api/v1/search/messages?q=a"}).want(t, http.StatusUnauthorized, "unauthenticated")
	})
}
