package bridge

// The shm: transport (wire/SPEC.md section 11): a listener is a unix socket
// at /dev/shm/NAME; a dialer connects, creates the connection's memory as a
// sealed memfd (two single-producer single-consumer byte rings, internal/ring)
// and passes it over the socket, which then stays open as the connection's
// control channel: its end of stream tells each side that the other is gone.
// The rings form a byte stream, so Conn's framing, deadlines, contexts and
// Poll run on it unchanged.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobridge/gobridge/internal/ring"
	"github.com/gobridge/gobridge/internal/shmseg"
	"github.com/gobridge/gobridge/internal/unixsock"
	"golang.org/x/sys/unix"
)

// Layout (SPEC 11.2) and handshake (11.3). All integers little-endian
// (native on amd64 and arm64); futex words and indices naturally aligned.
const (
	shmHdrSize     = 4096
	shmVersion     = 2
	shmDefaultRing = 1 << 20 // bytes per direction
	shmMinRing     = 4096
	shmMaxRing     = 1 << 30

	// connection header
	cMagic       = 0  // [8]byte "GBSHMCN2"
	cVersion     = 8  // u32
	cHdrSize     = 12 // u32, offset of the first data area
	cCap         = 16 // u64, bytes per ring (power of two)
	cDialerPID   = 24 // u32 (informational)
	cListenerPID = 28 // u32 (informational)
	cRing0       = 64 // control block, dialer -> listener
	cRing1       = 256

	// shmHandshake bounds the time from a dialer's connect to its request;
	// a dialer that connects and sends nothing is dropped after it, and
	// never delays the others, whose handshakes run beside it.
	shmHandshake = 5 * time.Second
	// shmBacklog bounds the connections in handshake or waiting for
	// Accept; past it, new ones wait in the socket's backlog.
	shmBacklog = 64
	shmMaxFDs  = 8 // room for descriptors in a request (all are closed; one is used)

	shmSlice  = 200 * time.Millisecond
	shmSpin   = 50 * time.Microsecond
	maxShmTag = shmseg.MaxNameLen - 21 // the v1 limit, kept
)

var (
	connMagic  = [8]byte{'G', 'B', 'S', 'H', 'M', 'C', 'N', '2'}
	shmRequest = [8]byte{'G', 'B', 'S', 'H', 'M', 'R', 'Q', '2'} // dialer -> listener, with the memfd
	shmAccept  = [8]byte{'G', 'B', 'S', 'H', 'M', 'O', 'K', '2'} // listener -> dialer
)

// errShmRefused: a listener refused a request (SPEC 11.3). Dialers see end
// of stream; the listener keeps serving.
var errShmRefused = errors.New("bridge: shm: request refused")

func refuse(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errShmRefused, fmt.Sprintf(format, a...))
}

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

