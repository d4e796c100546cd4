package chat

import (
	"context"
	"strconv"
	"time"

	"github.com/wschat/chat/internal/limit"
)

// Limits are the service's abuse limits (docs/SECURITY.md lists them all).
type Limits struct {
	LoginPerAddr limit.Rate // login attempts per client address
	// LoginFailsPerEmail limits login attempts per email: each takes a token before the
	// password is checked, and a success gives them all back.
	LoginFailsPerEmail limit.Rate
	SignupsPerAddr     limit.Rate // accounts created per client address
	SendsPerUser       limit.Rate // messages sent per user, over HTTP and WebSocket together
	// ChatsPerUser limits the memberships a user creates: a group, a private chat, an
	// invitation and a join cost one each, and a group one more per first member beyond the
	// first (an invitation needs no consent, so it must not flood; nor may a group's
	// member_ids). Its burst also caps the first members of one group.
	ChatsPerUser limit.Rate
	// ReadsPerUser limits the REST reads that query the database (chat list, chat, history,
	// user search, discover, sessions); the HTTP layer takes them through AllowRead. The
	// WebSocket endpoint's own reads (hello, sync, gap healing) are not counted. The default
	// leaves room for a client's start, infinite scroll and paging after sync.truncated.
	ReadsPerUser limit.Rate
	// ReadMarksPerUser limits marking read (HTTP and the WebSocket read frame), per user. The
	// default leaves room for a client that marks read on every message it shows.
	ReadMarksPerUser limit.Rate
	// GroupMembers caps a group's members. The store enforces it when members join; give the
	// store the same value (store.Options.MaxGroupMembers).
	GroupMembers int
	// UserChats caps the chats one user belongs to. The store enforces it when someone joins
	// a chat in any way; give the store the same value (store.Options.MaxUserChats).
	UserChats int
}

// DefaultLimits are the limits of docs/API-NOTES.md.
var DefaultLimits = Limits{
	LoginPerAddr:       limit.Rate{Burst: 30, Per: 30 * time.Second}, // 30 at once, then one a second
	LoginFailsPerEmail: limit.Rate{Burst: 10, Per: 5 * time.Minute},  // 10 failures, then one per 30 s
	SignupsPerAddr:     limit.Rate{Burst: 10, Per: time.Hour},
	SendsPerUser:       limit.Rate{Burst: 40, Per: 2 * time.Second},   // 40 at once, then 20 a second
	ChatsPerUser:       limit.Rate{Burst: 120, Per: 4 * time.Minute},  // 120 at once, then one per 2 s
	ReadsPerUser:       limit.Rate{Burst: 300, Per: 30 * time.Second}, // 300 at once, then 10 a second
	ReadMarksPerUser:   limit.Rate{Burst: 300, Per: 10 * time.Second}, // 300 at once, then 30 a second
	GroupMembers:       MaxGroupMembers,
	UserChats:          MaxUserChats,
}

func (l *Limits) defaults() {
	rate := func(r *limit.Rate, def limit.Rate) {
		if r.Burst <= 0 || r.Per <= 0 {
			*r = def
		}
	}
	rate(&l.LoginPerAddr, DefaultLimits.LoginPerAddr)
	rate(&l.LoginFailsPerEmail, DefaultLimits.LoginFailsPerEmail)
	rate(&l.SignupsPerAddr, DefaultLimits.SignupsPerAddr)
	rate(&l.SendsPerUser, DefaultLimits.SendsPerUser)
	rate(&l.ChatsPerUser, DefaultLimits.ChatsPerUser)
	rate(&l.ReadsPerUser, DefaultLimits.ReadsPerUser)
	rate(&l.ReadMarksPerUser, DefaultLimits.ReadMarksPerUser)
	if l.GroupMembers <= 0 {
		l.GroupMembers = DefaultLimits.GroupMembers
	}
	if l.UserChats <= 0 {
		l.UserChats = DefaultLimits.UserChats
	}
}

// RateLimiter is one rate limit over keys (a user, an address, an email's digest). The
// service does not know whether it is this instance's (limit.Local) or shared by the cluster
// (internal/limit/redislimit).
type RateLimiter interface {
	// AllowN takes n tokens of key, or none: when fewer are left it returns false and how
	// long until there are enough. now is the service's clock with its monotonic reading (see
	// Service.limiterNow); a shared limiter may keep its own, so that instances agree.
	AllowN(ctx context.Context, key string, n int, now time.Time) (bool, time.Duration)
	// Reset refills key's bucket.
	Reset(ctx context.Context, key string)
}

// LimiterFactory makes the rate limiter of one limit. name tells the limits apart ("send-user");
// outage says what a limiter shared through another service does while it is unreachable.
type LimiterFactory func(name string, r limit.Rate, outage limit.Outage) RateLimiter

// limiterKeys caps the keys each in-memory rate limiter remembers.
const limiterKeys = 100_000

// LocalLimiters is the LimiterFactory of a single instance: in-memory token buckets.
func LocalLimiters(_ string, r limit.Rate, _ limit.Outage) RateLimiter {
	return limit.Local{L: limit.NewRate(r, limiterKeys)}
}

// newLimiters builds the rate limiters; with rate limits off they allow everything. A Redis
// outage must not become an outage of the product: sends fail open (nothing may stand between
// a user and their messages); every other limit falls back to this instance's own limiter of
// the same rate, so that an outage never opens the door to password guessing or invitation
// floods (the cluster then allows up to N times each rate, as before limits were shared).
func (s *Service) newLimiters() {
	none := limit.Local{}
	s.loginByEmail, s.loginByAddr, s.signupByAddr = none, none, none
	s.sendByUser, s.chatsByUser, s.readsByUser, s.marksByUser = none, none, none, none
	if !s.opts.RateLimits {
		return
	}
	mk := s.opts.NewLimiter
	if mk == nil {
		mk = LocalLimiters
	}
	l := s.opts.Limits
	s.loginByAddr = mk("login-addr", l.LoginPerAddr, limit.FailLocal)
	s.loginByEmail = mk("login-email", l.LoginFailsPerEmail, limit.FailLocal)
	s.signupByAddr = mk("signup-addr", l.SignupsPerAddr, limit.FailLocal)
	s.sendByUser = mk("send-user", l.SendsPerUser, limit.FailOpen)
	s.chatsByUser = mk("chats-user", l.ChatsPerUser, limit.FailLocal)
	s.readsByUser = mk("reads-user", l.ReadsPerUser, limit.FailLocal)
	s.marksByUser = mk("read-marks-user", l.ReadMarksPerUser, limit.FailLocal)
}

// take takes n tokens of key from l, or answers rate_limited.
func (s *Service) take(ctx context.Context, l RateLimiter, key string, n int) error {
	if ok, wait := l.AllowN(ctx, key, n, s.limiterNow()); !ok {
		return rateLimited(wait)
	}
	return nil
}

func userKey(p Principal) string { return strconv.FormatInt(p.UserID, 10) }
