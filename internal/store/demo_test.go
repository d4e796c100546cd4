package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/wschat/chat/internal/auth"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
)

func TestDemoData(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, err := s.UserByEmail(ctx, "first@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := auth.CheckPassword(u.PasswordHash, "password"); !ok || err != nil {
			t.Fatalf("demo password does not verify: %v %v", ok, err)
		}
		type want struct {
			title           string
			kind            string
			public          bool
			members         int
			lastSeq, myRead int64
			readAll, unread int64
		}
		for _, tc := range []struct {
			user  int64
			chats []want
		}{
			{1, []want{{"Random", "group", true, 2, 3, 3, 2, 0}, {"General", "group", false, 3, 4, 2, 2, 2}, {"Second", "private", false, 2, 3, 3, 2, 0}}},
			{2, []want{{"General", "group", false, 3, 4, 3, 2, 1}, {"First", "private", false, 2, 3, 2, 2, 1}}},
			{3, []want{{"Random", "group", true, 2, 3, 2, 2, 1}, {"General", "group", false, 3, 4, 4, 2, 0}}},
		} {
			chats, err := s.ChatsOf(ctx, tc.user)
			if err != nil {
				t.Fatal(err)
			}
			if len(chats) != len(tc.chats) {
				t.Fatalf("user %d: got %d chats, want %d", tc.user, len(chats), len(tc.chats))
			}
			for i, w := range tc.chats {
				c := chats[i]
				got := want{c.Title, c.Kind, c.Public, c.MemberCount, c.LastSeq, c.MyLastReadSeq, c.ReadAllSeq, c.UnreadCount}
				if got != w {
					t.Errorf("user %d chat %d:\n got  %+v\n want %+v", tc.user, i, got, w)
				}
				if c.LastMessage == nil || c.LastMessage.Seq != c.LastSeq {
					t.Errorf("user %d chat %q: last message %+v, want seq %d", tc.user, c.Title, c.LastMessage, c.LastSeq)
				}
			}
		}
	})
}

// TestCheapenDemoPasswords: the demo users who still have the demo password get its test-cost
// hash, which checks against the same password; a demo user who changed it keeps the new one.
func TestCheapenDemoPasswords(t *testing.T) {
	for _, h := range []string{store.DemoPasswordHash, store.DemoPasswordHashTest} {
		if ok, err := auth.CheckPassword(h, "password"); !ok || err != nil {
			t.Fatalf("%s does not check against the demo password: %v %v", h, ok, err)
		}
	}
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		second, err := s.UserByEmail(ctx, "second@example.com")
		if err != nil {
			t.Fatal(err)
		}
		changed, err := auth.HashPassword("changed", auth.FastPasswordParams)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetPasswordHash(ctx, second.ID, changed); err != nil {
			t.Fatal(err)
		}
		if err := s.CheapenDemoPasswords(ctx); err != nil {
			t.Fatal(err)
		}
		for email, want := range map[string]string{
			"first@example.com": store.DemoPasswordHashTest, "third@example.com": store.DemoPasswordHashTest, "second@example.com": changed,
		} {
			u, err := s.UserByEmail(ctx, email)
			if err != nil {
				t.Fatal(err)
			}
			if u.PasswordHash != want {
				t.Errorf("%s: hash %s, want %s", email, u.PasswordHash, want)
			}
		}
	})
}

// TestUnlockDemoPasswords: a demo that was off and is on again gives the demo password back
// to the demo users the lock took it from, and to no one else: not to a demo user who changed
// it, nor to a deleted demo account, nor to another account without a password.
func TestUnlockDemoPasswords(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := time.Now()
		changed, err := auth.HashPassword("changed", auth.FastPasswordParams)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetPasswordHash(ctx, 2, changed); err != nil { // second@
			t.Fatal(err)
		}
		if _, err := s.DeleteUser(ctx, 3, now); err != nil { // third@
			t.Fatal(err)
		}
		other, err := s.CreateUser(ctx, chat.User{Email: "nopassword@example.com", Name: "No password", CreatedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := s.LockDemoPasswords(ctx, now); err != nil || n != 1 {
			t.Fatalf("lock: %d, %v; want first@ alone", n, err)
		}
		for _, want := range []int64{1, 0} { // once, then nothing is left to unlock
			if n, err := s.UnlockDemoPasswords(ctx); err != nil || n != want {
				t.Fatalf("unlock: %d, %v; want %d", n, err, want)
			}
		}
		for id, want := range map[int64]string{1: store.DemoPasswordHash, 2: changed, 3: "", other.ID: ""} {
			u, err := s.UserByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if u.PasswordHash != want {
				t.Errorf("user %d (%s): hash %q, want %q", id, u.Email, u.PasswordHash, want)
			}
		}
	})
}
