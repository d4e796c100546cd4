package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/chat"
)

// gateBroker holds back the events of messages and their changes while closed (or the
// events of the types given to closeFor), and publishes them in order when opened: a
// connection's stream then lags behind the store for as long as the test wants.
type gateBroker struct {
	broker.Broker
	mu     sync.Mutex
	closed bool
	types  []string // the event types held, by prefix (closeFor)
	held   [][2]string
}

func (g *gateBroker) Publish(ctx context.Context, topic string, payload []byte) error {
	g.mu.Lock()
	if g.closed && g.holds(payload) {
		g.held = append(g.held, [2]string{topic, string(payload)})
		g.mu.Unlock()
		return nil
	}
	g.mu.Unlock()
	return g.Broker.Publish(ctx, topic, payload)
}

func (g *gateBroker) holds(payload []byte) bool {
	types := g.types
	if len(types) == 0 {
		types = []string{"message.", "reaction."}
	}
	for _, t := range types {
		if bytes.Contains(payload, []byte(`"t":"`+t)) {
			return true
		}
	}
	return false
}

func (g *gateBroker) close() { g.closeFor() }

// closeFor closes the gate for the events whose type begins with one of types (none:
// messages and changes).
func (g *gateBroker) closeFor(types ...string) {
	g.mu.Lock()
	g.closed, g.types = true, types
	g.mu.Unlock()
}

// release publishes the events held of one type, in order; the gate stays as it is.
func (g *gateBroker) release(t *testing.T, typ string) {
	g.mu.Lock()
	var out, keep [][2]string
	for _, h := range g.held {
		if bytes.Contains([]byte(h[1]), []byte(`"t":"`+typ+`"`)) {
			out = append(out, h)
		} else {
			keep = append(keep, h)
		}
	}
	g.held = keep
	g.mu.Unlock()
	for _, h := range out {
		if err := g.Broker.Publish(context.Background(), h[0], []byte(h[1])); err != nil {
			t.Fatal(err)
		}
	}
}

// pass lets events through again; those held wait for open.
func (g *gateBroker) pass() {
	g.mu.Lock()
	g.closed = false
	g.mu.Unlock()
}

func (g *gateBroker) open(t *testing.T) {
	g.mu.Lock()
	held := g.held
	g.closed, g.held = false, nil
	g.mu.Unlock()
	for _, h := range held {
		if err := g.Broker.Publish(context.Background(), h[0], []byte(h[1])); err != nil {
			t.Fatal(err)
		}
	}
}

// applyTolerant takes a frame into a device's picture the way a client must once a sync has
// run: a change whose rev is below the message's is stale and ignored; a message.updated with
// the message's own rev is a repeat and applied again (the whole state, idempotent); a
// reaction.updated with it is one the state has already.
func (d *device) applyTolerant(t *testing.T, f frame) {
	t.Helper()
	if chatOf(f) != d.chatID {
		return
	}
	switch f.Type {
	case "message.updated":
		var m chat.MessageData
		json.Unmarshal(f.Data, &m)
		if m.Message.Rev >= d.msgs[m.Message.Seq].Rev {
			d.msgs[m.Message.Seq] = stateOf(m.Message)
		}
	case "reaction.updated":
		var r chat.ReactionUpdatedData
		json.Unmarshal(f.Data, &r)
		if r.Rev > d.msgs[r.Seq].Rev {
			d.apply(t, f)
		}
	case "message.new":
		var m chat.MessageData
		json.Unmarshal(f.Data, &m)
		if m.Message.Seq <= d.lastSeq {
			t.Errorf("%s: message %d again", d.name, m.Message.Seq)
			return
		}
		d.apply(t, f)
	}
}

