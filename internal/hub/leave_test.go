package hub_test

// After a leave is committed, no socket of the leaver receives anything more of that chat,
// whatever the interleaving (issue 11, item 2). The attack that found it: open WebSocket
// handshakes while POST /chats/{id}/leave runs; a socket set up in the race kept receiving
// the group's messages, typing and read marks while GET /chats/{id} already answered 404.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/hub"
	"github.com/wschat/chat/internal/testserver"
)

// chatView replays a socket's frames as its client would and reports any frame about a chat
// that arrives while the client has no reason to believe it is a member.
type chatView struct {
	member bool
	leaks  []string
}

func (v *chatView) see(chatID int64, f frame) {
	switch f.Type {
	case "hello":
		var h struct {
			Chats []struct{ ID int64 } `json:"chats"`
		}
		json.Unmarshal(f.Data, &h)
		v.member = false
		for _, c := range h.Chats {
			v.member = v.member || c.ID == chatID
		}
		return
	case "chat.added":
		var d struct{ Chat struct{ ID int64 } }
		json.Unmarshal(f.Data, &d)
		if d.Chat.ID == chatID {
			v.member = true
		}
		return
	case "chat.removed":
		if chatOf(f) == chatID {
			v.member = false
		}
		return
	}
	if chatOf(f) == chatID && !v.member {
		v.leaks = append(v.leaks, string(f.Raw))
	}
}

// leaveRace runs rounds of the attack against the leaver's server (open) while the members'
// server (peer, maybe the same) carries the chat's traffic, and fails on any leak.
func leaveRace(t *testing.T, leaverSrv, peerSrv *testServer, rounds int) {
	owner, peer := peerSrv.NewUser(t, "Owner"), peerSrv.NewUser(t, "Peer")
	leaver := leaverSrv.NewUser(t, "Leaver")
	id := peerSrv.Group(t, owner, "Public", true, peer)
	pc := peerSrv.Dial(t, peer)
	ann := leaverSrv.Login(t, leaver)
	for round := range rounds {
		if _, err := leaverSrv.Svc.Join(t.Context(), ann.P(), id); err != nil {
			t.Fatal(err)
		}
		// Handshakes and the leave at once.
		const sockets = 4
		conns := make([]*wsConn, sockets)
		var wg sync.WaitGroup
		for i := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, _, err := leaverSrv.Handshake(t, "", http.Header{"Authorization": {"Bearer " + ann.Token}})
				if err != nil {
					t.Error(err)
					return
				}
				conns[i] = c
			}()
		}
		if err := leaverSrv.Svc.Leave(t.Context(), ann.P(), id); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		// The chat goes on: messages, typing, read marks.
		for i := range 3 {
			m, _, err := peerSrv.Svc.Send(t.Context(), owner.P(), chat.SendInput{ChatID: id, Body: "after", ClientID: fmt.Sprintf("r%d-%d", round, i)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := peerSrv.Svc.MarkRead(t.Context(), peer.P(), id, m.Seq); err != nil {
				t.Fatal(err)
			}
		}
		if err := peerSrv.Svc.Typing(t.Context(), owner.P(), id); err != nil {
			t.Fatal(err)
		}
		// Everything the peer gets has reached the leaver's server too: the peer's pong
		// comes after the chat's traffic, and a ping round trip on each socket after that.
		pc.UntilPong(fmt.Sprintf("peer-%d", round))
		for i, c := range conns {
			v := &chatView{}
			for _, f := range append(c.Quiet(100*time.Millisecond), c.UntilPong("end-"+strconv.Itoa(round))...) {
				v.see(id, f)
			}
			if len(v.leaks) > 0 || v.member {
				t.Fatalf("round %d, socket %d: after the leave it got %d frames of the chat %v; believes it is a member: %v",
					round, i, len(v.leaks), v.leaks, v.member)
			}
			c.WS.CloseNow()
		}
	}
}

// TestLeaveRaceOneInstance: the attack on one embedded instance.
func TestLeaveRaceOneInstance(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	leaveRace(t, s, s, 15)
}

