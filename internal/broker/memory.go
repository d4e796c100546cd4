package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemoryQueueLen bounds the deliveries a Memory instance holds for a handler that has not
// caught up yet. Past it Publish drops, so that a slow handler can never block publishers; the
// instance calls Handler.Resubscribed once its queue has drained, as the Redis broker does after
// a lost connection, and the receiver heals from the store.
const MemoryQueueLen = 1024

// MemoryBus connects Memory instances inside one process, as a Redis server connects the
// instances of a cluster. A single server only needs NewMemory; tests use a bus to model
// several instances sharing one backend.
type MemoryBus struct {
	mu        sync.RWMutex
	instances map[*Memory]struct{}
}

// NewMemoryBus returns a bus with no instances.
func NewMemoryBus() *MemoryBus {
	return &MemoryBus{instances: make(map[*Memory]struct{})}
}

// Instance returns a new broker connected to the bus: what any instance publishes reaches
// every instance of the bus that subscribes to the topic.
func (bus *MemoryBus) Instance() *Memory {
	m := &Memory{
		bus:    bus,
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		topics: make(map[string]struct{}),
	}
	bus.mu.Lock()
	bus.instances[m] = struct{}{}
	bus.mu.Unlock()
	return m
}

func (bus *MemoryBus) remove(m *Memory) {
	bus.mu.Lock()
	delete(bus.instances, m)
	bus.mu.Unlock()
}

// Memory is the in-process Broker. Publish queues a copy of the payload for every subscribed
// instance and returns at once; one goroutine per instance, started by Start and ended by
// Close, calls the handler in publish order.
type Memory struct {
	bus  *MemoryBus
	wake chan struct{} // capacity 1: there may be work in queue
	stop chan struct{} // closed by Close

	mu      sync.Mutex
	handler Handler
	done    chan struct{} // closed when the delivery goroutine has returned; nil before Start
	topics  map[string]struct{}
	queue   []delivery
	head    int  // queue[head:] is still to be delivered
	dropped bool // a delivery was dropped on a full queue: Resubscribed is due once it drains
	closed  bool
}

var _ Broker = (*Memory)(nil)

type delivery struct {
	topic   string
	payload []byte
}

// NewMemory returns a broker for a single instance: a bus of one.
func NewMemory() *Memory {
	return NewMemoryBus().Instance()
}

// Start begins delivering to h. ctx only bounds Start itself; the instance runs until Close.
func (m *Memory) Start(ctx context.Context, h Handler) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return ErrClosed
	case m.handler != nil:
		return errors.New("memory broker: already started")
	}
	m.handler = h
	m.done = make(chan struct{})
	go m.deliverLoop(h, m.done)
	return nil
}

// Publish queues payload for every instance of the bus subscribed to topic. It never blocks:
// an instance whose queue is full loses the payload and is told through Resubscribed.
func (m *Memory) Publish(ctx context.Context, topic string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return ErrClosed
	}
	m.bus.mu.RLock()
	defer m.bus.mu.RUnlock()
	for inst := range m.bus.instances {
		inst.enqueue(topic, payload)
	}
	return nil
}

func (m *Memory) enqueue(topic string, payload []byte) {
	m.mu.Lock()
	if _, ok := m.topics[topic]; !ok || m.closed {
		m.mu.Unlock()
		return
	}
	if len(m.queue)-m.head >= MemoryQueueLen {
		m.dropped = true
	} else {
		// Copy: the publisher may reuse payload as soon as Publish returns.
		m.queue = append(m.queue, delivery{topic: topic, payload: append([]byte(nil), payload...)})
	}
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// deliverLoop is the one goroutine that calls h, so that the handler sees payloads in order.
// It returns when stop is closed.
func (m *Memory) deliverLoop(h Handler, done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-m.wake:
		case <-m.stop:
			return
		}
		for {
			d, resubscribed, ok := m.next()
			if !ok {
				break
			}
			if resubscribed {
				h.Resubscribed()
				continue
			}
			h.Deliver(d.topic, d.payload)
		}
	}
}

// next pops the next delivery, skipping topics unsubscribed since the payload was queued. When
// the queue is empty it reports a due Resubscribed, once, or ok == false.
func (m *Memory) next() (d delivery, resubscribed, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for !m.closed {
		if m.head == len(m.queue) {
			m.queue, m.head = m.queue[:0], 0
			if m.dropped {
				m.dropped = false
				return delivery{}, true, true
			}
			return delivery{}, false, false
		}
		d = m.queue[m.head]
		m.queue[m.head] = delivery{}
		m.head++
		if _, ok := m.topics[d.topic]; ok {
			return d, false, true
		}
	}
	return delivery{}, false, false
}

// Subscribe adds topics to this instance. It is idempotent.
func (m *Memory) Subscribe(ctx context.Context, topics ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return ErrClosed
	case m.handler == nil:
		return errors.New("memory broker: subscribe before start")
	}
	for _, t := range topics {
		m.topics[t] = struct{}{}
	}
	return nil
}

// Unsubscribe removes topics from this instance; payloads of those topics still queued are
// dropped, so nothing of them is delivered after Unsubscribe returns.
func (m *Memory) Unsubscribe(ctx context.Context, topics ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range topics {
		delete(m.topics, t)
	}
	return nil
}

// Ping reports whether the instance is open: there is no backend to lose.
func (m *Memory) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	return nil
}

