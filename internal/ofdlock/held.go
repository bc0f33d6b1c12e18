package ofdlock

import (
	"os"

	"golang.org/x/sys/unix"
)

// Held reports whether another open file description holds a lock on byte
// off of fd (F_OFD_GETLK). A lock held through fd itself does not count.
func Held(fd uintptr, off int64) (bool, error) {
	lk := flock(unix.F_WRLCK, off)
	for {
		err := unix.FcntlFlock(fd, unix.F_OFD_GETLK, lk)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, os.NewSyscallError("fcntl F_OFD_GETLK", err)
		}
		return lk.Type != unix.F_UNLCK, nil
	}
}
