package hub_test

// The harness of the hub's tests: a whole in-process server (internal/testserver) with every
// layer real, users made through the service, and raw WebSocket clients that can forge any
// handshake. The short names below keep the tests readable.

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/testserver"
)

type (
	serverConfig = testserver.Config
	testServer   = testserver.Server
	testUser     = testserver.User
	frame        = testserver.Frame
	wsConn       = testserver.Conn
	reply        = testserver.Reply
)

var testSecret = testserver.Secret

func startServer(tb testing.TB, cfg serverConfig) *testServer { return testserver.Start(tb, cfg) }

var (
	errorOf = testserver.ErrorOf
	ofType  = testserver.OfType
	chatOf  = testserver.ChatOf
)

// duringChatsOf is a store that runs do at the nth reading of one user's chat list (a hello
// reads it twice): before the read, or once it is done with after. It counts the readings in
// calls; user 0 (before the test sets it) matches nobody.
type duringChatsOf struct {
	chat.Store
	user  int64
	nth   int32
	after bool
	do    func()
	calls atomic.Int32
}

func (s *duringChatsOf) ChatsOf(ctx context.Context, userID int64) ([]chat.ChatSummary, error) {
	if userID != s.user {
		return s.Store.ChatsOf(ctx, userID)
	}
	n := s.calls.Add(1)
	if n == s.nth && !s.after {
		s.do()
	}
	list, err := s.Store.ChatsOf(ctx, userID)
	if n == s.nth && s.after {
		s.do()
	}
	return list, err
}
