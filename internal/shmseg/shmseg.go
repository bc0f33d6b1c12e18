package shmseg

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Dir is where segments live; POSIX shm_open uses the same directory, so
// Python's multiprocessing.shared_memory.SharedMemory(name=N) is /dev/shm/N.
const Dir = "/dev/shm"

// MaxNameLen is the longest tag, in bytes (NAME_MAX).
const MaxNameLen = 255

// DefaultMode is the permission of a new segment.
const DefaultMode os.FileMode = 0o600

// Kind names for the user.gobridge.kind mark.
const (
	KindRaw  = "raw"  // bytes with no structure gobridge knows of
	KindMMap = "mmap" // a tagged mmap (Go shm.Open, Python mmap tagname)
)

const (
	xattrKind = "user.gobridge.kind"
	xattrKeep = "user.gobridge.keep"
	maxKind   = 64
	maxRetry  = 100
)

// Errors. Callers test them with errors.Is.
var (
	ErrName       = errors.New("shm: invalid segment name")
	ErrExist      = errors.New("shm: segment already exists")
	ErrNotExist   = errors.New("shm: segment does not exist")
	ErrOtherOwner = errors.New("shm: segment is owned by another user")
	ErrNotRegular = errors.New("shm: not a regular file")
	ErrTooSmall   = errors.New("shm: segment is smaller than the requested size")
	ErrSize       = errors.New("shm: invalid size")
	ErrClosed     = errors.New("shm: segment handle is closed")
	ErrFault      = errors.New("shm: mapped memory is no longer backed (file truncated?)")
)

// Options say how to open a segment. The zero value attaches read-write to an
// existing or new segment of mode 0600 owned by the caller.
type Options struct {
	// ReadOnly opens the descriptor O_RDONLY (for PROT_READ mappings).
	// A read-only opener may still create the segment (zero-filled), the
	// way Windows gives zeroes for a tag nobody created yet.
	ReadOnly bool
	// Mode is the permission of a new segment (0600 when zero). It is set
	// with fchmod, so the umask does not narrow it.
	Mode os.FileMode
	// Keep exempts the segment from removal by its last closer and by GC;
	// `gobridge shm rm` or Unlink removes it.
	Keep bool
	// AllowOtherOwner permits attaching to a segment another user owns.
	AllowOtherOwner bool
	// Kind marks a new segment (KindRaw when empty); see List.
	Kind string
	// Init, when set, fills a new segment before its name is published: it
	// runs once the segment is sized, marked and locked, and no other
	// process can see it yet, so an attacher never finds it half made. An
	// error from Init abandons the segment (it is never published). Init may
	// map f; the mapping stays valid after Create returns (unmap it yourself
	// if Create fails afterwards). It may run more than once for one Create
	// (a fallback after a failed first attempt), each time on a new file.
	// Attaching never calls it.
	Init func(f *os.File) error
}

// Segment is one handle on a named segment. Its methods are safe for
// concurrent use; Close is idempotent.
type Segment struct {
	name    string
	path    string
	created bool

	mu   sync.Mutex
	f    *os.File
	keep bool
	dev  uint64
	ino  uint64
}

// ValidateName reports whether name can be a tag: 1 to 255 bytes of valid
// UTF-8, no '/', no NUL, no "..", not starting with '.' (wire/SPEC.md section
// 9.1; Python's gobridge._shm.validate_name applies the same rule, in the same
// order, with the same messages).
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrName, len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w %q: not valid UTF-8", ErrName, name)
	}
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '/':
			return fmt.Errorf("%w %q: contains '/'", ErrName, name)
		case 0:
			return fmt.Errorf("%w %q: contains NUL", ErrName, name)
		}
	}
	if name[0] == '.' {
		return fmt.Errorf("%w %q: starts with '.' (or is \"..\")", ErrName, name)
	}
	for i := 0; i+1 < len(name); i++ {
		if name[i] == '.' && name[i+1] == '.' {
			return fmt.Errorf("%w %q: contains \"..\"", ErrName, name)
		}
	}
	return nil
}

// Path returns the file that holds tag name.
func Path(name string) string { return filepath.Join(Dir, name) }

