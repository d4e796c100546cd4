package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
)

// upload begins and finishes an upload of size bytes into a chat, with generous quotas.
func upload(t *testing.T, s *store.Store, chatID int64, by chat.User, size int64, now time.Time) chat.File {
	t.Helper()
	f, err := tryUpload(s, chatID, by, size, now, 1<<40, 1<<40)
	if err != nil {
		t.Fatalf("upload %d bytes to chat %d: %v", size, chatID, err)
	}
	return f
}

var keySeq atomic.Int64

func tryUpload(s *store.Store, chatID int64, by chat.User, size int64, now time.Time, userDaily, chatTotal int64) (chat.File, error) {
	ctx := context.Background()
	key := fmt.Sprintf("k/%d", keySeq.Add(1))
	id, err := s.BeginUpload(ctx, chat.NewUpload{ChatID: chatID, UploaderID: by.ID, Key: key, Now: now})
	if err != nil {
		return chat.File{}, err
	}
	return s.FinishUpload(ctx, chat.File{ID: id, ChatID: chatID, UploaderID: by.ID, Name: "a.png", Size: size,
		ContentType: "image/png", SHA256: []byte{1, 2, 3}, Width: 4, Height: 3, Orientation: 1,
		Thumb: chat.Thumbnail{State: chat.ThumbPending}}, now.Add(-24*time.Hour), userDaily, chatTotal)
}

// sendFiles sends a message carrying files through the send path.
func sendFiles(t *testing.T, s *store.Store, chatID int64, from chat.User, body string, now time.Time, fileIDs ...int64) chat.Sent {
	t.Helper()
	sent, err := s.SendMessage(context.Background(), chat.NewMessage{ChatID: chatID, SenderID: from.ID, Body: body,
		ClientID: fmt.Sprintf("c%d", clientSeq.Add(1)), FileIDs: fileIDs, Now: now})
	if err != nil {
		t.Fatalf("send with files %v to chat %d: %v", fileIDs, chatID, err)
	}
	return sent
}

func TestFileUploads(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b, out := mkUser(t, s, "A"), mkUser(t, s, "B"), mkUser(t, s, "Out")
		g := mkGroup(t, s, a, "files", false, at(0), b)

		_, err := s.BeginUpload(ctx, chat.NewUpload{ChatID: g, UploaderID: out.ID, Key: "x/1", Now: at(1)})
		wantErr(t, "a non-member begins an upload", err, chat.ErrNotMember)
		_, err = s.BeginUpload(ctx, chat.NewUpload{ChatID: g + 1000, UploaderID: a.ID, Key: "x/2", Now: at(1)})
		wantErr(t, "an upload to a missing chat", err, chat.ErrNotFound)

		f := upload(t, s, g, a, 100, at(2))
		if f.State != chat.FileStored || f.Size != 100 || f.Name != "a.png" || f.Width != 4 || f.UploaderID != a.ID ||
			f.URL != chat.FileURL(f.ID) || f.ThumbnailURL != chat.ThumbnailURL(f.ID) || !f.CreatedAt.Equal(at(2)) {
			t.Errorf("stored file: %+v", f)
		}

		// Visibility: the uploader while unattached; every member once attached; nobody else.
		visible := func(who chat.User) bool {
			_, err := s.FileFor(ctx, who.ID, f.ID)
			if err != nil && !errors.Is(err, chat.ErrNotFound) {
				t.Fatal(err)
			}
			return err == nil
		}
		if !visible(a) || visible(b) || visible(out) {
			t.Errorf("unattached: uploader %v, member %v, outsider %v; want true, false, false", visible(a), visible(b), visible(out))
		}
		sendFiles(t, s, g, a, "with a file", at(3), f.ID)
		if !visible(a) || !visible(b) || visible(out) {
			t.Errorf("attached: uploader %v, member %v, outsider %v; want true, true, false", visible(a), visible(b), visible(out))
		}
		if _, _, err := s.RemoveMember(ctx, g, b.ID, at(4)); err != nil {
			t.Fatal(err)
		}
		if visible(b) {
			t.Errorf("an ex-member still sees the file")
		}

		// An upload by someone who left meanwhile is not stored.
		id, err := s.BeginUpload(ctx, chat.NewUpload{ChatID: g, UploaderID: a.ID, Key: "x/3", Now: at(5)})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.RemoveMember(ctx, g, a.ID, at(6)); err != nil {
			t.Fatal(err)
		}
		_, err = s.FinishUpload(ctx, chat.File{ID: id, ChatID: g, UploaderID: a.ID, Size: 1}, at(-1000), 1<<40, 1<<40)
		wantErr(t, "finishing after leaving", err, chat.ErrNotMember)
	})
}

