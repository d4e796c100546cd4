package hub_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/chat"
)

// memberships runs a test of the chat.added and chat.removed one of Ben's devices gets for
// group G while the gate holds one type of them back: it returns those frames, up to the
// chat.added of another group made after the gate opened (the hub runs membership events in
// the order they arrive, so by then it has run the ones held).
type memberships struct {
	s             *testServer
	g             *gateBroker
	ann, ben, cid *testUser
	group         int64
}

func newMemberships(t *testing.T, cfg serverConfig) *memberships {
	t.Helper()
	g := &gateBroker{Broker: broker.NewMemory()}
	cfg.Broker = g
	m := &memberships{s: startServer(t, cfg), g: g}
	m.ann, m.ben, m.cid = m.s.NewUser(t, "Ann"), m.s.NewUser(t, "Ben"), m.s.NewUser(t, "Cid")
	return m
}

// after opens the gate and returns the membership frames of G that c gets until the
// chat.added of a new group.
func (m *memberships) after(t *testing.T, c *wsConn) []string {
	t.Helper()
	m.g.open(t)
	return m.until(t, c)
}

// until returns the membership frames of G that c gets until the chat.added of a new group,
// the gate left as it is.
func (m *memberships) until(t *testing.T, c *wsConn) []string {
	t.Helper()
	marker := m.s.Group(t, m.ann, "M", false, m.ben)
	var got []string
	for {
		f := c.Next(10 * time.Second)
		if f.Type == "chat.added" && chatOf(f) == marker {
			return got
		}
		if (f.Type == "chat.added" || f.Type == "chat.removed") && chatOf(f) == m.group {
			got = append(got, f.Type+" "+string(f.Data))
		}
	}
}

func (m *memberships) invite(t *testing.T) {
	t.Helper()
	if _, err := m.s.Svc.Invite(t.Context(), m.ann.P(), m.group, m.ben.ID); err != nil {
		t.Fatal(err)
	}
}

func (m *memberships) leave(t *testing.T) {
	t.Helper()
	if err := m.s.Svc.Leave(t.Context(), m.ben.P(), m.group); err != nil {
		t.Fatal(err)
	}
}

// live checks that c follows G: Ann's next message comes to it (what names the moment).
func (m *memberships) live(t *testing.T, c *wsConn, what string) {
	t.Helper()
	msg := m.s.Send(t, m.ann, m.group, "back")
	if f := c.NextOf("message.new", 10*time.Second); chatOf(f) != m.group || seqOf(f) != msg.Seq {
		t.Errorf("%s: %s, want message %d of G", what, f.Raw, msg.Seq)
	}
}

// TestNoChatRemovedWithoutChatAdded: a device told nothing of a chat is told nothing of its
// leave. Ben is invited and leaves while his device is connected, and the invitation's
// chat.added reaches the instance after the leave's chat.removed (two instances published
// them): the device got chat.removed of a chat it never had (an outside audit saw it with
// an invitation racing the invitee's leave).
func TestNoChatRemovedWithoutChatAdded(t *testing.T) {
	t.Parallel()
	m := newMemberships(t, serverConfig{})
	m.group = m.s.Group(t, m.ann, "G", false, m.cid)
	b, _ := m.s.DialHello(t, m.ben)
	b.Bind(t)
	m.g.closeFor("chat.added")
	m.invite(t)
	m.leave(t)
	if got := m.after(t, b); len(got) != 0 {
		t.Errorf("Ben's device, never in G: %q", got)
	}
}

// TestRejoinBeforeTheLeaveIsHeard: a device whose user leaves a chat and is invited back
// before the leave's chat.removed reaches its instance gets chat.removed, then chat.added:
// a chat's membership frames alternate. It got a second chat.added (the late chat.removed
// is rightly ignored), which a client keeping a list of chats took as a chat it had twice.
func TestRejoinBeforeTheLeaveIsHeard(t *testing.T) {
	t.Parallel()
	m := newMemberships(t, serverConfig{})
	m.group = m.s.Group(t, m.ann, "G", false, m.ben, m.cid)
	b, _ := m.s.DialHello(t, m.ben)
	b.Bind(t)
	m.g.closeFor("chat.removed")
	m.leave(t)
	m.invite(t)
	got := m.after(t, b)
	if len(got) != 2 || got[0] != `chat.removed {"chat_id":`+itoa64(m.group)+`}` || got[1][:len("chat.added ")] != "chat.added " {
		t.Fatalf("Ben's device: %q, want chat.removed then chat.added", got)
	}
	m.live(t, b, "after the rejoin")
}

