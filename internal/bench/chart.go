package bench

import (
	"bytes"
	"fmt"
	"html"
	"math"
)

// Series is one line of a chart.
type Series struct {
	Name   string
	Points [][2]float64
}

type tick struct {
	pos   float64
	label string
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// LatencyChart draws latency by percentile (the x axis in "nines", the y axis in ms on a log
// scale), one line per series; series points are (quantile, ms) as in Summary.Curve.
func LatencyChart(title string, series []Series) []byte {
	var conv []Series
	for _, s := range series {
		var pts [][2]float64
		for _, p := range s.Points {
			if p[0] >= 1 {
				continue
			}
			pts = append(pts, [2]float64{-math.Log10(1 - p[0]), math.Max(p[1], 0.01)})
		}
		conv = append(conv, Series{s.Name, pts})
	}
	xt := []tick{{0, "0%"}, {1, "90%"}, {2, "99%"}, {3, "99.9%"}, {4, "99.99%"}, {5, "99.999%"}}
	return lineChart(title, "percentile", "latency (ms, log scale)", xt, true, conv)
}

// TimeChart draws values over time (x in seconds), linear axes.
func TimeChart(title, yLabel string, series []Series) []byte {
	var xmax float64
	for _, s := range series {
		for _, p := range s.Points {
			xmax = math.Max(xmax, p[0])
		}
	}
	step := niceStep(xmax / 6)
	var xt []tick
	for x := 0.0; x <= xmax+step/2; x += step {
		xt = append(xt, tick{x, fmt.Sprintf("%gs", x)})
	}
	return lineChart(title, "time", yLabel, xt, false, series)
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func lineChart(title, xLabel, yLabel string, xt []tick, yLog bool, series []Series) []byte {
	const w, h, left, right, top, bottom = 760.0, 420.0, 70.0, 190.0, 40.0, 50.0
	pw, ph := w-left-right, h-top-bottom
	xmin, xmax := xt[0].pos, xt[len(xt)-1].pos
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, p := range s.Points {
			ymin, ymax = math.Min(ymin, p[1]), math.Max(ymax, p[1])
			xmax = math.Max(xmax, p[0])
		}
	}
	if math.IsInf(ymin, 0) {
		ymin, ymax = 0, 1
	}
	var yt []tick
	fy := func(v float64) float64 { return v }
	if yLog {
		lo, hi := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
		if hi <= lo {
			hi = lo + 1
		}
		ymin, ymax = lo, hi
		fy = math.Log10
		for e := lo; e <= hi; e++ {
			yt = append(yt, tick{e, FormatNum(math.Pow(10, e))})
		}
	} else {
		ymin = 0
		step := niceStep(ymax / 5)
		ymax = math.Max(step, math.Ceil(ymax/step)*step)
		for v := 0.0; v <= ymax+step/2; v += step {
			yt = append(yt, tick{v, FormatNum(v)})
		}
	}
	X := func(x float64) float64 { return left + (x-xmin)/(xmax-xmin)*pw }
	Y := func(y float64) float64 { return top + ph - (fy(y)-ymin)/(ymax-ymin)*ph }
	Yt := func(t float64) float64 { return top + ph - (t-ymin)/(ymax-ymin)*ph }

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%g" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	for _, t := range yt {
		y := Yt(t.pos)
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/><text x="%g" y="%.1f" text-anchor="end">%s</text>`+"\n",
			left, y, left+pw, y, left-6, y+4, t.label)
	}
	for _, t := range xt {
		x := X(t.pos)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#ddd"/><text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n",
			x, top, x, top+ph, x, top+ph+16, t.label)
	}
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#444"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">%s</text>`+"\n", left+pw/2, h-10, html.EscapeString(xLabel))
	fmt.Fprintf(&b, `<text transform="translate(16 %g) rotate(-90)" text-anchor="middle">%s</text>`+"\n", top+ph/2, html.EscapeString(yLabel))
	for i, s := range series {
		color := palette[i%len(palette)]
		if len(s.Points) > 0 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="`, color)
			for _, p := range s.Points {
				fmt.Fprintf(&b, "%.1f,%.1f ", X(p[0]), Y(p[1]))
			}
			b.WriteString("\"/>\n")
		}
		ly := top + 10 + float64(i)*18
		fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="3"/><text x="%g" y="%g">%s</text>`+"\n",
			left+pw+12, ly, left+pw+30, ly, color, left+pw+36, ly+4, html.EscapeString(s.Name))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}
