package hub_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/broker/redisbroker"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/hub"
	"github.com/wschat/chat/internal/testdb"
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

// staleOnline is a presence store whose next Online or Until read of one user, once armed,
// says the user is offline whatever the marks say: the read of an instance that looked just
// before another instance set the user's mark.
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

func (p *staleOnline) Until(ctx context.Context, id int64) (time.Time, error) {
	u, err := p.Presence.Until(ctx, id)
	if err == nil && id == p.user.Load() && p.armed.CompareAndSwap(true, false) {
		u = time.Time{}
		close(p.lied)
	}
	return u, err
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

// presenceFor collects what a watcher's socket is told of one user over d: every state, in order.
func presenceFor(t *testing.T, w *wsConn, userID int64, d time.Duration) []presenceState {
	t.Helper()
	var got []presenceState
	for _, f := range testserver.OfType(w.Quiet(d), "presence") {
		states, _ := presenceOf(t, f)
		for _, st := range states {
			if st.UserID == userID {
				got = append(got, st)
			}
		}
	}
	return got
}

// TestOfflineAfterACrashedInstancesMarkExpires: a user who was connected through an instance
// that crashed (its mark says online for up to PresenceTTL more), reconnects through another
// and leaves it within that time, is announced offline once the crashed instance's mark has
// expired, with the time they left as last seen. The instance they left used to find the
// stale mark, take them for connected elsewhere, and announce nothing: their chats showed them
// online until their next change of presence.
func TestOfflineAfterACrashedInstancesMarkExpires(t *testing.T) {
	t.Parallel()
	marks := broker.NewMemoryPresence(time.Now)
	s := startServer(t, serverConfig{Presence: marks.Instance("a"), Hub: hub.Options{InstanceID: "a",
		OfflineGrace: 50 * time.Millisecond, PresenceEvery: 20 * time.Millisecond}})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	s.Private(t, ann, ben)
	watcher := s.Dial(t, ann)
	onA := s.Dial(t, ben)
	if states, _ := presenceOf(t, watcher.NextOf("presence", wait)); len(states) != 1 || states[0].UserID != ben.ID || !states[0].Online {
		t.Fatalf("Ann got presence %+v, want Ben online", states)
	}
	// Ben's other device was on instance "crashed", which stopped without clearing its mark.
	// Seconds, so that a busy machine's delays stay well inside the windows checked below.
	const stale = 5 * time.Second
	if err := marks.Instance("crashed").SetOnline(context.Background(), stale, ben.ID); err != nil {
		t.Fatal(err)
	}
	expires := time.Now().Add(stale)
	onA.WS.Close(websocket.StatusNormalClosure, "")
	left := time.Now()

	if early := presenceFor(t, watcher, ben.ID, time.Until(expires)-1500*time.Millisecond); len(early) > 0 {
		t.Errorf("Ann was told %+v of Ben while the crashed instance's mark still said online", early)
	}
	seen := offlineOf(t, watcher, ben.ID)
	if seen.Before(left.Add(-time.Second)) || !seen.Before(expires.Add(-time.Second)) {
		t.Errorf("Ben's last_seen_at = %v, want about when he left (%v), not when the mark expired (%v)", seen, left, expires)
	}
}

// TestNoOfflineWhileConnectedThroughALiveInstance: a user who leaves instance A while connected
// through B is not announced offline when A looks again after B's mark would have expired: B
// refreshed it meanwhile. When they then leave B, they are announced offline once.
func TestNoOfflineWhileConnectedThroughALiveInstance(t *testing.T) {
	t.Parallel()
	db := "sqlite://" + filepath.Join(t.TempDir(), "shared.db")
	bus := broker.NewMemoryBus()
	marks := broker.NewMemoryPresence(time.Now)
	const ttl = 2 * time.Second // refreshed every 670 ms: a busy machine does not miss three in a row
	opts := func(id string) hub.Options {
		return hub.Options{InstanceID: id, OfflineGrace: 50 * time.Millisecond, PresenceEvery: 20 * time.Millisecond, PresenceTTL: ttl}
	}
	a := testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: bus.Instance(), Presence: marks.Instance("a"), Hub: opts("a")})
	b := testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: bus.Instance(), Presence: marks.Instance("b"), Hub: opts("b")})
	ann, ben := a.NewUser(t, "Ann"), a.NewUser(t, "Ben")
	a.Private(t, ann, ben)
	watcher := a.Dial(t, ann)
	onA := a.Dial(t, ben)
	if states, _ := presenceOf(t, watcher.NextOf("presence", wait)); len(states) != 1 || states[0].UserID != ben.ID || !states[0].Online {
		t.Fatalf("Ann got presence %+v, want Ben online", states)
	}
	onB := b.Dial(t, b.Login(t, ben))
	onA.WS.Close(websocket.StatusNormalClosure, "")
	// A looks again about ttl+laterMargin after Ben left it; B's refreshes keep its mark.
	if got := presenceFor(t, watcher, ben.ID, ttl+2*time.Second); len(got) > 0 {
		t.Fatalf("Ann was told %+v of Ben, who stayed connected through b", got)
	}
	onB.WS.Close(websocket.StatusNormalClosure, "")
	got := presenceFor(t, watcher, ben.ID, ttl+time.Second)
	if len(got) != 1 || got[0].Online {
		t.Errorf("after Ben left b too, Ann was told %+v of him, want one offline", got)
	}
}

