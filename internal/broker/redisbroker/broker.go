// Package redisbroker is the broker.Broker and broker.Presence of a cluster, over Redis pub/sub
// and sorted sets.
//
// Every channel on the wire is Prefix+":"+topic and every key starts with Prefix+":", so that
// deployments (and test runs) can share a server. It needs Redis 7.0 or later (PEXPIREAT GT).
package redisbroker

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"

	"github.com/wschat/chat/internal/broker"
)

// Options configure a Broker.
type Options struct {
	// URL is redis://[[user]:password@]host:port/db, or rediss:// for TLS.
	URL string
	// Prefix starts every channel and key; "chat" if empty.
	Prefix string
	// Logger gets connection losses and recoveries; nothing is logged if nil.
	Logger *slog.Logger
	// InstanceID names this instance in presence entries and in CLIENT LIST; random if empty.
	// It must be unique in the cluster.
	InstanceID string
}

const (
	// opTimeout bounds one round trip done for the caller when its ctx has no deadline, and
	// each subscriber (re)connection attempt.
	opTimeout = 5 * time.Second
	// defaultIdleTimeout is how long the subscriber connection may stay silent before it is
	// pinged; one more without an answer and it is taken for dead. go-redis only notices a
	// half-open connection when a read fails, which on a silent socket is never.
	defaultIdleTimeout = 10 * time.Second
	// maxBatch bounds the publishes sent in one pipeline.
	maxBatch = 256
	// drainTimeout bounds how long Close waits for the queued publishes to be sent (with
	// Redis down, each batch fails at once or after opTimeout).
	drainTimeout = 5 * time.Second
	// maxChannels bounds the channels of one SUBSCRIBE or UNSUBSCRIBE: a reconnection with
	// tens of thousands of topics sends them in commands of this size, each confirmed as it
	// comes, instead of one command that Redis answers only as a whole.
	maxChannels = 1000
	// Reconnect backoff: doubles from minBackoff up to maxBackoff, with jitter.
	minBackoff  = 50 * time.Millisecond
	maxBackoff  = 2 * time.Second
	stableAfter = time.Second // a connection up this long ends a run of failures
)

// Broker is the Redis broker. It holds two pools: one for publishes, presence and Ping, and
// one for the single subscriber connection (a redis.PubSub) on which topics are subscribed and
// unsubscribed as they come and go.
//
// Two goroutines, both ended by Close: publishLoop batches concurrent publishes into
// pipelines; receiveLoop owns the subscriber connection, delivers to the handler and
// reconnects with backoff after a loss, then calls Handler.Resubscribed once every topic is
// subscribed again.
type Broker struct {
	prefix   string
	instance string
	run      string // this run of the instance, for presence (presence.go)
	log      *slog.Logger
	idle     time.Duration // defaultIdleTimeout; tests shorten it
	client   *redis.Client // publishes, presence, Ping
	sub      *redis.Client // the subscriber connection only

	// connGen counts the subscriber connections ever dialled (OnConnect of sub). go-redis
	// redials inside PubSub without telling; a change of connGen under a PubSub is how
	// receiveLoop learns of it.
	connGen atomic.Uint64

	pubs   chan *pubRequest
	quit   chan struct{}   // closed by Close: publishLoop sends what is queued, then returns
	pubEnd chan struct{}   // closed when publishLoop has returned
	ctx    context.Context // cancelled by Close; aborts dials and round trips in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	handler  broker.Handler
	closed   bool
	ps       *redis.PubSub            // the current connection; nil while there is none
	subs     map[string]*subscription // wanted topics, by channel
	inflight map[string]int           // SUBSCRIBE/UNSUBSCRIBE replies still due on ps, by channel
	pending  int                      // subs not yet confirmed on ps
	resync   bool                     // a connection was lost: Resubscribed is due when pending is 0
}

// subscription is one wanted topic.
type subscription struct {
	topic string
	// ready is closed once the channel is confirmed on the current connection; Subscribe
	// waits on it. A new one is made for each connection.
	ready     chan struct{}
	confirmed bool // ready is closed
}

var _ broker.Broker = (*Broker)(nil)

