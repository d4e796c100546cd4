package store_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
)

// Conformance of running groups and accounts (chat.AdminStore), on both databases.

func role(t *testing.T, s *store.Store, chatID int64, u chat.User) string {
	t.Helper()
	return members(t, s, chatID)[u.ID].Role
}

func setRole(s *store.Store, chatID int64, actor, target chat.User, r string, n int) (chat.Message, bool, error) {
	return s.SetRole(context.Background(), chat.RoleChange{ChatID: chatID, UserID: target.ID, ActorID: actor.ID, Role: r, Now: at(n)})
}

func kick(s *store.Store, chatID int64, actor, target chat.User, n int) (chat.Removed, error) {
	return s.RemoveFromChat(context.Background(), chat.Removal{ChatID: chatID, UserID: target.ID, ActorID: actor.ID, Now: at(n)})
}

// lastMessage is the newest stored message of a chat, as History reads it back.
func lastMessage(t *testing.T, s *store.Store, chatID int64) chat.Message {
	t.Helper()
	msgs, _, err := s.History(context.Background(), chat.HistoryQuery{ChatID: chatID, Limit: 1})
	if err != nil || len(msgs) != 1 {
		t.Fatalf("last message of chat %d: %v, %v", chatID, msgs, err)
	}
	return msgs[0]
}

// storedChatCount is users.chat_count, which caps the chats a user may join.
func storedChatCount(t *testing.T, s *store.Store, u chat.User) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRow(`SELECT chat_count FROM users WHERE id = $1`, u.ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRoles(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		owner, a, m1, m2, out := mkUser(t, s, "Owner"), mkUser(t, s, "A"), mkUser(t, s, "M1"), mkUser(t, s, "M2"), mkUser(t, s, "Out")
		id := mkGroup(t, s, owner, "G", false, at(1), a, m1, m2)

		_, _, err := setRole(s, id, m1, m2, chat.RoleAdmin, 2)
		wantErr(t, "a member promotes", err, chat.ErrNotAdmin)
		_, _, err = setRole(s, id, out, m2, chat.RoleAdmin, 2)
		wantErr(t, "a stranger promotes", err, chat.ErrNotMember)
		_, _, err = setRole(s, id, owner, out, chat.RoleAdmin, 2)
		wantErr(t, "promote a stranger", err, chat.ErrNoMember)

		msg, changed, err := setRole(s, id, owner, a, chat.RoleAdmin, 3)
		if err != nil || !changed || msg.Seq != 2 || msg.Event == nil ||
			*msg.Event != (chat.SystemEvent{Type: chat.SysRoleChanged, UserID: a.ID, ActorID: owner.ID, Role: chat.RoleAdmin}) {
			t.Fatalf("the owner promotes: got %+v, %v, %v; want a role_changed message with seq 2", msg, changed, err)
		}
		if got := lastMessage(t, s, id); got.Event == nil || got.Event.Role != chat.RoleAdmin || got.Event.Type != chat.SysRoleChanged {
			t.Errorf("stored role_changed: got %+v, want its role read back", got.Event)
		}
		if _, changed, err := setRole(s, id, owner, a, chat.RoleAdmin, 4); err != nil || changed {
			t.Errorf("promote an admin again: changed %v, %v; want nothing", changed, err)
		}
		if got := chatFor(t, s, owner, id).LastSeq; got != 2 {
			t.Errorf("a role set to what it was stored a message: last seq %d, want 2", got)
		}

		// An admin promotes, demotes only themselves, and never the owner.
		if _, changed, err := setRole(s, id, a, m1, chat.RoleAdmin, 5); err != nil || !changed {
			t.Errorf("an admin promotes a member: %v, %v", changed, err)
		}
		_, _, err = setRole(s, id, a, m1, chat.RoleMember, 6)
		wantErr(t, "an admin demotes another admin", err, chat.ErrNotOwner)
		_, _, err = setRole(s, id, a, owner, chat.RoleMember, 6)
		wantErr(t, "an admin demotes the owner", err, chat.ErrIsOwner)
		_, _, err = setRole(s, id, owner, owner, chat.RoleAdmin, 6)
		wantErr(t, "the owner sets their own role", err, chat.ErrIsOwner)
		if _, changed, err := setRole(s, id, m1, m1, chat.RoleMember, 7); err != nil || !changed {
			t.Errorf("an admin steps down: %v, %v", changed, err)
		}
		if _, changed, err := setRole(s, id, owner, a, chat.RoleMember, 8); err != nil || !changed {
			t.Errorf("the owner demotes an admin: %v, %v", changed, err)
		}
		want := map[int64]string{owner.ID: chat.RoleOwner, a.ID: chat.RoleMember, m1.ID: chat.RoleMember, m2.ID: chat.RoleMember}
		for id2, m := range members(t, s, id) {
			if m.Role != want[id2] {
				t.Errorf("user %d: role %q, want %q", id2, m.Role, want[id2])
			}
		}

		priv := mkPrivate(t, s, owner, a, at(9))
		_, _, err = setRole(s, priv, owner, a, chat.RoleAdmin, 9)
		wantErr(t, "roles in a private chat", err, chat.ErrPrivateChat)
		_, _, err = s.SetRole(context.Background(), chat.RoleChange{ChatID: id + 1_000_000, UserID: a.ID, ActorID: owner.ID, Role: chat.RoleAdmin, Now: at(9)})
		wantErr(t, "roles in a missing chat", err, chat.ErrNotFound)
	})
}

