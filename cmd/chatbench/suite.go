package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/wschat/chat/internal/bench"
)

// suiteConfig is the standard suite, sized for a 2-core machine that also runs PostgreSQL,
// Redis, Nginx and three instances; it takes a few minutes.
type suiteConfig struct {
	idleConns       int
	oneGroupConns   int
	fanout200Rate   float64
	fanout1000Rates string
	reactionsRate   float64
	onechatRate     float64
	chatsUsers      int
	chatsRate       float64
	reconnectN      int
	duration        time.Duration
	killCmd         string
	killPID         int
	restartCmd      string
	out, doc, only  string
}

// target is one line of the targets, checked against a result.
type target struct {
	scenario, what, want string
	ok                   func(r *bench.Result) (got string, ok bool)
}

func num(r *bench.Result, key string) float64 { return r.Get(key) }

func lat(r *bench.Result, kind string) bench.Summary { return r.Latency[kind] }

// targets are the issues' (docs/PERFORMANCE.md repeats them): issue 12's for the fanout rooms
// with 20 and 50 senders and for one chat, issue 7's for the rest. Issue 12's comparisons with
// Centrifugo are made by make bench-anchor.
var targets = []target{
	{"fanout-200", "deliveries/s (100,097 offered at the default rate)", ">= 99000", func(r *bench.Result) (string, bool) {
		v := num(r, "deliveries_per_s")
		return fmt.Sprintf("%.0f", v), v >= 99000
	}},
	{"fanout-200", "p99 send-to-receive", "<= 150 ms", func(r *bench.Result) (string, bool) {
		v := lat(r, "delivery").P99
		return fmt.Sprintf("%.1f ms", v), v <= 150 && v > 0
	}},
	{"fanout-200", "p99 ack", "<= 100 ms", func(r *bench.Result) (string, bool) {
		v := lat(r, "ack").P99
		return fmt.Sprintf("%.1f ms", v), v <= 100 && v > 0
	}},
	{"fanout-200", "server CPU per delivery", "<= 8.4 µs", func(r *bench.Result) (string, bool) {
		v := num(r, "server_cpu_per_delivery")
		return fmt.Sprintf("%.1f µs", v), v <= 8.4
	}},
	{"fanout-1000", "server CPU per delivery", "<= 17 µs", func(r *bench.Result) (string, bool) {
		v := num(r, "server_cpu_per_delivery")
		return fmt.Sprintf("%.1f µs", v), v <= 17
	}},
	{"onechat", "messages/s stored and acked", ">= 2000", func(r *bench.Result) (string, bool) {
		v := num(r, "acked_per_s")
		return fmt.Sprintf("%.0f", v), v >= 2000
	}},
	{"onechat", "p99 ack", "<= 50 ms", func(r *bench.Result) (string, bool) {
		v := lat(r, "ack").P99
		return fmt.Sprintf("%.1f ms", v), v <= 50 && v > 0
	}},
	{"onechat", "server CPU per message", "<= 400 µs", func(r *bench.Result) (string, bool) {
		v := num(r, "server_cpu_per_message")
		return fmt.Sprintf("%.0f µs", v), v <= 400
	}},
	{"reactions", "reaction.updated deliveries/s", "report", func(r *bench.Result) (string, bool) {
		return fmt.Sprintf("%.0f (offered %.0f)", num(r, "deliveries_per_s"), num(r, "offered_deliveries_per_s")), true
	}},
	{"reactions", "p99 reaction to delivery", "report", func(r *bench.Result) (string, bool) {
		v := lat(r, "delivery").P99
		return fmt.Sprintf("%.1f ms", v), v > 0
	}},
	{"chats", "messages/s stored, acked, delivered", ">= 2000", func(r *bench.Result) (string, bool) {
		v := num(r, "acked_per_s")
		return fmt.Sprintf("%.0f", v), v >= 2000
	}},
	{"chats", "p99 ack", "<= 50 ms", func(r *bench.Result) (string, bool) {
		v := lat(r, "ack").P99
		return fmt.Sprintf("%.1f ms", v), v <= 50 && v > 0
	}},
	{"idle", "connections, zero failures", "10000", func(r *bench.Result) (string, bool) {
		ok, failed := num(r, "connections_ok"), num(r, "connect_failures")
		return fmt.Sprintf("%.0f (%.0f failed)", ok, failed), ok >= 10000 && failed == 0
	}},
	{"idle", "server RSS per connection", "<= 16 KiB", func(r *bench.Result) (string, bool) {
		v := num(r, "rss_per_conn")
		return fmt.Sprintf("%.1f KiB", v), v <= 16
	}},
	{"onegroup", "members of one group connecting, zero failures and drops", "5000", func(r *bench.Result) (string, bool) {
		ok, failed, dropped := num(r, "connections_ok"), num(r, "connect_failures"), num(r, "dropped_while_held")
		return fmt.Sprintf("%.0f (%.0f failed, %.0f dropped)", ok, failed, dropped), ok >= 5000 && failed == 0 && dropped == 0
	}},
	{"onegroup", "presence frames per connection", "<= 5", func(r *bench.Result) (string, bool) {
		v := num(r, "presence_frames_per_conn")
		return fmt.Sprintf("%.2f", v), v <= 5
	}},
	{"reconnect", "3000 clients back and synced", "<= 10 s", func(r *bench.Result) (string, bool) {
		v, n := num(r, "back_and_synced_s"), num(r, "clients")
		ok := len(r.Checks) > 0
		for _, c := range r.Checks {
			ok = ok && c.OK
		}
		return fmt.Sprintf("%.2f s (%.0f clients, %.0f dropped)", v, n, num(r, "dropped")), ok && v <= 10 && n >= 3000
	}},
	{"*", "lost / duplicated deliveries", "0 / 0", func(r *bench.Result) (string, bool) {
		l, d := num(r, "lost"), num(r, "duplicated")
		return fmt.Sprintf("%.0f / %.0f", nz(l), nz(d)), nz(l) == 0 && nz(d) == 0
	}},
}

