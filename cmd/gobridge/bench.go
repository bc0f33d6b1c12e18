package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gobridge/gobridge/bridge"
)

// benchOptions are the flags every benchmark gets.
type benchOptions struct {
	Python string    // interpreter with gobridge installed
	Rounds int       // repetitions of each measurement; medians are reported
	N      int       // messages per throughput round / round trips per latency round
	Quick  bool      // small counts, for tests
	Log    io.Writer // progress lines
}

// benchResult is one figure. Baseline names the figure it is compared with,
// measured in the same run; Ratio is Value divided by the baseline's value
// (for latency lower is better, for throughput higher).
type benchResult struct {
	Name     string  `json:"name"`
	Pairing  string  `json:"pairing"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	P99      float64 `json:"p99,omitempty"`
	Baseline string  `json:"baseline,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	Target   string  `json:"target,omitempty"`
}

// benchmarks lists the groups `gobridge bench` can run, in order.
var benchmarks = []struct {
	name string
	run  func(ctx context.Context, o benchOptions) ([]benchResult, error)
}{
	{"unix", benchUnix},
	{"shm", benchShm},
	{"queue", benchQueue},
	{"transports", benchTransports}, // bench_conn.go: every transport, every pairing, with baselines
	{"fifo", benchFIFO},             // bench_conn.go: the transports table for fifo: alone
	{"pool", benchPool},             // bench_pool.go: pool.Map vs multiprocessing.Pool.map
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	names := make([]string, len(benchmarks))
	for i, b := range benchmarks {
		names[i] = b.name
	}
	fs := newFlags("bench", "[flags] [GROUP...]",
		"Measure gobridge transports next to Python's own multiprocessing, in one run.\n"+
			"Groups: "+strings.Join(names, ", ")+" (default: all). Figures are medians over\n"+
			"--rounds; ratios compare with the baseline measured in the same run.", stderr)
	var o benchOptions
	fs.StringVar(&o.Python, "python", "python3", "Python interpreter that has the gobridge package installed")
	fs.IntVar(&o.Rounds, "rounds", 5, "repetitions of each measurement (at least 1)")
	fs.IntVar(&o.N, "n", 0, "messages per round (0: a default per benchmark)")
	fs.BoolVar(&o.Quick, "quick", false, "small counts (a smoke test, figures are not meaningful)")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	chart := fs.String("chart", "", "also draw the results as an SVG chart in `FILE.svg`")
	want, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	switch {
	case o.Rounds < 1:
		return fmt.Errorf("%w: --rounds %d: at least one round is needed", errUsage, o.Rounds)
	case o.N < 0:
		return fmt.Errorf("%w: --n %d is negative", errUsage, o.N)
	}
	for _, w := range want {
		if !slices.Contains(names, w) {
			return fmt.Errorf("%w: unknown group %q (have %s)", errUsage, w, strings.Join(names, ", "))
		}
	}
	o.Log = stderr
	if o.Quick {
		o.Rounds = 1
	}
	if len(want) == 0 {
		want = names
	}
	var all []benchResult
	for _, w := range want {
		for _, b := range benchmarks {
			if b.name == w {
				fmt.Fprintf(stderr, "bench %s ...\n", w)
				res, err := b.run(ctx, o)
				if err != nil {
					return fmt.Errorf("%s group: %w", w, err)
				}
				all = append(all, res...)
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(all); err != nil {
			return err
		}
	} else {
		printBench(stdout, all)
	}
	if *chart != "" { // after the table, which a chart that fails must not cost
		return writeChart(*chart, all)
	}
	return nil
}

func printBench(w io.Writer, rs []benchResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tpairing\tmedian\tp99\tunit\tvs\tratio\ttarget")
	for _, r := range rs {
		p99, ratio := "", ""
		if r.P99 != 0 {
			p99 = fmtNum(r.P99)
		}
		if r.Ratio != 0 {
			ratio = fmt.Sprintf("%.2fx", r.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Pairing, fmtNum(r.Value), p99, r.Unit, r.Baseline, ratio, r.Target)
	}
	tw.Flush()
}

func fmtNum(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// benchModule is the Python module with the roles of the unix benchmarks.
const benchModule = "gobridge._bench"

// pyBench runs a role of gobridge._bench and decodes its JSON result.
func pyBench(ctx context.Context, o benchOptions, out any, args ...string) error {
	return pyModule(ctx, o, benchModule, out, args...)
}

// pyModule runs `python -m MODULE ARGS...` and decodes the JSON object on the
// last line of its standard output.
func pyModule(ctx context.Context, o benchOptions, module string, out any, args ...string) error {
	cmd := exec.CommandContext(ctx, o.Python, append([]string{"-m", module}, args...)...)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("python -m %s %s: %w", module, strings.Join(args, " "), err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return json.Unmarshal([]byte(lines[len(lines)-1]), out)
}

// acceptModulePeer starts `python -m MODULE ARGS...`, a role that connects
// to l, and accepts it. The returned func closes the Conn and waits for the peer.
func acceptModulePeer(ctx context.Context, o benchOptions, l *bridge.Listener, module string, args ...string) (*bridge.Conn, func() error, error) {
	cmd := exec.CommandContext(ctx, o.Python, append([]string{"-m", module}, args...)...)
	cmd.Stderr, cmd.Stdout = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := l.Accept(actx)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, nil, fmt.Errorf("python peer did not connect: %w", err)
	}
	return c, func() error { c.Close(); return cmd.Wait() }, nil
}

// acceptPeer is acceptModulePeer for a role of gobridge._bench.
func acceptPeer(ctx context.Context, o benchOptions, l *bridge.Listener, args ...string) (*bridge.Conn, func() error, error) {
	return acceptModulePeer(ctx, o, l, benchModule, args...)
}

func since(t time.Time) float64 { return time.Since(t).Seconds() }