func TestUpdateChat(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner, admin, m, out := mkUser(t, s, "Owner"), mkUser(t, s, "Admin"), mkUser(t, s, "M"), mkUser(t, s, "Out")
		id := mkGroup(t, s, owner, "Old title", false, at(1), admin, m)
		if _, _, err := setRole(s, id, owner, admin, chat.RoleAdmin, 2); err != nil { // seq 2
			t.Fatal(err)
		}
		str := func(v string) *string { return &v }
		yes := true
		update := func(actor chat.User, u chat.ChatUpdate) ([]chat.Message, error) {
			u.ChatID, u.ActorID, u.Now = id, actor.ID, at(3)
			return s.UpdateChat(ctx, u)
		}

		_, err := update(m, chat.ChatUpdate{Title: str("Mine")})
		wantErr(t, "a member renames", err, chat.ErrNotAdmin)
		_, err = update(out, chat.ChatUpdate{Title: str("Mine")})
		wantErr(t, "a stranger renames", err, chat.ErrNotMember)

		msgs, err := update(admin, chat.ChatUpdate{Title: str("Zebra crossing"), Public: &yes, Description: str("About zebras\nand crossings")})
		if err != nil || len(msgs) != 3 {
			t.Fatalf("an admin changes all three: got %d messages, %v; want 3", len(msgs), err)
		}
		wantEvents := []chat.SystemEvent{
			{Type: chat.SysChatRenamed, UserID: admin.ID, ActorID: admin.ID, Title: "Zebra crossing"},
			{Type: chat.SysVisibilityChanged, UserID: admin.ID, ActorID: admin.ID},
			{Type: chat.SysDescriptionChanged, UserID: admin.ID, ActorID: admin.ID},
		}
		for i, msg := range msgs {
			got := *msg.Event
			if got.Public != nil {
				if !*got.Public {
					t.Errorf("visibility_changed says private, want public")
				}
				got.Public = nil
			}
			if msg.Seq != int64(3+i) || got != wantEvents[i] {
				t.Errorf("message %d: got seq %d %+v, want seq %d %+v", i, msg.Seq, got, 3+i, wantEvents[i])
			}
		}
		stored, _, err := s.History(ctx, chat.HistoryQuery{ChatID: id, After: 2, HasAfter: true, Limit: 10})
		if err != nil || len(stored) != 3 || stored[0].Event.Title != "Zebra crossing" || stored[1].Event.Public == nil || !*stored[1].Event.Public {
			t.Errorf("stored events: got %+v, %v; want the title and the visibility read back", stored, err)
		}
		c := chatFor(t, s, out, id)
		if c.Title != "Zebra crossing" || !c.Public || c.Description != "About zebras\nand crossings" || c.LastSeq != 5 {
			t.Errorf("after the update: got %+v", c)
		}
		found, err := s.Discover(ctx, out.ID, "zebra", 10)
		if err != nil || len(found) != 1 || found[0].ID != id {
			t.Errorf("discover by the new title: got %+v, %v", found, err)
		}

		// The same values change nothing; one that differs, one message.
		if msgs, err := update(owner, chat.ChatUpdate{Title: str("Zebra crossing"), Public: &yes}); err != nil || len(msgs) != 0 {
			t.Errorf("same values: got %d messages, %v; want none", len(msgs), err)
		}
		no := false
		msgs, err = update(owner, chat.ChatUpdate{Public: &no, Description: str("About zebras\nand crossings")})
		if err != nil || len(msgs) != 1 || msgs[0].Event.Public == nil || *msgs[0].Event.Public || msgs[0].Seq != 6 {
			t.Errorf("make it private: got %+v, %v; want one visibility_changed (private) with seq 6", msgs, err)
		}

		priv := mkPrivate(t, s, owner, m, at(4))
		_, err = s.UpdateChat(ctx, chat.ChatUpdate{ChatID: priv, ActorID: owner.ID, Title: str("x"), Now: at(4)})
		wantErr(t, "rename a private chat", err, chat.ErrPrivateChat)
	})
}

