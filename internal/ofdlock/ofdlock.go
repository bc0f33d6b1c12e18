// Package ofdlock takes Linux open-file-description locks (fcntl
// F_OFD_SETLK/F_OFD_SETLKW) on one byte of a file. Python takes the same
// locks with fcntl.fcntl and a struct flock, so a Go holder excludes a
// Python one and the reverse.
//
// An OFD lock belongs to the open file description, not to the process or
// thread: two goroutines using the same descriptor share it (callers add a
// sync.Mutex), a forked child that inherits the descriptor shares it, and the
// kernel drops it when the last descriptor on the description is closed,
// which includes the holder being killed with SIGKILL. It does not interact
// with flock(2).
package ofdlock

import (
	"context"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

func flock(typ int16, off int64) *unix.Flock_t {
	return &unix.Flock_t{Type: typ, Whence: 0, Start: off, Len: 1}
}

// Lock takes the write lock on byte off of fd, waiting as long as it takes.
func Lock(fd uintptr, off int64) error {
	for {
		err := unix.FcntlFlock(fd, unix.F_OFD_SETLKW, flock(unix.F_WRLCK, off))
		if err != unix.EINTR {
			if err != nil {
				return os.NewSyscallError("fcntl F_OFD_SETLKW", err)
			}
			return nil
		}
	}
}

// Polling bounds for LockContext: the first retry comes after pollMin, each
// wait doubles, up to pollMax (how late a cancelled context is noticed).
const (
	pollMin = 5 * time.Microsecond
	pollMax = time.Millisecond
)

// LockContext takes the write lock on byte off of fd, giving up with ctx's
// error when ctx ends. A nil ctx, or one that can never end, waits in the
// kernel (F_OFD_SETLKW) as Lock does; otherwise it tries F_OFD_SETLK and
// sleeps between tries, from pollMin doubling to pollMax and never past ctx's
// deadline, so that the deadline bounds the wait even while the holder is a
// stopped process.
func LockContext(ctx context.Context, fd uintptr, off int64) error {
	if ctx == nil || ctx.Done() == nil {
		return Lock(fd, off)
	}
	for d := pollMin; ; d = min(2*d, pollMax) {
		ok, err := TryLock(fd, off)
		if ok || err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if dl, ok := ctx.Deadline(); ok {
			left := time.Until(dl)
			if left <= 0 {
				return context.DeadlineExceeded
			}
			d = min(d, left)
		}
		time.Sleep(d)
	}
}

// TryLock takes the write lock on byte off of fd if no other description
// holds it, and reports whether it did.
func TryLock(fd uintptr, off int64) (bool, error) {
	for {
		err := unix.FcntlFlock(fd, unix.F_OFD_SETLK, flock(unix.F_WRLCK, off))
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES):
			return false, nil
		case err == unix.EINTR:
			continue
		}
		return false, os.NewSyscallError("fcntl F_OFD_SETLK", err)
	}
}

// Unlock releases the lock on byte off of fd.
func Unlock(fd uintptr, off int64) error {
	if err := unix.FcntlFlock(fd, unix.F_OFD_SETLK, flock(unix.F_UNLCK, off)); err != nil {
		return os.NewSyscallError("fcntl F_OFD_SETLK unlock", err)
	}
	return nil
}
