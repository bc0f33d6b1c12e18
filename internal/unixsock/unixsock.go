// Package unixsock binds AF_UNIX stream sockets the way SPEC section 5.1
// says: never over a file that is not a socket (or is a symlink), never over
// a live server, replacing a stale socket file, with mode 0600 from the first
// moment a client can connect, and removing only the file it created.
package unixsock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// MaxPath is the longest path a sockaddr_un holds (sun_path, 108 bytes with
// its NUL). Dial reaches longer paths through /proc/self/fd.
const MaxPath = 107

// ErrInUse reports a path that a live server, or a non-socket file, holds.
var ErrInUse = errors.New("address already in use")

// File identifies the socket file a Listen created.
type File struct {
	Path     string
	dev, ino uint64
}

// Listen binds and listens on path with the given permission bits.
func Listen(path string, perm os.FileMode) (*net.UnixListener, File, error) {
	if err := checkTarget(path); err != nil {
		return nil, File{}, err
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".gobridge-bind-")
	if err != nil {
		return nil, File{}, fmt.Errorf("listen %s: %w", path, err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, File{}, fmt.Errorf("listen %s: %w", path, err)
	}
	l.SetUnlinkOnClose(false)
	fail := func(err error) (*net.UnixListener, File, error) {
		l.Close()
		return nil, File{}, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := os.Chmod(tmp, perm); err != nil {
		return fail(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(tmp, &st); err != nil {
		return fail(err)
	}
	// Between checkTarget and here another server may have started: recheck,
	// then rename, which replaces a stale file atomically.
	if err := checkTarget(path); err != nil {
		l.Close()
		return nil, File{}, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return l, File{Path: path, dev: st.Dev, ino: st.Ino}, nil
}

// checkTarget returns nil when path is free or names a stale socket.
func checkTarget(path string) error {
	var st unix.Stat_t
	err := unix.Lstat(path, &st)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listen %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("listen %s: %w: the path exists and is not a socket (refusing to replace it)", path, inUse())
	}
	live, err := Probe(path)
	if err != nil {
		return fmt.Errorf("listen %s: probing existing socket: %w", path, err)
	}
	if live {
		return fmt.Errorf("listen %s: %w: a live server is listening there", path, inUse())
	}
	return nil // stale: its server died without closing; rename will replace it
}

// Probe connects to the socket at path and closes the connection at once:
// live when a server accepted it or its backlog is full (EAGAIN, which only a
// live server has), not live when the connect is refused (a stale socket
// file: its server died without removing it) or the file is gone. The
// probe is a real connection: the server sees one that ends at once.
func Probe(path string) (live bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := dial(ctx, path, false)
	switch {
	case err == nil:
		c.Close()
		return true, nil
	case errors.Is(err, unix.EAGAIN):
		return true, nil
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT):
		return false, nil
	}
	return false, err
}

// inUseError matches both ErrInUse and syscall.EADDRINUSE.
type inUseError struct{}

func (inUseError) Error() string        { return "address already in use" }
func (inUseError) Is(target error) bool { return target == ErrInUse || target == syscall.EADDRINUSE }

func inUse() error { return inUseError{} }

// Remove deletes the socket file if the path still names the file Listen
// created; a file someone else put there is left alone.
func (f File) Remove() error {
	if f.Path == "" {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(f.Path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Dev != f.dev || st.Ino != f.ino {
		return nil
	}
	if err := os.Remove(f.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Dial connects to the socket at path. A path longer than MaxPath is
// reached through /proc/self/fd/N, N an O_PATH descriptor of the socket
// file. A listener whose backlog is full (EAGAIN) is retried until ctx ends.
func Dial(ctx context.Context, path string) (*net.UnixConn, error) {
	return dial(ctx, path, true)
}

func dial(ctx context.Context, path string, retry bool) (*net.UnixConn, error) {
	name := path
	if len(path) > MaxPath {
		fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: path, Net: "unix"}, Err: os.NewSyscallError("open", err)}
		}
		defer unix.Close(fd)
		name = "/proc/self/fd/" + strconv.Itoa(fd)
	}
	var d net.Dialer
	for delay := 100 * time.Microsecond; ; delay = min(2*delay, 20*time.Millisecond) {
		c, err := d.DialContext(ctx, "unix", name)
		if err == nil {
			return c.(*net.UnixConn), nil
		}
		if !retry || !errors.Is(err, unix.EAGAIN) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(delay):
		}
	}
}