// offlineOf waits for a presence frame on w that says userID is offline, skipping others'
// presence and the user's online, and returns its last_seen_at.
func offlineOf(t *testing.T, w *wsConn, userID int64) time.Time {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		states, _ := presenceOf(t, w.NextOf("presence", time.Until(deadline)))
		for _, st := range states {
			if st.UserID != userID {
				continue
			}
			if st.Online {
				continue // still the announcement of their coming online
			}
			if st.LastSeenAt == nil {
				t.Fatalf("user %d announced offline without last_seen_at", userID)
			}
			seen, err := time.Parse(time.RFC3339Nano, *st.LastSeenAt)
			if err != nil {
				t.Fatalf("last_seen_at %q: %v", *st.LastSeenAt, err)
			}
			return seen
		}
	}
	t.Fatalf("user %d never announced offline", userID)
	return time.Time{}
}

// TestOfflineOfACrashedInstancesUsers: the users of an instance that crashed (it stopped
// refreshing its marks, and never said who left) are announced offline by a live instance once
// the marks have expired, with the crashed instance's last mark as last seen; a user of it who
// is connected through the live instance is not. The crashed instance's users used to stay
// online in their chats until their next change of presence.
func TestOfflineOfACrashedInstancesUsers(t *testing.T) {
	t.Parallel()
	marks := broker.NewMemoryPresence(time.Now)
	s := startServer(t, serverConfig{Presence: marks.Instance("live"), Hub: hub.Options{InstanceID: "live",
		OfflineGrace: 50 * time.Millisecond, PresenceEvery: 20 * time.Millisecond, PresenceTTL: 600 * time.Millisecond}})
	ann, ben, cy := s.NewUser(t, "Ann"), s.NewUser(t, "Ben"), s.NewUser(t, "Cy")
	s.Private(t, ann, ben)
	s.Private(t, ann, cy)
	watcher := s.Dial(t, ann)
	s.Dial(t, cy)
	if states, _ := presenceOf(t, watcher.NextOf("presence", wait)); len(states) != 1 || states[0].UserID != cy.ID || !states[0].Online {
		t.Fatalf("Ann got presence %+v, want Cy online", states)
	}
	// Ben and another device of Cy's were on the instance "crashed", whose last refresh this is.
	marked := time.Now()
	if err := marks.Instance("crashed").SetOnline(context.Background(), 300*time.Millisecond, ben.ID, cy.ID); err != nil {
		t.Fatal(err)
	}
	seen := offlineOf(t, watcher, ben.ID)
	if seen.Before(marked.Add(-time.Second)) || seen.After(marked.Add(time.Second)) {
		t.Errorf("Ben's last_seen_at = %v, want about the crashed instance's last mark (%v)", seen, marked)
	}
	if got := presenceFor(t, watcher, cy.ID, time.Second); len(got) > 0 {
		t.Errorf("Ann was told %+v of Cy, who is connected through the live instance", got)
	}
}

