package shm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/gobridge/gobridge/internal/shmseg"
	"github.com/gobridge/gobridge/internal/testenv"
)

func tag(t testing.TB) string {
	t.Helper()
	return testenv.Tag(t)
}

func TestTaggedMethods(t *testing.T) {
	name := tag(t)
	m, err := Open(name, 64, AccessWrite)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !m.Created() || m.Len() != 64 {
		t.Fatalf("created %v len %d", m.Created(), m.Len())
	}
	if _, err := m.Write([]byte("hello\nworld\n")); err != nil {
		t.Fatal(err)
	}
	if m.Tell() != 12 {
		t.Fatalf("tell %d", m.Tell())
	}
	r, err := Open(name, 0, AccessRead)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Created() || r.Len() != 64 {
		t.Fatalf("reader created %v len %d", r.Created(), r.Len())
	}
	line, _ := r.ReadLine()
	if string(line) != "hello\n" {
		t.Fatalf("readline %q", line)
	}
	if i, _ := r.Find([]byte("world")); i != 6 {
		t.Fatalf("find %d", i)
	}
	if i, _ := r.Find([]byte("hello")); i != -1 {
		t.Fatalf("find from position: %d, want -1", i)
	}
	if i, _ := r.RFind([]byte("o"), 0); i != 7 {
		t.Fatalf("rfind %d", i)
	}
	if i, _ := r.Find([]byte("l"), -64, 4); i != 2 {
		t.Fatalf("find with negative start %d", i)
	}
	if _, err := r.Write([]byte("x")); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("write read-only: %v", err)
	}
	if err := r.Resize(10); !errors.Is(err, ErrNotResizable) {
		t.Fatalf("resize read-only: %v", err)
	}
	if _, err := m.Seek(60, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Write([]byte("12345")); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("write past end: %v", err)
	}
	if _, err := m.Seek(65, io.SeekStart); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("seek past end: %v", err)
	}
	if _, err := m.WriteAt([]byte("ab"), 63); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("writeat past end: %v", err)
	}
	buf := make([]byte, 8)
	if n, err := m.ReadAt(buf, 60); n != 4 || err != io.EOF {
		t.Fatalf("readat at end: %d %v", n, err)
	}
	if _, err := m.ReadAt(buf, 65); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("readat past end: %v", err)
	}
	if err := m.Move(20, 0, 5); err != nil {
		t.Fatal(err)
	}
	if got := string(m.Bytes()[20:25]); got != "hello" {
		t.Fatalf("move: %q", got)
	}
	// As on Windows, a tag that another handle maps is not resized.
	if err := m.Resize(8192); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), name) {
		t.Fatalf("resize with another handle open: %v, want ErrBusy naming %s", err, name)
	}
	if n, _ := m.Size(); n != 64 || m.Len() != 64 {
		t.Fatalf("a refused resize changed size %d len %d", n, m.Len())
	}
	r.Close()
	if err := m.Resize(8192); err != nil {
		t.Fatal(err)
	}
	if n, _ := m.Size(); n != 8192 || m.Len() != 8192 {
		t.Fatalf("after resize size %d len %d", n, m.Len())
	}
	if !bytes.Equal(m.Bytes()[:5], []byte("hello")) {
		t.Fatal("resize lost data")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Read(buf); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if _, err := os.Stat(shmseg.Path(name)); !os.IsNotExist(err) {
		t.Fatal("last close left the segment")
	}
}

func TestReadOnMissingTagGivesZeroes(t *testing.T) {
	name := tag(t)
	m, err := Open(name, 1024, AccessRead)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Bytes(), make([]byte, 1024)) {
		t.Fatal("not zeroes")
	}
	m.Close()
	if _, err := Open(name, 0, AccessRead, WithAttachOnly()); !errors.Is(err, ErrNotExist) {
		t.Fatalf("attach-only: %v", err)
	}
}

func TestCopyIsPrivate(t *testing.T) {
	name := tag(t)
	w, err := Open(name, 16, AccessWrite)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c, err := Open(name, 16, AccessCopy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("private"))
	if w.Bytes()[0] != 0 {
		t.Fatal("ACCESS_COPY write reached the segment")
	}
}

func TestFileMappingTruncatedByOtherGivesError(t *testing.T) {
	path := t.TempDir() + "/test.dat"
	os.WriteFile(path, make([]byte, 64<<10), 0o600)
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	m, err := OpenFile(f, 0, AccessWrite, 0)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.WriteAt([]byte("msg 1"), 0); err != nil {
		t.Fatal(err)
	}
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b[:5]) != "msg 1" {
		t.Fatalf("file has %q", b[:5])
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if _, err := m.ReadAt(buf, 40000); !errors.Is(err, ErrFault) {
		t.Fatalf("read of truncated mapping: %v, want ErrFault", err)
	}
	if _, err := m.WriteAt(buf, 0); !errors.Is(err, ErrFault) {
		t.Fatalf("write of truncated mapping: %v, want ErrFault", err)
	}
	if _, err := m.Find([]byte("x"), 0); !errors.Is(err, ErrFault) {
		t.Fatalf("find on truncated mapping: %v, want ErrFault", err)
	}
	var sink byte
	if err := Guard(func() { sink = m.Bytes()[100] }); !errors.Is(err, ErrFault) {
		t.Fatalf("Guard: %v (%d)", err, sink)
	}
}

func TestOpenFileChecks(t *testing.T) {
	path := t.TempDir() + "/f"
	os.WriteFile(path, []byte("abc"), 0o600)
	f, _ := os.Open(path)
	defer f.Close()
	if _, err := OpenFile(f, 10, AccessRead, 0); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("length beyond file: %v", err)
	}
	m, err := OpenFile(f, 0, AccessRead, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b, _ := io.ReadAll(m)
	if string(b) != "abc" {
		t.Fatalf("read %q", b)
	}
}

func TestTagValidation(t *testing.T) {
	for _, bad := range []string{"", "a/b", "..", "x\x00"} {
		if _, err := Open(bad, 8, AccessWrite); !errors.Is(err, ErrName) {
			t.Errorf("Open(%q): %v, want ErrName", bad, err)
		}
	}
}

func ExampleOpen() {
	// The Go side of Python's mmap.mmap(-1, 1024, tagname="example", access=mmap.ACCESS_WRITE).
	m, err := Open(testenv.Name("example"), 1024, AccessWrite)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close() // the last handle removes the segment
	m.Write([]byte("msg 1"))
	m.Seek(0, io.SeekStart)
	buf := make([]byte, 5)
	m.Read(buf)
	fmt.Println(string(buf))
	// Output: msg 1
}
