package bridge

// The shm: transport (wire/SPEC.md section 11): a connection is a segment
// NAME.<n> holding two single-producer single-consumer byte rings
// (internal/ring); a listener is a rendezvous segment NAME with one request
// slot. The rings form a byte stream, so Conn's framing, deadlines, contexts
// and Poll run on it unchanged.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/gobridge/gobridge/internal/futex"
	"github.com/gobridge/gobridge/internal/ring"
	"github.com/gobridge/gobridge/internal/shmseg"
	"golang.org/x/sys/unix"
)

// ErrPeerGone: an shm: peer process died (SIGKILL, crash) without closing its
// end. It also matches syscall.ECONNRESET, what a socket reports in the same
// case. A receive returns every whole frame the peer finished first; a frame
// it was writing is never delivered.
var ErrPeerGone = fmt.Errorf("bridge: peer process is gone: %w", syscall.ECONNRESET)

// Segment kinds (SPEC 9.4) of the shm: transport, so that `gobridge shm gc`
// knows them as gobridge's.
const (
	KindShmConn   = "conn"        // one connection: header and two rings
	KindShmListen = "conn-listen" // a listener's rendezvous segment
)

// Layout (SPEC 11.1, 11.3). All integers little-endian (native on amd64 and
// arm64); futex words and indices naturally aligned.
const (
	shmHdrSize     = 4096
	shmVersion     = 1
	shmDefaultRing = 1 << 20 // bytes per direction

	// connection segment header
	cMagic       = 0  // [8]byte "GBSHMCN1"
	cVersion     = 8  // u32
	cHdrSize     = 12 // u32, offset of the first data area
	cCap         = 16 // u64, bytes per ring (power of two)
	cDialerPID   = 24 // u32
	cListenerPID = 28 // u32
	cState       = 32 // u32 futex word: 0 requested, 1 accepted
	cRing0       = 64 // control block, dialer -> listener
	cRing1       = 256
	lockListener = 0 // OFD lock byte held by the listener's end
	lockDialer   = 1 // OFD lock byte held by the dialer's end

	// rendezvous segment
	lMagic    = 0  // [8]byte "GBSHMLS1"
	lVersion  = 8  // u32
	lPID      = 16 // u32, listener pid (informational)
	lClosed   = 20 // u32, 1 once the listener closed
	lNext     = 24 // u64, last connection number handed out
	lSlot     = 32 // u64, 0 or the number of the requested connection
	lPosted   = 40 // u32 futex word, incremented by a dialer after posting
	lTaken    = 44 // u32 futex word, incremented by the listener after taking
	lockLsn   = 0  // OFD lock byte: the listener is alive
	lockDmu   = 1  // OFD lock byte: one dialer at a time uses the slot
	shmSlice  = 200 * time.Millisecond
	shmSpin   = 50 * time.Microsecond
	maxShmTag = shmseg.MaxNameLen - 21 // room for ".<n>"
)

var (
	connMagic   = [8]byte{'G', 'B', 'S', 'H', 'M', 'C', 'N', '1'}
	listenMagic = [8]byte{'G', 'B', 'S', 'H', 'M', 'L', 'S', '1'}
)

// shmMap is one mapped segment handle.
type shmMap struct {
	seg *shmseg.Segment
	mem []byte
}

func mapSegment(seg *shmseg.Segment, populate bool) (*shmMap, error) {
	size, err := seg.Size()
	if err != nil {
		seg.Close()
		return nil, err
	}
	mem, err := unix.Mmap(int(seg.File().Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		seg.Close()
		return nil, fmt.Errorf("bridge: mmap %s: %w", seg.Name(), err)
	}
	if populate {
		shmseg.Populate(mem, true) // best effort: it only saves page faults
	}
	return &shmMap{seg: seg, mem: mem}, nil
}

func (m *shmMap) u32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&m.mem[off])) }
func (m *shmMap) u64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&m.mem[off])) }

func (m *shmMap) close() error {
	err := unix.Munmap(m.mem)
	m.mem = nil
	if cerr := m.seg.Close(); err == nil {
		err = cerr
	}
	return err
}

// alive reports whether another handle holds lock byte off.
func (m *shmMap) alive(off int64) bool {
	locked, err := m.seg.ByteLocked(off)
	return err != nil || locked // when in doubt, do not declare it dead
}

// shmStream is one end of a connection: the stream a Conn runs on. It is
// also a net.Conn, for AcceptRaw and DialRaw.
type shmStream struct {
	m        *shmMap
	name     string
	in, out  *ring.Ring
	peerLock int64

	mu       sync.RWMutex // Read/Write hold it shared; Close exclusively, to unmap
	closed   atomic.Bool
	rdl, wdl atomic.Int64 // deadlines in UnixNano; 0: none
	rw, ww   ring.Waiter
	closeErr error
}

