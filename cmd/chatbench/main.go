// Command chatbench loads a chat server through its public API (REST and WebSocket) and
// reports latency, throughput, correctness (lost and duplicated deliveries) and the server's
// cost, read from each instance's /metrics.
//
//	chatbench [flags] idle|fanout|reactions|chats|reconnect|soak|smoke
//	chatbench suite [flags]      the standard suite of `make bench`
//	chatbench anchor [flags]     the fanout points of `make bench-anchor`, against the chat or Centrifugo
//	chatbench anchor-table FILE...  the side-by-side table of anchor runs, into docs/PERFORMANCE.md
//
// Users and chats are created through the API before anything is measured; the server must
// run with CHAT_RATE_LIMITS=off (and, for quick setup, CHAT_PASSWORD_COST=test).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wschat/chat/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chatbench:", err)
		if errors.Is(err, errFailed) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// errFailed means the run worked but a check failed (lost or duplicated deliveries, or a
// missed target with -strict).
var errFailed = errors.New("checks failed")

const usage = `usage: chatbench <scenario> [flags]

scenarios:
  idle       N authenticated connections held open: connect time, failures, server memory per connection
  fanout     one group of M online members, S senders at total rate R: delivery and ack latency, deliveries/s, loss, CPU per delivery
             (-m 2 -senders 1: the one-chat shape; -centrifugo CONFIG: against Centrifugo)
  reactions  one group of M members, all online, many of them toggling reactions on recent messages at rate R:
             reaction.updated deliveries/s and p99, lost, duplicated and out of rev order
  chats      many small chats (2-10 members) at a human pace: sends/s stored+acked+delivered, ack latency
  reconnect  N clients, one instance killed: time until all are back and synced, loss, duplicates
  soak       chats + REST reads + churn over time: memory, goroutines and latency over time (alias: mixed)
  smoke      a few seconds of tiny fanout, chats and reactions; fails unless nothing is lost or duplicated
  suite      the standard suite (make bench): writes results JSON and charts, updates docs/PERFORMANCE.md
  anchor     the fanout points run side by side with Centrifugo (make bench-anchor), against either server
  anchor-table  writes the side-by-side table of anchor results files into docs/PERFORMANCE.md

Run "chatbench <scenario> -h" for its flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" || args[0] == "--help" {
		fmt.Fprint(stderr, usage)
		return nil
	}
	name, args := args[0], args[1:]
	switch name {
	case "suite":
		return runSuite(ctx, args, stdout, stderr)
	case "anchor":
		return runAnchor(ctx, args, stdout, stderr)
	case "anchor-table":
		return runAnchorTable(args, stdout, stderr)
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := commonFlags(fs)
	var scenario func(ctx context.Context, env bench.Env) (*bench.Result, error)
	switch name {
	case "idle":
		cfg := bench.IdleConfig{}
		fs.IntVar(&cfg.Conns, "n", 1000, "connections (one user each)")
		fs.IntVar(&cfg.ChatSize, "chat-size", 10, "users per group chat (0: no chats)")
		fs.BoolVar(&cfg.OneGroup, "one-group", false, "all users in one group (a big group coming online at once); -chat-size is ignored")
		fs.IntVar(&cfg.ConnConc, "conc", 200, "connections opened at a time")
		fs.DurationVar(&cfg.Hold, "hold", 10*time.Second, "how long to hold the connections before measuring memory")
		scenario = func(ctx context.Context, env bench.Env) (*bench.Result, error) { return bench.Idle(ctx, env, cfg) }
	case "fanout":
		cfg := bench.FanoutConfig{}
		rates := fs.String("rate", "100", "messages per second into the group; a comma-separated list runs one step per rate")
		fs.IntVar(&cfg.Members, "m", 200, "members of the group, all online")
		fs.IntVar(&cfg.Senders, "senders", 0, "distinct sending connections, each sending at rate/N (0: one per 5 msg/s, raised so that none sends more than 40/s, under the server's default frame limit of 50/s)")
		fs.IntVar(&cfg.Senders, "s", 0, "short for -senders")
		fs.DurationVar(&cfg.Duration, "d", 20*time.Second, "duration of each step")
		fs.DurationVar(&cfg.Warmup, "warmup", 3*time.Second, "unmeasured sending before the first step")
		fs.DurationVar(&cfg.Drain, "drain", 15*time.Second, "after a step, how long to wait for answers and deliveries while none arrive")
		fs.IntVar(&cfg.Pad, "pad", 40, "extra bytes in each message body")
		fs.StringVar(&cfg.Name, "name", "", "name of the result (default fanout-<m>)")
		centrifugo := fs.String("centrifugo", "", "Centrifugo's config.json: run against Centrifugo at -url (its JSON protocol) instead of the chat")
		scenario = func(ctx context.Context, env bench.Env) (*bench.Result, error) {
			var err error
			if cfg.Rates, err = floats(*rates); err != nil {
				return nil, err
			}
			if *centrifugo != "" {
				cc, err := bench.ReadCentrifugoConfig(*centrifugo)
				if err != nil {
					return nil, err
				}
				return bench.CentrifugoFanout(ctx, env, cfg, cc)
			}
			return bench.Fanout(ctx, env, cfg)
		}
	case "reactions":
		cfg := bench.ReactionsConfig{}
		fs.IntVar(&cfg.Members, "m", 1000, "members of the group, all online")
		fs.IntVar(&cfg.Reactors, "reactors", 100, "distinct members toggling reactions, each at rate/N")
		fs.Float64Var(&cfg.Rate, "rate", 30, "reaction toggles per second into the group (each reaches every member)")
		fs.IntVar(&cfg.Recent, "recent", 10, "latest messages of the group reacted to")
		fs.DurationVar(&cfg.Duration, "d", 20*time.Second, "duration of the storm")
		fs.DurationVar(&cfg.Drain, "drain", 15*time.Second, "after the storm, how long to wait for deliveries while none arrive")
		scenario = func(ctx context.Context, env bench.Env) (*bench.Result, error) { return bench.Reactions(ctx, env, cfg) }
	case "chats":
		cfg := bench.ChatsConfig{}
		rates := fs.String("rate", "500", "messages per second over all chats; a comma-separated list runs one step per rate")
		fs.IntVar(&cfg.Users, "users", 2000, "users, each in one chat, all online")
		fs.IntVar(&cfg.MinSize, "min", 2, "smallest chat")
		fs.IntVar(&cfg.MaxSize, "max", 10, "largest chat")
		fs.DurationVar(&cfg.Duration, "d", 20*time.Second, "duration of each step")
		fs.DurationVar(&cfg.Warmup, "warmup", 3*time.Second, "unmeasured sending before the first step")
		fs.IntVar(&cfg.Pad, "pad", 40, "extra bytes in each message body")
		scenario = func(ctx context.Context, env bench.Env) (*bench.Result, error) {
			var err error
			if cfg.Rates, err = floats(*rates); err != nil {
				return nil, err
			}
			return bench.Chats(ctx, env, cfg)
		}
	case "reconnect":
		cfg := bench.ReconnectConfig{}
		fs.IntVar(&cfg.Clients, "n", 1000, "clients (one user each), in groups")
		fs.IntVar(&cfg.ChatSize, "chat-size", 10, "users per group")
		fs.Float64Var(&cfg.Rate, "rate", 50, "messages per second sent over REST throughout")
		fs.DurationVar(&cfg.Before, "before", 3*time.Second, "sending before the kill")
		fs.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "how long to wait for every client to be back")
		fs.IntVar(&cfg.KillPID, "kill-pid", 0, "PID of the instance to kill (SIGKILL)")
		fs.StringVar(&cfg.KillCmd, "kill-cmd", "", "shell command that kills an instance (instead of -kill-pid)")
		fs.StringVar(&cfg.RestartCmd, "restart-cmd", "", "shell command run at the end to bring the instance back")
		scenario = func(ctx context.Context, env bench.Env) (*bench.Result, error) { return bench.Reconnect(ctx, env, cfg) }
	case "soak", "mixed":
		cfg := bench.SoakConfig{}
		fs.IntVar(&cfg.Users, "users", 1000, "users, each in one chat of 2-10, all online")
		fs.Float64Var(&cfg.Rate, "rate", 200, "messages per second over all chats")
		fs.Float64Var(&cfg.ReadRate, "reads", 50, "REST reads per second (chat list, history pages)")
		fs.Float64Var(&cfg.Churn, "churn", 5, "devices per second that drop and come back (and sync)")
		fs.DurationVar(&cfg.Duration, "d", 5*time.Minute, "duration")
		fs.DurationVar(&cfg.Interval, "interval", 10*time.Second, "sampling interval")
		scenario = func(ctx context.Context, env bench.Env) (*bench.Result, error) { return bench.Soak(ctx, env, cfg) }
	case "smoke":
		scenario = func(ctx context.Context, env bench.Env) (*bench.Result, error) { return bench.Smoke(ctx, env) }
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown scenario %q", name)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	env := c.env(stderr)
	machine := machineInfo() // before the run: the commit measured, not the one at the end
	res, err := scenario(ctx, env)
	if err != nil {
		return err
	}
	res.Print(stdout)
	if c.json != "" {
		if err := writeResults(c.json, []*bench.Result{res}, machine); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwrote %s and its charts\n", c.json)
	}
	if !res.CorrectnessOK() || (c.strict && !res.Passed()) {
		return errFailed
	}
	return nil
}

type common struct {
	base, metrics, procs, json, tag string
	senderURLs                      string
	seed                            uint64
	setupConc                       int
	strict, quiet                   bool
}

func commonFlags(fs *flag.FlagSet) *common {
	c := &common{}
	fs.StringVar(&c.base, "url", envOr("CHATBENCH_URL", "http://127.0.0.1:8080"), "the server (Nginx of the cluster)")
	fs.StringVar(&c.metrics, "metrics", os.Getenv("CHATBENCH_METRICS"), "comma-separated /metrics URLs of every instance (default: <url>/metrics, right only for one instance)")
	fs.StringVar(&c.senderURLs, "sender-urls", os.Getenv("CHATBENCH_SENDER_URLS"), "fanout against the chat: comma-separated instance URLs that the sending devices connect to directly, in turn, instead of -url (to measure the store path without the proxy, or with every send stored by one instance)")
	fs.StringVar(&c.procs, "procs", "chatd,nginx,postgres,redis-server", "process names whose CPU is reported")
	fs.StringVar(&c.json, "json", "", "write the result as JSON to this file, and SVG charts next to it")
	fs.StringVar(&c.tag, "tag", "", "name of this run's users (default: from the time)")
	fs.Uint64Var(&c.seed, "seed", 1, "random seed of the load shape")
	fs.IntVar(&c.setupConc, "setup-conc", 32, "parallel API calls during setup")
	fs.BoolVar(&c.strict, "strict", false, "exit non-zero when a target is missed (not only on loss or duplicates)")
	fs.BoolVar(&c.quiet, "q", false, "no progress lines")
	return c
}

func (c *common) env(stderr io.Writer) bench.Env {
	env := bench.Env{Base: strings.TrimRight(c.base, "/"), Seed: c.seed, Tag: c.tag, SetupConc: c.setupConc, Log: stderr}
	if c.quiet {
		env.Log = nil
	}
	if env.Tag == "" {
		env.Tag = "b" + strconv.FormatInt(time.Now().Unix()%1e8, 36)
	}
	if c.metrics != "" {
		env.Metrics = strings.Split(c.metrics, ",")
	} else {
		env.Metrics = []string{env.Base + "/metrics"}
	}
	if c.procs != "" {
		env.Procs = strings.Split(c.procs, ",")
	}
	if c.senderURLs != "" {
		for _, u := range strings.Split(c.senderURLs, ",") {
			env.SenderURLs = append(env.SenderURLs, strings.TrimRight(u, "/"))
		}
	}
	return env
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func floats(s string) ([]float64, error) {
	var out []float64
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("bad rate %q", p)
		}
		out = append(out, v)
	}
	return out, nil
}

// resultsFile is what -json and the suite write.
type resultsFile struct {
	Machine map[string]string `json:"machine"`
	Results []*bench.Result   `json:"results"`
}

// writeResults writes the JSON file and, next to it, one latency chart per result (and a
// memory chart for soak): <file without .json>-<result>.svg.
func writeResults(path string, results []*bench.Result, machine map[string]string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	stem := strings.TrimSuffix(path, ".json")
	for _, r := range results {
		for _, ch := range charts(r) {
			file := stem + "-" + ch.name + ".svg"
			if err := os.WriteFile(file, ch.svg, 0o644); err != nil {
				return err
			}
			r.Charts = append(r.Charts, filepath.Base(file))
		}
	}
	return writeJSON(path, results, machine)
}

// writeJSON writes the results file alone.
func writeJSON(path string, results []*bench.Result, machine map[string]string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(resultsFile{Machine: machine, Results: results}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
