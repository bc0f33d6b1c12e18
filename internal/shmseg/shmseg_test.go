package shmseg

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobridge/gobridge/internal/testenv"
	"golang.org/x/sys/unix"
)

// tag returns a name unique to this process and call.
func tag(t testing.TB) string {
	t.Helper()
	return testenv.Tag(t)
}

func exists(name string) bool {
	_, err := os.Lstat(Path(name))
	return err == nil
}

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"test", true},
		{"a.b-c_d", true},
		{strings.Repeat("x", 255), true},
		{"", false},
		{strings.Repeat("x", 256), false},
		{"a/b", false},
		{"/test", false},
		{"..", false},
		{"a..b", false},
		{".hidden", false},
		{"nul\x00", false},
		{"héllo-日本", true},
		{"bad-\xff", false},
		{"cut-\xc3", false},
		{"surrogate-\xed\xa0\x80", false}, // U+D800 encoded: not UTF-8
	} {
		err := ValidateName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrName) {
			t.Errorf("ValidateName(%q) = %v, not ErrName", tc.name, err)
		}
	}
}

// The name table in interop_tests/vectors/names.json is checked by this test
// and by Python's python/tests/test_segments.py: one rule in both languages.
func TestValidateNameTable(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "interop_tests", "vectors", "names.json"))
	if err != nil {
		t.Fatal(err)
	}
	var table []struct {
		Hex   string `json:"hex"`
		Valid bool   `json:"valid"`
		Why   string `json:"why"`
	}
	if err := json.Unmarshal(data, &table); err != nil {
		t.Fatal(err)
	}
	if len(table) < 15 {
		t.Fatalf("only %d names in the table", len(table))
	}
	for _, tc := range table {
		b, err := hex.DecodeString(tc.Hex)
		if err != nil {
			t.Fatal(err)
		}
		err = ValidateName(string(b))
		if (err == nil) != tc.Valid {
			t.Errorf("%s: ValidateName(%q) = %v, want valid=%v", tc.Why, b, err, tc.Valid)
		}
		if err != nil && !errors.Is(err, ErrName) {
			t.Errorf("%s: %v is not ErrName", tc.Why, err)
		}
	}
}

