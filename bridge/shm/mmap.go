package shm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	mmapgo "github.com/edsrzf/mmap-go"
	"golang.org/x/sys/unix"

	"github.com/gobridge/gobridge/internal/shmseg"
)

// MMap is a memory mapping with the methods of Python's mmap object. Its
// methods are safe for concurrent use; the position used by Read, Write,
// Seek and friends is shared by all callers, as in Python.
type MMap struct {
	mu     sync.Mutex
	data   mmapgo.MMap
	pos    int
	access Access
	seg    *shmseg.Segment // tagged mapping; nil for a file mapping
	file   *os.File        // file mapping: a dup of the caller's descriptor
	offset int64
	closed bool
}

// Open maps tag's segment with length bytes and the given access, creating
// the segment (zero-filled, length bytes) when it does not exist: like
// Python's mmap.mmap(-1, length, tagname=tag, access=access) on Windows,
// including for AccessRead (a reader that comes first sees zeroes).
// length 0 maps the whole existing segment. A length larger than the
// existing segment is ErrTooSmall.
func Open(tag string, length int, access Access, opts ...OpenOption) (*MMap, error) {
	c := newOpenConfig(opts)
	if length < 0 {
		return nil, fmt.Errorf("%w: length %d", ErrOutOfRange, length)
	}
	if access < AccessDefault || access > AccessCopy {
		return nil, fmt.Errorf("shm: invalid access %d", int(access))
	}
	c.seg.ReadOnly = access == AccessRead
	var seg *shmseg.Segment
	var err error
	switch {
	case c.createOnly:
		seg, err = shmseg.Create(tag, int64(length), c.seg)
	case c.attachOnly:
		seg, err = shmseg.Attach(tag, int64(length), c.seg)
	default:
		seg, err = shmseg.Open(tag, int64(length), c.seg)
	}
	if err != nil {
		return nil, err
	}
	if length == 0 {
		size, err := seg.Size()
		if err != nil {
			seg.Close()
			return nil, err
		}
		if size == 0 {
			seg.Close()
			return nil, fmt.Errorf("shm: segment %s is empty", tag)
		}
		length = int(size)
	}
	data, err := mmapgo.MapRegion(seg.File(), length, prot(access), 0, 0)
	if err != nil {
		seg.Close()
		return nil, fmt.Errorf("shm: mmap %s: %w", tag, err)
	}
	m := &MMap{data: data, access: access, seg: seg}
	if !c.noPrefault {
		if err := shmseg.Populate(data, access != AccessRead && access != AccessCopy); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

// OpenFile maps length bytes of f from offset (a multiple of the page size),
// like Python's mmap.mmap(f.fileno(), length, access=access, offset=offset).
// length 0 maps from offset to the end of the file. f may be closed after
// OpenFile returns: the mapping keeps its own descriptor.
func OpenFile(f *os.File, length int, access Access, offset int64) (*MMap, error) {
	if length < 0 || offset < 0 {
		return nil, fmt.Errorf("%w: length %d offset %d", ErrOutOfRange, length, offset)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if length == 0 {
		if offset >= size {
			return nil, fmt.Errorf("%w: offset %d is not below the file size %d", ErrOutOfRange, offset, size)
		}
		length = int(size - offset)
	} else if offset+int64(length) > size {
		return nil, fmt.Errorf("%w: mmap length is greater than file size (%d+%d > %d)", ErrOutOfRange, offset, length, size)
	}
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("shm: dup: %w", err)
	}
	dup := os.NewFile(uintptr(fd), f.Name())
	data, err := mmapgo.MapRegion(dup, length, prot(access), 0, offset)
	if err != nil {
		dup.Close()
		return nil, fmt.Errorf("shm: mmap %s: %w", f.Name(), err)
	}
	return &MMap{data: data, access: access, file: dup, offset: offset}, nil
}

func prot(a Access) int {
	switch a {
	case AccessRead:
		return mmapgo.RDONLY
	case AccessCopy:
		return mmapgo.COPY
	}
	return mmapgo.RDWR
}

// Tag returns the segment's tag, "" for a file mapping.
func (m *MMap) Tag() string {
	if m.seg == nil {
		return ""
	}
	return m.seg.Name()
}

// Created reports whether this Open created the segment.
func (m *MMap) Created() bool { return m.seg != nil && m.seg.Created() }

// Access returns the access mode.
func (m *MMap) Access() Access { return m.access }

// Bytes returns the mapped memory itself. It is invalid after Close or
// Resize; if another process can shrink the file, access it inside Guard.
func (m *MMap) Bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.data
}

// Guard runs f, turning a fault on mapped memory (SIGBUS after another
// process truncated the file) into ErrFault.
func Guard(f func()) error { return shmseg.Guard(f) }

// Len returns the mapping's length, Python's len(m).
func (m *MMap) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.data)
}