func TestRemoveFromChat(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		owner, admin, admin2, m1, m2, out := mkUser(t, s, "Owner"), mkUser(t, s, "Admin"), mkUser(t, s, "Admin2"),
			mkUser(t, s, "M1"), mkUser(t, s, "M2"), mkUser(t, s, "Out")
		id := mkGroup(t, s, owner, "G", true, at(1), admin, admin2, m1, m2)
		for i, u := range []chat.User{admin, admin2} {
			if _, _, err := setRole(s, id, owner, u, chat.RoleAdmin, 2+i); err != nil { // seqs 2, 3
				t.Fatal(err)
			}
		}
		before := storedChatCount(t, s, m1)

		_, err := kick(s, id, m2, m1, 4)
		wantErr(t, "a member removes a member", err, chat.ErrNotAdmin)
		_, err = kick(s, id, admin, admin2, 4)
		wantErr(t, "an admin removes an admin", err, chat.ErrNotOwner)
		_, err = kick(s, id, admin, owner, 4)
		wantErr(t, "an admin removes the owner", err, chat.ErrIsOwner)
		_, err = kick(s, id, admin, out, 4)
		wantErr(t, "remove a stranger", err, chat.ErrNoMember)
		_, err = kick(s, id, out, m1, 4)
		wantErr(t, "a stranger removes", err, chat.ErrNotMember)

		r, err := kick(s, id, admin, m1, 5)
		if err != nil || r.ChatID != id || r.Message.Seq != 4 || r.Successor != nil || r.Message.Event == nil ||
			*r.Message.Event != (chat.SystemEvent{Type: chat.SysMemberRemoved, UserID: m1.ID, ActorID: admin.ID}) {
			t.Fatalf("an admin removes a member: got %+v, %v; want a member_removed message with seq 4", r, err)
		}
		if c := chatFor(t, s, m1, id); c.IsMember || c.MemberCount != 4 {
			t.Errorf("the removed member: got %+v, want not a member of a group of 4", c)
		}
		if got := storedChatCount(t, s, m1); got != before-1 {
			t.Errorf("the removed member's chat count: got %d, want %d", got, before-1)
		}
		_, err = kick(s, id, admin, m1, 6)
		wantErr(t, "remove twice", err, chat.ErrNoMember)
		if r, err := kick(s, id, owner, admin2, 7); err != nil || r.Message.Seq != 5 {
			t.Errorf("the owner removes an admin: got %+v, %v", r, err)
		}
		priv := mkPrivate(t, s, owner, m2, at(8))
		_, err = kick(s, id+1_000_000, owner, m2, 8)
		wantErr(t, "remove from a missing chat", err, chat.ErrNotFound)
		_, err = kick(s, priv, owner, m2, 8)
		wantErr(t, "remove from a private chat", err, chat.ErrPrivateChat)
		if seqs, _ := history(t, s, chat.HistoryQuery{ChatID: id, Limit: 50}); !slices.Equal(seqs, seqRange(1, 5)) {
			t.Errorf("history: got %v, want 1..5 (refusals store nothing)", seqs)
		}
	})
}

// TestLeaveReason: why a user is not in a chat they were in at a seq, as a chat.removed that
// the hub makes from the store tells it: removed, their own leave, the last of several leaves
// (they came back in between), the group deleted.
func TestLeaveReason(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner, a, b := mkUser(t, s, "Owner"), mkUser(t, s, "A"), mkUser(t, s, "B")
		id := mkGroup(t, s, owner, "G", false, at(1), a, b) // seq 1
		check := func(what string, u chat.User, after int64, want string) {
			t.Helper()
			if got, err := s.LeaveReason(ctx, u.ID, id, after); err != nil || got != want {
				t.Errorf("%s: got %q, %v; want %q", what, got, err, want)
			}
		}
		if _, err := kick(s, id, owner, a, 2); err != nil { // seq 2
			t.Fatal(err)
		}
		if _, err := kick(s, id, b, b, 3); err != nil { // seq 3
			t.Fatal(err)
		}
		check("removed", a, 1, "removed")
		check("left", b, 1, "")
		check("no leave after the seq", a, 2, "")
		if _, err := s.AddMember(ctx, id, a.ID, owner.ID, chat.SysMemberInvited, at(4)); err != nil { // seq 4
			t.Fatal(err)
		}
		if _, err := kick(s, id, a, a, 5); err != nil { // seq 5
			t.Fatal(err)
		}
		check("removed, back, then left", a, 1, "")
		if _, err := s.AddMember(ctx, id, b.ID, owner.ID, chat.SysMemberInvited, at(6)); err != nil { // seq 6
			t.Fatal(err)
		}
		if _, err := kick(s, id, owner, b, 7); err != nil { // seq 7
			t.Fatal(err)
		}
		check("left, back, then removed", b, 1, "removed")
		if _, err := s.DeleteChat(ctx, id, owner.ID, at(8)); err != nil {
			t.Fatal(err)
		}
		check("deleted", owner, 1, "deleted")
		check("removed, then deleted", b, 1, "deleted")
		_, err := s.LeaveReason(ctx, a.ID, id+1_000_000, 0)
		wantErr(t, "a missing chat", err, chat.ErrNotFound)
	})
}

