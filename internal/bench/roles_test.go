package bench

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gobridge/gobridge/internal/testenv"
)

// The roles are written to a private directory, 0700 with 0600 files, one
// per embedded module, which the caller can remove.
func TestWriteRoles(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	dir, err := writeRoles()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 || !strings.HasPrefix(dir, os.Getenv("TMPDIR")) {
		t.Fatalf("dir %s: %v %v", dir, st.Mode(), err)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		info, _ := e.Info()
		if info.Mode() != 0o600 {
			t.Errorf("%s: mode %v", e.Name(), info.Mode())
		}
		names = append(names, e.Name())
	}
	want := []string{"gobridge_bench.py", "gobridge_bench_pool.py", "gobridge_bench_queue.py", "gobridge_bench_shm.py", "gobridge_bench_shm_conn.py"}
	if !slices.Equal(names, want) {
		t.Fatalf("roles %v, want %v", names, want)
	}
}

// Every role module imports with the roles' environment, and none of them
// comes from the gobridge package (which no longer has them).
func TestRolesImport(t *testing.T) {
	py := testenv.Python(t)
	t.Setenv("TMPDIR", t.TempDir())
	dir, err := writeRoles()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	o := Options{Python: py, roles: dir}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mods := []string{"gobridge_bench", "gobridge_bench_pool", "gobridge_bench_queue", "gobridge_bench_shm", "gobridge_bench_shm_conn"}
	code := "import importlib, sys\n" +
		"for m in sys.argv[1:]:\n" +
		"    print(importlib.import_module(m).__file__)\n" +
		"import gobridge\n" +
		"for m in ('_bench', '_bench_pool', '_bench_queue', '_bench_shm', '_bench_shm_conn'):\n" +
		"    try:\n" +
		"        importlib.import_module('gobridge.' + m)\n" +
		"    except ImportError:\n" +
		"        continue\n" +
		"    sys.exit('gobridge.' + m + ' is still installed')\n"
	cmd := exec.CommandContext(ctx, py, append([]string{"-c", code}, mods...)...)
	cmd.Env = pyEnv(o)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, m := range mods {
		if !strings.Contains(string(out), filepath.Join(dir, m+".py")) {
			t.Errorf("%s not imported from %s:\n%s", m, dir, out)
		}
	}
}

// PYTHONPATH keeps what the user had, after the roles' directory.
func TestPyEnvKeepsPythonPath(t *testing.T) {
	t.Setenv("PYTHONPATH", "/a:/b")
	env := pyEnv(Options{roles: "/roles"})
	n := 0
	for _, kv := range env {
		if strings.HasPrefix(kv, "PYTHONPATH=") {
			n++
			if kv != "PYTHONPATH=/roles:/a:/b" {
				t.Errorf("%s", kv)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d PYTHONPATH entries: %v", n, env)
	}
}

// A run removes its roles' directory, and reports a group it does not know.
func TestRunLeavesNothing(t *testing.T) {
	py := testenv.Python(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var log strings.Builder
	rs, err := Run(ctx, Options{Python: py, Quick: true, N: 200, Log: &log}, []string{"pool"})
	if err != nil || len(rs) != 2 || rs[1].Name != "pool.Map" || rs[1].Ratio == 0 {
		t.Fatalf("%v %+v\n%s", err, rs, log.String())
	}
	if _, err := Run(ctx, Options{Python: py}, []string{"nosuch"}); !errors.Is(err, ErrUnknownGroup) {
		t.Fatalf("unknown group: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "gobridge-bench-*"))
	if len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// `gobridge bench transports` has tcp: loopback rows beside unix:, for every
// pairing.
func TestTransportsTCPRows(t *testing.T) {
	py := testenv.Python(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var log strings.Builder
	rs, err := Run(ctx, Options{Python: py, Quick: true, Rounds: 1, Log: &log}, []string{"transports"})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	want := map[string]bool{}
	for _, tr := range []string{"unix", "tcp"} {
		for _, p := range []string{"go-go", "go-py", "py-py"} {
			want[tr+" rtt "+p] = false
		}
		for _, p := range []string{"go->py", "py->go", "py->py"} {
			want[tr+" 1MiB "+p] = false
		}
	}
	for _, r := range rs {
		if _, ok := want[r.Name+" "+r.Pairing]; ok && r.Value > 0 {
			want[r.Name+" "+r.Pairing] = true
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("no %q row", k)
		}
	}
}
