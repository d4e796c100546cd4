package bench

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// FanoutConfig is one group of Members, all online, Senders of them sending at a total Rate.
type FanoutConfig struct {
	Members  int
	Senders  int
	Rates    []float64 // messages per second into the group; one measured step per rate
	Duration time.Duration
	Warmup   time.Duration // sent before the first step, not measured
	Pad      int           // extra body bytes
	Drain    time.Duration // how long to wait for the last deliveries after a step
	ConnConc int
}

// maxSenderRate keeps each sender under the server's per-connection frame limit (50/s).
// humanRate is the default rate of one sender: a connection has one send in flight at a time
// (the server answers a connection's frames in order), so a sender's rate is also bounded by
// 1/ack latency.
const (
	maxSenderRate = 40
	humanRate     = 5
)

// Fanout runs the fanout scenario: per (message, recipient) latency, deliveries per second,
// lost and duplicated deliveries, ack latency and the server's CPU per delivery, per rate.
func Fanout(ctx context.Context, env Env, cfg FanoutConfig) (*Result, error) {
	if cfg.Members < 2 || len(cfg.Rates) == 0 {
		return nil, fmt.Errorf("fanout needs at least 2 members and a rate")
	}
	maxRate := 0.0
	for _, r := range cfg.Rates {
		maxRate = math.Max(maxRate, r)
	}
	senders := cfg.Senders
	if senders <= 0 { // people, not robots: a few messages a second each
		senders = int(math.Ceil(maxRate / humanRate))
	}
	senders = min(max(senders, 1, int(math.Ceil(maxRate/maxSenderRate))), cfg.Members)
	if cfg.Drain == 0 {
		cfg.Drain = 15 * time.Second
	}
	res := &Result{Name: fmt.Sprintf("fanout-%d", cfg.Members), Scenario: "fanout", Started: time.Now(),
		Params: map[string]any{"members": cfg.Members, "senders": senders, "rates": cfg.Rates,
			"duration_s": cfg.Duration.Seconds(), "pad": cfg.Pad, "seed": env.Seed}}

	env.logf("fanout: registering %d users", cfg.Members)
	users, err := Register(ctx, env.Base, env.Tag+"-f", cfg.Members, env.setupConc())
	if err != nil {
		return nil, err
	}
	chatID, err := CreateGroup(ctx, users[0], "fanout "+env.Tag, users)
	if err != nil {
		return nil, err
	}
	stats := &Stats{}
	ds := env.devices(users, stats, true) // a dropped client comes back and syncs, as real ones do
	run, stop := context.WithCancel(ctx)
	defer stop()
	defer closeAll(ds)
	env.logf("fanout: connecting %d devices to chat %d", len(ds), chatID)
	if failed := env.connectAll(ctx, ds, max(cfg.ConnConc, 50), run); failed > 0 {
		return nil, fmt.Errorf("fanout: %d of %d connections failed: %v", failed, len(ds), stats.Samples())
	}
	// Senders spread over the members (and so over the instances).
	var sendDevs []*Device
	for i := range senders {
		sendDevs = append(sendDevs, ds[i*len(ds)/senders])
	}
	if cfg.Warmup > 0 {
		env.logf("fanout: warm-up %s at %.0f msg/s", cfg.Warmup, cfg.Rates[0])
		warm := &Stats{}
		for _, d := range ds {
			d.SetStats(warm)
		}
		sent, failed, _ := sendAll(ctx, env, sendDevs, chatID, cfg.Rates[0], cfg.Warmup, cfg.Pad, 0)
		waitFor(ctx, cfg.Drain, func() bool { return warm.Acked.Load()+warm.ErrorFrames.Load() >= sent-failed })
		final, _ := LastSeq(ctx, users[0], chatID)
		waitFor(ctx, cfg.Drain, func() bool { return allHave(ds, chatID, final) })
	}

	for i, rate := range cfg.Rates {
		st := &Stats{}
		for _, d := range ds {
			d.SetStats(st)
		}
		env.logf("fanout: step %d: %.0f msg/s for %s (%d senders)", i+1, rate, cfg.Duration, senders)
		s0 := env.snap(ctx)
		start := time.Now()
		sent, failed, behind := sendAll(ctx, env, sendDevs, chatID, rate, cfg.Duration, cfg.Pad, uint64(i+1))
		sendEnd := time.Now()
		// Every send is answered (ack or error) before the chat's last seq is final.
		waitFor(ctx, cfg.Drain, func() bool { return st.Acked.Load()+st.ErrorFrames.Load() >= sent-failed })
		final, err := LastSeq(ctx, users[0], chatID)
		if err != nil {
			return nil, fmt.Errorf("read last seq: %w", err)
		}
		drained := waitFor(ctx, cfg.Drain, func() bool { return allHave(ds, chatID, final) })
		end := time.Now()
		s1 := env.snap(ctx)

		var lost int64
		for _, d := range ds {
			lost += d.Missing(chatID, final)
		}
		step := &Result{Name: fmt.Sprintf("fanout-%d @ %.0f msg/s", cfg.Members, rate), Scenario: "fanout",
			Started: start, Seconds: end.Sub(start).Seconds(),
			Params: map[string]any{"members": cfg.Members, "senders": senders, "rate": rate, "duration_s": cfg.Duration.Seconds()}}
		delivered := st.Delivered.Load()
		window := end.Sub(start).Seconds()
		if drained {
			// The last delivery came between the last poll and end; do not count the wait.
			window = math.Max(sendEnd.Sub(start).Seconds(), window-0.05)
		}
		step.Add("offered_deliveries_per_s", rate*float64(cfg.Members-1), "/s")
		step.Add("messages_sent", float64(sent), "")
		step.Add("messages_acked", float64(st.Acked.Load()), "")
		step.Add("send_failures", float64(failed+st.ErrorFrames.Load()), "")
		step.Add("deliveries", float64(delivered), "")
		step.Add("deliveries_per_s", float64(delivered)/window, "/s")
		step.Add("drain_s", end.Sub(sendEnd).Seconds(), "s")
		step.Add("sender_behind_max_ms", float64(behind.Milliseconds()), "ms")
		correctness(step, st, lost, false)
		step.Latency = map[string]Summary{"delivery": st.Delivery.Summarize(true), "ack": st.Ack.Summarize(true)}
		addCost(step, s0, s1, delivered, "delivery")
		step.Errors = st.Samples()
		if !drained {
			step.Errors = append(step.Errors, fmt.Sprintf("not every recipient got seq %d within %s", final, cfg.Drain))
		}
		res.Steps = append(res.Steps, step)
		env.logf("fanout: %.0f deliveries/s, p99 %.1f ms, lost %d, dup %d", float64(delivered)/window,
			step.Latency["delivery"].P99, lost, st.Dups.Load())
	}
	if len(res.Steps) == 1 { // one rate: the step is the result
		s := res.Steps[0]
		s.Name, s.Params = res.Name, res.Params
		return s, nil
	}
	return res, nil
}

