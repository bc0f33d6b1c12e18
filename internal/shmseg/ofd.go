package shmseg

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
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
	return s.ofd(unix.F_OFD_SETLK, unix.F_WRLCK, off, nil)
}

// UnlockByte releases the lock LockByte took.
func (s *Segment) UnlockByte(off int64) error {
	return s.ofd(unix.F_OFD_SETLK, unix.F_UNLCK, off, nil)
}

// ByteLocked reports whether another handle holds a lock on byte off.
func (s *Segment) ByteLocked(off int64) (bool, error) {
	var locked bool
	err := s.ofd(unix.F_OFD_GETLK, unix.F_WRLCK, off, &locked)
	return locked, err
}

func (s *Segment) ofd(cmd int, typ int16, off int64, locked *bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return ErrClosed
	}
	lk := unix.Flock_t{Type: typ, Whence: 0, Start: off, Len: 1}
	for {
		err := unix.FcntlFlock(s.f.Fd(), cmd, &lk)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN || err == unix.EACCES:
			return ErrLocked
		case err != nil:
			return fmt.Errorf("shmseg: byte lock: %w", err)
		}
		if locked != nil {
			*locked = lk.Type != unix.F_UNLCK
		}
		return nil
	}
}