func TestFileQuotas(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := mkUser(t, s, "A"), mkUser(t, s, "B")
		g := mkGroup(t, s, a, "quota", false, at(0), b)
		other := mkGroup(t, s, a, "other", false, at(0))

		// The day's quota: 300 bytes; 100 were uploaded more than a day ago and do not count.
		upload(t, s, other, a, 100, at(0))
		day := at(0).Add(24*time.Hour + time.Second)
		if _, err := tryUpload(s, other, a, 200, day, 300, 1<<40); err != nil {
			t.Fatal(err)
		}
		if _, err := tryUpload(s, g, a, 100, day.Add(time.Second), 300, 1<<40); err != nil {
			t.Fatalf("up to the quota: %v", err)
		}
		_, err := tryUpload(s, g, a, 1, day.Add(2*time.Second), 300, 1<<40)
		var q *chat.QuotaError
		if !errors.As(err, &q) || q.Chat || q.Used != 300 || !q.Oldest.Equal(day) {
			t.Errorf("over the day's quota: %v (%+v), want a user QuotaError with 300 used since %v", err, q, day)
		}
		u, err := s.FileUsage(ctx, a.ID, g, day.Add(2*time.Second).Add(-24*time.Hour))
		if err != nil || u.UserBytes != 300 || u.ChatBytes != 100 {
			t.Errorf("usage: %+v, %v; want 300 of the user, 100 in the chat", u, err)
		}

		// The chat's total counts every uploader.
		if _, err := tryUpload(s, g, b, 150, day, 1<<40, 250); err != nil {
			t.Fatal(err)
		}
		_, err = tryUpload(s, g, b, 1, day, 1<<40, 250)
		if !errors.As(err, &q) || !q.Chat || q.Used != 250 {
			t.Errorf("over the chat's total: %v, want a chat QuotaError with 250 used", err)
		}
		// A refused upload leaves its row to the caller, which drops it.
		var n int
		s.DB().QueryRow(`SELECT count(*) FROM files WHERE state = 'uploading'`).Scan(&n)
		if n != 2 {
			t.Errorf("%d uploads in progress after two refusals, want 2 (the service drops them)", n)
		}
	})
}

// Uploads finishing at once on several connections never pass the chat's total together.
func TestFileQuotaConcurrent(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		users := make([]chat.User, 8)
		for i := range users {
			users[i] = mkUser(t, s, "U")
		}
		g := mkGroup(t, s, users[0], "race", false, at(0), users[1:]...)
		var wg sync.WaitGroup
		var mu sync.Mutex
		stored := 0
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := tryUpload(s, g, users[i%len(users)], 100, at(1), 1<<40, 500)
				var q *chat.QuotaError
				switch {
				case err == nil:
					mu.Lock()
					stored++
					mu.Unlock()
				case errors.As(err, &q), errors.Is(err, chat.ErrUnavailable):
				default:
					t.Errorf("upload: %v", err)
				}
			}()
		}
		wg.Wait()
		if stored != 5 {
			t.Errorf("%d uploads of 100 bytes stored under a total of 500, want 5", stored)
		}
	})
}