// TestNoSecondChatAddedAfterHello: a chat.added that comes after a hello listing its chat is
// not sent (the invitation was committed before the hello read the chat list, its event
// reached the instance after).
func TestNoSecondChatAddedAfterHello(t *testing.T) {
	t.Parallel()
	m := newMemberships(t, serverConfig{})
	m.group = m.s.Group(t, m.ann, "G", false, m.cid)
	m.g.closeFor("chat.added")
	m.invite(t)
	b, hello := m.s.DialHello(t, m.ben)
	b.Bind(t)
	if !strings.Contains(string(hello.Data), `"id":`+itoa64(m.group)+`,`) {
		t.Fatalf("hello without G: %s", hello.Data)
	}
	if got := m.after(t, b); len(got) != 0 {
		t.Errorf("Ben's device after a hello listing G: %q", got)
	}
}

// TestNoChatRemovedAfterAHelloWithoutIt: a device whose hello does not list a chat, as its
// user left it while the hello was read, is not sent the leave's chat.removed. The hello's
// first read of the chat list has G, and Ben leaves before the second, which the hello
// keeps: the device got a hello without G, then chat.removed of G.
func TestNoChatRemovedAfterAHelloWithoutIt(t *testing.T) {
	t.Parallel()
	wrapped := &duringChatsOf{nth: 1, after: true}
	m := newMemberships(t, serverConfig{WrapStore: func(st chat.Store) chat.Store { wrapped.Store = st; return wrapped }})
	m.group = m.s.Group(t, m.ann, "G", false, m.ben, m.cid)
	wrapped.user, wrapped.do = m.ben.ID, func() { m.leave(t) }
	b, hello := m.s.DialHello(t, m.ben)
	b.Bind(t)
	if strings.Contains(string(hello.Data), `"id":`+itoa64(m.group)+`,`) {
		t.Fatalf("hello with G: %s", hello.Data)
	}
	if got := m.after(t, b); len(got) != 0 {
		t.Errorf("Ben's device after a hello without G: %q", got)
	}
}

// TestHelloDroppingALeftChatTellsTheOtherDevices: a leave that one device's hello finds (the
// chat listed by its first read of the chat list, not by the second) reaches the user's other
// devices even when the leave's chat.removed is lost. The hello took the chat off the user's
// chats on the instance, so the store and the instance agreed and the audit mended nothing:
// Ben's first device showed G, which he had left, until it reconnected.
//
// The chat.removed carries the reason the lost one would have: the hello's was reason-less,
// and it came first even when the leave's own was not lost but on its way, so a device whose
// group was deleted, or who was removed from it, was told of a leave of its own (a CI run
// saw it: TestDeletedGroupEndsEveryStream, a device opening on the other instance meanwhile).
func TestHelloDroppingALeftChatTellsTheOtherDevices(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, reason string
		end          func(m *memberships, t *testing.T)
	}{
		{"leave", "", (*memberships).leave},
		{"removal", "removed", func(m *memberships, t *testing.T) {
			if err := m.s.Svc.RemoveMember(t.Context(), m.ann.P(), m.group, m.ben.ID); err != nil {
				t.Fatal(err)
			}
		}},
		{"deletion", "deleted", func(m *memberships, t *testing.T) {
			if err := m.s.Svc.DeleteChat(t.Context(), m.ann.P(), m.group); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wrapped := &duringChatsOf{nth: 3, after: true} // the first device's hello reads twice
			m := newMemberships(t, serverConfig{WrapStore: func(st chat.Store) chat.Store { wrapped.Store = st; return wrapped }})
			m.group = m.s.Group(t, m.ann, "G", false, m.ben, m.cid)
			wrapped.user, wrapped.do = m.ben.ID, func() { tc.end(m, t) }
			a, hello := m.s.DialHello(t, m.ben)
			a.Bind(t)
			if !strings.Contains(string(hello.Data), `"id":`+itoa64(m.group)+`,`) {
				t.Fatalf("the first device's hello without G: %s", hello.Data)
			}
			m.g.closeFor("chat.removed") // the leave's, never let through: lost
			b, hello := m.s.DialHello(t, m.ben)
			b.Bind(t)
			if strings.Contains(string(hello.Data), `"id":`+itoa64(m.group)+`,`) {
				t.Fatalf("the second device's hello with G: %s", hello.Data)
			}
			if n := wrapped.calls.Load(); n != 4 {
				t.Fatalf("%d reads of Ben's chats, want 4", n)
			}
			want := `chat.removed {"chat_id":` + itoa64(m.group) + `}`
			if tc.reason != "" {
				want = `chat.removed {"chat_id":` + itoa64(m.group) + `,"reason":"` + tc.reason + `"}`
			}
			if got := m.until(t, a); len(got) != 1 || got[0] != want {
				t.Errorf("Ben's first device: %q, want %q", got, want)
			}
			if got := m.until(t, b); len(got) != 0 {
				t.Errorf("Ben's second device, its hello without G: %q", got)
			}
		})
	}
}

