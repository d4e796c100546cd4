package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
)

// eachBackendWith runs fn on every backend with n handles on one fresh database, each opened
// with opts, as n instances of a deployment would share it.
func eachBackendWith(t *testing.T, n int, opts store.Options, fn func(t *testing.T, handles []*store.Store)) {
	t.Helper()
	t.Parallel()
	for name, url := range migratedURLs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			u := url(t)
			handles := make([]*store.Store, n)
			for i := range handles {
				handles[i] = openWith(t, u, opts)
			}
			fn(t, handles)
		})
	}
}

// wantTooMany checks that err refuses a change because user already belongs to the most chats.
func wantTooMany(t *testing.T, what string, err error, user chat.User) {
	t.Helper()
	var full *chat.TooManyChatsError
	if !errors.As(err, &full) || full.UserID != user.ID {
		t.Errorf("%s: got error %v, want user %d's chats full", what, err, user.ID)
	}
}

func chatCount(t *testing.T, s *store.Store, u chat.User) int {
	t.Helper()
	chats, err := s.ChatsOf(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return len(chats)
}

// TestUserChatLimit: every way of becoming a member (creating a group or being among its first
// members, opening a private chat from either side, being invited, joining) is refused for a
// user who already belongs to MaxUserChats chats, and leaves nothing behind; leaving frees a
// place.
func TestUserChatLimit(t *testing.T) {
	const max = 3
	eachBackendWith(t, 1, store.Options{MaxUserChats: max}, func(t *testing.T, h []*store.Store) {
		s, ctx := h[0], context.Background()
		u, a, b, c := mkUser(t, s, "U"), mkUser(t, s, "A"), mkUser(t, s, "B"), mkUser(t, s, "C")
		g1 := mkGroup(t, s, u, "G1", false, at(1))
		priv := mkPrivate(t, s, u, a, at(2))
		g2 := mkGroup(t, s, a, "G2", false, at(3), u) // u reaches the cap as a first member
		if n := chatCount(t, s, u); n != max {
			t.Fatalf("u belongs to %d chats, want %d", n, max)
		}

		_, err := s.CreateGroup(ctx, chat.NewGroup{CreatorID: u.ID, Title: "G3", Now: at(4)})
		wantTooMany(t, "create a group", err, u)
		_, err = s.CreateGroup(ctx, chat.NewGroup{CreatorID: b.ID, Title: "With U", MemberIDs: []int64{c.ID, u.ID}, Now: at(4)})
		wantTooMany(t, "create a group with u as a first member", err, u)
		_, _, err = s.CreatePrivate(ctx, u.ID, b.ID, at(4))
		wantTooMany(t, "open a private chat", err, u)
		_, _, err = s.CreatePrivate(ctx, b.ID, u.ID, at(4))
		wantTooMany(t, "be opened a private chat", err, u)
		open := mkGroup(t, s, b, "Open", true, at(5))
		_, err = s.AddMember(ctx, open, u.ID, u.ID, chat.SysMemberJoined, at(6))
		wantTooMany(t, "join", err, u)
		_, err = s.AddMember(ctx, open, u.ID, b.ID, chat.SysMemberInvited, at(6))
		wantTooMany(t, "be invited", err, u)
		if n := chatCount(t, s, u); n != max {
			t.Errorf("u belongs to %d chats after the refusals, want %d", n, max)
		}
		if n, want := chatCount(t, s, b), 1; n != want {
			t.Errorf("b belongs to %d chats, want %d: a refused creation left a chat behind", n, want)
		}
		if got := chatFor(t, s, b, open); got.MemberCount != 1 || got.LastSeq != 1 {
			t.Errorf("a refused join changed the group: %d members, last seq %d; want 1, 1", got.MemberCount, got.LastSeq)
		}

		// What adds no membership still works: the existing private chat, an existing member.
		if id, created, err := s.CreatePrivate(ctx, a.ID, u.ID, at(7)); err != nil || created || id != priv {
			t.Errorf("open the existing private chat: %d, %v, %v; want %d, false", id, created, err, priv)
		}
		_, err = s.AddMember(ctx, g2, u.ID, a.ID, chat.SysMemberInvited, at(7))
		wantErr(t, "invite a member at the cap", err, chat.ErrAlreadyMember)
		// The cap is the joining user's: u at the cap may still invite others.
		if _, err := s.AddMember(ctx, g1, c.ID, u.ID, chat.SysMemberInvited, at(8)); err != nil {
			t.Errorf("a user at the cap invites another: %v", err)
		}

		if _, _, err := s.RemoveMember(ctx, g1, u.ID, at(9)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddMember(ctx, open, u.ID, u.ID, chat.SysMemberJoined, at(10)); err != nil {
			t.Errorf("join after leaving a group: %v", err)
		}
		_, err = s.AddMember(ctx, g1, u.ID, c.ID, chat.SysMemberInvited, at(11))
		wantTooMany(t, "back at the cap", err, u)

		// The migration counted the chats that existed before it: the demo's First (user 1)
		// is in 3 chats, Second (user 2) in 2.
		_, err = s.CreateGroup(ctx, chat.NewGroup{CreatorID: 1, Title: "Fourth", Now: at(12)})
		wantTooMany(t, "demo user in 3 chats", err, chat.User{ID: 1})
		if _, err := s.CreateGroup(ctx, chat.NewGroup{CreatorID: 2, Title: "Third", Now: at(12)}); err != nil {
			t.Errorf("demo user in 2 chats: %v", err)
		}
	})
}

// TestUserChatLimitConcurrent: joins of one user racing on two instances stop exactly at the
// cap, and groups created at once with the same members in different orders neither deadlock
// nor miscount.
func TestUserChatLimitConcurrent(t *testing.T) {
	const max, groups = 5, 12
	eachBackendWith(t, 2, store.Options{MaxUserChats: max}, func(t *testing.T, h []*store.Store) {
		ctx := context.Background()
		v := mkUser(t, h[0], "V")
		ids := make([]int64, groups)
		for i := range ids {
			owner := mkUser(t, h[0], fmt.Sprint("Owner", i))
			ids[i] = mkGroup(t, h[0], owner, fmt.Sprint("G", i), true, at(i))
		}
		errs := make([]error, groups)
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Go(func() { _, errs[i] = h[i%2].AddMember(ctx, id, v.ID, v.ID, chat.SysMemberJoined, at(100)) })
		}
		wg.Wait()
		joined := 0
		for _, err := range errs {
			var full *chat.TooManyChatsError
			switch {
			case err == nil:
				joined++
			case !errors.As(err, &full):
				t.Errorf("join: %v, want success or the cap", err)
			}
		}
		if joined != max || chatCount(t, h[0], v) != max {
			t.Errorf("%d joins succeeded and v belongs to %d chats, want %d", joined, chatCount(t, h[0], v), max)
		}

		x, y, z := mkUser(t, h[0], "X"), mkUser(t, h[0], "Y"), mkUser(t, h[0], "Z")
		orders := [][]int64{{x.ID, y.ID, z.ID}, {z.ID, y.ID, x.ID}, {y.ID, z.ID, x.ID}, {x.ID, z.ID, y.ID}}
		for i := range 4 {
			creator := mkUser(t, h[0], fmt.Sprint("Creator", i))
			wg.Go(func() {
				_, err := h[i%2].CreateGroup(ctx, chat.NewGroup{CreatorID: creator.ID, Title: "Same", MemberIDs: orders[i], Now: at(200)})
				if err != nil {
					t.Errorf("create group %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		for _, u := range []chat.User{x, y, z} {
			if n := chatCount(t, h[0], u); n != 4 {
				t.Errorf("user %s belongs to %d chats, want 4", u.Name, n)
			}
		}
		// The counts the cap relies on match the memberships: one more group each is the 5th.
		if _, err := h[1].CreateGroup(ctx, chat.NewGroup{CreatorID: x.ID, Title: "Fifth", MemberIDs: []int64{y.ID, z.ID}, Now: at(300)}); err != nil {
			t.Fatalf("the 5th chat: %v", err)
		}
		_, err := h[0].CreateGroup(ctx, chat.NewGroup{CreatorID: v.ID, Title: "Sixth", MemberIDs: []int64{y.ID}, Now: at(301)})
		wantTooMany(t, "the 6th chat", err, v)
	})
}