// Open attaches to segment name, creating it with size bytes when it does
// not exist. size 0 attaches to an existing segment of any size (and fails
// with ErrNotExist when there is none). An existing segment smaller than size
// gives ErrTooSmall; a larger one is left as it is.
func Open(name string, size int64, o Options) (*Segment, error) {
	return open(name, size, o, true, true)
}

// Create makes a new segment of size bytes; ErrExist if name exists.
func Create(name string, size int64, o Options) (*Segment, error) {
	if size <= 0 {
		return nil, fmt.Errorf("%w: %d (a new segment needs at least 1 byte)", ErrSize, size)
	}
	return open(name, size, o, true, false)
}

// Attach opens an existing segment; ErrNotExist if there is none.
func Attach(name string, size int64, o Options) (*Segment, error) {
	return open(name, size, o, false, true)
}

func open(name string, size int64, o Options, mayCreate, mayAttach bool) (*Segment, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if size < 0 {
		return nil, fmt.Errorf("%w: %d", ErrSize, size)
	}
	if o.Mode == 0 {
		o.Mode = DefaultMode
	}
	if o.Mode&^os.ModePerm != 0 {
		return nil, fmt.Errorf("shm: mode %v has bits beyond the permissions", o.Mode)
	}
	if o.Kind == "" {
		o.Kind = KindRaw
	}
	if len(o.Kind) > maxKind {
		return nil, fmt.Errorf("shm: kind %q longer than %d bytes", o.Kind, maxKind)
	}
	if mayCreate && size == 0 && !mayAttach {
		return nil, fmt.Errorf("%w: 0", ErrSize)
	}
	path := Path(name)
	for try := 0; try < maxRetry; try++ {
		if mayCreate && size > 0 {
			s, err := create(name, path, size, o)
			if err == nil {
				return s, nil
			}
			if !errors.Is(err, ErrExist) || !mayAttach {
				return nil, err
			}
		}
		s, err := attach(name, path, size, o)
		if errors.Is(err, errRetry) || (errors.Is(err, ErrNotExist) && mayCreate && size > 0) {
			continue // unlinked under us: start over
		}
		return s, err
	}
	return nil, fmt.Errorf("shm: %s: gave up after %d create/unlink races", name, maxRetry)
}

var errRetry = errors.New("retry")

// create builds the segment unnamed, then publishes it.
func create(name, path string, size int64, o Options) (*Segment, error) {
	if noTmpfile {
		return createLinked(name, path, size, o)
	}
	fd, err := unix.Open(Dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, uint32(o.Mode))
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
			return createLinked(name, path, size, o)
		}
		return nil, &os.PathError{Op: "open", Path: Dir, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	if err := prepare(f, size, o); err != nil {
		f.Close()
		return nil, err
	}
	// linkat never replaces an existing name and never follows a symlink
	// there: it is O_CREAT|O_EXCL|O_NOFOLLOW for a file that is already
	// complete and locked.
	err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("%w: %s", ErrExist, name)
		}
		if errors.Is(err, unix.ENOENT) { // no /proc
			return createLinked(name, path, size, o)
		}
		return nil, &os.PathError{Op: "link", Path: path, Err: err}
	}
	return newSegment(name, path, f, true, o.Keep)
}

// noTmpfile makes create take the createLinked fallback (tests only).
var noTmpfile bool

// createLinked is the fallback where O_TMPFILE or /proc is missing: the
// segment is built under a private temporary name (a dot name, which is no
// valid tag), then hard-linked to its real name with link(2), which fails
// when the name exists and never follows a symlink there, and the temporary
// name is removed. The real name, as with O_TMPFILE, only ever names a
// complete segment. A creator killed before the link leaves the temporary
// file, marked and unheld, for GC.
func createLinked(name, path string, size int64, o Options) (*Segment, error) {
	var fd int
	var tmp string
	for try := 0; ; try++ {
		var rnd [8]byte
		if _, err := rand.Read(rnd[:]); err != nil {
			return nil, fmt.Errorf("shm: %w", err)
		}
		tmp = filepath.Join(Dir, fmt.Sprintf(".gbnew-%d-%x", os.Getpid(), rnd))
		var err error
		fd, err = unix.Open(tmp, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDWR, uint32(o.Mode))
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EEXIST) || try > 10 {
			return nil, &os.PathError{Op: "open", Path: tmp, Err: err}
		}
	}
	f := os.NewFile(uintptr(fd), path)
	defer unix.Unlink(tmp)
	if err := prepare(f, size, o); err != nil {
		f.Close()
		return nil, err
	}
	if err := unix.Link(tmp, path); err != nil {
		f.Close()
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("%w: %s", ErrExist, name)
		}
		return nil, &os.PathError{Op: "link", Path: path, Err: err}
	}
	return newSegment(name, path, f, true, o.Keep)
}

