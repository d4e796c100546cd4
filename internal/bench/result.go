package bench

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what one scenario (or one step of it) measured.
type Result struct {
	Name     string             `json:"name"`
	Scenario string             `json:"scenario"`
	Params   map[string]any     `json:"params"`
	Started  time.Time          `json:"started"`
	Seconds  float64            `json:"seconds"` // the measured window
	Values   []Value            `json:"values"`
	Latency  map[string]Summary `json:"latency,omitempty"`
	Usage    *Usage             `json:"usage,omitempty"`
	Checks   []Check            `json:"checks,omitempty"`
	Series   []Sample           `json:"series,omitempty"`
	Steps    []*Result          `json:"steps,omitempty"`
	Errors   []string           `json:"errors,omitempty"`
	Charts   []string           `json:"charts,omitempty"`
}

// Value is one number of a result.
type Value struct {
	Key   string  `json:"key"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"`
}

// Check is a target and whether the result meets it.
type Check struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	OK   bool   `json:"ok"`
}

// Usage is where the machine's CPU went during the measured window, in cores (CPU seconds
// per second), and the server's cost per unit of work.
type Usage struct {
	Seconds     float64            `json:"seconds"`
	ServerCores float64            `json:"server_cores"` // all instances, from process_cpu_seconds_total
	ToolCores   float64            `json:"tool_cores"`
	HostBusy    float64            `json:"host_busy"` // fraction of all cores busy
	Procs       map[string]float64 `json:"procs,omitempty"`
	Instances   int                `json:"instances"` // instances that answered /metrics
}

// Sample is one point of a soak's time series.
type Sample struct {
	At         float64 `json:"t_s"`
	RSSMiB     float64 `json:"rss_mib"`
	HeapMiB    float64 `json:"heap_mib"`
	Goroutines float64 `json:"goroutines"`
	Conns      float64 `json:"conns"`
	SendsPerS  float64 `json:"sends_per_s"`
	AckP99     float64 `json:"ack_p99_ms"`
	DelivP99   float64 `json:"delivery_p99_ms"`
	RestP99    float64 `json:"rest_p99_ms"`
	Errors     int64   `json:"errors"`
}

// Add appends a value.
func (r *Result) Add(key string, v float64, unit string) {
	r.Values = append(r.Values, Value{key, v, unit})
}

// Get returns a value by key (NaN if absent).
func (r *Result) Get(key string) float64 {
	for _, v := range r.Values {
		if v.Key == key {
			return v.Value
		}
	}
	return math.NaN()
}

// Check records a target: ok decides, want and got are how the report shows it.
func (r *Result) Check(name, want, got string, ok bool) {
	r.Checks = append(r.Checks, Check{name, want, got, ok})
}

// Passed reports whether every check holds.
func (r *Result) Passed() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	for _, s := range r.Steps {
		if !s.Passed() {
			return false
		}
	}
	return true
}

// CorrectnessOK reports whether nothing was lost, duplicated or reordered, here and in steps.
func (r *Result) CorrectnessOK() bool {
	for _, k := range []string{"lost", "duplicated", "out_of_order"} {
		if v := r.Get(k); v > 0 {
			return false
		}
	}
	for _, s := range r.Steps {
		if !s.CorrectnessOK() {
			return false
		}
	}
	return true
}

// Print writes the human table.
func (r *Result) Print(w io.Writer) {
	fmt.Fprintf(w, "\n== %s  (%s, %.1f s measured)\n", r.Name, paramString(r.Params), r.Seconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, v := range r.Values {
		fmt.Fprintf(tw, "  %s\t%s\t %s\t\n", v.Key, FormatNum(v.Value), v.Unit)
	}
	tw.Flush()
	if len(r.Latency) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "  latency (ms)\tcount\tmean\tp50\tp90\tp99\tp99.9\tmax\t\n")
		for _, k := range sortedKeys(r.Latency) {
			s := r.Latency[k]
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", k, s.Count, FormatNum(s.Mean), FormatNum(s.P50),
				FormatNum(s.P90), FormatNum(s.P99), FormatNum(s.P999), FormatNum(s.Max))
		}
		tw.Flush()
	}
	if u := r.Usage; u != nil {
		var procs []string
		for _, k := range sortedKeys(u.Procs) {
			procs = append(procs, fmt.Sprintf("%s %.2f", k, u.Procs[k]))
		}
		fmt.Fprintf(w, "  cpu cores: server %.2f (%d instances), tool %.2f, machine busy %.0f%%; %s\n",
			u.ServerCores, u.Instances, u.ToolCores, 100*u.HostBusy, strings.Join(procs, ", "))
	}
	for _, c := range r.Checks {
		mark := "PASS"
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  [%s] %s: %s (want %s)\n", mark, c.Name, c.Got, c.Want)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  ! %s\n", e)
	}
	for _, s := range r.Steps {
		s.Print(w)
	}
}

func paramString(p map[string]any) string {
	var parts []string
	for _, k := range sortedKeys(p) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, p[k]))
	}
	return strings.Join(parts, " ")
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// FormatNum prints a number with sensible precision.
func FormatNum(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "-"
	case a >= 1000 || v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// usage turns two snapshots into where the CPU went.
func usage(a, b Snapshot) *Usage {
	secs := b.At.Sub(a.At).Seconds()
	if secs <= 0 {
		return nil
	}
	u := &Usage{Seconds: secs, Instances: min(a.Answered(), b.Answered())}
	u.ServerCores = max(0, b.Sum(mCPU)-a.Sum(mCPU)) / secs
	u.ToolCores = (b.Tool - a.Tool) / secs
	if dt := b.Host.Total - a.Host.Total; dt > 0 {
		u.HostBusy = (b.Host.Busy - a.Host.Busy) / dt
	}
	if len(b.Procs) > 0 {
		u.Procs = map[string]float64{}
		for k, v := range b.Procs {
			u.Procs[k] = math.Round(max(0, v-a.Procs[k])/secs*100) / 100
		}
	}
	return u
}
