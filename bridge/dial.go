package bridge

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

var noDeadline time.Time

// Dial connects to a Listener (Go's, or Python's gobridge.Listener) at addr:
// "unix:/path" (or a bare path), "fifo:/path" or "shm:NAME" (SPEC section 4).
// No listener at addr gives an error matching syscall.ECONNREFUSED or
// syscall.ENOENT (a fifo: address whose FIFO exists waits for its listener
// until ctx ends).
func Dial(ctx context.Context, addr string, opts ...ConnOption) (*Conn, error) {
	nc, err := DialRaw(ctx, addr)
	if err != nil {
		return nil, err
	}
	return newConn(nc.(stream), true, true, newConnConfig(opts)), nil
}

// DialRaw connects to addr, as Dial, and returns a plain byte stream without
// gobridge framing (SPEC section 6.5), for servers that speak their own
// protocol.
func DialRaw(ctx context.Context, addr string) (net.Conn, error) {
	scheme, path, err := ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	if scheme == SchemeShm {
		return dialShm(ctx, path)
	}
	if scheme == SchemeFIFO {
		return dialFIFO(ctx, path)
	}
	if scheme != SchemeUnix {
		return nil, fmt.Errorf("%w: dial %s", ErrUnsupportedTransport, addr)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("bridge: dial %s: %w", addr, err)
	}
	return nc, nil
}

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

// Environment variables that hand a connection to a child (SPEC section 6.3).
const (
	EnvFD       = "GOBRIDGE_FD"
	EnvFDMode   = "GOBRIDGE_FD_MODE"
	EnvMaxFrame = "GOBRIDGE_MAX_FRAME"
)

// StartWithConn starts cmd with c handed down to it: the child inherits c's
// descriptor and finds it with Parent (Go) or gobridge.parent() (Python).
// c belongs to the child afterwards: StartWithConn closes the parent's copy,
// whether or not the start succeeded. cmd.Env nil means the parent's
// environment, as in os/exec.
func StartWithConn(cmd *exec.Cmd, c *Conn) error {
	defer c.Close()
	f, err := c.File()
	if err != nil {
		return err
	}
	defer f.Close()
	mode := "rw"
	switch {
	case !c.readable:
		mode = "w"
	case !c.writable:
		mode = "r"
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	cmd.Env = append(cmd.Env,
		EnvFD+"="+strconv.Itoa(2+len(cmd.ExtraFiles)),
		EnvFDMode+"="+mode,
		EnvMaxFrame+"="+strconv.FormatInt(c.maxFrame, 10))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("bridge: start %s: %w", cmd.Path, err)
	}
	return nil
}

// Parent returns the connection a parent process handed down with
// StartWithConn (or Python's gobridge.child_environ). It returns ErrNoParent
// when there is none. The environment variables are removed, so that a
// grandchild does not mistake them for its own, and the descriptor is made
// close-on-exec.
func Parent(opts ...ConnOption) (*Conn, error) {
	v, ok := os.LookupEnv(EnvFD)
	if !ok {
		return nil, ErrNoParent
	}
	mode := os.Getenv(EnvFDMode)
	if mode == "" {
		mode = "rw"
	}
	if m, err := strconv.ParseInt(os.Getenv(EnvMaxFrame), 10, 64); err == nil && m > 0 {
		opts = append([]ConnOption{WithMaxFrameSize(m)}, opts...)
	}
	os.Unsetenv(EnvFD)
	os.Unsetenv(EnvFDMode)
	os.Unsetenv(EnvMaxFrame)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("bridge: %s=%q is not a descriptor number", EnvFD, v)
	}
	if mode != "rw" && mode != "r" && mode != "w" {
		return nil, fmt.Errorf("bridge: %s=%q: want rw, r or w", EnvFDMode, mode)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("bridge: %s=%d: %w", EnvFD, fd, err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil { // so that Go's poller (and deadlines) work
		return nil, fmt.Errorf("bridge: %s=%d: %w", EnvFD, fd, err)
	}
	cfg := newConnConfig(opts)
	f := os.NewFile(uintptr(fd), "gobridge-parent")
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFSOCK:
		nc, err := net.FileConn(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("bridge: %s=%d: %w", EnvFD, fd, err)
		}
		return newConn(nc.(stream), mode != "w", mode != "r", cfg), nil
	case unix.S_IFIFO:
		return newConn(f, mode != "w", mode != "r", cfg), nil
	}
	f.Close()
	return nil, fmt.Errorf("bridge: %s=%d is neither a socket nor a pipe", EnvFD, fd)
}
