package interop_tests

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gobridge/gobridge/internal/futex"
	"github.com/gobridge/gobridge/internal/testenv"
	"golang.org/x/sys/unix"
)

// A Go waiter is woken by a Python waker and a Python waiter by a Go waker,
// on words of one MAP_SHARED file.
func TestFutexAcrossLanguages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "words")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(4096)
	b, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(b)
	goSeq := (*uint32)(unsafe.Pointer(&b[0])) // Python signals, Go waits
	pySeq := (*uint32)(unsafe.Pointer(&b[4])) // Go signals, Python waits

	script := `
import mmap, sys, time
from gobridge._internal import futex as _futex
with open(sys.argv[1], "r+b") as f:
    m = mmap.mmap(f.fileno(), 4096)
go_seq, py_seq = _futex.Word(m, 0), _futex.Word(m, 4)
time.sleep(0.05)
go_seq.signal()                      # wake the Go waiter
ok = py_seq.wait_until(lambda: py_seq.load() != 0, deadline=time.monotonic() + 10)
print("woken" if ok else "timeout")
go_seq.release(); py_seq.release(); m.close()
`
	cmd := testenv.PythonCmd(t, "-c", script, path)
	out := make(chan []byte, 1)
	go func() {
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("python: %v\n%s", err, b)
		}
		out <- b
	}()
	start := time.Now()
	if err := futex.WaitUntil(goSeq, func() bool { return atomic.LoadUint32(goSeq) != 0 }, 0, time.Now().Add(10*time.Second)); err != nil {
		t.Fatalf("Go waiter: %v", err)
	}
	t.Logf("Go woken by Python after %v", time.Since(start))
	time.Sleep(50 * time.Millisecond) // let Python go to sleep first
	if err := futex.Signal(pySeq); err != nil {
		t.Fatal(err)
	}
	if got := string(<-out); got != "woken\n" {
		t.Fatalf("python waiter printed %q", got)
	}
}