// TestNoChatRemovedAfterAHelloListingTheComeback: a leave's chat.removed that comes while a
// hello is built is not sent after it when the hello's list was read after the user came
// back (invited again). The device got a hello with G, then chat.removed of G, then the
// comeback's chat.added.
func TestNoChatRemovedAfterAHelloListingTheComeback(t *testing.T) {
	t.Parallel()
	wrapped := &duringChatsOf{nth: 2} // before the second device's second read (set after the first device's hello)
	m := newMemberships(t, serverConfig{WrapStore: func(st chat.Store) chat.Store { wrapped.Store = st; return wrapped }})
	m.group = m.s.Group(t, m.ann, "G", false, m.ben, m.cid)
	a, _ := m.s.DialHello(t, m.ben)
	a.Bind(t)
	wrapped.user, wrapped.do = m.ben.ID, func() {
		m.leave(t)
		// Its chat.removed has been run once the first device has it: the second device,
		// whose hello is being built, holds it.
		if f := a.NextOf("chat.removed", 10*time.Second); chatOf(f) != m.group {
			t.Errorf("the first device: %s, want chat.removed of G", f.Raw)
		}
		m.g.closeFor("chat.added")
		m.invite(t)
	}
	b, hello := m.s.DialHello(t, m.ben)
	b.Bind(t)
	if n := wrapped.calls.Load(); n != 2 {
		t.Fatalf("%d reads of Ben's chats, want 2", n)
	}
	if !strings.Contains(string(hello.Data), `"id":`+itoa64(m.group)+`,`) {
		t.Fatalf("hello without G: %s", hello.Data)
	}
	if got := m.after(t, b); len(got) != 0 {
		t.Errorf("Ben's second device after a hello listing G: %q", got)
	}
	m.live(t, b, "after the comeback")
}

// TestLateChatAddedAfterTheLeave: a chat.added that reaches the instance after the
// membership it announces has ended (the hello listed the chat, the stream ended at the
// leave's message, the leave's chat.removed is still on its way) starts nothing. It started
// the stream again from the invitation: a read from the store sent the device the messages
// it had again, up to the leave, and until then the connection followed a chat its user had
// left (a sync of it was answered).
func TestLateChatAddedAfterTheLeave(t *testing.T) {
	t.Parallel()
	m := newMemberships(t, serverConfig{})
	m.group = m.s.Group(t, m.ann, "G", false, m.cid)
	m.g.closeFor("chat.added", "chat.removed")
	m.invite(t)
	b, _ := m.s.DialHello(t, m.ben)
	b.Bind(t)
	msg := m.s.Send(t, m.ann, m.group, "before the leave")
	if f := b.NextOf("message.new", 10*time.Second); seqOf(f) != msg.Seq {
		t.Fatalf("got %s, want message %d", f.Raw, msg.Seq)
	}
	m.leave(t) // its message ends the device's stream of G
	m.g.release(t, "chat.added")
	m.g.pass()
	marker := m.s.Group(t, m.ann, "M", false, m.ben)
	var got []frame
	for {
		f := b.Next(10 * time.Second)
		if f.Type == "chat.added" && chatOf(f) == marker {
			break
		}
		got = append(got, f)
	}
	got = append(got, b.RoundTrip("sync", "s", map[string]any{"cursors": map[string]int64{itoa64(m.group): msg.Seq}})...)
	for _, f := range got {
		if chatOf(f) == m.group && f.Type != "error" {
			t.Errorf("Ben's device after his leave: %s", f.Raw)
		}
	}
	if code, _ := errorOf(got, "s"); code != "not_found" {
		t.Errorf("a sync of G after the leave: error %q, want not_found", code)
	}
	m.g.open(t)
	if f := b.NextOf("chat.removed", 10*time.Second); chatOf(f) != m.group {
		t.Errorf("got %s, want chat.removed of G", f.Raw)
	}
}

// afterAddMember is a store that runs do once, right after the next AddMember commits.
type afterAddMember struct {
	chat.Store
	do func()
}

