// Package testenv finds the peers that gobridge's cross-language tests start:
// the Python interpreter that has the gobridge package installed and the
// gobridge command. `make test` exports both; a plain `go test` finds them in
// the repository's .venv and bin/ when `make venv build` has run.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
)

// RepoRoot returns the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Python returns the interpreter with gobridge installed. Under CI (CI set)
// a missing interpreter fails the test; elsewhere it skips with a hint.
func Python(t testing.TB) string {
	t.Helper()
	return find(t, "GOBRIDGE_PYTHON", filepath.Join(RepoRoot(), ".venv", "bin", "python"), "make venv")
}

// Gobridge returns the path of the built gobridge command.
func Gobridge(t testing.TB) string {
	t.Helper()
	return find(t, "GOBRIDGE_BIN", filepath.Join(RepoRoot(), "bin", "gobridge"), "make build")
}

func find(t testing.TB, env, fallback, hint string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		p = fallback
	}
	if _, err := exec.LookPath(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (%v); CI must run `make test`", p, err)
		}
		t.Skipf("%s not found; run `%s` or set %s", p, hint, env)
	}
	return p
}

// PythonCmd returns an exec.Cmd running python with args, with stderr passed
// to the test log on failure by the caller.
func PythonCmd(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(Python(t), args...)
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	return cmd
}

// ShortDir returns a fresh directory with a short path, for unix socket
// paths (sun_path holds 107 bytes; t.TempDir paths can exceed it).
func ShortDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "gbt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

var tagSeq atomic.Int64

// Prefix starts every /dev/shm name the tests make. `make test` sets
// GOBRIDGE_TEST_PREFIX to one of its own per run, so that the leftover check
// judges only what this run made while another clone runs its suite.
func Prefix() string {
	if p := os.Getenv("GOBRIDGE_TEST_PREFIX"); p != "" {
		return p
	}
	return "gbtest"
}

// Name returns a fresh shared-memory name: the run's prefix, label, the pid
// and a sequence number. The caller removes what it makes; Tag also cleans up.
func Name(label string) string {
	return fmt.Sprintf("%s-%s-%d-%d", Prefix(), label, os.Getpid(), tagSeq.Add(1))
}

// Tag returns a shared-memory tag no other test uses; whatever a test leaves
// under it in /dev/shm is removed after the test (a test that checks for
// leftovers looks before that).
func Tag(t testing.TB) string {
	t.Helper()
	tag := Name("t")
	t.Cleanup(func() { os.Remove("/dev/shm/" + tag) })
	return tag
}