// Size returns the size of the underlying file or segment, Python's m.size().
func (m *MMap) Size() (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	if m.seg != nil {
		return m.seg.Size()
	}
	fi, err := m.file.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Tell returns the current position.
func (m *MMap) Tell() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(m.pos)
}

// Seek sets the position (io.SeekStart, io.SeekCurrent, io.SeekEnd); a
// position outside [0, Len()] is ErrOutOfRange, as Python's ValueError.
func (m *MMap) Seek(offset int64, whence int) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = int64(m.pos)
	case io.SeekEnd:
		base = int64(len(m.data))
	default:
		return 0, fmt.Errorf("shm: invalid whence %d", whence)
	}
	p := base + offset
	if p < 0 || p > int64(len(m.data)) {
		return 0, fmt.Errorf("%w: seek to %d of %d", ErrOutOfRange, p, len(m.data))
	}
	m.pos = int(p)
	return p, nil
}

// Read reads up to len(p) bytes at the position and advances it; at the
// end it returns 0, io.EOF.
func (m *MMap) Read(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	if m.pos >= len(m.data) {
		return 0, io.EOF
	}
	n, err := shmseg.Copy(p, m.data[m.pos:])
	m.pos += n
	return n, err
}

// ReadByte reads one byte at the position.
func (m *MMap) ReadByte() (byte, error) {
	var b [1]byte
	if _, err := m.Read(b[:]); err != nil {
		return 0, err
	}
	return b[0], nil
}

// ReadLine reads up to and including the next '\n' (or to the end).
func (m *MMap) ReadLine() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	var line []byte
	err := shmseg.Guard(func() {
		rest := m.data[m.pos:]
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			rest = rest[:i+1]
		}
		line = append([]byte(nil), rest...)
	})
	if err != nil {
		return nil, err
	}
	m.pos += len(line)
	return line, nil
}

// Write writes p at the position and advances it. If p does not fit before
// the end nothing is written and the error is ErrOutOfRange (Python's
// "data out of range").
func (m *MMap) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.writable(); err != nil {
		return 0, err
	}
	if len(p) > len(m.data)-m.pos {
		return 0, fmt.Errorf("%w: %d bytes at %d of %d", ErrOutOfRange, len(p), m.pos, len(m.data))
	}
	n, err := shmseg.Copy(m.data[m.pos:], p)
	m.pos += n
	return n, err
}

// WriteByte writes one byte at the position.
func (m *MMap) WriteByte(c byte) error {
	_, err := m.Write([]byte{c})
	return err
}

// ReadAt reads len(p) bytes at off without moving the position (io.ReaderAt:
// fewer bytes at the end come with io.EOF).
func (m *MMap) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	if off < 0 || off > int64(len(m.data)) {
		return 0, fmt.Errorf("%w: offset %d of %d", ErrOutOfRange, off, len(m.data))
	}
	n, err := shmseg.Copy(p, m.data[off:])
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, err
}

// WriteAt writes p at off without moving the position; all of p or nothing.
func (m *MMap) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.writable(); err != nil {
		return 0, err
	}
	if off < 0 || off > int64(len(m.data)) || int64(len(p)) > int64(len(m.data))-off {
		return 0, fmt.Errorf("%w: %d bytes at %d of %d", ErrOutOfRange, len(p), off, len(m.data))
	}
	return shmseg.Copy(m.data[off:], p)
}

func (m *MMap) writable() error {
	if m.closed {
		return ErrClosed
	}
	if m.access == AccessRead {
		return ErrReadOnly
	}
	return nil
}

// bounds resolves Python-style optional start and end (negative counts from
// the end) to a slice range.
func (m *MMap) bounds(b []int) (int, int) {
	n := len(m.data)
	start, end := 0, n
	if len(b) > 0 {
		start = b[0]
	} else {
		start = m.pos
	}
	if len(b) > 1 {
		end = b[1]
	}
	fix := func(i int) int {
		if i < 0 {
			i += n
		}
		return min(max(i, 0), n)
	}
	return fix(start), fix(end)
}

