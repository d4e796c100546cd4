package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The server metrics the tool reads, summed over their label sets.
const (
	mCPU         = "process_cpu_seconds_total"
	mRSS         = "process_resident_memory_bytes"
	mHeap        = "go_memstats_heap_inuse_bytes"
	mStack       = "go_memstats_stack_inuse_bytes"
	mGoroutines  = "go_goroutines"
	mConns       = "chat_ws_connections"
	mDeliveries  = "chat_deliveries_total"
	mSlowDropped = "chat_slow_consumers_dropped_total"
	mGapsHealed  = "chat_gaps_healed_total"
	// Where a send's time goes: the group commit's calls, the broker's lag, the reorderer's
	// holds (histograms' sums and counts).
	mCallSeconds = "chat_store_send_batch_duration_seconds_sum"
	mCalls       = "chat_store_send_batch_duration_seconds_count"
	mCallSends   = "chat_store_send_batch_sends_sum"
	mLagSeconds  = "chat_broker_receive_lag_seconds_sum"
	mLags        = "chat_broker_receive_lag_seconds_count"
	mHoldSeconds = "chat_reorder_hold_seconds_sum"
	mHolds       = "chat_reorder_hold_seconds_count"
)

var wantedMetrics = map[string]bool{mCPU: true, mRSS: true, mHeap: true, mStack: true, mGoroutines: true, mConns: true,
	mDeliveries: true, mSlowDropped: true, mGapsHealed: true, mCallSeconds: true, mCalls: true, mCallSends: true,
	mLagSeconds: true, mLags: true, mHoldSeconds: true, mHolds: true}

// Scrape reads one instance's /metrics and returns the wanted metrics.
func Scrape(ctx context.Context, url string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		if !wantedMetrics[name] {
			continue
		}
		rest := line[len(name):]
		if i := strings.LastIndexByte(rest, '}'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err == nil {
			out[name] += v
		}
	}
	return out, sc.Err()
}

// Servers is the set of instances whose /metrics the tool reads.
type Servers struct{ URLs []string }

// Snapshot is every instance's metrics at one moment.
type Snapshot struct {
	At    time.Time
	Per   []map[string]float64 // by instance, nil when the scrape failed
	Procs map[string]float64   // CPU seconds of other processes on the box, by name
	Tool  float64              // the tool's own CPU seconds
	Host  HostCPU
}

// Snap scrapes every instance (failures leave a nil entry) and reads the CPU counters.
func (s Servers) Snap(ctx context.Context, procNames []string) Snapshot {
	snap := Snapshot{At: time.Now(), Per: make([]map[string]float64, len(s.URLs)), Tool: SelfCPU(), Host: ReadHostCPU()}
	for i, u := range s.URLs {
		m, err := Scrape(ctx, u)
		if err == nil {
			snap.Per[i] = m
		}
	}
	snap.Procs = ProcCPU(procNames)
	return snap
}

// Sum adds a metric over the instances that answered.
func (s Snapshot) Sum(name string) float64 {
	var t float64
	for _, m := range s.Per {
		t += m[name]
	}
	return t
}

// Answered counts the instances that answered.
func (s Snapshot) Answered() int {
	n := 0
	for _, m := range s.Per {
		if m != nil {
			n++
		}
	}
	return n
}

// SelfCPU is the tool's own CPU time (user + system) in seconds.
func SelfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// HostCPU is the machine's CPU time from /proc/stat, in seconds.
type HostCPU struct{ Busy, Total float64 }

// ReadHostCPU reads /proc/stat (zero where there is none).
func ReadHostCPU() HostCPU {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return HostCPU{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var h HostCPU
	for i, s := range f[1:] {
		v, _ := strconv.ParseFloat(s, 64)
		v /= clockTicks
		h.Total += v
		if i != 3 && i != 4 { // idle, iowait
			h.Busy += v
		}
	}
	return h
}

const clockTicks = 100 // USER_HZ on Linux

// ProcCPU sums the CPU seconds of the processes whose command name (comm) is in names, by
// name: where the rest of the machine's CPU goes (nginx, postgres, redis-server, chatd).
func ProcCPU(names []string) map[string]float64 {
	if len(names) == 0 {
		return nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		l, r := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if l < 0 || r < l {
			continue
		}
		comm := s[l+1 : r]
		if !want[comm] {
			continue
		}
		f := strings.Fields(s[r+1:]) // f[0] is the state, field 3 of stat
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		out[comm] += (ut + st) / clockTicks
	}
	return out
}
