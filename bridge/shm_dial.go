package bridge

// The dialing side of the shm: transport (SPEC 11.3): connect, create the
// connection's memory, pass it, wait for the reply.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/gobridge/gobridge/internal/shmseg"
	"github.com/gobridge/gobridge/internal/unixsock"
	"golang.org/x/sys/unix"
)

// dial connects to the listener at shm:name.
func (shmTransport) dial(ctx context.Context, _, name string) (transportConn, error) {
	s, err := dialShmAt(ctx, name, 0)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// dialShmAt is dial with both rings' indices starting at start (tests
// of the 2^64 wrap use a start just below it).
func dialShmAt(ctx context.Context, name string, start uint64) (*shmStream, error) {
	if err := checkShmName(name); err != nil {
		return nil, err
	}
	addr := SchemeShm + ":" + name
	c, err := unixsock.Dial(ctx, shmseg.Path(name))
	switch {
	case err == nil:
	case errors.Is(err, syscall.ENOENT):
		return nil, fmt.Errorf("bridge: dial %s: no listener: %w", addr, syscall.ENOENT)
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("bridge: dial %s: no listener: %w", addr, syscall.ECONNREFUSED)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("bridge: dial %s: %w", addr, ctx.Err())
	default:
		return nil, fmt.Errorf("bridge: dial %s: %w", addr, err)
	}
	var mem []byte
	ok := false
	defer func() {
		if !ok {
			if mem != nil {
				unix.Munmap(mem)
			}
			c.Close()
		}
	}()
	if err := checkPeerUID(c); err != nil {
		return nil, fmt.Errorf("bridge: dial %s: %w", addr, err)
	}
	fd, mem, err := createConnMemory(name, shmDefaultRing, start)
	if err != nil {
		return nil, fmt.Errorf("bridge: dial %s: %w", addr, err)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	defer stop()
	_, _, err = c.WriteMsgUnix(shmRequest[:], unix.UnixRights(fd), nil)
	unix.Close(fd) // in flight, the request holds the file; the mapping holds its memory
	var reply [8]byte
	if err == nil {
		_, err = io.ReadFull(c, reply[:])
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("bridge: dial %s: %w", addr, ctx.Err())
	}
	if err != nil || reply != shmAccept {
		return nil, fmt.Errorf("bridge: dial %s: the listener refused the connection (%q, %v): %w", addr, reply[:], err, syscall.ECONNREFUSED)
	}
	if !stop() {
		return nil, fmt.Errorf("bridge: dial %s: %w", addr, context.Cause(ctx))
	}
	c.SetDeadline(time.Time{})
	r0, r1, err := openRings(mem, shmDefaultRing)
	if err != nil {
		return nil, fmt.Errorf("bridge: dial %s: %w", addr, err)
	}
	s, err := newShmStream(name, mem, c, r0, r1, true)
	if err != nil {
		return nil, fmt.Errorf("bridge: dial %s: %w", addr, err)
	}
	ok = true
	return s, nil
}

// checkPeerUID refuses a listener that runs as another user: /dev/shm is
// world-writable, and a socket planted there under our name must not get
// our memory.
func checkPeerUID(c *net.UnixConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	cerr := rc.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if cerr != nil {
		return cerr
	}
	if err != nil {
		return fmt.Errorf("SO_PEERCRED: %w", err)
	}
	if cred.Uid != uint32(os.Geteuid()) {
		return fmt.Errorf("the listener runs as uid %d, not %d: %w", cred.Uid, os.Geteuid(), syscall.EACCES)
	}
	return nil
}
