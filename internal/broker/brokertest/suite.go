package brokertest

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wschat/chat/internal/broker"
)

// Run runs the broker behaviour suite. newBroker returns a new, not yet started instance on
// every call; the instances it returns within one test (one t) share a backend, so that they
// see each other's publishes, and see nothing of other tests. Run starts and closes them.
func Run(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newBroker func(t *testing.T) broker.Broker)
	}{
		{"SubscribeDeliver", testSubscribeDeliver},
		{"NotDeliveredToUnsubscribedTopic", testNotDeliveredToUnsubscribedTopic},
		{"OnlySubscribedInstanceGetsIt", testOnlySubscribedInstance},
		{"UnsubscribeStopsDelivery", testUnsubscribeStopsDelivery},
		{"NoTopicsIsNoOp", testNoTopicsIsNoOp},
		{"OrderFromOnePublisher", testOrderFromOnePublisher},
		{"ConcurrentPublishers", testConcurrentPublishers},
		{"IdempotentSubscribe", testIdempotentSubscribe},
		{"PayloadCopied", testPayloadCopied},
		{"CloseStopsDelivery", testCloseStopsDelivery},
		{"Ping", testPing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newBroker) })
	}
}

// start makes and starts an instance with a Recorder; it is closed when the test ends, and
// the Recorder must not hear from it after that.
func start(t *testing.T, newBroker func(t *testing.T) broker.Broker) (broker.Broker, *Recorder) {
	t.Helper()
	b := newBroker(t)
	rec := NewRecorder()
	if err := b.Start(ctx(t), rec); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		rec.MarkClosed()
		rec.CheckNotCalledAfterClose(t)
	})
	return b, rec
}

func ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), Wait)
	t.Cleanup(cancel)
	return ctx
}

func subscribe(t testing.TB, b broker.Broker, topics ...string) {
	t.Helper()
	if err := b.Subscribe(ctx(t), topics...); err != nil {
		t.Fatalf("Subscribe(%q): %v", topics, err)
	}
}

func unsubscribe(t testing.TB, b broker.Broker, topics ...string) {
	t.Helper()
	if err := b.Unsubscribe(ctx(t), topics...); err != nil {
		t.Fatalf("Unsubscribe(%q): %v", topics, err)
	}
}

func publish(t testing.TB, b broker.Broker, topic, payload string) {
	t.Helper()
	if err := b.Publish(ctx(t), topic, []byte(payload)); err != nil {
		t.Fatalf("Publish(%q, %q): %v", topic, payload, err)
	}
}

// checkNone fails the test for every delivery on one of the topics.
func checkNone(t testing.TB, ds []Delivery, topics ...string) {
	t.Helper()
	for _, d := range ds {
		for _, topic := range topics {
			if d.Topic == topic {
				t.Errorf("delivered %q on %q, which this instance does not subscribe to", d.Payload, d.Topic)
			}
		}
	}
}

func testSubscribeDeliver(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	b, rec := start(t, newBroker)
	subscribe(t, b, "chat.1")
	payloads := []string{"hello", "", "bin\x00\xff\n"}
	for _, p := range payloads {
		publish(t, b, "chat.1", p)
	}
	rec.WaitUntil(t, "3 deliveries", func(ds []Delivery, _ int) bool { return len(ds) >= 3 })
	got := rec.Deliveries()
	for i, p := range payloads {
		if want := (Delivery{Topic: "chat.1", Payload: p}); got[i] != want {
			t.Errorf("delivery %d = %+v, want %+v", i, got[i], want)
		}
	}
}

func testNotDeliveredToUnsubscribedTopic(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	b, rec := start(t, newBroker)
	subscribe(t, b, "chat.1")
	publish(t, b, "chat.2", "not for us")
	publish(t, b, "chat.1", "fence")
	checkNone(t, rec.WaitFor(t, "chat.1", "fence"), "chat.2")
}

