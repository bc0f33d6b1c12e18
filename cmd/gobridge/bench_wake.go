package main

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
// wake-wake) are in python/gobridge/_bench_queue.py.

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

// wake is the waker: n times, sleep pace, store the clock, bump, wake.
func (w *wakeFile) wake(ctx context.Context, n int, pace time.Duration) error {
	for atomic.LoadUint32(w.ready()) == 0 {
		if ctx.Err() != nil {
			return ctx.Err()
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
// (microseconds, the first tenth dropped).
func (w *wakeFile) wait(n int) ([]float64, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var out []float64
	var seen uint32
	atomic.StoreUint32(w.ready(), 1)
	for seen < uint32(n) {
		for atomic.LoadUint32(w.seq()) == seen {
			if err := futex.Wait(w.seq(), seen, time.Second); err != nil && err != os.ErrDeadlineExceeded {
				return nil, err
			}
		}
		now, v := monoNS(), atomic.LoadUint32(w.seq())
		if v == seen+1 { // one wake-up per store: a missed one is no sample
			out = append(out, float64(now-atomic.LoadInt64(w.ts()))/1e3)
		}
		seen = v
	}
	return out[n/10:], nil
}

// wakeFloor measures one pairing ("go->py": a Go waker and a Python
// sleeper, and so on) with n wake-ups pace apart.
func wakeFloor(ctx context.Context, o benchOptions, pairing string, n int, pace time.Duration) ([]float64, error) {
	w, err := newWakeFile()
	if err != nil {
		return nil, err
	}
	defer w.close()
	py := func(args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, o.Python, append([]string{"-m", "gobridge._bench_queue"}, args...)...)
		cmd.Stderr = os.Stderr
		return cmd
	}
	ns, us := fmt.Sprint(n), fmt.Sprint(pace.Microseconds())
	switch pairing {
	case "go->go":
		errc := make(chan error, 1)
		go func() { errc <- w.wake(ctx, n, pace) }()
		out, err := w.wait(n)
		if werr := <-errc; err == nil {
			err = werr
		}
		return out, err
	case "py->go":
		waker := py("wake-wake", w.path, ns, us)
		if err := waker.Start(); err != nil {
			return nil, err
		}
		out, err := w.wait(n)
		if werr := waker.Wait(); err == nil && werr != nil {
			err = fmt.Errorf("python waker: %w", werr)
		}
		return out, err
	case "go->py", "py->py":
		var s pySamples
		wctx, cancel := context.WithCancel(ctx) // ends the sleeper if the waker fails
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- pyModule(wctx, o, "gobridge._bench_queue", &s, "wake-wait", w.path, ns) }()
		if pairing == "go->py" {
			err = w.wake(ctx, n, pace)
		} else {
			err = py("wake-wake", w.path, ns, us).Run()
		}
		if err != nil {
			cancel()
		}
		if werr := <-errc; err == nil {
			err = werr
		}
		return s.SamplesUS, err
	}
	return nil, fmt.Errorf("wake floor: unknown pairing %q", pairing)
}
