package chat

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wschat/chat/internal/limit"
)

// clockedLimiter allows everything and keeps the times it was asked at.
type clockedLimiter struct {
	mu   sync.Mutex
	seen []time.Time
}

func (c *clockedLimiter) AllowN(_ context.Context, _ string, _ int, now time.Time) (bool, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = append(c.seen, now)
	return true, 0
}

func (c *clockedLimiter) Reset(context.Context, string) {}

// TestLimitersCountWithTheMonotonicClock: the rate limiters get the time with its monotonic
// reading. Without one, a token bucket measures the time since its last use on the wall clock,
// so a step of that clock refills it (forward) or keeps it empty for as long as the step
// (back). A test cannot step the wall clock, so it checks what makes the buckets immune: the
// reading is there (a time compared with == to itself rounded by 0 differs only by it).
func TestLimitersCountWithTheMonotonicClock(t *testing.T) {
	lim := &clockedLimiter{}
	s := NewService(struct{ Store }{}, nil, Options{RateLimits: true,
		NewLimiter: func(string, limit.Rate, limit.Outage) RateLimiter { return lim }})
	p := Principal{UserID: 7}
	if err := s.AllowRead(context.Background(), p); err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := s.allowChatChange(context.Background(), p, 1); err != nil {
		t.Fatalf("chat change: %v", err)
	}
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if len(lim.seen) != 2 {
		t.Fatalf("the limiter was asked %d times, want 2", len(lim.seen))
	}
	for i, now := range lim.seen {
		if now == now.Round(0) {
			t.Errorf("ask %d: %v has no monotonic reading: a step of the wall clock would refill or freeze its bucket", i+1, now)
		}
	}
}
