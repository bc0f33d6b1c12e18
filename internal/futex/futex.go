// Package futex waits and wakes on a 32-bit word in memory shared between
// processes (a MAP_SHARED mapping of a file or /dev/shm segment), with the
// Linux futex system call. The Python side (gobridge._futex) makes the same
// calls on the same words, so a Go waiter is woken by a Python waker and the
// reverse.
//
// Only the shared (non-private) operations are used: private futexes key on
// the virtual address and never match another process.
package futex

import (
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	opWait = 0 // FUTEX_WAIT
	opWake = 1 // FUTEX_WAKE
)

// Wait sleeps while *addr == val, until Wake, a signal or timeout
// (negative: no timeout). It returns nil when woken, when *addr no longer
// holds val, or on a spurious wake-up, so callers recheck their condition in
// a loop; it returns os.ErrDeadlineExceeded when timeout passed.
//
// The calling goroutine's OS thread blocks in the kernel; Go's scheduler
// runs other goroutines on other threads meanwhile.
func Wait(addr *uint32, val uint32, timeout time.Duration) error {
	var ts *unix.Timespec
	if timeout >= 0 {
		t := unix.NsecToTimespec(int64(timeout))
		ts = &t
	}
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), opWait, uintptr(val),
		uintptr(unsafe.Pointer(ts)), 0, 0)
	switch e {
	case 0, unix.EAGAIN, unix.EINTR:
		return nil
	case unix.ETIMEDOUT:
		return os.ErrDeadlineExceeded
	}
	return os.NewSyscallError("futex wait", e)
}

// Wake wakes up to n waiters on addr and returns how many it woke. It never
// blocks, so it is a raw system call: the scheduler's bookkeeping for a
// blocking call (and its hand-off of the P) is not needed.
func Wake(addr *uint32, n int) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), opWake, uintptr(n), 0, 0, 0)
	if e != 0 {
		return 0, os.NewSyscallError("futex wake", e)
	}
	return int(r), nil
}

// WaitBounded is one bounded sleep, what every sleeper in gobridge loops
// on: it sleeps while *addr == val, for at most maxSleep (negative: no
// bound) and never past deadline (zero: none). It returns
// os.ErrDeadlineExceeded, without sleeping, when the deadline has passed,
// and otherwise nil once the sleep ends (woken, *addr changed, maxSleep
// passed, a signal or a spurious wake-up), so that callers recheck their
// condition, and their own reasons to stop, between sleeps.
func WaitBounded(addr *uint32, val uint32, deadline time.Time, maxSleep time.Duration) error {
	timeout := maxSleep
	if !deadline.IsZero() {
		left := time.Until(deadline)
		if left <= 0 {
			return os.ErrDeadlineExceeded
		}
		if timeout < 0 || left < timeout {
			timeout = left
		}
	}
	if err := Wait(addr, val, timeout); err != nil && err != os.ErrDeadlineExceeded {
		return err
	}
	return nil
}

// WaitUntil spins briefly, then sleeps on addr, until cond() holds or the
// deadline passes (zero: none). seq is the word the waker increments before
// calling Wake after making cond true; reading it before checking cond closes
// the race between the check and the sleep. It returns os.ErrDeadlineExceeded
// on timeout.
func WaitUntil(seq *uint32, cond func() bool, spin int, deadline time.Time) error {
	for i := 0; i < spin; i++ {
		if cond() {
			return nil
		}
	}
	for {
		v := atomic.LoadUint32(seq)
		if cond() {
			return nil
		}
		if err := WaitBounded(seq, v, deadline, -1); err != nil {
			return err
		}
	}
}

// Signal increments *seq and wakes every waiter on it: the waker's half of
// WaitUntil.
func Signal(seq *uint32) error {
	atomic.AddUint32(seq, 1)
	_, err := Wake(seq, int(^uint(0)>>1))
	return err
}
