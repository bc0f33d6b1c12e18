package mp

// Attacks by a hostile same-user process (issue 11): one that opens the
// segments of SPEC section 10 with plain open, mmap, pwrite and truncate.
// Each must end in a documented error on that object only: no SIGBUS, no
// panic, no giant allocation, no hang past a deadline, no foreign data
// overwritten.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobridge/gobridge/internal/ofdlock"
	"github.com/gobridge/gobridge/internal/shmseg"
	"github.com/gobridge/gobridge/internal/testenv"
	"golang.org/x/sys/unix"
)

// plant writes data as /dev/shm/NAME, marked with kind unless kind is "",
// as another program (or a hostile process) would; removed after the test.
func plant(t testing.TB, name string, data []byte, kind string) string {
	t.Helper()
	p := shmseg.Path(name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(p) })
	if kind != "" {
		if err := unix.Setxattr(p, "user.gobridge.kind", []byte(kind), 0); err != nil {
			t.Skipf("no user xattrs on %s: %v", shmseg.Dir, err)
		}
	}
	return p
}

// header is a valid common header (SPEC 10.2) of kind k.
func header(k, tc, size byte) []byte {
	b := make([]byte, headerSize)
	binary.LittleEndian.PutUint32(b, magic)
	b[offVersion], b[offKind], b[offTypecode], b[offItemsize] = version, k, tc, size
	return b
}

// withTimeout runs f and fails the test if it has not returned within d
// (the old code hung; the test must fail, not hang).
func withTimeout(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s still running after %v", what, d)
	}
}