func newShmStream(m *shmMap, dialer bool) (*shmStream, error) {
	capacity := int(binary.LittleEndian.Uint64(m.mem[cCap:]))
	r0, err := ring.New(m.mem[cRing0:cRing0+ring.CtlSize], m.mem[shmHdrSize:shmHdrSize+capacity])
	if err != nil {
		return nil, err
	}
	r1, err := ring.New(m.mem[cRing1:cRing1+ring.CtlSize], m.mem[shmHdrSize+capacity:shmHdrSize+2*capacity])
	if err != nil {
		return nil, err
	}
	s := &shmStream{m: m, name: m.seg.Name(), in: r0, out: r1, peerLock: lockDialer}
	if dialer {
		s.in, s.out, s.peerLock = r1, r0, lockListener
	}
	check := func() error {
		if s.closed.Load() {
			return net.ErrClosed
		}
		if !s.m.alive(s.peerLock) {
			return ErrPeerGone
		}
		return nil
	}
	closed := func() bool { return s.closed.Load() }
	s.rw = ring.Waiter{Spin: shmSpin, Slice: shmSlice, Check: check, Closed: closed,
		Deadline: func() time.Time { return unixNano(s.rdl.Load()) }}
	s.ww = ring.Waiter{Spin: shmSpin, Slice: shmSlice, Check: check, Closed: closed,
		Deadline: func() time.Time { return unixNano(s.wdl.Load()) }}
	return s, nil
}

func unixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func (s *shmStream) Read(p []byte) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return 0, net.ErrClosed
	}
	n, err := s.in.Read(p, &s.rw)
	return n, s.mapErr(err)
}

func (s *shmStream) Write(p []byte) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return 0, net.ErrClosed
	}
	n, err := s.out.Write(p, &s.ww)
	return n, s.mapErr(err)
}

func (s *shmStream) mapErr(err error) error {
	switch {
	case err == nil, err == io.EOF:
		return err
	case errors.Is(err, ring.ErrClosed):
		return net.ErrClosed
	case errors.Is(err, ring.ErrPeerClosed):
		return fmt.Errorf("bridge: shm:%s: peer closed: %w", s.name, syscall.EPIPE)
	case errors.Is(err, ring.ErrPeerGone):
		return ErrPeerGone
	}
	return err
}

// readyNow serves Conn.Poll(0): data, end of stream or a dead peer.
func (s *shmStream) readyNow() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return true
	}
	return s.in.Readable() || !s.m.alive(s.peerLock)
}

func (s *shmStream) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.out.CloseWrite()
	s.in.CloseRead()
	s.in.InterruptReader()
	s.out.InterruptWriter()
	s.mu.Lock() // wait for Read and Write to leave the mapping
	defer s.mu.Unlock()
	s.closeErr = s.m.close()
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

