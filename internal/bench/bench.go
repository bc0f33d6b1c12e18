package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gobridge/gobridge/bridge"
)

// Options are what every benchmark gets.
type Options struct {
	Python string    // interpreter with gobridge installed (see FindPython)
	Rounds int       // repetitions of each measurement; medians are reported
	N      int       // messages per throughput round / round trips per latency round (0: a default per benchmark)
	Quick  bool      // small counts, one round, for tests
	Log    io.Writer // progress lines (nil: none)

	roles string // the directory Run wrote the Python roles to
}

// Result is one figure. Baseline names the figure it is compared with,
// measured in the same run, as that row's "NAME PAIRING"; Ratio is Value
// divided by the baseline's value (for latency lower is better, for
// throughput higher).
type Result struct {
	Name     string  `json:"name"`
	Pairing  string  `json:"pairing"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	P99      float64 `json:"p99,omitempty"`
	Baseline string  `json:"baseline,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	Target   string  `json:"target,omitempty"`
	// TargetMet says whether Ratio meets Target (absent without either).
	TargetMet *bool `json:"target_met,omitempty"`
}

// benchmarks lists the groups `gobridge bench` can run, in order. A group
// marked partOf is a part of another one and is left out of the default run,
// which would otherwise measure it twice.
var benchmarks = []struct {
	name   string
	run    func(ctx context.Context, o Options) ([]Result, error)
	partOf string
}{
	{"unix", benchUnix, ""},
	{"shm", benchShm, ""},
	{"queue", benchQueue, ""},
	{"transports", benchTransports, ""}, // conn.go: every transport, every pairing, with baselines
	{"fifo", benchFIFO, "transports"},   // conn.go: the transports table for fifo: alone
	{"pool", benchPool, ""},             // pool.go: pool.Map vs multiprocessing.Pool.map
}

// Groups returns the names of the groups Run knows, in order, and the ones
// a run without names measures (all but those that are part of another).
func Groups() (all, defaults []string) {
	for _, b := range benchmarks {
		all = append(all, b.name)
		if b.partOf == "" {
			defaults = append(defaults, b.name)
		}
	}
	return all, defaults
}

// ErrUnknownGroup is returned by Run for a group name Groups does not list.
var ErrUnknownGroup = errors.New("bench: unknown group")

// Run measures groups (Groups' defaults when empty) in order, with
// o.Python running the Python roles, and returns every figure, each
// baseline once (see shareBaselines) and each target judged. The roles are
// written to a private directory (0700) for the run and removed after it.
func Run(ctx context.Context, o Options, groups []string) ([]Result, error) {
	all, defaults := Groups()
	if len(groups) == 0 {
		groups = defaults
	}
	for _, g := range groups {
		if !slices.Contains(all, g) {
			return nil, fmt.Errorf("%w %q (have %s)", ErrUnknownGroup, g, strings.Join(all, ", "))
		}
	}
	if o.Rounds < 1 || o.Quick {
		o.Rounds = 1
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	dir, err := writeRoles()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	o.roles = dir
	fmt.Fprintf(o.Log, "bench: python %s\n", o.Python)
	var rs []Result
	for _, g := range groups {
		for _, b := range benchmarks {
			if b.name == g {
				fmt.Fprintf(o.Log, "bench %s ...\n", g)
				res, err := b.run(ctx, o)
				if err != nil {
					return nil, fmt.Errorf("%s group: %w", g, err)
				}
				rs = append(rs, res...)
			}
		}
	}
	rs = shareBaselines(rs)
	for i := range rs {
		rs[i].TargetMet = targetMet(rs[i])
	}
	return rs, nil
}

// WriteJSON writes rs as an indented JSON array.
func WriteJSON(w io.Writer, rs []Result) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // "go->py", not "go-\u003epy"
	enc.SetIndent("", "  ")
	return enc.Encode(rs)
}

// WriteTable writes rs as an aligned table, one row per figure.
func WriteTable(w io.Writer, rs []Result) { printBench(w, rs) }

// WriteChart draws rs as an SVG bar chart in the file path, one
// panel per unit; it is an error, and no file is written, when rs is empty.
func WriteChart(path string, rs []Result) error { return writeChart(path, rs) }