func testOnlySubscribedInstance(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	b1, rec1 := start(t, newBroker)
	b2, rec2 := start(t, newBroker)
	subscribe(t, b1, "chat.x")
	subscribe(t, b2, "chat.y")

	// Each instance publishes to the other's topic; each fence comes after everything an
	// instance could have been wrongly given.
	publish(t, b2, "chat.x", "x1")
	publish(t, b1, "chat.y", "y1")
	publish(t, b2, "chat.x", "x-fence")
	publish(t, b1, "chat.y", "y-fence")

	got1 := rec1.WaitFor(t, "chat.x", "x-fence")
	checkNone(t, got1, "chat.y")
	if got1[0] != (Delivery{Topic: "chat.x", Payload: "x1"}) {
		t.Errorf("instance 1 first got %+v, want x1 published by instance 2", got1[0])
	}
	got2 := rec2.WaitFor(t, "chat.y", "y-fence")
	checkNone(t, got2, "chat.x")
	if got2[0] != (Delivery{Topic: "chat.y", Payload: "y1"}) {
		t.Errorf("instance 2 first got %+v, want y1 published by instance 1", got2[0])
	}
}

func testUnsubscribeStopsDelivery(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	b, rec := start(t, newBroker)
	subscribe(t, b, "chat.1", "chat.2")
	publish(t, b, "chat.1", "before")
	rec.WaitFor(t, "chat.1", "before")

	unsubscribe(t, b, "chat.1")
	publish(t, b, "chat.1", "after")
	publish(t, b, "chat.2", "fence")
	for _, d := range rec.WaitFor(t, "chat.2", "fence") {
		if d.Payload == "after" {
			t.Errorf("delivered %q published after Unsubscribe", d.Payload)
		}
	}

	// Subscribing again works.
	subscribe(t, b, "chat.1")
	publish(t, b, "chat.1", "again")
	rec.WaitFor(t, "chat.1", "again")
}

// testNoTopicsIsNoOp guards against passing an empty list down: Redis's UNSUBSCRIBE without
// channels drops every subscription.
func testNoTopicsIsNoOp(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	b, rec := start(t, newBroker)
	subscribe(t, b, "chat.1")
	subscribe(t, b)
	unsubscribe(t, b)
	publish(t, b, "chat.1", "still here")
	rec.WaitFor(t, "chat.1", "still here")
}

func testOrderFromOnePublisher(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	b1, rec := start(t, newBroker)
	b2, _ := start(t, newBroker)
	subscribe(t, b1, "chat.1")
	const n = 500
	for i := range n {
		publish(t, b2, "chat.1", strconv.Itoa(i))
	}
	rec.WaitFor(t, "chat.1", strconv.Itoa(n-1))
	got := rec.Deliveries()
	if len(got) != n {
		t.Fatalf("got %d deliveries, want %d", len(got), n)
	}
	for i, d := range got {
		if d.Payload != strconv.Itoa(i) {
			t.Fatalf("delivery %d = %q, want %d: order lost", i, d.Payload, i)
		}
	}
}

