package pool

import (
	"context"
	"errors"
	"os"
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