func (s *afterAddMember) AddMember(ctx context.Context, chatID, userID, actorID int64, event string, now time.Time) (chat.Message, error) {
	m, err := s.Store.AddMember(ctx, chatID, userID, actorID, event, now)
	if do := s.do; do != nil && err == nil {
		s.do = nil
		do()
	}
	return m, err
}

// TestNoChatRemovedForTheJoinTheHelloListed: a chat.added whose chat has moved on since the
// join (it carries the chat as read after the join's commit) is still the membership a hello
// read after the join listed: it is not sent, and nothing says the user left. Ben's device
// connects right after his invitation commits, and Ann sends before the invitation's chat is
// read for its chat.added.
func TestNoChatRemovedForTheJoinTheHelloListed(t *testing.T) {
	t.Parallel()
	wrapped := &afterAddMember{}
	m := newMemberships(t, serverConfig{WrapStore: func(st chat.Store) chat.Store { wrapped.Store = st; return wrapped }})
	m.group = m.s.Group(t, m.ann, "G", false, m.cid)
	var b *wsConn
	wrapped.do = func() {
		var hello frame
		b, hello = m.s.DialHello(t, m.ben)
		if !strings.Contains(string(hello.Data), `"id":`+itoa64(m.group)+`,`) {
			t.Errorf("hello without G: %s", hello.Data)
		}
		m.s.Send(t, m.ann, m.group, "between the join and its chat.added")
	}
	m.invite(t)
	b.Bind(t)
	if got := m.after(t, b); len(got) != 0 {
		t.Errorf("Ben's device after a hello listing G: %q", got)
	}
}

// heldSubscribeBroker holds the hub's subscription of one topic once it is live: payloads
// published to it are delivered meanwhile, while the hub still waits for the subscription
// (follow's await). Each payload delivered to that topic is reported on delivered once the
// hub's Deliver has returned.
type heldSubscribeBroker struct {
	broker.Broker
	topic      atomic.Value  // string
	subscribed chan struct{} // closed when the topic's subscription is live and held
	release    chan struct{} // closed by the test to let Subscribe return
	delivered  chan string
}

func (b *heldSubscribeBroker) Start(ctx context.Context, h broker.Handler) error {
	return b.Broker.Start(ctx, &reportingHandler{Handler: h, b: b})
}

func (b *heldSubscribeBroker) Subscribe(ctx context.Context, topics ...string) error {
	err := b.Broker.Subscribe(ctx, topics...)
	for _, t := range topics {
		if t == b.topic.Load() {
			close(b.subscribed)
			<-b.release
		}
	}
	return err
}

type reportingHandler struct {
	broker.Handler
	b *heldSubscribeBroker
}

func (h *reportingHandler) Deliver(topic string, payload []byte) {
	h.Handler.Deliver(topic, payload)
	if topic == h.b.topic.Load() {
		h.b.delivered <- string(payload)
	}
}

// TestNothingOfAChatBeforeItsChatAdded: a device told it is not in a chat (no hello listed it,
// or chat.removed) hears of a membership first by chat.added: a message of the chat that
// reaches the instance while the join's subscription is being made waits, and comes after
// chat.added (read from the store, as chat.added's last_seq says). It came before: a
// message.new and a chat.read_all of a chat the client did not have, then chat.added with
// an older last_seq and read-all mark (an outside check saw it with invitations racing leaves
// across two instances: the read-all mark went back, and a client that drops frames of chats
// it does not have lost the message).
func TestNothingOfAChatBeforeItsChatAdded(t *testing.T) {
	t.Parallel()
	b := &heldSubscribeBroker{Broker: broker.NewMemory(), subscribed: make(chan struct{}),
		release: make(chan struct{}), delivered: make(chan string, 16)}
	s := startServer(t, serverConfig{Broker: b})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	g := s.Group(t, ann, "G", false)
	b.topic.Store("chat." + itoa64(g))
	dev, _ := s.DialHello(t, ben)
	dev.Bind(t)
	invited := make(chan error, 1)
	go func() {
		_, err := s.Svc.Invite(context.Background(), ann.P(), g, ben.ID)
		invited <- err
	}()
	select {
	case <-b.subscribed:
	case <-time.After(10 * time.Second):
		close(b.release)
		t.Fatal("the hub did not subscribe to G for Ben's invitation")
	}
	msg := s.Send(t, ann, g, "while the subscription is made")
	for p := range b.delivered {
		if strings.Contains(p, `"t":"message.new"`) {
			break
		}
	}
	close(b.release)
	var got []string
	for len(got) < 2 {
		f := dev.Next(10 * time.Second)
		if chatOf(f) == g && (f.Type == "chat.added" || f.Type == "message.new") {
			got = append(got, f.Type)
		}
		if f.Type == "message.new" && seqOf(f) != msg.Seq {
			t.Errorf("message.new %s, want seq %d", f.Raw, msg.Seq)
		}
	}
	if got[0] != "chat.added" || got[1] != "message.new" {
		t.Errorf("Ben's device: %q, want chat.added, then the message", got)
	}
	// The invitation ends before the test does (its error told here, not after the test).
	if err := <-invited; err != nil {
		t.Error(err)
	}
}

