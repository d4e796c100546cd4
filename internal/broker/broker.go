// Package broker carries events between the instances of the chat server: publish a payload to
// a topic, and every instance that subscribes to the topic gets it. The in-process broker
// (memory.go) serves a single instance; package broker/redisbroker serves a cluster.
//
// Brokers are lossy by contract: a payload may be lost (a dropped connection, a restart). After
// such a loss a broker calls Handler.Resubscribed, and the receiver heals from the store.
package broker

import (
	"context"
	"time"
)

// Handler receives what a broker delivers.
type Handler interface {
	// Deliver is called once for each payload published to a topic that this instance
	// subscribes to, from a single goroutine, in the order the broker received them. It must
	// not block for long; it must not keep payload after it returns... unless it copies it.
	Deliver(topic string, payload []byte)
	// Resubscribed is called after the broker lost its connection and subscribed again to
	// every topic: payloads published meanwhile may have been lost.
	Resubscribed()
}

// Broker is pub/sub between instances. Topics are plain strings such as "chat.7"; a broker may
// prefix them on the wire so that deployments can share a server.
type Broker interface {
	// Start begins delivering to h. It is called once, before any Subscribe.
	Start(ctx context.Context, h Handler) error
	// Publish sends payload to every instance subscribed to topic, this one included.
	Publish(ctx context.Context, topic string, payload []byte) error
	// Subscribe and Unsubscribe change this instance's topics. They are idempotent: the
	// caller keeps its own reference counts and calls them on the first and last interest.
	Subscribe(ctx context.Context, topics ...string) error
	Unsubscribe(ctx context.Context, topics ...string) error
	// Ping reports whether the broker is reachable, for /readyz.
	Ping(ctx context.Context) error
	// Close stops delivery and releases connections. Deliver is not called after it returns.
	Close() error
}

// Presence records which users are online on which instance, so that any instance can answer
// "is user X online". Entries expire when an instance stops refreshing them (a crash), so
// nobody stays online forever.
type Presence interface {
	// SetOnline marks users as online on this instance until ttl from now. Instances call it
	// again periodically (well within ttl) for every user they have connections for.
	SetOnline(ctx context.Context, ttl time.Duration, userIDs ...int64) error
	// SetOffline removes this instance's marks for the users.
	SetOffline(ctx context.Context, userIDs ...int64) error
	// Online reports which of the users are online on any instance.
	Online(ctx context.Context, userIDs []int64) (map[int64]bool, error)
	// Until reports when the user's last unexpired mark, of any instance, expires: the zero
	// time when they are offline. An instance that finds a user still online after their last
	// device left it can look again then: a mark still there was set or refreshed meanwhile by
	// a live instance, and one gone was left by a crash.
	Until(ctx context.Context, userID int64) (time.Time, error)
	// Orphans hands over the users of instances that stopped: each run of another instance (a
	// process) whose marks have all expired without being cleared, a crash, or whose Retire
	// time has come, goes to one caller only, with the users it had marked and not cleared
	// and the time of its last mark. Their marks are gone; whoever takes them tells their
	// chats that those who are not connected elsewhere are offline.
	Orphans(ctx context.Context) ([]Orphan, error)
	// TakenOver reports, once, that Orphans has handed this run's users (one or more) to
	// another instance since the last call: its marks had all expired (the instance stalled
	// past their ttl, or could not reach the presence store), and the taker told the chats of
	// those connected nowhere else that they were offline. The instance marks them again and
	// tells their chats they are online.
	TakenOver(ctx context.Context) (bool, error)
	// Retire is this instance's orderly stop: it clears its marks at once and leaves their
	// users to Orphans after the given time, by which those who reconnected elsewhere are
	// marked again.
	Retire(ctx context.Context, after time.Duration) error
}

// Orphan is one stopped run of an instance (Presence.Orphans).
type Orphan struct {
	Run      string
	LastMark time.Time // when it last marked a user online (or retired)
	Users    []int64
}