// TestSyncSendsChangesAheadOfTheStream: a device that had two messages, both changed before
// its hello (an edit, a reaction), syncs while its stream lags behind the store (a new message
// and a reaction to the edited message, made after the hello, have not reached the instance
// yet). The sync's changes after the hello's last rev cannot be sent before the messages they
// followed; that must hold back neither the changes before it in the same page (once, the
// whole page was dropped) nor the edit made before the hello, which only the latest state of
// its message carries, with the later rev (once, only the live reaction came: the edit was
// lost). Then the live events arrive and repeat what the sync sent: harmless.
func TestSyncSendsChangesAheadOfTheStream(t *testing.T) {
	t.Parallel()
	g := &gateBroker{Broker: broker.NewMemory()}
	s := startServer(t, serverConfig{Broker: g})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	id := s.Group(t, ann, "G", false, ben)
	one, two := s.Send(t, ann, id, "one"), s.Send(t, ann, id, "two")
	ctx := context.Background()
	if _, err := s.Svc.EditMessage(ctx, ann.P(), id, one.Seq, "one, edited"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Svc.React(ctx, ann.P(), id, two.Seq, "👍", true); err != nil {
		t.Fatal(err)
	}
	c, hello := s.DialHello(t, ben)
	c.Bind(t)
	d := newDevice("Ben's device", c, id, hello)
	// The device was last connected before the changes: it has both messages as sent.
	seenSeq := d.lastSeq
	d.lastRev = 0
	d.msgs[one.Seq], d.msgs[two.Seq] = stateOf(one), stateOf(two)

	g.close()
	s.Send(t, ben, id, "three")
	if _, err := s.Svc.React(ctx, ann.P(), id, one.Seq, "🎉", true); err != nil {
		t.Fatal(err)
	}
	c.Send("sync", "s1", map[string]any{"cursors": map[string]any{fmt.Sprint(id): map[string]int64{"seq": seenSeq, "rev": 0}}})
	for {
		f := c.Next(20 * time.Second)
		if f.Type == "sync.done" {
			break
		}
		if f.Type == "error" {
			t.Fatalf("sync: %s", f.Raw)
		}
		d.apply(t, f) // up to sync.done: once each, in order
	}
	want, lastSeq, lastRev := storeView(t, s, ann, id)
	if got := d.msgs[two.Seq]; !got.equal(want[two.Seq]) {
		t.Errorf("at sync.done, message %d (changed before the hello) shows %v, the store has %v", two.Seq, got, want[two.Seq])
	}
	if got := d.msgs[one.Seq]; !got.equal(want[one.Seq]) {
		t.Errorf("at sync.done, message %d (edited before the hello, reacted to after it) shows %v, the store has %v", one.Seq, got, want[one.Seq])
	}

	g.open(t)
	s.Send(t, ann, id, "four") // after the held events, through the same broker
	lastSeq++
	for d.lastSeq < lastSeq {
		d.applyTolerant(t, c.Next(20*time.Second))
	}
	for _, f := range c.Quiet(300 * time.Millisecond) {
		d.applyTolerant(t, f)
	}
	want, _, _ = storeView(t, s, ann, id)
	d.checkView(t, want)
	t.Logf("last rev %d", lastRev)
}

// stall holds one read of a stallingStore, after it is made and before its answer, until let
// go: a read that began before a change was committed, still in flight after it.
type stall struct {
	mu      sync.Mutex
	armed   bool
	freed   bool
	entered chan struct{} // closed when the stalled read has been made
	release chan struct{}
	reads   chan struct{} // one per read after the stalled one
}

func newStall() *stall {
	return &stall{entered: make(chan struct{}), release: make(chan struct{}), reads: make(chan struct{}, 1)}
}

// arm makes the next read the stalled one.
func (s *stall) arm() {
	s.mu.Lock()
	s.armed = true
	s.mu.Unlock()
}

// after runs after each read: the armed one waits to be let go.
func (s *stall) after() {
	s.mu.Lock()
	stalled := s.armed
	s.armed = false
	s.mu.Unlock()
	if stalled {
		close(s.entered)
		<-s.release
		return
	}
	select {
	case s.reads <- struct{}{}:
	default:
	}
}

// waitEntered waits until the stalled read has been made.
func (s *stall) waitEntered(t *testing.T, what string) {
	t.Helper()
	select {
	case <-s.entered:
	case <-time.After(20 * time.Second):
		t.Fatal(what + " was not read")
	}
}

// letGoAfterAnother waits for another read (a sync that reads for itself does at once; one
// that joined the stalled read waits on it), then lets the stalled read go: after 3 s at the
// latest, so that the test ends either way.
func (s *stall) letGoAfterAnother() {
	select {
	case <-s.reads:
	case <-time.After(3 * time.Second):
	}
	s.free()
}

// free lets the stalled read go, once.
func (s *stall) free() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.freed {
		s.freed = true
		close(s.release)
	}
}

// stallingStore stalls one read of changes, or of history, with its stall (nil: none).
type stallingStore struct {
	chat.Store
	changes *stall
	history *stall
}

func (s *stallingStore) Changes(ctx context.Context, chatID, afterRev int64, limit int) (chat.ChangePage, error) {
	page, err := s.Store.Changes(ctx, chatID, afterRev, limit)
	if s.changes != nil {
		s.changes.after()
	}
	return page, err
}

func (s *stallingStore) History(ctx context.Context, q chat.HistoryQuery) ([]chat.Message, bool, error) {
	msgs, more, err := s.Store.History(ctx, q)
	if s.history != nil {
		s.history.after()
	}
	return msgs, more, err
}

// applyUntilDone applies a device's frames up to its sync.done.
func (d *device) applyUntilDone(t *testing.T) {
	t.Helper()
	for {
		f := d.c.Next(20 * time.Second)
		if f.Type == "sync.done" {
			return
		}
		d.apply(t, f)
	}
}

