package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/broker/brokertest"
	"github.com/wschat/chat/internal/broker/redisbroker"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/testdb"
	"github.com/wschat/chat/internal/testserver"
)

// msgState is what a device shows of one message.
type msgState struct {
	Body      string
	Deleted   bool
	Edited    bool
	Rev       int64
	Reactions map[string]int
}

func stateOf(m chat.Message) msgState {
	s := msgState{Body: m.Body, Deleted: m.DeletedAt != nil, Edited: m.EditedAt != nil, Rev: m.Rev, Reactions: map[string]int{}}
	for _, r := range m.Reactions {
		s.Reactions[r.Emoji] = r.Count
	}
	return s
}

func (s msgState) String() string {
	return fmt.Sprintf("{%q deleted=%v edited=%v rev=%d %v}", s.Body, s.Deleted, s.Edited, s.Rev, s.Reactions)
}

func (s msgState) equal(o msgState) bool {
	return s.Body == o.Body && s.Deleted == o.Deleted && s.Edited == o.Edited && s.Rev == o.Rev && maps.Equal(s.Reactions, o.Reactions)
}

// device is one connection's picture of a chat, built from the frames it receives, with
// the checks of the delivery promise: messages once in seq order, changes once in rev order.
type device struct {
	name    string
	c       *wsConn
	chatID  int64
	msgs    map[int64]msgState
	lastSeq int64
	lastRev int64
	changes int // change frames received
}

func newDevice(name string, c *wsConn, chatID int64, hello frame) *device {
	d := &device{name: name, c: c, chatID: chatID, msgs: map[int64]msgState{}}
	var h struct {
		Chats []struct {
			ID      int64 `json:"id"`
			LastSeq int64 `json:"last_seq"`
			LastRev int64 `json:"last_rev"`
		} `json:"chats"`
	}
	json.Unmarshal(hello.Data, &h)
	for _, ch := range h.Chats {
		if ch.ID == chatID {
			d.lastSeq, d.lastRev = ch.LastSeq, ch.LastRev
		}
	}
	return d
}

// apply takes one frame into the picture, failing the test on a repeat or a step back.
func (d *device) apply(t *testing.T, f frame) {
	t.Helper()
	if chatOf(f) != d.chatID {
		return
	}
	switch f.Type {
	case "message.new":
		var m chat.MessageData
		json.Unmarshal(f.Data, &m)
		if m.Message.Seq != d.lastSeq+1 {
			t.Fatalf("%s: message.new seq %d after %d", d.name, m.Message.Seq, d.lastSeq)
		}
		d.lastSeq = m.Message.Seq
		d.msgs[m.Message.Seq] = stateOf(m.Message)
	case "message.updated":
		var m chat.MessageData
		json.Unmarshal(f.Data, &m)
		d.change(t, m.Message.Rev, m.Message.Seq)
		d.msgs[m.Message.Seq] = stateOf(m.Message)
	case "reaction.updated":
		var r chat.ReactionUpdatedData
		json.Unmarshal(f.Data, &r)
		d.change(t, r.Rev, r.Seq)
		s := d.msgs[r.Seq]
		s.Reactions = maps.Clone(s.Reactions)
		if s.Reactions == nil { // a message from before the device connected
			s.Reactions = map[string]int{}
		}
		if r.Count == 0 {
			delete(s.Reactions, r.Emoji)
		} else {
			s.Reactions[r.Emoji] = r.Count
		}
		s.Rev = r.Rev
		d.msgs[r.Seq] = s
	}
}

func (d *device) change(t *testing.T, rev, seq int64) {
	t.Helper()
	if rev <= d.lastRev {
		t.Fatalf("%s: a change of rev %d (message %d) after rev %d: a repeat or out of order", d.name, rev, seq, d.lastRev)
	}
	if seq > d.lastSeq {
		t.Fatalf("%s: a change of message %d before the message (last seq %d)", d.name, seq, d.lastSeq)
	}
	d.lastRev = rev
	d.changes++
}

