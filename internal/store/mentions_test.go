package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
)

// sendMention stores a message mentioning users (and @all).
func sendMention(s *store.Store, chatID int64, from chat.User, all bool, n int, mentioned ...chat.User) (chat.Sent, error) {
	ids := make([]int64, len(mentioned))
	for i, u := range mentioned {
		ids[i] = u.ID
	}
	return s.SendMessage(context.Background(), chat.NewMessage{ChatID: chatID, SenderID: from.ID, Body: "hey",
		ClientID: fmt.Sprintf("m%d", clientSeq.Add(1)), Mentions: ids, MentionAll: all, Now: at(n)})
}

func unreadMentions(t *testing.T, s *store.Store, u chat.User, chatID int64) int64 {
	t.Helper()
	return chatFor(t, s, u, chatID).UnreadMentions
}

// TestMentions: mentions are kept for members only, carried by the message wherever it is
// read, counted unread per member and cleared by reading and by deleting the message.
func TestMentions(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner, a, b, c, x := mkUser(t, s, "owner"), mkUser(t, s, "a"), mkUser(t, s, "b"), mkUser(t, s, "c"), mkUser(t, s, "x")
		g := mkGroup(t, s, owner, "g", false, at(0), a, b, c)
		if _, err := kick(s, g, owner, c, 1); err != nil { // c is an ex-member
			t.Fatal(err)
		}

		// x was never a member, c is one no more: both are dropped; the order is kept.
		m1, err := sendMention(s, g, a, false, 2, x, b, c, owner)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int64{b.ID, owner.ID}; !slices.Equal(m1.Message.Mentions, want) {
			t.Errorf("stored mentions %v, want %v", m1.Message.Mentions, want)
		}
		msgs, _, err := s.History(ctx, chat.HistoryQuery{ChatID: g, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		if last := msgs[len(msgs)-1]; !slices.Equal(last.Mentions, []int64{b.ID, owner.ID}) || last.MentionAll {
			t.Errorf("history's message: mentions %v, all %v", last.Mentions, last.MentionAll)
		}
		if got := chatFor(t, s, b, g).LastMessage; got == nil || !slices.Equal(got.Mentions, []int64{b.ID, owner.ID}) {
			t.Errorf("the chat list's last message: %+v", got)
		}
		// A repeat of the send answers with the stored mentions.
		again, err := s.SendMessage(ctx, chat.NewMessage{ChatID: g, SenderID: a.ID, Body: "hey", ClientID: *m1.Message.ClientID, Now: at(3)})
		if err != nil || again.Created || !slices.Equal(again.Message.Mentions, []int64{b.ID, owner.ID}) {
			t.Errorf("repeat: %+v, %v", again, err)
		}

		// @all counts for everyone but its sender, once even when it also names the user.
		if _, err := sendMention(s, g, owner, true, 4, b); err != nil {
			t.Fatal(err)
		}
		// Sending reads everything before: the owner's mention is read by their @all.
		for _, w := range []struct {
			u    chat.User
			want int64
		}{{b, 2}, {owner, 0}, {a, 1}} {
			if got := unreadMentions(t, s, w.u, g); got != w.want {
				t.Errorf("%s: unread_mentions %d, want %d", w.u.Name, got, w.want)
			}
		}
		chats, err := s.ChatsOf(ctx, a.ID)
		if err != nil || len(chats) != 1 || chats[0].UnreadMentions != 1 {
			t.Errorf("a's chat list: %+v, %v", chats, err)
		}

		// A deleted message's mention counts no more.
		m3, err := sendMention(s, g, a, false, 6, b)
		if err != nil {
			t.Fatal(err)
		}
		if got := unreadMentions(t, s, b, g); got != 3 {
			t.Errorf("b before the delete: %d, want 3", got)
		}
		if _, err := s.DeleteMessage(ctx, g, m3.Message.Seq, a.ID, at(7)); err != nil {
			t.Fatal(err)
		}
		if got := unreadMentions(t, s, b, g); got != 2 {
			t.Errorf("b after the delete: %d, want 2", got)
		}
		if m := messageAt(t, s, g, m3.Message.Seq); len(m.Mentions) != 0 {
			t.Errorf("a deleted message keeps its mentions: %v", m.Mentions)
		}

		// Reading clears them, as far as read.
		r, err := s.MarkRead(ctx, g, b.ID, m1.Message.Seq)
		if err != nil || r.State.UnreadMentions != 1 {
			t.Errorf("b reads up to the first mention: %+v, %v", r.State, err)
		}
		r, err = s.MarkRead(ctx, g, b.ID, 1000)
		if err != nil || r.State.UnreadMentions != 0 || r.State.UnreadCount != 0 {
			t.Errorf("b reads all: %+v, %v", r.State, err)
		}
		if got := unreadMentions(t, s, b, g); got != 0 {
			t.Errorf("b after reading: %d", got)
		}
	})
}

