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
	Members int
	// Senders is how many distinct members send, each at Rate/Senders; 0 picks one per
	// humanRate msg/s, raised so that none sends more than maxSenderRate.
	Senders  int
	Rates    []float64 // messages per second into the group; one measured step per rate
	Duration time.Duration
	Warmup   time.Duration // sent before the first step, not measured
	Pad      int           // extra body bytes
	// Drain is how long to wait for the last answers and deliveries after a step without
	// any of them arriving (a server working through a backlog is waited for, up to
	// maxDrain in all).
	Drain    time.Duration
	ConnConc int
	// Name names the result (default fanout-<members>).
	Name string
}

// maxSenderRate keeps each default sender under the server's default per-connection frame
// limit (50/s). humanRate is the default rate of one sender.
const (
	maxSenderRate = 40
	humanRate     = 5
	maxDrain      = 3 * time.Minute
)

// room is a fanout's server side, whatever the server: members online in one room (one
// device each), and the number of the room's last message.
type room interface {
	devices() []member
	lastSeq(ctx context.Context) (int64, error)
}

// member is one online member's device.
type member interface {
	// Send sends one message (its send time in it) into the room.
	Send(chatID int64, pad int) error
	// Has reports whether the device got every message of the room up to upto, and Missing
	// how many of them it never got.
	Has(chatID, upto int64) bool
	Missing(chatID, upto int64) int64
	SetStats(s *Stats)
}

// Fanout runs the fanout scenario against the chat server: per (message, recipient) latency,
// deliveries per second, lost and duplicated deliveries, ack latency and the server's CPU per
// delivery, per rate.
func Fanout(ctx context.Context, env Env, cfg FanoutConfig) (*Result, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
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
	if len(env.SenderURLs) > 0 {
		for i, d := range senders(ds, cfg.Senders) {
			d.Base = env.SenderURLs[i%len(env.SenderURLs)]
		}
	}
	run, stop := context.WithCancel(ctx)
	defer stop()
	defer closeAll(ds)
	env.logf("fanout: connecting %d devices to chat %d", len(ds), chatID)
	if failed := env.connectAll(ctx, ds, max(cfg.ConnConc, 50), run); failed > 0 {
		return nil, fmt.Errorf("fanout: %d of %d connections failed: %v", failed, len(ds), stats.Samples())
	}
	return runFanout(ctx, env, cfg, chatRoom{ds: ds, owner: users[0], chatID: chatID}, chatID, cfg.Members-1)
}

// chatRoom is a group of the chat server.
type chatRoom struct {
	ds     []*Device
	owner  *User
	chatID int64
}

func (r chatRoom) devices() []member {
	ms := make([]member, len(r.ds))
	for i, d := range r.ds {
		ms[i] = d
	}
	return ms
}

func (r chatRoom) lastSeq(ctx context.Context) (int64, error) { return LastSeq(ctx, r.owner, r.chatID) }

// senders are the n members that send, spread over the members (and so over the instances).
func senders[T any](ds []T, n int) []T {
	out := make([]T, 0, n)
	for i := range n {
		out = append(out, ds[i*len(ds)/n])
	}
	return out
}

func (cfg *FanoutConfig) check() error {
	if cfg.Members < 2 || len(cfg.Rates) == 0 {
		return fmt.Errorf("fanout needs at least 2 members and a rate")
	}
	maxRate := 0.0
	for _, r := range cfg.Rates {
		maxRate = math.Max(maxRate, r)
	}
	if cfg.Senders <= 0 { // people, not robots: a few messages a second each
		cfg.Senders = max(int(math.Ceil(maxRate/humanRate)), int(math.Ceil(maxRate/maxSenderRate)))
	}
	cfg.Senders = min(max(cfg.Senders, 1), cfg.Members)
	if cfg.Drain == 0 {
		cfg.Drain = 15 * time.Second
	}
	if cfg.Name == "" {
		cfg.Name = fmt.Sprintf("fanout-%d", cfg.Members)
	}
	return nil
}

