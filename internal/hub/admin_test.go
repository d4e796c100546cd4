package hub_test

// Running a group and accounts, live (issue 14): a removed member's sockets stop at the
// removal as a leaver's do, whatever the interleaving; a deleted group ends every member's
// stream at once; renames, roles and profile changes reach every device once.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wschat/chat/internal/broker"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/hub"
	"github.com/wschat/chat/internal/testserver"
)

func strp(s string) *string { return &s }

// chatTraffic makes everything a chat can carry after a change: messages, read marks, typing,
// a rename and a role change (by its owner, who must keep the rights to them).
func chatTraffic(t *testing.T, s *testServer, owner, peer *testUser, chatID int64, tag string) {
	t.Helper()
	ctx := context.Background()
	for i := range 2 {
		m, _, err := s.Svc.Send(ctx, owner.P(), chat.SendInput{ChatID: chatID, Body: "after", ClientID: fmt.Sprintf("%s-%d", tag, i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Svc.MarkRead(ctx, peer.P(), chatID, m.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Svc.Typing(ctx, owner.P(), chatID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Svc.UpdateChat(ctx, owner.P(), chatID, chat.ChatPatch{Title: strp("Renamed " + tag)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Svc.SetRole(ctx, owner.P(), chatID, peer.ID, chat.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Svc.SetRole(ctx, owner.P(), chatID, peer.ID, chat.RoleMember); err != nil {
		t.Fatal(err)
	}
}

// TestRemovalEndsLiveDelivery: the removed member's devices get chat.removed (reason
// "removed") right after the removal, and nothing more of the group; the others see the
// removal's message, then member.left.
func TestRemovalEndsLiveDelivery(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	owner, admin, peer, gone := s.NewUser(t, "Owner"), s.NewUser(t, "Admin"), s.NewUser(t, "Peer"), s.NewUser(t, "Gone")
	id := s.Group(t, owner, "Team", false, admin, peer, gone)
	if _, err := s.Svc.SetRole(t.Context(), owner.P(), id, admin.ID, chat.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	pc := s.Dial(t, peer)
	gone2 := s.Login(t, gone)
	devices := []*wsConn{s.Dial(t, gone), s.Dial(t, gone2)}
	pc.UntilPong("settled")

	if err := s.Svc.RemoveMember(t.Context(), admin.P(), id, gone.ID); err != nil {
		t.Fatal(err)
	}
	// The removal's events come from the service, not from the peer's frames, so a ping is no
	// barrier for them: read until member.left (or fail after 30 s).
	var got []frame
	for !slices.ContainsFunc(got, func(f frame) bool { return f.Type == "member.left" }) {
		got = append(got, pc.Next(30*time.Second))
	}
	i := slices.IndexFunc(got, func(f frame) bool {
		var d chat.MessageData
		json.Unmarshal(f.Data, &d)
		return f.Type == "message.new" && d.Message.Event != nil && d.Message.Event.Type == chat.SysMemberRemoved && d.Message.Event.UserID == gone.ID
	})
	j := slices.IndexFunc(got, func(f frame) bool { return f.Type == "member.left" })
	if i < 0 || j < i {
		t.Fatalf("the peer got %s; want the member_removed message, then member.left", raws(got))
	}
	chatTraffic(t, s, owner, peer, id, "kick")
	pc.UntilPong("after-traffic")
	for n, c := range devices {
		v := &chatView{member: true}
		frames := append(c.Quiet(100*time.Millisecond), c.UntilPong("end")...)
		removed := ofType(frames, "chat.removed")
		if len(removed) != 1 || !json.Valid(removed[0].Data) {
			t.Fatalf("device %d: got %s; want one chat.removed", n, raws(frames))
		}
		var d chat.ChatRemovedData
		json.Unmarshal(removed[0].Data, &d)
		if d.ChatID != id || d.Reason != "removed" {
			t.Errorf("device %d: chat.removed %s, want chat %d, reason removed", n, removed[0].Raw, id)
		}
		for _, f := range frames {
			v.see(id, f)
		}
		if len(v.leaks) > 0 {
			t.Errorf("device %d: after the removal it got %v", n, v.leaks)
		}
		// A sync of the group finds it is not theirs any more.
		sync := c.RoundTrip("sync", "sync-gone", map[string]any{"cursors": map[string]int64{fmt.Sprint(id): 0}})
		if code, _ := errorOf(sync, "sync-gone"); code != chat.CodeNotFound || len(ofType(sync, "message.new")) != 0 {
			t.Errorf("device %d: sync of the group after the removal: %s", n, raws(sync))
		}
	}
}

// kickRace runs rounds of handshakes by a member's devices while an admin removes them, on
// the member's server (open), while the group's traffic comes from peerSrv; no socket may get
// anything of the group after the removal.
func kickRace(t *testing.T, memberSrv, peerSrv *testServer, rounds int) {
	owner, peer := peerSrv.NewUser(t, "Owner"), peerSrv.NewUser(t, "Peer")
	victim := memberSrv.NewUser(t, "Victim")
	id := peerSrv.Group(t, owner, "Public", true, peer)
	pc := peerSrv.Dial(t, peer)
	v := memberSrv.Login(t, victim)
	for round := range rounds {
		if _, err := peerSrv.Svc.Invite(t.Context(), owner.P(), id, victim.ID); err != nil {
			t.Fatal(err)
		}
		const sockets = 4
		conns := make([]*wsConn, sockets)
		var wg sync.WaitGroup
		for i := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, _, err := memberSrv.Handshake(t, "", http.Header{"Authorization": {"Bearer " + v.Token}})
				if err != nil {
					t.Error(err)
					return
				}
				conns[i] = c
			}()
		}
		if err := peerSrv.Svc.RemoveMember(t.Context(), owner.P(), id, victim.ID); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		chatTraffic(t, peerSrv, owner, peer, id, fmt.Sprint("r", round))
		pc.UntilPong(fmt.Sprintf("peer-%d", round))
		for i, c := range conns {
			view := &chatView{}
			for _, f := range append(c.Quiet(100*time.Millisecond), c.UntilPong(fmt.Sprint("end-", round))...) {
				view.see(id, f)
			}
			if len(view.leaks) > 0 || view.member {
				t.Fatalf("round %d, socket %d: after the removal it got %d frames of the group %v; believes it is a member: %v",
					round, i, len(view.leaks), view.leaks, view.member)
			}
			c.WS.CloseNow()
		}
	}
}

func TestRemovalRaceOneInstance(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	kickRace(t, s, s, 12)
}

func TestRemovalRaceTwoInstances(t *testing.T) {
	t.Parallel()
	db := "sqlite://" + filepath.Join(t.TempDir(), "shared.db")
	bus := broker.NewMemoryBus()
	presence := broker.NewMemoryPresence(time.Now)
	a := testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: bus.Instance(), Presence: presence, Hub: hubOptions("a")})
	b := testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: bus.Instance(), Presence: presence, Hub: hubOptions("b")})
	kickRace(t, a, b, 12)
}

// TestDeletedGroupEndsEveryStream: while members send, the owner deletes the group. Every
// member's socket (on two instances, and sockets that were opening meanwhile) gets exactly the
// messages committed before the deletion, in order and once, then chat.removed (reason
// "deleted"), and nothing after it; nobody ever sees the chat_deleted message itself.
func TestDeletedGroupEndsEveryStream(t *testing.T) {
	t.Parallel()
	db := "sqlite://" + filepath.Join(t.TempDir(), "shared.db")
	bus := broker.NewMemoryBus()
	presence := broker.NewMemoryPresence(time.Now)
	a := testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: bus.Instance(), Presence: presence, Hub: hubOptions("a")})
	b := testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: bus.Instance(), Presence: presence, Hub: hubOptions("b")})
	owner, m1, m2 := a.NewUser(t, "Owner"), a.NewUser(t, "M1"), a.NewUser(t, "M2")
	id := a.Group(t, owner, "Doomed", true, m1, m2)
	type socket struct {
		c    *wsConn
		name string
	}
	var socks []socket
	for i, u := range []*testUser{owner, m1, m2} {
		srv := []*testServer{a, b}[i%2]
		socks = append(socks, socket{srv.Dial(t, srv.Login(t, u)), fmt.Sprint(u.Name, "@", i%2)})
	}
	// Senders keep sending until the group is gone; sockets keep opening meanwhile.
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for k, u := range []*testUser{m1, m2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				if _, _, err := a.Svc.Send(context.Background(), u.P(), chat.SendInput{ChatID: id, Body: "busy", ClientID: fmt.Sprintf("s%d-%d", k, i)}); err != nil {
					return // the group is gone
				}
			}
		}()
	}
	opening := make([]*wsConn, 4)
	var owg sync.WaitGroup
	time.Sleep(20 * time.Millisecond)
	for i := range opening {
		owg.Add(1)
		go func() {
			defer owg.Done()
			srv := []*testServer{a, b}[i%2]
			c, _, err := srv.Handshake(t, "", http.Header{"Authorization": {"Bearer " + m1.Token}})
			if err != nil {
				t.Error(err)
				return
			}
			opening[i] = c
		}()
	}
	if err := a.Svc.DeleteChat(t.Context(), owner.P(), id); err != nil {
		t.Fatal(err)
	}
	stop()
	wg.Wait()
	owg.Wait()
	if t.Failed() {
		return
	}
	for i, c := range opening {
		socks = append(socks, socket{c, fmt.Sprint("opening-", i)})
	}
	for _, sk := range socks {
		frames := append(sk.c.Quiet(100*time.Millisecond), sk.c.UntilPong("end")...)
		member := !strings.HasPrefix(sk.name, "opening")
		var seqs []int64
		removed := false
		for _, f := range frames {
			switch {
			case f.Type == "hello":
				var h struct {
					Chats []struct{ ID int64 } `json:"chats"`
				}
				json.Unmarshal(f.Data, &h)
				member = slices.ContainsFunc(h.Chats, func(c struct{ ID int64 }) bool { return c.ID == id })
			case f.Type == "chat.removed" && chatOf(f) == id:
				var d chat.ChatRemovedData
				json.Unmarshal(f.Data, &d)
				if d.Reason != "deleted" {
					t.Errorf("%s: chat.removed %s, want reason deleted", sk.name, f.Raw)
				}
				removed, member = true, false
			case chatOf(f) == id:
				if !member {
					t.Errorf("%s: after the deletion it got %s", sk.name, f.Raw)
				}
				if f.Type == "message.new" {
					var d chat.MessageData
					json.Unmarshal(f.Data, &d)
					if d.Message.Event != nil && d.Message.Event.Type == chat.SysChatDeleted {
						t.Errorf("%s: got the chat_deleted message %s", sk.name, f.Raw)
					}
					seqs = append(seqs, d.Message.Seq)
				}
			}
		}
		if member {
			t.Errorf("%s: believes it is still a member (chat.removed: %v)", sk.name, removed)
		}
		for k := 1; k < len(seqs); k++ {
			if seqs[k] != seqs[k-1]+1 {
				t.Errorf("%s: messages out of order or missing before the deletion: %v", sk.name, seqs)
				break
			}
		}
	}
	// Afterwards the group answers 404 to its former members, over REST and the socket.
	r := a.Call(t, "GET", fmt.Sprintf("/api/v1/chats/%d/messages", id), m1.Token, nil, nil)
	if r.Status != http.StatusNotFound {
		t.Errorf("history of the deleted group: %d %s", r.Status, r.Body)
	}
	c := b.Dial(t, m2)
	sync := c.RoundTrip("sync", "s", map[string]any{"cursors": map[string]int64{fmt.Sprint(id): 0}})
	if code, _ := errorOf(sync, "s"); code != chat.CodeNotFound || len(ofType(sync, "message.new")) != 0 {
		t.Errorf("sync of the deleted group: %s", raws(sync))
	}
}

