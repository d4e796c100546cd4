//go:build !unix

package store

import (
	"errors"
	"os"
)

var errLocked = errors.New("locked")

// lockFile does nothing where there is no flock: two servers on one database are not caught.
func lockFile(*os.File, bool) error { return nil }
