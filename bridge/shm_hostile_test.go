package bridge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/gobridge/gobridge/internal/futex"
	"github.com/gobridge/gobridge/internal/shmseg"
	"github.com/gobridge/gobridge/internal/shmtest"
	"github.com/gobridge/gobridge/internal/testenv"
	"golang.org/x/sys/unix"
)

// The tests in this file play a hostile process of the same user against a
// Go listener or dialer (issue 11): it speaks the handshake by hand
// (internal/shmtest), sends wrong requests, changes or truncates the memory
// it passed, and writes impossible ring indices into a live connection.

// echoServer listens on a fresh shm: name and echoes every frame on every
// connection until its first error, which it reports on errs.
func echoServer(t *testing.T) (name string, l *Listener, errs chan error) {
	t.Helper()
	name = shmName(t)
	l, err := Listen("shm:" + name)
	if err != nil {
		t.Fatal(err)
	}
	errs = make(chan error, 1000)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept(context.Background())
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				for {
					b, err := c.RecvBytes()
					if err == nil {
						err = c.SendBytes(b)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return name, l, errs
}

// serving checks that a real client gets its echo from shm:name.
func serving(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, "shm:"+name)
	if err != nil {
		t.Fatalf("the listener no longer serves: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := c.SendBytes([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if b, err := c.RecvBytes(); err != nil || string(b) != "ping" {
		t.Fatalf("echo: %q, %v", b, err)
	}
}

func hostile(t *testing.T, name string, d shmtest.Dialer) *shmtest.Peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := d.Dial(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// TestShmRefusesBadRequests: every malformed request or memory is refused
// (the dialer sees end of stream instead of the reply), every descriptor it
// sent is closed, and the listener goes on serving.
func TestShmRefusesBadRequests(t *testing.T) {
	name, l, _ := echoServer(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	plain, err := os.Create(filepath.Join(t.TempDir(), "plain"))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plain.Truncate(shmtest.HdrSize + 2<<20)
	inShm, err := os.CreateTemp(shmseg.Dir, testenv.Prefix()+"-plain-*")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(inShm.Name())
	defer inShm.Close()
	inShm.Truncate(shmtest.HdrSize + 2<<20)
	set32 := func(off int, v uint32) func([]byte) {
		return func(m []byte) { binary.LittleEndian.PutUint32(m[off:], v) }
	}
	set64 := func(off int, v uint64) func([]byte) {
		return func(m []byte) { binary.LittleEndian.PutUint64(m[off:], v) }
	}
	for _, tc := range []struct {
		name string
		d    shmtest.Dialer
	}{
		{"no seals", shmtest.Dialer{Seals: -1}},
		{"only the shrink seal", shmtest.Dialer{Seals: unix.F_SEAL_SHRINK}},
		{"only the grow seal", shmtest.Dialer{Seals: unix.F_SEAL_GROW}},
		{"larger than the header says", shmtest.Dialer{Size: shmtest.HdrSize + 2<<20 + 4096}},
		{"smaller than the header says", shmtest.Dialer{Size: shmtest.HdrSize + 2<<19}},
		{"too small for any ring", shmtest.Dialer{Size: 4096}},
		{"ring size not a power of two", shmtest.Dialer{Capacity: 3 << 18}},
		{"ring size too small", shmtest.Dialer{Capacity: 2048}},
		{"ring size too large", shmtest.Dialer{Capacity: 1 << 31, RingCap: 1 << 20}},
		{"version 1 magic", shmtest.Dialer{Magic: []byte("GBSHMCN1")}},
		{"bad magic", shmtest.Dialer{Magic: []byte("XXXXXXXX")}},
		{"version 1", shmtest.Dialer{Version: 1}},
		{"header size", shmtest.Dialer{HdrSize: 8192}},
		{"bytes already buffered", shmtest.Dialer{Prepare: set64(shmtest.Ring0+shmtest.CtlHead, 5)}},
		{"impossible indices", shmtest.Dialer{Prepare: set64(shmtest.Ring1+shmtest.CtlHead, 1<<40)}},
		{"writer closed", shmtest.Dialer{Prepare: set32(shmtest.Ring0+shmtest.CtlWClose, 1)}},
		{"reader closed (garbage)", shmtest.Dialer{Prepare: set32(shmtest.Ring1+shmtest.CtlRClose, 0x55aa)}},
		{"no descriptor", shmtest.Dialer{NoFD: true}},
		{"two descriptors", shmtest.Dialer{ExtraFDs: 1}},
		{"nine descriptors (truncated)", shmtest.Dialer{ExtraFDs: 8}},
		{"a pipe", shmtest.Dialer{FDs: []int{int(pr.Fd())}}},
		{"a plain file", shmtest.Dialer{FDs: []int{int(plain.Fd())}}},
		{"a plain file in /dev/shm", shmtest.Dialer{FDs: []int{int(inShm.Fd())}}},
		{"garbage", shmtest.Dialer{Message: []byte("HELLO!!!")}},
		{"short request", shmtest.Dialer{Message: []byte("GBSHM")}},
		{"long request", shmtest.Dialer{Message: []byte("GBSHMRQ2+")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := l.impl.(*shmListener).refused.Load()
			fds := openFDs(t)
			p := hostile(t, name, tc.d)
			if p.Accepted() || len(p.Reply) != 0 {
				t.Fatalf("reply %q, want end of stream", p.Reply)
			}
			for deadline := time.Now().Add(5 * time.Second); l.impl.(*shmListener).refused.Load() != before+1; {
				if time.Now().After(deadline) {
					t.Fatalf("refusals %d -> %d", before, l.impl.(*shmListener).refused.Load())
				}
				time.Sleep(time.Millisecond)
			}
			t.Logf("refused: %v", *l.impl.(*shmListener).lastRefusal.Load())
			p.Close()
			serving(t, name)
			waitFDs(t, fds) // every descriptor received was closed
		})
	}
	t.Run("well-formed", func(t *testing.T) {
		p := hostile(t, name, shmtest.Dialer{})
		if !p.Accepted() {
			t.Fatalf("reply %q", p.Reply)
		}
		p.SetDeadline(time.Now().Add(5 * time.Second))
		if err := p.Send([]byte("by hand")); err != nil {
			t.Fatal(err)
		}
		if b, err := p.Recv(); err != nil || string(b) != "by hand" {
			t.Fatalf("echo %q, %v", b, err)
		}
	})
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// waitFDs waits until no more than want descriptors are open.
func waitFDs(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		n := openFDs(t)
		if n <= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open, want at most %d", n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestShmCapacityChangedAfterSending: the dialer keeps changing C in the
// header while the listener validates it. The listener reads it once and
// uses that copy: it accepts (with the valid value) or refuses, and never
// slices past its mapping (the old listener read C twice and panicked).
func TestShmCapacityChangedAfterSending(t *testing.T) {
	name, l, _ := echoServer(t)
	accepted := 0
	for i := 0; i < 200; i++ {
		var stop atomic.Bool
		var done sync.WaitGroup
		// Flipping from before the request is sent until the reply came.
		p := hostile(t, name, shmtest.Dialer{Prepare: func(mem []byte) {
			word := (*uint64)(unsafe.Pointer(&mem[shmtest.OffCap]))
			done.Add(1)
			go func() {
				defer done.Done()
				for j := 0; !stop.Load(); j++ {
					if j&1 == 0 {
						atomic.StoreUint64(word, 1<<40)
					} else {
						atomic.StoreUint64(word, 1<<20)
					}
				}
			}()
		}})
		stop.Store(true)
		done.Wait()
		if p.Accepted() {
			accepted++
			p.SetDeadline(time.Now().Add(5 * time.Second))
			if err := p.Send([]byte("validated")); err != nil {
				t.Fatal(err)
			}
			if b, err := p.Recv(); err != nil || string(b) != "validated" {
				t.Fatalf("echo %q, %v", b, err)
			}
		}
		p.Close()
	}
	t.Logf("%d of 200 accepted, %d refused", accepted, l.impl.(*shmListener).refused.Load())
	serving(t, name)
}

// TestShmStalledDialers: dialers that connect and never send delay nobody:
// a real client is accepted at once, long before their handshake deadline.
func TestShmStalledDialers(t *testing.T) {
	name, l, _ := echoServer(t)
	for i := 0; i < 3; i++ {
		hostile(t, name, shmtest.Dialer{Raw: true})
	}
	start := time.Now()
	serving(t, name)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a real client waited %v behind stalled ones", d)
	}
	// Close does not wait out their deadlines either.
	start = time.Now()
	l.Close()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v", d)
	}
}

// TestShmTruncationRefused: the memory of a connection cannot be shrunk or
// grown, through the descriptor that was passed or a reopened one; the old
// attack on /dev/shm/NAME.1 has no file to hit; the listener keeps serving
// the very connection.
func TestShmTruncationRefused(t *testing.T) {
	name, _, _ := echoServer(t)
	p := hostile(t, name, shmtest.Dialer{})
	if !p.Accepted() {
		t.Fatalf("reply %q", p.Reply)
	}
	for _, size := range []int64{4096 + 1<<20, 0, 4096 + 4<<20} {
		if err := unix.Ftruncate(p.Memfd, size); !errors.Is(err, unix.EPERM) {
			t.Fatalf("ftruncate(%d) = %v, want EPERM", size, err)
		}
	}
	f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(p.Memfd), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(4096); !errors.Is(err, unix.EPERM) {
		t.Fatalf("truncate through /proc: %v, want EPERM", err)
	}
	f.Close()
	if _, err := os.Lstat(shmseg.Path(name + ".1")); !os.IsNotExist(err) {
		t.Fatalf("%s.1 exists: %v", name, err)
	}
	p.SetDeadline(time.Now().Add(5 * time.Second))
	if err := p.Send([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	if b, err := p.Recv(); err != nil || string(b) != "still here" {
		t.Fatalf("echo %q, %v", b, err)
	}
}

// acceptHostile starts a hostile dialer and accepts its connection.
func acceptHostile(t *testing.T, d shmtest.Dialer) (*Conn, *shmtest.Peer) {
	t.Helper()
	name := shmName(t)
	l, err := Listen("shm:" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan *shmtest.Peer, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p, err := d.Dial(ctx, name)
		if err != nil {
			t.Error(err)
		}
		ch <- p
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := <-ch
	if p == nil {
		t.FailNow()
	}
	t.Cleanup(p.Close)
	return c, p
}

func u64(mem []byte, off int) *uint64 { return (*uint64)(unsafe.Pointer(&mem[off])) }
func u32(mem []byte, off int) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }

// TestShmCorruptIndices: impossible indices written into a live
// connection's memory end it with ErrCorrupt in both directions, within a
// bounded time, without a made-up message; the peer is told. Garbage in a
// closed flag counts as closed.
func TestShmCorruptIndices(t *testing.T) {
	const c = 1 << 20
	big := make([]byte, 2*c)
	for _, tc := range []struct {
		name    string
		corrupt func(mem []byte)
		op      func(conn *Conn) error
		want    error
	}{
		{"head 2^40 ahead (reader)", func(m []byte) {
			atomic.StoreUint64(u64(m, shmtest.Ring0+shmtest.CtlHead), atomic.LoadUint64(u64(m, shmtest.Ring0+shmtest.CtlTail))+1<<40)
		}, recvOp, ErrCorrupt},
		{"head behind tail (reader)", func(m []byte) {
			atomic.StoreUint64(u64(m, shmtest.Ring0+shmtest.CtlHead), atomic.LoadUint64(u64(m, shmtest.Ring0+shmtest.CtlTail))-1)
		}, recvOp, ErrCorrupt},
		{"tail past head (writer)", func(m []byte) {
			// past the head the frame's header will have moved it to
			atomic.StoreUint64(u64(m, shmtest.Ring1+shmtest.CtlTail), atomic.LoadUint64(u64(m, shmtest.Ring1+shmtest.CtlHead))+1000)
		}, func(conn *Conn) error { return conn.SendBytes(big) }, ErrCorrupt},
		{"tail more than C behind (writer)", func(m []byte) {
			atomic.StoreUint64(u64(m, shmtest.Ring1+shmtest.CtlTail), atomic.LoadUint64(u64(m, shmtest.Ring1+shmtest.CtlHead))-c-1)
		}, func(conn *Conn) error { return conn.SendBytes(big) }, ErrCorrupt},
		{"garbage wclosed (reader)", func(m []byte) {
			atomic.StoreUint32(u32(m, shmtest.Ring0+shmtest.CtlWClose), 0xdeadbeef)
		}, recvOp, io.EOF},
		{"garbage rclosed (writer)", func(m []byte) {
			atomic.StoreUint32(u32(m, shmtest.Ring1+shmtest.CtlRClose), 0x80000000)
		}, func(conn *Conn) error { return conn.SendBytes([]byte("x")) }, syscall.EPIPE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, p := acceptHostile(t, shmtest.Dialer{})
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			p.SetDeadline(time.Now().Add(10 * time.Second))
			// One honest exchange first, so that the indices are not zero.
			if err := p.Send([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if b, err := conn.RecvBytes(); err != nil || string(b) != "hello" {
				t.Fatalf("%q, %v", b, err)
			}
			if err := conn.SendBytes([]byte("back")); err != nil {
				t.Fatal(err)
			}
			if b, err := p.Recv(); err != nil || string(b) != "back" {
				t.Fatalf("%q, %v", b, err)
			}
			tc.corrupt(p.Mem)
			start := time.Now()
			err := tc.op(conn)
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("took %v", d)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.want != ErrCorrupt {
				return
			}
			t.Logf("%v", err)
			if !errors.Is(err, syscall.EPROTO) || !strings.Contains(err.Error(), "ring") {
				t.Fatalf("%v: not EPROTO, or no cause in the message", err)
			}
			// Both directions are over, with the same error.
			if b, err := conn.RecvBytes(); !errors.Is(err, ErrCorrupt) || b != nil {
				t.Fatalf("receive after: %q, %v", b, err)
			}
			if err := conn.SendBytes([]byte("x")); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("send after: %v", err)
			}
			if ok, err := conn.Poll(0); !ok || err != nil {
				t.Fatalf("Poll(0) = %v, %v", ok, err)
			}
			// The peer was told: both rings closed, the socket shut down.
			if atomic.LoadUint32(u32(p.Mem, shmtest.Ring1+shmtest.CtlWClose)) == 0 ||
				atomic.LoadUint32(u32(p.Mem, shmtest.Ring0+shmtest.CtlRClose)) == 0 || !p.SockClosed() {
				t.Fatal("the peer was not told")
			}
		})
	}
}

func recvOp(conn *Conn) error {
	b, err := conn.RecvBytes()
	if b != nil {
		return errors.New("a message was delivered: " + string(b))
	}
	return err
}

// TestShmHostileListener: a listener that takes a Go dialer's memory and
// corrupts it ends that connection with ErrCorrupt; one that refuses, or
// never answers, gives ECONNREFUSED or the context's error.
func TestShmHostileListener(t *testing.T) {
	name := shmName(t)
	hl, err := shmtest.Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	defer hl.Close()
	accept := func(reply bool) (chan *shmtest.Peer, chan error) {
		pc, ec := make(chan *shmtest.Peer, 1), make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			p, err := hl.Accept(ctx, reply)
			ec <- err
			pc <- p
		}()
		return pc, ec
	}
	t.Run("corrupt", func(t *testing.T) {
		pc, ec := accept(true)
		c, err := Dial(context.Background(), "shm:"+name)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := <-ec; err != nil {
			t.Fatal(err)
		}
		p := <-pc
		defer p.Close()
		atomic.StoreUint64(u64(p.Mem, shmtest.Ring1+shmtest.CtlHead), 1<<40)
		futex.Wake(u32(p.Mem, shmtest.Ring1+128), 1)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if b, err := c.RecvBytes(); !errors.Is(err, ErrCorrupt) || b != nil {
			t.Fatalf("RecvBytes = %q, %v", b, err)
		}
		if err := c.SendBytes([]byte("x")); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("SendBytes = %v", err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		pc, _ := accept(false)
		go func() {
			if p := <-pc; p != nil {
				p.Sock.Write([]byte("NOPE!!!!"))
				p.Close()
			}
		}()
		if _, err := Dial(context.Background(), "shm:"+name); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("Dial = %v, want ECONNREFUSED", err)
		}
	})
	t.Run("silent", func(t *testing.T) {
		pc, _ := accept(false)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := Dial(ctx, "shm:"+name); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Dial = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("Dial took %v", d)
		}
		if p := <-pc; p != nil {
			p.Close()
		}
	})
}

// TestShmIndexWrap: rings whose indices start just below 2^64 carry small
// and streamed messages across the wrap, both ways.
func TestShmIndexWrap(t *testing.T) {
	name := shmName(t)
	l, err := Listen("shm:" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch := make(chan *Conn, 1)
	go func() {
		c, err := l.Accept(context.Background())
		if err != nil {
			t.Error(err)
		}
		ch <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := dialShmAt(ctx, name, 1<<64-3000)
	if err != nil {
		t.Fatal(err)
	}
	d := newConn(s, true, true, newConnConfig(nil))
	defer d.Close()
	a := <-ch
	if a == nil {
		t.FailNow()
	}
	defer a.Close()
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB: streamed through a 1 MiB ring
	go func() {
		for i := 0; i < 100; i++ {
			b, err := a.RecvBytes()
			if err != nil {
				t.Error(err)
				return
			}
			a.SendBytes(b)
		}
	}()
	for i := 0; i < 100; i++ {
		msg := bytes.Repeat([]byte{byte(i)}, 97)
		if i == 50 {
			msg = big
		}
		if err := d.SendBytes(msg); err != nil {
			t.Fatal(err)
		}
		if b, err := d.RecvBytes(); err != nil || !bytes.Equal(b, msg) {
			t.Fatalf("message %d: %d bytes, %v", i, len(b), err)
		}
	}
	if head := atomic.LoadUint64(u64(s.link.mem, cRing0)); head >= 1<<64-3000 {
		t.Fatalf("head %d did not wrap", head)
	}
}

// TestShmDroppedConnections: 100 Conns dropped without Close are released
// when collected: the server sees each end of stream, and descriptors and
// mappings come back to where they were.
func TestShmDroppedConnections(t *testing.T) {
	name := shmName(t)
	l, err := Listen("shm:" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fds := openFDs(t)
	maps := memfdMaps(t)
	const n = 100
	ends := make(chan error, n)
	var server []*Conn
	var mu sync.Mutex
	go func() {
		for i := 0; i < n; i++ {
			c, err := l.Accept(context.Background())
			if err != nil {
				return
			}
			mu.Lock()
			server = append(server, c)
			mu.Unlock()
			go func() {
				for {
					if _, err := c.RecvBytes(); err != nil {
						ends <- err
						return
					}
				}
			}()
		}
	}()
	func() {
		for i := 0; i < n; i++ {
			c, err := Dial(context.Background(), "shm:"+name)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.SendBytes([]byte("dropped")); err != nil {
				t.Fatal(err)
			}
		}
	}()
	deadline := time.After(20 * time.Second)
	for got := 0; got < n; {
		runtime.GC()
		select {
		case err := <-ends:
			if err != io.EOF && !errors.Is(err, ErrPeerGone) {
				t.Fatalf("server end: %v", err)
			}
			got++
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("the server saw %d of %d dropped peers go", got, n)
		}
	}
	mu.Lock()
	for _, c := range server {
		c.Close()
	}
	mu.Unlock()
	waitFDs(t, fds)
	if m := memfdMaps(t); m > maps {
		t.Fatalf("%d connection mappings left (%d before)", m, maps)
	}
}

// memfdMaps counts this process's mappings of connection memory.
func memfdMaps(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "memfd:gobridge-shm")
}

// TestShmLongName: a name of the longest allowed length (234 bytes, past
// the 107 bytes of a socket address) listens and connects.
func TestShmLongName(t *testing.T) {
	base := shmName(t)
	name := base + "." + strings.Repeat("x", maxShmTag-len(base)-1)
	t.Cleanup(func() { os.Remove(shmseg.Path(name)) })
	l, err := Listen("shm:" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept(context.Background())
		if err == nil {
			b, _ := c.RecvBytes()
			c.SendBytes(b)
			c.Close()
		}
	}()
	c, err := Dial(context.Background(), "shm:"+name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SendBytes([]byte("long"))
	if b, err := c.RecvBytes(); err != nil || string(b) != "long" {
		t.Fatalf("%q, %v", b, err)
	}
	if _, err := Listen("shm:" + name); !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("second Listen: %v", err)
	}
	if _, err := Listen("shm:" + name + "x"); !errors.Is(err, ErrBadAddress) {
		t.Fatalf("235 bytes: %v", err)
	}
}