// TestGroupChangesLive: a rename, a role change and a transfer reach every member's devices
// right after their system message: chat.updated and member.role.
func TestGroupChangesLive(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{})
	owner, ann, ben := s.NewUser(t, "Owner"), s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	id := s.Group(t, owner, "Team", false, ann, ben)
	conns := []*wsConn{s.Dial(t, owner), s.Dial(t, ann), s.Dial(t, s.Login(t, ann)), s.Dial(t, ben)}
	if _, err := s.Svc.UpdateChat(t.Context(), owner.P(), id, chat.ChatPatch{Title: strp("Dream team"), Description: strp("hi")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Svc.SetRole(t.Context(), owner.P(), id, ann.ID, chat.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Svc.TransferOwnership(t.Context(), owner.P(), id, ben.ID); err != nil {
		t.Fatal(err)
	}
	want := []string{chat.SysChatRenamed, chat.SysDescriptionChanged, "chat.updated",
		chat.SysRoleChanged, fmt.Sprint("member.role ", ann.ID, " admin"),
		chat.SysOwnerTransferred, fmt.Sprint("member.role ", ben.ID, " owner"), fmt.Sprint("member.role ", owner.ID, " admin")}
	for n, c := range conns {
		// Up to the last event the changes publish (a ping is no barrier for the service's
		// events: on a loaded machine its pong came before the transfer's), then whatever
		// else arrives at once.
		var kinds []string
		deadline := time.Now().Add(10 * time.Second)
		for len(kinds) == 0 || kinds[len(kinds)-1] != want[len(want)-1] {
			f := c.Next(time.Until(deadline))
			switch f.Type {
			case "message.new":
				var d chat.MessageData
				json.Unmarshal(f.Data, &d)
				kinds = append(kinds, d.Message.Event.Type)
			case "chat.updated":
				var d chat.ChatUpdatedData
				json.Unmarshal(f.Data, &d)
				if d.Chat.ID != id || d.Chat.Title != "Dream team" || d.Chat.Description != "hi" || d.Chat.Kind != chat.KindGroup {
					t.Errorf("socket %d: chat.updated %s", n, f.Raw)
				}
				kinds = append(kinds, f.Type)
			case "member.role":
				var d chat.MemberRoleData
				json.Unmarshal(f.Data, &d)
				kinds = append(kinds, fmt.Sprintf("%s %d %s", f.Type, d.UserID, d.Role))
			}
		}
		for _, f := range c.UntilPong("done") {
			if f.Type == "message.new" || f.Type == "chat.updated" || f.Type == "member.role" {
				kinds = append(kinds, f.Type+" after the last")
			}
		}
		if !slices.Equal(kinds, want) {
			t.Errorf("socket %d: got %q, want %q", n, kinds, want)
		}
	}
}

// TestUserUpdatedOncePerConnection: a rename reaches each connection that shares one or more
// chats with the user exactly once (and the user's own), on both instances, and no one else.
func TestUserUpdatedOncePerConnection(t *testing.T) {
	t.Parallel()
	db := "sqlite://" + filepath.Join(t.TempDir(), "shared.db")
	bus := broker.NewMemoryBus()
	presence := broker.NewMemoryPresence(time.Now)
	a := testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: bus.Instance(), Presence: presence, Hub: hubOptions("a")})
	b := testserver.Start(t, testserver.Config{DatabaseURL: db, Broker: bus.Instance(), Presence: presence, Hub: hubOptions("b")})
	x, y, z := a.NewUser(t, "X"), a.NewUser(t, "Y"), a.NewUser(t, "Z")
	a.Group(t, x, "One", false, y)
	a.Group(t, y, "Two", false, x)
	a.Private(t, x, y)
	a.Group(t, z, "Alone", false)
	sharing := []*wsConn{a.Dial(t, y), b.Dial(t, a.Login(t, y)), b.Dial(t, x)}
	outsider := b.Dial(t, z)
	if _, err := a.Svc.Rename(t.Context(), x.P(), "Xavier"); err != nil {
		t.Fatal(err)
	}
	for n, c := range sharing {
		c.NextOf("user.updated", 10*time.Second)
		frames := append(c.Quiet(100*time.Millisecond), c.UntilPong("done")...)
		if extra := ofType(frames, "user.updated"); len(extra) != 0 {
			t.Errorf("socket %d got user.updated %d more times: %s", n, len(extra), raws(extra))
		}
	}
	frames := outsider.UntilPong("done")
	if got := ofType(append(frames, outsider.Quiet(100*time.Millisecond)...), "user.updated"); len(got) != 0 {
		t.Errorf("an outsider got %s", raws(got))
	}
	r := a.Call(t, "GET", fmt.Sprint("/api/v1/users/", x.ID), y.Token, nil, nil)
	var u chat.UserInfo
	json.Unmarshal(r.Body, &u)
	if u.Name != "Xavier" {
		t.Errorf("profile after the rename: %s", r.Body)
	}
}

