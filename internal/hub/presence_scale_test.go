package hub_test

// Presence and typing that scale (issue 17): in a group above Options.PresenceGroupMax, a
// member's presence reaches only the connections subscribed to it (presence.subscribe) and
// typing only the connections that have the chat open (chat.open); small groups and private
// chats keep telling every member.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/broker/redisbroker"
	"github.com/wschat/chat/internal/hub"
	"github.com/wschat/chat/internal/testdb"
	"github.com/wschat/chat/internal/testserver"
)

const wait = 20 * time.Second

type presenceState struct {
	UserID     int64   `json:"user_id"`
	Online     bool    `json:"online"`
	LastSeenAt *string `json:"last_seen_at"`
}

// presenceOf reads either form of a presence frame: {users:[...]} (a client that subscribed)
// or the single-user {user_id, online}.
func presenceOf(t *testing.T, f frame) (states []presenceState, batched bool) {
	t.Helper()
	var d struct {
		Users *[]presenceState `json:"users"`
		presenceState
	}
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatalf("presence frame %s: %v", f.Raw, err)
	}
	if d.Users != nil {
		return *d.Users, true
	}
	return []presenceState{d.presenceState}, false
}

// bigGroup starts a server whose groups above max members are big, and a group of n new users.
func bigGroup(t *testing.T, max, n int) (*testServer, int64, []*testUser) {
	t.Helper()
	s := startServer(t, serverConfig{Hub: hub.Options{PresenceGroupMax: max, PresenceEvery: 50 * time.Millisecond}})
	users := make([]*testUser, n)
	for i := range users {
		users[i] = s.NewUser(t, fmt.Sprintf("member %d", i))
	}
	return s, s.Group(t, users[0], "big", false, users[1:]...), users
}

func userIDs(us []*testUser) []int64 {
	out := make([]int64, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}

// collectOnline reads c's presence frames until every user of want has been seen online,
// and returns the presence frames read.
func collectOnline(t *testing.T, c *wsConn, want []int64) []frame {
	t.Helper()
	missing := map[int64]bool{}
	for _, id := range want {
		missing[id] = true
	}
	var got []frame
	for len(missing) > 0 {
		f := c.NextOf("presence", wait)
		got = append(got, f)
		states, _ := presenceOf(t, f)
		for _, st := range states {
			if st.Online {
				delete(missing, st.UserID)
			}
		}
	}
	return got
}

func framesOut(s *testServer, typ string) int64 {
	return s.Hub.Stats().FramesOut[slices.Index(hub.FrameTypes, typ)].Load()
}

// TestPresenceFramesGrowLinearly: N members of one group connect one after another. In a
// small group every member hears of every later one (N(N-1)/2 frames at least); in a big one
// nobody who did not subscribe hears anything, so the whole burst costs what the one
// subscriber gets, at most a frame per member. The old behaviour (every member told of every
// other, whatever the group's size) fails the bound.
func TestPresenceFramesGrowLinearly(t *testing.T) {
	const n = 30
	for _, tc := range []struct {
		name string
		max  int
	}{{"small group", n + 10}, {"big group", 10}} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, users := bigGroup(t, tc.max, n)
			// The owner subscribes to everyone: once it has seen them all online, every
			// presence event of the burst has been delivered on this instance.
			watcher := s.Dial(t, users[0])
			others := userIDs(users[1:])
			answer := watcher.RoundTrip("presence.subscribe", "sub", map[string]any{"user_ids": others})
			if got := len(ofType(answer, "presence")); got != 1 {
				t.Fatalf("presence.subscribe answered with %d presence frames, want 1: %s", got, testserver.Raws(answer))
			}
			conns := make([]*wsConn, 0, n-1)
			for _, u := range users[1:] {
				conns = append(conns, s.Dial(t, u))
			}
			got := collectOnline(t, watcher, others)
			for _, f := range got {
				if _, batched := presenceOf(t, f); !batched {
					t.Errorf("a subscriber got the single-user form: %s", f.Raw)
				}
			}
			if tc.max > n {
				// Every member hears of every member who connected after them.
				for i, c := range conns {
					collectOnline(t, c, others[i+1:])
				}
				if total := framesOut(s, "presence"); total < int64((n-1)*(n-2)/2) {
					t.Errorf("%d presence frames in a small group of %d, want at least %d", total, n, (n-1)*(n-2)/2)
				}
				return
			}
			for _, c := range conns {
				if p := ofType(c.UntilPong("barrier"), "presence"); len(p) > 0 {
					t.Errorf("a member who did not subscribe got presence: %s", testserver.Raws(p))
				}
			}
			total := framesOut(s, "presence")
			if total > 2*n {
				t.Errorf("%d presence frames for %d members connecting, want at most %d (O(N))", total, n, 2*n)
			}
			t.Logf("%d members connecting: %d presence frames in all, %d to the subscriber", n, total, len(got)+1)
		})
	}
}