func nz(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

func runSuite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("suite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := commonFlags(fs)
	var s suiteConfig
	fs.IntVar(&s.idleConns, "idle", 10000, "idle connections (lowered to what the open-file limit allows)")
	fs.IntVar(&s.oneGroupConns, "onegroup", 5000, "members of the one group of the onegroup scenario (idle connections, all in one group)")
	fs.Float64Var(&s.fanout200Rate, "fanout200-rate", 503, "messages/s into the 200-member group from 20 senders (x199 deliveries: 100,097/s)")
	fs.StringVar(&s.fanout1000Rates, "fanout1000-rate", "40,60", "messages/s into the 1000-member group from 50 senders, one step per rate (x999 deliveries)")
	fs.Float64Var(&s.reactionsRate, "reactions-rate", 30, "reaction toggles/s in the 1000-member group from 100 members (x1000 deliveries)")
	fs.Float64Var(&s.onechatRate, "onechat-rate", 2000, "messages/s from one connection into a chat of two (the server's CHAT_LIMIT_WS_FRAMES must allow it)")
	fs.IntVar(&s.chatsUsers, "chats-users", 4000, "users of the chats scenario")
	fs.Float64Var(&s.chatsRate, "chats-rate", 2050, "messages/s of the chats scenario (a little above the 2,000/s target: acked_per_s counts what was acknowledged)")
	fs.IntVar(&s.reconnectN, "reconnect", 3000, "clients of the reconnect scenario")
	fs.DurationVar(&s.duration, "d", 20*time.Second, "measured duration of fanout and chats")
	fs.StringVar(&s.killCmd, "kill-cmd", "", "shell command that kills one instance (reconnect); skipped without it or -kill-pid")
	fs.IntVar(&s.killPID, "kill-pid", 0, "PID of the instance to kill (reconnect)")
	fs.StringVar(&s.restartCmd, "restart-cmd", "", "shell command that brings the killed instance back")
	fs.StringVar(&s.out, "out", "bench/results", "directory of the results file and charts")
	fs.StringVar(&s.doc, "doc", "docs/PERFORMANCE.md", "document whose tables are updated (empty: none)")
	fs.StringVar(&s.only, "only", "", "comma-separated scenarios to run (idle,onegroup,fanout-200,fanout-1000,reactions,chats,onechat,reconnect)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	env := c.env(stderr)
	fanout1000Rates, err := floats(s.fanout1000Rates)
	if err != nil {
		return err
	}
	started := time.Now()
	var results []*bench.Result
	var failures []string
	steps := func(name string, f func() ([]*bench.Result, error)) {
		if !listed(s.only, name) || ctx.Err() != nil {
			return
		}
		fmt.Fprintf(stderr, "\n--- %s\n", name)
		rs, err := f()
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", name, err))
			fmt.Fprintf(stderr, "%s failed: %v\n", name, err)
			return
		}
		for _, r := range rs {
			r.Print(stdout)
		}
		results = append(results, rs...)
		// Let the servers settle: a scenario's devices going away make the instances announce
		// them offline 3 s later (presence), work that must not land in the next measurement.
		time.Sleep(10 * time.Second)
	}
	step := func(name string, f func() (*bench.Result, error)) {
		steps(name, func() ([]*bench.Result, error) {
			r, err := f()
			if err != nil {
				return nil, err
			}
			r.Name = name
			return []*bench.Result{r}, nil
		})
	}

	// idle first: the instances are then closest to freshly started, whose memory is the
	// honest baseline (an instance that has served load reuses memory it kept, and gains less).
	step("idle", func() (*bench.Result, error) {
		n := s.idleConns
		if lim := openFileLimit(); lim > 0 && uint64(n)+1000 > lim {
			n = int(lim) - 1000
			fmt.Fprintf(stderr, "idle: the open-file limit is %d: holding %d connections (raise it with ulimit -n)\n", lim, n)
		}
		return bench.Idle(ctx, env, bench.IdleConfig{Conns: n, ChatSize: 10, ConnConc: 200, Hold: 10 * time.Second})
	})
	// A big group coming online at once (issue 17): held longer than the server's ping period
	// (25 s), so that a connection starved while the group connects would be dropped.
	step("onegroup", func() (*bench.Result, error) {
		return bench.Idle(ctx, env, bench.IdleConfig{Conns: s.oneGroupConns, OneGroup: true, ConnConc: 200, Hold: 60 * time.Second})
	})
	steps("fanout-200", func() ([]*bench.Result, error) {
		return fanoutPoint{"fanout-200", 200, 20, []float64{s.fanout200Rate}}.run(ctx, env, s.duration, nil)
	})
	steps("fanout-1000", func() ([]*bench.Result, error) {
		return fanoutPoint{"fanout-1000", 1000, 50, fanout1000Rates}.run(ctx, env, s.duration, nil)
	})
	// The reaction storm (issue 13): many members of a 1000-member group toggling reactions on
	// its latest messages; each change reaches every member's device as reaction.updated.
	step("reactions", func() (*bench.Result, error) {
		return bench.Reactions(ctx, env, bench.ReactionsConfig{Members: 1000, Reactors: 100, Rate: s.reactionsRate, Recent: 10,
			Duration: s.duration})
	})
	step("chats", func() (*bench.Result, error) {
		return bench.Chats(ctx, env, bench.ChatsConfig{Users: s.chatsUsers, MinSize: 2, MaxSize: 10, Rates: []float64{s.chatsRate},
			Duration: s.duration, Warmup: 3 * time.Second, Pad: 40})
	})
	steps("onechat", func() ([]*bench.Result, error) {
		return fanoutPoint{"onechat", 2, 1, []float64{s.onechatRate}}.run(ctx, env, s.duration, nil)
	})
	step("reconnect", func() (*bench.Result, error) {
		if s.killCmd == "" && s.killPID == 0 {
			return nil, errors.New("no -kill-cmd or -kill-pid: skipped")
		}
		return bench.Reconnect(ctx, env, bench.ReconnectConfig{Clients: s.reconnectN, ChatSize: 10, Rate: 50, Before: 5 * time.Second,
			Timeout: 30 * time.Second, KillPID: s.killPID, KillCmd: s.killCmd, RestartCmd: s.restartCmd})
	})

	machine := machineInfo()
	machine["suite_minutes"] = fmt.Sprintf("%.1f", time.Since(started).Minutes())
	host := machine["host"]
	if host == "" {
		host = "host"
	}
	file := filepath.Join(s.out, time.Now().UTC().Format("2006-01-02")+"-"+slug(host)+".json")
	if err := writeResults(file, results, machine); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwrote %s\n", file)
	table := targetTable(results)
	fmt.Fprintln(stdout, "\n"+table)
	if s.doc != "" {
		if err := updateDoc(s.doc, file, machine, results, table); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "updated %s\n", s.doc)
	}
	for _, f := range failures {
		fmt.Fprintln(stderr, "!", f)
	}
	for _, r := range results {
		if !r.CorrectnessOK() {
			return fmt.Errorf("%w: %s lost, duplicated or reordered deliveries", errFailed, r.Name)
		}
	}
	return nil
}

func openFileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return l.Cur
}

// targetTable is the markdown table of the targets against the results.
func targetTable(results []*bench.Result) string {
	var b strings.Builder
	b.WriteString("| scenario | measure | target | result | |\n|---|---|---|---|---|\n")
	for _, t := range targets {
		for _, r := range results {
			if t.scenario != "*" && r.Name != t.scenario && !strings.HasPrefix(r.Name, t.scenario+"-") {
				continue
			}
			got, ok := t.ok(r)
			mark := "met"
			if !ok {
				mark = "**missed**"
			}
			name := r.Name
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", name, t.what, t.want, got, mark)
		}
	}
	return b.String()
}

// detailTable is the markdown table of every scenario's main numbers.
func detailTable(results []*bench.Result) string {
	var b strings.Builder
	b.WriteString("| scenario | throughput | latency p50 / p99 / max (ms) | server CPU | tool CPU | nginx / postgres CPU | machine busy | lost / dup |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		thr, latKind := "", ""
		switch r.Scenario {
		case "fanout":
			thr, latKind = fmt.Sprintf("%.0f deliveries/s (offered %.0f)", num(r, "deliveries_per_s"), num(r, "offered_deliveries_per_s")), "delivery"
			if strings.HasPrefix(r.Name, "onechat") {
				thr = fmt.Sprintf("%.0f msg/s acked (offered %.0f)", num(r, "acked_per_s"), num(r, "offered_deliveries_per_s"))
			}
		case "reactions":
			thr, latKind = fmt.Sprintf("%.0f reaction.updated deliveries/s (offered %.0f; %.0f changes)", num(r, "deliveries_per_s"),
				num(r, "offered_deliveries_per_s"), num(r, "changes")), "delivery"
		case "chats":
			thr, latKind = fmt.Sprintf("%.0f msg/s acked, %.0f deliveries/s", num(r, "acked_per_s"), num(r, "deliveries_per_s")), "ack"
		case "idle":
			thr, latKind = fmt.Sprintf("%.0f connections, %.1f KiB RSS and %.1f KiB heap each", num(r, "connections_ok"), num(r, "rss_per_conn"), num(r, "heap_per_conn")), "connect"
		case "reconnect":
			thr, latKind = fmt.Sprintf("%.0f of %.0f clients dropped, all back in %.2f s", num(r, "dropped"), num(r, "clients"), num(r, "back_and_synced_s")), "back_since_kill"
		}
		l := lat(r, latKind)
		latCell := fmt.Sprintf("%s: %s / %s / %s", latKind, bench.FormatNum(l.P50), bench.FormatNum(l.P99), bench.FormatNum(l.Max))
		if a, ok := r.Latency["ack"]; ok && latKind == "delivery" {
			latCell += fmt.Sprintf("; ack: %s / %s / %s", bench.FormatNum(a.P50), bench.FormatNum(a.P99), bench.FormatNum(a.Max))
		}
		cpu := "-"
		if v := num(r, "server_cpu_per_message"); strings.HasPrefix(r.Name, "onechat") && !math.IsNaN(v) {
			cpu = fmt.Sprintf("%.0f µs/message", v)
		} else if v := num(r, "server_cpu_per_delivery"); !math.IsNaN(v) {
			cpu = fmt.Sprintf("%.1f µs/delivery", v)
		} else if v := num(r, "server_cpu_per_message"); !math.IsNaN(v) {
			cpu = fmt.Sprintf("%.0f µs/message", v)
		}
		tool, others, busy := "-", "-", "-"
		if u := r.Usage; u != nil {
			cpu += fmt.Sprintf(" (%.2f cores)", u.ServerCores)
			tool = fmt.Sprintf("%.2f cores", u.ToolCores)
			others = fmt.Sprintf("%.2f / %.2f cores", u.Procs["nginx"], u.Procs["postgres"])
			busy = fmt.Sprintf("%.0f%%", 100*u.HostBusy)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %.0f / %.0f |\n", r.Name, thr, latCell,
			cpu, tool, others, busy, nz(num(r, "lost")), nz(num(r, "duplicated")))
	}
	return b.String()
}

