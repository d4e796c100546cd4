package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wschat/chat/internal/client"
)

// SoakConfig is the mixed load held for a long time: chats at Rate, REST reads at ReadRate,
// and Churn devices per second dropping and coming back.
type SoakConfig struct {
	Users    int
	Rate     float64
	ReadRate float64
	Churn    float64
	Duration time.Duration
	Interval time.Duration
	ConnConc int
}

// Soak runs the mixed load and samples the servers' memory and goroutines and the latencies
// every interval.
func Soak(ctx context.Context, env Env, cfg SoakConfig) (*Result, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	res := &Result{Name: fmt.Sprintf("soak-%d", cfg.Users), Scenario: "soak", Started: time.Now(),
		Params: map[string]any{"users": cfg.Users, "rate": cfg.Rate, "reads": cfg.ReadRate, "churn": cfg.Churn,
			"duration_s": cfg.Duration.Seconds(), "seed": env.Seed}}
	env.logf("soak: registering %d users", cfg.Users)
	users, err := Register(ctx, env.Base, env.Tag+"-s", cfg.Users, env.setupConc())
	if err != nil {
		return nil, err
	}
	chatOf, err := makeGroupsOf(ctx, env, users, 2, 10, 3)
	if err != nil {
		return nil, err
	}
	total := &Stats{}
	cur := &Stats{}
	ds := env.devices(users, cur, true)
	run, stop := context.WithCancel(ctx)
	defer stop()
	defer closeAll(ds)
	if failed := env.connectAll(ctx, ds, max(cfg.ConnConc, 100), run); failed > 0 {
		return nil, fmt.Errorf("soak: %d of %d connections failed: %v", failed, len(ds), cur.Samples())
	}

	rest := &Hist{} // REST latency of the current interval
	var restTotal Hist
	var restErrors, churned, offline atomic.Int64
	var restMu sync.Mutex
	restHist := func() *Hist { restMu.Lock(); defer restMu.Unlock(); return rest }

	load, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	loop := func(rate float64, stream uint64, f func(rng interface{ IntN(int) int })) {
		if rate <= 0 {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := env.rng(stream)
			pace(load, rate, cfg.Duration, rng, func() { f(rng) })
		}()
	}
	for p := range pacers {
		loop(cfg.Rate/pacers, 400+uint64(p), func(rng interface{ IntN(int) int }) {
			i := rng.IntN(len(ds))
			if err := ds[i].Send(chatOf[i], 40); err != nil { // dropped by churn, not yet back
				offline.Add(1)
			}
		})
	}
	loop(cfg.ReadRate, 500, func(rng interface{ IntN(int) int }) {
		i := rng.IntN(len(users))
		path := "/api/v1/chats"
		if rng.IntN(2) == 0 {
			path = "/api/v1/chats/" + strconv.FormatInt(chatOf[i], 10) + "/messages?limit=50"
		}
		go func() {
			start := time.Now()
			if err := restGet(load, users[i], path); err != nil {
				if load.Err() == nil {
					restErrors.Add(1)
					total.Note("REST %s: %v", path, err)
				}
				return
			}
			restHist().Record(time.Since(start))
		}()
	})
	loop(cfg.Churn, 600, func(rng interface{ IntN(int) int }) {
		ds[rng.IntN(len(ds))].Kill()
		churned.Add(1)
	})

	start := time.Now()
	first := env.snap(ctx)
	last := first
	sample := func(st *Stats, rh *Hist, s Snapshot, secs float64) {
		res.Series = append(res.Series, Sample{At: s.At.Sub(start).Seconds(), RSSMiB: s.Sum(mRSS) / (1 << 20),
			HeapMiB: s.Sum(mHeap) / (1 << 20), Goroutines: s.Sum(mGoroutines), Conns: s.Sum(mConns),
			SendsPerS: float64(st.Acked.Load()) / secs, AckP99: st.Ack.Summarize(false).P99,
			DelivP99: st.Delivery.Summarize(false).P99, RestP99: rh.Summarize(false).P99, Errors: st.ErrorFrames.Load()})
	}
	sample(&Stats{}, &Hist{}, first, 1)
	tick := time.NewTicker(cfg.Interval)
	end := time.After(cfg.Duration)
	env.logf("soak: running %s", cfg.Duration)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-end:
			break loop
		case <-tick.C:
		}
		next := &Stats{}
		for _, d := range ds {
			d.SetStats(next)
		}
		restMu.Lock()
		rh := rest
		rest = &Hist{}
		restMu.Unlock()
		s := env.snap(ctx)
		prev := cur
		cur = next
		sample(prev, rh, s, s.At.Sub(last.At).Seconds())
		mergeStats(total, prev)
		restTotal.Merge(rh)
		last = s
		p := res.Series[len(res.Series)-1]
		env.logf("soak: %.0f s: %.0f sends/s, ack p99 %.1f ms, RSS %.0f MiB, heap %.0f MiB, %.0f goroutines, %.0f conns",
			p.At, p.SendsPerS, p.AckP99, p.RSSMiB, p.HeapMiB, p.Goroutines, p.Conns)
	}
	tick.Stop()
	stopLoad()
	wg.Wait()
	mergeStats(total, cur)
	for _, d := range ds {
		d.SetStats(total)
	}
	restMu.Lock()
	restTotal.Merge(rest)
	restMu.Unlock()
	s1 := env.snap(ctx)

	// Everyone back, then every member must have every message of their chat. The devices'
	// access tokens were all issued at once, so they all expire (4001), refresh and reconnect
	// together every CHAT_ACCESS_TTL; the run may end in such a wave: give it time.
	waitFor(ctx, 90*time.Second, func() bool {
		for _, d := range ds {
			dr, sy := d.DropState()
			if !dr.IsZero() && !sy.After(dr) {
				return false
			}
		}
		return true
	})
	final := map[int64]int64{}
	var unread []string // chats whose last seq could not be read
	for i, c := range chatOf {
		if _, ok := final[c]; ok {
			continue
		}
		seq, err := LastSeq(ctx, users[i], c)
		for try := 0; err != nil && try < 10 && ctx.Err() == nil; try++ {
			time.Sleep(3 * time.Second) // e.g. the token expired at the end: the device refreshes it
			seq, err = LastSeq(ctx, users[i], c)
		}
		if err != nil { // keep the run's figures; the check below fails it
			unread = append(unread, fmt.Sprintf("chat %d: %v", c, err))
			continue
		}
		final[c] = seq
	}
	_, lost := settle(ctx, 15*time.Second, ds, chatOf, final)
	res.Seconds = s1.At.Sub(first.At).Seconds()
	res.Add("messages_acked", float64(total.Acked.Load()), "")
	res.Add("acked_per_s", float64(total.Acked.Load())/res.Seconds, "msg/s")
	res.Add("deliveries", float64(total.Delivered.Load()), "")
	res.Add("rest_reads", float64(restTotal.Count()), "")
	res.Add("rest_errors", float64(restErrors.Load()), "")
	res.Add("churned", float64(churned.Load()), "drops")
	// Every device's access token was issued at the start: each CHAT_ACCESS_TTL they all
	// expire (4001), refresh and reconnect; those drops are part of the run, not failures.
	res.Add("token_expired_drops", float64(total.Expired.Load()), "")
	res.Add("unexpected_drops", float64(max(0, total.Drops.Load()-churned.Load()-total.Expired.Load())), "")
	res.Add("sends_while_offline", float64(offline.Load()), "")
	res.Add("redelivered_across_reconnect", float64(total.Redelivered.Load()), "")
	if n := len(res.Series); n > 1 {
		a, b := res.Series[1], res.Series[n-1]
		res.Add("rss_start", a.RSSMiB, "MiB")
		res.Add("rss_end", b.RSSMiB, "MiB")
		res.Add("heap_start", a.HeapMiB, "MiB")
		res.Add("heap_end", b.HeapMiB, "MiB")
		res.Add("goroutines_start", a.Goroutines, "")
		res.Add("goroutines_end", b.Goroutines, "")
	}
	correctness(res, total, lost, true)
	res.Check("every chat's last seq read", "0 failed", fmt.Sprint(len(unread), " failed"), len(unread) == 0)
	res.Latency = map[string]Summary{"ack": total.Ack.Summarize(true), "delivery": total.Delivery.Summarize(true),
		"rest": restTotal.Summarize(true)}
	addCost(res, first, s1, total.Acked.Load(), "message")
	res.Errors = append(total.Samples(), unread...)
	return res, nil
}

