package bench

import (
	"context"
	"fmt"
	"time"
)

// Smoke is a few seconds of tiny fanout, chats and reactions, for CI: it proves that the tool and the
// server's delivery still work together (every send acked, nothing lost, duplicated or out of
// order); it never judges speed.
func Smoke(ctx context.Context, env Env) (*Result, error) {
	res := &Result{Name: "smoke", Scenario: "smoke", Started: time.Now(), Params: map[string]any{"seed": env.Seed}}
	f, err := Fanout(ctx, env, FanoutConfig{Members: 8, Senders: 3, Rates: []float64{30}, Duration: 2 * time.Second, Pad: 10,
		Drain: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("smoke fanout: %w", err)
	}
	c, err := Chats(ctx, env, ChatsConfig{Users: 16, MinSize: 2, MaxSize: 5, Rates: []float64{30}, Duration: 2 * time.Second,
		Pad: 10, Drain: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("smoke chats: %w", err)
	}
	for _, r := range []*Result{f, c} {
		sent, acked := r.Get("messages_sent"), r.Get("messages_acked")
		r.Check("every send acked", fmt.Sprint(sent), fmt.Sprint(acked), sent > 0 && acked == sent)
	}
	r, err := Reactions(ctx, env, ReactionsConfig{Members: 8, Reactors: 4, Rate: 10, Recent: 3, Duration: 2 * time.Second,
		Drain: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("smoke reactions: %w", err)
	}
	toggles, failed, changes := r.Get("toggles"), r.Get("toggle_failures"), r.Get("changes")
	r.Check("every toggle answered and a change", fmt.Sprint(toggles), fmt.Sprintf("%v changes, %v failed", changes, failed),
		toggles > 0 && failed == 0 && changes == toggles)
	for _, r := range []*Result{f, c, r} {
		res.Steps = append(res.Steps, r)
		res.Seconds += r.Seconds
	}
	return res, nil
}
