package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wschat/chat/internal/bench"
)

// fanoutPoint is one fanout shape of the suite and of the side-by-side runs: a room of members,
// senders of them sending, one measured step per rate on the same connections.
type fanoutPoint struct {
	name             string
	members, senders int
	rates            []float64
}

// anchorPoints are the shapes measured against Centrifugo (issue 12): the 200-member room
// with 20 senders at 100k and 122k deliveries/s, the 1,000-member room with 50 senders at 40k
// and 60k, and one chat of two members with one sending connection.
var anchorPoints = []fanoutPoint{
	{"fanout-200", 200, 20, []float64{503, 610}},
	{"fanout-1000", 1000, 50, []float64{40, 60}},
	{"onechat", 2, 1, []float64{500, 2000}},
}

// run measures the point against the chat, or against Centrifugo when cc is set, and returns
// one result per rate, named <point>-<rate>.
func (p fanoutPoint) run(ctx context.Context, env bench.Env, d time.Duration, cc *bench.CentrifugoConfig) ([]*bench.Result, error) {
	cfg := bench.FanoutConfig{Name: p.name, Members: p.members, Senders: p.senders, Rates: p.rates, Duration: d,
		Warmup: 3 * time.Second, Pad: 40}
	var r *bench.Result
	var err error
	if cc != nil {
		r, err = bench.CentrifugoFanout(ctx, env, cfg, *cc)
	} else {
		r, err = bench.Fanout(ctx, env, cfg)
	}
	if err != nil {
		return nil, err
	}
	steps := r.Steps
	if len(steps) == 0 {
		steps = []*bench.Result{r}
	}
	for i, s := range steps {
		s.Name = fmt.Sprintf("%s-%.0f", p.name, p.rates[i])
	}
	return steps, nil
}

