package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrInUse is LockSQLite's error when another process holds the database.
var ErrInUse = errors.New("the database is in use by another chatd")

// LockSQLite takes the lock that makes a process the only server of a SQLite database: an
// exclusive lock on the file beside it (chat.db.lock), which the kernel drops when the process
// ends however it ends. Two servers on one SQLite file with in-process brokers would each
// store what they are sent, but neither would hear the other's events: clients of one would
// not get the other's messages live. It returns ErrInUse (with the holder's pid when known)
// if another process holds it, and nil for a URL that is not SQLite's. release lets it go.
func LockSQLite(rawURL string) (release func(), err error) {
	if strings.HasPrefix(rawURL, "postgres://") || strings.HasPrefix(rawURL, "postgresql://") {
		return func() {}, nil
	}
	path, err := sqlitePath(rawURL)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	lockPath := path + ".lock"
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("the database's directory must be writable: %w", err)
	}
	if err := lockFile(f); err != nil {
		holder, _ := os.ReadFile(lockPath)
		f.Close()
		if errors.Is(err, errLocked) {
			who := "another process"
			if pid, err := strconv.Atoi(strings.TrimSpace(string(holder))); err == nil && pid > 0 {
				who = "process " + strconv.Itoa(pid)
			}
			return nil, fmt.Errorf("%w: %s holds %s; one server per embedded database (several need PostgreSQL and Redis)",
				ErrInUse, who, lockPath)
		}
		return nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	// The holder's pid, for the message above; best effort (a full disk may refuse it).
	if f.Truncate(0) == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