// New returns a broker for opts. It does not connect: Start and the first command do, so
// that a server can start while Redis is down and report it on /readyz.
func New(opts Options) (*Broker, error) {
	ropts, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	if opts.Prefix == "" {
		opts.Prefix = "chat"
	}
	if opts.InstanceID == "" {
		opts.InstanceID = randomID()
	}
	if err := checkName("prefix", opts.Prefix); err != nil {
		return nil, err
	}
	if err := checkName("instance id", opts.InstanceID); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// Honour the callers' ctx deadlines, not only the client's own timeouts.
	ropts.ContextTimeoutEnabled = true
	// A retried PUBLISH whose reply was lost is delivered twice, and the contract allows
	// loss, never duplicates. Presence commands are refreshed periodically anyway.
	ropts.MaxRetries = -1
	// Dial once per attempt: a caller waiting on Publish hears at once that Redis is down,
	// and the subscriber's reconnect loop has its own backoff.
	ropts.DialerRetries = 1

	subOpts := *ropts
	subOpts.ClientName = opts.Prefix + ":sub:" + opts.InstanceID

	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		prefix:   opts.Prefix,
		instance: opts.InstanceID,
		run:      opts.InstanceID + "~" + randomID(),
		log:      opts.Logger, // the caller's logger names the instance already
		idle:     defaultIdleTimeout,
		client:   redis.NewClient(ropts),
		pubs:     make(chan *pubRequest, maxBatch),
		quit:     make(chan struct{}),
		pubEnd:   make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
		subs:     make(map[string]*subscription),
	}
	subOpts.OnConnect = func(context.Context, *redis.Conn) error {
		b.connGen.Add(1)
		return nil
	}
	b.sub = redis.NewClient(&subOpts)
	b.wg.Add(1)
	go b.publishLoop()
	return b, nil
}

// checkName rejects what Redis would refuse in CLIENT SETNAME.
func checkName(what, s string) error {
	if i := strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }); i >= 0 {
		return fmt.Errorf("redis %s %q: no spaces or control characters allowed", what, s)
	}
	return nil
}

func randomID() string {
	var b [8]byte
	_, _ = crand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}

// channel is the one place that knows the wire name of a topic.
func (b *Broker) channel(topic string) string { return b.prefix + ":" + topic }

// InstanceID returns the name of this instance, as given or made up by New.
func (b *Broker) InstanceID() string { return b.instance }

// Start begins receiving: the subscriber connection is made in the background, so Start does
// not fail when Redis is down. ctx only bounds Start itself.
func (b *Broker) Start(ctx context.Context, h broker.Handler) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return broker.ErrClosed
	case b.handler != nil:
		return errors.New("redis broker: already started")
	}
	b.handler = h
	b.wg.Add(1)
	go b.receiveLoop(h)
	return nil
}

// Subscribe subscribes the topics and waits until Redis has confirmed them, so that anything
// published after it returns is delivered. While the connection is down it waits for the
// reconnection, as long as ctx allows. When it fails, the topics it added are dropped again.
// It must not be called from the Handler: the confirmation is read by the goroutine that
// calls the Handler.
func (b *Broker) Subscribe(ctx context.Context, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return broker.ErrClosed
	case b.handler == nil:
		b.mu.Unlock()
		return errors.New("redis broker: subscribe before start")
	}
	var added []string
	waits := make([]chan struct{}, 0, len(topics))
	for _, topic := range topics {
		ch := b.channel(topic)
		s := b.subs[ch]
		if s == nil {
			s = &subscription{topic: topic, ready: make(chan struct{})}
			b.subs[ch] = s
			b.pending++
			added = append(added, ch)
		}
		waits = append(waits, s.ready) // read here: connect replaces it, under b.mu
	}
	b.send("subscribe", added)
	b.mu.Unlock()

	for _, ready := range waits {
		select {
		case <-ready:
		case <-ctx.Done():
			b.drop(added)
			return fmt.Errorf("subscribe %q: %w", topics, ctx.Err())
		case <-b.ctx.Done():
			return broker.ErrClosed
		}
	}
	return nil
}

// Unsubscribe drops the topics. It does not wait for Redis: deliveries are filtered against
// the wanted topics, so none of these is delivered once it returns.
func (b *Broker) Unsubscribe(ctx context.Context, topics ...string) error {
	chans := make([]string, len(topics))
	for i, topic := range topics {
		chans[i] = b.channel(topic)
	}
	b.drop(chans)
	return nil
}