// TestAccountDeletionLive: deleting an account closes its sockets with 4001; the members of its
// chats learn of it (user.updated with deleted, member.left in its groups), and a send to its
// private chat answers peer_deleted over the socket.
func TestAccountDeletionLive(t *testing.T) {
	t.Parallel()
	s := startServer(t, fileSetups[0].cfg(t))
	gone, peer := s.NewUser(t, "Gone"), s.NewUser(t, "Peer")
	g := s.Group(t, gone, "Club", false, peer)
	dm := s.Private(t, gone, peer)
	s.Send(t, gone, dm, "bye")
	mine := s.Dial(t, gone)
	pc := s.Dial(t, peer)
	if err := s.Svc.DeleteAccount(t.Context(), gone.P(), gone.Password); err != nil {
		t.Fatal(err)
	}
	if code := mine.CloseStatus(10 * time.Second); code != websocket.StatusCode(4001) {
		t.Errorf("the deleted account's socket closed with %d, want 4001", code)
	}
	var seen []frame
	var upd frame
	for upd.Type != "user.updated" {
		upd = pc.Next(10 * time.Second)
		seen = append(seen, upd)
	}
	var d chat.UserUpdatedData
	json.Unmarshal(upd.Data, &d)
	if d.User != (chat.UserUpdate{ID: gone.ID, Name: chat.DeletedName, Deleted: true}) {
		t.Errorf("user.updated %s", upd.Raw)
	}
	frames := pc.RoundTrip("message.send", "ro", map[string]any{"chat_id": dm, "client_id": "ro-1", "body": "are you there?"})
	if code, _ := errorOf(frames, "ro"); code != chat.CodePeerDeleted {
		t.Errorf("a send to the read-only chat: %s", raws(frames))
	}
	// Nor can a file be uploaded there: it could never be attached to a message.
	if r := s.Upload(t, peer, dm, "note.txt", []byte("are you there?")); r.Status != http.StatusForbidden || r.Code() != chat.CodePeerDeleted {
		t.Errorf("an upload to the read-only chat: %d %s, want 403 %s", r.Status, r.Body, chat.CodePeerDeleted)
	}
	if !slices.ContainsFunc(append(seen, frames...), func(f frame) bool { return f.Type == "member.left" && chatOf(f) == g }) {
		t.Errorf("the group's member.left never came: %s", raws(append(seen, frames...)))
	}
}