func TestOwnerHandsOn(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner, early, admin, late := mkUser(t, s, "Owner"), mkUser(t, s, "Early"), mkUser(t, s, "Admin"), mkUser(t, s, "Late")
		id := mkGroup(t, s, owner, "G", true, at(1), early)
		if _, err := s.AddMember(ctx, id, admin.ID, owner.ID, chat.SysMemberInvited, at(2)); err != nil { // seq 2
			t.Fatal(err)
		}
		if _, err := s.AddMember(ctx, id, late.ID, owner.ID, chat.SysMemberInvited, at(3)); err != nil { // seq 3
			t.Fatal(err)
		}
		if _, _, err := setRole(s, id, owner, admin, chat.RoleAdmin, 4); err != nil { // seq 4
			t.Fatal(err)
		}
		// An admin takes over before a member who came earlier.
		r, err := kick(s, id, owner, owner, 5)
		if err != nil || r.Message.Seq != 5 || r.Message.Event.Type != chat.SysMemberLeft || r.Successor == nil ||
			r.Successor.Seq != 6 || *r.Successor.Event != (chat.SystemEvent{Type: chat.SysOwnerTransferred, UserID: admin.ID, ActorID: owner.ID}) {
			t.Fatalf("the owner leaves: got %+v (successor %+v), %v; want member_left 5, then owner_transferred to the admin at 6", r, r.Successor, err)
		}
		if role(t, s, id, admin) != chat.RoleOwner || chatFor(t, s, early, id).LastSeq != 6 {
			t.Errorf("after the hand-over: admin's role %q, last seq %d", role(t, s, id, admin), chatFor(t, s, early, id).LastSeq)
		}
		// No admin: the member who joined first.
		if r, err = kick(s, id, admin, admin, 7); err != nil || r.Successor == nil || r.Successor.Event.UserID != early.ID {
			t.Errorf("the new owner leaves: got %+v, %v; want the earliest member to take over", r, err)
		}
		// The last one leaves: nobody to hand it to; the next to join owns it.
		if _, err := kick(s, id, late, late, 8); err != nil {
			t.Fatal(err)
		}
		if r, err = kick(s, id, early, early, 9); err != nil || r.Successor != nil {
			t.Errorf("the last member leaves: got %+v, %v; want no successor", r, err)
		}
		if _, err := s.AddMember(ctx, id, late.ID, late.ID, chat.SysMemberJoined, at(10)); err != nil {
			t.Fatal(err)
		}
		if got := role(t, s, id, late); got != chat.RoleOwner {
			t.Errorf("joining an empty group: role %q, want owner", got)
		}
	})
}

func TestTransferOwner(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner, admin, m, out := mkUser(t, s, "Owner"), mkUser(t, s, "Admin"), mkUser(t, s, "M"), mkUser(t, s, "Out")
		id := mkGroup(t, s, owner, "G", false, at(1), admin, m)
		if _, _, err := setRole(s, id, owner, admin, chat.RoleAdmin, 2); err != nil { // seq 2
			t.Fatal(err)
		}
		_, err := s.TransferOwner(ctx, id, admin.ID, m.ID, at(3))
		wantErr(t, "an admin transfers", err, chat.ErrNotOwner)
		_, err = s.TransferOwner(ctx, id, owner.ID, out.ID, at(3))
		wantErr(t, "transfer to a stranger", err, chat.ErrNoMember)
		_, err = s.TransferOwner(ctx, id, out.ID, m.ID, at(3))
		wantErr(t, "a stranger transfers", err, chat.ErrNotMember)
		msg, err := s.TransferOwner(ctx, id, owner.ID, m.ID, at(4))
		if err != nil || msg.Seq != 3 || *msg.Event != (chat.SystemEvent{Type: chat.SysOwnerTransferred, UserID: m.ID, ActorID: owner.ID}) {
			t.Fatalf("transfer: got %+v, %v", msg, err)
		}
		want := map[int64]string{owner.ID: chat.RoleAdmin, admin.ID: chat.RoleAdmin, m.ID: chat.RoleOwner}
		for uid, mem := range members(t, s, id) {
			if mem.Role != want[uid] {
				t.Errorf("user %d: role %q, want %q", uid, mem.Role, want[uid])
			}
		}
		_, err = s.TransferOwner(ctx, id, owner.ID, admin.ID, at(5))
		wantErr(t, "the former owner transfers", err, chat.ErrNotOwner)
	})
}