// runFanout runs the warm-up and the steps on a room whose members are online; each message
// reaches recipients members (the sender's own device is not among them when the server
// answers the sender with an ack only).
func runFanout(ctx context.Context, env Env, cfg FanoutConfig, rm room, chatID int64, recipients int) (*Result, error) {
	res := &Result{Name: cfg.Name, Scenario: "fanout", Started: time.Now(),
		Params: map[string]any{"members": cfg.Members, "senders": cfg.Senders, "rates": cfg.Rates,
			"duration_s": cfg.Duration.Seconds(), "pad": cfg.Pad, "seed": env.Seed}}
	ds := rm.devices()
	sendDevs := senders(ds, cfg.Senders)
	// drain waits until every send is answered and every device has every message up to
	// the room's last one, for as long as either keeps progressing.
	drain := func(st *Stats, sent, failed int64) (final int64, drained bool, err error) {
		answered := func() int64 { return st.Acked.Load() + st.ErrorFrames.Load() }
		waitProgress(ctx, cfg.Drain, maxDrain, answered, func() bool { return answered() >= sent-failed })
		if final, err = rm.lastSeq(ctx); err != nil {
			return 0, false, fmt.Errorf("read last seq: %w", err)
		}
		drained = waitProgress(ctx, cfg.Drain, maxDrain, st.Delivered.Load, func() bool { return allHave(ds, chatID, final) })
		return final, drained, nil
	}
	if cfg.Warmup > 0 {
		env.logf("%s: warm-up %s at %.0f msg/s", cfg.Name, cfg.Warmup, cfg.Rates[0])
		warm := &Stats{}
		for _, d := range ds {
			d.SetStats(warm)
		}
		sent, failed, _ := sendAll(ctx, env, sendDevs, chatID, cfg.Rates[0], cfg.Warmup, cfg.Pad, 0)
		if _, _, err := drain(warm, sent, failed); err != nil {
			return nil, err
		}
	}

	for i, rate := range cfg.Rates {
		st := &Stats{}
		for _, d := range ds {
			d.SetStats(st)
		}
		env.logf("%s: step %d: %.0f msg/s for %s (%d senders)", cfg.Name, i+1, rate, cfg.Duration, cfg.Senders)
		s0 := env.snap(ctx)
		start := time.Now()
		sent, failed, behind := sendAll(ctx, env, sendDevs, chatID, rate, cfg.Duration, cfg.Pad, uint64(i+1))
		sendEnd := time.Now()
		final, drained, err := drain(st, sent, failed)
		if err != nil {
			return nil, err
		}
		end := time.Now()
		s1 := env.snap(ctx)

		var lost int64
		for _, d := range ds {
			lost += d.Missing(chatID, final)
		}
		step := &Result{Name: fmt.Sprintf("%s @ %.0f msg/s", cfg.Name, rate), Scenario: "fanout",
			Started: start, Seconds: end.Sub(start).Seconds(),
			Params: map[string]any{"members": cfg.Members, "senders": cfg.Senders, "rate": rate, "duration_s": cfg.Duration.Seconds()}}
		delivered, acked := st.Delivered.Load(), st.Acked.Load()
		window := end.Sub(start).Seconds()
		if drained {
			// The last delivery came between the last poll and end; do not count the wait.
			window = math.Max(sendEnd.Sub(start).Seconds(), window-0.05)
		}
		// Sends acknowledged per second: from the first send to the last ack (never shorter
		// than the sending itself).
		ackWindow := sendEnd.Sub(start).Seconds()
		if last := st.LastAck.Load(); last > 0 {
			ackWindow = math.Max(ackWindow, float64(last)/1e6-float64(start.Sub(epoch))/1e9)
		}
		step.Add("offered_deliveries_per_s", rate*float64(recipients), "/s")
		step.Add("messages_sent", float64(sent), "")
		step.Add("messages_acked", float64(acked), "")
		step.Add("acked_per_s", float64(acked)/ackWindow, "msg/s")
		step.Add("send_failures", float64(failed+st.ErrorFrames.Load()), "")
		step.Add("deliveries", float64(delivered), "")
		step.Add("deliveries_per_s", float64(delivered)/window, "/s")
		step.Add("drain_s", end.Sub(sendEnd).Seconds(), "s")
		step.Add("sender_behind_max_ms", float64(behind.Milliseconds()), "ms")
		correctness(step, st, lost, false)
		step.Latency = map[string]Summary{"delivery": st.Delivery.Summarize(true), "ack": st.Ack.Summarize(true)}
		addCost(step, s0, s1, delivered, "delivery")
		addCPUPer(step, s0, s1, acked, "message")
		step.Errors = st.Samples()
		if !drained {
			step.Errors = append(step.Errors, fmt.Sprintf("not every recipient got message %d", final))
		}
		res.Steps = append(res.Steps, step)
		env.logf("%s: %.0f deliveries/s, p99 %.1f ms, ack p99 %.1f ms, %.0f acked/s, lost %d, dup %d", cfg.Name,
			float64(delivered)/window, step.Latency["delivery"].P99, step.Latency["ack"].P99, float64(acked)/ackWindow, lost, st.Dups.Load())
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
func sendAll(ctx context.Context, env Env, devs []member, chatID int64, rate float64, d time.Duration, pad int, stream uint64) (sent, failed int64, behind time.Duration) {
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

func allHave(ds []member, chatID, upto int64) bool {
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
	addCPUPer(r, s0, s1, units, unit)
	r.Add("tool_cpu_per_"+unit, (s1.Tool-s0.Tool)/float64(units)*1e6, "µs")
	if d := s1.Sum(mSlowDropped) - s0.Sum(mSlowDropped); d > 0 {
		r.Add("slow_consumers_dropped", d, "")
	}
	if d := s1.Sum(mGapsHealed) - s0.Sum(mGapsHealed); d > 0 {
		r.Add("gaps_healed", d, "")
	}
	addSendPath(r, s0, s1)
}

// addSendPath adds where the chat's sends spent their time, from the instances' own metrics
// (a server without them, Centrifugo, gets none): the group commit's calls, the sends each
// stored and their mean time with the commit; the mean time from a publish to its receipt
// by an instance; and the messages held for a predecessor and their mean wait.
func addSendPath(r *Result, s0, s1 Snapshot) {
	delta := func(name string) float64 { return max(0, s1.Sum(name)-s0.Sum(name)) }
	if calls := delta(mCalls); calls > 0 {
		r.Add("store_calls", calls, "")
		r.Add("sends_per_call", delta(mCallSends)/calls, "")
		r.Add("store_call_ms", delta(mCallSeconds)/calls*1e3, "ms")
	}
	if n := delta(mLags); n > 0 {
		r.Add("broker_receive_lag_ms", delta(mLagSeconds)/n*1e3, "ms")
	}
	if n := delta(mHolds); n > 0 {
		r.Add("reorder_holds", n, "")
		r.Add("reorder_hold_ms", delta(mHoldSeconds)/n*1e3, "ms")
	}
}

// addCPUPer adds the instances' CPU per unit of work.
func addCPUPer(r *Result, s0, s1 Snapshot, units int64, unit string) {
	if min(s0.Answered(), s1.Answered()) == 0 || units == 0 {
		return
	}
	cpu := max(0, s1.Sum(mCPU)-s0.Sum(mCPU))
	r.Add("server_cpu_per_"+unit, cpu/float64(units)*1e6, "µs")
}
