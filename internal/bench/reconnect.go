package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wschat/chat/internal/client"
)

// ReconnectConfig is Clients connected (in groups), messages flowing over REST, and one
// instance killed.
type ReconnectConfig struct {
	Clients    int
	ChatSize   int
	Rate       float64
	Before     time.Duration
	Timeout    time.Duration
	KillPID    int
	KillCmd    string
	RestartCmd string
	ConnConc   int
}

// Reconnect kills an instance under load and measures how long until every client it held
// is back (on another instance) and synced, and whether anything was lost or duplicated.
func Reconnect(ctx context.Context, env Env, cfg ReconnectConfig) (*Result, error) {
	if cfg.KillPID == 0 && cfg.KillCmd == "" {
		return nil, errors.New("reconnect needs -kill-pid or -kill-cmd")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	res := &Result{Name: fmt.Sprintf("reconnect-%d", cfg.Clients), Scenario: "reconnect", Started: time.Now(),
		Params: map[string]any{"clients": cfg.Clients, "chat_size": cfg.ChatSize, "rate": cfg.Rate, "seed": env.Seed}}
	env.logf("reconnect: registering %d users", cfg.Clients)
	users, err := Register(ctx, env.Base, env.Tag+"-r", cfg.Clients, env.setupConc())
	if err != nil {
		return nil, err
	}
	chatOf, err := makeGroupsOf(ctx, env, users, max(cfg.ChatSize, 2), max(cfg.ChatSize, 2), 2)
	if err != nil {
		return nil, err
	}
	members := map[int64][]int{}
	for i, c := range chatOf {
		members[c] = append(members[c], i)
	}
	var chatIDs []int64
	for id := range members {
		chatIDs = append(chatIDs, id)
	}
	stats := &Stats{}
	ds := env.devices(users, stats, true)
	run, stop := context.WithCancel(ctx)
	defer stop()
	defer closeAll(ds)
	env.logf("reconnect: connecting %d devices", len(ds))
	if failed := env.connectAll(ctx, ds, max(cfg.ConnConc, 200), run); failed > 0 {
		return nil, fmt.Errorf("reconnect: %d of %d connections failed: %v", failed, len(ds), stats.Samples())
	}

	// Messages flow over REST through the whole test; a send that fails is retried with the
	// same client_id, so that it is stored once.
	sendCtx, stopSending := context.WithCancel(ctx)
	var sent, sendFailed atomic.Int64
	var sendWG sync.WaitGroup
	for p := range pacers {
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			rng := env.rng(300 + uint64(p))
			var inflight sync.WaitGroup
			pace(sendCtx, cfg.Rate/pacers, 24*time.Hour, rng, func() {
				chatID := chatIDs[rng.IntN(len(chatIDs))]
				m := members[chatID]
				u := users[m[rng.IntN(len(m))]]
				id := fmt.Sprintf("%s-r%d-%d", env.Tag, p, sent.Add(1))
				inflight.Add(1)
				go func() {
					defer inflight.Done()
					if err := restSend(ctx, u, chatID, id); err != nil {
						sendFailed.Add(1)
						stats.Note("REST send: %v", err)
					}
				}()
			})
			inflight.Wait()
		}()
	}
	stopAll := func() { stopSending(); sendWG.Wait() }
	defer stopAll()

	time.Sleep(cfg.Before)
	env.logf("reconnect: killing the instance")
	killAt := time.Now()
	if err := kill(ctx, cfg); err != nil {
		return nil, err
	}
	time.Sleep(time.Second) // the dropped connections have noticed by now
	allBack := func() bool {
		for _, d := range ds {
			dropped, synced := d.DropState()
			if dropped.After(killAt) && !synced.After(dropped) {
				return false
			}
		}
		return true
	}
	back := waitFor(ctx, cfg.Timeout, allBack)
	var dropped int
	var latest time.Duration
	recovery := &Hist{}
	for _, d := range ds {
		dr, sy := d.DropState()
		if dr.After(killAt) {
			dropped++
			if sy.After(dr) {
				latest = max(latest, sy.Sub(killAt))
				recovery.Record(sy.Sub(killAt))
			}
		}
	}
	env.logf("reconnect: %d dropped, all back and synced: %v, after %.2f s", dropped, back, latest.Seconds())
	time.Sleep(2 * time.Second) // messages flow on the new connections
	stopAll()

	final := map[int64]int64{}
	for _, id := range chatIDs {
		seq, err := LastSeq(ctx, users[members[id][0]], id)
		if err != nil {
			return nil, fmt.Errorf("last seq of chat %d: %w", id, err)
		}
		final[id] = seq
	}
	drained, lost := settle(ctx, 15*time.Second, ds, chatOf, final)
	res.Seconds = time.Since(killAt).Seconds()
	res.Add("clients", float64(cfg.Clients), "")
	res.Add("dropped", float64(dropped), "clients")
	res.Add("back_and_synced_s", latest.Seconds(), "s")
	res.Add("reconnects", float64(stats.Reconnects.Load()), "")
	res.Add("messages_sent", float64(sent.Load()), "")
	res.Add("rest_send_failures", float64(sendFailed.Load()), "")
	res.Add("deliveries", float64(stats.Delivered.Load()), "")
	res.Add("redelivered_across_reconnect", float64(stats.Redelivered.Load()), "")
	correctness(res, stats, lost, true)
	res.Latency = map[string]Summary{"back_since_kill": recovery.Summarize(true), "delivery": stats.Delivery.Summarize(true)}
	res.Check("every dropped client back and synced", fmt.Sprintf("within %s", cfg.Timeout), fmt.Sprintf("%v after %.2f s", back, latest.Seconds()), back && dropped > 0)
	res.Errors = stats.Samples()
	if dropped == 0 {
		res.Errors = append(res.Errors, "no client dropped: was the right instance killed?")
	}
	if !drained {
		res.Errors = append(res.Errors, "not every client got every message within 15 s after the end")
	}
	if cfg.RestartCmd != "" {
		env.logf("reconnect: restarting: %s", cfg.RestartCmd)
		if out, err := exec.CommandContext(ctx, "sh", "-c", cfg.RestartCmd).CombinedOutput(); err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("restart: %v: %s", err, out))
		}
	}
	return res, nil
}

func kill(ctx context.Context, cfg ReconnectConfig) error {
	if cfg.KillPID != 0 {
		if err := syscall.Kill(cfg.KillPID, syscall.SIGKILL); err != nil {
			return fmt.Errorf("kill %d: %w", cfg.KillPID, err)
		}
		return nil
	}
	if out, err := exec.CommandContext(ctx, "sh", "-c", cfg.KillCmd).CombinedOutput(); err != nil {
		return fmt.Errorf("kill command: %v: %s", err, out)
	}
	return nil
}

// restSend posts a message, retrying with the same client_id while the cluster recovers.
func restSend(ctx context.Context, u *User, chatID int64, clientID string) error {
	body := map[string]string{"client_id": clientID, "body": "t" + strconv.FormatInt(now(), 10) + " rest"}
	path := "/api/v1/chats/" + strconv.FormatInt(chatID, 10) + "/messages"
	deadline := time.Now().Add(20 * time.Second)
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := u.Client.Do(rctx, http.MethodPost, path, body, nil)
		cancel()
		var ae *client.Error
		if err == nil || (errors.As(err, &ae) && ae.Status < 500 && ae.Status != 429) || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
