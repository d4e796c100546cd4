package bench

import (
	"math"
	"strings"
	"testing"
)

func TestHistQuantiles(t *testing.T) {
	var h Hist
	for v := int64(1); v <= 100000; v++ { // 1 µs .. 100 ms, uniform
		h.RecordMicros(v)
	}
	for _, tc := range []struct{ q, want float64 }{{0.5, 50000}, {0.9, 90000}, {0.99, 99000}, {1, 100000}} {
		got := h.Quantile(tc.q)
		if math.Abs(got-tc.want)/tc.want > 0.02 {
			t.Errorf("q%.2f = %.0f, want %.0f within 2%%", tc.q, got, tc.want)
		}
	}
	var o Hist
	o.RecordMicros(5_000_000)
	h.Merge(&o)
	if h.Count() != 100001 || h.Summarize(false).Max != 5000 {
		t.Errorf("merge: count %d, max %v ms", h.Count(), h.Summarize(false).Max)
	}
}

func TestBuckets(t *testing.T) {
	prev := -1
	for v := uint64(0); v < 1<<20; v += 7 {
		b := bucketOf(v)
		if b < prev {
			t.Fatalf("bucket of %d is %d, below the bucket of a smaller value (%d)", v, b, prev)
		}
		if lo, hi := lowOf(b), lowOf(b+1); v < lo || v >= hi {
			t.Fatalf("%d in bucket %d = [%d, %d)", v, b, lo, hi)
		}
		prev = b
	}
}

func TestSeqSet(t *testing.T) {
	s := newSeqSet(10)
	for _, tc := range []struct {
		seq            int64
		fresh, inOrder bool
	}{
		{11, true, true}, {12, true, true}, {14, true, true}, {13, true, false}, {12, false, false}, {9, false, false},
	} {
		fresh, inOrder := s.add(tc.seq)
		if fresh != tc.fresh || inOrder != tc.inOrder {
			t.Errorf("add %d: fresh %v in order %v, want %v %v", tc.seq, fresh, inOrder, tc.fresh, tc.inOrder)
		}
	}
	if s.contiguous() != 14 || s.missing(20) != 6 || s.missing(14) != 0 {
		t.Errorf("contiguous %d, missing to 20: %d, to 14: %d", s.contiguous(), s.missing(20), s.missing(14))
	}
	s.ack(80) // own message: no effect on order
	if fresh, inOrder := s.add(15); !fresh || !inOrder {
		t.Error("an ack moved the order mark")
	}
	if !s.has(80) || s.has(79) || s.missing(80) != 64 {
		t.Errorf("has(80) %v has(79) %v missing(80) %d", s.has(80), s.has(79), s.missing(80))
	}
}

func TestParseMessage(t *testing.T) {
	frame := []byte(`{"type":"message.new","data":{"message":{"id":9,"chat_id":4,"seq":77,"kind":"text","sender_id":3,"body":"t123456 xx","client_id":"a-1","created_at":"2026-01-01T00:00:00.000Z"}}}`)
	if got := frameType(frame); got != "message.new" {
		t.Fatalf("type %q", got)
	}
	m, ok := parseMessage(frame)
	if !ok || m.chatID != 4 || m.seq != 77 || m.sentAt != 123456 {
		t.Fatalf("parsed %+v %v", m, ok)
	}
	// Another field order takes the slow path and gives the same answer.
	other := []byte(`{"data":{"message":{"seq":78,"body":"t5","chat_id":4}},"ref":12,"type":"message.ack"}`)
	if got := frameType(other); got != "message.ack" {
		t.Fatalf("type %q", got)
	}
	m, ok = parseMessage(other)
	if !ok || m.chatID != 4 || m.seq != 78 || m.sentAt != 5 {
		t.Fatalf("parsed %+v %v", m, ok)
	}
	b := appendSend(nil, 7, 4, "run-1-", 99, 3)
	if want := `{"type":"message.send","ref":7,"data":{"chat_id":4,"client_id":"run-1-7","body":"t99 xxx"}}`; string(b) != want {
		t.Errorf("send frame %s, want %s", b, want)
	}
}

func TestCharts(t *testing.T) {
	var h Hist
	for v := int64(1); v < 5000; v++ {
		h.RecordMicros(v * 10)
	}
	svg := string(LatencyChart("x <&> y", []Series{{Name: "delivery", Points: h.Summarize(true).Curve}}))
	if !strings.HasPrefix(svg, "<svg") || !strings.Contains(svg, "x &lt;&amp;&gt; y") || !strings.Contains(svg, "<polyline") {
		t.Errorf("latency chart: %.200s", svg)
	}
	svg = string(TimeChart("mem", "MiB", []Series{{Name: "rss", Points: [][2]float64{{0, 10}, {10, 12}, {20, 11}}}}))
	if !strings.Contains(svg, "<polyline") {
		t.Error("time chart has no line")
	}
}
