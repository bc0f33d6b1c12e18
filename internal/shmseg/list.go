package shmseg

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Info describes one file in /dev/shm.
type Info struct {
	Name    string
	Size    int64
	UID     uint32
	Mode    os.FileMode
	Handles int    // flock holders: live gobridge handles
	Kind    string // user.gobridge.kind; "" when not gobridge's
	Keep    bool
}

// Ours reports whether the segment carries gobridge's mark.
func (i Info) Ours() bool { return i.Kind != "" }

// List returns the regular files in /dev/shm, sorted by name. POSIX
// semaphores (sem.*) are skipped.
func List() ([]Info, error) {
	ents, err := os.ReadDir(Dir)
	if err != nil {
		return nil, err
	}
	locks := flockCounts()
	var out []Info
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, "sem.") {
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(Path(name), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		out = append(out, Info{
			Name:    name,
			Size:    st.Size,
			UID:     st.Uid,
			Mode:    os.FileMode(st.Mode & 0o777),
			Handles: locks[fileID{unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino}],
			Kind:    getMark(Path(name), xattrKind),
			Keep:    getMark(Path(name), xattrKeep) != "",
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Stat returns the Info of one segment.
func Stat(name string) (Info, error) {
	if err := ValidateName(name); err != nil {
		return Info{}, err
	}
	all, err := List()
	if err != nil {
		return Info{}, err
	}
	for _, i := range all {
		if i.Name == name {
			return i, nil
		}
	}
	return Info{}, fmt.Errorf("%w: %s", ErrNotExist, name)
}

type fileID struct {
	major, minor uint32
	ino          uint64
}

// flockCounts counts the flock holders per file from /proc/locks
// ("1: FLOCK  ADVISORY  READ 1234 00:1a:5678 0 EOF"); blocked waiters
// ("1: -> FLOCK ...") are not holders.
func flockCounts() map[fileID]int {
	out := map[fileID]int{}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] != "FLOCK" {
			continue
		}
		parts := strings.Split(fields[5], ":")
		if len(parts) != 3 {
			continue
		}
		maj, err1 := strconv.ParseUint(parts[0], 16, 32)
		min, err2 := strconv.ParseUint(parts[1], 16, 32)
		ino, err3 := strconv.ParseUint(parts[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		out[fileID{uint32(maj), uint32(min), ino}]++
	}
	return out
}

// GCOptions select what GC removes.
type GCOptions struct {
	// Kept also removes unheld segments marked keep.
	Kept bool
	// DryRun reports what would be removed without removing it.
	DryRun bool
	// Prefix, when set, limits GC to the names that start with it.
	Prefix string
}

// GC removes the caller's gobridge segments that no live handle holds: those
// whose every holder exited (a SIGKILLed process's flocks vanish with it).
// It never touches files without gobridge's mark (Python's psm_* segments,
// other programs' files) or owned by another user. It takes each candidate's
// flock(LOCK_EX|LOCK_NB), exactly as a last closer does, so it cannot race a
// live handle. It also removes the caller's stale sockets (shm: listeners
// that died without closing; see ListSockets).
func GC(o GCOptions) ([]string, error) {
	all, err := List()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, i := range all {
		if !i.Ours() || i.UID != uint32(os.Geteuid()) || (i.Keep && !o.Kept) || !strings.HasPrefix(i.Name, o.Prefix) {
			continue
		}
		ok, err := reclaim(i.Name, o.DryRun)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			removed = append(removed, i.Name)
		}
	}
	socks, serrs := gcSockets(o.Prefix, o.DryRun)
	removed = append(removed, socks...)
	errs = append(errs, serrs...)
	return removed, errors.Join(errs...)
}

func reclaim(name string, dry bool) (bool, error) {
	path := Path(name)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false, err
	}
	if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
		return false, nil // held
	}
	if dry {
		return true, nil
	}
	ok, err := stillNamed(fd, path)
	if err != nil || !ok {
		return false, err
	}
	if err := unlinkIfSame(path, st.Dev, st.Ino); err != nil {
		return false, err
	}
	return true, nil
}