// catchUp reads until the device has the chat's last seq and rev, then a while longer: nothing
// more may come.
func (d *device) catchUp(t *testing.T, lastSeq, lastRev int64) {
	t.Helper()
	for d.lastSeq < lastSeq || d.lastRev < lastRev {
		d.apply(t, d.c.Next(20*time.Second))
	}
	for _, f := range d.c.Quiet(300 * time.Millisecond) {
		d.apply(t, f)
	}
}

// checkView compares the device's picture with the store's.
func (d *device) checkView(t *testing.T, want map[int64]msgState) {
	t.Helper()
	for seq, w := range want {
		if got := d.msgs[seq]; !got.equal(w) {
			t.Errorf("%s: message %d shows %v, the store has %v", d.name, seq, got, w)
		}
	}
}

// storeView is the chat's text messages as the store has them, and its last seq and rev.
func storeView(t *testing.T, s *testServer, owner *testUser, chatID int64) (map[int64]msgState, int64, int64) {
	t.Helper()
	msgs, _, err := s.Svc.History(context.Background(), owner.P(), chatID, chat.HistoryPage{Limit: chat.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]msgState{}
	for _, m := range msgs {
		if m.Kind == chat.MessageText {
			out[m.Seq] = stateOf(m)
		}
	}
	c, err := s.Store.ChatFor(context.Background(), owner.ID, chatID)
	if err != nil {
		t.Fatal(err)
	}
	return out, c.LastSeq, c.LastRev
}

var emojis = []string{"👍", "🎉", "❤️", "😂"}

// changeStorm makes n changes per user, from one goroutine per user, through the given
// services in turn: edits and deletes of their own messages, reactions added and taken back
// on anyone's, and a send now and then. Refusals that follow from the race (a message
// deleted meanwhile) are expected.
func changeStorm(t *testing.T, svcs []*chat.Service, chatID int64, users []*testUser, seqs []int64, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for ui, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(ui), 13))
			ctx := context.Background()
			for i := range n {
				svc := svcs[(ui+i)%len(svcs)]
				seq := seqs[rnd.IntN(len(seqs))]
				var err error
				switch k := rnd.IntN(20); {
				case k < 6:
					_, err = svc.EditMessage(ctx, u.P(), chatID, seq, fmt.Sprintf("edit %d of %s", i, u.Name))
				case k < 7:
					err = svc.DeleteMessage(ctx, u.P(), chatID, seq)
				case k < 18:
					_, err = svc.React(ctx, u.P(), chatID, seq, emojis[rnd.IntN(len(emojis))], k%2 == 0)
				default:
					_, _, err = svc.Send(ctx, u.P(), chat.SendInput{ChatID: chatID, Body: "more", ClientID: fmt.Sprintf("storm-%d-%d", ui, i)})
				}
				switch chat.ErrorCode(err) {
				case "", chat.CodeNotAuthor, chat.CodeMessageDeleted:
				default:
					t.Errorf("%s, change %d: %v", u.Name, i, err)
				}
			}
		}()
	}
	wg.Wait()
}

// changesLive: devices of two members on the given servers (alternately) see every change of a
// chat made through all of them once and in rev order, whatever the broker loses, and end
// with the store's view of every message.
func changesLive(t *testing.T, servers []*testServer, losers []*brokertest.Lossy) {
	s := servers[0]
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	id := s.Group(t, ann, "G", false, ben)
	var devices []*device
	for i, u := range []*testUser{ann, ann, ben, ben} {
		srv := servers[i%len(servers)]
		c, hello := srv.DialHello(t, u)
		devices = append(devices, newDevice(fmt.Sprintf("%s's device %d", u.Name, i), c, id, hello))
	}
	var seqs []int64
	for i := range 6 {
		seqs = append(seqs, s.Send(t, []*testUser{ann, ben}[i%2], id, fmt.Sprint("message ", i)).Seq)
	}
	var svcs []*chat.Service
	for _, srv := range servers {
		svcs = append(svcs, srv.Svc)
	}
	changeStorm(t, svcs, id, []*testUser{ann, ben}, seqs, 80)
	for _, l := range losers {
		l.Heal()
	}
	// A message and a change through each instance release what its broker held; a lost last
	// change would wait for the next (as a lost last message does).
	for _, srv := range servers {
		m := srv.Send(t, ann, id, "flush")
		if _, err := srv.Svc.React(context.Background(), ann.P(), id, m.Seq, "🙈", true); err != nil {
			t.Fatal(err)
		}
	}
	want, lastSeq, lastRev := storeView(t, s, ann, id)
	lost := 0
	for _, l := range losers {
		lost += l.Lost
	}
	t.Logf("%d changes, last seq %d, %d events lost by the brokers", lastRev, lastSeq, lost)
	for _, d := range devices {
		d.catchUp(t, lastSeq, lastRev)
		d.checkView(t, want)
		if d.changes == 0 || d.changes > int(lastRev) {
			t.Errorf("%s: %d change frames for %d changes", d.name, d.changes, lastRev)
		}
	}
}

