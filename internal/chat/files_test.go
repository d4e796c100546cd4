package chat_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/chat/internal/auth"
	"github.com/wschat/chat/internal/blob"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/store"
	"github.com/wschat/chat/internal/testdb"
)

// fileWorld is two instances' file services over one database and one blob store, with a
// clock the test moves.
type fileWorld struct {
	st     *store.Store
	blobs  chat.Blobs
	svc    *chat.Service
	a, b   *chat.FileService
	offset atomic.Int64 // added to the real clock
	made   atomic.Int64 // thumbnails made, on either instance
	owner  chat.Principal
	chatID int64
}

// openStore opens the store at url, migrated, and closes it when the test ends.
func openStore(t *testing.T, url string) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

func newFileWorld(t *testing.T, db string) *fileWorld {
	t.Helper()
	ctx := context.Background()
	w := &fileWorld{}
	var url string
	if db == "sqlite" {
		url = "sqlite://" + filepath.Join(t.TempDir(), "chat.db")
		d, err := blob.NewDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		w.blobs = d
	} else {
		url = testdb.Postgres(t)
		s3 := testdb.S3(t)
		b, err := blob.Open(ctx, s3.URL("files"), "", "", "")
		if err != nil {
			t.Fatal(err)
		}
		w.blobs = b
	}
	w.st = openStore(t, url)
	st := w.st
	now := func() time.Time { return time.Now().Add(time.Duration(w.offset.Load())) }
	w.svc = chat.NewService(st, nil, chat.Options{PasswordParams: auth.FastPasswordParams, Now: now})
	obs := chat.FileObserver{Thumbnail: func(time.Duration, bool) { w.made.Add(1) }}
	w.a = chat.NewFileService(w.svc, st, w.blobs, chat.FileOptions{Observer: obs})
	w.b = chat.NewFileService(w.svc, st, w.blobs, chat.FileOptions{Observer: obs})
	u, err := st.CreateUser(ctx, chat.User{Email: "owner@files.test", Name: "Owner", PasswordHash: "x", CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	w.owner = chat.Principal{UserID: u.ID}
	d, err := w.svc.CreateGroup(ctx, w.owner, "files", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.chatID = d.ID
	return w
}

func (w *fileWorld) upload(t *testing.T, fs *chat.FileService, name string, data []byte) chat.File {
	t.Helper()
	f, err := fs.Upload(context.Background(), w.owner, w.chatID, chat.UploadInput{Name: name, Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
	return f
}

func (w *fileWorld) run(t *testing.T, fs ...*chat.FileService) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, f := range fs {
		wg.Add(1)
		go func() { defer wg.Done(); f.Run(ctx) }()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func squarePNG(t *testing.T, n int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	for i := range n {
		img.SetRGBA(i, i, color.RGBA{200, 10, 10, 255})
	}
	for i := range img.Pix {
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// thumbnail downloads a file's thumbnail, asking again while it is still being made (each ask
// waits up to 10 s; a busy machine may need several).
func thumbnail(ctx context.Context, fs *chat.FileService, p chat.Principal, id int64) (chat.Download, error) {
	for i := 0; ; i++ {
		d, err := fs.Download(ctx, p, id, true)
		if chat.ErrorCode(err) != chat.CodeUnavailable || i == 20 {
			return d, err
		}
	}
}

func eachFileWorld(t *testing.T, fn func(t *testing.T, w *fileWorld)) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			fn(t, newFileWorld(t, db))
		})
	}
}

// TestThumbnailMadeOnce: an image uploaded through one instance gets one thumbnail, however
// many instances are asked for it at once, and every instance serves it.
func TestThumbnailMadeOnce(t *testing.T) {
	eachFileWorld(t, func(t *testing.T, w *fileWorld) {
		f := w.upload(t, w.a, "pic.png", squarePNG(t, 640)) // instance a's workers are not running
		w.run(t, w.b)
		ctx := context.Background()
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fs := []*chat.FileService{w.a, w.b}[i%2]
				d, err := thumbnail(ctx, fs, w.owner, f.ID)
				if err != nil {
					t.Errorf("thumbnail through instance %d: %v", i%2, err)
					return
				}
				defer d.Body.Close()
				img, _, err := image.Decode(d.Body)
				if err != nil || img.Bounds().Dx() != 320 {
					t.Errorf("thumbnail: %v, %v", img.Bounds(), err)
				}
			}()
		}
		wg.Wait()
		if n := w.made.Load(); n != 1 {
			t.Errorf("%d thumbnails made, want 1", n)
		}
		// The file itself through the other instance.
		d, err := w.b.Download(ctx, w.owner, f.ID, false)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(d.Body)
		d.Body.Close()
		if int64(len(got)) != f.Size {
			t.Errorf("downloaded %d bytes through the other instance, want %d", len(got), f.Size)
		}
	})
}

// TestFileJanitor: files never attached go after a day (with their bytes and thumbnails),
// attached ones stay until their message goes, and two instances sweeping at once delete each
// file once.
func TestFileJanitor(t *testing.T) {
	eachFileWorld(t, func(t *testing.T, w *fileWorld) {
		ctx := context.Background()
		w.run(t, w.a)
		unattached := w.upload(t, w.a, "a.txt", []byte("never attached"))
		pic := w.upload(t, w.a, "p.png", squarePNG(t, 400))
		if _, err := thumbnail(ctx, w.a, w.owner, pic.ID); err != nil { // waits for the thumbnail
			t.Fatal(err)
		}
		pic, _ = w.st.FileFor(ctx, w.owner.UserID, pic.ID)
		kept := w.upload(t, w.a, "k.txt", []byte("attached"))
		m, _, err := w.svc.Send(ctx, w.owner, chat.SendInput{ChatID: w.chatID, Body: "with a file", ClientID: "c1"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.st.DB().Exec(`UPDATE files SET message_id = $1, attached_at = $2 WHERE id = $3`, m.ID, time.Now().UnixMilli(), kept.ID); err != nil {
			t.Fatal(err)
		}
		// An upload that died half-way: a row in 'uploading' with some bytes.
		dead, err := w.st.BeginUpload(ctx, chat.NewUpload{ChatID: w.chatID, UploaderID: w.owner.UserID, Key: "de/dead", Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		w.blobs.Put(ctx, "de/dead", bytes.NewReader([]byte("half")), "")

		sweep := func() int {
			t.Helper()
			var wg sync.WaitGroup
			var total atomic.Int64
			for _, fs := range []*chat.FileService{w.a, w.b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					n, err := fs.Sweep(ctx)
					if err != nil {
						t.Errorf("sweep: %v", err)
					}
					total.Add(int64(n))
				}()
			}
			wg.Wait()
			return int(total.Load())
		}
		exists := func(key string) bool {
			r, err := w.blobs.Open(ctx, key)
			if err == nil {
				r.Close()
				return true
			}
			if !errors.Is(err, chat.ErrNotFound) {
				t.Fatal(err)
			}
			return false
		}

		w.offset.Store(int64(time.Hour))
		if n := sweep(); n != 0 {
			t.Errorf("an hour later: %d files deleted, want 0", n)
		}
		w.offset.Store(int64(24 * time.Hour)) // still attachable; the dead upload goes
		if n := sweep(); n != 1 {
			t.Errorf("a day later: %d files deleted, want 1 (the dead upload)", n)
		}
		w.offset.Store(int64(25*time.Hour + time.Minute))
		if n := sweep(); n != 2 {
			t.Errorf("after the grace: %d files deleted, want 2 (unattached, image)", n)
		}
		for _, key := range []string{unattached.Key, pic.Key, pic.Thumb.Key, "de/dead"} {
			if exists(key) {
				t.Errorf("blob %s survived its file", key)
			}
		}
		if pic.Thumb.Key == "" {
			t.Errorf("the image had no thumbnail to delete")
		}
		if !exists(kept.Key) {
			t.Errorf("the attached file's bytes were deleted")
		}
		if _, err := w.st.FileFor(ctx, w.owner.UserID, dead); !errors.Is(err, chat.ErrNotFound) {
			t.Errorf("the dead upload: %v", err)
		}
		// Deleting its message (edit/delete, later) detaches the file: the next pass takes it.
		if _, err := w.st.DB().Exec(`DELETE FROM messages WHERE id = $1`, m.ID); err != nil {
			t.Fatal(err)
		}
		if n := sweep(); n != 1 || exists(kept.Key) {
			t.Errorf("after its message went: %d deleted, bytes still there %v", n, exists(kept.Key))
		}
	})
}

// failingBlobs is a Blobs store that fails as told: an in-process fake, for error paths only.
type failingBlobs struct {
	chat.Blobs
	put, open error
}

func (f failingBlobs) Put(ctx context.Context, key string, r io.Reader, ct string) (int64, error) {
	if f.put != nil {
		io.CopyN(io.Discard, r, 1000)
		return 0, f.put
	}
	return f.Blobs.Put(ctx, key, r, ct)
}

func (f failingBlobs) Open(ctx context.Context, key string) (chat.BlobReader, error) {
	if f.open != nil {
		return nil, f.open
	}
	return f.Blobs.Open(ctx, key)
}

func TestFileStorageFailures(t *testing.T) {
	w := newFileWorld(t, "sqlite")
	ctx := context.Background()
	broken := errors.New("disk on fire")
	fs := chat.NewFileService(w.svc, w.st, failingBlobs{Blobs: w.blobs, put: broken}, chat.FileOptions{})
	_, err := fs.Upload(ctx, w.owner, w.chatID, chat.UploadInput{Name: "x.txt", Body: bytes.NewReader(bytes.Repeat([]byte("x"), 5000))})
	if !errors.Is(err, broken) || chat.ErrorCode(err) != chat.CodeInternal {
		t.Errorf("upload to a failing store: %v (code %s), want the internal error", err, chat.ErrorCode(err))
	}
	var n int
	w.st.DB().QueryRow(`SELECT count(*) FROM files`).Scan(&n)
	if n != 0 {
		t.Errorf("%d rows left by a failed upload", n)
	}

	f := w.upload(t, w.a, "y.txt", []byte("fine"))
	fs = chat.NewFileService(w.svc, w.st, failingBlobs{Blobs: w.blobs, open: broken}, chat.FileOptions{})
	if _, err := fs.Download(ctx, w.owner, f.ID, false); !errors.Is(err, broken) || chat.ErrorCode(err) != chat.CodeInternal {
		t.Errorf("download from a failing store: %v, want the internal error", err)
	}
	// A thumbnail that cannot be read stays pending (the claim lapses, the janitor retries):
	// the waiting download gives up with unavailable, never a wrong answer.
	pic := w.upload(t, w.a, "p.png", squarePNG(t, 100))
	w.run(t, fs)
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := fs.Download(dctx, w.owner, pic.ID, true); err == nil {
		t.Errorf("a thumbnail was served from a store that cannot be read")
	}
}

// stalled is an upload's body that says when it is first read, then sends nothing until
// its pipe is written to and closed.
type stalled struct {
	r       *io.PipeReader
	w       *io.PipeWriter
	reading chan struct{}
	once    sync.Once
}

func newStalled(t *testing.T) *stalled {
	r, w := io.Pipe()
	// A test that fails half-way ends the upload, which would otherwise wait for ever.
	t.Cleanup(func() { w.CloseWithError(errors.New("the test ended")) })
	return &stalled{r: r, w: w, reading: make(chan struct{})}
}

func (s *stalled) Read(p []byte) (int, error) {
	s.once.Do(func() { close(s.reading) })
	return s.r.Read(p)
}

func (s *stalled) finish(data []byte) {
	go func() {
		s.w.Write(data)
		s.w.Close()
	}()
}

// slotsWorld is a file world with three members, Ann, Ben and Cid, of a group of its own.
func slotsWorld(t *testing.T, title string) (w *fileWorld, ann, ben, cid chat.Principal, chatID int64) {
	t.Helper()
	w = newFileWorld(t, "sqlite")
	var ids []int64
	var who []chat.Principal
	for _, name := range []string{"ann", "ben", "cid"} {
		u, err := w.st.CreateUser(t.Context(), chat.User{Email: name + "@" + title + ".test", Name: name, PasswordHash: "x", CreatedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
		who = append(who, chat.Principal{UserID: u.ID})
	}
	g, err := w.svc.CreateGroup(t.Context(), w.owner, title, false, ids)
	if err != nil {
		t.Fatal(err)
	}
	return w, who[0], who[1], who[2], g.ID
}

// uploadResult is how an upload started by startUpload ended.
type uploadResult struct {
	f   chat.File
	err error
}

// startUpload runs an upload in the background.
func startUpload(ctx context.Context, fs *chat.FileService, p chat.Principal, chatID int64, in chat.UploadInput) chan uploadResult {
	done := make(chan uploadResult, 1)
	go func() {
		f, err := fs.Upload(ctx, p, chatID, in)
		done <- uploadResult{f, err}
	}()
	return done
}

// streaming waits until an upload reads its body; it fails the test if it ends first.
func streaming(t *testing.T, name string, s *stalled, done chan uploadResult) {
	t.Helper()
	select {
	case <-s.reading:
	case r := <-done:
		t.Fatalf("%s ended before it streamed: %v", name, r.err)
	}
}

// TestUploadSlots: one user's uploads hold at most MaxUserUploads of the instance's
// MaxUploads slots (the others wait for one of theirs, holding none), so one account trickling
// bytes into many uploads does not stop everyone else's; and an upload that finds no slot for
// UploadQueueWait, whether every slot of the instance or every one of its user's is taken, is
// answered 503 unavailable with a Retry-After instead of waiting as long as its client does.
func TestUploadSlots(t *testing.T) {
	t.Parallel()
	w, ann, ben, cid, chatID := slotsWorld(t, "slots")
	ctx := t.Context()
	// Two instances' worth of slots: patient's queue waits longer than any step of the test
	// takes, hasty's gives up soon.
	patient := chat.NewFileService(w.svc, w.st, w.blobs, chat.FileOptions{MaxUploads: 2, MaxUserUploads: 1, UploadQueueWait: time.Minute})
	hasty := chat.NewFileService(w.svc, w.st, w.blobs, chat.FileOptions{MaxUploads: 2, MaxUserUploads: 1, UploadQueueWait: 300 * time.Millisecond})
	start := func(fs *chat.FileService, p chat.Principal, name string, body io.Reader) chan uploadResult {
		return startUpload(ctx, fs, p, chatID, chat.UploadInput{Name: name, Body: body})
	}
	streaming := func(name string, s *stalled, done chan uploadResult) {
		t.Helper()
		streaming(t, name, s, done)
	}
	unavailable := func(name string, err error) {
		t.Helper()
		var ce *chat.Error
		if !errors.As(err, &ce) || ce.Code != chat.CodeUnavailable || ce.RetryAfter <= 0 {
			t.Errorf("%s: %v, want unavailable with a Retry-After", name, err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()

	// Ann trickles two uploads: the first holds her one slot, the second waits for it.
	first, second := newStalled(t), newStalled(t)
	firstDone := start(patient, ann, "first.txt", first)
	streaming("Ann's first upload", first, firstDone)
	secondDone := start(patient, ann, "second.txt", second)
	// Ben's upload takes the instance's other slot, which Ann's second does not hold.
	if _, err := patient.Upload(short, ben, chatID, chat.UploadInput{Name: "ben.txt", Body: bytes.NewReader([]byte("from ben"))}); err != nil {
		t.Fatalf("Ben's upload beside Ann's two: %v", err)
	}
	select {
	case <-second.reading:
		t.Error("Ann's second upload streams while her first holds her slot")
	case <-time.After(100 * time.Millisecond):
	}

	// Where the queue gives up: Ann's upload beyond her slots is told to come back, not left
	// waiting for her first to end ...
	held := newStalled(t)
	heldDone := start(hasty, ann, "held.txt", held)
	streaming("Ann's trickle", held, heldDone)
	beyond := newStalled(t)
	_, err := hasty.Upload(short, ann, chatID, chat.UploadInput{Name: "beyond.txt", Body: beyond})
	unavailable("an upload beyond its user's slots for the queue's wait", err)
	select {
	case <-beyond.reading:
		t.Error("the upload beyond Ann's slots read its body")
	default:
	}
	// ... and so is Cid when Ben's trickle holds the instance's other slot.
	third := newStalled(t)
	thirdDone := start(hasty, ben, "third.txt", third)
	streaming("Ben's trickle", third, thirdDone)
	_, err = hasty.Upload(short, cid, chatID, chat.UploadInput{Name: "cid.txt", Body: bytes.NewReader([]byte("from cid"))})
	unavailable("an upload with every slot held for the queue's wait", err)

	// Once the trickles end, each is stored, Ann's second after her first.
	first.finish([]byte("first"))
	held.finish([]byte("held"))
	third.finish([]byte("third"))
	for name, done := range map[string]chan uploadResult{"first": firstDone, "held": heldDone, "third": thirdDone} {
		if r := <-done; r.err != nil {
			t.Errorf("%s: %v", name, r.err)
		}
	}
	streaming("Ann's second upload", second, secondDone)
	second.finish([]byte("second"))
	if r := <-secondDone; r.err != nil || r.f.Size != int64(len("second")) {
		t.Errorf("second: %+v, %v", r.f, r.err)
	}
}

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// paced is an upload body whose bytes come as slowly as its pace says: each read moves the
// clock on by a second and gives pace(the seconds so far) bytes, until size were given.
type paced struct {
	clock   *fakeClock
	pace    func(second int) int
	size    int
	read    int
	seconds int
}

func (p *paced) Read(b []byte) (int, error) {
	if p.read == p.size {
		return 0, io.EOF
	}
	p.clock.advance(time.Second)
	n := min(len(b), p.pace(p.seconds), p.size-p.read)
	p.seconds++
	for i := range n {
		b[i] = 'x'
	}
	p.read += n
	return n, nil
}

// slowBlobs is a Blobs store that takes ten seconds over every read of what it stores.
type slowBlobs struct {
	chat.Blobs
	clock *fakeClock
}

func (s slowBlobs) Put(ctx context.Context, key string, r io.Reader, ct string) (int64, error) {
	return s.Blobs.Put(ctx, key, readFunc(func(b []byte) (int, error) {
		s.clock.advance(10 * time.Second)
		return r.Read(b)
	}), ct)
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(b []byte) (int, error) { return f(b) }

// TestUploadMinRate: an upload whose body delivers less than MinUploadRate (1 KiB/s by
// default) over the last 30 s of waiting for it is cut with request_timeout, whatever it sent
// before (a fast start buys no trickle), so trickled bytes cannot hold an upload slot for an
// hour; one at the rate is stored, however long it takes, and the time the Blobs store takes
// is not the client's. The clock is the test's: only the body's reads move it.
func TestUploadMinRate(t *testing.T) {
	t.Parallel()
	w := newFileWorld(t, "sqlite")
	ctx := t.Context()
	clock := &fakeClock{now: time.Now()}
	svc := chat.NewService(w.st, nil, chat.Options{PasswordParams: auth.FastPasswordParams, Now: clock.Now})
	var refused []string
	var mu sync.Mutex
	obs := chat.FileObserver{Refused: func(r string) { mu.Lock(); refused = append(refused, r); mu.Unlock() }}
	// The owner's slots of the uploads cut come back at once here (TestSlowUploadPenalty).
	fs := chat.NewFileService(svc, w.st, w.blobs, chat.FileOptions{Observer: obs, SlowUploadPenalty: time.Nanosecond})
	slow := chat.NewFileService(svc, w.st, slowBlobs{w.blobs, clock}, chat.FileOptions{})
	const size = 600 << 10 // more than the 256 KiB read before storing
	for _, c := range []struct {
		name string
		fs   *chat.FileService
		pace func(second int) int
		// cutBy is the second by which a body too slow is cut; 0: it is stored.
		cutBy int
	}{
		{"a trickle", fs, func(int) int { return 1 }, 32},
		{"just under the rate", fs, func(int) int { return 1000 }, 32},
		{"a fast start, then a trickle", fs, func(s int) int { return cmp.Or(max(0, 1-s)*(200<<10), 100) }, 1 + 32},
		{"at twice the rate", fs, func(int) int { return 2 << 10 }, 0},
		{"at the rate, into a slow store", slow, func(int) int { return 1 << 10 }, 0},
		{"bursts of a second every ten", fs, func(s int) int { return max(0, 1-s%10) * (20 << 10) }, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := &paced{clock: clock, pace: c.pace, size: size}
			f, err := c.fs.Upload(ctx, w.owner, w.chatID, chat.UploadInput{Name: "slow.txt", Body: body})
			if c.cutBy == 0 {
				if err != nil || f.Size != size {
					t.Fatalf("got %d bytes stored, %v; want it stored", f.Size, err)
				}
				return
			}
			var ce *chat.Error
			if !errors.As(err, &ce) || ce.Code != chat.CodeRequestTimeout || ce.Field != "body.file" {
				t.Fatalf("got %d bytes stored, %v; want request_timeout at body.file", f.Size, err)
			}
			if body.seconds > c.cutBy {
				t.Errorf("cut after %d s of reading, want at most %d", body.seconds, c.cutBy)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{chat.RefusedTooSlow, chat.RefusedTooSlow, chat.RefusedTooSlow}; !slices.Equal(refused, want) {
		t.Errorf("refusals %v, want %v", refused, want)
	}
}

// TestSlowUploadPenalty: the user's slot of an upload cut for being too slow stays taken for a
// while (SlowUploadPenalty, a minute by default), so a client trickling again at once waits
// for it (and is answered 503), while the instance's slot went back at once to the others.
func TestSlowUploadPenalty(t *testing.T) {
	t.Parallel()
	w := newFileWorld(t, "sqlite")
	ctx := t.Context()
	clock := &fakeClock{now: time.Now()}
	svc := chat.NewService(w.st, nil, chat.Options{PasswordParams: auth.FastPasswordParams, Now: clock.Now})
	u, err := w.st.CreateUser(ctx, chat.User{Email: "ben@files.test", Name: "ben", PasswordHash: "x", CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	ben := chat.Principal{UserID: u.ID}
	g, err := svc.CreateGroup(ctx, w.owner, "penalty", false, []int64{u.ID})
	if err != nil {
		t.Fatal(err)
	}
	fs := chat.NewFileService(svc, w.st, w.blobs, chat.FileOptions{MaxUploads: 1, MaxUserUploads: 1, UploadQueueWait: 300 * time.Millisecond})
	upload := func(p chat.Principal, body io.Reader) error {
		_, err := fs.Upload(ctx, p, g.ID, chat.UploadInput{Name: "f.txt", Body: body})
		return err
	}
	trickle := &paced{clock: clock, pace: func(int) int { return 1 }, size: 600 << 10}
	if err := upload(w.owner, trickle); chat.ErrorCode(err) != chat.CodeRequestTimeout {
		t.Fatalf("a trickle: %v, want request_timeout", err)
	}
	if err := upload(w.owner, strings.NewReader("again, at once")); chat.ErrorCode(err) != chat.CodeUnavailable {
		t.Errorf("the same user again right after the cut: %v, want unavailable (its slot still taken)", err)
	}
	if err := upload(ben, strings.NewReader("someone else")); err != nil {
		t.Errorf("another user after the cut: %v, want it stored (the instance's only slot given back)", err)
	}

	// A negative penalty is none (CHAT_LIMIT_SLOW_UPLOAD_PENALTY=0): the slot comes back at once.
	fs = chat.NewFileService(svc, w.st, w.blobs, chat.FileOptions{MaxUploads: 1, MaxUserUploads: 1, UploadQueueWait: 300 * time.Millisecond, SlowUploadPenalty: -1})
	trickle = &paced{clock: clock, pace: func(int) int { return 1 }, size: 600 << 10}
	if err := upload(w.owner, trickle); chat.ErrorCode(err) != chat.CodeRequestTimeout {
		t.Fatalf("a trickle without a penalty: %v, want request_timeout", err)
	}
	if err := upload(w.owner, strings.NewReader("again, at once")); err != nil {
		t.Errorf("the same user right after the cut, without a penalty: %v, want it stored", err)
	}
}

// TestDeletedFilesGoAtOnce: the files of a deleted message, or of a deleted group's messages,
// are deleted with their bytes by the running janitor at once, not at its next pass (10
// minutes here): once they stop counting toward the quotas, deleting and uploading again must
// not pile up bytes beyond them until then.
func TestDeletedFilesGoAtOnce(t *testing.T) {
	eachFileWorld(t, func(t *testing.T, w *fileWorld) {
		ctx := context.Background()
		gone := func(what string, f chat.File) {
			t.Helper()
			// The janitor deletes the bytes, then the row.
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
				var n int
				if err := w.st.DB().QueryRow(`SELECT count(*) FROM files WHERE id = $1`, f.ID).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: file %d is still there", what, f.ID)
				}
			}
			if r, err := w.blobs.Open(ctx, f.Key); !errors.Is(err, chat.ErrNotFound) {
				if err == nil {
					r.Close()
				}
				t.Errorf("%s: the bytes of file %d: %v, want them deleted", what, f.ID, err)
			}
		}
		sendAndDelete := func(chatID int64, name string) chat.File {
			t.Helper()
			f, err := w.a.Upload(ctx, w.owner, chatID, chat.UploadInput{Name: name, Body: strings.NewReader("bytes of " + name)})
			if err != nil {
				t.Fatal(err)
			}
			m, _, err := w.svc.Send(ctx, w.owner, chat.SendInput{ChatID: chatID, ClientID: name, FileIDs: []int64{f.ID}})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.svc.DeleteMessage(ctx, w.owner, chatID, m.Seq); err != nil {
				t.Fatal(err)
			}
			return f
		}
		// Deleted before the janitor runs: its first pass, at its start, deletes it. Once that
		// is seen, the pass has listed what it deletes.
		first := sendAndDelete(w.chatID, "before.txt")
		w.run(t, w.a)
		gone("deleted before the janitor started", first)
		gone("a deleted message's file", sendAndDelete(w.chatID, "after.txt"))

		g, err := w.svc.CreateGroup(ctx, w.owner, "to delete", false, nil)
		if err != nil {
			t.Fatal(err)
		}
		f, err := w.a.Upload(ctx, w.owner, g.ID, chat.UploadInput{Name: "group.txt", Body: strings.NewReader("a group's file")})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := w.svc.Send(ctx, w.owner, chat.SendInput{ChatID: g.ID, ClientID: "g1", FileIDs: []int64{f.ID}}); err != nil {
			t.Fatal(err)
		}
		if err := w.svc.DeleteChat(ctx, w.owner, g.ID); err != nil {
			t.Fatal(err)
		}
		gone("a deleted group's file", f)
	})
}

// TestJanitorRemovesCrashedWrites: a write into a directory cut short by a crash (kill -9
// mid-upload) leaves its temporary file; the janitor removes those nothing wrote to for two
// hours (an upload is cut after one), while it runs. They used to go only at a start more than
// a day later: a server that ran on after a crash kept them, up to 32 uploads of 25 MiB each
// crash. Blobs and a write going on are kept.
func TestJanitorRemovesCrashedWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := t.TempDir()
	d, err := blob.NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t, "sqlite://"+filepath.Join(t.TempDir(), "chat.db"))
	files := chat.NewFileService(chat.NewService(st, nil, chat.Options{PasswordParams: auth.FastPasswordParams}), st, d, chat.FileOptions{})
	if _, err := d.Put(ctx, "ab/abcdef", strings.NewReader("a blob"), ""); err != nil {
		t.Fatal(err)
	}
	write := func(name string, age time.Duration) string {
		p := filepath.Join(root, "ab", name)
		if err := os.WriteFile(p, []byte("half an upload"), 0o600); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
		return p
	}
	crashed := write(".upload-1234", 3*time.Hour)
	going := write(".upload-5678", time.Minute)
	if err := os.Chtimes(filepath.Join(root, "ab", "abcdef"), time.Now().Add(-72*time.Hour), time.Now().Add(-72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := files.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(crashed); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary file of a write that crashed 3 hours ago: %v, want removed", err)
	}
	if _, err := os.Stat(going); err != nil {
		t.Errorf("the temporary file of a write going on: %v, want kept", err)
	}
	if r, err := d.Open(ctx, "ab/abcdef"); err != nil {
		t.Errorf("a blob of three days: %v, want kept", err)
	} else {
		r.Close()
	}
}

// TestFileStoreGone: with the S3 store down, an upload and a download answer unavailable, with
// a message that names the file store and a Retry-After, not internal; nothing of the upload
// is left behind.
func TestFileStoreGone(t *testing.T) {
	w := newFileWorld(t, "sqlite")
	ctx := context.Background()
	s3 := testdb.S3(t)
	b, err := blob.Open(ctx, s3.URL("gone"), "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	fs := chat.NewFileService(w.svc, w.st, b, chat.FileOptions{})
	kept := w.upload(t, fs, "kept.txt", []byte("kept"))
	s3.Stop()
	check := func(what string, err error) {
		t.Helper()
		var e *chat.Error
		if !errors.As(err, &e) || e.Code != chat.CodeUnavailable || e.Message != "the file store is unavailable; try again" || e.RetryAfter <= 0 {
			t.Errorf("%s with the file store down: %v (%#v), want unavailable naming the file store, with a Retry-After", what, err, e)
		}
	}
	_, err = fs.Upload(ctx, w.owner, w.chatID, chat.UploadInput{Name: "lost.txt", Body: bytes.NewReader([]byte("lost"))})
	check("an upload", err)
	var n int
	w.st.DB().QueryRow(`SELECT count(*) FROM files`).Scan(&n)
	if n != 1 {
		t.Errorf("%d file rows, want the one stored before", n)
	}
	_, err = fs.Download(ctx, w.owner, kept.ID, false)
	check("a download", err)
}

// TestAddressUploadSlots: the uploads from one client address (an IPv6 client's /64) hold at
// most MaxAddressUploads of the instance's slots whoever's they are, so a few accounts on one
// address trickling bytes cannot take them all; an upload from elsewhere still gets one.
func TestAddressUploadSlots(t *testing.T) {
	t.Parallel()
	w, ann, ben, cid, chatID := slotsWorld(t, "addresses")
	ctx := t.Context()
	fs := chat.NewFileService(w.svc, w.st, w.blobs, chat.FileOptions{MaxUploads: 4, MaxUserUploads: 2, MaxAddressUploads: 2,
		UploadQueueWait: 300 * time.Millisecond})
	start := func(p chat.Principal, addr, name string, body io.Reader) chan uploadResult {
		return startUpload(ctx, fs, p, chatID, chat.UploadInput{Name: name, Body: body, Addr: addr})
	}
	streaming := func(name string, s *stalled, done chan uploadResult) {
		t.Helper()
		streaming(t, name, s, done)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()

	// Ann and Ben, two addresses of one /64, trickle one upload each: the address's two slots.
	annSlow, benSlow := newStalled(t), newStalled(t)
	annDone := start(ann, "[2001:db8:1:2::1]:50000", "ann.txt", annSlow)
	streaming("Ann's trickle", annSlow, annDone)
	benDone := start(ben, "2001:db8:1:2::99", "ben.txt", benSlow)
	streaming("Ben's trickle", benSlow, benDone)

	// Ben's second upload has a slot of his own and the instance has two free, but his
	// network's are taken: he is told to come back, and his body is not read.
	beyond := newStalled(t)
	beyondDone := start(ben, "2001:db8:1:2::99", "beyond.txt", beyond)
	select {
	case r := <-beyondDone:
		var ce *chat.Error
		if !errors.As(r.err, &ce) || ce.Code != chat.CodeUnavailable || ce.RetryAfter <= 0 || !strings.Contains(ce.Message, "from your network") {
			t.Errorf("an upload beyond its address's slots: %v, want unavailable saying so, with a Retry-After", r.err)
		}
	case <-beyond.reading:
		t.Error("the upload beyond the address's slots read its body")
		beyond.finish(nil)
		<-beyondDone
	}
	// Cid, on another /64, uploads at once.
	if _, err := fs.Upload(short, cid, chatID, chat.UploadInput{Name: "cid.txt", Body: bytes.NewReader([]byte("from cid")), Addr: "2001:db8:1:3::1"}); err != nil {
		t.Errorf("Cid's upload from another network: %v", err)
	}

	annSlow.finish([]byte("ann"))
	benSlow.finish([]byte("ben"))
	for name, done := range map[string]chan uploadResult{"Ann's": annDone, "Ben's": benDone} {
		if r := <-done; r.err != nil {
			t.Errorf("%s trickle: %v", name, r.err)
		}
	}
	// Their slots are back: Ben uploads again from the same network.
	if _, err := fs.Upload(short, ben, chatID, chat.UploadInput{Name: "again.txt", Body: bytes.NewReader([]byte("again")), Addr: "2001:db8:1:2::5"}); err != nil {
		t.Errorf("Ben's upload once the trickles ended: %v", err)
	}
}
