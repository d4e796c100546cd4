package chat_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/wschat/chat/internal/auth"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
	"github.com/wschat/chat/internal/testdb"
)

// Races between two actors on one group, made deterministic: the store runs the other actor's
// change right before the one under test reaches its transaction, after the service has
// loaded the chat and checked what it could. That is the order in which two requests on
// different instances meet when the second's checks read the chat just before the first
// commits.

// interposed is a store that runs once, before its next AddMember or RemoveFromChat, the
// change of another actor; or right after its next AddMember has committed.
type interposed struct {
	*store.Store
	before, after func()
}

func (s *interposed) interpose() {
	if f := s.before; f != nil {
		s.before = nil
		f()
	}
}

func (s *interposed) AddMember(ctx context.Context, chatID, userID, actorID int64, event string, now time.Time) (chat.Message, error) {
	s.interpose()
	m, err := s.Store.AddMember(ctx, chatID, userID, actorID, event, now)
	if f := s.after; f != nil {
		s.after = nil
		f()
	}
	return m, err
}

func (s *interposed) RemoveFromChat(ctx context.Context, r chat.Removal) (chat.Removed, error) {
	s.interpose()
	return s.Store.RemoveFromChat(ctx, r)
}

type raceWorld struct {
	st                   *interposed
	svc                  *chat.Service
	owner, ann, stranger chat.Principal
}

func eachRaceWorld(t *testing.T, fn func(t *testing.T, w *raceWorld)) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := "sqlite://" + filepath.Join(t.TempDir(), "chat.db")
			if db == "postgres" {
				url = testdb.Postgres(t)
			}
			st := openStore(t, url)
			w := &raceWorld{st: &interposed{Store: st}}
			w.svc = chat.NewService(w.st, nil, chat.Options{PasswordParams: auth.FastPasswordParams})
			for _, p := range []*chat.Principal{&w.owner, &w.ann, &w.stranger} {
				u, err := st.CreateUser(ctx, chat.User{Email: time.Now().Format("150405.000000000") + "@races.test", Name: "U", PasswordHash: "x", CreatedAt: time.Now()})
				if err != nil {
					t.Fatal(err)
				}
				*p = chat.Principal{UserID: u.ID}
			}
			fn(t, w)
		})
	}
}

func (w *raceWorld) group(t *testing.T, public bool) int64 {
	t.Helper()
	d, err := w.svc.CreateGroup(context.Background(), w.owner, "G", public, []int64{w.ann.UserID})
	if err != nil {
		t.Fatal(err)
	}
	return d.ID
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := chat.ErrorCode(err); got != code {
		t.Errorf("%s: got %v (code %q), want %q", what, err, got, code)
	}
}

// TestJoinWhileMadePrivate: a join whose group is made private after the service saw it
// public, before the join commits, is refused as a join of a private group is (404), and
// nobody joined. The join used to be stored: the store did not check the group was public.
func TestJoinWhileMadePrivate(t *testing.T) {
	eachRaceWorld(t, func(t *testing.T, w *raceWorld) {
		ctx := context.Background()
		id := w.group(t, true)
		private := false
		w.st.before = func() {
			if _, err := w.svc.UpdateChat(ctx, w.owner, id, chat.ChatPatch{Public: &private}); err != nil {
				t.Errorf("make the group private: %v", err)
			}
		}
		_, err := w.svc.Join(ctx, w.stranger, id)
		wantCode(t, "join of a group made private meanwhile", err, chat.CodeNotFound)
		d, err := w.svc.Chat(ctx, w.owner, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Members) != 2 || d.LastMessage == nil || d.LastMessage.Event == nil || d.LastMessage.Event.Type != chat.SysVisibilityChanged {
			t.Errorf("after the refused join: %d members, last message %+v; want 2 and visibility_changed", len(d.Members), d.LastMessage)
		}
	})
}

// TestMembershipOfADeletedGroup: a join, an invitation or a leave whose group its owner
// deletes after the service loaded it answers 404, as it would a moment later, not 500.
func TestMembershipOfADeletedGroup(t *testing.T) {
	eachRaceWorld(t, func(t *testing.T, w *raceWorld) {
		ctx := context.Background()
		for _, c := range []struct {
			what string
			do   func(id int64) error
		}{
			{"join", func(id int64) error { _, err := w.svc.Join(ctx, w.stranger, id); return err }},
			{"invitation", func(id int64) error { _, err := w.svc.Invite(ctx, w.ann, id, w.stranger.UserID); return err }},
			{"leave", func(id int64) error { return w.svc.Leave(ctx, w.ann, id) }},
		} {
			id := w.group(t, true)
			w.st.before = func() {
				if err := w.svc.DeleteChat(ctx, w.owner, id); err != nil {
					t.Errorf("delete the group: %v", err)
				}
			}
			wantCode(t, c.what+" of a group deleted meanwhile", c.do(id), chat.CodeNotFound)
		}
	})
}

// TestJoinedThenDeleted: a join or an invitation that commits just before the owner deletes
// the group answers 404 as the deleted group does, not 200 with what is left of it (no title,
// no members), which the web client put in its list after the group's chat.removed.
func TestJoinedThenDeleted(t *testing.T) {
	eachRaceWorld(t, func(t *testing.T, w *raceWorld) {
		ctx := context.Background()
		for _, c := range []struct {
			what string
			do   func(id int64) (chat.ChatDetail, error)
		}{
			{"join", func(id int64) (chat.ChatDetail, error) { return w.svc.Join(ctx, w.stranger, id) }},
			{"invitation", func(id int64) (chat.ChatDetail, error) { return w.svc.Invite(ctx, w.ann, id, w.stranger.UserID) }},
		} {
			id := w.group(t, true)
			w.st.after = func() {
				if err := w.svc.DeleteChat(ctx, w.owner, id); err != nil {
					t.Errorf("delete the group: %v", err)
				}
			}
			d, err := c.do(id)
			if err == nil {
				t.Errorf("%s of a group deleted right after: %+v, want 404", c.what, d.ChatSummary)
				continue
			}
			wantCode(t, c.what+" of a group deleted right after", err, chat.CodeNotFound)
		}
	})
}