func (b *Broker) drop(chans []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var dropped []string
	for _, ch := range chans {
		s := b.subs[ch]
		if s == nil {
			continue
		}
		delete(b.subs, ch)
		if !s.confirmed {
			// Whoever waits for it has seen it go: wake them.
			s.confirmed = true
			close(s.ready)
			b.pending--
		}
		dropped = append(dropped, ch)
	}
	b.send("unsubscribe", dropped)
}

// send writes SUBSCRIBE or UNSUBSCRIBE for chans on the current connection, if there is one;
// otherwise the next connection subscribes what is wanted then. It is called with b.mu held, so
// that commands go out in the order the wanted set changed.
func (b *Broker) send(kind string, chans []string) {
	// Never send an empty list: UNSUBSCRIBE without channels drops them all.
	if b.ps == nil || len(chans) == 0 {
		return
	}
	for _, ch := range chans {
		b.inflight[ch]++
	}
	// The write is buffered by the kernel and normally instant; the timeout only bounds the
	// redial that go-redis attempts when the write finds the connection dead.
	ctx, cancel := context.WithTimeout(b.ctx, opTimeout)
	defer cancel()
	for len(chans) > 0 {
		n := min(len(chans), maxChannels)
		var err error
		if kind == "subscribe" {
			err = b.ps.Subscribe(ctx, chans[:n]...)
		} else {
			err = b.ps.Unsubscribe(ctx, chans[:n]...)
		}
		if err != nil {
			// receiveLoop sees the same failure and reconnects; nothing to do here.
			b.log.Debug("redis broker: "+kind+" write failed", "err", err)
			return
		}
		chans = chans[n:]
	}
}

// Ping reports whether Redis answers and the subscriber connection is up (once started):
// an instance that cannot receive is not ready.
func (b *Broker) Ping(ctx context.Context) error {
	b.mu.Lock()
	closed, started, connected := b.closed, b.handler != nil, b.ps != nil
	b.mu.Unlock()
	if closed {
		return broker.ErrClosed
	}
	if err := b.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	if started && !connected {
		return errors.New("redis subscriber connection is down")
	}
	return nil
}

// Close sends the publishes already queued (for up to drainTimeout: they are events of
// commits, which a graceful shutdown must not drop), then stops both goroutines, fails
// publishes still in progress and closes the connections. Deliver is not called after it
// returns; it must not be called from the handler.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	ps := b.ps
	b.mu.Unlock()

	close(b.quit)
	select {
	case <-b.pubEnd:
	case <-time.After(drainTimeout):
		b.log.Warn("redis broker: closing with publishes still queued", "after", drainTimeout)
	}
	b.cancel()
	if ps != nil {
		_ = ps.Close() // unblocks receiveLoop's read
	}
	b.wg.Wait()
	return errors.Join(b.client.Close(), b.sub.Close())
}

// receiveLoop owns the subscriber connection: it connects, reads until the connection is lost,
// and reconnects until Close. The first reconnection after a connection that worked (every
// topic confirmed, and up for stableAfter) is immediate, to lose little; further ones back
// off, whether the dial failed or the connection did (a server refusing a topic, or dropping
// every new connection), so that a failing server is not hammered.
func (b *Broker) receiveLoop(h broker.Handler) {
	defer b.wg.Done()
	lost := false // a connection was up and went down: Resubscribed is due
	failures := 0 // consecutive attempts that did not give a connection that worked
	for {
		if failures > 0 && !sleep(b.ctx, backoff(failures-1)) {
			return
		}
		ps, gen, err := b.connect(lost)
		if err != nil {
			if b.ctx.Err() != nil {
				return
			}
			if failures%20 == 0 {
				b.log.Warn("redis broker: subscriber cannot connect", "err", err, "failures", failures+1)
			}
			failures++
			continue
		}
		b.maybeResubscribed(h)
		began := time.Now()
		confirmed, err := b.receive(ps, gen, h)
		b.disconnect(ps)
		if b.ctx.Err() != nil {
			return
		}
		if confirmed && time.Since(began) >= stableAfter {
			failures = 0
		} else {
			failures++
		}
		if failures%20 <= 1 {
			b.log.Warn("redis broker: subscriber connection lost", "err", err, "failures", failures)
		}
		lost = true
	}
}

