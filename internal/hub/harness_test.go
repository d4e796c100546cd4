package hub_test

// The harness of the hub's tests: a whole in-process server (internal/testserver) with every
// layer real, users made through the service, and raw WebSocket clients that can forge any
// handshake. The short names below keep the tests readable.

import (
	"testing"

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