// mergeStats adds the counts and histograms of s to into.
func mergeStats(into, s *Stats) {
	into.Delivery.Merge(&s.Delivery)
	into.Ack.Merge(&s.Ack)
	into.Connect.Merge(&s.Connect)
	into.Delivered.Add(0, s.Delivered.Load())
	into.Acked.Add(s.Acked.Load())
	into.Dups.Add(s.Dups.Load())
	into.OutOfOrder.Add(s.OutOfOrder.Load())
	into.Redelivered.Add(s.Redelivered.Load())
	into.ErrorFrames.Add(s.ErrorFrames.Load())
	into.Drops.Add(s.Drops.Load())
	into.Expired.Add(s.Expired.Load())
	into.ConnectFails.Add(s.ConnectFails.Load())
	into.Reconnects.Add(s.Reconnects.Load())
	into.mu.Lock()
	for _, e := range s.Samples() {
		if len(into.samples) < 30 {
			into.samples = append(into.samples, e)
		}
	}
	into.mu.Unlock()
}

// restGet reads a path, refreshing the access token once when it has expired.
func restGet(ctx context.Context, u *User, path string) error {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := u.Client.Do(rctx, http.MethodGet, path, nil, nil)
	var ae *client.Error
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		if err := u.Client.Refresh(rctx); err != nil {
			return err
		}
		err = u.Client.Do(rctx, http.MethodGet, path, nil, nil)
	}
	return err
}
