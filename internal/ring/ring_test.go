package ring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// newTestRing maps a real shared anonymous region (what a segment is, minus
// the name) holding one control block and a data area of capacity bytes.
func newTestRing(t *testing.T, capacity int) (*Ring, []byte) {
	t.Helper()
	mem, err := unix.Mmap(-1, 0, 4096+capacity, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	r, err := New(mem[:CtlSize], mem[4096:])
	if err != nil {
		t.Fatal(err)
	}
	return r, mem
}

// tw, tr and buffered are TryWrite, TryRead and Buffered on a ring nothing
// corrupts: any error fails the test.
func tw(t testing.TB, r *Ring, p []byte) int {
	t.Helper()
	n, err := r.TryWrite(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func tr(t testing.TB, r *Ring, p []byte) int {
	t.Helper()
	n, err := r.TryRead(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func buffered(t testing.TB, r *Ring) int {
	t.Helper()
	n, err := r.Buffered()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func unsafeAt(mem []byte, off int) unsafe.Pointer { return unsafe.Pointer(&mem[off]) }

// waiter returns a Waiter with no deadline, no peer checks and the given spin.
func waiter(spin, slice time.Duration) *Waiter {
	return &Waiter{
		Spin:     spin,
		Slice:    slice,
		Deadline: func() time.Time { return time.Time{} },
		Check:    func() error { return nil },
		Closed:   func() bool { return false },
	}
}

// pattern is n bytes of a sequence that repeats every 251 bytes (a prime, so
// it never lines up with a power-of-two ring).
func pattern(off, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte((off + i) % 251)
	}
	return p
}

func TestNewLayout(t *testing.T) {
	mem, err := unix.Mmap(-1, 0, 8192, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	for _, tc := range []struct {
		name      string
		ctl, data []byte
	}{
		{"data not a power of two", mem[:CtlSize], mem[4096 : 4096+1000]},
		{"empty data", mem[:CtlSize], mem[4096:4096]},
		{"short control block", mem[:CtlSize-1], mem[4096 : 4096+1024]},
		{"control block not 64-byte aligned", mem[8 : 8+CtlSize], mem[4096 : 4096+1024]},
	} {
		if _, err := New(tc.ctl, tc.data); !errors.Is(err, ErrLayout) {
			t.Errorf("%s: New = %v, want ErrLayout", tc.name, err)
		}
	}
	r, err := New(mem[:CtlSize], mem[4096:4096+1024])
	if err != nil {
		t.Fatal(err)
	}
	if r.Cap() != 1024 {
		t.Errorf("Cap = %d, want 1024", r.Cap())
	}
}

func TestEmptyAndFull(t *testing.T) {
	r, _ := newTestRing(t, 64)
	buf := make([]byte, 100)
	if n := tr(t, r, buf); n != 0 {
		t.Fatalf("TryRead on an empty ring = %d", n)
	}
	if r.Readable() || buffered(t, r) != 0 {
		t.Fatalf("empty ring: Readable %v, Buffered %d", r.Readable(), buffered(t, r))
	}
	src := pattern(0, 100)
	if n := tw(t, r, src); n != 64 {
		t.Fatalf("TryWrite of 100 bytes into an empty 64-byte ring = %d, want 64", n)
	}
	if n := tw(t, r, src[64:]); n != 0 {
		t.Fatalf("TryWrite into a full ring = %d, want 0", n)
	}
	if !r.Readable() || buffered(t, r) != 64 {
		t.Fatalf("full ring: Readable %v, Buffered %d", r.Readable(), buffered(t, r))
	}
	if n := tr(t, r, buf[:10]); n != 10 || !bytes.Equal(buf[:10], src[:10]) {
		t.Fatalf("TryRead(10) = %d %v", n, buf[:10])
	}
	// 10 bytes of space again: exactly those fit.
	if n := tw(t, r, src[64:]); n != 10 {
		t.Fatalf("TryWrite after freeing 10 bytes = %d, want 10", n)
	}
	got := make([]byte, 0, 74)
	for {
		n := tr(t, r, buf)
		if n == 0 {
			break
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, src[10:74]) {
		t.Fatalf("drained %v, want %v", got, src[10:74])
	}
	if buffered(t, r) != 0 || r.Readable() {
		t.Fatalf("drained ring: Buffered %d, Readable %v", buffered(t, r), r.Readable())
	}
}

// TestWraparound moves odd-sized chunks through a small ring so that writes
// and reads straddle the end of the data area at every offset, and checks
// the indices count bytes ever written, not positions.
func TestWraparound(t *testing.T) {
	const capacity = 64
	r, mem := newTestRing(t, capacity)
	written, read := 0, 0
	buf := make([]byte, capacity)
	for _, size := range []int{1, 7, 13, 31, 33, 63, 64, 5, 50, 17} {
		for rep := 0; rep < 3*capacity; rep++ {
			src := pattern(written, size)
			if n := tw(t, r, src); n != size {
				t.Fatalf("TryWrite(%d) at %d = %d", size, written, n)
			}
			written += size
			n := tr(t, r, buf[:size])
			if n != size || !bytes.Equal(buf[:n], src) {
				t.Fatalf("at stream offset %d (ring offset %d): read %d bytes %v, want %v",
					read, read%capacity, n, buf[:n], src)
			}
			read += n
		}
	}
	head := binary.LittleEndian.Uint64(mem[offHead:])
	tail := binary.LittleEndian.Uint64(mem[offTail:])
	if head != uint64(written) || tail != uint64(read) {
		t.Fatalf("head %d tail %d, want both %d", head, tail, written)
	}
}

// TestIndexWrap starts the indices just below 2^64: buffered bytes are
// head - tail modulo 2^64 (SPEC 11.2), so nothing changes when head wraps
// before tail does.
func TestIndexWrap(t *testing.T) {
	const capacity = 64
	_, mem := newTestRing(t, capacity)
	start := uint64(1<<64 - 20)
	binary.LittleEndian.PutUint64(mem[offHead:], start)
	binary.LittleEndian.PutUint64(mem[offTail:], start)
	r, err := New(mem[:CtlSize], mem[4096:4096+capacity]) // a ring attached mid-stream
	if err != nil {
		t.Fatal(err)
	}
	src := pattern(0, 48)
	if n := tw(t, r, src); n != 48 {
		t.Fatalf("TryWrite = %d", n)
	}
	if h := binary.LittleEndian.Uint64(mem[offHead:]); h != start+48 || h >= start {
		t.Fatalf("head = %d, want %d (wrapped)", h, start+48)
	}
	if buffered(t, r) != 48 {
		t.Fatalf("Buffered across the wrap = %d, want 48", buffered(t, r))
	}
	if n := tw(t, r, src); n != capacity-48 {
		t.Fatalf("TryWrite into the rest = %d, want %d", n, capacity-48)
	}
	if n := tw(t, r, src); n != 0 {
		t.Fatalf("TryWrite into the full ring = %d, want 0", n)
	}
	buf := make([]byte, capacity)
	if n := tr(t, r, buf); n != capacity {
		t.Fatalf("TryRead = %d", n)
	}
	if want := append(append([]byte(nil), src...), src[:capacity-48]...); !bytes.Equal(buf, want) {
		t.Fatalf("read %v, want %v", buf, want)
	}
}

// TestLargerThanRing: Write streams a buffer many times the ring's size
// while another goroutine reads; the bytes arrive whole and in order.
func TestLargerThanRing(t *testing.T) {
	r, _ := newTestRing(t, 256)
	src := pattern(0, 100*256+17)
	errc := make(chan error, 1)
	go func() {
		n, err := r.Write(src, waiter(50*time.Microsecond, 200*time.Millisecond))
		if err == nil && n != len(src) {
			err = io.ErrShortWrite
		}
		errc <- err
	}()
	got := make([]byte, 0, len(src))
	buf := make([]byte, 1000) // larger than the ring too
	w := waiter(50*time.Microsecond, 200*time.Millisecond)
	for len(got) < len(src) {
		n, err := r.Read(buf, w)
		if err != nil {
			t.Fatal(err)
		}
		if n > r.Cap() {
			t.Fatalf("Read returned %d bytes from a %d-byte ring", n, r.Cap())
		}
		got = append(got, buf[:n]...)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, src) {
		t.Fatal("bytes differ")
	}
}

// TestConcurrent: a producer and a consumer goroutine move 8 MiB through a
// 4 KiB ring in random-sized pieces, with and without spinning (without, every
// wait sleeps on the futex, so a lost wake-up shows up as a stall of a whole
// slice; the slice is long enough that the test would time out).
func TestConcurrent(t *testing.T) {
	for _, spin := range []time.Duration{0, 20 * time.Microsecond} {
		t.Run("spin="+spin.String(), func(t *testing.T) {
			r, _ := newTestRing(t, 4096)
			const total = 8 << 20
			slice := time.Hour // a lost wake-up hangs: the test's timeout reports it
			errc := make(chan error, 1)
			go func() {
				rng := rand.New(rand.NewPCG(1, 2))
				w := waiter(spin, slice)
				for off := 0; off < total; {
					n := min(1+rng.IntN(9000), total-off)
					if _, err := r.Write(pattern(off, n), w); err != nil {
						errc <- err
						return
					}
					off += n
				}
				r.CloseWrite()
				errc <- nil
			}()
			rng := rand.New(rand.NewPCG(3, 4))
			w := waiter(spin, slice)
			buf := make([]byte, 9000)
			off := 0
			for {
				n, err := r.Read(buf[:1+rng.IntN(len(buf)-1)], w)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(buf[:n], pattern(off, n)) {
					t.Fatalf("bytes %d..%d differ", off, off+n)
				}
				off += n
			}
			if off != total {
				t.Fatalf("read %d bytes before EOF, want %d", off, total)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestWakeSleepingReader: a reader that went to sleep (no spinning) on the
// futex is woken by the next write, not by the end of its slice.
func TestWakeSleepingReader(t *testing.T) {
	for _, name := range []string{"reader", "writer"} {
		t.Run(name, func(t *testing.T) {
			r, mem := newTestRing(t, 64)
			flag := offRWait
			if name == "writer" {
				flag = offWWait
				tw(t, r, make([]byte, 64)) // full: the writer must wait for space
			}
			done := make(chan error, 1)
			go func() {
				var err error
				w := waiter(0, time.Hour)
				if name == "reader" {
					_, err = r.Read(make([]byte, 8), w)
				} else {
					_, err = r.Write([]byte{1}, w)
				}
				done <- err
			}()
			waitAsleep(t, mem, flag)
			if name == "reader" {
				tw(t, r, []byte{42})
			} else {
				tr(t, r, make([]byte, 1))
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the sleeper was not woken")
			}
			if v := atomic.LoadUint32((*uint32)(unsafeAt(mem, flag))); v != 0 {
				t.Fatalf("wait flag left at %d", v)
			}
		})
	}
}

func TestCloseWriteThenEOF(t *testing.T) {
	r, _ := newTestRing(t, 64)
	tw(t, r, []byte("last words"))
	r.CloseWrite()
	if !r.WriterClosed() || !r.Readable() {
		t.Fatal("closed writer not visible")
	}
	w := waiter(0, time.Hour)
	buf := make([]byte, 64)
	n, err := r.Read(buf, w)
	if err != nil || string(buf[:n]) != "last words" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if _, err := r.Read(buf, w); err != io.EOF {
		t.Fatalf("Read after the buffered bytes = %v, want io.EOF", err)
	}
}

// waitAsleep waits until a blocked Read or Write has announced in its flag
// word (offRWait, offWWait) that it sleeps, so that what the test does next
// must wake it.
func waitAsleep(t *testing.T, mem []byte, flag int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); atomic.LoadUint32((*uint32)(unsafeAt(mem, flag))) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the other side never went to sleep")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCloseReadFailsWriter(t *testing.T) {
	r, mem := newTestRing(t, 64)
	tw(t, r, make([]byte, 64))
	done := make(chan error, 1)
	go func() {
		_, err := r.Write([]byte{1, 2, 3}, waiter(0, time.Hour))
		done <- err
	}()
	waitAsleep(t, mem, offWWait) // sleeping for space: CloseRead must wake it
	r.CloseRead()
	select {
	case err := <-done:
		if !errors.Is(err, ErrPeerClosed) {
			t.Fatalf("Write after CloseRead = %v, want ErrPeerClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the writer was not woken by CloseRead")
	}
	if !r.ReaderClosed() {
		t.Fatal("ReaderClosed = false")
	}
}

// TestWaiterStops: a deadline, a Check error and a local close each end a
// blocked Read; a deadline moved by another goroutine takes effect on
// InterruptReader.
func TestWaiterStops(t *testing.T) {
	r, mem := newTestRing(t, 64)
	buf := make([]byte, 8)

	w := waiter(10*time.Microsecond, 20*time.Millisecond)
	dl := time.Now().Add(30 * time.Millisecond)
	w.Deadline = func() time.Time { return dl }
	if _, err := r.Read(buf, w); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past its deadline = %v", err)
	}

	w = waiter(0, 10*time.Millisecond)
	w.Check = func() error { return ErrPeerGone }
	if _, err := r.Read(buf, w); !errors.Is(err, ErrPeerGone) {
		t.Fatalf("Read with a dead peer = %v", err)
	}

	var closed atomic.Bool
	var moved atomic.Int64
	w = waiter(0, time.Hour)
	w.Closed = closed.Load
	w.Deadline = func() time.Time {
		if n := moved.Load(); n != 0 {
			return time.Unix(0, n)
		}
		return time.Time{}
	}
	done := make(chan error, 1)
	go func() { _, err := r.Read(buf, w); done <- err }()
	waitAsleep(t, mem, offRWait)
	moved.Store(time.Now().Add(-time.Second).UnixNano())
	r.InterruptReader()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read after its deadline moved into the past = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("InterruptReader did not wake the reader")
	}

	moved.Store(0)
	go func() { _, err := r.Read(buf, w); done <- err }()
	waitAsleep(t, mem, offRWait)
	closed.Store(true)
	r.InterruptReader()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Read after a local close = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("InterruptReader did not wake the reader")
	}
}

// TestReadAfterPeerGoneKeepsBytes: bytes a peer published before it died
// are still delivered; ErrPeerGone comes after them.
func TestReadAfterPeerGoneKeepsBytes(t *testing.T) {
	r, _ := newTestRing(t, 64)
	w := waiter(0, 5*time.Millisecond)
	// The peer finishes its bytes and is found dead in the same check, so
	// the wait ends with ErrPeerGone while bytes are buffered: Read must
	// return them first.
	var once sync.Once
	w.Check = func() error {
		once.Do(func() { tw(t, r, []byte("whole")) })
		return ErrPeerGone
	}
	buf := make([]byte, 64)
	n, err := r.Read(buf, w)
	if err != nil || string(buf[:n]) != "whole" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if _, err := r.Read(buf, w); !errors.Is(err, ErrPeerGone) {
		t.Fatalf("second Read = %v, want ErrPeerGone", err)
	}
}

// TestStepsAcrossTheWrap: transfers of several Steps, published Step by
// Step, that straddle the end of the data area on both sides.
func TestStepsAcrossTheWrap(t *testing.T) {
	const capacity = 4 * Step
	r, mem := newTestRing(t, capacity)
	written, read := 0, 0
	buf := make([]byte, capacity)
	for _, sz := range [][2]int{{3*Step + 100, 2*Step + 7}, {3*Step - 7, 3 * Step}, {Step + 1, 2*Step + 94}, {capacity, capacity}} {
		free := capacity - (written - read)
		want := min(sz[0], free)
		if n := tw(t, r, pattern(written, sz[0])); n != want {
			t.Fatalf("TryWrite(%d) with %d free = %d", sz[0], free, n)
		}
		written += want
		if h := binary.LittleEndian.Uint64(mem[offHead:]); h != uint64(written) {
			t.Fatalf("head = %d, want %d", h, written)
		}
		want = min(sz[1], written-read)
		n := tr(t, r, buf[:sz[1]])
		if n != want || !bytes.Equal(buf[:n], pattern(read, n)) {
			t.Fatalf("TryRead(%d) at %d = %d bytes (want %d), equal %v", sz[1], read, n, want, bytes.Equal(buf[:n], pattern(read, n)))
		}
		read += n
		if tl := binary.LittleEndian.Uint64(mem[offTail:]); tl != uint64(read) {
			t.Fatalf("tail = %d, want %d", tl, read)
		}
	}
}