func TestDeleteChat(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner, admin, m, out := mkUser(t, s, "Owner"), mkUser(t, s, "Admin"), mkUser(t, s, "M"), mkUser(t, s, "Out")
		id := mkGroup(t, s, owner, "Doomed", true, at(1), admin, m)
		if _, _, err := setRole(s, id, owner, admin, chat.RoleAdmin, 2); err != nil { // seq 2
			t.Fatal(err)
		}
		f := upload(t, s, id, m, 10, at(3))
		sendFiles(t, s, id, m, "with a file", at(3), f.ID) // seq 3
		counts := map[int64]int{owner.ID: storedChatCount(t, s, owner), admin.ID: storedChatCount(t, s, admin), m.ID: storedChatCount(t, s, m)}

		_, err := s.DeleteChat(ctx, id, admin.ID, at(4))
		wantErr(t, "an admin deletes", err, chat.ErrNotOwner)
		_, err = s.DeleteChat(ctx, id, out.ID, at(4))
		wantErr(t, "a stranger deletes", err, chat.ErrNotMember)
		d, err := s.DeleteChat(ctx, id, owner.ID, at(5))
		if err != nil || d.Message.Seq != 4 || d.Message.Event == nil || d.Message.Event.Type != chat.SysChatDeleted ||
			!slices.Equal(d.Members, []int64{owner.ID, admin.ID, m.ID}) {
			t.Fatalf("delete: got %+v, %v; want chat_deleted at seq 4 and the three members", d, err)
		}
		for _, u := range []chat.User{owner, m, out} {
			c := chatFor(t, s, u, id)
			if c.IsMember || c.Public || c.Title != "" || c.MemberCount != 0 || c.LastMessage != nil {
				t.Errorf("the deleted group as user %d sees it: %+v; want nothing to see", u.ID, c)
			}
		}
		for uid, n := range counts {
			if got := storedChatCount(t, s, chat.User{ID: uid}); got != n-1 {
				t.Errorf("user %d's chat count: got %d, want %d", uid, got, n-1)
			}
		}
		if seqs, _ := history(t, s, chat.HistoryQuery{ChatID: id, Limit: 50}); len(seqs) != 0 {
			t.Errorf("history of a deleted group: got %v, want none", seqs)
		}
		if found, _ := s.Discover(ctx, out.ID, "doomed", 10); len(found) != 0 {
			t.Errorf("discover finds the deleted group: %+v", found)
		}
		_, err = s.AddMember(ctx, id, out.ID, out.ID, chat.SysMemberJoined, at(6))
		wantErr(t, "join the deleted group", err, chat.ErrNotFound)
		_, err = s.SendMessage(ctx, chat.NewMessage{ChatID: id, SenderID: owner.ID, Body: "x", ClientID: "after", Now: at(6)})
		if err == nil {
			t.Errorf("a send to the deleted group was stored")
		}
		_, err = s.DeleteChat(ctx, id, owner.ID, at(7))
		wantErr(t, "delete twice", err, chat.ErrNotFound)
		// Its files are nobody's, and go with the janitor's next pass.
		if _, err := s.FileFor(ctx, m.ID, f.ID); err == nil {
			t.Errorf("the file of a deleted group can still be downloaded")
		}
		expired, err := s.ExpiredFiles(ctx, at(0), at(0), 100)
		if err != nil || !slices.ContainsFunc(expired, func(x chat.File) bool { return x.ID == f.ID }) {
			t.Errorf("expired files: got %+v, %v; want the deleted group's file", expired, err)
		}
	})
}

