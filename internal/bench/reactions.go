package bench

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ReactionsConfig is the reaction storm: one group of Members, all online, Reactors of them
// toggling reactions on the group's Recent latest messages at a total Rate. Every member's
// device must get every reaction.updated once, in rev order.
type ReactionsConfig struct {
	Members  int
	Reactors int     // distinct members reacting, each at Rate/Reactors (0: one per 2/s)
	Rate     float64 // reaction toggles per second into the group
	Recent   int     // messages reacted to (the group's latest)
	Duration time.Duration
	Drain    time.Duration // how long to wait for deliveries after the storm while none arrive
	ConnConc int
}

// reactEmoji are the emoji of the storm (a message carries at most 20 distinct).
var reactEmoji = []string{"👍", "❤️", "😂", "🎉", "👀", "🙏"}

// revAt is a change received by a device: its rev, when (µs, the tool's clock), the message's
// seq, and whether it was a message.updated (the message's whole state).
type revAt struct {
	rev, at, seq int64
	whole        bool
}

// Reactions runs the reaction storm: reaction.updated deliveries per second, the p99 from
// the reaction's request to each member's receipt, and lost, duplicated and out-of-rev-order
// deliveries.
func Reactions(ctx context.Context, env Env, cfg ReactionsConfig) (*Result, error) {
	if cfg.Members < 2 || cfg.Rate <= 0 {
		return nil, fmt.Errorf("reactions needs at least 2 members and a rate")
	}
	if cfg.Reactors <= 0 {
		cfg.Reactors = int(math.Ceil(cfg.Rate / 2))
	}
	cfg.Reactors = min(cfg.Reactors, cfg.Members)
	cfg.Recent = max(cfg.Recent, 1)
	if cfg.Drain == 0 {
		cfg.Drain = 15 * time.Second
	}
	env.logf("reactions: registering %d users", cfg.Members)
	users, err := Register(ctx, env.Base, env.Tag+"-r", cfg.Members, env.setupConc())
	if err != nil {
		return nil, err
	}
	chatID, err := CreateGroup(ctx, users[0], "reactions "+env.Tag, users)
	if err != nil {
		return nil, err
	}
	stats := &Stats{}
	ds := env.devices(users, stats, false) // a dropped device would miss changes: counted as lost
	run, stop := context.WithCancel(ctx)
	defer stop()
	defer closeAll(ds)
	env.logf("reactions: connecting %d devices to chat %d", len(ds), chatID)
	if failed := env.connectAll(ctx, ds, max(cfg.ConnConc, 50), run); failed > 0 {
		return nil, fmt.Errorf("reactions: %d of %d connections failed: %v", failed, len(ds), stats.Samples())
	}
	// The messages reacted to.
	seqs := make([]int64, cfg.Recent)
	for i := range seqs {
		var m struct {
			Seq int64 `json:"seq"`
		}
		err := users[i%len(users)].Client.Do(ctx, http.MethodPost, "/api/v1/chats/"+strconv.FormatInt(chatID, 10)+"/messages",
			map[string]any{"body": fmt.Sprintf("react to me %d", i), "client_id": fmt.Sprintf("%s-react-%d", env.Tag, i)}, &m)
		if err != nil {
			return nil, fmt.Errorf("reactions: send: %w", err)
		}
		seqs[i] = m.Seq
	}
	last := seqs[len(seqs)-1]
	if !waitFor(ctx, 30*time.Second, func() bool { return allHave(roomOf(ds), chatID, last) }) {
		return nil, fmt.Errorf("reactions: the messages to react to did not reach every member")
	}
	rev0, err := lastRev(ctx, users[0], chatID)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		d.TrackRevs(chatID, rev0)
	}

	res := &Result{Name: "reactions", Scenario: "reactions", Started: time.Now(),
		Params: map[string]any{"members": cfg.Members, "reactors": cfg.Reactors, "rate": cfg.Rate, "recent": cfg.Recent,
			"duration_s": cfg.Duration.Seconds(), "seed": env.Seed}}
	env.logf("reactions: %.0f toggles/s for %s from %d members on %d messages", cfg.Rate, cfg.Duration, cfg.Reactors, cfg.Recent)

	var mu sync.Mutex
	sentAt := map[int64]int64{} // rev: when its request was sent
	seqOf := map[int64]int64{}  // rev: the message it changed
	var toggles, failed, unchanged atomic.Int64
	var behind time.Duration
	var wg sync.WaitGroup
	s0 := env.snap(ctx)
	start := time.Now()
	per := cfg.Rate / float64(cfg.Reactors)
	for i := range cfg.Reactors {
		u := users[i*len(users)/cfg.Reactors]
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := env.rng(5000 + uint64(i))
			mine := map[string]bool{} // "seq/emoji": my reaction is there
			time.Sleep(time.Duration(rng.Float64() * float64(time.Second) / per))
			_, worst := pace(ctx, per, cfg.Duration, nil, func() {
				seq := seqs[rng.IntN(len(seqs))]
				emoji := reactEmoji[rng.IntN(len(reactEmoji))]
				key := strconv.FormatInt(seq, 10) + "/" + emoji
				add := !mine[key]
				method := http.MethodPut
				if !add {
					method = http.MethodDelete
				}
				var out struct {
					Rev int64 `json:"rev"`
				}
				t := now()
				rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				err := u.Client.Do(rctx, method, fmt.Sprintf("/api/v1/chats/%d/messages/%d/reactions/%s", chatID, seq, pathEmoji(emoji)), nil, &out)
				cancel()
				toggles.Add(1)
				if err != nil {
					failed.Add(1)
					stats.Note("react: %v", err)
					return
				}
				mine[key] = add
				mu.Lock()
				if _, dup := sentAt[out.Rev]; dup || out.Rev <= rev0 {
					unchanged.Add(1) // the answer of a toggle that changed nothing carries no new rev
				} else {
					sentAt[out.Rev], seqOf[out.Rev] = t, seq
				}
				mu.Unlock()
			})
			mu.Lock()
			behind = max(behind, worst)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sendEnd := time.Now()
	revEnd, err := lastRev(ctx, users[0], chatID)
	if err != nil {
		return nil, err
	}
	received := func() int64 {
		var n int64
		for _, d := range ds {
			n += d.RevsReceived(chatID)
		}
		return n
	}
	drained := waitProgress(ctx, cfg.Drain, maxDrain, received, func() bool {
		for _, d := range ds {
			if lost, _ := d.RevsMissing(chatID, revEnd, seqOf); lost > 0 {
				return false
			}
		}
		return true
	})
	end := time.Now()
	s1 := env.snap(ctx)

	var lost, compacted, delivered int64
	for _, d := range ds {
		l, c := d.RevsMissing(chatID, revEnd, seqOf)
		lost += l
		compacted += c
		for _, r := range d.RevTimes(chatID) {
			delivered++
			if t, ok := sentAt[r.rev]; ok {
				stats.Delivery.RecordMicros(d.Index, r.at-t)
			}
		}
	}
	window := end.Sub(start).Seconds()
	if drained {
		window = math.Max(sendEnd.Sub(start).Seconds(), window-0.05)
	}
	changes := revEnd - rev0
	res.Seconds = window
	res.Add("offered_deliveries_per_s", cfg.Rate*float64(cfg.Members), "/s")
	res.Add("toggles", float64(toggles.Load()), "")
	res.Add("toggle_failures", float64(failed.Load()), "")
	res.Add("changes", float64(changes), "revs")
	res.Add("deliveries", float64(delivered), "")
	res.Add("deliveries_per_s", float64(delivered)/window, "/s")
	// Changes that reached a device inside a later message.updated of their message, after
	// the connection healed a gap in revs from the store: not lost, not delivered one by one.
	res.Add("compacted", float64(compacted), "changes")
	res.Add("drain_s", end.Sub(sendEnd).Seconds(), "s")
	res.Add("reactor_behind_max_ms", float64(behind.Milliseconds()), "ms")
	correctness(res, stats, lost, false)
	res.Latency = map[string]Summary{"delivery": stats.Delivery.Summarize(true)}
	addCost(res, s0, s1, delivered, "delivery")
	res.Errors = stats.Samples()
	if !drained {
		res.Errors = append(res.Errors, fmt.Sprintf("not every member got every change up to rev %d", revEnd))
	}
	env.logf("reactions: %d changes, %.0f deliveries/s, p99 %.1f ms, lost %d, compacted %d, dup %d, out of order %d", changes,
		float64(delivered)/window, res.Latency["delivery"].P99, lost, compacted, stats.Dups.Load(), stats.OutOfOrder.Load())
	return res, nil
}

func roomOf(ds []*Device) []member { return chatRoom{ds: ds}.devices() }

// pathEmoji escapes an emoji for a URL path.
func pathEmoji(e string) string {
	var b []byte
	for i := 0; i < len(e); i++ {
		b = fmt.Appendf(b, "%%%02X", e[i])
	}
	return string(b)
}

// lastRev reads a chat's last rev over REST.
func lastRev(ctx context.Context, u *User, chatID int64) (int64, error) {
	var out struct {
		LastRev int64 `json:"last_rev"`
	}
	err := u.Client.Do(ctx, http.MethodGet, "/api/v1/chats/"+strconv.FormatInt(chatID, 10), nil, &out)
	return out.LastRev, err
}
