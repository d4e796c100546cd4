package store_test

import (
	"context"
	"testing"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
)

// TestSharedUsers: of the ids asked, only the viewer and users who share a chat with them come
// back (a public group's strangers, unknown and deleted users do not), each with last seen.
func TestSharedUsers(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		viewer, peer, grouped, stranger, gone := mkUser(t, s, "Viewer"), mkUser(t, s, "Peer"), mkUser(t, s, "Grouped"),
			mkUser(t, s, "Stranger"), mkUser(t, s, "Gone")
		mkPrivate(t, s, viewer, peer, at(1))
		mkGroup(t, s, viewer, "team", false, at(2), grouped, gone)
		mkGroup(t, s, stranger, "elsewhere", true, at(3))
		if err := s.TouchUser(ctx, peer.ID, at(9)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteUser(ctx, gone.ID, at(10)); err != nil {
			t.Fatal(err)
		}
		got, err := s.SharedUsers(ctx, viewer.ID, []int64{stranger.ID, grouped.ID, peer.ID, viewer.ID, gone.ID, stranger.ID + 1_000_000})
		if err != nil {
			t.Fatal(err)
		}
		want := []chat.SeenUser{{ID: viewer.ID}, {ID: peer.ID, LastSeenAt: at(9)}, {ID: grouped.ID}}
		if len(got) != len(want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		for i := range want {
			if got[i].ID != want[i].ID || !got[i].LastSeenAt.Equal(want[i].LastSeenAt) {
				t.Errorf("user %d: got %+v, want %+v", i, got[i], want[i])
			}
		}
		if got, err := s.SharedUsers(ctx, stranger.ID, []int64{viewer.ID, peer.ID}); err != nil || len(got) != 0 {
			t.Errorf("a stranger shares with nobody: %+v, %v", got, err)
		}
	})
}
