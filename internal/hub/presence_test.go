package hub_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/hub"
	"github.com/wschat/chat/internal/testserver"
)

// TestOnlineAnnouncedDespiteARefreshDuringHello: a user whose first connection is being set up
// when the periodic refresh of presence marks runs is still announced online to the members of
// their chats. The refresh used to mark them online, so that the announcement, which is only
// sent when the marks say nobody knew, found them online already and was never sent: the other
// members saw them offline until their next reconnect (TestPresence/embedded once waited 30 s).
func TestOnlineAnnouncedDespiteARefreshDuringHello(t *testing.T) {
	t.Parallel()
	wrapped := &duringChatsOf{nth: 1} // the hello's first reading: Ben registered, his coming online not announced yet
	s := startServer(t, serverConfig{WrapStore: func(st chat.Store) chat.Store { wrapped.Store = st; return wrapped }})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	s.Private(t, ann, ben)
	watcher := s.Dial(t, ann)
	wrapped.user = ben.ID
	wrapped.do = s.Hub.RenewMarks
	s.Dial(t, ben)
	if wrapped.calls.Load() == 0 {
		t.Fatal("Ben's hello never read his chats")
	}
	states, _ := presenceOf(t, watcher.NextOf("presence", wait))
	if len(states) != 1 || states[0].UserID != ben.ID || !states[0].Online {
		t.Errorf("Ann got presence %+v, want Ben (%d) online", states, ben.ID)
	}
}

// holdOffline is a presence store whose first SetOffline of one user waits for release, and
// which tells when that user is marked online meanwhile.
type holdOffline struct {
	broker.Presence
	user     atomic.Int64
	entered  chan struct{} // closed when the held SetOffline began
	release  chan struct{}
	remarked chan struct{} // closed by a SetOnline of the user while the SetOffline is held
	cleared  chan struct{} // closed when the held SetOffline is done
	once     sync.Once
	onceMark sync.Once
	held     atomic.Bool
}

func (p *holdOffline) SetOffline(ctx context.Context, ids ...int64) error {
	held := false
	if slices.Contains(ids, p.user.Load()) {
		p.once.Do(func() {
			held = true
			p.held.Store(true)
			close(p.entered)
			<-p.release
			p.held.Store(false)
		})
	}
	err := p.Presence.SetOffline(ctx, ids...)
	if held {
		close(p.cleared)
	}
	return err
}

func (p *holdOffline) SetOnline(ctx context.Context, ttl time.Duration, ids ...int64) error {
	err := p.Presence.SetOnline(ctx, ttl, ids...)
	if p.held.Load() && slices.Contains(ids, p.user.Load()) {
		p.onceMark.Do(func() { close(p.remarked) })
	}
	return err
}

// TestReconnectWhileGoingOffline: a user who reconnects while this instance is taking them
// offline (the grace after their last device left is over, their mark not yet cleared) ends
// up online, in the shared marks and for the members of their chats. The reconnect used to
// find the old mark, announce nothing and mark them online, after which the offline step
// cleared the mark and announced them offline: connected, yet offline to everyone until the
// next refresh of the marks (and to their chats until they reconnected).
func TestReconnectWhileGoingOffline(t *testing.T) {
	t.Parallel()
	p := &holdOffline{Presence: broker.NewMemoryPresence(time.Now), entered: make(chan struct{}),
		release: make(chan struct{}), remarked: make(chan struct{}), cleared: make(chan struct{})}
	var released sync.Once
	free := func() { released.Do(func() { close(p.release) }) }
	t.Cleanup(free)
	s := startServer(t, serverConfig{Presence: p, Hub: hub.Options{OfflineGrace: 50 * time.Millisecond,
		PresenceTTL: 10 * time.Minute, PresenceEvery: 20 * time.Millisecond}})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	s.Private(t, ann, ben)
	watcher := s.Dial(t, ann)
	p.user.Store(ben.ID)
	first := s.Dial(t, ben)
	if states, _ := presenceOf(t, watcher.NextOf("presence", wait)); len(states) != 1 || !states[0].Online {
		t.Fatalf("Ann got presence %+v, want Ben online", states)
	}
	first.WS.Close(websocket.StatusNormalClosure, "")
	select {
	case <-p.entered:
	case <-time.After(wait):
		t.Fatal("Ben was never taken offline")
	}
	s.Dial(t, ben)
	// Give the reconnect's presence step a moment to run into the held SetOffline; a hub that
	// serializes the two never marks Ben online before the release, so this waits it out.
	select {
	case <-p.remarked:
	case <-time.After(time.Second):
	}
	free()
	<-p.cleared

	deadline := time.Now().Add(wait)
	for !s.Hub.Online(context.Background(), []int64{ben.ID})[ben.ID] {
		if time.Now().After(deadline) {
			t.Fatal("Ben is connected, yet the presence marks say he is offline")
		}
		time.Sleep(10 * time.Millisecond)
	}
	online := true // what Ann was last told of Ben
	note := func(fs []frame) {
		for _, f := range testserver.OfType(fs, "presence") {
			states, _ := presenceOf(t, f)
			for _, st := range states {
				if st.UserID == ben.ID {
					online = st.Online
				}
			}
		}
	}
	note(watcher.Quiet(500 * time.Millisecond))
	if !online {
		note([]frame{watcher.NextOf("presence", wait)})
	}
	if !online {
		t.Error("Ann was last told that Ben, who is connected, is offline")
	}
}

