// Package testlog holds what tests use to read a server's log while the server writes it.
package testlog

import (
	"bytes"
	"sync"
)

// Buffer is a log (or any output) that a test reads while other goroutines write it: a
// bytes.Buffer behind a lock. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