func testConcurrentPublishers(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	b1, rec1 := start(t, newBroker)
	b2, rec2 := start(t, newBroker)
	subscribe(t, b1, "chat.c")
	subscribe(t, b2, "chat.c")

	// Stay below broker.MemoryQueueLen: the memory broker may drop past it by design.
	const publishers, each = 8, 100
	var wg sync.WaitGroup
	for g := range publishers {
		b := b1
		if g%2 == 1 {
			b = b2
		}
		wg.Go(func() {
			for i := range each {
				if err := b.Publish(ctx(t), "chat.c", fmt.Appendf(nil, "%d:%d", g, i)); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()

	for name, rec := range map[string]*Recorder{"instance 1": rec1, "instance 2": rec2} {
		rec.WaitUntil(t, "every publish", func(ds []Delivery, _ int) bool { return len(ds) >= publishers*each })
		next := make([]int, publishers) // next sequence number expected from each publisher
		for _, d := range rec.Deliveries() {
			var g, i int
			if _, err := fmt.Sscanf(d.Payload, "%d:%d", &g, &i); err != nil {
				t.Fatalf("%s: bad payload %q", name, d.Payload)
			}
			if i != next[g] {
				t.Fatalf("%s: publisher %d: got %d, want %d: lost, duplicated or reordered", name, g, i, next[g])
			}
			next[g]++
		}
	}
}

func testIdempotentSubscribe(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	b, rec := start(t, newBroker)
	subscribe(t, b, "chat.1")
	subscribe(t, b, "chat.1", "chat.1")
	subscribe(t, b, "chat.2")
	publish(t, b, "chat.1", "once")
	publish(t, b, "chat.2", "fence")
	var n int
	for _, d := range rec.WaitFor(t, "chat.2", "fence") {
		if d.Payload == "once" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("delivered %d times after subscribing three times, want 1", n)
	}

	// One Unsubscribe undoes them all, and unsubscribing again or from an unknown topic is
	// harmless.
	unsubscribe(t, b, "chat.1")
	unsubscribe(t, b, "chat.1", "chat.unknown")
	publish(t, b, "chat.1", "gone")
	publish(t, b, "chat.2", "fence 2")
	for _, d := range rec.WaitFor(t, "chat.2", "fence 2") {
		if d.Payload == "gone" {
			t.Errorf("delivered after Unsubscribe")
		}
	}
}

func testPayloadCopied(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	b, rec := start(t, newBroker)
	subscribe(t, b, "chat.1")
	buf := []byte("original")
	if err := b.Publish(ctx(t), "chat.1", buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "CHANGED!") // the publisher reuses its buffer
	publish(t, b, "chat.1", "fence")
	if got := rec.WaitFor(t, "chat.1", "fence")[0].Payload; got != "original" {
		t.Errorf("delivered %q, want %q: Publish kept the caller's buffer", got, "original")
	}
}

func testCloseStopsDelivery(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	// Warm up once, so that whatever a backend starts once per process is not counted below.
	warm, _ := start(t, newBroker)
	if err := warm.Close(); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()

	b1, rec1 := start(t, newBroker)
	b2, rec2 := start(t, newBroker)
	subscribe(t, b1, "chat.1")
	subscribe(t, b2, "chat.1")
	publish(t, b2, "chat.1", "before")
	rec1.WaitFor(t, "chat.1", "before")

	if err := b1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	rec1.MarkClosed()
	if err := b1.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := b1.Publish(ctx(t), "chat.1", []byte("x")); err == nil {
		t.Errorf("Publish after Close: no error")
	}
	if err := b1.Subscribe(ctx(t), "chat.2"); err == nil {
		t.Errorf("Subscribe after Close: no error")
	}
	publish(t, b2, "chat.1", "after")
	rec2.WaitFor(t, "chat.1", "after")
	if n := len(rec1.Deliveries()); n != 1 {
		t.Errorf("closed instance got %d deliveries, want 1", n)
	}

	if err := b2.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkGoroutines(t, before)
}

// checkGoroutines fails if goroutines started since the count want have not ended: Close
// must stop everything a broker started.
func checkGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(Wait)
	for {
		n := runtime.NumGoroutine()
		if n <= want {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines after Close, want at most %d:\n%s", n, want, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testPing(t *testing.T, newBroker func(t *testing.T) broker.Broker) {
	b, _ := start(t, newBroker)
	// A broker may connect in the background after Start: poll.
	deadline := time.Now().Add(Wait)
	for {
		err := b.Ping(ctx(t))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(ctx(t)); err == nil {
		t.Errorf("Ping after Close: no error")
	}
}

// RunPresence runs the presence behaviour suite. newPresence returns the presence of the
// named instance; the ones it returns within one test (one t) share a backend, and see
// nothing of other tests.
func RunPresence(t *testing.T, newPresence func(t *testing.T, instance string) broker.Presence) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newPresence func(t *testing.T, instance string) broker.Presence)
	}{
		{"OnlineOffline", testOnlineOffline},
		{"Expiry", testExpiry},
		{"RefreshExtends", testRefreshExtends},
		{"SeveralInstances", testSeveralInstances},
		{"NoUsers", testNoUsers},
		{"RejectsBadTTL", testRejectsBadTTL},
		{"Until", testUntil},
		{"Orphans", testOrphans},
		{"Retire", testRetire},
		{"TakenOver", testTakenOver},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newPresence) })
	}
}