// openRings builds the two rings over a connection's memory of capacity
// bytes per ring (validated by the caller).
func openRings(mem []byte, capacity int) (r0, r1 *ring.Ring, err error) {
	r0, err = ring.New(mem[cRing0:cRing0+ring.CtlSize], mem[shmHdrSize:shmHdrSize+capacity])
	if err != nil {
		return nil, nil, err
	}
	r1, err = ring.New(mem[cRing1:cRing1+ring.CtlSize], mem[shmHdrSize+capacity:shmHdrSize+2*capacity])
	if err != nil {
		return nil, nil, err
	}
	return r0, r1, nil
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

func checkShmName(name string) error {
	if err := shmseg.ValidateName(name); err != nil {
		return fmt.Errorf("%w %q: %w", ErrBadAddress, SchemeShm+":"+name, err)
	}
	if len(name) > maxShmTag {
		return fmt.Errorf("%w %q: an shm: name has at most %d bytes", ErrBadAddress, SchemeShm+":"+name, maxShmTag)
	}
	return nil
}

// A shmListener accepts shm: connections at one name. A goroutine accepts
// sockets and starts a handshake for each; handshakes run side by side,
// each with its own deadline, and the connections they produce wait in
// ready for Accept.
type shmListener struct {
	name   string
	ul     *net.UnixListener
	file   unixsock.File
	ctx    context.Context // cancelled by close: ends the handshakes
	cancel context.CancelFunc
	ready  chan *shmStream
	slots  chan struct{} // one per connection in handshake or in ready
	wg     sync.WaitGroup
	closed atomic.Bool

	refused     atomic.Int64          // requests refused, for tests
	lastRefusal atomic.Pointer[error] // and why, for tests
}

func listenShm(name string) (*shmListener, error) {
	if err := checkShmName(name); err != nil {
		return nil, err
	}
	ul, f, err := unixsock.Listen(shmseg.Path(name), 0o600)
	if err != nil {
		return nil, fmt.Errorf("bridge: shm:%s: %w", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &shmListener{name: name, ul: ul, file: f, ctx: ctx, cancel: cancel,
		ready: make(chan *shmStream, shmBacklog), slots: make(chan struct{}, shmBacklog)}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

func (l *shmListener) acceptLoop() {
	defer l.wg.Done()
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.ctx.Done():
			return
		}
		c, err := l.ul.AcceptUnix()
		if err != nil {
			<-l.slots
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			select { // out of descriptors, say: try again soon, without spinning
			case <-l.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			s, err := l.handshake(c)
			if err != nil {
				l.refused.Add(1)
				l.lastRefusal.Store(&err)
				<-l.slots
				return
			}
			l.ready <- s // never blocks: a slot is held for it
		}()
	}
}

func (l *shmListener) accept(ctx context.Context) (*shmStream, error) {
	if l.closed.Load() {
		return nil, fmt.Errorf("bridge: accept: %w", ErrClosed)
	}
	select {
	case s := <-l.ready:
		<-l.slots
		return s, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("bridge: accept: %w", ctx.Err())
	case <-l.ctx.Done():
		return nil, fmt.Errorf("bridge: accept: %w", ErrClosed)
	}
}

// handshake reads a dialer's request, validates the memory it passed and
// replies (SPEC 11.3). Anything wrong closes the socket and every
// descriptor received.
func (l *shmListener) handshake(c *net.UnixConn) (s *shmStream, err error) {
	var mem []byte
	defer func() {
		if err != nil {
			if mem != nil {
				unix.Munmap(mem)
			}
			c.Close()
		}
	}()
	stop := context.AfterFunc(l.ctx, func() { c.SetDeadline(aLongTimeAgo) })
	defer stop()
	c.SetDeadline(time.Now().Add(shmHandshake))
	var msg [16]byte
	oob := make([]byte, unix.CmsgSpace(4*shmMaxFDs))
	n, oobn, flags, _, err := c.ReadMsgUnix(msg[:], oob)
	fds, ferr := receivedFDs(oob[:oobn])
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	switch {
	case err != nil:
		return nil, refuse("reading the request: %v", err)
	case flags&unix.MSG_CTRUNC != 0:
		return nil, refuse("control data truncated (more than %d descriptors)", shmMaxFDs)
	case n != len(shmRequest) || [8]byte(msg[:8]) != shmRequest:
		return nil, refuse("request is %q, want %q", msg[:n], shmRequest[:])
	case ferr != nil:
		return nil, ferr
	case len(fds) != 1:
		return nil, refuse("%d descriptors, want exactly one", len(fds))
	}
	mem, capacity, err := mapConnMemory(fds[0])
	if err != nil {
		return nil, err
	}
	r0, r1, err := openRings(mem, capacity)
	if err != nil {
		return nil, refuse("%v", err)
	}
	if !r0.Idle() || !r1.Idle() {
		return nil, refuse("the rings are not empty and open")
	}
	binary.LittleEndian.PutUint32(mem[cListenerPID:], uint32(os.Getpid()))
	if _, err := c.Write(shmAccept[:]); err != nil {
		return nil, refuse("replying: %v", err)
	}
	if !stop() {
		return nil, refuse("the listener closed")
	}
	c.SetDeadline(time.Time{})
	s, err = newShmStream(l.name, mem, c, r0, r1, false)
	if err != nil {
		return nil, refuse("%v", err)
	}
	return s, nil
}

// receivedFDs returns every descriptor in a control message, and an error if
// it held anything else.
func receivedFDs(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, refuse("control data: %v", err)
	}
	var fds []int
	var bad error
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_RIGHTS {
			bad = refuse("control message of level %d, type %d", m.Header.Level, m.Header.Type)
			continue
		}
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			bad = refuse("descriptors: %v", err)
		}
		fds = append(fds, got...)
	}
	return fds, bad
}