// TestMentionAll: @all is for groups, and a group may keep it to its owner and admins.
func TestMentionAll(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner, admin, a := mkUser(t, s, "owner"), mkUser(t, s, "admin"), mkUser(t, s, "a")
		g := mkGroup(t, s, owner, "g", false, at(0), admin, a)
		if _, _, err := setRole(s, g, owner, admin, chat.RoleAdmin, 1); err != nil {
			t.Fatal(err)
		}
		if c := chatFor(t, s, a, g); c.MentionAll != chat.MentionAllEveryone {
			t.Errorf("a new group's mention_all: %q", c.MentionAll)
		}
		if m, err := sendMention(s, g, a, true, 2); err != nil || !m.Message.MentionAll {
			t.Errorf("a member's @all where everyone may: %+v, %v", m, err)
		}

		yes := true
		msgs, err := s.UpdateChat(ctx, chat.ChatUpdate{ChatID: g, ActorID: owner.ID, MentionAllAdmins: &yes, Now: at(3)})
		if err != nil || len(msgs) != 0 {
			t.Fatalf("keep @all to admins: %v, %v", msgs, err)
		}
		if c := chatFor(t, s, a, g); c.MentionAll != chat.MentionAllAdmins {
			t.Errorf("mention_all after the change: %q", c.MentionAll)
		}
		last := chatFor(t, s, a, g).LastSeq
		_, err = sendMention(s, g, a, true, 4, owner)
		wantErr(t, "a member's @all", err, chat.ErrMentionAllRefused)
		if got := chatFor(t, s, a, g).LastSeq; got != last {
			t.Errorf("a refused @all stored something: last seq %d, want %d", got, last)
		}
		for _, u := range []chat.User{owner, admin} {
			if m, err := sendMention(s, g, u, true, 5); err != nil || !m.Message.MentionAll {
				t.Errorf("%s's @all: %+v, %v", u.Name, m, err)
			}
		}
		// A member's plain mentions stay allowed.
		if _, err := sendMention(s, g, a, false, 6, owner); err != nil {
			t.Errorf("a member's mention: %v", err)
		}

		p := mkPrivate(t, s, owner, a, at(7))
		_, err = sendMention(s, p, owner, true, 8)
		wantErr(t, "@all in a private chat", err, chat.ErrMentionAllRefused)
		if m, err := sendMention(s, p, owner, false, 9, a); err != nil || !slices.Equal(m.Message.Mentions, []int64{a.ID}) {
			t.Errorf("a mention in a private chat: %+v, %v", m, err)
		}
		if c := chatFor(t, s, a, p); c.MentionAll != "" || c.UnreadMentions != 1 {
			t.Errorf("private chat: mention_all %q, unread_mentions %d", c.MentionAll, c.UnreadMentions)
		}
	})
}

// TestMigration00011: down to 10 and up again with mentions stored, and on PostgreSQL an
// instance not yet upgraded (calling send_messages with 00009's arguments) still sends.
func TestMigration00011(t *testing.T) {
	eachUnmigrated(t, func(t *testing.T, ctx context.Context, name string, s *store.Store) {
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		a, b := mkUser(t, s, "a"), mkUser(t, s, "b")
		g := mkGroup(t, s, a, "g", false, at(0), b)
		if _, err := sendMention(s, g, a, true, 1, b); err != nil {
			t.Fatal(err)
		}
		if name == "postgres" {
			var status int
			err := s.DB().QueryRow(`SELECT status FROM send_messages($1, $2, $3, $4, $5, $6, $7, $8)`,
				[]int64{g}, []int64{a.ID}, []string{"old-instance"}, []string{"hi"}, []int64{at(2).UnixMilli()},
				[]int64{}, []int64{}, []int64{0}).Scan(&status)
			if err != nil || status != 0 {
				t.Errorf("a send with 00009's arguments: status %d, %v", status, err)
			}
		}
		for _, v := range []int64{10, 11} {
			if err := store.MigrateTo(ctx, s, v); err != nil {
				t.Fatalf("migrate to %d: %v", v, err)
			}
		}
		if c := chatFor(t, s, b, g); c.UnreadMentions != 0 || c.UnreadCount == 0 {
			t.Errorf("after down and up, mentions are gone with their columns: %+v", c)
		}
		if _, err := sendMention(s, g, a, false, 3, b); err != nil {
			t.Fatal(err)
		}
		if c := chatFor(t, s, b, g); c.UnreadMentions != 1 {
			t.Errorf("a mention after down and up: unread_mentions %d", c.UnreadMentions)
		}
	})
}