// releaseLast publishes the last event held of one type; the gate stays as it is.
func (g *gateBroker) releaseLast(t *testing.T, typ string) {
	t.Helper()
	g.mu.Lock()
	var out [2]string
	for i := len(g.held) - 1; i >= 0; i-- {
		if strings.Contains(g.held[i][1], `"t":"`+typ+`"`) {
			out = g.held[i]
			g.held = append(g.held[:i:i], g.held[i+1:]...)
			break
		}
	}
	g.mu.Unlock()
	if out[0] == "" {
		t.Fatalf("no %s held", typ)
	}
	if err := g.Broker.Publish(context.Background(), out[0], []byte(out[1])); err != nil {
		t.Fatal(err)
	}
}

// afterChatFor is a store that runs do once, right after the next read of user's view of a
// chat (ChatFor) once armed.
type afterChatFor struct {
	afterAddMember
	user  int64
	armed atomic.Bool
	do    func()
}

func (s *afterChatFor) ChatFor(ctx context.Context, viewerID, chatID int64) (chat.ChatSummary, error) {
	c, err := s.afterAddMember.ChatFor(ctx, viewerID, chatID)
	if viewerID == s.user && s.armed.CompareAndSwap(true, false) {
		s.do()
	}
	return c, err
}

// TestNoChatAddedOfAMembershipEndedBeforeItsRead: the chat.added of an invitation is not
// sent when the chat read for it shows the invitee out already (left right after the
// invitation, and back before the chat's members were read): the chat was announced as the
// invitee's, though read as an outsider sees a public group (no last seq, no last message),
// and a device that heard it before the leave's chat.removed and the comeback's chat.added
// got chat.added, chat.removed, chat.added; its stream of the chat began at seq 0, so a
// catch-up from the store that ran before the chat.removed sent it the chat's history up to
// the leave as message.new.
func TestNoChatAddedOfAMembershipEndedBeforeItsRead(t *testing.T) {
	t.Parallel()
	wrapped := &afterChatFor{}
	m := newMemberships(t, serverConfig{WrapStore: func(st chat.Store) chat.Store { wrapped.Store = st; return wrapped }})
	m.group = m.s.Group(t, m.ann, "G", true, m.cid)
	m.s.Send(t, m.ann, m.group, "before Ben")
	b, _ := m.s.DialHello(t, m.ben)
	b.Bind(t)
	wrapped.user = m.ben.ID
	wrapped.afterAddMember.do = func() { // the invitation is committed
		m.leave(t)
		wrapped.armed.Store(true) // the invitation's read of the chat for its chat.added
	}
	wrapped.do = func() {
		if _, err := m.s.Svc.Join(t.Context(), m.ben.P(), m.group); err != nil {
			t.Error(err)
		}
	}
	m.g.closeFor("chat.added", "chat.removed")
	m.invite(t)
	m.g.releaseLast(t, "chat.added") // the invitation's, when it has one
	m.g.release(t, "chat.removed")
	got := m.after(t, b)
	if len(got) != 1 || !strings.HasPrefix(got[0], "chat.added ") || strings.Contains(got[0], `"last_seq":0,`) {
		t.Fatalf("Ben's device: %q, want the comeback's chat.added", got)
	}
	m.live(t, b, "after the comeback")
}