// TestNoLastSeenForADeletedAccount: the offline that follows an account's deletion (its sockets
// closed) carries no last_seen_at: a deleted account has none.
func TestNoLastSeenForADeletedAccount(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{Hub: hub.Options{InstanceID: "t", OfflineGrace: 20 * time.Millisecond}})
	gone, peer := s.NewUser(t, "Gone"), s.NewUser(t, "Peer")
	s.Private(t, gone, peer)
	pc := s.Dial(t, peer)
	s.Dial(t, gone)
	for {
		f := pc.NextOf("presence", 10*time.Second)
		var d struct {
			UserID     int64           `json:"user_id"`
			Online     bool            `json:"online"`
			LastSeenAt json.RawMessage `json:"last_seen_at"`
		}
		json.Unmarshal(f.Data, &d)
		if d.UserID != gone.ID {
			continue
		}
		if d.Online {
			if err := s.Svc.DeleteAccount(t.Context(), gone.P(), gone.Password); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if d.LastSeenAt != nil {
			t.Errorf("offline of the deleted account: %s, want no last_seen_at", f.Raw)
		}
		return
	}
}

// TestLastSeenFollowsPresence: while a user is connected their profile shows no last seen;
// once their socket closed and they went offline, it shows about when.
func TestLastSeenFollowsPresence(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{Hub: hub.Options{InstanceID: "t", OfflineGrace: 20 * time.Millisecond}})
	ann, ben := s.NewUser(t, "Ann"), s.NewUser(t, "Ben")
	s.Private(t, ann, ben)
	profile := func() chat.UserInfo {
		r := s.Call(t, "GET", fmt.Sprint("/api/v1/users/", ben.ID), ann.Token, nil, nil)
		var u chat.UserInfo
		json.Unmarshal(r.Body, &u)
		return u
	}
	watcher := s.Dial(t, ann)
	c := s.Dial(t, ben)
	deadline := time.Now().Add(10 * time.Second)
	u := profile()
	for !u.Online && time.Now().Before(deadline) { // presence is marked right after the hello
		time.Sleep(10 * time.Millisecond)
		u = profile()
	}
	if !u.Online || u.LastSeenAt != nil {
		t.Errorf("connected: %+v, want online without a last seen time", u)
	}
	before := time.Now().Add(-time.Second)
	c.WS.Close(websocket.StatusNormalClosure, "")
	deadline = time.Now().Add(10 * time.Second)
	u = profile()
	for (u.Online || u.LastSeenAt == nil) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		u = profile()
	}
	if u.Online || u.LastSeenAt == nil || u.LastSeenAt.Before(before) || u.LastSeenAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("after the socket closed: %+v, want offline, last seen just now", u)
	}
	// The presence frame says the same instant (it once came from a second clock reading).
	if seen := offlineOf(t, watcher, ben.ID); !seen.Equal(u.LastSeenAt.Time) {
		t.Errorf("presence frame last_seen_at %v, the profile's %v: want the same", seen, u.LastSeenAt.Time)
	}
}

