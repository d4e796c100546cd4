package hub_test

import (
	"context"
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
	user     int64
	entered  chan struct{} // closed when the held SetOffline began
	release  chan struct{}
	remarked chan struct{} // closed by a SetOnline of the user while the SetOffline is held
	cleared  chan struct{} // closed when the held SetOffline is done
	once     sync.Once
	held     atomic.Bool
}

func (p *holdOffline) SetOffline(ctx context.Context, ids ...int64) error {
	held := false
	if slices.Contains(ids, p.user) {
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
	if p.held.Load() && slices.Contains(ids, p.user) {
		close(p.remarked)
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
	p.user = ben.ID
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
