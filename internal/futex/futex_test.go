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
