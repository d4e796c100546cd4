// Package blob keeps the bytes of uploaded files: Dir in a local directory (the embedded
// default, or a volume shared by a cluster's instances) and S3 in a bucket of any
// S3-compatible object store. Open picks one from CHAT_FILES_URL. Both implement chat.Blobs.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// Dir keeps each blob in a file under a root directory. A blob is written to a temporary file
// beside its place and renamed into it once complete and synced, so a reader never sees half a
// blob and a crash leaves only a temporary file.
type Dir struct {
	root string
}

var (
	_ chat.Blobs       = (*Dir)(nil)
	_ chat.TempSweeper = (*Dir)(nil)
)

// tempPrefix starts the names of blobs being written.
const tempPrefix = ".upload-"

// NewDir keeps blobs under root, creating it if needed, and removes temporary files that
// writes interrupted more than a day ago left behind (the file janitor removes younger ones
// while it runs: SweepTemp).
func NewDir(root string) (*Dir, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("create file directory: %w", err)
	}
	d := &Dir{root: root}
	d.SweepTemp(context.Background(), time.Now().Add(-24*time.Hour))
	return d, nil
}

// SweepTemp implements chat.TempSweeper: it removes the temporary files last written before
// before, which writes that a crash (kill -9, power loss) cut short left behind; a write that
// fails removes its own. It returns how many it removed.
func (d *Dir) SweepTemp(ctx context.Context, before time.Time) (int, error) {
	n := 0
	err := filepath.WalkDir(d.root, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return nil // a directory that went meanwhile, or cannot be read: the others still can
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.IsDir() && strings.HasPrefix(e.Name(), tempPrefix) {
			if info, err := e.Info(); err == nil && info.ModTime().Before(before) && os.Remove(p) == nil {
				n++
			}
		}
		return nil
	})
	return n, err
}

// path maps a key to its file, refusing keys that could leave the root.
func (d *Dir) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") {
		return "", fmt.Errorf("bad blob key %q", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." || strings.HasPrefix(part, tempPrefix) {
			return "", fmt.Errorf("bad blob key %q", key)
		}
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Put implements chat.Blobs. A full disk or quota is chat.ErrStorageFull (dirErr).
func (d *Dir) Put(ctx context.Context, key string, r io.Reader, _ string) (int64, error) {
	n, err := d.put(ctx, key, r)
	return n, dirErr(err)
}

// dirErr classifies a failure to write a blob: a full disk or quota (ENOSPC, EDQUOT) is
// chat.ErrStorageFull, which the caller answers as such and may retry once the operator has
// made room; any other failure stays as it is.
func dirErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %v", chat.ErrStorageFull, err)
	}
	return err
}

func (d *Dir) put(ctx context.Context, key string, r io.Reader) (n int64, err error) {
	p, err := d.path(key)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), tempPrefix+"*")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if n, err = io.Copy(tmp, ctxReader{ctx, r}); err != nil {
		return 0, err
	}
	if err = tmp.Sync(); err != nil {
		return 0, err
	}
	if err = tmp.Close(); err != nil {
		return 0, err
	}
	if err = os.Rename(tmp.Name(), p); err != nil {
		return 0, err
	}
	return n, nil
}

// Open implements chat.Blobs.
func (d *Dir) Open(_ context.Context, key string) (chat.BlobReader, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", key, chat.ErrNotFound)
	}
	return f, err
}

// Delete implements chat.Blobs.
func (d *Dir) Delete(_ context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// PresignGet implements chat.Blobs: a directory has no URLs of its own.
func (d *Dir) PresignGet(context.Context, string, time.Duration, string, string) (string, error) {
	return "", chat.ErrNoPresign
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