// shareBaselines shows each baseline once. A row is a baseline when
// another row names it as its Baseline ("NAME PAIRING"); when two groups
// measured the same baseline, the later row is dropped (its own comparison,
// if the kept row has none, moves to the kept row), and every ratio is
// computed against the baseline row kept, so that each ratio in the table is
// its value divided by a value shown.
func shareBaselines(rs []Result) []Result {
	isBase := map[string]bool{}
	for _, r := range rs {
		if r.Baseline != "" {
			isBase[r.Baseline] = true
		}
	}
	at := map[string]int{} // a baseline's row in out
	var out []Result
	for _, r := range rs {
		k := r.Name + " " + r.Pairing
		if isBase[k] {
			if i, dup := at[k]; dup {
				if out[i].Baseline == "" {
					out[i].Baseline, out[i].Target = r.Baseline, r.Target
				}
				continue
			}
			at[k] = len(out)
		}
		out = append(out, r)
	}
	for i, r := range out {
		if j, ok := at[r.Baseline]; ok && out[j].Value > 0 && j != i {
			out[i].Ratio = r.Value / out[j].Value
		}
	}
	return out
}

// targetMet says whether r's ratio meets its target (">= 2x", "<= 0.10x",
// followed by anything): nil when r has no target or no ratio.
func targetMet(r Result) *bool {
	t := strings.TrimSpace(r.Target)
	op := ""
	if strings.HasPrefix(t, "<=") || strings.HasPrefix(t, ">=") {
		op, t = t[:2], strings.TrimSpace(t[2:])
	}
	num, _, ok := strings.Cut(t, "x")
	goal, err := strconv.ParseFloat(num, 64)
	if op == "" || !ok || err != nil || r.Ratio == 0 || math.IsNaN(r.Ratio) {
		return nil
	}
	met := r.Ratio >= goal
	if op == "<=" {
		met = r.Ratio <= goal
	}
	return &met
}

func printBench(w io.Writer, rs []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tpairing\tmedian\tp99\tunit\tvs\tratio\ttarget")
	for _, r := range rs {
		p99, ratio, target := "", "", r.Target
		if r.P99 != 0 {
			p99 = fmtValue(r.P99, r.Unit)
		}
		if r.Ratio != 0 {
			ratio = fmt.Sprintf("%.2fx", r.Ratio)
		}
		if met := targetMet(r); met != nil {
			if *met {
				target += ": met"
			} else {
				target += ": missed"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Pairing, fmtValue(r.Value, r.Unit), p99, r.Unit, r.Baseline, ratio, target)
	}
	tw.Flush()
}

// fmtValue prints v in the one format of its unit: counts per second with
// a k or M suffix and three significant digits (87.0k, 12.5M), everything
// else (us, MB/s, GB/s) in plain decimals with three significant digits and
// never an exponent (8.92, 15.3, 394, 3100).
func fmtValue(v float64, unit string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprint(v)
	}
	if strings.HasSuffix(unit, "/s") && !strings.HasSuffix(unit, "B/s") {
		switch {
		case v >= 999.5e3: // what rounds to 1000k is 1.00M
			return sig3(v/1e6) + "M"
		case v >= 999.5:
			return sig3(v/1e3) + "k"
		}
	}
	return sig3(v)
}

// sig3 prints v with three significant digits, or all its integer digits.
func sig3(v float64) string {
	if math.Abs(v) < 100 { // round first: 0.9997 is 1.00, not 1.000
		v, _ = strconv.ParseFloat(strconv.FormatFloat(v, 'g', 3, 64), 64)
	}
	d := 0
	if a := math.Abs(v); a > 0 {
		d = max(0, 2-int(math.Floor(math.Log10(a))))
	}
	return strconv.FormatFloat(v, 'f', d, 64)
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
const benchModule = "gobridge_bench"

// pyBench runs a role of gobridge_bench and decodes its JSON result.
func pyBench(ctx context.Context, o Options, out any, args ...string) error {
	return pyModule(ctx, o, benchModule, out, args...)
}

// pyModule runs `python -m MODULE ARGS...` and decodes the JSON object on the
// last line of its standard output.
func pyModule(ctx context.Context, o Options, module string, out any, args ...string) error {
	cmd := pyCommand(ctx, o, module, args...)
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
func acceptModulePeer(ctx context.Context, o Options, l *bridge.Listener, module string, args ...string) (*bridge.Conn, func() error, error) {
	cmd := pyCommand(ctx, o, module, args...)
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

// acceptPeer is acceptModulePeer for a role of gobridge_bench.
func acceptPeer(ctx context.Context, o Options, l *bridge.Listener, args ...string) (*bridge.Conn, func() error, error) {
	return acceptModulePeer(ctx, o, l, benchModule, args...)
}

func since(t time.Time) float64 { return time.Since(t).Seconds() }
