package hub_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/hub"
	"github.com/wschat/chat/internal/testlog"
)

// sink is a broker that, once on is set, drops every event of the topics that begin with
// prefix ("chat." when empty: the chats' events): what an instance that stopped between its
// commits and its publishes leaves behind.
type sink struct {
	broker.Broker
	on     atomic.Bool
	prefix string
}

func (b *sink) Publish(ctx context.Context, topic string, payload []byte) error {
	if b.on.Load() && strings.HasPrefix(topic, cmp.Or(b.prefix, "chat.")) {
		return nil
	}
	return b.Broker.Publish(ctx, topic, payload)
}

// healed returns how many heals the audit has counted since before, once they reach want or
// after 10 s. The audit counts what it mended after sending it: its frames can reach the test
// first (they did, on a loaded machine).
func healed(s *testServer, before, want int64) int64 {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := s.Hub.Stats().AuditHeals.Load() - before
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAuditHealsALostTail: a chat's newest message, edit and reaction whose events were lost,
// with nothing of the chat after them to show the gap, still reach a connected device: the
// audit finds its stream behind the chat's head and catches it up from the store. Before it,
// they reached the device only when it reconnected. While nothing is lost the audit reads
// nothing for any connection.
func TestAuditHealsALostTail(t *testing.T) {
	t.Parallel()
	const every = 300 * time.Millisecond
	b := &sink{Broker: broker.NewMemory()}
	s := startServer(t, serverConfig{Broker: b, Hub: hub.Options{AuditEvery: every}})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	id := s.Group(t, ann, "G", false, ben)
	c, hello := s.DialHello(t, ben)
	d := newDevice("Ben's device", c, id, hello)
	ctx := t.Context()

	// Delivered as usual: the audits that follow find nothing behind.
	first := s.Send(t, ann, id, "first")
	if _, err := s.Svc.React(ctx, ann.P(), id, first.Seq, "👍", true); err != nil {
		t.Fatal(err)
	}
	_, seq, rev := storeView(t, s, ann, id)
	d.catchUp(t, seq, rev)
	// (A busy machine may deliver an event later than an audit looks, which then reads the
	// store for it: harmless, and not what is checked here. Once the device has everything,
	// no audit may read anything.)
	before := s.Hub.Stats().AuditHeals.Load()
	time.Sleep(4 * every)
	if n := s.Hub.Stats().AuditHeals.Load() - before; n != 0 {
		t.Fatalf("the audit caught up %d streams while nothing was lost", n)
	}

	// Lost: a message, an edit and a reaction, the chat's last events.
	b.on.Store(true)
	second := s.Send(t, ann, id, "second")
	if _, err := s.Svc.EditMessage(ctx, ann.P(), id, first.Seq, "first, edited"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Svc.React(ctx, ben.P(), id, second.Seq, "🎉", true); err != nil {
		t.Fatal(err)
	}
	want, seq, rev := storeView(t, s, ann, id)
	d.catchUp(t, seq, rev)
	d.checkView(t, want)
	if n := healed(s, before, 1); n < 1 {
		t.Errorf("the audit caught up %d streams, want the device's", n)
	}
}

// TestAuditMendsLostMemberships: a chat.added and a chat.removed that the broker lost (a user
// added to one group and removed from another while the news went nowhere) still reach the
// user's connected device: the audit reads which chats the user is in, and after two reads that
// agree it does what the events would have done, the chat.removed with its reason. A message
// of the new group then reaches the device live. While nothing is lost the audit mends nothing.
func TestAuditMendsLostMemberships(t *testing.T) {
	t.Parallel()
	const every = 200 * time.Millisecond
	b := &sink{Broker: broker.NewMemory(), prefix: "user."}
	s := startServer(t, serverConfig{Broker: b, Hub: hub.Options{AuditEvery: every}})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	old := s.Group(t, ann, "Old", false, ben)
	c, _ := s.DialHello(t, ben)
	ctx := t.Context()

	// Delivered as usual: nothing to mend (a read that came before the chat.added is
	// confirmed by none after it).
	first := s.Group(t, ann, "First", false, ben)
	if got := chatOf(c.NextOf("chat.added", 10*time.Second)); got != first {
		t.Fatalf("chat.added of chat %d, want %d", got, first)
	}
	before := s.Hub.Stats().AuditHeals.Load()
	time.Sleep(2 * 6 * every) // two reads of the users' chats at least
	if n := s.Hub.Stats().AuditHeals.Load() - before; n != 0 {
		t.Fatalf("the audit mended %d while nothing was lost", n)
	}

	// Lost: Ben's chat.added of a new group and his chat.removed of the old one.
	b.on.Store(true)
	added := s.Group(t, ann, "Added", false, ben)
	if err := s.Svc.RemoveMember(ctx, ann.P(), old, ben.ID); err != nil {
		t.Fatal(err)
	}
	var gotAdded, gotRemoved bool
	deadline := time.Now().Add(20 * time.Second)
	for !gotAdded || !gotRemoved {
		f := c.Next(time.Until(deadline))
		switch {
		case f.Type == "chat.added" && chatOf(f) == added:
			gotAdded = true
		case f.Type == "chat.removed" && chatOf(f) == old:
			// The reason the lost one had, read from the store: without it, a client takes the
			// removal for a leave of Ben's own.
			if want := `{"chat_id":` + strconv.FormatInt(old, 10) + `,"reason":"removed"}`; string(f.Data) != want {
				t.Errorf("chat.removed %s, want %s", f.Data, want)
			}
			gotRemoved = true
		case f.Type == "message.new" && chatOf(f) == old:
			t.Fatalf("a message of the group Ben was removed from: %s", f.Raw)
		}
	}
	if n := healed(s, before, 2); n != 2 {
		t.Errorf("the audit mended %d, want 2", n)
	}

	// The new group is followed: its next message comes live.
	b.on.Store(false)
	m := s.Send(t, ann, added, "welcome")
	for {
		f := c.NextOf("message.new", 10*time.Second)
		if chatOf(f) == added && strings.Contains(string(f.Data), `"seq":`+strconv.FormatInt(m.Seq, 10)) {
			break
		}
	}
}

// TestAuditHealsALostReadMark: a chat.read_all that the broker lost (the last member read a
// message, and nothing of the chat came after) still reaches the sender's device, from the
// chat's read-all mark that the audit reads with its head.
func TestAuditHealsALostReadMark(t *testing.T) {
	t.Parallel()
	const every = 200 * time.Millisecond
	b := &sink{Broker: broker.NewMemory()}
	s := startServer(t, serverConfig{Broker: b, Hub: hub.Options{AuditEvery: every}})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	id := s.Group(t, ann, "G", false, ben)
	c, _ := s.DialHello(t, ann)
	m := s.Send(t, ann, id, "read me")
	c.NextOf("message.new", 10*time.Second)
	before := s.Hub.Stats().AuditHeals.Load()
	time.Sleep(4 * every)
	if n := s.Hub.Stats().AuditHeals.Load() - before; n != 0 {
		t.Fatalf("the audit mended %d while nothing was lost", n)
	}

	b.on.Store(true)
	if _, err := s.Svc.MarkRead(t.Context(), ben.P(), id, m.Seq); err != nil {
		t.Fatal(err)
	}
	f := c.NextOf("chat.read_all", 20*time.Second)
	var d struct {
		ChatID     int64 `json:"chat_id"`
		ReadAllSeq int64 `json:"read_all_seq"`
	}
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.ChatID != id || d.ReadAllSeq != m.Seq {
		t.Errorf("chat.read_all %+v, want chat %d read to %d", d, id, m.Seq)
	}
	if n := healed(s, before, 1); n != 1 {
		t.Errorf("the audit mended %d, want 1", n)
	}
	if again := ofType(c.Quiet(5*every), "chat.read_all"); len(again) != 0 {
		t.Errorf("chat.read_all again: %d frames", len(again))
	}
}

// TestAuditClosesEndedSessions: a session revoked while the broker lost its news (Redis
// restarting) still has its open socket closed with 4001, by the audit that reads which of its
// connections' sessions have ended; the user's other session keeps its socket. Before, the
// revoked device stayed connected, sending and reading, until its access token expired.
func TestAuditClosesEndedSessions(t *testing.T) {
	t.Parallel()
	const every = 100 * time.Millisecond
	b := &sink{Broker: broker.NewMemory(), prefix: "user."}
	s := startServer(t, serverConfig{Broker: b, Hub: hub.Options{AuditEvery: every}})
	ann := s.NewUser(t, "Ann")
	lost, kept := s.Login(t, ann), s.Login(t, ann)
	lc, kc := s.Dial(t, lost), s.Dial(t, kept)
	for _, c := range []*wsConn{lc, kc} {
		if got := c.UntilPong("ready"); len(errorsIn(got)) > 0 {
			t.Fatalf("before: %s", raws(got))
		}
	}
	b.on.Store(true)
	if err := s.Svc.RevokeSession(t.Context(), kept.P(), lost.SessionID); err != nil {
		t.Fatal(err)
	}
	if got := lc.CloseStatus(10 * time.Second); got != 4001 {
		t.Errorf("the revoked session's socket: close %d, want 4001", got)
	}
	if got := kc.UntilPong("still"); len(errorsIn(got)) > 0 {
		t.Errorf("the other session's socket got %s", raws(got))
	}
}

// TestAuditTellsNoLeaverOfAReadMark: the audit sends a read-all mark the broker lost only to
// streams that have every message up to the chat's head, where the mark's chat.read_all
// would have followed. Ben leaves while the news of his leave (its message, his chat.removed)
// and of Cid's read mark after it are lost: the audit sent Ben's device Cid's mark, committed
// after his leave, as its stream had every message up to the mark, and only then read the
// leave from the store.
func TestAuditTellsNoLeaverOfAReadMark(t *testing.T) {
	t.Parallel()
	g := &gateBroker{Broker: broker.NewMemory()}
	s := startServer(t, serverConfig{Broker: g, Hub: hub.Options{AuditEvery: 200 * time.Millisecond}})
	ann, ben, cid := s.NewUser(t, "Ann"), s.NewUser(t, "Ben"), s.NewUser(t, "Cid")
	id := s.Group(t, ann, "G", false, ben, cid)
	m := s.Send(t, ann, id, "2")
	if _, err := s.Svc.MarkRead(t.Context(), ben.P(), id, m.Seq); err != nil {
		t.Fatal(err)
	}
	b, _ := s.DialHello(t, ben)
	g.closeFor("message.", "chat.read_all", "chat.removed") // lost: never let go
	if err := s.Svc.Leave(t.Context(), ben.P(), id); err != nil {
		t.Fatal(err)
	}
	before := s.Hub.Stats().AuditHeals.Load()
	if _, err := s.Svc.MarkRead(t.Context(), cid.P(), id, m.Seq); err != nil { // read by everyone: 2
		t.Fatal(err)
	}
	if n := healed(s, before, 1); n < 1 {
		t.Fatal("the audit did not catch Ben's stream up")
	}
	for _, f := range b.UntilPong("after") {
		if chatOf(f) == id && f.Type != "chat.removed" { // the audit mends the lost one too
			t.Errorf("Ben's device after his leave: %s", f.Raw)
		}
	}
}

// TestAuditMendsALostLeaveAndComeback: a member who leaves a group and is invited back while
// the broker loses both news to their devices (the leave's chat.removed, the comeback's
// chat.added) gets the group back on a connected device: the audit tells the device of the
// leave and the comeback, back to back, and the group's messages reach it live again. Before,
// the device went on showing the group and got nothing of it until it reconnected: its stream
// ended at the leave's system message, and the audit found the store and the hub agreeing
// that the user is in the group.
func TestAuditMendsALostLeaveAndComeback(t *testing.T) {
	t.Parallel()
	b := &sink{Broker: broker.NewMemory(), prefix: "user."}
	// No audit of its own: a read of the users' chats between the leave and the comeback
	// would mend the leave alone (TestAuditMendsLostMemberships); the test reads after both.
	s := startServer(t, serverConfig{Broker: b, Hub: hub.Options{AuditEvery: time.Hour}})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	id := s.Group(t, ann, "G", false, ben)
	c, _ := s.DialHello(t, ben)
	c.Bind(t)
	ctx := t.Context()

	b.on.Store(true)
	if err := s.Svc.Leave(ctx, ben.P(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Svc.Invite(ctx, ann.P(), id, ben.ID); err != nil {
		t.Fatal(err)
	}
	b.on.Store(false)
	// The leave's system message (the chat's news, not lost) ends the device's stream.
	for deadline := time.Now().Add(10 * time.Second); s.Hub.SentUpTo(ben.ID, id) != -1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the leave did not end the device's stream of the group")
		}
	}
	before := s.Hub.Stats().AuditHeals.Load()
	s.Hub.AuditMembers()

	var got []frame
	for f := c.NextOf("chat.removed", 10*time.Second); ; f = c.Next(10 * time.Second) {
		got = append(got, f)
		if f.Type == "chat.added" {
			break
		}
	}
	if len(got) != 2 || chatOf(got[0]) != id || chatOf(got[1]) != id || strings.Contains(string(got[0].Data), "reason") {
		t.Fatalf("want chat.removed without reason, then chat.added, of chat %d: %s", id, raws(got))
	}
	if n := healed(s, before, 1); n != 1 {
		t.Errorf("the audit mended %d, want 1", n)
	}
	m := s.Send(t, ann, id, "welcome back")
	for {
		f := c.NextOf("message.new", 10*time.Second)
		if chatOf(f) == id && strings.Contains(string(f.Data), `"seq":`+strconv.FormatInt(m.Seq, 10)) {
			break
		}
	}
}

// failingReads is a store whose audit reads (the chats' heads, the users' chats, the sessions)
// fail while down is set, as with the database down, counting each failure. While up they
// ignore the audit's deadline (AuditEvery, which the tests make 20 ms): on a busy machine a
// real read outlasted it, and its failure, logged and then read again, was one outage more
// than the test made.
type failingReads struct {
	chat.Store
	down                   atomic.Bool
	heads, chats, sessions atomic.Int32
}

var errDatabaseDown = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

func (s *failingReads) ChatHeads(ctx context.Context, ids []int64) (map[int64]chat.ChatHead, error) {
	if s.down.Load() {
		s.heads.Add(1)
		return nil, errDatabaseDown
	}
	return s.Store.ChatHeads(context.WithoutCancel(ctx), ids)
}

func (s *failingReads) ChatIDsOfUsers(ctx context.Context, ids []int64) (map[int64][]int64, error) {
	if s.down.Load() {
		s.chats.Add(1)
		return nil, errDatabaseDown
	}
	return s.Store.ChatIDsOfUsers(context.WithoutCancel(ctx), ids)
}

func (s *failingReads) EndedSessions(ctx context.Context, ids []int64, now time.Time) ([]int64, error) {
	if s.down.Load() {
		s.sessions.Add(1)
		return nil, errDatabaseDown
	}
	return s.Store.EndedSessions(context.WithoutCancel(ctx), ids, now)
}

// TestAuditLogsAnOutageOnce: with the database down, each of the audit's reads fails at every
// audit; each is logged once when it starts failing (then once a minute), not once an audit,
// and once when it reads again, with how many audits failed.
func TestAuditLogsAnOutageOnce(t *testing.T) {
	t.Parallel()
	var log testlog.Buffer
	st := &failingReads{}
	s := startServer(t, serverConfig{
		WrapStore: func(cs chat.Store) chat.Store { st.Store = cs; return st },
		Hub:       hub.Options{AuditEvery: 20 * time.Millisecond},
		Log:       &log, LogLevel: slog.LevelDebug, // (LevelInfo is 0: the default, warn)
	})
	ann := s.NewUser(t, "Ann")
	s.Group(t, ann, "G", false)
	s.DialHello(t, ann) // a connection, whose chats, user and session the audit reads

	st.down.Store(true)
	// The users' chats and the sessions are read every sixth audit: three failures of each.
	deadline := time.Now().Add(time.Minute)
	for st.heads.Load() < 18 || st.chats.Load() < 3 || st.sessions.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the audit read %d heads, %d chat lists, %d sessions in a minute", st.heads.Load(), st.chats.Load(), st.sessions.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	reads := []string{"read the chats' heads", "read the users' chats", "read the connections' sessions"}
	for _, what := range reads {
		if n := strings.Count(log.String(), fmt.Sprintf(`level=WARN msg="audit: %s"`, what)); n != 1 {
			t.Errorf("%q failed at several audits and was logged %d times, want once:\n%s", what, n, log.String())
		}
	}

	st.down.Store(false)
	for _, what := range reads {
		again := fmt.Sprintf(`msg="audit: %s again"`, what)
		for !strings.Contains(log.String(), again) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s in the log:\n%s", again, log.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	out := log.String()
	if !regexp.MustCompile(`msg="audit: read the chats' heads again" failed_audits=(1[89]|[2-9][0-9]|[0-9]{3,})`).MatchString(out) {
		t.Errorf("the line of the heads read again does not say that 18 or more audits failed:\n%s", out)
	}
}
