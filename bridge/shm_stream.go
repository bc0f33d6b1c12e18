package bridge

// The byte stream of an shm: connection (SPEC 11.2-11.4): two rings in the
// connection's memory, and its control socket, whose end of stream says
// that the peer is gone.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobridge/gobridge/internal/ring"
	"golang.org/x/sys/unix"
)

// A blocked Read or Write spins for shmSpin, then sleeps on the ring's
// futex in slices of shmSlice, checking the control socket between slices.
const (
	shmSlice = 200 * time.Millisecond
	shmSpin  = 50 * time.Microsecond
)

// shmLink is what one end of a connection holds, apart from the rings'
// bookkeeping: the mapping and the control socket. It is released by Close
// or, when the stream is dropped unclosed, by a runtime cleanup.
type shmLink struct {
	mem      []byte
	ctl      *net.UnixConn
	rc       syscall.RawConn
	in, out  *ring.Ring
	released atomic.Bool
}

// release marks both rings closed (the peer reads what was sent, then end
// of stream), unmaps and closes the control socket. Idempotent.
func (k *shmLink) release() error {
	if k.released.Swap(true) {
		return nil
	}
	k.out.CloseWrite()
	k.in.CloseRead()
	err := unix.Munmap(k.mem)
	k.mem = nil
	if cerr := k.ctl.Close(); err == nil {
		err = cerr
	}
	return err
}

// peerGone reports whether the control socket shows the peer's end closed
// (end of stream or an error). Nothing is sent on it in this version: a
// byte that arrives anyway is read and dropped.
func (k *shmLink) peerGone() bool {
	gone := false
	err := k.rc.Control(func(fd uintptr) {
		var b [64]byte
		for i := 0; i < 16; i++ {
			n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_DONTWAIT)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return
			case err != nil, n == 0:
				gone = true
				return
			}
		}
	})
	return gone || err != nil
}

// shmStream is one end of a connection: the stream a Conn runs on. It is
// also a net.Conn, for AcceptRaw and DialRaw.
type shmStream struct {
	link    *shmLink
	name    string
	in, out *ring.Ring

	// rmu and wmu make Read and Write one caller at a time each (a ring has
	// one producer and one consumer, and net.Conn allows concurrent calls);
	// mu guards the mapping for the deadline setters. Close takes all three
	// before it unmaps.
	rmu, wmu sync.Mutex
	mu       sync.RWMutex
	closed   atomic.Bool
	broken   atomic.Pointer[error] // ErrCorrupt: the connection is over, both ways
	rdl, wdl atomic.Int64          // deadlines in UnixNano; 0: none
	rw, ww   ring.Waiter
	cleanup  runtime.Cleanup
	closeErr error
}

// newShmStream makes an end over r0 (dialer -> listener) and r1; it owns
// mem and ctl from now on.
func newShmStream(name string, mem []byte, ctl *net.UnixConn, r0, r1 *ring.Ring, dialer bool) (*shmStream, error) {
	rc, err := ctl.SyscallConn()
	if err != nil {
		return nil, err
	}
	link := &shmLink{mem: mem, ctl: ctl, rc: rc, in: r0, out: r1}
	if dialer {
		link.in, link.out = r1, r0
	}
	s := &shmStream{link: link, name: name, in: link.in, out: link.out}
	check := func() error {
		if s.closed.Load() {
			return ring.ErrClosed
		}
		if s.link.peerGone() {
			return ring.ErrPeerGone
		}
		return nil
	}
	closed := func() bool { return s.closed.Load() }
	s.rw = ring.Waiter{Spin: shmSpin, Slice: shmSlice, Check: check, Closed: closed,
		Deadline: func() time.Time { return unixNano(s.rdl.Load()) }}
	s.ww = ring.Waiter{Spin: shmSpin, Slice: shmSlice, Check: check, Closed: closed,
		Deadline: func() time.Time { return unixNano(s.wdl.Load()) }}
	// A stream dropped without Close still gives its memory and socket
	// back, and its peer sees the end of stream (SPEC 11.3).
	s.cleanup = runtime.AddCleanup(s, func(k *shmLink) { k.release() }, link)
	return s, nil
}

func unixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func (s *shmStream) Read(p []byte) (int, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.closed.Load() {
		return 0, net.ErrClosed
	}
	if e := s.broken.Load(); e != nil {
		return 0, *e
	}
	n, err := s.in.Read(p, &s.rw)
	return n, s.mapErr(err, "receive")
}

func (s *shmStream) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed.Load() {
		return 0, net.ErrClosed
	}
	if e := s.broken.Load(); e != nil {
		return 0, *e
	}
	n, err := s.out.Write(p, &s.ww)
	return n, s.mapErr(err, "send")
}

func (s *shmStream) mapErr(err error, dir string) error {
	switch {
	case err == nil, err == io.EOF:
		return err
	case errors.Is(err, ring.ErrClosed):
		return net.ErrClosed
	case errors.Is(err, ring.ErrPeerClosed):
		return fmt.Errorf("shm:%s: peer closed its end: %w", s.name, syscall.EPIPE)
	case errors.Is(err, ring.ErrPeerGone):
		return ErrPeerGone
	case errors.Is(err, ring.ErrCorrupt):
		return s.fail(fmt.Errorf("%w: shm:%s %s ring: %s", ErrCorrupt, s.name, dir,
			strings.TrimPrefix(err.Error(), ring.ErrCorrupt.Error()+": ")))
	}
	return err
}

// fail ends the connection after a protocol error: every later call
// returns err, and the peer is told through both rings' closed flags and
// the control socket. The mapping stays until Close.
func (s *shmStream) fail(err error) error {
	if s.broken.CompareAndSwap(nil, &err) {
		s.out.CloseWrite()
		s.in.CloseRead()
		s.in.InterruptReader()
		s.out.InterruptWriter()
		s.link.ctl.CloseWrite()
	}
	return *s.broken.Load()
}

// readyNow serves Conn.Poll(0): data, end of stream, a dead peer or a
// broken connection.
func (s *shmStream) readyNow() bool {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.closed.Load() || s.broken.Load() != nil {
		return true
	}
	return s.in.Readable() || s.link.peerGone()
}

func (s *shmStream) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.out.CloseWrite()
	s.in.CloseRead()
	s.in.InterruptReader()
	s.out.InterruptWriter()
	s.mu.Lock() // wait for Read, Write and the deadline setters to leave the mapping
	defer s.mu.Unlock()
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.cleanup.Stop()
	s.closeErr = s.link.release()
	return s.closeErr
}

func (s *shmStream) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

func (s *shmStream) SetReadDeadline(t time.Time) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return net.ErrClosed
	}
	s.rdl.Store(deadlineNano(t))
	s.in.InterruptReader()
	return nil
}

func (s *shmStream) SetWriteDeadline(t time.Time) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return net.ErrClosed
	}
	s.wdl.Store(deadlineNano(t))
	s.out.InterruptWriter()
	return nil
}

func deadlineNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	if n := t.UnixNano(); n > 0 {
		return n
	}
	return 1
}

var errNoDescriptor = errors.New("bridge: an shm: connection has no file descriptor to pass")

func (s *shmStream) SyscallConn() (syscall.RawConn, error) { return nil, errNoDescriptor }

type shmAddr string

func (a shmAddr) Network() string { return SchemeShm }
func (a shmAddr) String() string  { return SchemeShm + ":" + string(a) }

func (s *shmStream) LocalAddr() net.Addr  { return shmAddr(s.name) }
func (s *shmStream) RemoteAddr() net.Addr { return shmAddr(s.name) }
