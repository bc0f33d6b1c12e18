package bench

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// writeChart draws the results as an SVG: one panel per unit (round-trip
// latency, message rate, bandwidth, and any other unit the results have),
// one horizontal bar per figure on a log scale, labelled with its median
// (and p99 for latencies). With no figure to draw it writes no file and
// returns an error.
func writeChart(path string, rs []Result) error {
	var b bytes.Buffer
	if err := drawChart(&b, rs); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// chartTitles names the panels of the units the benchmarks use most.
var chartTitles = map[string]string{
	"us":    "round trip, 64-byte message (µs, median; lower is better)",
	"msg/s": "64-byte messages per second (higher is better)",
	"MB/s":  "1 MiB messages, MB/s (higher is better)",
}

func drawChart(w io.Writer, rs []Result) error {
	type panel struct{ unit, title string }
	panels := []panel{{"us", chartTitles["us"]}, {"msg/s", chartTitles["msg/s"]}, {"MB/s", chartTitles["MB/s"]}}
	drawn := 0
	for _, r := range rs {
		if !(r.Value > 0) || math.IsInf(r.Value, 0) {
			continue
		}
		drawn++
		if !slices.ContainsFunc(panels, func(p panel) bool { return p.unit == r.Unit }) {
			better := "higher is better"
			if r.Unit == "us" || r.Unit == "ns" || r.Unit == "ms" || r.Unit == "s" {
				better = "lower is better"
			}
			panels = append(panels, panel{r.Unit, fmt.Sprintf("%s (median; %s)", r.Unit, better)})
		}
	}
	if drawn == 0 {
		return errors.New("--chart: no figures to draw")
	}
	const (
		width  = 900
		labelW = 250
		barMax = 520
		rowH   = 18
		headH  = 34
	)
	var b strings.Builder
	y := 10
	for _, p := range panels {
		var rows []Result
		lo, hi := math.Inf(1), 0.0
		for _, r := range rs {
			if r.Unit == p.unit && r.Value > 0 && !math.IsInf(r.Value, 0) {
				rows = append(rows, r)
				lo, hi = min(lo, r.Value), max(hi, r.Value)
			}
		}
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(&b, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y+20, html.EscapeString(p.title))
		y += headH
		// log scale from a decade below the smallest to the largest value
		l0, l1 := math.Floor(math.Log10(lo))-0.3, math.Log10(hi)
		scale := func(v float64) float64 { return barMax * (math.Log10(v) - l0) / (l1 - l0 + 1e-9) }
		for _, r := range rows {
			color := "#8da0cb"
			switch {
			case strings.HasPrefix(r.Name, "shm"):
				color = "#fc8d62"
			case strings.HasPrefix(r.Name, "mp."):
				color = "#b3b3b3"
			case strings.HasPrefix(r.Name, "go AF_UNIX"), r.Name == "memcpy":
				color = "#66c2a5"
			}
			label := r.Name + " " + r.Pairing
			val := fmtValue(r.Value, r.Unit)
			if r.P99 != 0 {
				val += " (p99 " + fmtValue(r.P99, r.Unit) + ")"
			}
			if r.Ratio != 0 {
				val += fmt.Sprintf(" %.2fx", r.Ratio)
			}
			bw := max(scale(r.Value), 1)
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-6, y+13, html.EscapeString(label))
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", labelW, y+2, bw, rowH-4, color)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(labelW)+bw+4, y+13, html.EscapeString(val))
			y += rowH
		}
		y += 10
	}
	_, err := fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">
<rect width="100%%" height="100%%" fill="white"/>
%s</svg>
`, width, y+10, b.String())
	return err
}