// Item 2: a segment truncated under a handle. The old code died with
// "fatal error: fault [signal SIGBUS]" (the whole test binary).
func TestTruncatedSegmentIsErrFault(t *testing.T) {
	for _, size := range []int64{0, 4096} { // everything gone; the header kept, the ring cut
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			ctx := ctxT(t)
			name := tag(t)
			q, err := OpenQueue(name, WithCapacity(64<<10))
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			v, err := OpenValue[int64](tag(t), 5)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			s, err := OpenSemaphore(tag(t), 0)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for i := 0; i < 3; i++ {
				if err := q.Put(ctx, strings.Repeat("x", 5000)); err != nil {
					t.Fatal(err)
				}
			}
			// A getter asleep on an empty queue of another name wakes into
			// a truncated segment.
			sleeper, err := OpenQueue(tag(t))
			if err != nil {
				t.Fatal(err)
			}
			defer sleeper.Close()
			got := make(chan error, 1)
			go func() { _, err := sleeper.Get(ctx); got <- err }()
			time.Sleep(20 * time.Millisecond)
			for _, n := range []string{v.Name(), s.Name(), sleeper.Name()} {
				if err := os.Truncate(shmseg.Path(n), 0); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Truncate(shmseg.Path(name), size); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-got:
				if !errors.Is(err, ErrFault) {
					t.Fatalf("sleeping Get: %v, want ErrFault", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("sleeping Get did not return")
			}
			// The queue: the record being read (size 0) or the ring (4096)
			// is gone.
			if _, err := q.Get(ctx); !errors.Is(err, ErrFault) {
				t.Fatalf("Get: %v, want ErrFault", err)
			}
			if msg := fmt.Sprint(q.Put(ctx, 1)); strings.Count(msg, "no longer backed") != 1 || strings.Contains(msg, "shmseg") {
				t.Fatal("Put after the fault: not one ErrFault message")
			}
			if err := q.Put(ctx, 1); !errors.Is(err, ErrFault) {
				t.Fatalf("Put on a broken handle: %v", err)
			}
			if _, err := q.Stat(ctx); !errors.Is(err, ErrFault) {
				t.Fatalf("Stat: %v", err)
			}
			if q.Qsize() != 0 || q.Full() {
				t.Fatal("Qsize of a broken handle")
			}
			if size == 0 {
				if _, err := v.Load(); !errors.Is(err, ErrFault) {
					t.Fatalf("Value.Load: %v", err)
				}
				if err := v.Store(1); !errors.Is(err, ErrFault) {
					t.Fatalf("Value.Store: %v", err)
				}
				short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				err := s.Acquire(short)
				cancel()
				if !errors.Is(err, ErrFault) {
					t.Fatalf("Semaphore.Acquire: %v", err)
				}
				if err := v.Lock(ctx); !errors.Is(err, ErrFault) {
					t.Fatalf("Value.Lock: %v", err)
				}
			}
			// Other handles of other names are unaffected, and the broken
			// ones close cleanly (checked by tag's leftover check).
			other, err := OpenQueue(tag(t))
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if err := other.Put(ctx, "fine"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A lock holder whose segment is truncated still releases the OFD lock.
func TestTruncatedUnderHeldLock(t *testing.T) {
	ctx := ctxT(t)
	l, err := OpenLock(tag(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	os.Truncate(shmseg.Path(l.Name()), 0)
	if err := l.Release(); !errors.Is(err, ErrFault) {
		t.Fatalf("Release: %v, want ErrFault", err)
	}
	f, err := os.OpenFile(shmseg.Path(l.Name()), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ok, err := ofdlock.TryLock(f.Fd(), lockUser); !ok || err != nil {
		t.Fatalf("the OFD lock is still held after a faulting Release (%v)", err)
	}
}

// corrupt opens a fresh queue of capacity 256 holding one message and lets
// f rewrite its fields through a plain mapping of the file, as a hostile
// process would.
func corrupt(t *testing.T, f func(b []byte)) *Queue {
	t.Helper()
	q, err := OpenQueue(tag(t), WithCapacity(256))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	if err := q.Put(ctxT(t), "hello"); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(shmseg.Path(q.Name()), unix.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	b, err := unix.Mmap(fd, 0, qRing+256, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(b)
	f(b)
	return q
}

func le64(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }

// Item 3 and "read each shared field once": impossible positions, counters
// and record lengths are ErrLayout, with no allocation beyond the ring and
// nothing written.
func TestCorruptQueueFields(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(b []byte)
	}{
		{"record of 0xFFFFFFF0 bytes", func(b []byte) { binary.LittleEndian.PutUint32(b[qRing:], 0xFFFFFFF0) }},
		{"record of 0xFFFFFFF0 bytes and tail far ahead", func(b []byte) {
			binary.LittleEndian.PutUint32(b[qRing:], 0xFFFFFFF0)
			le64(b, qTail, 1<<40)
		}},
		{"tail behind head", func(b []byte) { le64(b, qHead, 16); le64(b, qTail, 8) }},
		{"more than capacity queued", func(b []byte) { le64(b, qTail, 512) }},
		{"unaligned head", func(b []byte) { le64(b, qHead, 3); le64(b, qTail, 19) }},
		{"get_seq past put_seq", func(b []byte) { le64(b, qGetSeq, 5) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := corrupt(t, tc.f)
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			_, err := q.GetNowait()
			runtime.ReadMemStats(&ms1)
			if !errors.Is(err, ErrLayout) {
				t.Fatalf("GetNowait: %v, want ErrLayout", err)
			}
			if d := ms1.TotalAlloc - ms0.TotalAlloc; d > 64<<10 {
				t.Fatalf("GetNowait allocated %d bytes", d)
			}
			before, _ := os.ReadFile(shmseg.Path(q.Name()))
			if tc.name != "record of 0xFFFFFFF0 bytes" { // there the positions are fine: Put works
				if err := q.PutNowait("more"); !errors.Is(err, ErrLayout) {
					t.Fatalf("PutNowait: %v, want ErrLayout", err)
				}
				after, _ := os.ReadFile(shmseg.Path(q.Name()))
				if !bytes.Equal(before, after) {
					t.Fatal("a Put on an impossible state wrote to the segment")
				}
				if _, err := q.Stat(ctxT(t)); !errors.Is(err, ErrLayout) {
					t.Fatalf("Stat: %v, want ErrLayout", err)
				}
			}
			if strings.Count(err.Error(), "mp:") != 1 {
				t.Fatalf("%q: one prefix per message", err)
			}
		})
	}
}

// A redo log whose entries point at fields its commits never change (here
// the capacity and the ring) is replayed without them.
func TestRedoEntriesOutsideTheirFieldsAreSkipped(t *testing.T) {
	q := corrupt(t, func(b []byte) {
		binary.LittleEndian.PutUint32(b[offRedoN+8:], qCapacity)
		binary.LittleEndian.PutUint32(b[offRedoN+12:], 8)
		le64(b, offRedoN+16, 1<<30)
		binary.LittleEndian.PutUint32(b[offRedoN+24:], qRing+8)
		binary.LittleEndian.PutUint32(b[offRedoN+28:], 8)
		le64(b, offRedoN+32, 0x4141414141414141)
		binary.LittleEndian.PutUint32(b[offRedoN:], 2)
	})
	if err := q.Put(ctxT(t), "next"); err != nil { // takes the internal lock: replays
		t.Fatal(err)
	}
	b, _ := os.ReadFile(shmseg.Path(q.Name()))
	if c := binary.LittleEndian.Uint64(b[qCapacity:]); c != 256 {
		t.Fatalf("replay rewrote the capacity: %d", c)
	}
	if bytes.Contains(b, []byte("AAAAAAAA")) {
		t.Fatal("replay wrote into the ring")
	}
	if v, err := q.GetNowait(); v != "hello" || err != nil {
		t.Fatalf("got %v %v", v, err)
	}
}

// Item 4: a segment too short for the kind its header names.
func TestShortSegments(t *testing.T) {
	for _, tc := range []struct {
		kind byte
		open func(string) error
	}{
		{kindQueue, func(n string) error { _, err := OpenQueue(n); return err }},
		{kindJoinableQueue, func(n string) error { _, err := OpenJoinableQueue(n); return err }},
		{kindValue, func(n string) error { _, err := OpenValue[int64](n, 0); return err }},
		{kindArray, func(n string) error { _, err := OpenArrayLen[int64](n, 1); return err }},
		{kindSemaphore, func(n string) error { _, err := OpenSemaphore(n, 1); return err }},
		{kindLock, func(n string) error { _, err := OpenLock(n); return err }},
	} {
		for _, mark := range []string{"", kindNames[tc.kind]} {
			t.Run(kindNames[tc.kind]+"/mark="+mark, func(t *testing.T) {
				name := testenv.Tag(t)
				tcode, size := byte(0), byte(0)
				if tc.kind == kindValue || tc.kind == kindArray {
					tcode, size = 'q', 8
				}
				plant(t, name, header(tc.kind, tcode, size), mark)
				if err := tc.open(name); !errors.Is(err, ErrLayout) {
					t.Fatalf("open of a 64-byte %s: %v, want ErrLayout", kindNames[tc.kind], err)
				}
			})
		}
	}
}

// Item 5: a segment that is not a gobridge object is refused, untouched.
func TestForeignSegmentIsNeverWritten(t *testing.T) {
	foreign := make([]byte, 2<<20)
	for i := range foreign {
		foreign[i] = byte(i*7 + i>>11)
	}
	copy(foreign, "someone else's data")
	zero := make([]byte, 4096) // a zero-filled file nobody marked
	for _, tc := range []struct {
		name string
		data []byte
		mark string
	}{
		{"2 MiB unmarked", foreign, ""},
		{"zeroes unmarked", zero, ""},
		{"2 MiB marked queue, bad magic", foreign, shmseg.KindQueue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opens := map[string]func(string) error{
				"queue":  func(n string) error { _, err := OpenQueue(n, WithKeep()); return err },
				"value":  func(n string) error { _, err := OpenValue[int32](n, 1); return err },
				"lock":   func(n string) error { _, err := OpenLock(n); return err },
				"sem":    func(n string) error { _, err := OpenSemaphore(n, 1); return err },
				"array":  func(n string) error { _, err := OpenArrayLen[int32](n, 4); return err },
				"rlock":  func(n string) error { _, err := OpenRLock(n); return err },
				"jqueue": func(n string) error { _, err := OpenJoinableQueue(n); return err },
				"bsem":   func(n string) error { _, err := OpenBoundedSemaphore(n, 1); return err },
				"event":  func(n string) error { _, err := OpenEvent(n); return err },
				"cond":   func(n string) error { _, err := OpenCondition(n, nil); return err },
				"bar":    func(n string) error { _, err := OpenBarrier(n, 2, nil); return err },
			}
			for what, open := range opens {
				name := testenv.Tag(t)
				p := plant(t, name, tc.data, tc.mark)
				start := time.Now()
				err := open(name)
				if !errors.Is(err, ErrLayout) && !errors.Is(err, ErrKind) {
					t.Fatalf("%s: %v, want ErrLayout or ErrKind", what, err)
				}
				if d := time.Since(start); d > time.Second {
					t.Fatalf("%s: refused after %v, not at once", what, d)
				}
				got, _ := os.ReadFile(p)
				if !bytes.Equal(got, tc.data) {
					t.Fatalf("%s: the segment was written to", what)
				}
				if _, err := unix.Getxattr(p, "user.gobridge.keep", make([]byte, 8)); err == nil {
					t.Fatalf("%s: a refused segment was marked keep", what)
				}
			}
		})
	}
}

// A segment marked with the kind but never given its header (an older
// creator that died): the opener waits a bounded time, then ErrNotReady,
// writing nothing.
func TestMarkedButUninitializedIsNotReady(t *testing.T) {
	name := testenv.Tag(t)
	p := plant(t, name, make([]byte, qRing+1024), shmseg.KindQueue)
	start := time.Now()
	_, err := OpenQueue(name)
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("got %v, want ErrNotReady", err)
	}
	if d := time.Since(start); d < readyWait || d > readyWait+2*time.Second {
		t.Fatalf("waited %v", d)
	}
	got, _ := os.ReadFile(p)
	if !bytes.Equal(got, make([]byte, qRing+1024)) {
		t.Fatal("written to")
	}
}

// Item 11: a name in use by another kind, or that is not a regular file, is
// a clear error at once, before any lock: here another process's handle
// holds byte 0's lock (as an shm: listener's liveness lock does).
func TestOtherKindsAndNonRegularFilesRefusedAtOnce(t *testing.T) {
	opens := []func(string) error{
		func(n string) error { _, err := OpenQueue(n); return err },
		func(n string) error { _, err := OpenQueue(n, WithAttachOnly()); return err },
		func(n string) error { _, err := OpenValue[int64](n, 0); return err },
		func(n string) error { _, err := OpenLock(n); return err },
		func(n string) error { _, err := OpenSemaphore(n, 0); return err },
	}
	check := func(t *testing.T, name string, want error) {
		t.Helper()
		for i, open := range opens {
			var err error
			withTimeout(t, 3*time.Second, "open", func() { err = open(name) })
			if !errors.Is(err, want) {
				t.Fatalf("open %d of %s: %v, want %v", i, name, err, want)
			}
		}
	}
	for _, kind := range []string{"conn-listen", "conn", shmseg.KindMMap, "shareable_list", shmseg.KindRaw, shmseg.KindValue} {
		t.Run(kind, func(t *testing.T) {
			name := testenv.Tag(t)
			p := plant(t, name, make([]byte, 4096), kind)
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if ok, err := ofdlock.TryLock(f.Fd(), lockInternal); !ok || err != nil {
				t.Fatal("could not take byte 0", err)
			}
			if kind == shmseg.KindValue {
				// A value's mark: a Value opener may wait for its header,
				// the others are refused at once.
				opens := opens[:1]
				for _, open := range opens {
					if err := open(name); !errors.Is(err, ErrKind) {
						t.Fatalf("%v, want ErrKind", err)
					}
				}
				return
			}
			check(t, name, ErrKind)
		})
	}
	t.Run("unix socket", func(t *testing.T) {
		name := testenv.Tag(t)
		l, err := net.Listen("unix", shmseg.Path(name))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		check(t, name, ErrNotRegular)
	})
	t.Run("fifo", func(t *testing.T) {
		name := testenv.Tag(t)
		if err := unix.Mkfifo(shmseg.Path(name), 0o600); err != nil {
			t.Fatal(err)
		}
		check(t, name, ErrNotRegular)
	})
	t.Run("directory", func(t *testing.T) {
		name := testenv.Tag(t)
		if err := os.Mkdir(shmseg.Path(name), 0o700); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(shmseg.Path(name))
		check(t, name, ErrNotRegular)
	})
}

// Item 15: the name rule (SPEC 9.1) for objects too.
func TestObjectNames(t *testing.T) {
	for _, bad := range []string{"bad-\xff", "", "a/b", ".x", "a..b"} {
		if _, err := OpenQueue(bad); !errors.Is(err, ErrName) {
			t.Errorf("OpenQueue(%q): %v, want ErrName", bad, err)
		}
	}
}

// TestStoppedHolderHelper is not a test: TestDeadlinesBoundLockWaits re-runs
// the test binary as a process that takes every lock of its objects and
// waits to be stopped.
func TestStoppedHolderHelper(t *testing.T) {
	name := os.Getenv("MP_STOPPED_HOLDER")
	if name == "" {
		t.Skip("helper")
	}
	q, err := OpenQueue(name + "-q")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	s, err := OpenSemaphore(name+"-s", 0)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	l, err := OpenLock(name + "-l")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	var h, hs held
	if q.o.lockGet(nil, &h) != nil || q.o.lock(nil, &h) != nil || s.o.lock(nil, &hs) != nil || l.Acquire(context.Background()) != nil {
		fmt.Println("error locking")
		os.Exit(1)
	}
	fmt.Println("locked")
	time.Sleep(time.Hour)
	runtime.KeepAlive(q)
}

// Item 10: a stopped process (not a dead one) holds the internal locks:
// every deadline still bounds the whole call. The old code waited in
// F_OFD_SETLKW for as long as the holder stayed stopped.
func TestDeadlinesBoundLockWaits(t *testing.T) {
	name := testenv.Name("stopped")
	q, err := OpenQueue(name + "-q")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	s, err := OpenSemaphore(name+"-s", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := OpenLock(name + "-l")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := q.Put(ctxT(t), "waiting"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestStoppedHolderHelper$")
	cmd.Env = append(os.Environ(), "MP_STOPPED_HOLDER="+name)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		cmd.Wait()
	}()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("helper said %q", line)
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	const d = 300 * time.Millisecond
	for _, tc := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Put", func(ctx context.Context) error { return q.Put(ctx, "x") }},
		{"Get", func(ctx context.Context) error { _, err := q.Get(ctx); return err }},
		{"Stat", func(ctx context.Context) error { _, err := q.Stat(ctx); return err }},
		{"Semaphore.Acquire", s.Acquire},
		{"Lock.Acquire", l.Acquire},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		start := time.Now()
		var err error
		withTimeout(t, 3*time.Second, tc.name, func() { err = tc.call(ctx) })
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: %v, want DeadlineExceeded", tc.name, err)
		}
		if e := time.Since(start); e > d+time.Second { // slack for a loaded machine; a wedge is unbounded
			t.Fatalf("%s returned after %v with a %v deadline", tc.name, e, d)
		}
		// A context cancelled without a deadline is noticed too.
		ctx, cancel = context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		withTimeout(t, 3*time.Second, tc.name+" (cancel)", func() { err = tc.call(ctx) })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%s after cancel: %v", tc.name, err)
		}
	}
	cmd.Process.Signal(syscall.SIGCONT)
	cmd.Process.Kill()
	cmd.Wait()
	// The holder is gone: everything works again.
	if v, err := q.Get(ctxT(t)); v != "waiting" || err != nil {
		t.Fatalf("got %v %v", v, err)
	}
}

// A planted sparse segment far larger than the object it holds: the opener
// maps it but populates only what the object uses (the old opener asked the
// kernel to populate all of it).
func TestSparseSegmentIsNotPopulated(t *testing.T) {
	name := testenv.Tag(t)
	b := header(kindQueue, 0, 0)
	b = append(b, make([]byte, qRing-headerSize)...)
	binary.LittleEndian.PutUint64(b[qCapacity:], 1<<20)
	p := plant(t, name, b, "")
	if err := os.Truncate(p, 16<<30); err != nil {
		t.Skip("cannot make a 16 GiB sparse file here:", err)
	}
	q, err := OpenQueue(name)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	if used := st.Blocks * 512; used > 8<<20 {
		t.Fatalf("the open allocated %d bytes of a 16 GiB segment holding a 1 MiB ring", used)
	}
	if err := q.PutNowait("x"); err != nil {
		t.Fatal(err)
	}
}
