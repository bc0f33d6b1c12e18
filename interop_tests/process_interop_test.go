package interop_tests

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

	"github.com/gobridge/gobridge/bridge"
	"github.com/gobridge/gobridge/internal/testenv"
)

// buildGoPeer builds interop_tests/internal/NAME into a test directory and
// returns the program's path.
func buildGoPeer(t *testing.T, name string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not found")
	}
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command(goBin, "build", "-o", out, "./interop_tests/internal/"+name)
	cmd.Dir = testenv.RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	return out
}

// buildProcPeer builds the Go peer of the process, FIFO and signal tests.
func buildProcPeer(t *testing.T) string { return buildGoPeer(t, "procpeer") }

func procPeerScript() string {
	return filepath.Join(testenv.RepoRoot(), "interop_tests", "peers", "proc_peer.py")
}

// runPython runs a Python script to completion (at most 60 s) and returns its
// standard output.
func runPython(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.Python(t), args...)
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return string(out)
}

// Seed 003's Pipe example the other way round: the Python parent of the seed
// makes the Pipe and starts two Go children with gobridge.Process; fun1
// sends after the seed's two seconds, fun2 blocks in Recv and prints.
func TestSeed003PipePythonParentGoChildren(t *testing.T) {
	peer := buildProcPeer(t)
	for _, mode := range []string{"duplex", "one-way"} {
		t.Run(mode, func(t *testing.T) {
			start := time.Now()
			out := runPython(t, seedScript("seed003_pipe_go_children.py"), peer, mode)
			if out != "msg\n" {
				t.Fatalf("fun2 printed %q", out)
			}
			if d := time.Since(start); d < 2*time.Second {
				t.Fatalf("done in %v: fun1 did not wait", d)
			}
		})
	}
}

// Pipe(duplex=False) misuse across the language line: a child handed the
// receive end that sends gets a clear error, in Python and in Go.
func TestOneWayMisuseAcross(t *testing.T) {
	r, w, err := bridge.Pipe(false)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cmd := testenv.PythonCmd(t, procPeerScript(), "misuse")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := bridge.StartWithConn(cmd, r); err != nil {
		t.Fatal(err)
	}
	if err := waitTimeout(cmd, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "OSError: connection is read-only\n" {
		t.Fatalf("python child: %q", got)
	}
	got := runPython(t, procPeerScript(), "go-misuse", buildProcPeer(t))
	if got != bridge.ErrNotWritable.Error()+"\n" {
		t.Fatalf("go child: %q", got)
	}
}

// A Python child that exits mid-exchange: Recv ends cleanly, Join reports
// the status; a killed one reports minus the signal.
func TestPythonChildExitCodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := testenv.PythonCmd(t, "-c", "import gobridge, sys; c = gobridge.parent(); c.send('bye'); sys.exit(3)")
	p, err := bridge.StartProcess(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var s string
	if err := p.Conn().RecvContext(ctx, &s); err != nil || s != "bye" {
		t.Fatalf("%q %v", s, err)
	}
	if err := p.Conn().RecvContext(ctx, &s); err == nil {
		t.Fatal("recv after the child exited succeeded")
	}
	if err := p.Join(ctx); err == nil || !strings.Contains(err.Error(), "status 3") {
		t.Fatalf("join: %v", err)
	}
	cmd = testenv.PythonCmd(t, "-c", "import gobridge, time; c = gobridge.parent(); c.send('up'); time.sleep(60)")
	p, err = bridge.StartProcess(cmd, bridge.WithDaemon())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Conn().RecvContext(ctx, &s); err != nil {
		t.Fatal(err)
	}
	p.Terminate()
	p.Join(ctx)
	if code, exited := p.ExitCode(); !exited || code != -15 {
		t.Fatalf("terminated python: %d %v", code, exited)
	}
}

// Go children that die during the exchange with a Python parent: inside a
// frame (status 3), the parent's recv raises a truncated-frame OSError; a
// SIGKILLed one gives EOFError. Neither hangs, and exitcode says what
// happened.
func TestGoChildDiesDuringExchange(t *testing.T) {
	out := runPython(t, procPeerScript(), "go-crash", buildProcPeer(t))
	var rep map[string][]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	crash, killed := rep["crash"], rep["killed"]
	if len(crash) != 3 || crash[0] != "hello" || crash[1] != "OSError: got end of file during message" || crash[2] != 3.0 {
		t.Errorf("mid-frame crash: %v", crash)
	}
	if fmt.Sprint(killed) != "[hello EOFError -9]" {
		t.Errorf("killed child: %v", killed)
	}
}

// Seed 003's Pipe example with an unmodified stdlib parent (every CPython
// 3.10-3.13): multiprocessing.Pipe() made in Python, one end handed to a Go
// child that speaks pickle; pickles both ways.
func TestSeed003PipeStdlibParentGoChild(t *testing.T) {
	peer := buildProcPeer(t)
	for _, py := range stdlibPythons(t) {
		t.Run(filepath.Base(py), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, py, "-I", seedScript("seed003_pipe_stdlib_parent.py"), peer)
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			// The child prints what it received (Go's view), the parent the reply.
			want := "[('from', 'go'), ('got', {'msg': ('a', 1), 'tags': {'x'}, 'blob': b'\\x00\\xff', 'big': 1180591620717411303424})]"
			if len(lines) != 2 || !strings.Contains(lines[0], "1180591620717411303424") || !gotSameDict(lines[1], want) {
				t.Fatalf("output:\n%s", out)
			}
		})
	}
}

// gotSameDict compares two printed replies whose inner dict may list its keys
// in any order (Go maps have none): same length, same key: value items.
func gotSameDict(got, want string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, item := range []string{"'msg': ('a', 1)", "'tags': {'x'}", `'blob': b'\x00\xff'`, "'big': 1180591620717411303424", "('from', 'go')"} {
		if !strings.Contains(got, item) {
			return false
		}
	}
	return true
}
