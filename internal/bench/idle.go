package bench

import (
	"context"
	"fmt"
	"time"
)

// IdleConfig is N connections (one user each, in groups of ChatSize) held open.
type IdleConfig struct {
	Conns    int
	ChatSize int // 0: no chats
	// OneGroup puts every user into one group instead (ChatSize is ignored): the shape of a
	// big group coming online at once, whose presence must cost O(N) frames, not O(N²).
	OneGroup bool
	ConnConc int
	Hold     time.Duration
}

// Idle opens the connections, holds them and reports connect times, failures and the
// server's memory per connection (RSS and Go heap of every instance, before and after).
func Idle(ctx context.Context, env Env, cfg IdleConfig) (*Result, error) {
	size := cfg.ChatSize
	if cfg.OneGroup {
		size = cfg.Conns
	}
	res := &Result{Name: fmt.Sprintf("idle-%d", cfg.Conns), Scenario: "idle", Started: time.Now(),
		Params: map[string]any{"conns": cfg.Conns, "chat_size": size, "one_group": cfg.OneGroup, "conc": cfg.ConnConc, "hold_s": cfg.Hold.Seconds()}}
	env.logf("idle: registering %d users", cfg.Conns)
	users, err := Register(ctx, env.Base, env.Tag+"-i", cfg.Conns, env.setupConc())
	if err != nil {
		return nil, err
	}
	if err := makeGroups(ctx, env, users, size, size, 0); err != nil {
		return nil, err
	}
	stats := &Stats{}
	ds := env.devices(users, stats, false)
	run, stop := context.WithCancel(ctx)
	defer stop()
	defer closeAll(ds)

	time.Sleep(2 * time.Second) // let setup's garbage be collected before the baseline
	before := env.snap(ctx)
	env.logf("idle: opening %d connections, %d at a time", cfg.Conns, cfg.ConnConc)
	start := time.Now()
	failed := env.connectAll(ctx, ds, max(cfg.ConnConc, 1), run)
	connectSecs := time.Since(start).Seconds()
	ok := int64(cfg.Conns) - failed
	env.logf("idle: %d open (%d failed) in %.1f s; holding %s", ok, failed, connectSecs, cfg.Hold)
	time.Sleep(cfg.Hold)
	after := env.snap(ctx)
	presence := stats.Presence.Load()
	res.Seconds = after.At.Sub(start).Seconds()

	res.Add("connections_ok", float64(ok), "")
	res.Add("connect_failures", float64(failed), "")
	res.Add("dropped_while_held", float64(stats.Drops.Load()), "")
	res.Add("connects_per_s", float64(ok)/connectSecs, "/s")
	res.Add("presence_frames", float64(presence), "")
	if ok > 0 {
		res.Add("presence_frames_per_conn", float64(presence)/float64(ok), "")
	}
	if after.Answered() > 0 {
		res.Add("server_connections", after.Sum(mConns), "")
		rss0, rss1 := before.Sum(mRSS), after.Sum(mRSS)
		heap0, heap1 := before.Sum(mHeap), after.Sum(mHeap)
		res.Add("rss_before", rss0/(1<<20), "MiB")
		res.Add("rss_after", rss1/(1<<20), "MiB")
		res.Add("heap_before", heap0/(1<<20), "MiB")
		res.Add("heap_after", heap1/(1<<20), "MiB")
		if ok > 0 {
			res.Add("rss_per_conn", (rss1-rss0)/float64(ok)/1024, "KiB")
			res.Add("heap_per_conn", (heap1-heap0)/float64(ok)/1024, "KiB")
			res.Add("stack_per_conn", (after.Sum(mStack)-before.Sum(mStack))/float64(ok)/1024, "KiB")
			res.Add("goroutines_per_conn", (after.Sum(mGoroutines)-before.Sum(mGoroutines))/float64(ok), "")
		}
		res.Usage = usage(before, after)
	}
	res.Latency = map[string]Summary{"connect": stats.Connect.Summarize(true)}
	res.Check("connect failures", "0", fmt.Sprint(failed), failed == 0)
	res.Check("dropped while held", "0", fmt.Sprint(stats.Drops.Load()), stats.Drops.Load() == 0)
	if cfg.OneGroup && ok > 0 {
		// Nobody subscribed: a member of a big group hears of no other's presence. A few
		// per connection leaves room for the chats the users share besides (none here).
		per := float64(presence) / float64(ok)
		res.Check("presence frames per connection", "<= 5 (O(N) in all)", fmt.Sprintf("%.2f", per), per <= 5)
	}
	res.Errors = stats.Samples()
	return res, nil
}

// makeGroups puts the users into groups of min..max members (seeded), created by their first
// member, and returns nothing but an error; with size 0 there are no chats.
func makeGroups(ctx context.Context, env Env, users []*User, minSize, maxSize int, stream uint64) error {
	_, err := makeGroupsOf(ctx, env, users, minSize, maxSize, stream)
	return err
}

// makeGroupsOf is makeGroups returning each user's chat (by user index).
func makeGroupsOf(ctx context.Context, env Env, users []*User, minSize, maxSize int, stream uint64) ([]int64, error) {
	chatOf := make([]int64, len(users))
	if maxSize <= 0 {
		return chatOf, nil
	}
	rng := env.rng(100 + stream)
	type group struct{ from, to int }
	var groups []group
	for i := 0; i < len(users); {
		n := minSize
		if maxSize > minSize {
			n += rng.IntN(maxSize - minSize + 1)
		}
		n = min(n, len(users)-i)
		if n < 2 && len(groups) > 0 { // a last lone user joins the previous group
			groups[len(groups)-1].to = len(users)
			break
		}
		groups = append(groups, group{i, i + n})
		i += n
	}
	env.logf("creating %d group chats", len(groups))
	err := parallel(ctx, len(groups), env.setupConc(), func(ctx context.Context, gi int) error {
		g := groups[gi]
		id, err := CreateGroup(ctx, users[g.from], fmt.Sprintf("%s %d", env.Tag, gi), users[g.from:g.to])
		if err != nil {
			return err
		}
		for i := g.from; i < g.to; i++ {
			chatOf[i] = id
		}
		return nil
	})
	return chatOf, err
}
