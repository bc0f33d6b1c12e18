package shmseg

import (
	"errors"
	"os"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// Copy copies src to dst like the builtin copy, but where either slice is
// mapped memory whose backing file was truncated it returns ErrFault instead
// of letting SIGBUS kill the process. n is 0 when it faults.
func Copy(dst, src []byte) (n int, err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if _, ok := r.(interface{ Addr() uintptr }); ok {
				n, err = 0, ErrFault
				return
			}
			panic(r)
		}
	}()
	return copy(dst, src), nil
}

// Guard runs f with faults on mapped memory turned into ErrFault.
func Guard(f func()) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if _, ok := r.(interface{ Addr() uintptr }); ok {
				err = ErrFault
				return
			}
			panic(r)
		}
	}()
	f()
	return nil
}

// Populate pre-faults the page tables of a mapping (MADV_POPULATE_WRITE for
// writable mappings, MADV_POPULATE_READ otherwise, Linux 5.14+), so the first
// copy does not pay a page fault per 4 KiB. Where the kernel lacks them it
// reads one byte per page. A fault (truncated file) returns ErrFault.
func Populate(b []byte, writable bool) error {
	if len(b) == 0 {
		return nil
	}
	advice := unix.MADV_POPULATE_READ
	if writable {
		advice = unix.MADV_POPULATE_WRITE
	}
	err := unix.Madvise(b, advice)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EFAULT) {
		return ErrFault
	}
	page := os.Getpagesize()
	var sink byte
	gerr := Guard(func() {
		for i := 0; i < len(b); i += page {
			sink += b[i]
		}
	})
	_ = sink
	return gerr
}
