package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gobridge/gobridge/internal/futex"
	"golang.org/x/sys/unix"
)

// The floor under the queue's put->get latency: one process sleeps on a
// futex word in a shared file, another stores its CLOCK_MONOTONIC, bumps the
// word and wakes it, paced as the latency benchmark is, so the sleeper is
// woken from idle every time. Nothing else happens on either side: no lock,
// no message, no decoding. The layout and the Python roles (wake-wait,
// wake-wake) are in internal/bench/python/gobridge_bench_queue.py.

// wakeFile is a 4 KiB file in /dev/shm, created 0600, mapped.
type wakeFile struct {
	path string
	mem  []byte
}

func newWakeFile() (*wakeFile, error) {
	f, err := os.CreateTemp("/dev/shm", "gobridge-benchw-*")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := f.Truncate(4096); err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	return &wakeFile{path: f.Name(), mem: mem}, nil
}

func (w *wakeFile) seq() *uint32   { return (*uint32)(unsafe.Pointer(&w.mem[0])) }
func (w *wakeFile) ready() *uint32 { return (*uint32)(unsafe.Pointer(&w.mem[4])) }
func (w *wakeFile) ts() *int64     { return (*int64)(unsafe.Pointer(&w.mem[8])) }

func (w *wakeFile) close() {
	unix.Munmap(w.mem)
	os.Remove(w.path)
}

// wake is the waker: n times, sleep pace, store the clock, bump, wake. It
// gives up when ctx ends before the sleeper is ready.
func (w *wakeFile) wake(ctx context.Context, n int, pace time.Duration) error {
	for atomic.LoadUint32(w.ready()) == 0 {
		if ctx.Err() != nil {
			return fmt.Errorf("the sleeper never got ready: %w", ctx.Err())
		}
		time.Sleep(time.Millisecond)
	}
	for i := 1; i <= n; i++ {
		sleepPrecise(pace)
		atomic.StoreInt64(w.ts(), monoNS())
		atomic.StoreUint32(w.seq(), uint32(i))
		if _, err := futex.Wake(w.seq(), 1); err != nil {
			return err
		}
	}
	return nil
}

// wait is the sleeper, on a thread of its own: it returns the samples
// (microseconds, the first tenth dropped). It gives up when ctx ends (the
// waker is gone) with no wake-up pending.
func (w *wakeFile) wait(ctx context.Context, n int) ([]float64, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var out []float64
	var seen uint32
	atomic.StoreUint32(w.ready(), 1)
	for seen < uint32(n) {
		for atomic.LoadUint32(w.seq()) == seen {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("no wake-up: %w", ctx.Err())
			}
			if err := futex.Wait(w.seq(), seen, 100*time.Millisecond); err != nil && err != os.ErrDeadlineExceeded {
				return nil, err
			}
		}
		now, v := monoNS(), atomic.LoadUint32(w.seq())
		if v == seen+1 { // one wake-up per store: a missed one is no sample
			out = append(out, float64(now-atomic.LoadInt64(w.ts()))/1e3)
		}
		seen = v
	}
	return out[min(n/10, len(out)):], nil
}

// wakeFloor measures one pairing ("go->py": a Go waker and a Python
// sleeper, and so on) with n wake-ups pace apart.
func wakeFloor(ctx context.Context, o Options, pairing string, n int, pace time.Duration) ([]float64, error) {
	w, err := newWakeFile()
	if err != nil {
		return nil, err
	}
	defer w.close()
	py := func(args ...string) *exec.Cmd {
		cmd := pyCommand(ctx, o, "gobridge_bench_queue", args...)
		cmd.Stderr = os.Stderr
		return cmd
	}
	ns, us := fmt.Sprint(n), fmt.Sprint(pace.Microseconds())
	// peerCtx ends when the other side is done or failed, so that neither
	// side waits for it forever.
	peerCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	switch pairing {
	case "go->go":
		errc := make(chan error, 1)
		go func() { defer cancel(); errc <- w.wake(peerCtx, n, pace) }()
		out, err := w.wait(peerCtx, n)
		cancel()
		if werr := <-errc; err == nil {
			err = werr
		}
		return out, err
	case "py->go":
		waker := py("wake-wake", w.path, ns, us)
		if err := waker.Start(); err != nil {
			return nil, err
		}
		werrc := make(chan error, 1)
		go func() { defer cancel(); werrc <- waker.Wait() }()
		out, err := w.wait(peerCtx, n)
		if werr := <-werrc; werr != nil {
			err = fmt.Errorf("python waker: %w", werr)
		}
		return out, err
	case "go->py", "py->py":
		var s pySamples
		errc := make(chan error, 1)
		go func() {
			defer cancel()
			errc <- pyModule(ctx, o, "gobridge_bench_queue", &s, "wake-wait", w.path, ns)
		}()
		var err error
		if pairing == "go->py" {
			err = w.wake(peerCtx, n, pace)
		} else {
			err = py("wake-wake", w.path, ns, us).Run()
		}
		if werr := <-errc; werr != nil {
			err = werr // the sleeper's failure is the cause
		}
		return s.SamplesUS, err
	}
	return nil, fmt.Errorf("wake floor: unknown pairing %q", pairing)
}
