package hub_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/wschat/chat/internal/chat"
)

// renewDuringHello is a store that runs the hub's refresh of presence marks while a user's
// hello first reads their chats: their connection is registered, their coming online not
// announced yet.
type renewDuringHello struct {
	chat.Store
	user  int64
	calls atomic.Int32
	renew func()
}

func (s *renewDuringHello) ChatsOf(ctx context.Context, userID int64) ([]chat.ChatSummary, error) {
	if userID == s.user && s.calls.Add(1) == 1 {
		s.renew()
	}
	return s.Store.ChatsOf(ctx, userID)
}

// TestOnlineAnnouncedDespiteARefreshDuringHello: a user whose first connection is being set up
// when the periodic refresh of presence marks runs is still announced online to the members of
// their chats. The refresh used to mark them online, so that the announcement, which is only
// sent when the marks say nobody knew, found them online already and was never sent: the other
// members saw them offline until their next reconnect (TestPresence/embedded once waited 30 s).
func TestOnlineAnnouncedDespiteARefreshDuringHello(t *testing.T) {
	t.Parallel()
	wrapped := &renewDuringHello{}
	s := startServer(t, serverConfig{WrapStore: func(st chat.Store) chat.Store { wrapped.Store = st; return wrapped }})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	s.Private(t, ann, ben)
	watcher := s.Dial(t, ann)
	wrapped.user = ben.ID
	wrapped.renew = s.Hub.RenewMarks
	s.Dial(t, ben)
	if wrapped.calls.Load() == 0 {
		t.Fatal("Ben's hello never read his chats")
	}
	states, _ := presenceOf(t, watcher.NextOf("presence", wait))
	if len(states) != 1 || states[0].UserID != ben.ID || !states[0].Online {
		t.Errorf("Ann got presence %+v, want Ben (%d) online", states, ben.ID)
	}
}
