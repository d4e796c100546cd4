package redislimit_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wschat/chat/internal/auth"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/limit"
	"github.com/wschat/chat/internal/limit/redislimit"
	"github.com/wschat/chat/internal/store"
	"github.com/wschat/chat/internal/testdb"
)

var _ chat.RateLimiter = (*redislimit.Limiter)(nil)

// instance is the Limiters of one chatd instance, on the test's Redis and prefix.
func instance(t *testing.T, addr, prefix string) *redislimit.Limiters {
	t.Helper()
	l, err := redislimit.New(redislimit.Options{URL: "redis://" + addr + "/0", Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func factory(l *redislimit.Limiters) chat.LimiterFactory {
	return func(name string, r limit.Rate, o limit.Outage) chat.RateLimiter { return l.Limiter(name, r, o) }
}

// TestSharedBucket: two instances' limiters of one name share each key's bucket: together
// they allow the burst once, n tokens at a time, and say how long to wait; Reset refills.
func TestSharedBucket(t *testing.T) {
	t.Parallel()
	addr, prefix := testdb.Redis(t)
	ctx := context.Background()
	r := limit.Rate{Burst: 5, Per: time.Hour}
	a := instance(t, addr, prefix).Limiter("test", r, limit.FailOpen)
	b := instance(t, addr, prefix).Limiter("test", r, limit.FailOpen)
	allowed := 0
	for i := range 20 {
		x := a
		if i%2 == 1 {
			x = b
		}
		if ok, wait := x.AllowN(ctx, "k", 1, time.Now()); ok {
			allowed++
		} else if wait < 10*time.Minute || wait > 13*time.Minute { // one token per 12 min
			t.Errorf("attempt %d refused with wait %v, want about 12m", i+1, wait)
		}
	}
	if allowed != 5 {
		t.Errorf("two instances allowed %d of a burst of 5", allowed)
	}
	if ok, _ := b.AllowN(ctx, "other", 5, time.Now()); !ok {
		t.Error("another key: 5 tokens at once refused")
	}
	if ok, _ := a.AllowN(ctx, "other", 1, time.Now()); ok {
		t.Error("a 6th token of another key allowed")
	}
	if ok, _ := a.AllowN(ctx, "fresh", 6, time.Now()); ok {
		t.Error("more than the burst allowed at once")
	}
	// Another name is another limit; another prefix another deployment.
	if ok, _ := instance(t, addr, prefix).Limiter("other-limit", r, limit.FailOpen).AllowN(ctx, "k", 1, time.Now()); !ok {
		t.Error("another limit's bucket was spent")
	}
	if ok, _ := instance(t, addr, prefix+"-x").Limiter("test", r, limit.FailOpen).AllowN(ctx, "k", 1, time.Now()); !ok {
		t.Error("another prefix's bucket was spent")
	}
	b.Reset(ctx, "k")
	if ok, _ := a.AllowN(ctx, "k", 5, time.Now()); !ok {
		t.Error("after Reset: the burst refused")
	}
}

// TestSharedBucketRefills: the shared bucket refills at its rate (by Redis's clock).
func TestSharedBucketRefills(t *testing.T) {
	t.Parallel()
	addr, prefix := testdb.Redis(t)
	ctx := context.Background()
	x := instance(t, addr, prefix).Limiter("refill", limit.Rate{Burst: 2, Per: 200 * time.Millisecond}, limit.FailOpen)
	for range 2 {
		if ok, _ := x.AllowN(ctx, "k", 1, time.Now()); !ok {
			t.Fatal("the burst refused")
		}
	}
	ok, wait := x.AllowN(ctx, "k", 1, time.Now())
	if ok || wait <= 0 || wait > 100*time.Millisecond {
		t.Fatalf("beyond the burst: %v, wait %v; want refused, at most 100ms", ok, wait)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ok, _ := x.AllowN(ctx, "k", 1, time.Now()); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no token after 10 s at 10 a second")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// services are two chat services on one database, as two instances of a cluster, sharing
// their rate limiters through Redis (or through Limiters pointed wherever lims say).
func services(t *testing.T, lims [2]*redislimit.Limiters, limits chat.Limits) (svcs [2]*chat.Service, st *store.Store) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "chat.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewTokens([][]byte{[]byte("redislimit-test-secret-0123456789abcdef")}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for i := range svcs {
		svcs[i] = chat.NewService(st, tokens, chat.Options{Signup: true, RateLimits: true, Limits: limits, NewLimiter: factory(lims[i]),
			PasswordParams: auth.FastPasswordParams})
	}
	return svcs, st
}

// counts tallies the outcomes of service calls.
type counts struct{ ok, limited, other atomic.Int32 }

func (c *counts) add(t *testing.T, err error, okCode string) {
	switch code := chat.ErrorCode(err); code {
	case okCode:
		c.ok.Add(1)
	case chat.CodeRateLimited:
		c.limited.Add(1)
	default:
		c.other.Add(1)
		t.Errorf("unexpected outcome: %v", err)
	}
}

// TestTwoInstancesShareLimits: logins, sign-ups, sends, chat changes and read marks made
// through two instances at once stay within one rate together (they used to get one each).
func TestTwoInstancesShareLimits(t *testing.T) {
	t.Parallel()
	addr, prefix := testdb.Redis(t)
	per := limit.Rate{Burst: 4, Per: time.Hour}
	limits := chat.Limits{LoginFailsPerEmail: per, SignupsPerAddr: per, SendsPerUser: per, ChatsPerUser: per, ReadMarksPerUser: per, ReadsPerUser: per,
		LoginPerAddr: limit.Rate{Burst: 1000, Per: time.Hour}}
	svcs, _ := services(t, [2]*redislimit.Limiters{instance(t, addr, prefix), instance(t, addr, prefix)}, limits)
	ctx := context.Background()
	_, creds, err := svcs[0].Register(ctx, chat.SignIn{Email: "ann@example.test", Name: "Ann", Password: "long enough", Addr: "10.1.1.1"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := svcs[0].Authenticate(ctx, creds.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 12
	run := func(name, okCode string, call func(i int, s *chat.Service) error) {
		t.Helper()
		var c counts
		var wg sync.WaitGroup
		for i := range rounds {
			wg.Go(func() { c.add(t, call(i, svcs[i%2]), okCode) })
		}
		wg.Wait()
		if c.ok.Load() != int32(per.Burst) || c.limited.Load() != rounds-int32(per.Burst) {
			t.Errorf("%s through two instances: %d allowed, %d limited; want %d and %d", name, c.ok.Load(), c.limited.Load(), per.Burst, rounds-per.Burst)
		}
	}
	run("wrong logins of one email", chat.CodeInvalidCredentials, func(i int, s *chat.Service) error {
		_, _, err := s.Login(ctx, chat.SignIn{Email: "ann@example.test", Password: "wrong guess", Addr: fmt.Sprint("10.2.0.", i)})
		return err
	})
	run("sign-ups from one address", "", func(i int, s *chat.Service) error {
		_, _, err := s.Register(ctx, chat.SignIn{Email: fmt.Sprintf("u%d@example.test", i), Name: "U", Password: "long enough", Addr: "10.3.0.1"})
		return err
	})
	var group atomic.Int64
	run("chat changes of one user", "", func(i int, s *chat.Service) error {
		d, err := s.CreateGroup(ctx, p, fmt.Sprint("G", i), false, nil)
		if err == nil {
			group.Store(d.ID)
		}
		return err
	})
	g := group.Load()
	run("sends of one user", "", func(i int, s *chat.Service) error {
		_, _, err := s.Send(ctx, p, chat.SendInput{ChatID: g, Body: "hi", ClientID: fmt.Sprint("c", i)})
		return err
	})
	run("read marks of one user", "", func(i int, s *chat.Service) error {
		_, err := s.MarkRead(ctx, p, g, int64(i))
		return err
	})
	run("REST reads of one user", "", func(i int, s *chat.Service) error { return s.AllowRead(ctx, p) })
}

// TestRedisDown: with Redis unreachable (a closed port), nothing is refused for it: sends fail
// open, and logins, sign-ups and the other limits hold per instance, with this instance's own
// in-memory buckets of the same rate.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	down := instance(t, closed, testdb.RandomName("chat-test-"))
	ctx := context.Background()
	r := limit.Rate{Burst: 2, Per: time.Hour}
	open, local := down.Limiter("open", r, limit.FailOpen), down.Limiter("local", r, limit.FailLocal)
	for i := range 10 {
		if ok, _ := open.AllowN(ctx, "k", 1, time.Now()); !ok {
			t.Fatalf("fail-open limiter refused attempt %d with Redis down", i+1)
		}
	}
	for i := range 3 {
		ok, wait := local.AllowN(ctx, "k", 1, time.Now())
		if ok != (i < 2) {
			t.Errorf("fail-local limiter, attempt %d with Redis down: %v, want the local burst of 2", i+1, ok)
		}
		if !ok && wait <= 0 {
			t.Errorf("fail-local refusal without a wait")
		}
	}

	per := limit.Rate{Burst: 3, Per: time.Hour}
	svcs, _ := services(t, [2]*redislimit.Limiters{down, down}, chat.Limits{LoginFailsPerEmail: per, SendsPerUser: per})
	s := svcs[0]
	_, creds, err := s.Register(ctx, chat.SignIn{Email: "ann@example.test", Name: "Ann", Password: "long enough", Addr: "10.1.1.1"})
	if err != nil {
		t.Fatalf("sign-up with Redis down: %v", err)
	}
	p, err := s.Authenticate(ctx, creds.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	var logins counts
	for range 6 {
		_, _, err := s.Login(ctx, chat.SignIn{Email: "ann@example.test", Password: "wrong guess", Addr: "10.2.0.1"})
		logins.add(t, err, chat.CodeInvalidCredentials)
	}
	if logins.ok.Load() != 3 || logins.limited.Load() != 3 {
		t.Errorf("wrong logins with Redis down: %d checked, %d limited; want the local 3 and 3", logins.ok.Load(), logins.limited.Load())
	}
	if _, _, err := s.Login(ctx, chat.SignIn{Email: "other@example.test", Password: "x", Addr: "10.2.0.1"}); chat.ErrorCode(err) != chat.CodeInvalidCredentials {
		t.Errorf("another email with Redis down: %v, want invalid_credentials", err)
	}
	g, err := s.CreateGroup(ctx, p, "G", false, nil)
	if err != nil {
		t.Fatalf("create a group with Redis down: %v", err)
	}
	for i := range 10 {
		if _, _, err := s.Send(ctx, p, chat.SendInput{ChatID: g.ID, Body: "hi", ClientID: fmt.Sprint("c", i)}); err != nil {
			t.Fatalf("send %d with Redis down: %v, want sends to fail open", i+1, err)
		}
	}
}