// Find returns the lowest index of sub in [start, end), or -1. start
// defaults to the position and end to Len(); negative values count from
// the end, as in Python.
func (m *MMap) Find(sub []byte, startEnd ...int) (int, error) {
	return m.find(sub, startEnd, bytes.Index)
}

// RFind returns the highest index of sub in [start, end), or -1.
func (m *MMap) RFind(sub []byte, startEnd ...int) (int, error) {
	return m.find(sub, startEnd, bytes.LastIndex)
}

func (m *MMap) find(sub []byte, b []int, index func(s, sep []byte) int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	start, end := m.bounds(b)
	if start > end {
		return -1, nil
	}
	i := -1
	err := shmseg.Guard(func() { i = index(m.data[start:end], sub) })
	if err != nil || i < 0 {
		return -1, err
	}
	return start + i, nil
}

// Move copies count bytes from src to dest within the mapping (the regions
// may overlap).
func (m *MMap) Move(dest, src, count int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.writable(); err != nil {
		return err
	}
	n := len(m.data)
	if dest < 0 || src < 0 || count < 0 || dest > n-count || src > n-count {
		return fmt.Errorf("%w: move %d bytes from %d to %d of %d", ErrOutOfRange, count, src, dest, n)
	}
	_, err := shmseg.Copy(m.data[dest:dest+count], m.data[src:src+count])
	return err
}

// Flush writes changes to a file mapping back to the file (msync). For a
// tagged mapping and for AccessRead/AccessCopy it does nothing.
func (m *MMap) Flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if m.seg != nil || m.access == AccessRead || m.access == AccessCopy {
		return nil
	}
	return shmseg.Guard(func() {
		if err := m.data.Flush(); err != nil {
			panic(err)
		}
	})
}

// Resize changes the length of the mapping and the size of the underlying
// file or segment (offset + newsize for a file), like Python's resize.
// A tagged mapping is resized only while no other handle maps the tag, as
// on Windows (ErrBusy otherwise, and nothing changes): shrinking a segment
// under another handle would make its accesses past the new end fault. For
// a file, other processes' mappings keep their length.
func (m *MMap) Resize(newsize int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if m.access == AccessRead || m.access == AccessCopy {
		return ErrNotResizable
	}
	if newsize <= 0 {
		return fmt.Errorf("%w: new size %d", ErrOutOfRange, newsize)
	}
	f := m.file
	if m.seg != nil {
		n, err := m.seg.Handles()
		if err != nil {
			return err
		}
		if n > 1 {
			return fmt.Errorf("%w (%d besides this one): cannot resize %q", ErrBusy, n-1, m.seg.Name())
		}
		if err := m.seg.Truncate(int64(newsize)); err != nil {
			return err
		}
		f = m.seg.File()
	} else if err := f.Truncate(m.offset + int64(newsize)); err != nil {
		return err
	}
	if err := m.data.Unmap(); err != nil {
		return err
	}
	m.data = nil
	data, err := mmapgo.MapRegion(f, newsize, prot(m.access), 0, m.offset)
	if err != nil {
		return fmt.Errorf("shm: remap: %w", err)
	}
	m.data = data
	if m.pos > newsize {
		m.pos = newsize
	}
	return nil
}

// Close unmaps and releases the handle; the last handle on a tag removes the
// segment unless it is kept. Close is idempotent.
func (m *MMap) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	var errs []error
	if m.data != nil {
		errs = append(errs, m.data.Unmap())
		m.data = nil
	}
	if m.seg != nil {
		errs = append(errs, m.seg.Close())
	}
	if m.file != nil {
		errs = append(errs, m.file.Close())
	}
	return errors.Join(errs...)
}

// Keep marks the tagged segment to survive its last close.
func (m *MMap) Keep() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if m.seg == nil {
		return nil
	}
	return m.seg.SetKeep()
}

// Unlink removes tag from /dev/shm now (SharedMemory.unlink); mappings stay
// valid until closed.
func Unlink(tag string) error { return shmseg.Unlink(tag) }

var (
	_ io.ReadWriteSeeker = (*MMap)(nil)
	_ io.ReaderAt        = (*MMap)(nil)
	_ io.WriterAt        = (*MMap)(nil)
	_ io.ByteReader      = (*MMap)(nil)
	_ io.ByteWriter      = (*MMap)(nil)
	_ io.Closer          = (*MMap)(nil)
)
