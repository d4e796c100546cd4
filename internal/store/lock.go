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
//
// shared takes the lock shared instead, for servers whose events go through Redis: they may
// share a file with each other, but not with one that has its broker in-process (which holds
// the lock exclusively, and so is refused beside them and they beside it). The lock file is
// found from the database file's real path (symbolic links resolved), so that every spelling
// of the same file (a relative path, a linked directory, a link to the file) takes the same
// lock; a hard link to the file is a second name the lock cannot see.
func LockSQLite(rawURL string, shared bool) (release func(), err error) {
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
	if real, err := realPath(path); err == nil {
		path = real
	}
	lockPath := path + ".lock"
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("the database's directory must be writable: %w", err)
	}
	if err := lockFile(f, shared); err != nil {
		holder, _ := os.ReadFile(lockPath)
		f.Close()
		if errors.Is(err, errLocked) {
			who := "another process"
			if pid, err := strconv.Atoi(strings.TrimSpace(string(holder))); err == nil && pid > 0 {
				who = "process " + strconv.Itoa(pid)
			}
			if shared {
				return nil, fmt.Errorf("%w: %s holds %s without Redis; servers sharing an embedded database must all use Redis",
					ErrInUse, who, lockPath)
			}
			return nil, fmt.Errorf("%w: %s holds %s; one server per embedded database (several need PostgreSQL and Redis)",
				ErrInUse, who, lockPath)
		}
		return nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	// The holder's pid, for the message above; best effort (a full disk may refuse it). Shared
	// holders leave it be: the one named would be any of them.
	if !shared && f.Truncate(0) == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}

// realPath is path absolute with its symbolic links resolved: the file's if it exists (a link
// to the database file), else its directory's.
func realPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real, nil
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.Base(abs)), nil
}
