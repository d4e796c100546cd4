package client_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wschat/chat/internal/client"
)

func TestChangeApply(t *testing.T) {
	m := client.Message{Seq: 3, Rev: 1, Reactions: []client.Reaction{{Emoji: "👍", Count: 1, UserIDs: []int64{5}}}}
	add := client.Change{Seq: 3, Rev: 2, Reaction: &client.ReactionUpdate{Seq: 3, Rev: 2, Emoji: "🎉", UserID: 6, Added: true, Count: 1}}
	m = add.Apply(m)
	m = add.Apply(m) // a repeat changes nothing
	drop := client.Change{Seq: 3, Rev: 3, Reaction: &client.ReactionUpdate{Seq: 3, Rev: 3, Emoji: "👍", UserID: 5, Added: false, Count: 0}}
	m = drop.Apply(m)
	if got, want := fmt.Sprint(m.Rev, m.Reactions), "3 [{🎉 1 [6]}]"; got != want {
		t.Errorf("after the reactions: %s, want %s", got, want)
	}
	whole := client.Message{Seq: 3, Rev: 4, Body: "new", EditedAt: new(string)}
	if got := (client.Change{Seq: 3, Rev: 4, Message: &whole}).Apply(m); got.Body != "new" || got.Reactions != nil || got.Rev != 4 {
		t.Errorf("message.updated applied: %+v", got)
	}
}

// view is what a session's callbacks show of a chat: each message as changed since.
type view struct {
	mu   sync.Mutex
	msgs map[int64]client.Message
}

func (v *view) message(m client.Message) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.msgs[m.Seq] = m
}

func (v *view) change(ch client.Change) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if m, ok := v.msgs[ch.Seq]; ok {
		v.msgs[ch.Seq] = ch.Apply(m)
	}
}

func stateString(m client.Message) string {
	var rs []string
	for _, r := range m.Reactions {
		rs = append(rs, fmt.Sprintf("%s%d", r.Emoji, r.Count))
	}
	slices.Sort(rs)
	return fmt.Sprintf("%q deleted=%v edited=%v rev=%d %s", m.Body, m.DeletedAt != nil, m.EditedAt != nil, m.Rev, strings.Join(rs, ","))
}

// waitView waits until the view shows every message of the chat after from as the server has it.
func waitView(t *testing.T, v *view, c *client.Client, chatID, from int64) {
	t.Helper()
	var diff string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var page struct {
			Messages []client.Message `json:"messages"`
		}
		if err := c.Do(context.Background(), http.MethodGet, fmt.Sprintf("/api/v1/chats/%d/messages?after_seq=%d&limit=200", chatID, from), nil, &page); err != nil {
			t.Fatal(err)
		}
		diff = ""
		v.mu.Lock()
		for _, w := range page.Messages {
			if got, want := stateString(v.msgs[w.Seq]), stateString(w); got != want {
				diff = fmt.Sprintf("message %d shows %s, the server has %s", w.Seq, got, want)
				break
			}
		}
		v.mu.Unlock()
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(diff)
		}
	}
}

// TestSessionChanges: a session hands edits, deletes and reactions to OnChange, live and, for
// those made while it was away, from the sync with a {seq, rev} cursor; its view ends as the
// server's.
func TestSessionChanges(t *testing.T) {
	t.Parallel()
	srv := newServer(t, time.Hour, 0)
	v := &view{msgs: map[int64]client.Message{}}
	first := client.NewSession(login(t, srv.URL, "first@example.com"), client.SessionOptions{
		GapTimeout: -1, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		OnMessage: v.message, OnChange: v.change,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("session: %v", err)
		}
	})
	if err := first.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	sender := login(t, srv.URL, "second@example.com")
	bg := context.Background()
	a, b := post(t, sender, general, "a"), post(t, sender, general, "b")
	if _, err := sender.React(bg, general, a.Seq, "👍", true); err != nil {
		t.Fatal(err)
	}
	if _, err := sender.Edit(bg, general, b.Seq, "b, edited"); err != nil {
		t.Fatal(err)
	}
	waitView(t, v, sender, general, 4)
	if st := first.Stats(); st.Changes != 2 {
		t.Errorf("%d changes handed on live, want 2", st.Changes)
	}

	srv.down.Store(true)
	srv.cut()
	for first.Connected() {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := sender.React(bg, general, a.Seq, "🎉", true); err != nil {
		t.Fatal(err)
	}
	if _, err := sender.Edit(bg, general, a.Seq, "a, edited"); err != nil {
		t.Fatal(err)
	}
	if err := sender.Delete(bg, general, b.Seq); err != nil {
		t.Fatal(err)
	}
	c := post(t, sender, general, "c")
	if _, err := sender.React(bg, general, c.Seq, "👀", true); err != nil {
		t.Fatal(err)
	}
	srv.down.Store(false)
	waitView(t, v, sender, general, 4)
	if st := first.Stats(); st.Connects < 2 || st.StaleChange != 0 {
		t.Errorf("stats %+v: want a reconnect and no stale change", st)
	}
	if got := first.RevCursors()[general]; got == 0 {
		t.Errorf("rev cursor of the chat: %d", got)
	}
}