// TestLeaveRaceTwoInstances: the leaver's sockets are on one instance, the chat's traffic
// comes from the other; they share the database and a broker.
func TestLeaveRaceTwoInstances(t *testing.T) {
	t.Parallel()
	db := "sqlite://" + filepath.Join(t.TempDir(), "shared.db")
	bus := broker.NewMemoryBus()
	presence := broker.NewMemoryPresence(time.Now)
	a := testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: bus.Instance(), Presence: presence, Hub: hubOptions("a")})
	b := testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: bus.Instance(), Presence: presence, Hub: hubOptions("b")})
	leaveRace(t, a, b, 15)
}

// TestHelloAfterLeaveDoesNotFollow: a hello whose last read of the chat list came before a
// leave does not follow the chat, and does not list it.
func TestHelloAfterLeaveDoesNotFollow(t *testing.T) {
	t.Parallel()
	wrapped := &duringChatsOf{nth: 2, after: true} // the read that the hello keeps comes from before the leave
	s := startServer(t, serverConfig{WrapStore: func(st chat.Store) chat.Store { wrapped.Store = st; return wrapped }})
	owner, leaver := s.NewUser(t, "Owner"), s.NewUser(t, "Leaver")
	id := s.Group(t, owner, "G", false, leaver)
	s.Dial(t, owner) // the chat's topic stays subscribed on the instance
	wrapped.user = leaver.ID
	wrapped.do = func() {
		if err := s.Svc.Leave(context.Background(), leaver.P(), id); err != nil {
			t.Error(err)
		}
		time.Sleep(200 * time.Millisecond) // chat.removed reaches the hub before the hello attaches
	}
	c, hello := s.DialHello(t, leaver)
	if wrapped.calls.Load() < 2 {
		t.Fatalf("the hello read the chat list %d times; the test needs two", wrapped.calls.Load())
	}
	v := &chatView{}
	v.see(id, hello)
	s.Send(t, owner, id, "after the leave")
	if err := s.Svc.Typing(t.Context(), owner.P(), id); err != nil {
		t.Fatal(err)
	}
	for _, f := range c.UntilPong("end") {
		v.see(id, f)
	}
	if v.member || len(v.leaks) > 0 {
		t.Fatalf("hello lists the chat: %v; frames of it after the leave: %v", v.member, v.leaks)
	}
}

// TestSyncOfStrangersChatsCostsNoQuery: a sync frame naming 1,000 chats the socket does not
// follow is answered without a query (it used to cost one per chat: 63,000 in 25 s from one
// socket): one error names them, then sync.done.
func TestSyncOfStrangersChatsCostsNoQuery(t *testing.T) {
	t.Parallel()
	counter := &countingStore{}
	s := startServer(t, serverConfig{WrapStore: func(st chat.Store) chat.Store { counter.Store = st; return counter }})
	u := s.NewUser(t, "Prober")
	c := s.Dial(t, u)
	cursors := map[string]int64{}
	for i := range 1000 {
		cursors[strconv.Itoa(100000+i)] = 0
	}
	before := counter.calls.Load()
	got := c.RoundTrip("sync", "probe", map[string]any{"cursors": cursors})
	if n := counter.calls.Load() - before; n != 0 {
		t.Errorf("the sync cost %d store calls, want 0", n)
	}
	if code, _ := errorOf(got, "probe"); code != chat.CodeNotFound || len(ofType(got, "error")) != 1 || len(ofType(got, "sync.done")) != 1 {
		t.Errorf("got %s, want one not_found error and sync.done", raws(got))
	}
}

// countingStore counts the store calls a socket's frames make.
type countingStore struct {
	chat.Store
	calls atomic.Int64
}

func (s *countingStore) History(ctx context.Context, q chat.HistoryQuery) ([]chat.Message, bool, error) {
	s.calls.Add(1)
	return s.Store.History(ctx, q)
}

func (s *countingStore) ChatFor(ctx context.Context, viewerID, chatID int64) (chat.ChatSummary, error) {
	s.calls.Add(1)
	return s.Store.ChatFor(ctx, viewerID, chatID)
}

func (s *countingStore) ChatsOf(ctx context.Context, userID int64) ([]chat.ChatSummary, error) {
	s.calls.Add(1)
	return s.Store.ChatsOf(ctx, userID)
}

func hubOptions(instance string) hub.Options { return hub.Options{InstanceID: instance} }
