package bridge

// Handing a connection down to a child process (SPEC section 6.3).

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"

	"golang.org/x/sys/unix"
)

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