func runAnchor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("anchor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := commonFlags(fs)
	centrifugo := fs.String("centrifugo", "", "Centrifugo's config.json: run against Centrifugo at -url instead of the chat")
	label := fs.String("label", "", "what this run measures, as the side-by-side table names it (default: chat or centrifugo)")
	d := fs.Duration("d", 20*time.Second, "duration of each step")
	only := fs.String("only", "", "comma-separated points to run (fanout-200,fanout-1000,onechat)")
	build := fs.String("server-build", "", "what the server runs (e.g. chatd built from a commit, or Centrifugo's version), for the table")
	appendTo := fs.Bool("append", false, "add the results to those already in the -json file (points run one at a time, alternated with another server's)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	var cc *bench.CentrifugoConfig
	if *centrifugo != "" {
		cfg, err := bench.ReadCentrifugoConfig(*centrifugo)
		if err != nil {
			return err
		}
		cc = &cfg
	}
	if *label == "" {
		*label = "chat"
		if cc != nil {
			*label = "centrifugo"
		}
	}
	env := c.env(stderr)
	machine := machineInfo()
	machine["label"] = *label
	machine["server_build"] = *build
	var results []*bench.Result
	for _, p := range anchorPoints {
		if !listed(*only, p.name) || ctx.Err() != nil {
			continue
		}
		fmt.Fprintf(stderr, "\n--- %s (%s)\n", p.name, *label)
		rs, err := p.run(ctx, env, *d, cc)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		for _, r := range rs {
			r.Print(stdout)
		}
		results = append(results, rs...)
		time.Sleep(10 * time.Second) // presence and the like settle before the next point
	}
	if c.json != "" { // anchor-table draws the charts, every server's on one
		if *appendTo {
			var err error
			if results, machine, err = appendResults(c.json, results, machine); err != nil {
				return err
			}
		}
		if err := writeJSON(c.json, results, machine); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwrote %s\n", c.json)
	}
	for _, r := range results {
		if !r.CorrectnessOK() {
			return fmt.Errorf("%w: %s lost, duplicated or reordered deliveries", errFailed, r.Name)
		}
	}
	return nil
}

// appendResults puts the results already in the file at path (if it exists) before these,
// and keeps its machine description (the time of its first point); a point run again replaces
// its earlier results.
func appendResults(path string, results []*bench.Result, machine map[string]string) ([]*bench.Result, map[string]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return results, machine, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var f resultsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if l := f.Machine["label"]; l != machine["label"] {
		return nil, nil, fmt.Errorf("%s holds the results of %q, not %q", path, l, machine["label"])
	}
	again := map[string]bool{}
	for _, r := range results {
		again[r.Name] = true
	}
	var all []*bench.Result
	for _, r := range f.Results {
		if !again[r.Name] {
			all = append(all, r)
		}
	}
	return append(all, results...), f.Machine, nil
}

// listed reports whether name is in the comma-separated list (an empty list holds everything).
func listed(list, name string) bool {
	if list == "" {
		return true
	}
	for _, n := range strings.Split(list, ",") {
		if strings.TrimSpace(n) == name {
			return true
		}
	}
	return false
}

const (
	anchorBegin = "<!-- bench:anchor:begin (written by make bench-anchor; edits inside are overwritten) -->"
	anchorEnd   = "<!-- bench:anchor:end -->"
)

// runAnchorTable reads the results files of anchor runs and writes them side by side.
func runAnchorTable(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("anchor-table", flag.ContinueOnError)
	fs.SetOutput(stderr)
	doc := fs.String("doc", "docs/PERFORMANCE.md", "document whose anchor table is rewritten (empty: print only)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("anchor-table: name the results files of anchor runs")
	}
	var runs []anchorRun
	for _, path := range fs.Args() {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var f resultsFile
		if err := json.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		runs = append(runs, anchorRun{path: path, file: f})
	}
	table := anchorTable(runs, *doc)
	charts, err := anchorCharts(runs, *doc)
	if err != nil {
		return err
	}
	table += "\n" + charts
	fmt.Fprintln(stdout, table)
	if *doc == "" {
		return nil
	}
	return replaceBetween(*doc, anchorBegin, anchorEnd, table)
}

// anchorCharts draws, for each point, every server's delivery and ack latency by percentile
// on one chart, next to the first results file, and returns the markdown that shows them.
func anchorCharts(runs []anchorRun, doc string) (string, error) {
	stem := strings.TrimSuffix(runs[0].path, ".json")
	if l := runs[0].file.Machine["label"]; l != "" {
		stem = strings.TrimSuffix(stem, "-"+l)
	}
	var md strings.Builder
	for _, name := range pointNames(runs) {
		var series []bench.Series
		for _, r := range runs {
			for _, res := range r.file.Results {
				if res.Name != name {
					continue
				}
				for _, kind := range []string{"delivery", "ack"} {
					if s := res.Latency[kind]; len(s.Curve) > 0 {
						series = append(series, bench.Series{Name: r.file.Machine["label"] + " " + kind, Points: s.Curve})
					}
				}
			}
		}
		if len(series) == 0 {
			continue
		}
		file := stem + "-" + slug(name) + ".svg"
		if err := os.WriteFile(file, bench.LatencyChart(name+": latency by percentile", series), 0o644); err != nil {
			return "", err
		}
		rel := file
		if doc != "" {
			if p, err := filepath.Rel(filepath.Dir(doc), file); err == nil {
				rel = p
			}
		}
		fmt.Fprintf(&md, "![%s](%s) ", name, rel)
	}
	return md.String(), nil
}

// pointNames are the results' names in the order the runs first list them.
func pointNames(runs []anchorRun) []string {
	var names []string
	seen := map[string]bool{}
	for _, r := range runs {
		for _, res := range r.file.Results {
			if !seen[res.Name] {
				seen[res.Name] = true
				names = append(names, res.Name)
			}
		}
	}
	return names
}

type anchorRun struct {
	path string
	file resultsFile
}

// anchorTable is the markdown of the runs: where and when each ran, then one row per point
// and server.
func anchorTable(runs []anchorRun, doc string) string {
	var b strings.Builder
	for _, r := range runs {
		m := r.file.Machine
		rel := r.path
		if doc != "" {
			if p, err := filepath.Rel(filepath.Dir(doc), r.path); err == nil {
				rel = p
			}
		}
		server := m["server_build"]
		if server == "" {
			server = "the tool's checkout `" + m["commit"] + "`"
		}
		fmt.Fprintf(&b, "- **%s**: %s on `%s` (%s cores, %s), server: %s; results [`%s`](%s)\n", m["label"], m["time"], m["host"],
			m["nproc"], m["cpu"], server, filepath.Base(r.path), rel)
	}
	b.WriteString("\n| point | server | throughput | delivery p50 / p99 (ms) | ack p50 / p99 (ms) | server CPU | machine busy | lost / dup / out of order |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, name := range pointNames(runs) {
		for _, r := range runs {
			for _, res := range r.file.Results {
				if res.Name == name {
					b.WriteString(anchorRow(r.file.Machine["label"], res))
				}
			}
		}
	}
	return b.String()
}

func anchorRow(label string, r *bench.Result) string {
	onechat := strings.HasPrefix(r.Name, "onechat")
	thr := fmt.Sprintf("%.0f deliveries/s", num(r, "deliveries_per_s"))
	cpu := fmt.Sprintf("%.1f µs/delivery", num(r, "server_cpu_per_delivery"))
	if onechat {
		thr = fmt.Sprintf("%.0f msg/s acked", num(r, "acked_per_s"))
		cpu = fmt.Sprintf("%.0f µs/message", num(r, "server_cpu_per_message"))
	}
	busy := "-"
	if u := r.Usage; u != nil {
		cpu += fmt.Sprintf(" (%.2f cores)", u.ServerCores)
		busy = fmt.Sprintf("%.0f%%", 100*u.HostBusy)
	}
	if math.IsNaN(num(r, "server_cpu_per_delivery")) && math.IsNaN(num(r, "server_cpu_per_message")) {
		cpu = "-"
	}
	d, a := lat(r, "delivery"), lat(r, "ack")
	return fmt.Sprintf("| %s | %s | %s | %s / %s | %s / %s | %s | %s | %.0f / %.0f / %.0f |\n", r.Name, label, thr,
		bench.FormatNum(d.P50), bench.FormatNum(d.P99), bench.FormatNum(a.P50), bench.FormatNum(a.P99), cpu, busy,
		nz(num(r, "lost")), nz(num(r, "duplicated")), nz(num(r, "out_of_order")))
}

// replaceBetween rewrites the part of the file between the begin and end markers.
func replaceBetween(path, begin, end, content string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := string(b)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %q ... %q section to update", path, begin, end)
	}
	doc = doc[:i] + begin + "\n" + content + "\n" + doc[j:]
	return os.WriteFile(path, []byte(doc), 0o644)
}
