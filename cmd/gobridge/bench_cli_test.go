package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad values are usage errors, refused before anything is measured.
func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--rounds", "0", "pool"}, {"bench", "--rounds=-1", "pool"}, {"bench", "--n", "-5", "pool"},
	} {
		out, errOut, code := runCLI(t, "", args...)
		if code != 2 || out != "" || len(strings.Split(strings.TrimSpace(errOut), "\n")) != 2 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

// The chart of a group whose unit has no predefined panel (pool: tasks/s)
// has its bars; nothing to draw is an error and writes no file.
func TestChartEveryUnit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.svg")
	rs := []benchResult{
		{Name: "mp.Pool.map", Pairing: "py 2 workers", Value: 1.7e6, Unit: "tasks/s"},
		{Name: "pool.Map", Pairing: "go->py 2 workers", Value: 1.5e6, Unit: "tasks/s", Baseline: "mp.Pool.map py 2 workers", Ratio: 0.88},
	}
	if err := writeChart(path, rs); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if strings.Count(string(b), "<rect") != 3 || !strings.Contains(string(b), "pool.Map go-&gt;py 2 workers") {
		t.Fatalf("chart:\n%s", b)
	}
	empty := filepath.Join(dir, "empty.svg")
	if err := writeChart(empty, nil); err == nil {
		t.Fatal("an empty chart was written")
	}
	if _, err := os.Stat(empty); err == nil {
		t.Fatal("a file was left for an empty chart")
	}
}