const (
	docBegin = "<!-- bench:results:begin (written by make bench; edits inside are overwritten) -->"
	docEnd   = "<!-- bench:results:end -->"
)

// updateDoc replaces the generated part of the performance document.
func updateDoc(path, resultsFile string, machine map[string]string, results []*bench.Result, targetsMD string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := string(b)
	i, j := strings.Index(doc, docBegin), strings.Index(doc, docEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %q ... %q section to update", path, docBegin, docEnd)
	}
	rel, err := filepath.Rel(filepath.Dir(path), resultsFile)
	if err != nil {
		rel = resultsFile
	}
	var g strings.Builder
	g.WriteString(docBegin + "\n")
	fmt.Fprintf(&g, "Latest run: %s UTC on `%s` (%s cores, %s, %s RAM, kernel %s, %s), commit `%s`; suite took %s min.\n",
		time.Now().UTC().Format("2006-01-02 15:04"), machine["host"], machine["nproc"], machine["cpu"], machine["memory"],
		machine["kernel"], machine["go"], machine["commit"], machine["suite_minutes"])
	fmt.Fprintf(&g, "Results: [`%s`](%s).\n\n", filepath.Base(resultsFile), rel)
	g.WriteString(targetsMD + "\n")
	g.WriteString(detailTable(results) + "\n")
	for _, r := range results {
		for _, ch := range r.Charts {
			fmt.Fprintf(&g, "![%s](%s) ", r.Name, filepath.Join(filepath.Dir(rel), ch))
		}
	}
	g.WriteString("\n" + docEnd)
	doc = doc[:i] + g.String() + doc[j+len(docEnd):]
	return os.WriteFile(path, []byte(doc), 0o644)
}