// mapConnMemory validates a dialer's memfd and maps it (SPEC 11.3): a
// regular file on tmpfs (shmem; not hugetlbfs, whose exhausted pool would
// fault), owned by us, sealed against shrinking and growing, whose size and
// header agree. The seals are checked before the size, so that the size
// cannot change after it is read; every header field is read once.
func mapConnMemory(fd int) ([]byte, int, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, 0, refuse("fstat: %v", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, 0, refuse("not a regular file (mode %#o)", st.Mode)
	}
	if st.Uid != uint32(os.Geteuid()) {
		return nil, 0, refuse("owned by uid %d, not %d", st.Uid, os.Geteuid())
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil || fs.Type != unix.TMPFS_MAGIC {
		return nil, 0, refuse("not a memfd on tmpfs (file system %#x, %v)", fs.Type, err)
	}
	const need = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil || seals&need != need {
		return nil, 0, refuse("not sealed against shrinking and growing (seals %#x, %v)", seals, err)
	}
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, 0, refuse("fstat: %v", err)
	}
	size := st.Size
	if size < shmHdrSize+2*shmMinRing || size > shmHdrSize+2*shmMaxRing {
		return nil, 0, refuse("size %d out of range", size)
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, 0, refuse("mmap: %v", err)
	}
	magic := [8]byte(mem[cMagic : cMagic+8])
	version := binary.LittleEndian.Uint32(mem[cVersion:])
	hdr := binary.LittleEndian.Uint32(mem[cHdrSize:])
	capacity := binary.LittleEndian.Uint64(mem[cCap:])
	var bad error
	switch {
	case magic != connMagic:
		bad = refuse("magic %q, want %q", magic[:], connMagic[:])
	case version != shmVersion:
		bad = refuse("layout version %d, want %d", version, shmVersion)
	case hdr != shmHdrSize:
		bad = refuse("header size %d, want %d", hdr, shmHdrSize)
	case capacity < shmMinRing || capacity > shmMaxRing || capacity&(capacity-1) != 0:
		bad = refuse("ring size %d is not a power of two in [%d, %d]", capacity, shmMinRing, shmMaxRing)
	case uint64(size) != shmHdrSize+2*capacity:
		bad = refuse("size %d, want %d for rings of %d bytes", size, shmHdrSize+2*capacity, capacity)
	}
	if bad != nil {
		unix.Munmap(mem)
		return nil, 0, bad
	}
	return mem, int(capacity), nil
}

func (l *shmListener) close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.cancel()
	err := l.ul.Close()
	l.wg.Wait()
	for {
		select {
		case s := <-l.ready: // handshaken, never accepted: the dialer sees end of stream
			s.Close()
			continue
		default:
		}
		break
	}
	if rerr := l.file.Remove(); err == nil {
		err = rerr
	}
	return err
}

// dialShm connects to the listener at shm:name.
func dialShm(ctx context.Context, name string) (*shmStream, error) {
	return dialShmAt(ctx, name, 0)
}