// TestPresenceSubscribe: the answer carries the current state of each user named who shares
// a chat with the caller, and nothing of anyone else; a new call replaces the subscriptions;
// more than 500 ids or an id that is not one is refused with an error, not a disconnect.
func TestPresenceSubscribe(t *testing.T) {
	s, _, users := bigGroup(t, 3, 6)
	stranger := s.NewUser(t, "stranger")
	s.Dial(t, stranger) // online: its presence must not leak
	w := s.Dial(t, users[0])
	s.Dial(t, users[1])

	// The owner's own presence is known to it; users[1] online; users[2] offline.
	sub := func(ref string, ids []int64) []presenceState {
		t.Helper()
		fs := w.RoundTrip("presence.subscribe", ref, map[string]any{"user_ids": ids})
		for _, f := range fs {
			if f.Type == "presence" && string(f.Ref) == `"`+ref+`"` {
				states, batched := presenceOf(t, f)
				if !batched {
					t.Errorf("answer not in the {users} form: %s", f.Raw)
				}
				return states
			}
		}
		t.Fatalf("no presence answer to %s: %s", ref, testserver.Raws(fs))
		return nil
	}
	var got []presenceState
	// The presence of users[1] may take a moment to be recorded.
	deadline := time.Now().Add(wait)
	for {
		got = sub("s1", []int64{users[1].ID, users[2].ID, stranger.ID, 1 << 40})
		if len(got) == 2 && got[0].Online || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := []presenceState{{UserID: users[1].ID, Online: true}, {UserID: users[2].ID}}
	if len(got) != 2 || got[0].UserID != want[0].UserID || !got[0].Online || got[1].UserID != want[1].UserID || got[1].Online {
		t.Errorf("answer %+v, want %+v (the stranger and an unknown id left out)", got, want)
	}

	// The subscription is to users[2] only now: users[3] coming online is not told.
	sub("s2", []int64{users[2].ID})
	s.Dial(t, users[3])
	s.Dial(t, users[2])
	for _, f := range collectOnline(t, w, []int64{users[2].ID}) {
		states, _ := presenceOf(t, f)
		for _, st := range states {
			if st.UserID != users[2].ID {
				t.Errorf("presence of user %d, not subscribed", st.UserID)
			}
		}
	}

	for _, tc := range []struct {
		name string
		data any
	}{
		{"501 ids", map[string]any{"user_ids": make([]int64, 501)}},
		{"not an id", map[string]any{"user_ids": []int64{-4}}},
		{"not a list", map[string]any{"user_ids": "all"}},
	} {
		fs := w.RoundTrip("presence.subscribe", "bad", tc.data)
		if code, ok := errorOf(fs, "bad"); !ok || code != "invalid" {
			t.Errorf("%s: error %q (%v), want invalid: %s", tc.name, code, ok, testserver.Raws(fs))
		}
	}
}

// TestBigGroupTyping: typing in a big group reaches only the connections with the chat open,
// collected into one frame per interval; closing the chat (null) stops it; a chat the caller
// is not a member of cannot be opened.
func TestBigGroupTyping(t *testing.T) {
	s, group, users := bigGroup(t, 3, 6)
	open, closed, later := s.Dial(t, users[1]), s.Dial(t, users[2]), s.Dial(t, users[3])
	for _, c := range []*wsConn{open, later} {
		if fs := c.RoundTrip("chat.open", "o", map[string]any{"chat_id": group}); len(ofType(fs, "error")) > 0 {
			t.Fatalf("chat.open: %s", testserver.Raws(fs))
		}
	}
	typists := []*wsConn{s.Dial(t, users[0]), s.Dial(t, users[4])}
	for _, c := range typists {
		c.Send("typing", "", map[string]any{"chat_id": group})
	}
	for _, c := range []*wsConn{open, later} {
		seen := map[int64]bool{}
		for len(seen) < 2 {
			f := c.NextOf("typing", wait)
			var d struct {
				ChatID  int64   `json:"chat_id"`
				UserID  int64   `json:"user_id"`
				UserIDs []int64 `json:"user_ids"`
			}
			json.Unmarshal(f.Data, &d)
			if d.ChatID != group || len(d.UserIDs) == 0 || d.UserID != d.UserIDs[0] {
				t.Fatalf("typing frame %s", f.Raw)
			}
			for _, id := range d.UserIDs {
				seen[id] = true
			}
		}
		if !seen[users[0].ID] || !seen[users[4].ID] {
			t.Errorf("typists seen %v, want users %d and %d", seen, users[0].ID, users[4].ID)
		}
	}
	if fs := ofType(closed.UntilPong("b1"), "typing"); len(fs) > 0 {
		t.Errorf("a connection without the chat open got typing: %s", testserver.Raws(fs))
	}

	// later closes the chat; open still has it: the next typing reaches open only.
	later.RoundTrip("chat.open", "c", map[string]any{"chat_id": nil})
	s.Dial(t, users[5]).Send("typing", "", map[string]any{"chat_id": group})
	open.NextOf("typing", wait)
	if fs := ofType(later.UntilPong("b2"), "typing"); len(fs) > 0 {
		t.Errorf("a connection that closed the chat got typing: %s", testserver.Raws(fs))
	}

	other := s.Group(t, users[5], "other", false)
	fs := open.RoundTrip("chat.open", "x", map[string]any{"chat_id": other})
	if code, _ := errorOf(fs, "x"); code != "not_found" {
		t.Errorf("chat.open of another's chat: %q, want not_found: %s", code, testserver.Raws(fs))
	}
	fs = open.RoundTrip("chat.open", "y", map[string]any{"chat_id": -1})
	if code, _ := errorOf(fs, "y"); code != "invalid" {
		t.Errorf("chat.open -1: %q, want invalid", code)
	}
}

// TestBigGroupPresenceAcrossInstances: the subscriber is on one instance, the member on
// another, over Redis.
func TestBigGroupPresenceAcrossInstances(t *testing.T) {
	db := testdb.Postgres(t)
	addr, prefix := testdb.Redis(t)
	start := func(id string) *testServer {
		rb, err := redisbroker.New(redisbroker.Options{URL: "redis://" + addr + "/0", Prefix: prefix, InstanceID: id})
		if err != nil {
			t.Fatal(err)
		}
		return startServer(t, serverConfig{DatabaseURL: db, Broker: rb, Presence: rb.Presence(),
			Hub: hub.Options{InstanceID: id, PresenceGroupMax: 3, PresenceEvery: 50 * time.Millisecond}})
	}
	a, b := start("a"), start("b")
	users := make([]*testUser, 6)
	for i := range users {
		users[i] = a.NewUser(t, fmt.Sprintf("member %d", i))
	}
	a.Group(t, users[0], "big", false, users[1:]...)
	w := b.Dial(t, users[0])
	bystander := b.Dial(t, users[5])
	fs := w.RoundTrip("presence.subscribe", "s", map[string]any{"user_ids": []int64{users[1].ID}})
	if len(ofType(fs, "presence")) != 1 {
		t.Fatalf("no answer: %s", testserver.Raws(fs))
	}
	a.Dial(t, users[1])
	a.Dial(t, users[2])
	collectOnline(t, w, []int64{users[1].ID})
	if p := ofType(bystander.UntilPong("b"), "presence"); len(p) > 0 {
		t.Errorf("a member who did not subscribe got presence: %s", testserver.Raws(p))
	}
}

// gatedSubscribes is a broker that counts Subscribe calls and, once held, keeps each waiting
// until the gate opens: a round trip that lasts while a storm of handshakes comes in.
type gatedSubscribes struct {
	broker.Broker
	calls atomic.Int64
	hold  atomic.Bool
	gate  chan struct{}
}

func (b *gatedSubscribes) Subscribe(ctx context.Context, topics ...string) error {
	b.calls.Add(1)
	if b.hold.Load() {
		select {
		case <-b.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return b.Broker.Subscribe(ctx, topics...)
}

// TestConnectStormBatchesSubscriptions: sixty members of one group connect while the
// broker's first subscribe is still waiting for its answer. They do not each wait for a round
// trip of their own in a row (as before: a call each, one after another): the topics they need
// are subscribed in a few batched calls, the shared group's once.
func TestConnectStormBatchesSubscriptions(t *testing.T) {
	bus := &gatedSubscribes{Broker: broker.NewMemory(), gate: make(chan struct{})}
	s := startServer(t, serverConfig{Broker: bus})
	const n = 60
	users := make([]*testUser, n)
	for i := range users {
		users[i] = s.NewUser(t, fmt.Sprintf("member %d", i))
	}
	s.Group(t, users[0], "everyone", false, users[1:]...)
	before := bus.calls.Load()
	bus.hold.Store(true)
	conns := make([]*wsConn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() {
			conns[i], _, errs[i] = s.Handshake(t, "", http.Header{"Authorization": {"Bearer " + u.Token}})
		})
	}
	// Every handshake is in (registered, its hello waiting) before the first answer comes.
	deadline := time.Now().Add(wait)
	for s.Hub.Stats().Connections.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connections registered", s.Hub.Stats().Connections.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(bus.gate)
	wg.Wait()
	for i, c := range conns {
		if errs[i] != nil {
			t.Fatalf("handshake %d: %v", i, errs[i])
		}
		if f := c.Next(wait); f.Type != "hello" {
			t.Fatalf("first frame %s, want hello", f.Raw)
		}
	}
	if calls := bus.calls.Load() - before; calls > 10 {
		t.Errorf("%d broker subscribe calls for %d handshakes, want at most 10 (batched)", calls, n)
	} else {
		t.Logf("%d broker subscribe calls for %d handshakes", calls, n)
	}
}
