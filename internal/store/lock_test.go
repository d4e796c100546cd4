//go:build unix

package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestLockSQLiteSpellings: every spelling of one SQLite file takes the same lock (a link to
// the file, a linked directory, a relative path), a server with Redis (shared) is refused
// beside one without (exclusive) and the other way round, while servers with Redis may share
// it; a path SQLite would read as another file ('?' in it, escaped or not) is refused. A link
// to the file used to lock the link's own chat.db.lock, and a server with Redis took no lock at
// all: either ran beside the embedded server, whose clients then missed its messages.
func TestLockSQLiteSpellings(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	db := filepath.Join(dir, "chat.db")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(db, filepath.Join(root, "link.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(root, "dirlink")); err != nil {
		t.Fatal(err)
	}
	release, err := LockSQLite("sqlite://"+db, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	for _, u := range []string{
		"sqlite://" + db,
		"sqlite://" + filepath.Join(root, "link.db"),
		"sqlite://" + filepath.Join(root, "dirlink", "chat.db"),
		"sqlite://data/chat.db",
		"link.db",
	} {
		for _, shared := range []bool{false, true} {
			if r, err := LockSQLite(u, shared); !errors.Is(err, ErrInUse) {
				if err == nil {
					r()
				}
				t.Errorf("%s (shared %v) beside a server holding %s: %v, want ErrInUse", u, shared, db, err)
			}
		}
	}
	for _, u := range []string{"sqlite://" + db + "%3Fmode=ro", "sqlite://" + db + "%23x", "data/chat.db?x=1"} {
		if r, err := LockSQLite(u, false); err == nil || errors.Is(err, ErrInUse) {
			if err == nil {
				r()
			}
			t.Errorf("%s: %v, want a refusal of the path", u, err)
		}
	}
	release()

	a, err := LockSQLite("sqlite://"+db, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LockSQLite("sqlite://"+filepath.Join(root, "link.db"), true)
	if err != nil {
		t.Fatalf("a second server with Redis: %v", err)
	}
	if r, err := LockSQLite("sqlite://data/chat.db", false); !errors.Is(err, ErrInUse) {
		if err == nil {
			r()
		}
		t.Errorf("a server without Redis beside two with it: %v, want ErrInUse", err)
	}
	a()
	b()
	r, err := LockSQLite("sqlite://data/chat.db", false)
	if err != nil {
		t.Fatalf("once the others stopped: %v", err)
	}
	r()
}