func TestCreateAttachLastCloseUnlinks(t *testing.T) {
	name := tag(t)
	a, err := Open(name, 4096, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Created() {
		t.Fatal("first Open did not create")
	}
	fi, err := os.Stat(a.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != 4096 {
		t.Fatalf("mode %v size %d, want 0600 and 4096", fi.Mode(), fi.Size())
	}
	b, err := Attach(name, 100, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if b.Created() {
		t.Fatal("Attach says it created")
	}
	if _, err := Create(name, 10, Options{}); !errors.Is(err, ErrExist) {
		t.Fatalf("Create on existing: %v, want ErrExist", err)
	}
	if _, err := Attach(name, 8192, Options{}); !errors.Is(err, ErrTooSmall) {
		t.Fatalf("Attach larger: %v, want ErrTooSmall", err)
	}
	info, err := Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if info.Handles != 2 || info.Kind != KindRaw || info.Keep {
		t.Fatalf("Stat = %+v, want 2 handles, kind raw", info)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if !exists(name) {
		t.Fatal("segment removed while a handle is open")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if exists(name) {
		t.Fatal("last close left the segment")
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestModeAndKeep(t *testing.T) {
	name := tag(t)
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	s, err := Create(name, 1, Options{Mode: 0o640, Keep: true, Kind: "test-kind"})
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(s.Path())
	if fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want 0640 despite umask", fi.Mode())
	}
	s.Close()
	info, err := Stat(name)
	if err != nil {
		t.Fatalf("kept segment gone: %v", err)
	}
	if !info.Keep || info.Kind != "test-kind" || info.Handles != 0 {
		t.Fatalf("info %+v", info)
	}
	removed, err := GC(GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range removed {
		if r == name {
			t.Fatal("GC removed a kept segment")
		}
	}
	if err := Unlink(name); err != nil {
		t.Fatal(err)
	}
	if err := Unlink(name); !errors.Is(err, ErrNotExist) {
		t.Fatalf("second Unlink: %v", err)
	}
}

func TestAttachMissing(t *testing.T) {
	name := tag(t)
	if _, err := Attach(name, 0, Options{}); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Attach missing: %v", err)
	}
	if _, err := Open(name, 0, Options{}); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Open size 0 missing: %v", err)
	}
	// A read-only opener creates a zero-filled segment (Windows semantics).
	s, err := Open(name, 64, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Size(); n != 64 || !s.Created() {
		t.Fatalf("size %d created %v", n, s.Created())
	}
	s.Close()
	if exists(name) {
		t.Fatal("left behind")
	}
}

func TestRefusePlanted(t *testing.T) {
	// Another user's segment.
	name := tag(t)
	if err := os.WriteFile(Path(name), make([]byte, 64), 0o666); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(Path(name), 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(name, 64, Options{}); !errors.Is(err, ErrOtherOwner) {
			t.Fatalf("attach to another user's segment: %v, want ErrOtherOwner", err)
		}
		s, err := Open(name, 64, Options{AllowOtherOwner: true})
		if err != nil {
			t.Fatalf("with AllowOtherOwner: %v", err)
		}
		s.Close()
		if !exists(name) {
			t.Fatal("closing an unmarked segment removed it")
		}
	}
	os.Remove(Path(name))

	// A symlink to a file of ours: never followed.
	target := t.TempDir() + "/victim"
	os.WriteFile(target, []byte("secret"), 0o600)
	name2 := tag(t)
	if err := os.Symlink(target, Path(name2)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(name2, 6, Options{}); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("symlink: %v, want ErrNotRegular", err)
	}
	if _, err := Create(name2, 6, Options{}); !errors.Is(err, ErrExist) {
		t.Fatalf("create over symlink: %v, want ErrExist", err)
	}

	// A FIFO must not hang the open.
	name3 := tag(t)
	if err := unix.Mkfifo(Path(name3), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(name3, 6, Options{}); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("fifo: %v, want ErrNotRegular", err)
	}
	os.Remove(Path(name3))

	// A unix socket (open gives ENXIO) and a directory (EISDIR): refused at
	// once as not regular, whatever the access mode.
	name4 := tag(t)
	l, err := net.Listen("unix", Path(name4))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	name5 := tag(t)
	if err := os.Mkdir(Path(name5), 0o700); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(Path(name5))
	for _, n := range []string{name4, name5} {
		for _, ro := range []bool{false, true} {
			_, err := Attach(n, 0, Options{ReadOnly: ro})
			if !errors.Is(err, ErrNotRegular) {
				t.Fatalf("%s (read-only %v): %v, want ErrNotRegular", n, ro, err)
			}
			if strings.Count(err.Error(), "shm:") != 1 || strings.Contains(err.Error(), "shmseg") {
				t.Fatalf("%q: one prefix per message", err)
			}
		}
	}
}

// Init fills a new segment before anyone can open it by name; an Init error
// abandons it. Both ways of creating: O_TMPFILE and the fallback that links a
// private temporary file.
func TestInitBeforePublish(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) {
			noTmpfile = fallback
			defer func() { noTmpfile = false }()
			name := tag(t)
			calls := 0
			s, err := Create(name, 64, Options{Kind: "test-init", Init: func(f *os.File) error {
				calls++
				if exists(name) {
					return errors.New("name published before Init")
				}
				if fi, err := f.Stat(); err != nil || fi.Size() != 64 {
					return fmt.Errorf("not sized yet: %v %v", fi, err)
				}
				_, err := f.WriteAt([]byte("ready"), 0)
				return err
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if calls != 1 {
				t.Fatalf("Init ran %d times", calls)
			}
			b, err := os.ReadFile(Path(name))
			if err != nil || string(b[:5]) != "ready" {
				t.Fatalf("published %q %v", b, err)
			}
			if k, err := s.Kind(); k != "test-init" || err != nil {
				t.Fatalf("Kind() = %q %v", k, err)
			}
			info, err := Stat(name)
			if err != nil || info.Handles != 1 || info.Kind != "test-init" {
				t.Fatalf("Stat = %+v %v", info, err)
			}
			if _, err := Create(name, 64, Options{Init: func(*os.File) error { return nil }}); !errors.Is(err, ErrExist) {
				t.Fatalf("Create on an existing name: %v", err)
			}
			boom := errors.New("boom")
			name2 := tag(t)
			if _, err := Create(name2, 64, Options{Init: func(*os.File) error { return boom }}); !errors.Is(err, boom) {
				t.Fatalf("failing Init: %v", err)
			}
			if exists(name2) {
				t.Fatal("a segment whose Init failed was published")
			}
			ents, _ := os.ReadDir(Dir)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), fmt.Sprintf(".gbnew-%d-", os.Getpid())) {
					t.Errorf("temporary %s left behind", e.Name())
					os.Remove(Path(e.Name()))
				}
			}
		})
	}
}

// Opens and closes racing on one tag: every handle sees a live segment, and
// nothing is left at the end.
func TestOpenCloseRace(t *testing.T) {
	name := tag(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				s, err := Open(name, 4096, Options{})
				if err != nil {
					errs <- err
					return
				}
				if ok, err := stillNamed(int(s.File().Fd()), s.Path()); !ok || err != nil {
					errs <- fmt.Errorf("handle on an unlinked segment (%v)", err)
				}
				s.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if exists(name) {
		t.Fatal("left behind")
	}
}

// TestHelperProcess is re-run as a child by TestGCAfterSIGKILL.
func TestHelperProcess(t *testing.T) {
	name := os.Getenv("SHMSEG_HELPER_TAG")
	if name == "" {
		t.Skip("helper")
	}
	seg, err := Open(name, 4096, Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	// Wait to be killed. A sleep, not select{}: with every goroutine blocked
	// forever the runtime aborts the process ("all goroutines are asleep"),
	// releasing the flock this test relies on. KeepAlive: a dropped *os.File
	// would be closed by its finalizer, with the same effect.
	time.Sleep(time.Hour)
	runtime.KeepAlive(seg)
}

func TestGCAfterSIGKILL(t *testing.T) {
	name := tag(t)
	foreign := tag(t) // like Python's psm_*: unmarked, unheld
	if err := os.WriteFile(Path(foreign), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "SHMSEG_HELPER_TAG="+name)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q", line)
	}
	if removed, _ := GC(GCOptions{}); contains(removed, name) {
		t.Fatal("GC removed a held segment")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if !exists(name) {
		t.Fatal("segment vanished with its SIGKILLed creator")
	}
	info, err := Stat(name)
	if err != nil || info.Handles != 0 {
		t.Fatalf("after kill: %+v %v", info, err)
	}
	removed, err := GC(GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !contains(removed, name) || exists(name) {
		t.Fatalf("GC removed %v; %s exists=%v", removed, name, exists(name))
	}
	if contains(removed, foreign) || !exists(foreign) {
		t.Fatal("GC removed a segment that is not gobridge's")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestCopyFaultOnTruncatedFile(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "trunc")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := os.Getpagesize()
	f.Truncate(int64(4 * page))
	b, err := unix.Mmap(int(f.Fd()), 0, 4*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(b)
	if err := Populate(b, true); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 4*page)
	if _, err := Copy(dst, b); err != nil {
		t.Fatal(err)
	}
	f.Truncate(int64(page))
	if _, err := Copy(dst, b); !errors.Is(err, ErrFault) {
		t.Fatalf("copy from truncated mapping: %v, want ErrFault", err)
	}
	if _, err := Copy(b[2*page:], dst[:10]); !errors.Is(err, ErrFault) {
		t.Fatalf("copy into truncated mapping: %v, want ErrFault", err)
	}
	if err := Populate(b, false); !errors.Is(err, ErrFault) {
		t.Fatalf("populate truncated: %v, want ErrFault", err)
	}
	if n, err := Copy(dst, b[:page]); err != nil || n != page {
		t.Fatalf("copy of the part still backed: %d %v", n, err)
	}
}

// Abandon releases a handle without the last-close rule: a refused segment
// stays as it was even when the refuser was its only handle.
func TestAbandonLeavesTheSegment(t *testing.T) {
	name := tag(t)
	s, err := Create(name, 64, Options{Kind: "test-abandon"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if exists(name) {
		t.Fatal("Close of the last handle left it")
	}
	s, err = Create(name, 64, Options{Kind: "test-abandon"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Abandon(); err != nil {
		t.Fatal(err)
	}
	if err := s.Abandon(); err != nil {
		t.Fatal("second Abandon:", err)
	}
	if !exists(name) {
		t.Fatal("Abandon removed the segment")
	}
	if err := s.Close(); err != nil || !exists(name) {
		t.Fatalf("Close after Abandon: %v, exists %v", err, exists(name))
	}
}