// lateRemovals is a broker that holds back chat.removed (which travels on the user's topic)
// until release: what a slow or reordering pub/sub may do. The streams of the chat must end
// at the system message all the same.
type lateRemovals struct {
	broker.Broker
	mu      sync.Mutex
	inner   broker.Handler
	held    [][2]string
	holding bool
}

func (b *lateRemovals) Start(ctx context.Context, h broker.Handler) error {
	b.inner = h
	return b.Broker.Start(ctx, lateHandler{b})
}

type lateHandler struct{ b *lateRemovals }

func (h lateHandler) Deliver(topic string, payload []byte) {
	b := h.b
	b.mu.Lock()
	if b.holding && strings.HasPrefix(topic, "user.") && strings.Contains(string(payload), `"t":"chat.removed"`) {
		b.held = append(b.held, [2]string{topic, string(payload)})
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	b.inner.Deliver(topic, payload)
}

func (h lateHandler) Resubscribed() { h.b.inner.Resubscribed() }

// heldCount is how many chat.removed are held.
func (b *lateRemovals) heldCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.held)
}

// release delivers what was held (a chat.removed only hands work to the hub's control loop,
// so delivering it beside the broker's goroutine is safe) and holds nothing more.
func (b *lateRemovals) release() int {
	b.mu.Lock()
	held := b.held
	b.held, b.holding = nil, false
	b.mu.Unlock()
	for _, p := range held {
		b.inner.Deliver(p[0], []byte(p[1]))
	}
	return len(held)
}