// TestChangesLive: one embedded instance, a broker that loses and reorders messages and
// changes.
func TestChangesLive(t *testing.T) {
	t.Parallel()
	l := &brokertest.Lossy{Broker: broker.NewMemory(), Types: []string{chat.EventMessageNew, chat.EventMessageUpdated, chat.EventReactionUpdated}}
	s := startServer(t, serverConfig{Broker: l})
	changesLive(t, []*testServer{s}, []*brokertest.Lossy{l})
}

// swapper is a broker that delivers every change after the first in swapped pairs: the
// second of a pair goes out first, as two instances' publishes can arrive.
type swapper struct {
	broker.Broker
	mu   sync.Mutex
	n    int
	held func()
}

func (b *swapper) Publish(ctx context.Context, topic string, payload []byte) error {
	if !strings.Contains(string(payload), `"t":"`+chat.EventReactionUpdated+`"`) {
		return b.Broker.Publish(ctx, topic, payload)
	}
	b.mu.Lock()
	b.n++
	if b.n > 1 && b.n%2 == 0 {
		p := bytes.Clone(payload)
		b.held = func() { b.Broker.Publish(context.WithoutCancel(ctx), topic, p) }
		b.mu.Unlock()
		return nil
	}
	held := b.held
	b.held = nil
	b.mu.Unlock()
	err := b.Broker.Publish(ctx, topic, payload)
	if held != nil {
		held()
	}
	return err
}

// TestChangesReorderedInTheHub: changes that reach the instance out of rev order are put back
// in order by the hub before the fan-out, so the connections never read the store for them.
// (They did: the hub let changes through in arrival order, and every connection of a chat
// healed each swapped pair from the store; a reaction storm's 1,000 devices read it 4,000
// to 10,000 times in 20 s.)
func TestChangesReorderedInTheHub(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{Broker: &swapper{Broker: broker.NewMemory()}})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	id := s.Group(t, ann, "G", false, ben)
	c, hello := s.DialHello(t, ben)
	d := newDevice("Ben's device", c, id, hello)
	m := s.Send(t, ann, id, "react to me")
	emoji := []string{"👍", "🎉", "😂", "🙈", "🔥", "👀", "🚀", "❤️", "🤔"}
	for i, e := range emoji { // 9 changes: the first alone, then four swapped pairs
		if _, err := s.Svc.React(context.Background(), []*testUser{ann, ben}[i%2].P(), id, m.Seq, e, true); err != nil {
			t.Fatal(err)
		}
	}
	want, lastSeq, lastRev := storeView(t, s, ann, id)
	d.catchUp(t, lastSeq, lastRev)
	d.checkView(t, want)
	if d.changes != len(emoji) {
		t.Errorf("%d change frames for %d changes", d.changes, len(emoji))
	}
	if n := s.Hub.Stats().GapsHealed.Load(); n != 0 {
		t.Errorf("the connection read the store %d times for changes the hub should have put in order", n)
	}
}

