package futex

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sharedWord maps a file MAP_SHARED, as two processes would.
func sharedWord(t *testing.T) *uint32 {
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "w"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(4096)
	b, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(b) })
	return (*uint32)(unsafe.Pointer(&b[0]))
}

func TestWaitTimeoutAndValueMismatch(t *testing.T) {
	w := sharedWord(t)
	start := time.Now()
	if err := Wait(w, 0, 20*time.Millisecond); err != os.ErrDeadlineExceeded {
		t.Fatalf("Wait = %v, want deadline", err)
	}
	if time.Since(start) < 15*time.Millisecond {
		t.Fatal("Wait returned early")
	}
	if err := Wait(w, 1, time.Second); err != nil { // *w != 1: returns at once
		t.Fatalf("Wait on a changed word = %v", err)
	}
}

func TestWaitUntilSignal(t *testing.T) {
	seq := sharedWord(t)
	var ready atomic.Bool
	go func() {
		time.Sleep(10 * time.Millisecond)
		ready.Store(true)
		Signal(seq)
	}()
	if err := WaitUntil(seq, ready.Load, 100, time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := WaitUntil(seq, func() bool { return false }, 10, time.Now().Add(10*time.Millisecond)); err != os.ErrDeadlineExceeded {
		t.Fatalf("WaitUntil never-true = %v", err)
	}
}

// TestWaitBounded: a sleep ends at maxSleep, at the deadline (whichever is
// first) or on a wake-up, and a passed deadline returns at once.
func TestWaitBounded(t *testing.T) {
	w := sharedWord(t)
	start := time.Now()
	if err := WaitBounded(w, 0, time.Time{}, 20*time.Millisecond); err != nil {
		t.Fatalf("WaitBounded past maxSleep = %v, want nil", err)
	}
	if d := time.Since(start); d < 15*time.Millisecond || d > 2*time.Second {
		t.Fatalf("WaitBounded(maxSleep 20ms) slept %v", d)
	}
	start = time.Now()
	if err := WaitBounded(w, 0, start.Add(20*time.Millisecond), time.Hour); err != nil {
		t.Fatalf("WaitBounded to the deadline = %v, want nil", err)
	}
	if d := time.Since(start); d < 15*time.Millisecond || d > 2*time.Second {
		t.Fatalf("WaitBounded(deadline 20ms) slept %v", d)
	}
	if err := WaitBounded(w, 0, time.Now().Add(-time.Millisecond), time.Hour); err != os.ErrDeadlineExceeded {
		t.Fatalf("WaitBounded after the deadline = %v, want os.ErrDeadlineExceeded", err)
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		Signal(w)
	}()
	start = time.Now()
	if err := WaitBounded(w, 0, time.Time{}, -1); err != nil {
		t.Fatalf("WaitBounded woken = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("WaitBounded woken after %v", d)
	}
}
