package redisbroker_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/broker/brokertest"
	"github.com/wschat/chat/internal/broker/redisbroker"
)

// resubscribeChecker is a handler that, when told Resubscribed, asks the server whether every
// channel has its subscriber back. It is coarse, since the SUBSCRIBE may already be on its way
// when a broker calls too early; TestResubscribedWaitsForEveryTopic is the exact check.
type resubscribeChecker struct {
	*brokertest.Recorder
	raw      *redis.Client
	channels []string

	mu       sync.Mutex
	problems []string
}

func (h *resubscribeChecker) Resubscribed() {
	numsub, err := h.raw.PubSubNumSub(context.Background(), h.channels...).Result()
	h.mu.Lock()
	switch {
	case err != nil:
		h.problems = append(h.problems, "PUBSUB NUMSUB: "+err.Error())
	default:
		for _, ch := range h.channels {
			if numsub[ch] != 1 {
				h.problems = append(h.problems, fmt.Sprintf("%s has %d subscribers when Resubscribed is called, want 1", ch, numsub[ch]))
			}
		}
	}
	h.mu.Unlock()
	h.Recorder.Resubscribed()
}

func (h *resubscribeChecker) check(t testing.TB) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.problems {
		t.Error(p)
	}
}

// subscriberIDs returns the CLIENT IDs of the broker's subscriber connections, found by the
// name it gives them.
func subscriberIDs(t testing.TB, raw *redis.Client, prefix, instance string) []string {
	t.Helper()
	list, err := raw.ClientList(ctx(t)).Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for line := range strings.Lines(list) {
		fields := strings.Fields(line)
		if !strings.Contains(" "+line+" ", " name="+prefix+":sub:"+instance+" ") {
			continue
		}
		for _, f := range fields {
			if id, ok := strings.CutPrefix(f, "id="); ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// checkCycle publishes one payload per topic and waits for all of them: the subscriptions work.
func checkCycle(t testing.TB, b broker.Broker, rec *brokertest.Recorder, topics []string, round string) {
	t.Helper()
	for _, topic := range topics {
		publishEventually(t, b, topic, round)
	}
	for _, topic := range topics {
		rec.WaitFor(t, topic, round)
	}
}

// publishEventually retries Publish until it succeeds: right after a server restart a
// publish may fail once on a connection that died with the old server.
func publishEventually(t testing.TB, b broker.Broker, topic, payload string) {
	t.Helper()
	deadline := time.Now().Add(brokertest.Wait)
	for {
		err := b.Publish(ctx(t), topic, []byte(payload))
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Publish(%q, %q): %v", topic, payload, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitResubscribes(t testing.TB, rec *brokertest.Recorder, n int) {
	t.Helper()
	rec.WaitUntil(t, strconv.Itoa(n)+" Resubscribed", func(_ []brokertest.Delivery, r int) bool { return r >= n })
}

// TestReconnectAfterClientKill kills the broker's subscriber connection on the shared server.
// It kills it by ID: CLIENT KILL TYPE pubsub would also cut whoever else subscribes there.
func TestReconnectAfterClientKill(t *testing.T) {
	url := sharedRedis(t)
	prefix := testPrefix(t)
	raw := rawClient(t, url)
	b := newBroker(t, redisbroker.Options{URL: url, Prefix: prefix})
	topics := []string{"chat.1", "chat.2", "chat.3"}
	h := &resubscribeChecker{Recorder: brokertest.NewRecorder(), raw: raw}
	for _, topic := range topics {
		h.channels = append(h.channels, prefix+":"+topic)
	}
	if err := b.Start(ctx(t), h); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(ctx(t), topics...); err != nil {
		t.Fatal(err)
	}
	checkCycle(t, b, h.Recorder, topics, "before")

	for round := 1; round <= 2; round++ {
		ids := subscriberIDs(t, raw, prefix, b.InstanceID())
		if len(ids) != 1 {
			t.Fatalf("round %d: %d subscriber connections, want 1", round, len(ids))
		}
		if err := raw.ClientKillByFilter(ctx(t), "ID", ids[0]).Err(); err != nil {
			t.Fatalf("CLIENT KILL ID %s: %v", ids[0], err)
		}
		waitResubscribes(t, h.Recorder, round)
		checkCycle(t, b, h.Recorder, topics, "after kill "+strconv.Itoa(round))
	}
	if got := h.Resubscribes(); got != 2 {
		t.Errorf("Resubscribed called %d times for 2 kills, want 2", got)
	}
	h.check(t)
}

// TestReconnectOwnServer kills every pubsub connection and then restarts the server, a
// server of the test's own; the broker must come back each time, with its password.
func TestReconnectOwnServer(t *testing.T) {
	srv := startServer(t, "secret")
	raw := rawClient(t, srv.url())
	prefix := testPrefix(t)
	b := newBroker(t, redisbroker.Options{URL: srv.url(), Prefix: prefix})
	topics := []string{"chat.1", "chat.2"}
	h := &resubscribeChecker{Recorder: brokertest.NewRecorder(), raw: raw, channels: []string{prefix + ":chat.1", prefix + ":chat.2"}}
	if err := b.Start(ctx(t), h); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(ctx(t), topics...); err != nil {
		t.Fatal(err)
	}
	checkCycle(t, b, h.Recorder, topics, "before")

	// CLIENT KILL TYPE pubsub: harmless here, the server is ours.
	if err := raw.ClientKillByFilter(ctx(t), "TYPE", "pubsub").Err(); err != nil {
		t.Fatalf("CLIENT KILL TYPE pubsub: %v", err)
	}
	waitResubscribes(t, h.Recorder, 1)
	checkCycle(t, b, h.Recorder, topics, "after kill")

	// Restart. While the server is down, Publish and Ping fail and a Subscribe waits.
	srv.stop()
	short, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := b.Publish(short, "chat.1", []byte("lost")); err == nil {
		t.Error("Publish with the server down: no error")
	}
	if err := b.Ping(ctx(t)); err == nil {
		t.Error("Ping with the server down: no error")
	}
	late := make(chan error, 1)
	lateCtx := ctx(t)
	go func() { late <- b.Subscribe(lateCtx, "chat.late") }()
	srv.start()

	waitResubscribes(t, h.Recorder, 2)
	select {
	case err := <-late:
		if err != nil {
			t.Fatalf("Subscribe made while the server was down: %v", err)
		}
	case <-time.After(brokertest.Wait):
		t.Fatal("Subscribe made while the server was down did not return after the restart")
	}
	checkCycle(t, b, h.Recorder, append(topics, "chat.late"), "after restart")
	if err := b.Ping(ctx(t)); err != nil {
		t.Errorf("Ping after the restart: %v", err)
	}
	if got := h.Resubscribes(); got != 2 {
		t.Errorf("Resubscribed called %d times for a kill and a restart, want 2", got)
	}
	h.check(t)
}

// TestResubscribedWaitsForEveryTopic has the server refuse one of the topics after a loss
// (an ACL): Resubscribed must wait until that topic too is back, however many attempts it
// takes, and then come once.
func TestResubscribedWaitsForEveryTopic(t *testing.T) {
	srv := startServer(t, "secret")
	raw := rawClient(t, srv.url())
	prefix := testPrefix(t)
	b := newBroker(t, redisbroker.Options{URL: srv.url(), Prefix: prefix})
	rec := brokertest.NewRecorder()
	if err := b.Start(ctx(t), rec); err != nil {
		t.Fatal(err)
	}
	topics := []string{"chat.1", "chat.2"}
	if err := b.Subscribe(ctx(t), topics...); err != nil {
		t.Fatal(err)
	}
	checkCycle(t, b, rec, topics, "before")

	// Allow only chat.1 and cut the subscriber connection.
	if err := raw.Do(ctx(t), "acl", "setuser", "default", "resetchannels", "&"+prefix+":chat.1").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	if err := raw.ClientKillByFilter(ctx(t), "TYPE", "pubsub").Err(); err != nil {
		t.Fatalf("CLIENT KILL TYPE pubsub: %v", err)
	}
	// Wait for two refused resubscriptions, as the server's ACL log counts them.
	deadline := time.Now().Add(brokertest.Wait)
	for refused := int64(0); refused < 2; {
		entries, err := raw.ACLLog(ctx(t), 10).Result()
		if err != nil {
			t.Fatalf("ACL LOG: %v", err)
		}
		for _, e := range entries {
			if e.Reason == "channel" && e.Object == prefix+":chat.2" {
				refused = e.Count
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server refused chat.2 %d times, want 2", refused)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := rec.Resubscribes(); got != 0 {
		t.Fatalf("Resubscribed called %d times while chat.2 is refused, want 0", got)
	}

	if err := raw.Do(ctx(t), "acl", "setuser", "default", "allchannels").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	waitResubscribes(t, rec, 1)
	checkCycle(t, b, rec, topics, "after")
	if got := rec.Resubscribes(); got != 1 {
		t.Errorf("Resubscribed called %d times for one loss, want 1", got)
	}
}

// gatedHandler holds the delivery of "block" until release is closed.
type gatedHandler struct {
	*brokertest.Recorder
	entered chan struct{}
	release chan struct{}
}

func (h *gatedHandler) Deliver(topic string, payload []byte) {
	if string(payload) == "block" {
		h.entered <- struct{}{}
		<-h.release
	}
	h.Recorder.Deliver(topic, payload)
}

// TestReconnectUnderneath has go-redis redial the subscriber connection on its own: while the
// handler is busy (so nothing reads), the connection is killed and a Subscribe finds it dead
// on write, which makes go-redis redial and resubscribe inside PubSub without a word. The
// broker must notice, and call Resubscribed.
func TestReconnectUnderneath(t *testing.T) {
	url := sharedRedis(t)
	prefix := testPrefix(t)
	raw := rawClient(t, url)
	b := newBroker(t, redisbroker.Options{URL: url, Prefix: prefix})
	h := &gatedHandler{Recorder: brokertest.NewRecorder(), entered: make(chan struct{}), release: make(chan struct{})}
	if err := b.Start(ctx(t), h); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(ctx(t), "chat.1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx(t), "chat.1", []byte("block")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.entered:
	case <-time.After(brokertest.Wait):
		t.Fatal("handler never got the blocking payload")
	}

	ids := subscriberIDs(t, raw, prefix, b.InstanceID())
	if len(ids) != 1 {
		t.Fatalf("%d subscriber connections, want 1", len(ids))
	}
	if err := raw.ClientKillByFilter(ctx(t), "ID", ids[0]).Err(); err != nil {
		t.Fatal(err)
	}
	// A write to the killed connection fails at the latest on the second try, once the
	// peer's reset is in. Each Subscribe waits for its confirmation, so each runs apart.
	topics := []string{"chat.1"}
	results := make(chan error, 10)
	subCtx := ctx(t)
	killed := ids[0]
	for i := 0; ; i++ {
		if i == cap(results) {
			t.Fatal("go-redis never redialled underneath")
		}
		topic := "chat.x" + strconv.Itoa(i)
		topics = append(topics, topic)
		go func() { results <- b.Subscribe(subCtx, topic) }()
		if waitNewSubscriber(t, raw, prefix, b.InstanceID(), killed, 200*time.Millisecond) {
			break
		}
	}

	close(h.release)
	waitResubscribes(t, h.Recorder, 1)
	for range topics[1:] {
		if err := <-results; err != nil {
			t.Errorf("Subscribe during the redial: %v", err)
		}
	}
	checkCycle(t, b, h.Recorder, topics, "after")
	if got := h.Resubscribes(); got != 1 {
		t.Errorf("Resubscribed called %d times, want 1", got)
	}
	if ids := subscriberIDs(t, raw, prefix, b.InstanceID()); len(ids) != 1 {
		t.Errorf("%d subscriber connections after the redial, want 1", len(ids))
	}
}

// waitNewSubscriber polls for up to d for a subscriber connection of the instance other than
// the one killed.
func waitNewSubscriber(t testing.TB, raw *redis.Client, prefix, instance, killed string, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, id := range subscriberIDs(t, raw, prefix, instance) {
			if id != killed {
				return true
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// TestHalfOpenConnection has the network silently eat everything on the subscriber connection
// (a partition, a NAT that forgot it), which no read ever reports: the broker must find out by
// its ping going unanswered, and reconnect.
func TestHalfOpenConnection(t *testing.T) {
	url := sharedRedis(t)
	prefix := testPrefix(t)
	raw := rawClient(t, url)
	px := startProxy(t, sharedAddr)
	b := newBroker(t, redisbroker.Options{URL: "redis://" + px.addr() + "/0", Prefix: prefix})
	redisbroker.SetIdleTimeout(b, 100*time.Millisecond)
	rec := brokertest.NewRecorder()
	if err := b.Start(ctx(t), rec); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(ctx(t), "chat.1"); err != nil {
		t.Fatal(err)
	}
	// Publish straight to the server: the broker's own publish connections go through the
	// proxy too, and would hang.
	rawPublish := func(payload string) {
		t.Helper()
		if err := raw.Publish(ctx(t), prefix+":chat.1", payload).Err(); err != nil {
			t.Fatal(err)
		}
	}
	rawPublish("before")
	rec.WaitFor(t, "chat.1", "before")

	px.blackHole()
	rawPublish("lost") // never arrives
	waitResubscribes(t, rec, 1)
	rawPublish("after")
	for _, d := range rec.WaitFor(t, "chat.1", "after") {
		if d.Payload == "lost" {
			t.Errorf("got %q through a black hole", d.Payload)
		}
	}
}

// proxy forwards TCP connections to a target, until told to black-hole the connections it
// has: they stay open but whatever is sent on them is dropped, both ways.
type proxy struct {
	l      net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
	dead  chan struct{} // closed by blackHole; the connections made before it drop everything
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: target, dead: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = l.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.l.Accept()
		if err != nil {
			return // closed by the cleanup
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		dead := p.dead
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(server, client, dead)
		go p.pipe(client, server, dead)
	}
}

// pipe copies src to dst until either fails, or drops what it reads once dead is closed.
func (p *proxy) pipe(dst, src net.Conn, dead <-chan struct{}) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			_ = dst.Close()
			return
		}
		select {
		case <-dead:
			continue
		default:
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			_ = src.Close()
			return
		}
	}
}

// blackHole makes the current connections drop everything; new ones work.
func (p *proxy) blackHole() {
	p.mu.Lock()
	close(p.dead)
	p.dead = make(chan struct{})
	p.mu.Unlock()
}