// waitWord sleeps on a futex word in bounded slices until ready() holds, ctx
// ends or stop() returns an error.
func waitWord(ctx context.Context, word *uint32, ready func() bool, stop func() error) error {
	var spin = 0
	for {
		v := atomic.LoadUint32(word)
		if ready() {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := stop(); err != nil {
			return err
		}
		timeout := shmSlice / 4
		if spin < 20 { // the peer usually answers within microseconds
			timeout = 50 * time.Microsecond
			spin++
		}
		if dl, ok := ctx.Deadline(); ok {
			if left := time.Until(dl); left < timeout {
				timeout = max(left, 0)
			}
		}
		futex.Wait(word, v, timeout)
	}
}

// ctxWaker makes a futex sleeper in this process wake when ctx ends.
func ctxWaker(ctx context.Context, word *uint32) func() bool {
	// Wake, not Signal: the word may be a state another process reads. A
	// wake that comes just before the sleep is caught by the next slice.
	return context.AfterFunc(ctx, func() { futex.Wake(word, 1<<30) })
}

// A shmListener accepts shm: connections at one name.
type shmListener struct {
	name   string
	m      *shmMap
	mu     sync.RWMutex
	closed atomic.Bool
}

func listenShm(name string) (*shmListener, error) {
	if err := checkShmName(name); err != nil {
		return nil, err
	}
	if info, err := shmseg.Stat(name); err == nil && info.Kind != KindShmListen {
		return nil, fmt.Errorf("bridge: listen shm:%s: %w (a segment of kind %q has the name)", name, ErrAddrInUse, info.Kind)
	}
	seg, err := shmseg.Open(name, shmHdrSize, shmseg.Options{Kind: KindShmListen})
	if err != nil {
		if errors.Is(err, shmseg.ErrTooSmall) {
			return nil, fmt.Errorf("bridge: listen shm:%s: %w", name, ErrAddrInUse)
		}
		return nil, fmt.Errorf("bridge: listen shm:%s: %w", name, err)
	}
	if err := seg.LockByte(lockLsn); err != nil {
		seg.Close()
		if errors.Is(err, shmseg.ErrLocked) {
			return nil, fmt.Errorf("bridge: listen shm:%s: %w", name, ErrAddrInUse)
		}
		return nil, fmt.Errorf("bridge: listen shm:%s: %w", name, err)
	}
	m, err := mapSegment(seg, false)
	if err != nil {
		return nil, err
	}
	// We hold the listener lock: a header left by a dead listener is ours to
	// reset. The connection counter is kept so that stale NAME.<n> are skipped.
	next := atomic.LoadUint64(m.u64(lNext))
	if [8]byte(m.mem[lMagic:lMagic+8]) != listenMagic {
		next = 0
	}
	clear(m.mem[:64])
	atomic.StoreUint64(m.u64(lNext), next)
	binary.LittleEndian.PutUint32(m.mem[lVersion:], shmVersion)
	atomic.StoreUint32(m.u32(lPID), uint32(os.Getpid()))
	copy(m.mem[lMagic:], listenMagic[:])
	return &shmListener{name: name, m: m}, nil
}

func checkShmName(name string) error {
	if err := shmseg.ValidateName(name); err != nil {
		return fmt.Errorf("%w %q: %w", ErrBadAddress, SchemeShm+":"+name, err)
	}
	if len(name) > maxShmTag {
		return fmt.Errorf("%w %q: an shm: name has at most %d bytes", ErrBadAddress, SchemeShm+":"+name, maxShmTag)
	}
	return nil
}

func (l *shmListener) accept(ctx context.Context) (*shmStream, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed.Load() {
		return nil, fmt.Errorf("bridge: accept: %w", ErrClosed)
	}
	posted := l.m.u32(lPosted)
	defer ctxWaker(ctx, posted)()
	slot := l.m.u64(lSlot)
	for {
		err := waitWord(ctx, posted, func() bool { return atomic.LoadUint64(slot) != 0 }, func() error {
			if l.closed.Load() {
				return fmt.Errorf("bridge: accept: %w", ErrClosed)
			}
			return nil
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("bridge: accept: %w", ctx.Err())
			}
			return nil, err
		}
		n := atomic.LoadUint64(slot)
		atomic.StoreUint64(slot, 0)
		futex.Signal(l.m.u32(lTaken))
		if s := l.take(n); s != nil {
			return s, nil
		}
	}
}

// take attaches connection n; nil when its dialer is gone or it is not a
// well-formed connection segment.
func (l *shmListener) take(n uint64) *shmStream {
	name := l.name + "." + strconv.FormatUint(n, 10)
	if info, err := shmseg.Stat(name); err != nil || info.Kind != KindShmConn {
		return nil
	}
	seg, err := shmseg.Attach(name, shmHdrSize, shmseg.Options{Kind: KindShmConn})
	if err != nil {
		return nil
	}
	m, err := mapSegment(seg, false)
	if err != nil {
		return nil
	}
	capacity := binary.LittleEndian.Uint64(m.mem[cCap:])
	if [8]byte(m.mem[cMagic:cMagic+8]) != connMagic || capacity == 0 || capacity&(capacity-1) != 0 ||
		capacity > 1<<30 || uint64(len(m.mem)) < shmHdrSize+2*capacity ||
		seg.LockByte(lockListener) != nil || !m.alive(lockDialer) {
		m.close()
		return nil
	}
	s, err := newShmStream(m, false)
	if err != nil {
		m.close()
		return nil
	}
	atomic.StoreUint32(m.u32(cListenerPID), uint32(os.Getpid()))
	futex.Signal(m.u32(cState)) // 0 -> 1: accepted
	return s
}

func (l *shmListener) close() error {
	if l.closed.Swap(true) {
		return nil
	}
	atomic.StoreUint32(l.m.u32(lClosed), 1)
	futex.Wake(l.m.u32(lPosted), 1<<30) // wake Accept
	futex.Signal(l.m.u32(lTaken))       // wake dialers waiting for the slot
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m.close()
}

// dialShm connects to the listener at shm:name.
func dialShm(ctx context.Context, name string) (*shmStream, error) {
	if err := checkShmName(name); err != nil {
		return nil, err
	}
	addr := SchemeShm + ":" + name
	refused := func() error {
		return fmt.Errorf("bridge: dial %s: no listener: %w", addr, syscall.ECONNREFUSED)
	}
	if info, err := shmseg.Stat(name); err != nil {
		return nil, fmt.Errorf("bridge: dial %s: no listener: %w", addr, syscall.ENOENT)
	} else if info.Kind != KindShmListen {
		return nil, refused()
	}
	seg, err := shmseg.Attach(name, shmHdrSize, shmseg.Options{Kind: KindShmListen})
	if err != nil {
		if errors.Is(err, shmseg.ErrNotExist) {
			return nil, fmt.Errorf("bridge: dial %s: no listener: %w", addr, syscall.ENOENT)
		}
		return nil, fmt.Errorf("bridge: dial %s: %w", addr, err)
	}
	lm, err := mapSegment(seg, false)
	if err != nil {
		return nil, err
	}
	defer lm.close()
	listenerUp := func() error {
		if atomic.LoadUint32(lm.u32(lClosed)) != 0 || !lm.alive(lockLsn) {
			return refused()
		}
		return nil
	}
	if [8]byte(lm.mem[lMagic:lMagic+8]) != listenMagic {
		return nil, refused()
	}
	if err := listenerUp(); err != nil {
		return nil, err
	}
	// One dialer at a time uses the slot.
	for delay := 100 * time.Microsecond; ; delay = min(2*delay, 10*time.Millisecond) {
		err := seg.LockByte(lockDmu)
		if err == nil {
			break
		}
		if !errors.Is(err, shmseg.ErrLocked) {
			return nil, fmt.Errorf("bridge: dial %s: %w", addr, err)
		}
		if err := listenerUp(); err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bridge: dial %s: %w", addr, ctx.Err())
		case <-time.After(delay):
		}
	}
	defer seg.UnlockByte(lockDmu)
	taken, slot := lm.u32(lTaken), lm.u64(lSlot)
	stopTaken := ctxWaker(ctx, taken)
	// A dialer that died after posting leaves its request: wait until the
	// listener took it.
	err = waitWord(ctx, taken, func() bool { return atomic.LoadUint64(slot) == 0 }, listenerUp)
	stopTaken()
	if err != nil {
		return nil, dialErr(addr, ctx, err)
	}
	cm, n, err := createConn(lm, name)
	if err != nil {
		return nil, fmt.Errorf("bridge: dial %s: %w", addr, err)
	}
	s, err := newShmStream(cm, true)
	if err != nil {
		cm.close()
		return nil, err
	}
	atomic.StoreUint64(slot, n)
	futex.Signal(lm.u32(lPosted))
	state := cm.u32(cState)
	stopState := ctxWaker(ctx, state)
	err = waitWord(ctx, state, func() bool { return atomic.LoadUint32(state) != 0 }, listenerUp)
	stopState()
	if err != nil {
		// Withdraw the request if the listener has not taken it; if it has,
		// it finds our lock gone once we close, and drops the connection.
		if atomic.LoadUint64(slot) == n {
			atomic.StoreUint64(slot, 0)
		}
		s.Close()
		return nil, dialErr(addr, ctx, err)
	}
	return s, nil
}

