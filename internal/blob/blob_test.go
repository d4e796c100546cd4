package blob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/wschat/chat/internal/blob"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/testdb"
)

// stores opens each implementation: a directory, and a bucket on a real S3-compatible server.
func stores(t *testing.T) map[string]func(t *testing.T) chat.Blobs {
	return map[string]func(t *testing.T) chat.Blobs{
		"dir": func(t *testing.T) chat.Blobs {
			d, err := blob.Open(context.Background(), "", t.TempDir(), "", "")
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		"s3": func(t *testing.T) chat.Blobs {
			s := testdb.S3(t)
			b, err := blob.Open(context.Background(), s.URL("chat-files"), "", "", "")
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
	}
}

// randomBytes is n bytes of a fixed pseudo-random sequence.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// failingReader yields some bytes, then fails.
type failingReader struct{ n int }

var errBroken = errors.New("broken upload")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errBroken
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

func TestBlobs(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := open(t)
			// Small (one PUT) and larger than two parts (a multipart upload).
			for _, size := range []int{1, 1000, 2*blob.PartSize + 12345} {
				data := randomBytes(size, uint64(size))
				key := "ab/object-" + time.Now().Format("150405.000000")
				n, err := b.Put(ctx, key, bytes.NewReader(data), "application/octet-stream")
				if err != nil || n != int64(size) {
					t.Fatalf("put %d bytes: %d, %v", size, n, err)
				}
				rd, err := b.Open(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(rd)
				if err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
					t.Fatalf("read back %d bytes (want %d): %v", len(got), size, err)
				}
				// Seeking reads a range only.
				if size > 10 {
					if _, err := rd.Seek(int64(size-10), io.SeekStart); err != nil {
						t.Fatal(err)
					}
					tail, err := io.ReadAll(rd)
					if err != nil || !bytes.Equal(tail, data[size-10:]) {
						t.Errorf("after seeking: %x, %v; want %x", tail, err, data[size-10:])
					}
				}
				rd.Close()
				if err := b.Delete(ctx, key); err != nil {
					t.Fatal(err)
				}
				if _, err := b.Open(ctx, key); !errors.Is(err, chat.ErrNotFound) {
					t.Errorf("open after delete: %v, want ErrNotFound", err)
				}
				if err := b.Delete(ctx, key); err != nil {
					t.Errorf("deleting a missing blob: %v, want nil", err)
				}
			}

			// A failed write leaves nothing under its key, small or multipart.
			for _, n := range []int{100, blob.PartSize + 100} {
				if _, err := b.Put(ctx, "cd/failed", &failingReader{n: n}, "text/plain"); !errors.Is(err, errBroken) {
					t.Errorf("put from a failing reader: %v, want errBroken", err)
				}
				if _, err := b.Open(ctx, "cd/failed"); !errors.Is(err, chat.ErrNotFound) {
					t.Errorf("after a failed put of %d bytes: %v, want ErrNotFound", n, err)
				}
			}

			// Presigned URLs: the store serves the object with our headers, without us.
			if _, err := b.Put(ctx, "ef/signed", bytes.NewReader([]byte("<svg onload=alert(1)>")), "application/octet-stream"); err != nil {
				t.Fatal(err)
			}
			u, err := b.PresignGet(ctx, "ef/signed", time.Minute, "application/octet-stream", `attachment; filename="x.svg"`)
			if name == "dir" {
				if !errors.Is(err, chat.ErrNoPresign) {
					t.Errorf("a directory presigned %q, %v; want ErrNoPresign", u, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			res, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || string(body) != "<svg onload=alert(1)>" {
				t.Fatalf("presigned GET: %d %q", res.StatusCode, body)
			}
			if got := res.Header.Get("Content-Disposition"); got != `attachment; filename="x.svg"` {
				t.Errorf("presigned Content-Disposition %q", got)
			}
			if got := res.Header.Get("Content-Type"); got != "application/octet-stream" {
				t.Errorf("presigned Content-Type %q", got)
			}
		})
	}
}

func TestDirRefusesKeysOutsideItsRoot(t *testing.T) {
	d, err := blob.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"../x", "a/../../x", "/etc/passwd", `a\b`, "", "a//b", ".upload-x"} {
		if _, err := d.Put(context.Background(), key, bytes.NewReader([]byte("x")), ""); err == nil {
			t.Errorf("Put(%q) succeeded", key)
		}
	}
}

func TestOpenURLs(t *testing.T) {
	for _, bad := range []string{"ftp://host/bucket", "s3://host", "s3://host/bucket", "s3+http:///bucket"} {
		if _, err := blob.Open(context.Background(), bad, t.TempDir(), "", ""); err == nil {
			t.Errorf("Open(%q) accepted it", bad)
		}
	}
}

// TestS3Gone: a store that stops answering (its server down) is chat.ErrFilesUnavailable for
// writes and reads alike, so that uploads and downloads answer 503 and may be retried, not 500.
func TestS3Gone(t *testing.T) {
	ctx := context.Background()
	s := testdb.S3(t)
	b, err := blob.Open(ctx, s.URL("gone"), "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "a", bytes.NewReader([]byte("kept")), "text/plain"); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	// Each call is retried by minio-go for a few seconds before it gives up: they run together.
	big := randomBytes(blob.PartSize+1, 1) // a multipart upload
	calls := map[string]func() error{
		"put":           func() error { _, err := b.Put(ctx, "b", bytes.NewReader([]byte("lost")), "text/plain"); return err },
		"multipart put": func() error { _, err := b.Put(ctx, "c", bytes.NewReader(big), "application/octet-stream"); return err },
		"open":          func() error { _, err := b.Open(ctx, "a"); return err },
		"delete":        func() error { return b.Delete(ctx, "a") },
	}
	errs := make(map[string]error)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, call := range calls {
		wg.Go(func() {
			err := call()
			mu.Lock()
			errs[name] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	for name, err := range errs {
		if !errors.Is(err, chat.ErrFilesUnavailable) {
			t.Errorf("%s with the store down: %v, want the file store unavailable", name, err)
		}
	}
}