func TestDeleteUser(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		gone, peer, other, newcomer := mkUser(t, s, "Gone"), mkUser(t, s, "Peer"), mkUser(t, s, "Other"), mkUser(t, s, "Newcomer")
		owned := mkGroup(t, s, gone, "Owned", false, at(1), peer, other)
		joined := mkGroup(t, s, peer, "Joined", false, at(1), gone)
		priv := mkPrivate(t, s, gone, peer, at(1))
		said := send(t, s, priv, gone, "my last words", at(2))
		for range 2 {
			if _, err := s.CreateSession(ctx, chat.Session{UserID: gone.ID, CreatedAt: at(2), LastSeenAt: at(2), ExpiresAt: at(10_000)}, randomHash()); err != nil {
				t.Fatal(err)
			}
		}

		d, err := s.DeleteUser(ctx, gone.ID, at(3))
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Sessions) != 2 || !slices.Equal(d.Private, []int64{priv}) || len(d.Groups) != 2 {
			t.Fatalf("delete: got %+v; want 2 sessions, the private chat, 2 groups", d)
		}
		for _, r := range d.Groups {
			if r.Message.Event.Type != chat.SysMemberLeft || r.Message.Event.UserID != gone.ID {
				t.Errorf("group %d: got %+v, want a member_left of the deleted user", r.ChatID, r.Message.Event)
			}
			if (r.ChatID == owned) != (r.Successor != nil) {
				t.Errorf("group %d: successor %+v; only the owned group is handed on", r.ChatID, r.Successor)
			}
		}
		if got := role(t, s, owned, peer); got != chat.RoleOwner {
			t.Errorf("the owned group's new owner: peer is %q, want owner", got)
		}

		u, err := s.UserByID(ctx, gone.ID)
		if err != nil || !u.Deleted || u.Name != chat.DeletedName || u.Email == gone.Email || u.PasswordHash != "" {
			t.Errorf("the deleted account: got %+v, %v; want anonymized", u, err)
		}
		_, err = s.UserByEmail(ctx, gone.Email)
		wantErr(t, "log in as the deleted account", err, chat.ErrNotFound)
		if _, err := s.CreateUser(ctx, chat.User{Email: gone.Email, Name: "Again", PasswordHash: "x", CreatedAt: at(4)}); err != nil {
			t.Errorf("sign up again with the freed email: %v", err)
		}
		if found, _ := s.SearchUsers(ctx, chat.UserSearch{ViewerID: peer.ID, Prefix: "", Limit: 100}); slices.ContainsFunc(found, func(f chat.FoundUser) bool { return f.ID == gone.ID }) {
			t.Errorf("user search finds the deleted account")
		}
		live, err := s.ListSessions(ctx, gone.ID, at(3))
		if err != nil || len(live) != 0 {
			t.Errorf("sessions after deletion: %+v, %v", live, err)
		}

		// The private chat stays readable, with the text, and becomes read-only.
		c := chatFor(t, s, peer, priv)
		if !c.ReadOnly || c.Peer == nil || !c.Peer.Deleted || c.Title != chat.DeletedName || !c.IsMember {
			t.Errorf("the private chat as the peer sees it: %+v (peer %+v)", c, c.Peer)
		}
		msgs, _, err := s.History(ctx, chat.HistoryQuery{ChatID: priv, Limit: 10})
		if err != nil || len(msgs) != 1 || msgs[0].Body != "my last words" || *msgs[0].SenderID != gone.ID || msgs[0].ID != said.Message.ID {
			t.Errorf("history of the private chat: %+v, %v; want the deleted user's words", msgs, err)
		}
		_, err = s.SendMessage(ctx, chat.NewMessage{ChatID: priv, SenderID: peer.ID, Body: "hello?", ClientID: "ro", Now: at(5)})
		wantErr(t, "send to a read-only chat", err, chat.ErrNotMember)
		if _, err := s.MarkRead(ctx, priv, peer.ID, 1); err != nil {
			t.Errorf("mark a read-only chat read: %v", err)
		}
		// A deleted account joins nothing new.
		_, err = s.AddMember(ctx, joined, gone.ID, peer.ID, chat.SysMemberInvited, at(6))
		wantErr(t, "invite the deleted account", err, chat.ErrUnknownUser)
		_, _, err = s.CreatePrivate(ctx, newcomer.ID, gone.ID, at(6))
		wantErr(t, "open a private chat with the deleted account", err, chat.ErrUnknownUser)
		_, err = s.CreateGroup(ctx, chat.NewGroup{CreatorID: other.ID, Title: "x", MemberIDs: []int64{gone.ID}, Now: at(6)})
		wantErr(t, "a group with the deleted account", err, chat.ErrUnknownUser)
		_, err = s.DeleteUser(ctx, gone.ID, at(7))
		wantErr(t, "delete twice", err, chat.ErrNotFound)
		wantErr(t, "rename the deleted account", s.RenameUser(ctx, gone.ID, "Back"), chat.ErrNotFound)
	})
}

