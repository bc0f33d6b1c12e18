package bridge

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// Pipe returns two connected Conns, as multiprocessing.Pipe does. With duplex
// both ends send and receive (a socket pair); without, the first end only
// receives and the second only sends (a pipe).
func Pipe(duplex bool, opts ...ConnOption) (*Conn, *Conn, error) {
	cfg := newConnConfig(opts)
	if !duplex {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, nil, fmt.Errorf("bridge: pipe: %w", err)
		}
		return newConn(r, true, false, cfg), newConn(w, false, true, cfg), nil
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("bridge: socketpair: %w", err)
	}
	var ends [2]*Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "gobridge-socketpair")
		nc, err := net.FileConn(f)
		f.Close()
		if err != nil {
			if i == 1 {
				ends[0].Close()
			} else {
				unix.Close(fds[1])
			}
			return nil, nil, fmt.Errorf("bridge: socketpair: %w", err)
		}
		ends[i] = newConn(nc.(stream), true, true, cfg)
	}
	return ends[0], ends[1], nil
}