// TestChatAddedAfterAHelloSkipsNoMessage: a chat.added that reaches a connection whose hello
// listed its chat (not sent: the client knows the membership) does not move the connection's
// stream of the chat up to the chat as read for the chat.added. Ben's device connects right
// after his invitation commits, Ann sends before the invitation's chat is read for its
// chat.added, and her message reaches the instance after the chat.added (published by
// another instance): it was taken for one the device had, and never sent.
func TestChatAddedAfterAHelloSkipsNoMessage(t *testing.T) {
	t.Parallel()
	wrapped := &afterAddMember{}
	m := newMemberships(t, serverConfig{WrapStore: func(st chat.Store) chat.Store { wrapped.Store = st; return wrapped }})
	m.group = m.s.Group(t, m.ann, "G", false, m.cid)
	var b *wsConn
	var between chat.Message
	wrapped.do = func() {
		var hello frame
		b, hello = m.s.DialHello(t, m.ben)
		if !strings.Contains(string(hello.Data), `"id":`+itoa64(m.group)+`,`) {
			t.Errorf("hello without G: %s", hello.Data)
		}
		between = m.s.Send(t, m.ann, m.group, "between the join and its chat.added")
	}
	m.g.closeFor("chat.added", "message.new")
	m.invite(t)
	b.Bind(t)
	m.g.release(t, "chat.added")
	m.g.pass()
	marker := m.s.Group(t, m.ann, "M", false, m.ben)
	var got []string
	for f := b.Next(10 * time.Second); f.Type != "chat.added" || chatOf(f) != marker; f = b.Next(10 * time.Second) {
		if chatOf(f) == m.group {
			got = append(got, f.Type+" "+itoa64(seqOf(f)))
		}
	}
	m.g.open(t)
	after := m.s.Send(t, m.ann, m.group, "after")
	for f := b.Next(10 * time.Second); ; f = b.Next(10 * time.Second) {
		if chatOf(f) == m.group {
			got = append(got, f.Type+" "+itoa64(seqOf(f)))
		}
		if f.Type == "message.new" && seqOf(f) == after.Seq {
			break
		}
	}
	want := []string{"message.new " + itoa64(between.Seq), "message.new " + itoa64(after.Seq)}
	if !slices.Equal(got, want) {
		t.Errorf("Ben's device after a hello listing G: %q, want %q", got, want)
	}
}

// helloFindsTheLeave is the store of TestLateChatAddedOfALeaveAHelloFound: the invitation
// of user commits (AddMember), one device connects, then another, whose hello reads the chat
// list once (then Ann sends into the chat), and again only after user left the chat, which
// they do once the invitation has read the chat and its members for its chat.added.
type helloFindsTheLeave struct {
	chat.Store
	user    atomic.Int64
	reads   atomic.Int32
	armed   atomic.Bool
	invited func()        // after the invitation commits
	read    func()        // after the second device's first read of the chat list
	members func()        // after the invitation read the chat's members
	left    chan struct{} // closed when user left
}

func (s *helloFindsTheLeave) AddMember(ctx context.Context, chatID, userID, actorID int64, event string, now time.Time) (chat.Message, error) {
	m, err := s.Store.AddMember(ctx, chatID, userID, actorID, event, now)
	if err == nil && userID == s.user.Load() {
		s.invited()
	}
	return m, err
}

func (s *helloFindsTheLeave) ChatsOf(ctx context.Context, userID int64) ([]chat.ChatSummary, error) {
	if !s.armed.Load() || userID != s.user.Load() {
		return s.Store.ChatsOf(ctx, userID)
	}
	n := s.reads.Add(1)
	if n == 2 {
		<-s.left
	}
	list, err := s.Store.ChatsOf(ctx, userID)
	if n == 1 {
		s.read()
	}
	return list, err
}

func (s *helloFindsTheLeave) Members(ctx context.Context, chatID int64) ([]chat.Member, error) {
	ms, err := s.Store.Members(ctx, chatID)
	if s.read == nil && s.members != nil { // the first read is done
		do := s.members
		s.members = nil
		do()
	}
	return ms, err
}

// TestLateChatAddedOfALeaveAHelloFound: a chat.added that reaches the instance after a hello
// found the leave that ended its membership (the hello's first read of the chat list had the
// chat, its second not) starts nothing, though the chat was read for it after that first
// read. The hello told Ben's first device of the leave (chat.removed), then the invitation's
// chat.added came and both devices followed the chat he had left again, the second one though
// its hello did not list it.
func TestLateChatAddedOfALeaveAHelloFound(t *testing.T) {
	t.Parallel()
	st := &helloFindsTheLeave{left: make(chan struct{})}
	m := newMemberships(t, serverConfig{WrapStore: func(s chat.Store) chat.Store { st.Store = s; return st }})
	m.group = m.s.Group(t, m.ann, "G", false, m.cid)
	var a, b *wsConn
	hellos := make(chan frame, 1)
	round := make(chan struct{})
	st.invited = func() {
		var hello frame
		a, hello = m.s.DialHello(t, m.ben)
		if !strings.Contains(string(hello.Data), `"id":`+itoa64(m.group)+`,`) {
			t.Errorf("the first device's hello without G: %s", hello.Data)
		}
		st.armed.Store(true)
		go func() {
			var hello frame
			b, hello = m.s.DialHello(t, m.ben)
			hellos <- hello
		}()
		<-round
	}
	st.read = func() {
		m.s.Send(t, m.ann, m.group, "after the first read") // the invitation reads the chat after it
		st.read = nil
		close(round)
	}
	st.members = func() {
		m.leave(t)
		close(st.left)
	}
	st.user.Store(m.ben.ID)
	m.g.closeFor("chat.added", "chat.removed")
	m.invite(t)
	hello := <-hellos
	a.Bind(t)
	b.Bind(t)
	if strings.Contains(string(hello.Data), `"id":`+itoa64(m.group)+`,`) {
		t.Fatalf("the second device's hello with G: %s", hello.Data)
	}
	m.g.release(t, "chat.added")
	m.g.pass()
	want := `chat.removed {"chat_id":` + itoa64(m.group) + `}`
	if got := m.until(t, a); len(got) != 1 || got[0] != want {
		t.Errorf("Ben's first device: %q, want %q", got, want)
	}
	if got := m.until(t, b); len(got) != 0 {
		t.Errorf("Ben's second device, its hello without G: %q", got)
	}
}