// Close leaves the bus and waits for the delivery goroutine to return, so that Deliver is not
// called after it. It must not be called from the handler. Closing twice is harmless.
func (m *Memory) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.queue, m.head = nil, 0
	done := m.done
	m.mu.Unlock()

	m.bus.remove(m)
	close(m.stop)
	if done != nil {
		<-done
	}
	return nil
}

// MemoryPresence is the in-process Presence. Instance gives views of the same table for other
// instance names, so that tests can model a cluster.
type MemoryPresence struct {
	table    *presenceTable
	instance string
}

type presenceTable struct {
	now func() time.Time

	mu    sync.Mutex
	until map[int64]map[string]time.Time // user -> instance -> online until
	runs  map[string]*memoryRun          // instance -> what Orphans needs (an instance is one run)
	taken map[string]bool                // instances whose run Orphans handed over (TakenOver)
}

type memoryRun struct {
	orphanAt, lastMark time.Time
	users              map[int64]struct{}
}

// unmarkLocked removes the instance's mark of a user (SetOffline, Retire).
func (t *presenceTable) unmarkLocked(userID int64, instance string) {
	delete(t.until[userID], instance)
	if len(t.until[userID]) == 0 {
		delete(t.until, userID)
	}
}

// runLocked returns the instance's run record, making it on first use.
func (t *presenceTable) runLocked(instance string) *memoryRun {
	r := t.runs[instance]
	if r == nil {
		r = &memoryRun{users: map[int64]struct{}{}}
		t.runs[instance] = r
	}
	return r
}

var _ Presence = (*MemoryPresence)(nil)

// NewMemoryPresence returns an empty table, seen as the instance "local". now is the clock:
// time.Now in production; tests pass a fake one to step over ttl without sleeping.
func NewMemoryPresence(now func() time.Time) *MemoryPresence {
	return &MemoryPresence{
		table: &presenceTable{now: now, until: make(map[int64]map[string]time.Time), runs: make(map[string]*memoryRun),
			taken: make(map[string]bool)},
		instance: "local",
	}
}

// Instance returns the same table seen as the instance named id.
func (p *MemoryPresence) Instance(id string) *MemoryPresence {
	return &MemoryPresence{table: p.table, instance: id}
}

// SetOnline marks users online on this instance until ttl from now.
func (p *MemoryPresence) SetOnline(ctx context.Context, ttl time.Duration, userIDs ...int64) error {
	if ttl <= 0 {
		return fmt.Errorf("set online: ttl %v is not positive", ttl)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t := p.table
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for _, id := range userIDs {
		byInstance := t.until[id]
		if byInstance == nil {
			byInstance = make(map[string]time.Time)
			t.until[id] = byInstance
		}
		// Trim what other instances left behind when they stopped refreshing, so that the
		// table does not grow with every crash.
		for inst, until := range byInstance {
			if !until.After(now) {
				delete(byInstance, inst)
			}
		}
		byInstance[p.instance] = now.Add(ttl)
	}
	if len(userIDs) > 0 {
		r := t.runLocked(p.instance)
		r.orphanAt, r.lastMark = later(r.orphanAt, now.Add(ttl)), now
		for _, id := range userIDs {
			r.users[id] = struct{}{}
		}
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// SetOffline removes this instance's marks for the users.
func (p *MemoryPresence) SetOffline(ctx context.Context, userIDs ...int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := p.table
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range userIDs {
		t.unmarkLocked(id, p.instance)
		if r := t.runs[p.instance]; r != nil {
			delete(r.users, id)
		}
	}
	return nil
}

// Orphans hands over the other instances whose marks have all expired, or whose Retire time
// came.
func (p *MemoryPresence) Orphans(ctx context.Context) ([]Orphan, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t := p.table
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var out []Orphan
	for inst, r := range t.runs {
		if inst == p.instance || !r.orphanAt.Before(now) {
			continue
		}
		o := Orphan{Run: inst, LastMark: r.lastMark}
		for id := range r.users {
			o.Users = append(o.Users, id)
		}
		slices.Sort(o.Users)
		out = append(out, o)
		delete(t.runs, inst)
		if len(o.Users) > 0 { // an idle run has nobody to announce again
			t.taken[inst] = true
		}
	}
	return out, nil
}

// TakenOver reports, once, that Orphans handed this instance's run over.
func (p *MemoryPresence) TakenOver(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	t := p.table
	t.mu.Lock()
	defer t.mu.Unlock()
	taken := t.taken[p.instance]
	delete(t.taken, p.instance)
	return taken, nil
}

// Retire clears this instance's marks and leaves its users to Orphans after the given time.
func (p *MemoryPresence) Retire(ctx context.Context, after time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := p.table
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	r := t.runLocked(p.instance)
	for id := range r.users {
		t.unmarkLocked(id, p.instance)
	}
	r.orphanAt, r.lastMark = now.Add(after), now
	return nil
}

// Until reports when the user's latest unexpired mark expires (zero when none is).
func (p *MemoryPresence) Until(ctx context.Context, userID int64) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	t := p.table
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var last time.Time
	for _, until := range t.until[userID] {
		if until.After(now) && until.After(last) {
			last = until
		}
	}
	return last, nil
}

// Online reports, for every user asked, whether any instance has an unexpired mark.
func (p *MemoryPresence) Online(ctx context.Context, userIDs []int64) (map[int64]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t := p.table
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	online := make(map[int64]bool, len(userIDs))
	for _, id := range userIDs {
		online[id] = false
		for _, until := range t.until[id] {
			if until.After(now) {
				online[id] = true
				break
			}
		}
	}
	return online, nil
}
