// Package limit holds the in-memory rate limiters of an instance: token buckets keyed by a
// string (an address, an email, a user), with a cap on how many keys are remembered. The
// limiters a cluster shares live in internal/limit/redislimit; both fit chat.RateLimiter.
package limit

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate is the shape of a token bucket written as "N/period": N events at once, refilled at N
// per period ("30/30s": 30 at once, then one a second).
type Rate struct {
	Burst int
	Per   time.Duration
}

// ParseRate reads "N/period", e.g. "10/5m" or "40/2s".
func ParseRate(s string) (Rate, error) {
	n, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	burst, err := strconv.Atoi(n)
	if !ok || err != nil || burst < 1 {
		return Rate{}, fmt.Errorf("%q: want N/period, like 30/30s", s)
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return Rate{}, fmt.Errorf("%q: want N/period, like 30/30s", s)
	}
	return Rate{Burst: burst, Per: d}, nil
}

// PerSecond is the refill rate.
func (r Rate) PerSecond() float64 { return float64(r.Burst) / r.Per.Seconds() }

// NewRate makes a limiter of the given shape; see New.
func NewRate(r Rate, maxKeys int) *Limiter { return New(r.PerSecond(), r.Burst, maxKeys) }

// Limiter allows Burst events at once and Rate events per second after that, per key.
// The zero Limiter is not usable; build one with New. A nil *Limiter allows everything.
type Limiter struct {
	rate    float64
	burst   float64
	maxKeys int

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New makes a limiter that allows burst events per key at once, refilled at rate per second, and
// remembers at most maxKeys keys: when it is full, keys whose bucket has refilled are forgotten
// first (they carry no information), then the oldest half.
func New(rate float64, burst int, maxKeys int) *Limiter {
	return &Limiter{rate: rate, burst: float64(burst), maxKeys: maxKeys, buckets: make(map[string]*bucket)}
}

// Outage says what a limiter shared through another service (Redis) does while that service
// is unreachable. The in-memory Limiter has no outages.
type Outage int

const (
	// FailOpen allows everything until the shared state is back: for limits whose outage
	// must not stop the product (sends).
	FailOpen Outage = iota
	// FailLocal falls back to this instance's own in-memory limiter of the same rate: the
	// cluster then allows up to N times the rate, but never unlimited (logins, sign-ups).
	FailLocal
)

// Local is a Limiter seen through the chat service's RateLimiter interface: this instance's
// buckets only. A Local with a nil Limiter allows everything.
type Local struct{ L *Limiter }

// AllowN takes n tokens of key; see Limiter.AllowN.
func (l Local) AllowN(_ context.Context, key string, n int, now time.Time) (bool, time.Duration) {
	return l.L.AllowN(key, n, now)
}

// Reset forgets key.
func (l Local) Reset(_ context.Context, key string) { l.L.Reset(key) }

// Allow takes one token for key at time now. When none is left it returns false and how long
// until one is.
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	return l.AllowN(key, 1, now)
}

// AllowN takes n tokens for key at time now, or none: when fewer than n are left it returns
// false and how long until n are. n above the burst is never allowed.
func (l *Limiter) AllowN(key string, n int, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	need := float64(max(n, 1))
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.maxKeys {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	if b.tokens >= need {
		b.tokens -= need
		return true, 0
	}
	wait := time.Duration(math.Ceil((need - b.tokens) / l.rate * float64(time.Second)))
	return false, wait
}

// Peek reports whether key has a token left without taking it.
func (l *Limiter) Peek(key string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		return true, 0
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		return true, 0
	}
	return false, time.Duration(math.Ceil((1 - b.tokens) / l.rate * float64(time.Second)))
}

// Reset forgets key, as after a successful login.
func (l *Limiter) Reset(key string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	delete(l.buckets, key)
	l.mu.Unlock()
}

// Len is the number of keys remembered.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

func (l *Limiter) refill(b *bucket, now time.Time) {
	if d := now.Sub(b.last).Seconds(); d > 0 {
		b.tokens = math.Min(l.burst, b.tokens+d*l.rate)
		b.last = now
	}
}

func (l *Limiter) evict(now time.Time) {
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) < l.maxKeys {
		return
	}
	// Every bucket is in use: forget the half that was touched longest ago.
	times := make([]time.Time, 0, len(l.buckets))
	for _, b := range l.buckets {
		times = append(times, b.last)
	}
	cutoff := median(times)
	for k, b := range l.buckets {
		if !b.last.After(cutoff) {
			delete(l.buckets, k)
		}
	}
}

func median(ts []time.Time) time.Time {
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	return ts[len(ts)/2]
}