// aroundChatsOf is a store that runs before and after, once each, around the nth reading of
// one user's chat list (user 0: nobody).
type aroundChatsOf struct {
	chat.Store
	user          atomic.Int64
	nth           int32
	calls         atomic.Int32
	before, after func()
}

func (s *aroundChatsOf) ChatsOf(ctx context.Context, userID int64) ([]chat.ChatSummary, error) {
	if userID != s.user.Load() {
		return s.Store.ChatsOf(ctx, userID)
	}
	n := s.calls.Add(1)
	if n == s.nth {
		s.before()
	}
	list, err := s.Store.ChatsOf(ctx, userID)
	if n == s.nth {
		s.after()
	}
	return list, err
}

// TestComebackDuringAHelloThatFoundTheLeave: a device whose hello finds a leave (the chat in
// its first read of the chat list, not in the second) hears of the user's comeback, when the
// comeback's chat.added reached the instance before the hello was done with the second read.
// The hello stopped the device's stream of the chat, so the comeback's chat.added, which the
// instance had followed already, never reached it: the device did not show a chat its user
// was in, for good (the store and the instance agreed, the audit saw nothing).
func TestComebackDuringAHelloThatFoundTheLeave(t *testing.T) {
	t.Parallel()
	st := &aroundChatsOf{nth: 2}
	m := newMemberships(t, serverConfig{WrapStore: func(s chat.Store) chat.Store { st.Store = s; return st }})
	m.group = m.s.Group(t, m.ann, "G", false, m.ben, m.cid)
	a, _ := m.s.DialHello(t, m.ben)
	a.Bind(t)
	st.before = func() { // the second device's second read
		m.leave(t)
		if f := a.NextOf("chat.removed", 10*time.Second); chatOf(f) != m.group {
			t.Errorf("the first device: %s, want chat.removed of G", f.Raw)
		}
	}
	st.after = func() { // back before the read is attached
		m.invite(t)
		if f := a.NextOf("chat.added", 10*time.Second); chatOf(f) != m.group {
			t.Errorf("the first device: %s, want chat.added of G", f.Raw)
		}
	}
	st.user.Store(m.ben.ID)
	b, hello := m.s.DialHello(t, m.ben)
	b.Bind(t)
	if n := st.calls.Load(); n != 2 {
		t.Fatalf("%d reads of Ben's chats, want 2", n)
	}
	if strings.Contains(string(hello.Data), `"id":`+itoa64(m.group)+`,`) {
		t.Fatalf("the second device's hello with G: %s", hello.Data)
	}
	if got := m.until(t, b); len(got) != 1 || !strings.HasPrefix(got[0], "chat.added ") {
		t.Fatalf("the second device: %q, want chat.added of G", got)
	}
	m.live(t, b, "the second device after the comeback")
}

// userByIDHold runs hold in the first read of a user's account after it is armed (an
// invitation's, between its commit and the read of the chat its chat.added carries).
type userByIDHold struct {
	aroundChatsOf
	armed atomic.Int64 // the user whose next account read holds
	hold  func()
}

func (s *userByIDHold) UserByID(ctx context.Context, id int64) (chat.User, error) {
	if id != 0 && s.armed.CompareAndSwap(id, 0) {
		s.hold()
	}
	return s.aroundChatsOf.Store.UserByID(ctx, id)
}

