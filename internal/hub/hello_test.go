package hub_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// TestHelloRace: a message committed while the hello is being built is either history (at
// most hello's last_seq) or delivered live, never both.
func TestHelloRace(t *testing.T) {
	ctx := context.Background()
	wrapped := &duringChatsOf{nth: 2} // the second reading: after the connection follows the chat, before hello's last seqs
	srv := startServer(t, serverConfig{WrapStore: func(st chat.Store) chat.Store { wrapped.Store = st; return wrapped }})
	st, svc := srv.Store, srv.Svc
	first, err := st.UserByEmail(ctx, "first@example.com")
	if err != nil {
		t.Fatal(err)
	}
	second, err := st.UserByEmail(ctx, "second@example.com")
	if err != nil {
		t.Fatal(err)
	}
	wrapped.user = first.ID

	chats, err := st.ChatsOf(ctx, first.ID)
	if err != nil || len(chats) == 0 {
		t.Fatalf("chats of the first demo user: %v, %v", chats, err)
	}
	var shared int64
	for _, c := range chats {
		if err := svc.IsMember(ctx, chat.Principal{UserID: second.ID}, c.ID); err == nil {
			shared = c.ID
			break
		}
	}
	if shared == 0 {
		t.Fatal("the demo users share no chat")
	}
	wrapped.do = func() {
		if _, _, err := svc.Send(ctx, chat.Principal{UserID: second.ID}, chat.SendInput{ChatID: shared, Body: "during hello", ClientID: "race"}); err != nil {
			t.Errorf("send during hello: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // the live event reaches the connection
	}

	conn, err := login(t, srv.URL, "first@example.com").Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	f, err := conn.Next(ctx)
	if err != nil || f.Type != "hello" {
		t.Fatalf("first frame: %v %v", f.Type, err)
	}
	var hello struct {
		Chats []struct {
			ID      int64 `json:"id"`
			LastSeq int64 `json:"last_seq"`
		} `json:"chats"`
	}
	json.Unmarshal(f.Data, &hello)
	var last int64
	for _, c := range hello.Chats {
		if c.ID == shared {
			last = c.LastSeq
		}
	}
	if wrapped.calls.Load() < 2 || last == 0 {
		t.Fatalf("the hello read the chats %d times; chat %d last seq %d", wrapped.calls.Load(), shared, last)
	}
	wait, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	for {
		f, err := conn.Next(wait)
		if err != nil {
			return // nothing more: right
		}
		if f.Type != "message.new" {
			continue
		}
		var m msg
		json.Unmarshal(f.Data, &m)
		if m.Message.Seq <= last {
			t.Fatalf("message seq %d delivered live although hello's last_seq is %d", m.Message.Seq, last)
		}
	}
}

// TestSyncAfterLive: a client that reconnects sends sync with the last seq it had; messages
// sent live on the new connection before the server reads that sync are not sent again by
// it: the sync fills in history only, up to hello's last_seq.
func TestSyncAfterLive(t *testing.T) {
	s := startServer(t, serverConfig{})
	a, b := s.NewUser(t, "A"), s.NewUser(t, "B")
	id := s.Group(t, a, "G", false, b)
	send := func(client string) int64 {
		m, _, err := s.Svc.Send(context.Background(), a.P(), chat.SendInput{ChatID: id, Body: client, ClientID: client})
		if err != nil {
			t.Fatal(err)
		}
		return m.Seq
	}
	send("h1")
	last := send("h2") // the client missed h1 and h2 while it was away
	c := s.Dial(t, b)
	live1, live2 := send("l1"), send("l2")
	for _, want := range []int64{live1, live2} { // delivered live before the client syncs
		f := c.Next(5 * time.Second)
		var m msg
		json.Unmarshal(f.Data, &m)
		if f.Type != "message.new" || m.Message.Seq != want {
			t.Fatalf("got %s seq %d, want message.new %d", f.Type, m.Message.Seq, want)
		}
	}
	got := c.RoundTrip("sync", "s", map[string]any{"cursors": map[string]int64{strconv.FormatInt(id, 10): last - 2}})
	var seqs []int64
	for _, f := range ofType(got, "message.new") {
		var m msg
		json.Unmarshal(f.Data, &m)
		seqs = append(seqs, m.Message.Seq)
	}
	if want := []int64{last - 1, last}; !slices.Equal(seqs, want) || len(ofType(got, "sync.done")) != 1 {
		t.Fatalf("sync sent seqs %v and %d sync.done, want %v and one", seqs, len(ofType(got, "sync.done")), want)
	}
}

// TestSyncsAnswerInOrder: two sync frames sent back to back are answered in the order sent,
// each's messages then its sync.done. A sync's message.new frames carry no ref, so a client can
// tell the answers apart only by their order; a mutex between the two syncs' goroutines let
// the second overtake the first about half the time. And a sync sent right after a sync.done
// is not refused as a third one: each round's come right after the last round's answer.
func TestSyncsAnswerInOrder(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	a, b := s.NewUser(t, "A"), s.NewUser(t, "B")
	id := s.Group(t, a, "G", false, b)
	var last int64
	for i := range 3 {
		m, _, err := s.Svc.Send(context.Background(), a.P(), chat.SendInput{ChatID: id, Body: "m", ClientID: strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		last = m.Seq
	}
	c := s.Dial(t, b)
	key := strconv.FormatInt(id, 10)
	for i := range 20 {
		c.Send("sync", "first", map[string]any{"cursors": map[string]int64{key: 0}})
		c.Send("sync", "second", map[string]any{"cursors": map[string]int64{key: last - 1}})
		var got []string
		for _, f := range c.UntilPong("p" + strconv.Itoa(i)) {
			switch f.Type {
			case "message.new":
				var m msg
				json.Unmarshal(f.Data, &m)
				got = append(got, strconv.FormatInt(m.Message.Seq, 10))
			case "sync.done":
				got = append(got, "done "+string(f.Ref))
			case "error": // the next round's syncs come right after this one's sync.done
				got = append(got, "error "+string(f.Raw))
			}
		}
		want := []string{}
		for seq := int64(1); seq <= last; seq++ {
			want = append(want, strconv.FormatInt(seq, 10))
		}
		want = append(want, `done "first"`, strconv.FormatInt(last, 10), `done "second"`)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: got %q, want %q", i, got, want)
		}
	}
}
