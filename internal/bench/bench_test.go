package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobridge/gobridge/internal/testenv"
)

func TestFmtValue(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{8.921, "us", "8.92"}, {15.33, "us", "15.3"}, {2090.4, "us", "2090"}, {74397, "us", "74397"}, {0.0123, "us", "0.0123"},
		{87043, "msg/s", "87.0k"}, {513488, "msg/s", "513k"}, {12.5e6, "msg/s", "12.5M"}, {999.7e3, "msg/s", "1.00M"}, {950, "msg/s", "950"},
		{1.71e6, "tasks/s", "1.71M"}, {3100, "MB/s", "3100"}, {394.2, "MB/s", "394"}, {8.88, "GB/s", "8.88"}, {0, "us", "0"},
	} {
		if got := fmtValue(tc.v, tc.unit); got != tc.want {
			t.Errorf("fmtValue(%v, %q) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
}

func TestTargetMetAndSharedBaselines(t *testing.T) {
	rs := []Result{
		{Name: "mp.Pipe rtt", Pairing: "py-py", Value: 10, Unit: "us"},
		{Name: "unix rtt", Pairing: "go-py", Value: 5, Unit: "us", Baseline: "mp.Pipe rtt py-py", Ratio: 0.5, Target: "<= 0.90x"},
		{Name: "mp.Pipe rtt", Pairing: "py-py", Value: 20, Unit: "us"}, // the second group's own baseline
		{Name: "shm rtt", Pairing: "go-py", Value: 2, Unit: "us", Baseline: "mp.Pipe rtt py-py", Ratio: 0.1, Target: "<= 0.05x (like for like)"},
		{Name: "queue 64B", Pairing: "go->py", Value: 3e5, Unit: "msg/s", Baseline: "nobody", Ratio: 2.5, Target: ">= 2x"},
	}
	got := shareBaselines(rs)
	if len(got) != 4 {
		t.Fatalf("%d rows: %+v", len(got), got)
	}
	if got[2].Name != "shm rtt" || got[2].Ratio != 0.2 {
		t.Fatalf("the ratio is not against the baseline shown: %+v", got[2])
	}
	for i, want := range []*bool{nil, ptr(true), ptr(false), ptr(true)} {
		m := targetMet(got[i])
		if fmt.Sprint(m == nil) != fmt.Sprint(want == nil) || m != nil && *m != *want {
			t.Errorf("row %d %+v: met %v", i, got[i], m)
		}
	}
	var table strings.Builder
	printBench(&table, got)
	if !strings.Contains(table.String(), "<= 0.90x: met") || !strings.Contains(table.String(), "<= 0.05x (like for like): missed") {
		t.Errorf("table:\n%s", table.String())
	}
	b, _ := json.Marshal(got[1])
	if !strings.Contains(string(b), `"target_met":true`) && targetMet(got[1]) == nil {
		t.Errorf("json: %s", b)
	}
}

func ptr[T any](v T) *T { return &v }

// The chart of a group whose unit has no predefined panel (pool: tasks/s)
// has its bars; nothing to draw is an error and writes no file.
func TestChartEveryUnit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.svg")
	rs := []Result{
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

// Without --python, bench finds an interpreter with gobridge, or says what
// to pass.
func TestBenchFindsPython(t *testing.T) {
	py := testenv.Python(t)
	venv, err := filepath.Abs(filepath.Join(filepath.Dir(py), ".."))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "gobridge") // no .venv next to it
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/gobridge").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	// A PATH whose python3 lacks gobridge, a directory with no .venv.
	bare := filepath.Join(t.TempDir(), "venv")
	if out, err := exec.Command(py, "-m", "venv", "--without-pip", bare).CombinedOutput(); err != nil {
		t.Fatalf("venv: %v\n%s", err, out)
	}
	env := func(extra ...string) []string {
		var e []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "VIRTUAL_ENV=") && !strings.HasPrefix(kv, "PATH=") {
				e = append(e, kv)
			}
		}
		return append(e, append([]string{"PATH=" + filepath.Join(bare, "bin") + ":/usr/bin:/bin"}, extra...)...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "bench", "--quick", "--n", "200", "pool")
	cmd.Dir, cmd.Env = t.TempDir(), env()
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), "pass --python PATH") ||
		!strings.Contains(string(out), "No module named 'gobridge'") {
		t.Fatalf("no interpreter with gobridge: exit %d %v\n%s", code, err, out)
	}
	cmd = exec.CommandContext(ctx, bin, "bench", "--quick", "--n", "200", "--json", "pool")
	cmd.Dir, cmd.Env = t.TempDir(), env("VIRTUAL_ENV="+venv)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || !strings.Contains(stderr.String(), "bench: python "+filepath.Join(venv, "bin", "python")) ||
		!strings.Contains(stdout.String(), `"pairing": "go->py `) || strings.Contains(stdout.String(), `\u003e`) {
		t.Fatalf("with VIRTUAL_ENV: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	// The .venv of a parent of the current directory.
	proj := t.TempDir()
	if err := os.Symlink(venv, filepath.Join(proj, ".venv")); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(proj, "a", "b")
	os.MkdirAll(sub, 0o755)
	cmd = exec.CommandContext(ctx, bin, "bench", "--quick", "--n", "200", "pool")
	cmd.Dir, cmd.Env = sub, env()
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "bench: python "+filepath.Join(proj, ".venv", "bin", "python")) ||
		!strings.Contains(string(out), "pool.Map") {
		t.Fatalf("from a directory under a .venv's: %v\n%s", err, out)
	}
}