// TestOfflineOfACrashedInstancesUsersOnASlowStore: announcing a user of a crashed instance
// reads and writes the store. It had the third of the presence TTL that the read of the
// orphans has (200 ms here), and a store that took longer (a busy database: it failed a CI run
// at load 11) left the user, whose run is handed over once, online in their chats for good.
func TestOfflineOfACrashedInstancesUsersOnASlowStore(t *testing.T) {
	t.Parallel()
	slow := &slowChatsOf{}
	marks := broker.NewMemoryPresence(time.Now)
	s := startServer(t, serverConfig{WrapStore: func(st chat.Store) chat.Store { slow.Store = st; return slow },
		Presence: marks.Instance("live"), Hub: hub.Options{InstanceID: "live",
			OfflineGrace: 50 * time.Millisecond, PresenceEvery: 20 * time.Millisecond, PresenceTTL: 600 * time.Millisecond}})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	s.Private(t, ann, ben)
	watcher := s.Dial(t, ann)
	slow.user.Store(ben.ID)
	if err := marks.Instance("crashed").SetOnline(context.Background(), 300*time.Millisecond, ben.ID); err != nil {
		t.Fatal(err)
	}
	offlineOf(t, watcher, ben.ID)
}

// slowChatsOf is a store whose list of one user's chats takes a second, as on a busy database.
type slowChatsOf struct {
	chat.Store
	user atomic.Int64
}

