package shmseg

import (
	"os"
	"sort"
	"strings"

	"github.com/gobridge/gobridge/internal/unixsock"
	"golang.org/x/sys/unix"
)

// KindSocket is the Kind List reports for unix sockets in /dev/shm: the
// listeners of shm: connections (wire/SPEC.md section 11.1). A socket
// cannot carry the kind mark, so any socket is listed.
const KindSocket = "socket"

// ListSockets returns the unix sockets in /dev/shm, sorted by name. Handles
// is 1 when a listener accepts a probe connection, 0 when the socket is
// stale (its listener died without removing it); other users' sockets are
// not probed (they cannot be connected to) and show 0. With a prefix, only
// the sockets whose names start with it are listed (and probed).
func ListSockets(prefix string) ([]Info, error) {
	ents, err := os.ReadDir(Dir)
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(Path(name), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
			continue
		}
		i := Info{Name: name, UID: st.Uid, Mode: os.FileMode(st.Mode & 0o777), Kind: KindSocket}
		if st.Uid == uint32(os.Geteuid()) {
			if live, err := unixsock.Probe(Path(name)); err != nil || live {
				i.Handles = 1 // when in doubt, alive
			}
		}
		out = append(out, i)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// gcSockets removes the caller's sockets in /dev/shm whose connect is
// refused: stale shm: listener sockets. A socket replaced since the probe
// (another inode at the name) is left alone.
func gcSockets(prefix string, dry bool) ([]string, []error) {
	socks, err := ListSockets(prefix)
	if err != nil {
		return nil, []error{err}
	}
	var removed []string
	var errs []error
	for _, s := range socks {
		if s.Handles != 0 || s.UID != uint32(os.Geteuid()) {
			continue
		}
		path := Path(s.Name)
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
			continue
		}
		if live, err := unixsock.Probe(path); err != nil || live {
			continue
		}
		if !dry {
			if err := unlinkIfSame(path, st.Dev, st.Ino); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		removed = append(removed, s.Name)
	}
	return removed, errs
}