// staleOnline is a presence store whose next Online read of one user, once armed, says the
// user is offline whatever the marks say: the read of an instance that looked just before
// another instance set the user's mark.
type staleOnline struct {
	broker.Presence
	user   atomic.Int64
	armed  atomic.Bool
	lied   chan struct{}
	marked chan struct{} // closed once the user is first marked online through this store
	once   sync.Once
}

func newStaleOnline(p broker.Presence) *staleOnline {
	return &staleOnline{Presence: p, lied: make(chan struct{}), marked: make(chan struct{})}
}

func (p *staleOnline) SetOnline(ctx context.Context, ttl time.Duration, ids ...int64) error {
	err := p.Presence.SetOnline(ctx, ttl, ids...)
	if err == nil && slices.Contains(ids, p.user.Load()) {
		p.once.Do(func() { close(p.marked) })
	}
	return err
}

func (p *staleOnline) Online(ctx context.Context, ids []int64) (map[int64]bool, error) {
	m, err := p.Presence.Online(ctx, ids)
	if user := p.user.Load(); err == nil && slices.Contains(ids, user) && p.armed.CompareAndSwap(true, false) {
		m[user] = false
		close(p.lied)
	}
	return m, err
}

// TestOfflineOfAUserBackElsewhereIsDropped: a user's last device on instance A goes away while
// they are connected through instance B, and A, having read the marks before B's was set,
// announces them offline. The receivers check the marks before they pass an "offline" on, find
// B's, and drop it: nobody is told that a connected user is offline.
func TestOfflineOfAUserBackElsewhereIsDropped(t *testing.T) {
	t.Parallel()
	db := "sqlite://" + filepath.Join(t.TempDir(), "shared.db")
	bus := broker.NewMemoryBus()
	marks := broker.NewMemoryPresence(time.Now)
	stale, onB := newStaleOnline(marks.Instance("a")), newStaleOnline(marks.Instance("b"))
	opts := func(id string) hub.Options {
		return hub.Options{InstanceID: id, OfflineGrace: 50 * time.Millisecond, PresenceEvery: 20 * time.Millisecond}
	}
	a := testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: bus.Instance(), Presence: stale, Hub: opts("a")})
	b := testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: bus.Instance(), Presence: onB, Hub: opts("b")})
	ann, ben := a.NewUser(t, "Ann"), a.NewUser(t, "Ben")
	a.Private(t, ann, ben)
	watchers := []*wsConn{a.Dial(t, ann), b.Dial(t, b.Login(t, ann))}
	stale.user.Store(ben.ID)
	onB.user.Store(ben.ID)
	onA := a.Dial(t, ben)
	for _, w := range watchers {
		if states, _ := presenceOf(t, w.NextOf("presence", wait)); len(states) != 1 || states[0].UserID != ben.ID || !states[0].Online {
			t.Fatalf("Ann got presence %+v, want Ben online", states)
		}
	}
	b.Dial(t, b.Login(t, ben))
	select {
	case <-onB.marked:
	case <-time.After(wait):
		t.Fatal("instance b never marked Ben online")
	}
	stale.armed.Store(true)
	onA.WS.Close(websocket.StatusNormalClosure, "")
	select {
	case <-stale.lied:
	case <-time.After(wait):
		t.Fatal("instance a never looked whether Ben was still online")
	}
	for i, w := range watchers {
		for _, f := range testserver.OfType(w.Quiet(time.Second), "presence") {
			states, _ := presenceOf(t, f)
			for _, st := range states {
				if st.UserID == ben.ID && !st.Online {
					t.Errorf("Ann's socket %d was told that Ben, connected through instance b, is offline", i)
				}
			}
		}
	}
}
