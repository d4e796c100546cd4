package bench

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// ChatsConfig is many small chats, every member online and sending at a human pace: a
// Poisson process at the total Rate picks a random member for each message.
type ChatsConfig struct {
	Users            int
	MinSize, MaxSize int
	Rates            []float64
	Duration         time.Duration
	Warmup           time.Duration
	Pad              int
	Drain            time.Duration
	ConnConc         int
}

// pacers is how many goroutines drive the Poisson process (each at rate/pacers).
const pacers = 4

// Chats runs the chats scenario: sends per second stored, acknowledged and delivered, with
// ack and delivery latency, per rate.
func Chats(ctx context.Context, env Env, cfg ChatsConfig) (*Result, error) {
	if cfg.MinSize < 2 || cfg.MaxSize < cfg.MinSize || cfg.Users < cfg.MinSize || len(cfg.Rates) == 0 {
		return nil, fmt.Errorf("chats needs 2 <= min <= max <= users and a rate")
	}
	if cfg.Drain == 0 {
		cfg.Drain = 15 * time.Second
	}
	res := &Result{Name: fmt.Sprintf("chats-%d", cfg.Users), Scenario: "chats", Started: time.Now(),
		Params: map[string]any{"users": cfg.Users, "min": cfg.MinSize, "max": cfg.MaxSize, "rates": cfg.Rates,
			"duration_s": cfg.Duration.Seconds(), "seed": env.Seed}}
	env.logf("chats: registering %d users", cfg.Users)
	users, err := Register(ctx, env.Base, env.Tag+"-c", cfg.Users, env.setupConc())
	if err != nil {
		return nil, err
	}
	chatOf, err := makeGroupsOf(ctx, env, users, cfg.MinSize, cfg.MaxSize, 1)
	if err != nil {
		return nil, err
	}
	chats := map[int64]int{} // chat -> a member's index
	for i, c := range chatOf {
		chats[c] = i
	}
	res.Params["chats"] = len(chats)
	stats := &Stats{}
	ds := env.devices(users, stats, true) // a dropped client comes back and syncs, as real ones do
	run, stop := context.WithCancel(ctx)
	defer stop()
	defer closeAll(ds)
	env.logf("chats: connecting %d devices in %d chats", len(ds), len(chats))
	if failed := env.connectAll(ctx, ds, max(cfg.ConnConc, 100), run); failed > 0 {
		return nil, fmt.Errorf("chats: %d of %d connections failed: %v", failed, len(ds), stats.Samples())
	}

	// step sends at rate for d and waits for every ack and delivery; it returns the stats,
	// how many sends were written and failed, and when sending and draining ended.
	step := func(rate float64, d time.Duration, stream uint64) (*Stats, int64, int64, time.Time, time.Time, bool, int64) {
		st := &Stats{}
		for _, dv := range ds {
			dv.SetStats(st)
		}
		var sent, failed atomic.Int64
		var wg sync.WaitGroup
		for p := range pacers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := env.rng(stream*100 + uint64(p))
				n, _ := pace(ctx, rate/pacers, d, rng, func() {
					i := rng.IntN(len(ds))
					if err := ds[i].Send(chatOf[i], cfg.Pad); err != nil {
						failed.Add(1)
					}
				})
				sent.Add(n)
			}()
		}
		wg.Wait()
		sendEnd := time.Now()
		waitFor(ctx, cfg.Drain, func() bool { return st.Acked.Load()+st.ErrorFrames.Load() >= sent.Load()-failed.Load() })
		final := map[int64]int64{}
		var mu sync.Mutex
		ids := make([]int64, 0, len(chats))
		for id := range chats {
			ids = append(ids, id)
		}
		parallel(ctx, len(ids), env.setupConc(), func(ctx context.Context, k int) error {
			seq, err := LastSeq(ctx, users[chats[ids[k]]], ids[k])
			if err != nil {
				st.Note("last seq of chat %d: %v", ids[k], err)
			}
			mu.Lock()
			final[ids[k]] = seq
			mu.Unlock()
			return nil
		})
		drained, lost := settle(ctx, cfg.Drain, ds, chatOf, final)
		return st, sent.Load(), failed.Load(), sendEnd, time.Now(), drained, lost
	}

	if cfg.Warmup > 0 {
		env.logf("chats: warm-up %s at %.0f msg/s", cfg.Warmup, cfg.Rates[0])
		step(cfg.Rates[0], cfg.Warmup, 0)
	}
	for i, rate := range cfg.Rates {
		env.logf("chats: step %d: %.0f msg/s for %s", i+1, rate, cfg.Duration)
		s0 := env.snap(ctx)
		start := time.Now()
		st, sent, failed, sendEnd, end, drained, lost := step(rate, cfg.Duration, uint64(i+1))
		s1 := env.snap(ctx)
		r := &Result{Name: fmt.Sprintf("chats-%d @ %.0f msg/s", cfg.Users, rate), Scenario: "chats", Started: start,
			Seconds: end.Sub(start).Seconds(), Params: map[string]any{"users": cfg.Users, "chats": len(chats), "rate": rate,
				"duration_s": cfg.Duration.Seconds()}}
		// Sends per second stored and acknowledged: over the time from the first send to the
		// last acknowledgement (never shorter than the sending itself). The drain that follows,
		// waiting for every member's last delivery, is not part of it.
		window := sendEnd.Sub(start).Seconds()
		if last := st.LastAck.Load(); last > 0 {
			window = math.Max(window, float64(last)/1e6-float64(start.Sub(epoch))/1e9)
		}
		acked := st.Acked.Load()
		r.Add("offered_per_s", rate, "msg/s")
		r.Add("messages_sent", float64(sent), "")
		r.Add("messages_acked", float64(acked), "")
		r.Add("acked_per_s", float64(acked)/window, "msg/s")
		r.Add("send_failures", float64(failed+st.ErrorFrames.Load()), "")
		r.Add("deliveries", float64(st.Delivered.Load()), "")
		r.Add("deliveries_per_s", float64(st.Delivered.Load())/window, "/s")
		r.Add("drain_s", end.Sub(sendEnd).Seconds(), "s")
		correctness(r, st, lost, false)
		r.Latency = map[string]Summary{"ack": st.Ack.Summarize(true), "delivery": st.Delivery.Summarize(true)}
		addCost(r, s0, s1, acked, "message")
		r.Errors = st.Samples()
		if !drained {
			r.Errors = append(r.Errors, fmt.Sprintf("not every member got every message within %s", cfg.Drain))
		}
		res.Steps = append(res.Steps, r)
		env.logf("chats: %.0f acked/s, ack p99 %.1f ms, lost %d, dup %d", float64(acked)/window, r.Latency["ack"].P99, lost, st.Dups.Load())
	}
	if len(res.Steps) == 1 {
		s := res.Steps[0]
		s.Name, s.Params = res.Name, res.Params
		return s, nil
	}
	return res, nil
}