// shortTTL is long enough to check a mark before it expires, even under -race.
const shortTTL = 300 * time.Millisecond

func setOnline(t testing.TB, p broker.Presence, ttl time.Duration, ids ...int64) {
	t.Helper()
	if err := p.SetOnline(ctx(t), ttl, ids...); err != nil {
		t.Fatalf("SetOnline(%v, %v): %v", ttl, ids, err)
	}
}

func setOffline(t testing.TB, p broker.Presence, ids ...int64) {
	t.Helper()
	if err := p.SetOffline(ctx(t), ids...); err != nil {
		t.Fatalf("SetOffline(%v): %v", ids, err)
	}
}

// checkOnline fails unless Online reports exactly the users in want as online among ids.
func checkOnline(t testing.TB, p broker.Presence, ids []int64, want ...int64) {
	t.Helper()
	got, err := p.Online(ctx(t), ids)
	if err != nil {
		t.Fatalf("Online(%v): %v", ids, err)
	}
	if g, w := onlineList(got, ids), fmt.Sprint(want); g != w {
		t.Errorf("online among %v = %s, want %s", ids, g, w)
	}
}

func onlineList(online map[int64]bool, ids []int64) string {
	var on []string
	for _, id := range ids {
		if online[id] {
			on = append(on, strconv.FormatInt(id, 10))
		}
	}
	return "[" + strings.Join(on, " ") + "]"
}