func TestFileThumbnailsAndExpiry(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := mkUser(t, s, "A")
		g := mkGroup(t, s, a, "thumbs", false, at(0))
		f := upload(t, s, g, a, 1000, at(1))

		ids, err := s.PendingThumbnails(ctx, at(2), at(2), 10)
		if err != nil || len(ids) != 1 || ids[0] != f.ID {
			t.Fatalf("pending thumbnails: %v, %v", ids, err)
		}
		got, ok, err := s.ClaimThumbnail(ctx, f.ID, at(2), at(-300))
		if err != nil || !ok || got.ID != f.ID || got.Key != f.Key {
			t.Fatalf("first claim: %v %v %+v", ok, err, got)
		}
		if _, ok, err := s.ClaimThumbnail(ctx, f.ID, at(3), at(-297)); ok || err != nil {
			t.Errorf("a second claim while the first holds: %v, %v", ok, err)
		}
		if ids, _ := s.PendingThumbnails(ctx, at(3), at(-297), 10); len(ids) != 0 {
			t.Errorf("a claimed thumbnail is listed as pending: %v", ids)
		}
		// The claim lapses: another instance may take it over.
		if _, ok, err := s.ClaimThumbnail(ctx, f.ID, at(400), at(100)); !ok || err != nil {
			t.Errorf("claim after the first lapsed: %v, %v", ok, err)
		}
		if err := s.SetThumbnail(ctx, f.ID, chat.Thumbnail{State: chat.ThumbReady, Key: f.Key + ".thumb", ContentType: "image/jpeg", Size: 50, SHA256: []byte{9}}); err != nil {
			t.Fatal(err)
		}
		got, err = s.FileFor(ctx, a.ID, f.ID)
		if err != nil || got.Thumb.State != chat.ThumbReady || got.Thumb.Size != 50 || !got.Thumb.Claimed.IsZero() {
			t.Errorf("after the thumbnail: %+v, %v", got.Thumb, err)
		}
		if _, ok, _ := s.ClaimThumbnail(ctx, f.ID, at(500), at(500)); ok {
			t.Errorf("a made thumbnail was claimed again")
		}
		if n, err := s.StoredBytes(ctx); err != nil || n != 1050 {
			t.Errorf("stored bytes: %d, %v; want 1050", n, err)
		}

		// Expiry: unattached files older than the cut-off and uploads that never finished;
		// attached ones never, until their message is gone.
		attached := upload(t, s, g, a, 10, at(1))
		m := sendFiles(t, s, g, a, "x", at(2), attached.ID)
		stale, err := s.BeginUpload(ctx, chat.NewUpload{ChatID: g, UploaderID: a.ID, Key: "x/stale", Now: at(1)})
		if err != nil {
			t.Fatal(err)
		}
		fresh := upload(t, s, g, a, 10, at(100))
		exp, err := s.ExpiredFiles(ctx, at(50), at(50), 10)
		if err != nil {
			t.Fatal(err)
		}
		var expIDs []int64
		for _, e := range exp {
			expIDs = append(expIDs, e.ID)
		}
		if fmt.Sprint(expIDs) != fmt.Sprint([]int64{f.ID, stale}) {
			t.Errorf("expired: %v, want [%d %d] (not the attached %d nor the fresh %d)", expIDs, f.ID, stale, attached.ID, fresh.ID)
		}
		for _, id := range expIDs {
			if ok, err := s.DeleteExpired(ctx, id); !ok || err != nil {
				t.Errorf("delete %d: %v, %v", id, ok, err)
			}
			if ok, _ := s.DeleteExpired(ctx, id); ok {
				t.Errorf("file %d deleted twice", id)
			}
		}
		// A message's deletion detaches its files, which expire at once.
		if _, err := s.DB().Exec(`DELETE FROM messages WHERE id = $1`, m.Message.ID); err != nil {
			t.Fatal(err)
		}
		if exp, _ := s.ExpiredFiles(ctx, at(0), at(0), 10); len(exp) != 1 || exp[0].ID != attached.ID {
			t.Errorf("after its message went: %v, want file %d", exp, attached.ID)
		}
		if _, err := s.FileFor(ctx, a.ID, attached.ID); !errors.Is(err, chat.ErrNotFound) {
			t.Errorf("a detached file is still downloadable: %v", err)
		}
	})
}
