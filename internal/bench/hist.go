package bench

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Hist is a latency histogram in microseconds with log-linear buckets (64 per power of two,
// so a quantile is off by at most 1.6%), safe for concurrent Record without locks.
type Hist struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64
	max    atomic.Uint64
}

const (
	subBits     = 6
	subCount    = 1 << subBits
	histBuckets = (40 - subBits + 1) * subCount // up to 2^40 µs, 12 days
)

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(v) - subBits - 1 // v>>e is in [64, 128)
	i := (e+1)*subCount + int(v>>e) - subCount
	return min(i, histBuckets-1)
}

// lowOf is the smallest value of bucket i; highOf the smallest of the next.
func lowOf(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	e := i/subCount - 1
	return uint64(i%subCount+subCount) << e
}

// Record adds one duration.
func (h *Hist) Record(d time.Duration) { h.RecordMicros(d.Microseconds()) }

// RecordMicros adds one value in microseconds; negative values count as 0.
func (h *Hist) RecordMicros(us int64) {
	v := uint64(max(us, 0))
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Count is the number of values recorded.
func (h *Hist) Count() uint64 { return h.n.Load() }

// Merge adds o's values to h.
func (h *Hist) Merge(o *Hist) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
}

// Quantile returns the value (µs) below which a fraction q of the values lie, interpolated
// within a bucket; the max for q >= 1.
func (h *Hist) Quantile(q float64) float64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	if q >= 1 {
		return float64(h.max.Load())
	}
	rank := q * float64(n)
	var seen float64
	for i := range h.counts {
		c := float64(h.counts[i].Load())
		if c == 0 {
			continue
		}
		if seen+c >= rank {
			lo, hi := float64(lowOf(i)), float64(lowOf(i+1))
			v := lo + (hi-lo)*(rank-seen)/c
			return math.Min(v, float64(h.max.Load()))
		}
		seen += c
	}
	return float64(h.max.Load())
}

// Summary is a histogram as the reports show it, in milliseconds.
type Summary struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	// Curve is the latency by percentile, for charts: pairs of (quantile, ms).
	Curve [][2]float64 `json:"curve,omitempty"`
}

// curveQuantiles are spaced evenly on the "nines" scale that latency charts use.
var curveQuantiles = func() []float64 {
	var qs []float64
	for x := 0.0; x <= 5.0001; x += 0.05 { // q = 1 - 10^-x, up to 99.999%
		qs = append(qs, 1-math.Pow(10, -x))
	}
	return append(qs, 1)
}()

// Summarize computes the summary; curve adds the percentile curve.
func (h *Hist) Summarize(curve bool) Summary {
	n := h.n.Load()
	s := Summary{Count: n}
	if n == 0 {
		return s
	}
	ms := func(us float64) float64 { return math.Round(us) / 1000 }
	s.Mean = ms(float64(h.sum.Load()) / float64(n))
	s.P50, s.P90, s.P99, s.P999 = ms(h.Quantile(.5)), ms(h.Quantile(.9)), ms(h.Quantile(.99)), ms(h.Quantile(.999))
	s.Max = ms(float64(h.max.Load()))
	if curve {
		for _, q := range curveQuantiles {
			if q < 1 && float64(n)*(1-q) < 1 {
				continue // beyond what n values can show
			}
			s.Curve = append(s.Curve, [2]float64{q, ms(h.Quantile(q))})
		}
	}
	return s
}

// shards spreads the hottest counters over cache lines: on a small machine the tool runs on
// the same cores as the server, and every delivery counted on one shared line would bounce
// it between them.
const shards = 8

// ShardedHist is a Hist written through shards (by device), read merged.
type ShardedHist struct{ h [shards]Hist }

// RecordMicros adds one value (µs) to shard i.
func (s *ShardedHist) RecordMicros(i int, us int64) { s.h[i%shards].RecordMicros(us) }

// Merge adds o's values.
func (s *ShardedHist) Merge(o *ShardedHist) {
	for i := range s.h {
		s.h[i].Merge(&o.h[i])
	}
}

// Summarize summarizes the merged shards.
func (s *ShardedHist) Summarize(curve bool) Summary {
	var m Hist
	for i := range s.h {
		m.Merge(&s.h[i])
	}
	return m.Summarize(curve)
}

// Counter is a sharded count.
type Counter struct {
	c [shards]struct {
		n atomic.Int64
		_ [56]byte // a cache line each
	}
}

// Add adds v to shard i.
func (c *Counter) Add(i int, v int64) { c.c[i%shards].n.Add(v) }

// Load is the total.
func (c *Counter) Load() int64 {
	var t int64
	for i := range c.c {
		t += c.c[i].n.Load()
	}
	return t
}