// TestSyncChangesNotSharedWithAnOlderRead: a sync's read of changes is shared only with reads
// that began after its hello. Ann's device syncs and its read is made, and stalls; then a
// message is edited; then Ben's device says hello (its last rev counts the edit) and syncs
// from the same rev. Once, the two reads had one key and Ben got Ann's page, made before the
// edit: the edit, history to Ben's connection, never came.
func TestSyncChangesNotSharedWithAnOlderRead(t *testing.T) {
	t.Parallel()
	st := &stallingStore{changes: newStall()}
	s := startServer(t, serverConfig{WrapStore: func(inner chat.Store) chat.Store { st.Store = inner; return st }})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	id := s.Group(t, ann, "G", false, ben)
	m := s.Send(t, ann, id, "one")
	ctx := context.Background()
	if _, err := s.Svc.React(ctx, ann.P(), id, m.Seq, "👍", true); err != nil {
		t.Fatal(err)
	}
	cursor := map[string]any{"cursors": map[string]any{fmt.Sprint(id): map[string]int64{"seq": m.Seq, "rev": 0}}}

	ac, _ := s.DialHello(t, ann)
	ac.Bind(t)
	st.changes.arm()
	ac.Send("sync", "a", cursor)
	st.changes.waitEntered(t, "Ann's sync's changes")
	defer st.changes.free()
	if _, err := s.Svc.EditMessage(ctx, ann.P(), id, m.Seq, "one, edited"); err != nil {
		t.Fatal(err)
	}
	bc, hello := s.DialHello(t, ben)
	bc.Bind(t)
	d := newDevice("Ben's device", bc, id, hello)
	d.lastRev = 0
	d.msgs[m.Seq] = stateOf(m)
	bc.Send("sync", "b", cursor)
	st.changes.letGoAfterAnother()
	d.applyUntilDone(t)
	want, _, _ := storeView(t, s, ann, id)
	if got := d.msgs[m.Seq]; !got.equal(want[m.Seq]) {
		t.Errorf("after the sync, message %d shows %v, the store has %v", m.Seq, got, want[m.Seq])
	}
}

// TestSyncMessagesNotSharedWithAnOlderRead: a sync's read of history is shared only with
// reads by connections that had been sent the same changes. Ben's device says hello; Ann's
// device syncs and its read of the history is made, and stalls; then a message is deleted,
// and Ben's connection gets the deletion live (the message is history to it: it is below
// the hello's last seq), before it has synced, so Ben's client, which lacks the message yet,
// ignores it. Then Ben syncs from the same cursor as Ann. Once, the two reads had one key and
// Ben got Ann's page, read before the deletion: the message came with its old body, and the
// deletion, sent already, never came again. (With a cursor that has a rev, the sync's changes
// usually make up for it, unless their read is shared with an older one too: in
// TestFailover/sigterm, where many clients sync at once, a client's view kept a deleted
// message's body.)
func TestSyncMessagesNotSharedWithAnOlderRead(t *testing.T) {
	t.Parallel()
	st := &stallingStore{history: newStall()}
	s := startServer(t, serverConfig{WrapStore: func(inner chat.Store) chat.Store { st.Store = inner; return st }})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	id := s.Group(t, ann, "G", false, ben)
	s.Send(t, ann, id, "one")
	m := s.Send(t, ann, id, "two")
	ctx := context.Background()

	bc, bHello := s.DialHello(t, ben)
	bc.Bind(t)
	d := newDevice("Ben's device", bc, id, bHello)
	// A cursor without a rev asks for the messages in their latest state and for no changes,
	// so nothing after the messages could make up for a stale one.
	cursor := map[string]any{"cursors": map[string]any{fmt.Sprint(id): 0}}

	ac, _ := s.DialHello(t, ann)
	ac.Bind(t)
	st.history.arm()
	ac.Send("sync", "a", cursor)
	st.history.waitEntered(t, "Ann's sync's history")
	defer st.history.free()
	if err := s.Svc.DeleteMessage(ctx, ann.P(), id, m.Seq); err != nil {
		t.Fatal(err)
	}
	// The deletion reaches Ben live, ahead of the message it changes as far as his client
	// knows: a client that lacks the message ignores it, and so does this one.
	if f := bc.NextOf("message.updated", 20*time.Second); chatOf(f) != id {
		t.Fatalf("Ben got %s of chat %d, want the deletion in chat %d", f.Type, chatOf(f), id)
	}
	d.lastSeq, d.msgs = 0, map[int64]msgState{}
	bc.Send("sync", "b", cursor)
	st.history.letGoAfterAnother()
	d.applyUntilDone(t)
	want, _, _ := storeView(t, s, ann, id)
	if got := d.msgs[m.Seq]; !got.equal(want[m.Seq]) {
		t.Errorf("after the sync, message %d shows %v, the store has %v", m.Seq, got, want[m.Seq])
	}
}