// prepare sets mode, size (pre-allocated, so a full /dev/shm is an error now
// rather than SIGBUS later), marks and the shared lock of a new segment, then
// runs o.Init on it.
func prepare(f *os.File, size int64, o Options) error {
	fd := int(f.Fd())
	if err := unix.Fchmod(fd, uint32(o.Mode)); err != nil {
		return fmt.Errorf("shm: fchmod: %w", err)
	}
	if err := unix.Fallocate(fd, 0, 0, size); err != nil {
		if !errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("shm: allocate %d bytes: %w", size, err)
		}
		if err := unix.Ftruncate(fd, size); err != nil {
			return fmt.Errorf("shm: ftruncate %d: %w", size, err)
		}
	}
	setMark(fd, xattrKind, o.Kind)
	if o.Keep {
		setMark(fd, xattrKeep, "1")
	}
	if err := flock(fd, unix.LOCK_SH); err != nil {
		return err
	}
	if o.Init != nil {
		return o.Init(f)
	}
	return nil
}

// setMark stores an xattr; where the file system has no user xattrs the
// segment is simply unmarked (GC then leaves it alone).
func setMark(fd int, key, val string) {
	_ = unix.Fsetxattr(fd, key, []byte(val), 0)
}

func getMark(path, key string) string {
	buf := make([]byte, maxKind)
	n, err := unix.Lgetxattr(path, key, buf)
	if err != nil || n < 0 {
		return ""
	}
	return string(buf[:n])
}

func flock(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if err != unix.EINTR {
			if err != nil {
				return fmt.Errorf("shm: flock: %w", err)
			}
			return nil
		}
	}
}

func attach(name, path string, size int64, o Options) (*Segment, error) {
	flags := unix.O_RDWR
	if o.ReadOnly {
		flags = unix.O_RDONLY
	}
	// O_NONBLOCK: a FIFO planted under the name must not hang the open.
	fd, err := unix.Open(path, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT):
			return nil, fmt.Errorf("%w: %s", ErrNotExist, name)
		case errors.Is(err, unix.ELOOP):
			return nil, fmt.Errorf("%w: %s is a symlink", ErrNotRegular, path)
		}
		// A unix socket (ENXIO), a directory (EISDIR)...: say what it is.
		var st unix.Stat_t
		if unix.Lstat(path, &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
			return nil, fmt.Errorf("%w: %s is %s", ErrNotRegular, path, fileType(st.Mode))
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("shm: fstat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, fmt.Errorf("%w: %s is %s", ErrNotRegular, path, fileType(st.Mode))
	}
	if st.Uid != uint32(os.Geteuid()) && !o.AllowOtherOwner {
		f.Close()
		return nil, fmt.Errorf("%w: %s belongs to uid %d, not %d (allow it explicitly to attach)", ErrOtherOwner, path, st.Uid, os.Geteuid())
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		f.Close()
		return nil, fmt.Errorf("shm: %w", err)
	}
	if err := flock(fd, unix.LOCK_SH); err != nil {
		f.Close()
		return nil, err
	}
	// A last closer may have unlinked the file between our open and lock.
	if ok, err := stillNamed(fd, path); err != nil || !ok {
		f.Close()
		if err != nil {
			return nil, err
		}
		return nil, errRetry
	}
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("shm: fstat %s: %w", path, err)
	}
	if size > st.Size {
		f.Close()
		return nil, fmt.Errorf("%w: %s has %d bytes, %d asked for", ErrTooSmall, name, st.Size, size)
	}
	if o.Keep {
		setMark(fd, xattrKeep, "1")
	}
	return newSegment(name, path, f, false, o.Keep)
}

// fileType names the type of a file that is not a segment.
func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symlink"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "a device"
	}
	return "not a regular file"
}

