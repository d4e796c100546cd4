// Package bench is the load tool's engine (cmd/chatbench): simulated devices that speak only
// the public protocol of API.md, the scenarios, and their reports and charts.
package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Env is what every scenario needs: where the server is, where its instances' metrics are,
// and how to name and seed the run.
type Env struct {
	Base      string    // the server (Nginx in a cluster): http://host:port
	Metrics   []string  // each instance's /metrics URL
	Procs     []string  // process names whose CPU is reported (nginx, postgres, ...)
	Seed      uint64    // fixed: the same flags give the same load
	Tag       string    // unique per run: names its users
	SetupConc int       // parallel API calls during setup
	Log       io.Writer // progress lines
	// SenderURLs, if set, are instances that fanout's sending devices connect to directly, in
	// turn, instead of Base (a diagnostic: the store path without the proxy, or one instance
	// storing every send).
	SenderURLs []string
}

func (e Env) logf(format string, args ...any) {
	if e.Log != nil {
		fmt.Fprintf(e.Log, time.Now().Format("15:04:05 ")+format+"\n", args...)
	}
}

func (e Env) rng(stream uint64) *rand.Rand { return rand.New(rand.NewPCG(e.Seed, stream)) }

func (e Env) snap(ctx context.Context) Snapshot { return Servers{e.Metrics}.Snap(ctx, e.Procs) }

func (e Env) setupConc() int {
	if e.SetupConc <= 0 {
		return 32
	}
	return e.SetupConc
}

// devices makes one device per user.
func (e Env) devices(users []*User, stats *Stats, reconnect bool) []*Device {
	ds := make([]*Device, len(users))
	for i, u := range users {
		ds[i] = &Device{User: u, Base: e.Base, Stats: stats, Reconnect: reconnect, Index: i,
			Prefix: fmt.Sprintf("%s-%d-", e.Tag, i)}
	}
	return ds
}

// connectAll connects the devices, conc at a time, and starts their readers. It returns how
// many failed; a failed device is left unconnected.
func (e Env) connectAll(ctx context.Context, ds []*Device, conc int, run context.Context) (failed int64) {
	var fails atomic.Int64
	var logOnce sync.Once
	parallel(ctx, len(ds), conc, func(ctx context.Context, i int) error {
		if err := ds[i].Connect(ctx); err != nil {
			fails.Add(1)
			ds[i].Stats.Note("connect: %v", err)
			logOnce.Do(func() { e.logf("connect failed: %v", err) })
			return nil
		}
		go ds[i].Run(run)
		return nil
	})
	return fails.Load()
}

func closeAll(ds []*Device) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, d := range ds {
		wg.Add(1)
		sem <- struct{}{}
		go func() { defer wg.Done(); d.Close(); <-sem }()
	}
	wg.Wait()
}

// pace calls f at rate per second for d (open loop: a late call does not delay the next),
// or until ctx ends. It returns how many calls were made and how far behind schedule the
// pacer fell at worst.
func pace(ctx context.Context, rate float64, d time.Duration, poisson *rand.Rand, f func()) (n int64, worst time.Duration) {
	if rate <= 0 {
		return 0, 0
	}
	start := time.Now()
	end := start.Add(d)
	next := start
	gap := time.Duration(float64(time.Second) / rate)
	for {
		if poisson != nil {
			next = next.Add(time.Duration(poisson.ExpFloat64() * float64(gap)))
		} else {
			next = next.Add(gap)
		}
		if next.After(end) {
			return n, worst
		}
		if w := time.Until(next); w > 0 {
			select {
			case <-time.After(w):
			case <-ctx.Done():
				return n, worst
			}
		} else {
			worst = max(worst, -w)
		}
		f()
		n++
	}
}

// waitFor polls cond every 50 ms until it holds or timeout passes; it reports whether it held.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitProgress polls cond every 50 ms until it holds, while count keeps moving: it gives up
// once count has not moved for idle, or after limit in all. It reports whether cond held.
func waitProgress(ctx context.Context, idle, limit time.Duration, count func() int64, cond func() bool) bool {
	start := time.Now()
	last, moved := count(), start
	for {
		if cond() {
			return true
		}
		now := time.Now()
		if c := count(); c != last {
			last, moved = c, now
		}
		if now.Sub(moved) > idle || now.Sub(start) > limit || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// settle waits up to timeout for device i to have every seq of its chat chatOf[i] up to that
// chat's final seq, and returns whether they all did and how many (device, seq) pairs are
// still missing: the deliveries lost for good.
func settle(ctx context.Context, timeout time.Duration, ds []*Device, chatOf []int64, final map[int64]int64) (drained bool, lost int64) {
	drained = waitFor(ctx, timeout, func() bool {
		for i, d := range ds {
			if !d.Has(chatOf[i], final[chatOf[i]]) {
				return false
			}
		}
		return true
	})
	for i, d := range ds {
		lost += d.Missing(chatOf[i], final[chatOf[i]])
	}
	return drained, lost
}

// correctness adds lost/duplicated/out-of-order values and their checks; unless drops are
// part of the scenario, a dropped connection fails a check too.
func correctness(r *Result, st *Stats, lost int64, dropsExpected bool) {
	r.Add("lost", float64(lost), "deliveries")
	r.Add("duplicated", float64(st.Dups.Load()), "deliveries")
	r.Add("out_of_order", float64(st.OutOfOrder.Load()), "deliveries")
	r.Check("lost", "0", fmt.Sprint(lost), lost == 0)
	r.Check("duplicated", "0", fmt.Sprint(st.Dups.Load()), st.Dups.Load() == 0)
	r.Check("out of order", "0", fmt.Sprint(st.OutOfOrder.Load()), st.OutOfOrder.Load() == 0)
	if !dropsExpected {
		r.Add("connections_dropped", float64(st.Drops.Load()), "")
		r.Check("no connection dropped", "0", fmt.Sprint(st.Drops.Load()), st.Drops.Load() == 0)
	}
}