func dialErr(addr string, ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("bridge: dial %s: %w", addr, ctx.Err())
	}
	return err
}

// createConn makes the next free NAME.<n>, initialized and locked as the
// dialer's end. The caller holds the dialer lock.
func createConn(lm *shmMap, name string) (*shmMap, uint64, error) {
	next := lm.u64(lNext)
	size := int64(shmHdrSize + 2*shmDefaultRing)
	for tries := 0; ; tries++ {
		n := atomic.LoadUint64(next) + 1
		atomic.StoreUint64(next, n)
		seg, err := shmseg.Create(name+"."+strconv.FormatUint(n, 10), size, shmseg.Options{Kind: KindShmConn})
		if errors.Is(err, shmseg.ErrExist) && tries < 1000 {
			continue // a stale connection of a dead process: gc removes it
		}
		if err != nil {
			return nil, 0, err
		}
		if err := seg.LockByte(lockDialer); err != nil {
			seg.Close()
			return nil, 0, err
		}
		m, err := mapSegment(seg, true)
		if err != nil {
			return nil, 0, err
		}
		binary.LittleEndian.PutUint32(m.mem[cVersion:], shmVersion)
		binary.LittleEndian.PutUint32(m.mem[cHdrSize:], shmHdrSize)
		binary.LittleEndian.PutUint64(m.mem[cCap:], shmDefaultRing)
		binary.LittleEndian.PutUint32(m.mem[cDialerPID:], uint32(os.Getpid()))
		copy(m.mem[cMagic:], connMagic[:])
		return m, n, nil
	}
}