// TestStreamsEndAtTheSystemMessage: with chat.removed held back, a removed member's socket gets
// nothing of the group from the removal's message on (not even that message), and a deleted
// group's members get nothing from its chat_deleted message on; chat.removed comes when it
// comes.
func TestStreamsEndAtTheSystemMessage(t *testing.T) {
	t.Parallel()
	late := &lateRemovals{Broker: broker.NewMemory(), holding: true}
	s := startServer(t, serverConfig{Broker: late})
	owner, peer, victim := s.NewUser(t, "Owner"), s.NewUser(t, "Peer"), s.NewUser(t, "Victim")
	id := s.Group(t, owner, "Team", false, peer, victim)
	vc, pc := s.Dial(t, victim), s.Dial(t, peer)

	if err := s.Svc.RemoveMember(t.Context(), owner.P(), id, victim.ID); err != nil {
		t.Fatal(err)
	}
	chatTraffic(t, s, owner, peer, id, "late")
	// The traffic's last event (the peer made a member again) reaches the peer before the
	// deletion below: a ping is no barrier for the service's events.
	for !strings.Contains(string(pc.NextOf("member.role", 10*time.Second).Raw), `"role":"member"`) {
	}
	if got := ofChat(vc.UntilPong("held"), id); len(got) != 0 {
		t.Errorf("the removed member got, before its chat.removed: %s", raws(got))
	}

	// A deletion, likewise: nothing of the group reaches the members once it is gone.
	if err := s.Svc.DeleteChat(t.Context(), owner.P(), id); err != nil {
		t.Fatal(err)
	}
	if got := ofChat(pc.UntilPong("held-2"), id); len(got) != 0 {
		t.Errorf("a member of the deleted group got, before its chat.removed: %s", raws(got))
	}
	// A ping is no barrier for the service's events: wait until the peer's chat.removed is
	// held too (or the deadline says it never came).
	for deadline := time.Now().Add(10 * time.Second); late.heldCount() < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := late.release(); n != 2 {
		t.Fatalf("held %d chat.removed, want 2 (the victim's and the peer's; the owner has no socket)", n)
	}
	for name, c := range map[string]*wsConn{"victim": vc, "peer": pc} {
		got := c.NextOf("chat.removed", 10*time.Second)
		if chatOf(got) != id {
			t.Errorf("%s: %s", name, got.Raw)
		}
		if rest := ofChat(c.UntilPong("after"), id); len(rest) != 0 {
			t.Errorf("%s: after chat.removed: %s", name, raws(rest))
		}
	}
}

// ofChat keeps the frames about one chat.
func ofChat(frames []frame, id int64) []frame {
	var out []frame
	for _, f := range frames {
		if chatOf(f) == id {
			out = append(out, f)
		}
	}
	return out
}