// dialShmAt is dialShm with both rings' indices starting at start (tests
// of the 2^64 wrap use a start just below it).
func dialShmAt(ctx context.Context, name string, start uint64) (*shmStream, error) {
	if err := checkShmName(name); err != nil {
		return nil, err
	}
	addr := SchemeShm + ":" + name
	c, err := unixsock.Dial(ctx, shmseg.Path(name))
	switch {
	case err == nil:
	case errors.Is(err, syscall.ENOENT):
		return nil, fmt.Errorf("bridge: dial %s: no listener: %w", addr, syscall.ENOENT)
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("bridge: dial %s: no listener: %w", addr, syscall.ECONNREFUSED)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("bridge: dial %s: %w", addr, ctx.Err())
	default:
		return nil, fmt.Errorf("bridge: dial %s: %w", addr, err)
	}
	var mem []byte
	ok := false
	defer func() {
		if !ok {
			if mem != nil {
				unix.Munmap(mem)
			}
			c.Close()
		}
	}()
	if err := checkPeerUID(c); err != nil {
		return nil, fmt.Errorf("bridge: dial %s: %w", addr, err)
	}
	fd, mem, err := createConnMemory(name, shmDefaultRing, start)
	if err != nil {
		return nil, fmt.Errorf("bridge: dial %s: %w", addr, err)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	defer stop()
	_, _, err = c.WriteMsgUnix(shmRequest[:], unix.UnixRights(fd), nil)
	unix.Close(fd) // in flight, the request holds the file; the mapping holds its memory
	var reply [8]byte
	if err == nil {
		_, err = io.ReadFull(c, reply[:])
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("bridge: dial %s: %w", addr, ctx.Err())
	}
	if err != nil || reply != shmAccept {
		return nil, fmt.Errorf("bridge: dial %s: the listener refused the connection (%q, %v): %w", addr, reply[:], err, syscall.ECONNREFUSED)
	}
	if !stop() {
		return nil, fmt.Errorf("bridge: dial %s: %w", addr, context.Cause(ctx))
	}
	c.SetDeadline(time.Time{})
	r0, r1, err := openRings(mem, shmDefaultRing)
	if err != nil {
		return nil, fmt.Errorf("bridge: dial %s: %w", addr, err)
	}
	s, err := newShmStream(name, mem, c, r0, r1, true)
	if err != nil {
		return nil, fmt.Errorf("bridge: dial %s: %w", addr, err)
	}
	ok = true
	return s, nil
}

// checkPeerUID refuses a listener that runs as another user: /dev/shm is
// world-writable, and a socket planted there under our name must not get
// our memory.
func checkPeerUID(c *net.UnixConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	cerr := rc.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if cerr != nil {
		return cerr
	}
	if err != nil {
		return fmt.Errorf("SO_PEERCRED: %w", err)
	}
	if cred.Uid != uint32(os.Geteuid()) {
		return fmt.Errorf("the listener runs as uid %d, not %d: %w", cred.Uid, os.Geteuid(), syscall.EACCES)
	}
	return nil
}

// createConnMemory makes a connection's memory (SPEC 11.3): a memfd of
// 4096 + 2*capacity bytes, mode 0600, sealed so that neither side can
// change its size, mapped, pre-faulted and initialized (magic last).
func createConnMemory(name string, capacity, start uint64) (int, []byte, error) {
	const flags = unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING
	label := "gobridge-shm:" + name
	fd, err := unix.MemfdCreate(label, flags|unix.MFD_NOEXEC_SEAL)
	if errors.Is(err, unix.EINVAL) { // before Linux 6.3
		fd, err = unix.MemfdCreate(label, flags)
	}
	if err != nil {
		return -1, nil, os.NewSyscallError("memfd_create", err)
	}
	size := shmHdrSize + 2*int(capacity)
	fail := func(op string, err error) (int, []byte, error) {
		unix.Close(fd)
		return -1, nil, os.NewSyscallError(op, err)
	}
	if err := unix.Fchmod(fd, 0o600); err != nil {
		return fail("fchmod", err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		return fail("ftruncate", err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		return fail("fcntl F_ADD_SEALS", err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail("mmap", err)
	}
	shmseg.Populate(mem, true) // best effort: it only saves page faults
	ring.Init(mem[cRing0:cRing0+ring.CtlSize], start)
	ring.Init(mem[cRing1:cRing1+ring.CtlSize], start)
	binary.LittleEndian.PutUint32(mem[cVersion:], shmVersion)
	binary.LittleEndian.PutUint32(mem[cHdrSize:], shmHdrSize)
	binary.LittleEndian.PutUint64(mem[cCap:], capacity)
	binary.LittleEndian.PutUint32(mem[cDialerPID:], uint32(os.Getpid()))
	copy(mem[cMagic:], connMagic[:])
	return fd, mem, nil
}