// stillNamed reports whether fd is linked and path names it.
func stillNamed(fd int, path string) (bool, error) {
	var st, pst unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, fmt.Errorf("shm: fstat: %w", err)
	}
	if st.Nlink == 0 {
		return false, nil
	}
	if err := unix.Lstat(path, &pst); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("shm: lstat: %w", err)
	}
	return pst.Dev == st.Dev && pst.Ino == st.Ino, nil
}

func newSegment(name, path string, f *os.File, created, keep bool) (*Segment, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("shm: fstat: %w", err)
	}
	return &Segment{name: name, path: path, created: created, f: f, keep: keep, dev: st.Dev, ino: st.Ino}, nil
}

// Name returns the tag.
func (s *Segment) Name() string { return s.name }

// Kind returns the segment's user.gobridge.kind mark, read from its
// descriptor; "" when it has none (not gobridge's, or a file system without
// user xattrs).
func (s *Segment) Kind() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return "", ErrClosed
	}
	return getMarkFd(int(s.f.Fd()), xattrKind), nil
}

// Path returns the file in /dev/shm.
func (s *Segment) Path() string { return s.path }

// Created reports whether this handle made the segment.
func (s *Segment) Created() bool { return s.created }

// File returns the segment's descriptor for mmap. It stays owned by s: do not
// close it; it is invalid after Close.
func (s *Segment) File() *os.File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f
}

// Handles returns how many handles (this one included) hold the segment
// now: each open handle, in any process and either language, holds a flock
// on it (SPEC 9.2), and /proc/locks lists them. 1 when it cannot be read.
func (s *Segment) Handles() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return 0, ErrClosed
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(s.f.Fd()), &st); err != nil {
		return 0, fmt.Errorf("shm: fstat: %w", err)
	}
	return max(flockCounts()[fileID{unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino}], 1), nil
}

// Size returns the segment's current size in bytes.
func (s *Segment) Size() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return 0, ErrClosed
	}
	fi, err := s.f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Truncate changes the segment's size (Resize). Shrinking it under other
// processes' mappings makes their access past the new end fault.
func (s *Segment) Truncate(size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return ErrClosed
	}
	if size <= 0 {
		return fmt.Errorf("%w: %d", ErrSize, size)
	}
	return s.f.Truncate(size)
}

// SetKeep marks the segment to survive its last close (and GC).
func (s *Segment) SetKeep() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return ErrClosed
	}
	s.keep = true
	if err := unix.Fsetxattr(int(s.f.Fd()), xattrKeep, []byte("1"), 0); err != nil {
		return fmt.Errorf("shm: mark keep: %w", err)
	}
	return nil
}

// Close releases this handle. If it is the last handle and the segment is not
// kept, the segment is removed from /dev/shm. Unmap before closing.
func (s *Segment) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	f := s.f
	s.f = nil
	var err error
	fd := int(f.Fd())
	// Only gobridge's own segments follow the last-close rule: a segment
	// made by Python's SharedMemory (unmarked) lives until its unlink().
	if !s.keep && getMarkFd(fd, xattrKind) != "" && getMarkFd(fd, xattrKeep) == "" {
		if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil {
			err = unlinkIfSame(s.path, s.dev, s.ino)
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Abandon releases this handle without the last-close rule: the segment
// stays whatever the other handles do. It is for an opener that refused what
// it found under the name (another kind of object, someone else's data),
// which must leave it as it was. Idempotent, as Close.
func (s *Segment) Abandon() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	f := s.f
	s.f = nil
	return f.Close()
}

func getMarkFd(fd int, key string) string {
	buf := make([]byte, maxKind)
	n, err := unix.Fgetxattr(fd, key, buf)
	if err != nil || n < 0 {
		return ""
	}
	return string(buf[:n])
}

// unlinkIfSame removes path if it still names inode (dev, ino).
func unlinkIfSame(path string, dev, ino uint64) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("shm: lstat: %w", err)
	}
	if st.Dev != dev || st.Ino != ino {
		return nil
	}
	if err := unix.Unlink(path); err != nil && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "unlink", Path: path, Err: err}
	}
	return nil
}

// Unlink removes segment name now, whoever holds it (like SharedMemory.unlink
// and `gobridge shm rm`). Existing mappings stay valid until unmapped.
func Unlink(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	err := unix.Unlink(Path(name))
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("%w: %s", ErrNotExist, name)
	}
	if err != nil {
		return &os.PathError{Op: "unlink", Path: Path(name), Err: err}
	}
	return nil
}
