// Package redislimit holds the rate limiters a cluster shares: one GCRA bucket per limit and
// key in Redis (the algorithm of go-redis/redis_rate, in a short Lua script), so that N
// instances allow each rate once, not N times. Redis's clock decides, so instances whose
// clocks disagree still agree on every bucket.
//
// A Redis outage must not become an outage of the product: while Redis is unreachable each
// limiter fails open or falls back to this instance's own in-memory limiter of the same rate,
// as its limit.Outage says, and Redis is tried again after a second.
package redislimit

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wschat/chat/internal/limit"
)

// Options configure Limiters.
type Options struct {
	// URL is redis://[[user]:password@]host:port/db, or rediss:// for TLS.
	URL string
	// Prefix starts every key (Prefix+":limit:"+name+":"+key); "chat" if empty.
	Prefix string
	// Logger is told when Redis becomes unreachable and when it is back.
	Logger *slog.Logger
	// Timeout bounds one check, dial included (default 250 ms): a limiter stands in front of
	// every send and login, so it may not wait long for an unreachable Redis.
	Timeout time.Duration
	// RetryAfter is how long a failed Redis is left alone before it is tried again (default 1 s).
	RetryAfter time.Duration
}

// localKeys caps the keys of each in-memory fallback limiter.
const localKeys = 100_000

// gcra takes ARGV[3] tokens of the bucket KEYS[1], of burst ARGV[1] and one token per ARGV[2]
// seconds. The bucket is its theoretical arrival time (TAT): the time at which it will be full
// again; a request fits when the TAT it would push out stays within burst*interval of now.
// It answers {1, "0"} or {0, seconds until the request would fit}.
var gcra = redis.NewScript(`
local burst = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call("TIME")
local now = (tonumber(t[1]) - 1700000000) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call("GET", KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + cost * interval
local allow_at = new_tat - burst * interval
if allow_at > now then
  return {0, tostring(allow_at - now)}
end
redis.call("SET", KEYS[1], tostring(new_tat), "EX", math.max(1, math.ceil(new_tat - now)))
return {1, "0"}
`)

// Limiters make the shared limiters of one deployment over one Redis client, and keep track of
// whether Redis answers.
type Limiters struct {
	client  *redis.Client
	prefix  string
	log     *slog.Logger
	timeout time.Duration
	retry   time.Duration

	mu        sync.Mutex
	downUntil time.Time // Redis failed: leave it alone until then
	down      bool      // said so in the log
}

// New makes Limiters for opts. It does not connect: the first check does.
func New(opts Options) (*Limiters, error) {
	ropts, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	if opts.Prefix == "" {
		opts.Prefix = "chat"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 250 * time.Millisecond
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ropts.DialTimeout, ropts.ReadTimeout, ropts.WriteTimeout, ropts.PoolTimeout = opts.Timeout, opts.Timeout, opts.Timeout, opts.Timeout
	ropts.MaxRetries = -1   // a retry would double the wait of every check during an outage
	ropts.DialerRetries = 1 // so would redialling
	return &Limiters{client: redis.NewClient(ropts), prefix: opts.Prefix + ":limit:", log: opts.Logger,
		timeout: opts.Timeout, retry: opts.RetryAfter}, nil
}

// Close closes the Redis client.
func (l *Limiters) Close() error { return l.client.Close() }

// Limiter returns the shared limiter of one limit: name tells it from the others in Redis
// ("send-user"), r is its rate, outage what it does while Redis is unreachable.
func (l *Limiters) Limiter(name string, r limit.Rate, outage limit.Outage) *Limiter {
	x := &Limiter{set: l, key: l.prefix + name + ":", rate: r}
	if outage == limit.FailLocal {
		x.fallback = limit.NewRate(r, localKeys)
	}
	return x
}

// available reports whether Redis should be asked, or is being left alone after a failure.
func (l *Limiters) available(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !now.Before(l.downUntil)
}

func (l *Limiters) failed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.downUntil = time.Now().Add(l.retry)
	if !l.down {
		l.down = true
		l.log.Warn("shared rate limits unavailable: Redis does not answer; sends are not limited and other limits are this instance's own until it does", "err", err)
	}
}

func (l *Limiters) succeeded() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		l.down = false
		l.log.Info("shared rate limits back: Redis answers")
	}
}

// Limiter is one limit shared by the cluster through Redis. It satisfies chat.RateLimiter.
type Limiter struct {
	set      *Limiters
	key      string
	rate     limit.Rate
	fallback *limit.Limiter // nil: fail open
}

// AllowN takes n tokens of key in Redis, or none. now is used only by the fallback: the
// shared buckets keep Redis's time.
func (x *Limiter) AllowN(ctx context.Context, key string, n int, now time.Time) (bool, time.Duration) {
	if !x.set.available(time.Now()) {
		return x.outage(key, n, now)
	}
	rctx, cancel := context.WithTimeout(ctx, x.set.timeout)
	defer cancel()
	interval := x.rate.Per.Seconds() / float64(x.rate.Burst)
	res, err := gcra.Run(rctx, x.set.client, []string{x.key + key},
		x.rate.Burst, strconv.FormatFloat(interval, 'g', -1, 64), max(n, 1)).Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("unexpected answer %v", res)
	}
	if err != nil {
		if ctx.Err() == nil { // not the caller giving up: Redis failed
			x.set.failed(err)
		}
		return x.outage(key, n, now)
	}
	x.set.succeeded()
	if ok, _ := res[0].(int64); ok == 1 {
		return true, 0
	}
	s, _ := res[1].(string)
	secs, _ := strconv.ParseFloat(s, 64)
	return false, max(time.Duration(secs*float64(time.Second)), time.Millisecond)
}

func (x *Limiter) outage(key string, n int, now time.Time) (bool, time.Duration) {
	if x.fallback == nil {
		return true, 0
	}
	return x.fallback.AllowN(key, n, now)
}

// Reset refills key's bucket (in Redis, and in the fallback).
func (x *Limiter) Reset(ctx context.Context, key string) {
	x.fallback.Reset(key)
	if !x.set.available(time.Now()) {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, x.set.timeout)
	defer cancel()
	if err := x.set.client.Del(rctx, x.key+key).Err(); err != nil && ctx.Err() == nil {
		x.set.failed(err)
	}
}
