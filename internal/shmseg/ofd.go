package shmseg

import (
	"errors"
	"fmt"

	"github.com/gobridge/gobridge/internal/ofdlock"
)

// ErrLocked: LockByte found the byte locked by another handle.
var ErrLocked = errors.New("shmseg: byte is locked by another handle")

// Byte locks mark which processes are alive at a given role in a segment
// (wire/SPEC.md section 11): an open-file-description (OFD) write lock on one
// byte offset of the file, held by this handle until UnlockByte or Close.
// Unlike flock, which the segment's lifetime already uses, these locks are
// per byte, so each role gets its own; unlike POSIX record locks, they belong
// to the open file description, so two handles in one process conflict as two
// processes do, and closing another descriptor of the file does not drop them.
// The kernel releases them when the process dies, SIGKILL included.

// LockByte takes a write lock on byte off without waiting; ErrLocked when
// another handle holds it.
func (s *Segment) LockByte(off int64) error {
	return s.withFd(func(fd uintptr) error {
		ok, err := ofdlock.TryLock(fd, off)
		if err == nil && !ok {
			err = ErrLocked
		}
		return err
	})
}

// UnlockByte releases the lock LockByte took.
func (s *Segment) UnlockByte(off int64) error {
	return s.withFd(func(fd uintptr) error { return ofdlock.Unlock(fd, off) })
}

// ByteLocked reports whether another handle holds a lock on byte off.
func (s *Segment) ByteLocked(off int64) (locked bool, err error) {
	err = s.withFd(func(fd uintptr) error {
		locked, err = ofdlock.Held(fd, off)
		return err
	})
	return locked, err
}

func (s *Segment) withFd(f func(fd uintptr) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return ErrClosed
	}
	if err := f(s.f.Fd()); err != nil {
		if errors.Is(err, ErrLocked) {
			return err
		}
		return fmt.Errorf("shmseg: byte lock: %w", err)
	}
	return nil
}