func (s *slowChatsOf) ChatIDsOf(ctx context.Context, userID int64) ([]int64, error) {
	if userID == s.user.Load() {
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.Store.ChatIDsOf(ctx, userID)
}

// TestOfflineOfWhoDidNotComeBackAfterARestart: when an instance stops (Shutdown), its users
// who reconnect elsewhere within RestartGrace stay online, and the others are announced
// offline once it is over. They used to stay online in their chats for good.
func TestOfflineOfWhoDidNotComeBackAfterARestart(t *testing.T) {
	t.Parallel()
	db := "sqlite://" + filepath.Join(t.TempDir(), "shared.db")
	bus := broker.NewMemoryBus()
	marks := broker.NewMemoryPresence(time.Now)
	opts := func(id string) hub.Options {
		return hub.Options{InstanceID: id, OfflineGrace: 50 * time.Millisecond, PresenceEvery: 20 * time.Millisecond,
			PresenceTTL: 600 * time.Millisecond, RestartGrace: 3 * time.Second} // Cy has 3 s to come back
	}
	a := testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: bus.Instance(), Presence: marks.Instance("a"), Hub: opts("a")})
	b := testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: bus.Instance(), Presence: marks.Instance("b"), Hub: opts("b")})
	ann, ben, cy := a.NewUser(t, "Ann"), a.NewUser(t, "Ben"), a.NewUser(t, "Cy")
	a.Private(t, ann, ben)
	a.Private(t, ann, cy)
	watcher := a.Dial(t, ann)
	benOnB, cyOnB := b.Login(t, ben), b.Login(t, cy)
	b.Dial(t, benOnB)
	b.Dial(t, cyOnB)
	online := map[int64]bool{}
	for len(online) < 2 {
		states, _ := presenceOf(t, watcher.NextOf("presence", wait))
		for _, st := range states {
			online[st.UserID] = st.Online
		}
	}
	if !online[ben.ID] || !online[cy.ID] {
		t.Fatalf("Ann was told %v, want Ben (%d) and Cy (%d) online", online, ben.ID, cy.ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	stopped := time.Now()
	b.Hub.Shutdown(ctx)
	a.Dial(t, a.Login(t, cy)) // Cy's client reconnects through a; Ben's does not
	seen := offlineOf(t, watcher, ben.ID)
	if since := time.Since(stopped); since < 3*time.Second {
		t.Errorf("Ben announced offline %v after the restart, want after RestartGrace", since)
	}
	if seen.Before(stopped.Add(-time.Second)) || seen.After(stopped.Add(3*time.Second)) {
		t.Errorf("Ben's last_seen_at = %v, want about when b stopped (%v)", seen, stopped)
	}
	for _, st := range presenceFor(t, watcher, cy.ID, time.Second) {
		if !st.Online {
			t.Errorf("Ann was told Cy, back through a, is offline")
		}
	}
}

// unreachable is a presence store that can be cut off from one instance, as Redis can be.
type unreachable struct {
	broker.Presence
	down atomic.Bool
	// setFails is how many more SetOnline calls fail while the rest works.
	setFails atomic.Int32
}

var errUnreachable = errors.New("presence store unreachable")

func (p *unreachable) SetOnline(ctx context.Context, ttl time.Duration, ids ...int64) error {
	if p.down.Load() || p.failOnce() {
		return errUnreachable
	}
	return p.Presence.SetOnline(ctx, ttl, ids...)
}

// failOnce takes one of the failures setFails asks for.
func (p *unreachable) failOnce() bool {
	for {
		n := p.setFails.Load()
		if n <= 0 {
			return false
		}
		if p.setFails.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

func (p *unreachable) TakenOver(ctx context.Context) (bool, error) {
	if p.down.Load() {
		return false, errUnreachable
	}
	return p.Presence.TakenOver(ctx)
}

func (p *unreachable) Orphans(ctx context.Context) ([]broker.Orphan, error) {
	if p.down.Load() {
		return nil, errUnreachable
	}
	return p.Presence.Orphans(ctx)
}

// TestOnlineAgainAfterAStall: an instance that could not renew its marks for longer than
// their ttl (Redis out of its reach, or a long pause) finds, once it can again, that another
// instance took its users over and announced offline those connected nowhere else; it tells
// their chats they are online again. It used to renew its marks and say nothing: its users,
// still connected, showed as offline until they reconnected.
func TestOnlineAgainAfterAStall(t *testing.T) {
	t.Parallel()
	db := "sqlite://" + filepath.Join(t.TempDir(), "shared.db")
	bus := broker.NewMemoryBus()
	marks := broker.NewMemoryPresence(time.Now)
	const ttl = 2 * time.Second // refreshed (and orphans looked for) every 670 ms
	opts := func(id string) hub.Options {
		return hub.Options{InstanceID: id, OfflineGrace: 50 * time.Millisecond, PresenceEvery: 20 * time.Millisecond, PresenceTTL: ttl}
	}
	cut := &unreachable{Presence: marks.Instance("a")}
	a := testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: bus.Instance(), Presence: cut, Hub: opts("a")})
	b := testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: bus.Instance(), Presence: marks.Instance("b"), Hub: opts("b")})
	ann, ben := a.NewUser(t, "Ann"), a.NewUser(t, "Ben")
	a.Private(t, ann, ben)
	watcher := b.Dial(t, b.Login(t, ann))
	a.Dial(t, ben)
	if states, _ := presenceOf(t, watcher.NextOf("presence", wait)); len(states) != 1 || states[0].UserID != ben.ID || !states[0].Online {
		t.Fatalf("Ann got presence %+v, want Ben online", states)
	}
	// a loses the presence store: its mark of Ben expires, b takes its run over and, Ben being
	// connected nowhere b knows of, announces him offline.
	cut.down.Store(true)
	offlineOf(t, watcher, ben.ID)
	// Back, a first learns it was taken over, but fails to set its marks that time: the news
	// must wait for the next refresh, not be lost.
	cut.setFails.Store(1)
	cut.down.Store(false)
	// (On a busy machine a late refresh may add an offline and online pair: what counts is
	// that Ann's last word of Ben is that he is online.)
	if got := presenceFor(t, watcher, ben.ID, 3*ttl); len(got) == 0 || !got[len(got)-1].Online {
		t.Errorf("once a was back, Ann was told %+v of Ben, who stayed connected through it; want him online", got)
	}
}

