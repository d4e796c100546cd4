package store

import (
	"context"
	"testing"

	"github.com/wschat/chat/internal/testdb"
)

// TestJITOff: the store's PostgreSQL sessions run without JIT compilation, which cost seconds
// per chat list once the database grew (see Open).
func TestJITOff(t *testing.T) {
	s, err := Open(context.Background(), testdb.Postgres(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var jit string
	if err := s.db.QueryRowContext(context.Background(), "SHOW jit").Scan(&jit); err != nil {
		t.Fatal(err)
	}
	if jit != "off" {
		t.Errorf("jit = %q, want off", jit)
	}
}