// TestChangesLiveTwoInstances: two instances over PostgreSQL and Redis, each publishing through
// a broker that loses and reorders; devices on both, changes made through both.
func TestChangesLiveTwoInstances(t *testing.T) {
	t.Parallel()
	db := testdb.Postgres(t)
	addr, prefix := testdb.Redis(t)
	var servers []*testServer
	var losers []*brokertest.Lossy
	for _, name := range []string{"a", "b"} {
		rb, err := redisbroker.New(redisbroker.Options{URL: "redis://" + addr + "/0", Prefix: prefix, InstanceID: prefix + name})
		if err != nil {
			t.Fatal(err)
		}
		l := &brokertest.Lossy{Broker: rb, Types: []string{chat.EventMessageNew, chat.EventMessageUpdated, chat.EventReactionUpdated}}
		losers = append(losers, l)
		servers = append(servers, testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: l, Presence: rb.Presence(), Hub: hubOptions(name)}))
	}
	changesLive(t, servers, losers)
}

// TestChangesSync: a device offline while 50 changes are made gets, from one sync with a
// {seq, rev} cursor, the messages it missed and the latest state of each message changed
// since, once each; the plain cursor brings no changes.
func TestChangesSync(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	id := s.Group(t, ann, "G", false, ben)
	var seqs []int64
	for i := range 8 {
		seqs = append(seqs, s.Send(t, []*testUser{ann, ben}[i%2], id, fmt.Sprint("message ", i)).Seq)
	}
	// Some changes before the device was last connected: it has them already.
	changeStorm(t, []*chat.Service{s.Svc}, id, []*testUser{ann, ben}, seqs, 5)
	before, seenSeq, seenRev := storeView(t, s, ann, id)
	c, hello := s.DialHello(t, ben)
	d := newDevice("Ben's device", c, id, hello)
	if d.lastSeq != seenSeq || d.lastRev != seenRev {
		t.Fatalf("hello: last seq %d, last rev %d; the store has %d and %d", d.lastSeq, d.lastRev, seenSeq, seenRev)
	}
	c.WS.CloseNow()

	// Offline: at least 50 changes, a few new messages among them.
	var want map[int64]msgState
	var lastSeq, lastRev int64
	for round := 0; lastRev-seenRev < 50; round++ {
		if round == 10 {
			t.Fatalf("only %d changes were made offline", lastRev-seenRev)
		}
		changeStorm(t, []*chat.Service{s.Svc}, id, []*testUser{ann, ben}, seqs, 20)
		want, lastSeq, lastRev = storeView(t, s, ann, id)
	}

	for _, form := range []string{"seq and rev", "plain"} {
		t.Run(form, func(t *testing.T) {
			c, hello := s.DialHello(t, ben)
			c.Bind(t)
			d := newDevice("Ben's device", c, id, hello)
			d.lastSeq, d.lastRev, d.msgs = seenSeq, seenRev, maps.Clone(before)
			var cursor any = map[string]int64{"seq": seenSeq, "rev": seenRev}
			if form == "plain" {
				cursor = seenSeq
			}
			c.Send("sync", "s1", map[string]any{"cursors": map[string]any{fmt.Sprint(id): cursor}})
			changed := map[int64]bool{}
			for {
				f := c.Next(20 * time.Second)
				if f.Type == "sync.done" {
					break
				}
				if f.Type == "error" {
					t.Fatalf("sync: %s", f.Raw)
				}
				if f.Type == "message.updated" {
					var m chat.MessageData
					json.Unmarshal(f.Data, &m)
					if changed[m.Message.Seq] {
						t.Errorf("message %d came twice", m.Message.Seq)
					}
					changed[m.Message.Seq] = true
					// Compacted: the latest state, not an intermediate one.
					if got := stateOf(m.Message); !got.equal(want[m.Message.Seq]) {
						t.Errorf("message %d: sync brought %v, the store has %v", m.Message.Seq, got, want[m.Message.Seq])
					}
					d.msgs[m.Message.Seq] = stateOf(m.Message)
					continue
				}
				d.apply(t, f)
			}
			if d.lastSeq != lastSeq {
				t.Errorf("after the sync the device has seq %d, the store %d", d.lastSeq, lastSeq)
			}
			if form == "plain" {
				if len(changed) > 0 {
					t.Errorf("a plain cursor brought %d changes", len(changed))
				}
				return
			}
			// Exactly the old messages that changed while offline came as message.updated.
			for _, seq := range seqs {
				if moved := want[seq].Rev > seenRev; moved != changed[seq] {
					t.Errorf("message %d: changed offline %v, sent by the sync %v", seq, moved, changed[seq])
				}
			}
			d.checkView(t, want)
			if extra := ofType(c.Quiet(300*time.Millisecond), "message.updated"); len(extra) > 0 {
				t.Errorf("more changes after sync.done: %s", testserver.Raws(extra))
			}
		})
	}
}

