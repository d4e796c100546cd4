package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/wschat/chat/internal/bench"
)

type chart struct {
	name string
	svg  []byte
}

// charts draws a result's latency distribution (every step on one chart) and, for a soak,
// memory and latency over time.
func charts(r *bench.Result) []chart {
	var out []chart
	var series []bench.Series
	add := func(prefix string, res *bench.Result) {
		keys := make([]string, 0, len(res.Latency))
		for k := range res.Latency {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if s := res.Latency[k]; len(s.Curve) > 0 {
				series = append(series, bench.Series{Name: strings.TrimSpace(prefix + " " + k), Points: s.Curve})
			}
		}
	}
	add("", r)
	for _, s := range r.Steps {
		add(stepLabel(s), s)
	}
	if len(series) > 0 {
		out = append(out, chart{slug(r.Name) + "-latency", bench.LatencyChart(r.Name+": latency by percentile", series)})
	}
	if len(r.Series) > 0 {
		var rss, heap, gor, ack, deliv, rest [][2]float64
		for _, s := range r.Series {
			rss = append(rss, [2]float64{s.At, s.RSSMiB})
			heap = append(heap, [2]float64{s.At, s.HeapMiB})
			gor = append(gor, [2]float64{s.At, s.Goroutines / 1000})
			ack = append(ack, [2]float64{s.At, s.AckP99})
			deliv = append(deliv, [2]float64{s.At, s.DelivP99})
			rest = append(rest, [2]float64{s.At, s.RestP99})
		}
		out = append(out, chart{slug(r.Name) + "-memory", bench.TimeChart(r.Name+": server memory over time (all instances)", "MiB; goroutines in thousands",
			[]bench.Series{{Name: "RSS MiB", Points: rss}, {Name: "Go heap in use MiB", Points: heap}, {Name: "goroutines (k)", Points: gor}})})
		out = append(out, chart{slug(r.Name) + "-latency-over-time", bench.TimeChart(r.Name+": p99 latency over time", "ms",
			[]bench.Series{{Name: "ack p99", Points: ack}, {Name: "delivery p99", Points: deliv}, {Name: "REST p99", Points: rest}})})
	}
	return out
}

func stepLabel(s *bench.Result) string {
	if r, ok := s.Params["rate"]; ok {
		return fmt.Sprintf("%v/s", r)
	}
	return s.Name
}

func slug(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, s)
}

// machineInfo describes where the numbers were measured.
func machineInfo() map[string]string {
	m := map[string]string{"nproc": fmt.Sprint(runtime.NumCPU()), "go": runtime.Version(), "os": runtime.GOOS + "/" + runtime.GOARCH,
		"time": time.Now().UTC().Format("2006-01-02 15:04 UTC")}
	if h, err := os.Hostname(); err == nil {
		m["host"] = h
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		var kb int64
		fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "MemTotal:")), "%d", &kb)
		m["memory"] = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m["kernel"] = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		m["commit"] = strings.TrimSpace(string(out))
	}
	return m
}