// TestDeleteUserBesideASend (PostgreSQL; SQLite's writers take turns): the deletion of an
// account and a send of the user's own into one of their private chats, which holds that
// chat's lock and then takes a key-share lock on the user's row (the message's sender_id
// refers to it), wait for each other without deadlocking. The deletion locked the user's
// row before it locked the private chats (to make them read-only), so each held what the
// other wanted and PostgreSQL aborted one: an outside audit's account deletions racing their
// own sends failed a send with "deadlock detected". The send is played by a transaction of
// the test's, and the deletion is let go on only once PostgreSQL shows it waiting for a lock.
func TestDeleteUserBesideASend(t *testing.T) {
	t.Parallel()
	s := open(t, migratedURLs["postgres"](t))
	ctx := context.Background()
	gone, peer := mkUser(t, s, "Gone"), mkUser(t, s, "Peer")
	mkGroup(t, s, peer, "Group", false, at(1), gone)
	priv := mkPrivate(t, s, gone, peer, at(1))

	sending, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sending.Rollback()
	if _, err := sending.ExecContext(ctx, `SELECT id FROM chats WHERE id = $1 FOR UPDATE`, priv); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan error, 1)
	go func() {
		_, err := s.DeleteUser(ctx, gone.ID, at(2))
		deleted <- err
	}()
	for waiting := 0; waiting == 0; {
		err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-deleted:
			t.Fatalf("the deletion did not wait for the chat the send holds: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	// What storing the message does to the sender's row (the foreign key's check).
	if _, err := sending.ExecContext(ctx, `SELECT id FROM users WHERE id = $1 FOR KEY SHARE`, gone.ID); err != nil {
		t.Errorf("the send, beside the deletion: %v", err)
	}
	if err := sending.Commit(); err != nil {
		t.Errorf("the send's commit: %v", err)
	}
	if err := <-deleted; err != nil {
		t.Errorf("the deletion, beside the send: %v", err)
	}
	if c := chatFor(t, s, peer, priv); !c.ReadOnly {
		t.Errorf("the private chat of the deleted account: %+v, want it read-only", c)
	}
}

// TestChatChangesBesideAnInsertReferringToTheChat (PostgreSQL): a change of a chat (here a
// removal, the lock every change and read mark takes) does not wait for a transaction that
// inserted a row referring to the chat (an upload's file, whose foreign-key check key-share
// locks the chat's row, outside the chat's lock). It waited, under FOR UPDATE, and an outside
// audit's removal racing the removed member's uploads met the upload's insert waiting for it
// in turn: "deadlock detected", a 500. The upload is the test's own open transaction; the
// removal must finish while it is open, and the test fails as soon as PostgreSQL shows the
// removal waiting for it.
func TestChatChangesBesideAnInsertReferringToTheChat(t *testing.T) {
	t.Parallel()
	s := open(t, migratedURLs["postgres"](t))
	ctx := context.Background()
	owner, m := mkUser(t, s, "Owner"), mkUser(t, s, "M")
	id := mkGroup(t, s, owner, "G", false, at(1), m)

	upload, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer upload.Rollback()
	var pid int
	if err := upload.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := upload.ExecContext(ctx, `INSERT INTO files (chat_id, uploader_id, state, blob_key, created_at)
		VALUES ($1, $2, 'uploading', 'k', 0)`, id, m.ID); err != nil {
		t.Fatal(err)
	}
	removed := make(chan error, 1)
	go func() {
		_, err := kick(s, id, owner, m, 2)
		removed <- err
	}()
	for {
		select {
		case err := <-removed:
			if err != nil {
				t.Fatalf("the removal beside the upload: %v", err)
			}
			return
		case <-time.After(time.Millisecond):
		}
		var blocked int
		if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))`, pid).Scan(&blocked); err != nil {
			t.Fatal(err)
		}
		if blocked > 0 {
			t.Fatal("the removal waits for a transaction that only inserted a row referring to the chat")
		}
	}
}

func TestAccountChanges(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ann, ben, stranger := mkUser(t, s, "Ann"), mkUser(t, s, "Ben"), mkUser(t, s, "Stranger")
		g := mkGroup(t, s, ann, "G", false, at(1), ben)
		p := mkPrivate(t, s, ann, stranger, at(1))

		if err := s.RenameUser(ctx, ann.ID, "Annabel"); err != nil {
			t.Fatal(err)
		}
		if found, _ := s.SearchUsers(ctx, chat.UserSearch{ViewerID: ben.ID, Prefix: "annab", Limit: 10}); len(found) != 1 || found[0].Name != "Annabel" {
			t.Errorf("search by the new name: %+v", found)
		}
		if m := members(t, s, g)[ann.ID]; m.Name != "Annabel" {
			t.Errorf("member row after the rename: %+v", m)
		}
		if err := s.SetPasswordHash(ctx, ann.ID, "new-hash"); err != nil {
			t.Fatal(err)
		}
		if u, _ := s.UserByID(ctx, ann.ID); u.PasswordHash != "new-hash" {
			t.Errorf("password hash: got %q", u.PasswordHash)
		}
		if ids, err := s.ChatIDsOf(ctx, ann.ID); err != nil || !slices.Equal(ids, []int64{g, p}) {
			t.Errorf("chats of ann: got %v, %v; want %v", ids, err, []int64{g, p})
		}

		// Sessions: revoke all but one.
		var sids []int64
		for range 3 {
			x, err := s.CreateSession(ctx, chat.Session{UserID: ann.ID, CreatedAt: at(2), LastSeenAt: at(2), ExpiresAt: at(10_000)}, randomHash())
			if err != nil {
				t.Fatal(err)
			}
			sids = append(sids, x.ID)
		}
		revoked, err := s.RevokeOtherSessions(ctx, ann.ID, sids[1], at(3))
		if slices.Sort(revoked); err != nil || !slices.Equal(revoked, []int64{sids[0], sids[2]}) {
			t.Errorf("revoke the others: got %v, %v; want %v", revoked, err, []int64{sids[0], sids[2]})
		}
		if live, _ := s.ListSessions(ctx, ann.ID, at(3)); len(live) != 1 || live[0].ID != sids[1] {
			t.Errorf("live sessions: %+v, want only the kept one", live)
		}

		// Last seen moves forward only; it shows in member rows; UserFor says who shares a chat.
		if err := s.TouchUser(ctx, ben.ID, at(50)); err != nil {
			t.Fatal(err)
		}
		if err := s.TouchUser(ctx, ben.ID, at(40)); err != nil {
			t.Fatal(err)
		}
		if m := members(t, s, g)[ben.ID]; m.LastSeenAt == nil || !m.LastSeenAt.Equal(at(50)) {
			t.Errorf("ben's last seen in the member list: %v, want %v", m.LastSeenAt, at(50))
		}
		if m := members(t, s, g)[ann.ID]; m.LastSeenAt != nil {
			t.Errorf("ann was never seen: %v", m.LastSeenAt)
		}
		for _, c := range []struct {
			viewer chat.User
			shared bool
		}{{ann, true}, {ben, true}, {stranger, false}} {
			u, shared, err := s.UserFor(ctx, c.viewer.ID, ben.ID)
			if err != nil || shared != c.shared || !u.LastSeenAt.Equal(at(50)) || u.Name != "Ben" {
				t.Errorf("ben as %s sees him: %+v, shared %v, %v; want shared %v", c.viewer.Name, u, shared, err, c.shared)
			}
		}
		_, _, err = s.UserFor(ctx, ann.ID, ben.ID+1_000_000)
		wantErr(t, "an unknown user", err, chat.ErrNotFound)
	})
}

// randomHash stands in for a refresh token's hash.
func randomHash() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// TestMigration00007: groups left without an owner before roles existed get one (the member
// there longest); roles take "admin" afterwards and nothing else; the migration goes down and
// up again (PostgreSQL's send_messages restored and replaced).
func TestMigration00007(t *testing.T) {
	eachUnmigrated(t, func(t *testing.T, ctx context.Context, name string, s *store.Store) {
		if err := store.MigrateTo(ctx, s, 6); err != nil {
			t.Fatal(err)
		}
		db := s.DB()
		var a, b, c int64
		for _, x := range []struct {
			id   *int64
			name string
		}{{&a, "a"}, {&b, "b"}, {&c, "c"}} {
			if err := db.QueryRow(`INSERT INTO users (email, name, name_fold, password_hash, created_at) VALUES ($1, $2, $2, 'x', 0) RETURNING id`,
				x.name+"@m7.test", x.name).Scan(x.id); err != nil {
				t.Fatal(err)
			}
		}
		group := func(title string) int64 {
			var id int64
			if err := db.QueryRow(`INSERT INTO chats (kind, title, title_fold, public, created_at, activity_at, last_seq, read_all_seq, member_count)
				VALUES ('group', $1, $1, FALSE, 0, 0, 0, 0, 2) RETURNING id`, title).Scan(&id); err != nil {
				t.Fatal(err)
			}
			return id
		}
		ownerless, owned := group("ownerless"), group("owned")
		for _, m := range []struct {
			chat, user, joined int64
			role               string
		}{{ownerless, a, 20, "member"}, {ownerless, b, 10, "member"}, {owned, c, 30, "owner"}, {owned, b, 5, "member"}} {
			if _, err := db.Exec(`INSERT INTO members (chat_id, user_id, role, joined_at, last_read_seq) VALUES ($1, $2, $3, $4, 0)`,
				m.chat, m.user, m.role, m.joined); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.Exec(`UPDATE members SET role = 'admin' WHERE chat_id = $1 AND user_id = $2`, owned, b); err == nil {
			t.Fatalf("before 00007 the role admin was accepted")
		}
		for range 2 { // up, then down and up again
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			roles := map[[2]int64]string{}
			rows, err := db.Query(`SELECT chat_id, user_id, role FROM members`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var ch, u int64
				var r string
				if err := rows.Scan(&ch, &u, &r); err != nil {
					t.Fatal(err)
				}
				roles[[2]int64{ch, u}] = r
			}
			rows.Close()
			want := map[[2]int64]string{{ownerless, a}: "member", {ownerless, b}: "owner", {owned, c}: "owner", {owned, b}: "member"}
			for k, w := range want {
				if roles[k] != w {
					t.Errorf("chat %d, user %d: role %q, want %q", k[0], k[1], roles[k], w)
				}
			}
			if _, err := db.Exec(`UPDATE members SET role = 'admin' WHERE chat_id = $1 AND user_id = $2`, owned, b); err != nil {
				t.Errorf("the role admin after 00007: %v", err)
			}
			if _, err := db.Exec(`UPDATE members SET role = 'king' WHERE chat_id = $1 AND user_id = $2`, owned, b); err == nil {
				t.Errorf("the role king was accepted")
			}
			// Sends work on the migrated schema (PostgreSQL: the replaced send_messages).
			if _, err := s.SendMessage(ctx, chat.NewMessage{ChatID: owned, SenderID: c, Body: "hi", ClientID: fmt.Sprint("m7-", name, len(roles)), Now: at(1)}); err != nil {
				t.Errorf("send after the migration: %v", err)
			}
			if err := store.MigrateTo(ctx, s, 6); err != nil {
				t.Fatalf("down to 6: %v", err)
			}
			if _, err := db.Exec(`UPDATE members SET role = 'member' WHERE chat_id = $1 AND user_id = $2`, ownerless, b); err != nil {
				t.Fatal(err)
			}
		}
	})
}
