package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/gobridge/gobridge/internal/bench"
)

// runBench is `gobridge bench`: the flags; internal/bench measures.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	names, _ := bench.Groups()
	fs := newFlags("bench", "[flags] [GROUP...]",
		"Measure gobridge transports next to Python's own multiprocessing, in one run.\n"+
			"Groups: "+strings.Join(names, ", ")+" (default: all but fifo, which transports\n"+
			"includes). Figures are medians over --rounds; ratios compare with the baseline\n"+
			"measured in the same run (a baseline two groups measure is shown once, and\n"+
			"ratios use the one shown); the target column says whether a ratio met its goal.\n"+
			"Without --python, the interpreter is the first that can import gobridge of:\n"+
			"$VIRTUAL_ENV/bin/python, the .venv next to this binary (its bin/ directory's\n"+
			"parent), the .venv of the current directory or a parent of it, python3.", stderr)
	var o bench.Options
	fs.StringVar(&o.Python, "python", "", "Python interpreter that has the gobridge package installed (default: found as above)")
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
	if o.Python, err = bench.FindPython(ctx, o.Python); err != nil {
		return err
	}
	o.Log = stderr
	rs, err := bench.Run(ctx, o, want)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := bench.WriteJSON(stdout, rs); err != nil {
			return err
		}
	} else {
		bench.WriteTable(stdout, rs)
	}
	if *chart != "" { // after the table, which a chart that fails must not cost
		return bench.WriteChart(*chart, rs)
	}
	return nil
}