// sendAll sends from each device at rate/len(devs) for d. It returns how many sends were
// made, how many could not be written, and how far the worst pacer fell behind.
func sendAll(ctx context.Context, env Env, devs []*Device, chatID int64, rate float64, d time.Duration, pad int, stream uint64) (sent, failed int64, behind time.Duration) {
	var wg sync.WaitGroup
	var nSent, nFailed atomic.Int64
	var mu sync.Mutex
	per := rate / float64(len(devs))
	for i, dev := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := env.rng(stream*1000 + uint64(i))
			// Start the senders out of phase, so that they do not send in bursts.
			time.Sleep(time.Duration(rng.Float64() * float64(time.Second) / per))
			n, worst := pace(ctx, per, d, nil, func() {
				if err := dev.Send(chatID, pad); err != nil {
					nFailed.Add(1)
				}
			})
			nSent.Add(n)
			mu.Lock()
			behind = max(behind, worst)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return nSent.Load(), nFailed.Load(), behind
}

func allHave(ds []*Device, chatID, upto int64) bool {
	for _, d := range ds {
		if !d.Has(chatID, upto) {
			return false
		}
	}
	return true
}

// addCost adds where the CPU went and the server's CPU per unit of work.
func addCost(r *Result, s0, s1 Snapshot, units int64, unit string) {
	u := usage(s0, s1)
	if u == nil {
		return
	}
	r.Usage = u
	if u.Instances == 0 || units == 0 {
		return
	}
	cpu := max(0, s1.Sum(mCPU)-s0.Sum(mCPU))
	r.Add("server_cpu_per_"+unit, cpu/float64(units)*1e6, "µs")
	r.Add("tool_cpu_per_"+unit, (s1.Tool-s0.Tool)/float64(units)*1e6, "µs")
	if d := s1.Sum(mSlowDropped) - s0.Sum(mSlowDropped); d > 0 {
		r.Add("slow_consumers_dropped", d, "")
	}
	if d := s1.Sum(mGapsHealed) - s0.Sum(mGapsHealed); d > 0 {
		r.Add("gaps_healed", d, "")
	}
}
