package pool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobridge/gobridge/internal/testenv"
)

func newPool(t *testing.T, n int) *Pool {
	t.Helper()
	dir, _ := filepath.Abs("testdata")
	p, err := New(n, WithPython(testenv.Python(t)), WithEnv(append(os.Environ(), "PYTHONPATH="+dir)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Terminate()
		p.Join(context.Background())
	})
	return p
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestMapInOrder(t *testing.T) {
	p := newPool(t, 3)
	items := make([]any, 1000)
	for i := range items {
		items[i] = i
	}
	got, err := p.Map(testCtx(t), "pooltasks:square", items)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1000 {
		t.Fatalf("%d results", len(got))
	}
	for i, v := range got {
		if v != int64(i*i) {
			t.Fatalf("result %d is %v", i, v)
		}
	}
	p.Close()
	if err := p.Join(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Apply(testCtx(t), "pooltasks:square", 2); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestApplyAsyncAndErrors(t *testing.T) {
	p := newPool(t, 2)
	ctx := testCtx(t)
	r := p.ApplyAsync("pooltasks:add", 2, 3)
	if v, err := r.Get(20 * time.Second); err != nil || v != int64(5) {
		t.Fatalf("%v %v", v, err)
	}
	_, err := p.Apply(ctx, "pooltasks:boom", 7)
	var pe *PythonError
	if !errors.As(err, &pe) || pe.Type != "ValueError" || pe.Message != "bad value 7" || !strings.Contains(pe.Traceback, "boom") {
		t.Fatalf("python exception: %v", err)
	}
	if pe.Index != 0 {
		t.Errorf("Apply's failing call has index %d", pe.Index)
	}
	if _, err := p.Apply(ctx, "nosuchmodule:f"); !errors.As(err, &pe) || pe.Type != "ModuleNotFoundError" || pe.Index != -1 {
		t.Fatalf("unknown module: %v", err)
	}
	items := make([]any, 200)
	for i := range items {
		items[i] = i
	}
	_, err = p.Map(ctx, "pooltasks:fail_at", append(items, "stop"))
	if !errors.As(err, &pe) || pe.Type != "KeyError" || pe.Index != 200 || !strings.Contains(err.Error(), "call 200") {
		t.Fatalf("map with a failing item: %v", err)
	}
	slow := p.ApplyAsync("pooltasks:slow_pid", 0.5)
	if _, err := slow.Get(10 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) || slow.Ready() {
		t.Fatalf("get with timeout: %v", err)
	}
	if _, err := slow.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// A worker killed mid-task fails that task clearly and is replaced.
func TestWorkerKilledMidTask(t *testing.T) {
	p := newPool(t, 2)
	ctx := testCtx(t)
	_, err := p.Apply(ctx, "pooltasks:die_on", 3, 3)
	if !errors.Is(err, ErrWorkerDied) || !strings.Contains(err.Error(), "exit code -9") {
		t.Fatalf("killed worker: %v", err)
	}
	items := make([]any, 100)
	for i := range items {
		items[i] = i
	}
	got, err := p.Map(ctx, "pooltasks:square", items)
	if err != nil || len(got) != 100 {
		t.Fatalf("after a crash: %d %v", len(got), err)
	}
}

// bareVenv makes a virtual environment of the test interpreter's Python
// without gobridge (or anything else) installed, and returns its python.
func bareVenv(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "venv")
	if out, err := exec.Command(testenv.Python(t), "-m", "venv", "--without-pip", dir).CombinedOutput(); err != nil {
		t.Fatalf("venv: %v\n%s", err, out)
	}
	py := filepath.Join(dir, "bin", "python")
	if exec.Command(py, "-c", "import gobridge").Run() == nil {
		t.Skip("gobridge is importable without being installed in the venv")
	}
	return py
}

// An interpreter that lacks gobridge: New fails at once, with the worker's
// own message, instead of a pool whose every task fails with
// "connection reset by peer".
func TestNewWithoutGobridge(t *testing.T) {
	py := bareVenv(t)
	var stderr bytes.Buffer
	start := time.Now()
	p, err := New(2, WithPython(py), WithStderr(&stderr))
	if err == nil {
		p.Terminate()
		p.Join(context.Background())
		t.Fatal("New succeeded with an interpreter that lacks gobridge")
	}
	if !errors.Is(err, ErrWorkerStart) || !strings.Contains(err.Error(), "No module named 'gobridge'") ||
		!strings.Contains(err.Error(), py) || !strings.Contains(err.Error(), "exit code 1") {
		t.Fatalf("New: %v", err)
	}
	if strings.Count(err.Error(), "pool:") != 1 {
		t.Errorf("one prefix per message: %v", err)
	}
	if !strings.Contains(stderr.String(), "No module named 'gobridge'") {
		t.Errorf("the worker's stderr did not reach WithStderr: %q", stderr.String())
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("New took %v to fail", d)
	}
}

// A program that never says hello: New gives up after the start timeout.
func TestNewWorkerSilent(t *testing.T) {
	script := filepath.Join(t.TempDir(), "silent")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho starting >&2\nexec sleep 60\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := New(1, WithPython(script), WithStartTimeout(300*time.Millisecond), WithStderr(io.Discard))
	if !errors.Is(err, ErrWorkerStart) || !strings.Contains(err.Error(), "no hello within 300ms: starting") {
		t.Fatalf("New: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("New took %v to give up", d)
	}
	if _, err := New(1, WithPython(filepath.Join(t.TempDir(), "nosuchpython"))); !errors.Is(err, ErrWorkerStart) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing interpreter: %v", err)
	}
}

// A replacement worker that cannot start fails the task with its message,
// not with ErrWorkerDied.
func TestReplacementCannotStart(t *testing.T) {
	dir, _ := filepath.Abs("testdata")
	tmp := t.TempDir()
	flag := filepath.Join(tmp, "broken")
	script := filepath.Join(tmp, "python")
	body := "#!/bin/sh\nif [ -e '" + flag + "' ]; then echo 'the interpreter is gone' >&2; exit 3; fi\nexec '" + testenv.Python(t) + "' \"$@\"\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	p, err := New(1, WithPython(script), WithEnv(append(os.Environ(), "PYTHONPATH="+dir)), WithStderr(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Terminate()
		p.Join(context.Background())
	})
	ctx := testCtx(t)
	if _, err := p.Apply(ctx, "pooltasks:die_on", 1, 1); !errors.Is(err, ErrWorkerDied) {
		t.Fatalf("killed worker: %v", err)
	}
	os.WriteFile(flag, nil, 0o600)
	if _, err := p.Apply(ctx, "pooltasks:square", 3); !errors.Is(err, ErrWorkerStart) ||
		!strings.Contains(err.Error(), "exit code 3: the interpreter is gone") {
		t.Fatalf("replacement: %v", err)
	}
	os.Remove(flag)
	if v, err := p.Apply(ctx, "pooltasks:square", 3); err != nil || v != int64(9) {
		t.Fatalf("after the interpreter came back: %v %v", v, err)
	}
}

// A worker that dies with the request unread (its parent's read then gets
// ECONNRESET, not end of stream) fails the task with ErrWorkerDied.
func TestWorkerDiesWithRequestUnread(t *testing.T) {
	script := filepath.Join(t.TempDir(), "python")
	body := "#!/bin/sh\nexec '" + testenv.Python(t) + "' -c '\n" +
		"import os, time, gobridge\n" +
		"c = gobridge.parent()\n" +
		"c.send({\"hello\": \"gobridge._worker\", \"pid\": os.getpid()})\n" +
		"time.sleep(0.5)\n" +
		"os._exit(0)\n'\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	p, err := New(1, WithPython(script))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Terminate()
		p.Join(context.Background())
	})
	if _, err := p.Apply(testCtx(t), "pooltasks:square", 3); !errors.Is(err, ErrWorkerDied) || !strings.Contains(err.Error(), "exit code 0") {
		t.Fatalf("worker gone with the request unread: %v", err)
	}
}
