// Package unixsock binds AF_UNIX stream sockets the way SPEC section 5.1
// says: never over a file that is not a socket (or is a symlink), never over
// a live server, replacing a stale socket file, with mode 0600 from the first
// moment a client can connect, and removing only the file it created.
package unixsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

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
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("listen %s: %w: a live server is listening there", path, inUse())
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return nil // stale: its server died without closing; rename will replace it
	}
	return fmt.Errorf("listen %s: probing existing socket: %w", path, err)
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