// TestChatAddedReadAfterTheHelloList: a device whose hello lists a chat its user was just
// invited to gets every message after the hello's last_seq, when the invitation's chat.added,
// its chat read after a message that the hello's list did not count, reaches the instance
// while the hello is built. The chat.added is not sent (the hello lists that membership), so
// the client knows the chat up to the hello's last_seq; the stream took the chat.added's
// last_seq for its position, and the message between was never sent.
func TestChatAddedReadAfterTheHelloList(t *testing.T) {
	t.Parallel()
	st := &userByIDHold{aroundChatsOf: aroundChatsOf{nth: 2}}
	s := startServer(t, serverConfig{WrapStore: func(s chat.Store) chat.Store { st.Store = s; return st }})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	id := s.Group(t, ann, "G", false) // seq 1

	committed, goOn, invited := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	st.hold = func() { close(committed); <-goOn }
	st.armed.Store(ben.ID)
	go func() {
		_, err := s.Svc.Invite(context.Background(), ann.P(), id, ben.ID) // seq 2
		invited <- err
	}()
	<-committed
	var between chat.Message
	st.after = func() { // the hello's second (last) read of Ben's chats: G at seq 2
		between = s.Send(t, ann, id, "between") // seq 3, held for the hello
		close(goOn)                             // the chat.added, G read at seq 3
		if err := <-invited; err != nil {
			t.Error(err)
			return
		}
		// Its follow has reached Ben's connection before the hello is done.
		for deadline := time.Now().Add(10 * time.Second); s.Hub.EarlyFrames(ben.ID) == 0; {
			if time.Now().After(deadline) {
				t.Error("the chat.added was not followed")
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	st.before = func() {}
	st.user.Store(ben.ID)
	c, hello := s.DialHello(t, ben)
	c.Bind(t)
	if t.Failed() {
		t.FailNow()
	}
	if !strings.Contains(string(hello.Data), `"id":`+itoa64(id)+`,`) || !strings.Contains(string(hello.Data), `"last_seq":2,`) {
		t.Fatalf("hello: %s, want G at last_seq 2", hello.Data)
	}
	after := s.Send(t, ann, id, "after")
	for _, want := range []int64{between.Seq, after.Seq} {
		if f := c.NextOf("message.new", 10*time.Second); chatOf(f) != id || seqOf(f) != want {
			t.Fatalf("%s, want message %d of G", f.Raw, want)
		}
	}
}

// TestComebackDuringAHelloIsToldBackToBack: a device whose hello lists a chat its user then
// leaves and comes back to (invited again) while the hello is built gets the leave's
// chat.removed right before the comeback's chat.added, whatever else came for the hello
// between them (here the chat.added of another group). They came in the order they reached
// the connection, so the other group's chat.added separated them, and a client that holds a
// chat.removed without reason until the next frame (PROTOCOL.md; the web client) took it for
// a leave: the open chat closed, and the chat came back in the list a moment later.
func TestComebackDuringAHelloIsToldBackToBack(t *testing.T) {
	t.Parallel()
	m := newMemberships(t, serverConfig{})
	m.group = m.s.Group(t, m.ann, "G", false, m.ben, m.cid)
	var other int64
	m.s.Hub.BeforeHelloDone(func(userID int64) {
		if userID != m.ben.ID || other != 0 {
			return
		}
		m.leave(t)
		other = m.s.Group(t, m.ann, "O", false, m.ben)
		m.invite(t)
		for deadline := time.Now().Add(10 * time.Second); m.s.Hub.EarlyFrames(m.ben.ID) < 3; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("%d frames held for the hello, want 3", m.s.Hub.EarlyFrames(m.ben.ID))
				return
			}
		}
	})
	b, hello := m.s.DialHello(t, m.ben)
	b.Bind(t)
	if t.Failed() {
		t.FailNow()
	}
	if !strings.Contains(string(hello.Data), `"id":`+itoa64(m.group)+`,`) {
		t.Fatalf("hello without G: %s", hello.Data)
	}
	var got []frame
	for len(ofType(got, "chat.added")) < 2 {
		got = append(got, b.Next(10*time.Second))
	}
	i := slices.IndexFunc(got, func(f frame) bool { return f.Type == "chat.removed" })
	if i < 0 || i+1 == len(got) || chatOf(got[i]) != m.group || got[i+1].Type != "chat.added" || chatOf(got[i+1]) != m.group {
		t.Fatalf("Ben's device after the hello: %s; want chat.removed of G right before its chat.added", raws(got))
	}
	if o := ofType(got, "chat.added"); chatOf(o[0]) != other && chatOf(o[1]) != other {
		t.Fatalf("Ben's device after the hello: %s; want chat.added of O too", raws(got))
	}
	m.live(t, b, "after the comeback")
}