// awaitPresenceOf waits for c to be told that user is online or offline (failing the test if
// it is not within wait), skipping other presence.
func awaitPresenceOf(t *testing.T, c *testserver.Conn, user int64, online bool) {
	t.Helper()
	for {
		states, _ := presenceOf(t, c.NextOf("presence", wait))
		for _, st := range states {
			if st.UserID == user && st.Online == online {
				return
			}
		}
	}
}

// TestDeletedAccountGoesOfflineAtOnce: a deleted account goes offline for those who share a
// chat with it without the grace a reload gets (an hour here, so an "offline" that comes at
// all came at once): while connected, once its last socket had closed within the grace, and
// with devices on two instances over Redis, the deletion made on one of them.
func TestDeletedAccountGoesOfflineAtOnce(t *testing.T) {
	t.Parallel()
	const grace = time.Hour
	t.Run("connected", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, serverConfig{Hub: hub.Options{OfflineGrace: grace, PresenceEvery: 20 * time.Millisecond}})
		gone, peer := s.NewUser(t, "Gone"), s.NewUser(t, "Peer")
		s.Private(t, gone, peer)
		pc := s.Dial(t, peer)
		s.Dial(t, gone)
		awaitPresenceOf(t, pc, gone.ID, true)
		if err := s.Svc.DeleteAccount(t.Context(), gone.P(), gone.Password); err != nil {
			t.Fatal(err)
		}
		awaitPresenceOf(t, pc, gone.ID, false)
	})
	t.Run("its last socket closed in the grace", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, serverConfig{Hub: hub.Options{OfflineGrace: grace, PresenceEvery: 20 * time.Millisecond}})
		gone, peer := s.NewUser(t, "Gone"), s.NewUser(t, "Peer")
		s.Private(t, gone, peer)
		pc := s.Dial(t, peer)
		gc := s.Dial(t, gone)
		awaitPresenceOf(t, pc, gone.ID, true)
		gc.WS.Close(websocket.StatusNormalClosure, "")
		for deadline := time.Now().Add(wait); s.Hub.Stats().Connections.Load() != 1; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the hub never saw Gone's socket close")
			}
		}
		if err := s.Svc.DeleteAccount(t.Context(), gone.P(), gone.Password); err != nil {
			t.Fatal(err)
		}
		awaitPresenceOf(t, pc, gone.ID, false)
	})
	t.Run("two instances", func(t *testing.T) {
		t.Parallel()
		db := testdb.Postgres(t)
		addr, prefix := testdb.Redis(t)
		start := func(id string) *testServer {
			rb, err := redisbroker.New(redisbroker.Options{URL: "redis://" + addr + "/0", Prefix: prefix, InstanceID: id})
			if err != nil {
				t.Fatal(err)
			}
			return startServer(t, serverConfig{DatabaseURL: db, Broker: rb, Presence: rb.Presence(),
				Hub: hub.Options{InstanceID: id, OfflineGrace: grace, PresenceEvery: 20 * time.Millisecond}})
		}
		a, b := start("a"), start("b")
		gone, peer := a.NewUser(t, "Gone"), a.NewUser(t, "Peer")
		a.Private(t, gone, peer)
		pc := b.Dial(t, peer)
		a.Dial(t, gone)
		awaitPresenceOf(t, pc, gone.ID, true)
		b.Dial(t, gone)
		if err := a.Svc.DeleteAccount(t.Context(), gone.P(), gone.Password); err != nil {
			t.Fatal(err)
		}
		awaitPresenceOf(t, pc, gone.ID, false)
	})
}