// waitOffline polls until the user is offline.
func waitOffline(t testing.TB, p broker.Presence, id int64) {
	t.Helper()
	deadline := time.Now().Add(Wait)
	for {
		got, err := p.Online(ctx(t), []int64{id})
		if err != nil {
			t.Fatalf("Online: %v", err)
		}
		if !got[id] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("user %d still online after %v", id, Wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testOnlineOffline(t *testing.T, newPresence func(t *testing.T, instance string) broker.Presence) {
	p := newPresence(t, "a")
	ids := []int64{1, 2, 3}
	checkOnline(t, p, ids)
	setOnline(t, p, time.Minute, 1, 2)
	checkOnline(t, p, ids, 1, 2)
	setOffline(t, p, 1)
	checkOnline(t, p, ids, 2)
	setOffline(t, p, 2, 3) // 3 was never online: harmless
	checkOnline(t, p, ids)
}

func testExpiry(t *testing.T, newPresence func(t *testing.T, instance string) broker.Presence) {
	p := newPresence(t, "a")
	setOnline(t, p, time.Minute, 1)
	setOnline(t, p, shortTTL, 2)
	checkOnline(t, p, []int64{1, 2}, 1, 2)
	waitOffline(t, p, 2)
	checkOnline(t, p, []int64{1, 2}, 1)
}

func testRefreshExtends(t *testing.T, newPresence func(t *testing.T, instance string) broker.Presence) {
	p := newPresence(t, "a")
	setOnline(t, p, shortTTL, 1, 2)
	setOnline(t, p, time.Minute, 1) // the periodic refresh
	waitOffline(t, p, 2)            // shortTTL has passed
	checkOnline(t, p, []int64{1, 2}, 1)
}

func testSeveralInstances(t *testing.T, newPresence func(t *testing.T, instance string) broker.Presence) {
	a, b := newPresence(t, "a"), newPresence(t, "b")
	ids := []int64{1, 2, 3}
	setOnline(t, a, time.Minute, 1)
	setOnline(t, b, time.Minute, 1, 2)
	checkOnline(t, a, ids, 1, 2)
	checkOnline(t, b, ids, 1, 2)

	setOffline(t, a, 1)
	checkOnline(t, b, ids, 1, 2) // still on b
	setOffline(t, b, 1)
	checkOnline(t, a, ids, 2)

	// a's expiring mark does not take b's with it.
	setOnline(t, a, shortTTL, 2, 3)
	waitOffline(t, b, 3)
	checkOnline(t, a, ids, 2)
}

func testNoUsers(t *testing.T, newPresence func(t *testing.T, instance string) broker.Presence) {
	p := newPresence(t, "a")
	setOnline(t, p, time.Minute)
	setOffline(t, p)
	got, err := p.Online(ctx(t), nil)
	if err != nil {
		t.Fatalf("Online(nil): %v", err)
	}
	if len(got) != 0 {
		t.Errorf("Online(nil) = %v, want empty", got)
	}
}

func testRejectsBadTTL(t *testing.T, newPresence func(t *testing.T, instance string) broker.Presence) {
	p := newPresence(t, "a")
	for _, ttl := range []time.Duration{0, -time.Second} {
		if err := p.SetOnline(ctx(t), ttl, 1); err == nil {
			t.Errorf("SetOnline(ttl %v): no error", ttl)
		}
	}
	checkOnline(t, p, []int64{1})
}

func until(t testing.TB, p broker.Presence, id int64) time.Time {
	t.Helper()
	u, err := p.Until(ctx(t), id)
	if err != nil {
		t.Fatalf("Until(%d): %v", id, err)
	}
	return u
}

// testUntil: Until is the latest expiry of the user's unexpired marks over every instance,
// zero once none is left (an expired mark does not count, even before it is trimmed). The
// marks compared are minutes long, so that a slow machine cannot expire one mid-test.
func testUntil(t *testing.T, newPresence func(t *testing.T, instance string) broker.Presence) {
	a, b := newPresence(t, "a"), newPresence(t, "b")
	if u := until(t, a, 1); !u.IsZero() {
		t.Errorf("Until of a user never online = %v, want zero", u)
	}
	within := func(what string, u, from, to time.Time, ttl time.Duration) {
		t.Helper()
		if lo, hi := from.Add(ttl).Truncate(time.Millisecond), to.Add(ttl+time.Millisecond); u.Before(lo) || u.After(hi) {
			t.Errorf("Until %s = %v, want within [%v, %v]", what, u, lo, hi)
		}
	}
	beforeA := time.Now()
	setOnline(t, a, time.Minute, 1)
	afterA := time.Now()
	beforeB := time.Now()
	setOnline(t, b, 2*time.Minute, 1)
	afterB := time.Now()
	within("with marks of 1 and 2 minutes", until(t, a, 1), beforeB, afterB, 2*time.Minute)
	setOffline(t, b, 1)
	within("with a's minute left", until(t, b, 1), beforeA, afterA, time.Minute)
	setOffline(t, a, 1)
	if u := until(t, a, 1); !u.IsZero() {
		t.Errorf("Until once both marks are cleared = %v, want zero", u)
	}
	setOnline(t, a, shortTTL, 2)
	waitOffline(t, b, 2)
	if u := until(t, b, 2); !u.IsZero() {
		t.Errorf("Until once the only mark expired = %v, want zero", u)
	}
}

func orphans(t testing.TB, p broker.Presence) []broker.Orphan {
	t.Helper()
	o, err := p.Orphans(ctx(t))
	if err != nil {
		t.Fatalf("Orphans: %v", err)
	}
	return o
}

// waitOrphans polls Orphans until it hands over something.
func waitOrphans(t testing.TB, p broker.Presence) []broker.Orphan {
	t.Helper()
	deadline := time.Now().Add(Wait)
	for {
		if o := orphans(t, p); len(o) > 0 {
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("no orphans after %v", Wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkOrphan fails unless os is one run holding exactly users, last marked within [from, to].
func checkOrphan(t testing.TB, os []broker.Orphan, users []int64, from, to time.Time) {
	t.Helper()
	if len(os) != 1 {
		t.Fatalf("Orphans = %+v, want one run", os)
	}
	o := os[0]
	got := slices.Clone(o.Users)
	slices.Sort(got)
	if o.Run == "" || !slices.Equal(got, users) {
		t.Errorf("orphan %+v, want a named run with users %v", o, users)
	}
	if o.LastMark.Before(from.Truncate(time.Millisecond)) || o.LastMark.After(to.Add(time.Millisecond)) {
		t.Errorf("orphan's last mark %v, want within [%v, %v]", o.LastMark, from, to)
	}
}

// testOrphans: an instance that stops refreshing its marks (a crash) is handed over once they
// have all expired, with the users it had marked and not cleared, to one caller only; a live
// instance never is.
func testOrphans(t *testing.T, newPresence func(t *testing.T, instance string) broker.Presence) {
	a, b, c := newPresence(t, "a"), newPresence(t, "b"), newPresence(t, "c")
	setOnline(t, a, shortTTL, 1, 2)
	before := time.Now()
	setOnline(t, a, shortTTL, 1, 2, 4) // a's refresh, then it crashes
	after := time.Now()
	setOffline(t, a, 2)
	setOnline(t, b, time.Minute, 3)
	// b, live, is never handed over: only a's run comes (checkOrphan wants exactly one).
	waitOffline(t, c, 1)
	checkOrphan(t, waitOrphans(t, c), []int64{1, 4}, before, after)
	if o := orphans(t, b); len(o) > 0 {
		t.Errorf("Orphans again = %+v, want none: the run was handed over", o)
	}
	checkOnline(t, c, []int64{1, 2, 3, 4}, 3)
}

// testRetire: an orderly stop clears the instance's marks at once and hands its users over
// once the given time has passed.
func testRetire(t *testing.T, newPresence func(t *testing.T, instance string) broker.Presence) {
	a, b := newPresence(t, "a"), newPresence(t, "b")
	setOnline(t, a, time.Minute, 1, 2)
	setOnline(t, b, time.Minute, 2)
	before := time.Now()
	if err := a.Retire(ctx(t), shortTTL); err != nil {
		t.Fatalf("Retire: %v", err)
	}
	after := time.Now()
	checkOnline(t, b, []int64{1, 2}, 2)
	if o := orphans(t, b); len(o) > 0 && time.Since(before) < shortTTL {
		t.Fatalf("Orphans right after Retire = %+v, want none before %v", o, shortTTL)
	}
	checkOrphan(t, waitOrphans(t, b), []int64{1, 2}, before, after)
}

func takenOver(t testing.TB, p broker.Presence) bool {
	t.Helper()
	taken, err := p.TakenOver(ctx(t))
	if err != nil {
		t.Fatalf("TakenOver: %v", err)
	}
	return taken
}

// testTakenOver: an instance that stalled past its marks' ttl learns, once, that another took
// its users over; it is never handed its own run, and an instance nobody took over learns
// nothing.
func testTakenOver(t *testing.T, newPresence func(t *testing.T, instance string) broker.Presence) {
	a, b := newPresence(t, "a"), newPresence(t, "b")
	setOnline(t, a, shortTTL, 1)
	setOnline(t, b, time.Minute, 2)
	waitOffline(t, b, 1) // a stalls
	if o := orphans(t, a); len(o) > 0 {
		t.Errorf("a was handed %+v, its own run", o)
	}
	if takenOver(t, a) || takenOver(t, b) {
		t.Fatalf("TakenOver before anyone took a over")
	}
	checkOrphan(t, waitOrphans(t, b), []int64{1}, time.Time{}, time.Now())
	if takenOver(t, b) {
		t.Errorf("TakenOver of b, the taker")
	}
	if !takenOver(t, a) {
		t.Fatalf("a, taken over, was not told")
	}
	if takenOver(t, a) {
		t.Errorf("a was told twice")
	}
	// Back, a marks its users again and is a run like any other.
	setOnline(t, a, time.Minute, 1)
	checkOnline(t, b, []int64{1, 2}, 1, 2)
	if o := orphans(t, b); len(o) > 0 {
		t.Errorf("Orphans = %+v after a came back, want none", o)
	}

	// An idle instance (its last user left) is taken over with nobody, and told nothing: it
	// has nobody to announce again.
	c := newPresence(t, "c")
	setOnline(t, c, shortTTL, 3)
	setOffline(t, c, 3)
	if o := waitOrphans(t, b); len(o) != 1 || len(o[0].Users) != 0 {
		t.Fatalf("Orphans = %+v, want c's run with no users", o)
	}
	if takenOver(t, c) {
		t.Errorf("an idle instance was told it was taken over")
	}
}