// connect dials a new subscriber connection and subscribes every wanted topic on it. After a
// loss it arms Resubscribed, which maybeResubscribed calls once they are all confirmed.
func (b *Broker) connect(lost bool) (*redis.PubSub, uint64, error) {
	ps := b.sub.Subscribe(b.ctx) // no channels: does not dial yet
	ctx, cancel := context.WithTimeout(b.ctx, opTimeout)
	defer cancel()
	if err := ps.Ping(ctx); err != nil { // dials; the PONG is read by receive
		_ = ps.Close()
		return nil, 0, err
	}
	gen := b.connGen.Load()

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		_ = ps.Close()
		return nil, 0, broker.ErrClosed
	}
	b.ps = ps
	b.inflight = make(map[string]int, len(b.subs))
	b.resync = b.resync || lost
	chans := make([]string, 0, len(b.subs))
	for ch, s := range b.subs {
		if s.confirmed {
			s.ready, s.confirmed = make(chan struct{}), false
			b.pending++
		}
		chans = append(chans, ch)
	}
	b.send("subscribe", chans)
	return ps, gen, nil
}

func (b *Broker) disconnect(ps *redis.PubSub) {
	b.mu.Lock()
	if b.ps == ps {
		b.ps = nil
	}
	b.mu.Unlock()
	_ = ps.Close()
}

// receive reads ps until it fails, is replaced underneath by go-redis, or stays silent past a
// ping. It returns why, and whether every wanted topic got confirmed on it.
func (b *Broker) receive(ps *redis.PubSub, gen uint64, h broker.Handler) (bool, error) {
	confirmed := b.allConfirmed()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(b.ctx, b.idle)
		if err != nil {
			var netErr net.Error
			if !errors.As(err, &netErr) || !netErr.Timeout() || pinged {
				return confirmed, err
			}
			pinged = true
			ctx, cancel := context.WithTimeout(b.ctx, opTimeout)
			err = ps.Ping(ctx)
			cancel()
			if err != nil {
				return confirmed, err
			}
			continue
		}
		if b.connGen.Load() != gen {
			// go-redis redialled and resubscribed on its own after a failed write: what was
			// published in between is lost, and our reply counts no longer match the wire.
			return confirmed, errors.New("connection replaced by go-redis")
		}
		pinged = false
		switch msg := msg.(type) {
		case *redis.Message:
			b.deliver(h, msg)
		case *redis.Subscription:
			b.confirm(msg)
			confirmed = confirmed || b.allConfirmed()
			b.maybeResubscribed(h)
		}
	}
}

func (b *Broker) deliver(h broker.Handler, msg *redis.Message) {
	b.mu.Lock()
	s := b.subs[msg.Channel]
	b.mu.Unlock()
	if s == nil {
		return // unsubscribed since it was sent
	}
	h.Deliver(s.topic, []byte(msg.Payload))
}

// confirm counts a SUBSCRIBE or UNSUBSCRIBE reply. Redis answers each, per channel, in order;
// a wanted channel is subscribed once its last reply due is in, and that reply is then
// necessarily a "subscribe".
func (b *Broker) confirm(msg *redis.Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.inflight[msg.Channel] - 1
	if n > 0 {
		b.inflight[msg.Channel] = n
		return
	}
	delete(b.inflight, msg.Channel)
	if s := b.subs[msg.Channel]; s != nil && !s.confirmed && msg.Kind == "subscribe" {
		s.confirmed = true
		close(s.ready)
		b.pending--
	}
}

func (b *Broker) allConfirmed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pending == 0
}

// maybeResubscribed calls Resubscribed once after a loss, when every wanted topic is
// confirmed on the new connection. It runs on receiveLoop, so the handler is only ever called
// from that one goroutine.
func (b *Broker) maybeResubscribed(h broker.Handler) {
	b.mu.Lock()
	due := b.resync && b.pending == 0
	if due {
		b.resync = false
	}
	b.mu.Unlock()
	if due {
		b.log.Info("redis broker: subscriber back, every topic subscribed again")
		h.Resubscribed()
	}
}

func backoff(attempt int) time.Duration {
	d := maxBackoff
	if attempt < 10 {
		d = min(minBackoff<<attempt, maxBackoff)
	}
	// ±25% so that the instances of a cluster do not all come back in the same instant.
	return d - d/4 + rand.N(d/2)
}

// sleep waits for d and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