// TestReplyOverWebSocket: message.send takes reply_to_seq; the ack and the other devices'
// message.new carry the quote; a seq the chat does not have is an error frame.
func TestReplyOverWebSocket(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	id := s.Group(t, ann, "G", false, ben)
	q := s.Send(t, ann, id, "question?")
	bc, ac := s.Dial(t, ben), s.Dial(t, ann)
	frames := bc.RoundTrip("message.send", "r1", map[string]any{"chat_id": id, "client_id": "r1", "body": "answer", "reply_to_seq": q.Seq})
	acks := ofType(frames, "message.ack")
	if len(acks) != 1 {
		t.Fatalf("no ack: %s", testserver.Raws(frames))
	}
	for _, f := range []frame{acks[0], ac.NextOf("message.new", 10*time.Second)} {
		var m chat.MessageData
		json.Unmarshal(f.Data, &m)
		if r := m.Message.ReplyTo; r == nil || r.Seq != q.Seq || r.BodyPreview != "question?" || r.Deleted {
			t.Errorf("%s: reply_to %+v", f.Type, r)
		}
	}
	frames = bc.RoundTrip("message.send", "r2", map[string]any{"chat_id": id, "client_id": "r2", "body": "x", "reply_to_seq": 999})
	if code, ok := errorOf(frames, "r2"); !ok || code != chat.CodeInvalid || !strings.Contains(testserver.Raws(frames), `"field":"body.reply_to_seq"`) {
		t.Errorf("a reply to no message: %s, want error invalid with field body.reply_to_seq", testserver.Raws(frames))
	}
}

// TestChangesEndWithMembership: changes reach a member's devices until their leave, and none
// after it (live or by sync), while the other members get them.
func TestChangesEndWithMembership(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	ann, ben, cat := s.NewUser(t, "Ann"), s.NewUser(t, "Ben"), s.NewUser(t, "Cat")
	id := s.Group(t, ann, "G", false, ben, cat)
	m := s.Send(t, ann, id, "hello")
	bc, hello := s.DialHello(t, ben)
	bd := newDevice("Ben's device", bc, id, hello)
	cc := s.Dial(t, cat)
	ctx := context.Background()
	if _, err := s.Svc.React(ctx, cat.P(), id, m.Seq, "👍", true); err != nil {
		t.Fatal(err)
	}
	if f := cc.NextOf("reaction.updated", 10*time.Second); chatOf(f) != id {
		t.Fatalf("cat's own reaction: %s", f.Raw)
	}
	if err := s.Svc.Leave(ctx, cat.P(), id); err != nil {
		t.Fatal(err)
	}
	cc.NextOf("chat.removed", 10*time.Second)
	if _, err := s.Svc.EditMessage(ctx, ann.P(), id, m.Seq, "hello again"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Svc.React(ctx, ann.P(), id, m.Seq, "🎉", true); err != nil {
		t.Fatal(err)
	}
	if err := s.Svc.DeleteMessage(ctx, ann.P(), id, m.Seq); err != nil {
		t.Fatal(err)
	}
	_, lastSeq, lastRev := storeView(t, s, ann, id)
	bd.catchUp(t, lastSeq, lastRev) // the others got everything
	frames := append(cc.Quiet(300*time.Millisecond), cc.RoundTrip("sync", "s", map[string]any{"cursors": map[string]any{
		fmt.Sprint(id): map[string]int64{"seq": m.Seq, "rev": 0}}})...)
	for _, f := range frames {
		if (f.Type == "message.updated" || f.Type == "reaction.updated" || f.Type == "message.new") && chatOf(f) == id {
			t.Errorf("after the leave: %s", f.Raw)
		}
	}
	if code, _ := errorOf(frames, "s"); code != chat.CodeNotFound {
		t.Errorf("a sync of the chat left: %s", testserver.Raws(frames))
	}
}
