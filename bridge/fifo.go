package bridge

// The fifo: transport (wire/SPEC.md section 6.6). Two uses of named pipes:
//
//   - Connections. Listen("fifo:/p") makes the rendezvous FIFO /p; each Dial
//     makes a private pair /p.<pid>.<rand>.up and .down, asks for it with one
//     atomic request frame written to /p, and removes the pair once both ends
//     are open. Each connection is duplex and private, like a socket's. The
//     listener scans /p for requests, skipping anything else
//     (fifo_request.go), and runs their handshakes concurrently, each under
//     a deadline (fifo_handshakes.go), so that no dialer holds up another.
//   - Plain named pipes. OpenFIFOReader and OpenFIFOWriter open an existing
//     FIFO (Mkfifo, `gobridge mkfifo`) as one end of a one-way connection, as
//     Pipe(false): any number of writers, one reader, end of stream when the
//     last writer closes. Frames larger than PIPE_BUF are written under an
//     exclusive flock(2) on the FIFO, smaller ones under a shared one, so
//     that no frame lands inside another.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobridge/gobridge/internal/ofdlock"
	"github.com/gobridge/gobridge/wire"
	"golang.org/x/sys/unix"
)

// pipeBuf is PIPE_BUF on Linux: writes up to this size to a pipe are atomic.
const pipeBuf = 4096

// FIFO pair suffixes (SPEC 6.6): .up carries dialer -> listener, .down
// listener -> dialer.
const (
	fifoUp   = ".up"
	fifoDown = ".down"
)

// Mkfifo creates a named pipe at path with mode 0600 (less the umask). A FIFO
// already there and owned by this user is accepted (created is false); a path
// that is anything else, a symlink included, or a FIFO owned by another user,
// gives ErrAddrInUse and is left alone.
func Mkfifo(path string) (created bool, err error) {
	err = unix.Mkfifo(path, 0o600)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, unix.EEXIST) {
		return false, fmt.Errorf("bridge: mkfifo %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return false, fmt.Errorf("bridge: mkfifo %s: %w", path, err)
	}
	if err := checkFIFO(path, &st); err != nil {
		return false, err
	}
	return false, nil
}

// checkFIFO refuses anything but a FIFO owned by the effective uid.
func checkFIFO(path string, st *unix.Stat_t) error {
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return fmt.Errorf("%w: %s exists and is not a FIFO", ErrAddrInUse, path)
	}
	if int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%w: FIFO %s belongs to uid %d", ErrAddrInUse, path, st.Uid)
	}
	return nil
}

// openFIFO opens path without following a symlink and without blocking, and
// checks that it is a FIFO of ours. flags is O_RDONLY or O_WRONLY.
func openFIFO(path string, flags int) (int, error) {
	fd, err := unix.Open(path, flags|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := checkFIFO(path, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// openFIFOWriter opens path for writing, waiting (until ctx ends) for a reader
// to appear: a non-blocking open fails with ENXIO while there is none. alive,
// if not nil, is asked between tries, at most every 100 ms, whether the
// reader can still come; its error ends the wait.
func openFIFOWriter(ctx context.Context, path string, alive func() error) (int, error) {
	// openFIFO checks the file once it is open; this refuses a FIFO that is
	// not ours before waiting for its reader.
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	if err := checkFIFO(path, &st); err != nil {
		return -1, err
	}
	delay := 50 * time.Microsecond
	checked := time.Now()
	for {
		fd, err := openFIFO(path, unix.O_WRONLY)
		if err == nil || !errors.Is(err, unix.ENXIO) {
			return fd, err
		}
		if alive != nil && time.Since(checked) >= 100*time.Millisecond {
			if err := alive(); err != nil {
				return -1, err
			}
			checked = time.Now()
		}
		if err := sleepCtx(ctx, delay); err != nil {
			return -1, fmt.Errorf("bridge: open %s: no reader: %w", path, err)
		}
		delay = min(2*delay, 10*time.Millisecond)
	}
}

// fifoHasReader reports whether some process has the FIFO at path open for
// reading (a non-blocking open for writing fails with ENXIO when none has).
func fifoHasReader(path string) bool {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// openFIFOReaderWait opens path for reading and returns once a writer has
// opened it (a reader opened earlier would see end of stream at once); see
// openFIFOWait.
func openFIFOReaderWait(ctx context.Context, path string, alive func() error) (int, error) {
	return openFIFOWait(ctx, path, unix.O_RDONLY, alive)
}

// openFIFOWait opens path with flags, O_RDONLY or O_WRONLY, and returns
// once the other end is there. The blocking open runs in a goroutine; when
// ctx ends first, or alive (if not nil, asked every 100 ms) returns an
// error, a non-blocking open of the other direction releases it.
//
// Only the first open goes by path: an O_PATH descriptor (which opens
// nothing, so no peer sees this end early), checked, whose /proc/self/fd
// link the blocking open and the release then open, so that both reach the
// same FIFO whatever becomes of the path meanwhile (a FIFO unlinked under a
// blocked open could not be released by path).
func openFIFOWait(ctx context.Context, path string, flags int, alive func() error) (int, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return -1, fmt.Errorf("bridge: open %s: %w", path, err)
	}
	if err := checkFIFO(path, &st); err != nil {
		return -1, err
	}
	anchor, err := openFIFO(path, unix.O_PATH)
	if err != nil {
		return -1, fmt.Errorf("bridge: %w", err)
	}
	defer unix.Close(anchor) // every return below comes after the opener's
	self := "/proc/self/fd/" + strconv.Itoa(anchor)
	release, missing := unix.O_WRONLY, "no writer"
	if flags == unix.O_WRONLY {
		release, missing = unix.O_RDONLY, "no reader"
	}
	type result struct {
		fd  int
		err error
	}
	done := make(chan result, 1)
	go func() {
		for {
			fd, err := unix.Open(self, flags|unix.O_CLOEXEC, 0)
			if err == unix.EINTR {
				continue
			}
			done <- result{fd, err}
			return
		}
	}()
	var tick <-chan time.Time
	if alive != nil {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		tick = t.C
	}
	var cause error
	for cause == nil {
		select {
		case r := <-done:
			if r.err != nil {
				return -1, fmt.Errorf("bridge: open %s: %w", path, r.err)
			}
			return r.fd, nil
		case <-ctx.Done():
			cause = fmt.Errorf("%s: %w", missing, ctx.Err())
		case <-tick:
			cause = alive()
		}
	}
	for { // release the blocked open, then discard what it opened
		other, err := unix.Open(self, release|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		select {
		case r := <-done:
			if err == nil {
				unix.Close(other)
			}
			if r.err == nil {
				unix.Close(r.fd)
			}
			return -1, fmt.Errorf("bridge: open %s: %w", path, cause)
		case <-time.After(time.Millisecond):
			if err == nil {
				unix.Close(other)
			}
		}
	}
}

// fifoListenerMark is the byte of a rendezvous FIFO on which its live
// listener holds an OFD write lock (SPEC 6.6). OFD locks and the writers'
// flock(2) locks do not interact, so no writer ever waits on the mark.
const fifoListenerMark = 0

// checkNotRendezvous refuses, for a plain-pipe reader or writer, the FIFO
// open on fd when it is a live fifo: listener's rendezvous (SPEC 6.6).
func checkNotRendezvous(fd int, path string) error {
	held, err := ofdlock.Held(uintptr(fd), fifoListenerMark)
	if err != nil {
		return fmt.Errorf("bridge: open %s: %w", path, err)
	}
	if held {
		return fmt.Errorf("bridge: open %s: %w: it is a fifo: listener's rendezvous, not a plain pipe", path, ErrAddrInUse)
	}
	return nil
}

// fileFromFD wraps a non-blocking descriptor so that Go's poller (and
// deadlines) work on it.
func fileFromFD(fd int, name string) (*os.File, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// OpenFIFOReader opens the named pipe at path (made with Mkfifo) as a
// receive-only Conn, waiting until ctx ends for a writer to open it. Recv
// returns io.EOF once the last writer has closed. A live fifo: listener's
// rendezvous FIFO is refused with ErrAddrInUse.
func OpenFIFOReader(ctx context.Context, path string, opts ...ConnOption) (*Conn, error) {
	fd, err := openFIFOReaderWait(ctx, path, nil)
	if err != nil {
		return nil, err
	}
	if err := checkNotRendezvous(fd, path); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f, err := fileFromFD(fd, path)
	if err != nil {
		return nil, err
	}
	s := &fifoStream{r: f, name: path}
	return newConn(s, true, false, newConnConfig(opts)), nil
}

// OpenFIFOWriter opens the named pipe at path as a send-only Conn, waiting
// until ctx ends for a reader. Any number of writers may share the FIFO:
// frames up to PIPE_BUF (4096 bytes with their header), atomic in the
// kernel, are written under a shared flock(2) on the FIFO, larger ones,
// which the kernel may split, under an exclusive one; every gobridge writer
// does this (Python's too), so frames never interleave. When the reader has
// gone, Send fails with ErrBrokenPipe. A live fifo: listener's rendezvous
// FIFO is refused at once with ErrAddrInUse.
func OpenFIFOWriter(ctx context.Context, path string, opts ...ConnOption) (*Conn, error) {
	cfg := newConnConfig(opts)
	if cfg.writeBuffer > 0 {
		return nil, errors.New("bridge: OpenFIFOWriter: WithWriteBuffer does not apply to a FIFO that other writers may share")
	}
	fd, err := openFIFOWriter(ctx, path, nil)
	if err != nil {
		return nil, err
	}
	if err := checkNotRendezvous(fd, path); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f, err := fileFromFD(fd, path)
	if err != nil {
		return nil, err
	}
	s := &fifoStream{w: f, name: path, lock: true}
	return newConn(s, false, true, cfg), nil
}

// fifoStream is a Conn's stream over one or two FIFO descriptors. It is a
// net.Conn so that DialRaw and AcceptRaw can return it.
type fifoStream struct {
	r, w *os.File
	name string

	// lock: frames are written under flock on w: LOCK_EX above PIPE_BUF,
	// LOCK_SH up to it.
	lock   bool
	rem    int64        // bytes of the frame being written still to go
	held   bool         // the flock is held
	wdl    atomic.Int64 // write deadline, unix nanoseconds (0: none)
	closed atomic.Bool
}

var errSplitHeader = errors.New("bridge: fifo: frame header split across writes")

func (s *fifoStream) Read(p []byte) (int, error) {
	if s.r == nil {
		return 0, ErrNotReadable
	}
	return s.r.Read(p)
}

// Write writes p. With lock set it follows the frames in the byte stream
// (Conn writes each frame's header at the start of a Write) and holds the
// flock from the first byte of a frame larger than PIPE_BUF to its last.
func (s *fifoStream) Write(p []byte) (int, error) {
	if s.w == nil {
		return 0, ErrNotWritable
	}
	if !s.lock {
		return s.w.Write(p)
	}
	written := 0
	for len(p) > 0 {
		if s.rem == 0 {
			n, hlen, err := wire.ParseHeader(p)
			if errors.Is(err, wire.ErrShortHeader) {
				return written, errSplitHeader
			}
			if err != nil {
				return written, err
			}
			total := int64(hlen) + n
			// A frame up to PIPE_BUF is one atomic write, but only between
			// writes: a larger frame goes in pieces whenever the pipe
			// fills, so small frames hold the flock shared, and cannot land
			// between the pieces of a large one, which holds it exclusive.
			how := unix.LOCK_SH
			if total > pipeBuf {
				how = unix.LOCK_EX
			}
			if err := s.acquire(how); err != nil {
				return written, err
			}
			s.rem = total
		}
		k := int(min(int64(len(p)), s.rem))
		m, err := s.w.Write(p[:k])
		written += m
		s.rem -= int64(m)
		p = p[m:]
		if err != nil {
			s.rem = 0 // the frame is cut short; Conn refuses further sends
			s.release()
			return written, err
		}
		if s.rem == 0 {
			s.release()
		}
	}
	return written, nil
}

// acquire takes the writers' flock (how: LOCK_SH or LOCK_EX), polling so
// that the write deadline (and with it a Send's ctx) and Close interrupt the
// wait.
func (s *fifoStream) acquire(how int) error {
	fd := int(s.w.Fd())
	delay := 20 * time.Microsecond
	for {
		err := unix.Flock(fd, how|unix.LOCK_NB)
		if err == nil {
			s.held = true
			return nil
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			return &os.PathError{Op: "flock", Path: s.name, Err: err}
		}
		if s.closed.Load() {
			return os.ErrClosed
		}
		if dl := s.wdl.Load(); dl != 0 && time.Now().UnixNano() >= dl {
			return os.ErrDeadlineExceeded
		}
		time.Sleep(delay)
		delay = min(2*delay, time.Millisecond)
	}
}

func (s *fifoStream) release() {
	if s.held {
		unix.Flock(int(s.w.Fd()), unix.LOCK_UN)
		s.held = false
	}
}

func (s *fifoStream) Close() error {
	s.closed.Store(true)
	var err error
	if s.r != nil {
		err = s.r.Close()
	}
	if s.w != nil {
		if werr := s.w.Close(); err == nil {
			err = werr
		}
	}
	return err
}

func (s *fifoStream) SetDeadline(t time.Time) error {
	if err := s.SetReadDeadline(t); err != nil {
		return err
	}
	return s.SetWriteDeadline(t)
}

func (s *fifoStream) SetReadDeadline(t time.Time) error {
	if s.r == nil {
		return nil
	}
	return s.r.SetReadDeadline(t)
}

func (s *fifoStream) SetWriteDeadline(t time.Time) error {
	if s.w == nil {
		return nil
	}
	if t.IsZero() {
		s.wdl.Store(0)
	} else {
		s.wdl.Store(t.UnixNano())
	}
	return s.w.SetWriteDeadline(t)
}

// SyscallConn gives the read descriptor (Poll, File), or the write one for
// a send-only stream.
func (s *fifoStream) SyscallConn() (syscall.RawConn, error) {
	if s.r != nil {
		return s.r.SyscallConn()
	}
	return s.w.SyscallConn()
}

type fifoAddr string

func (a fifoAddr) Network() string { return SchemeFIFO }
func (a fifoAddr) String() string  { return string(a) }

func (s *fifoStream) LocalAddr() net.Addr  { return fifoAddr(s.name) }
func (s *fifoStream) RemoteAddr() net.Addr { return fifoAddr(s.name) }

// fifoHandshakeTimeout bounds each accept handshake: from the listener
// taking a request to the dialer opening its .up FIFO (SPEC 6.6).
const fifoHandshakeTimeout = 5 * time.Second

// fifoMaxPending is how many handshakes a listener runs at once; more
// requests wait in the rendezvous FIFO until one finishes.
const fifoMaxPending = 64

// fifoReadChunk is how much the listener reads from its rendezvous at once.
const fifoReadChunk = 16 << 10

// fifoListener owns a rendezvous FIFO (SPEC 6.6). A goroutine reads it and
// hands the requests it finds to accept, which runs their handshakes
// concurrently and returns whichever completes first.
type fifoListener struct {
	path, dir, base string
	ident           [2]uint64 // dev, ino of the FIFO it created or adopted
	rf              *os.File  // the rendezvous FIFO's read end
	keep            *os.File  // a write end, holding the listener mark; reads never see EOF

	reqs   chan fifoRequest
	hs     *pendingHandshakes[string, *fifoStream]
	done   chan struct{} // closed by close
	reader sync.WaitGroup

	mu   sync.Mutex // one accept at a time
	rerr error      // the error that stopped the reader goroutine
}

// A fifoRequest is what the reader goroutine hands to accept: a requested
// name, or the error that stopped it.
type fifoRequest struct {
	name string
	err  error
}

// listenFIFO makes (or adopts) the rendezvous FIFO at path and holds an OFD
// write lock on its byte fifoListenerMark for as long as it listens: a
// second listener, in any process, gets ErrAddrInUse, and plain-pipe readers
// and writers refuse the FIFO; a dead listener's lock is gone with it.
func listenFIFO(path string) (*fifoListener, error) {
	if _, err := Mkfifo(path); err != nil {
		return nil, err
	}
	rfd, err := openFIFO(path, unix.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("bridge: listen fifo:%s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(rfd, &st); err != nil {
		unix.Close(rfd)
		return nil, err
	}
	wfd, err := openFIFO(path, unix.O_WRONLY)
	if err != nil {
		unix.Close(rfd)
		return nil, fmt.Errorf("bridge: listen fifo:%s: %w", path, err)
	}
	if ok, err := ofdlock.TryLock(uintptr(wfd), fifoListenerMark); !ok {
		unix.Close(rfd)
		unix.Close(wfd)
		if err != nil {
			return nil, fmt.Errorf("bridge: listen fifo:%s: %w", path, err)
		}
		return nil, fmt.Errorf("%w: fifo:%s has a live listener", ErrAddrInUse, path)
	}
	rf, err := fileFromFD(rfd, path)
	if err != nil {
		unix.Close(wfd)
		return nil, err
	}
	l := &fifoListener{
		path:  path,
		dir:   filepath.Dir(path),
		base:  filepath.Base(path),
		ident: [2]uint64{uint64(st.Dev), st.Ino},
		rf:    rf,
		keep:  os.NewFile(uintptr(wfd), path),
		reqs:  make(chan fifoRequest),
		hs: newPendingHandshakes[string](fifoMaxPending, fifoHandshakeTimeout,
			func(s *fifoStream) { s.Close() }),
		done: make(chan struct{}),
	}
	l.reader.Add(1)
	go l.readRequests()
	return l, nil
}

// readRequests reads the rendezvous FIFO until close and hands each request
// it finds to accept; garbage is skipped (fifoRequestScanner).
func (l *fifoListener) readRequests() {
	defer l.reader.Done()
	scan := newFIFORequestScanner(l.base)
	buf := make([]byte, fifoReadChunk)
	var names []string
	for {
		n, err := l.rf.Read(buf)
		names = scan.feed(buf[:n], names[:0])
		for _, name := range names {
			select {
			case l.reqs <- fifoRequest{name: name}:
			case <-l.done:
				return
			}
		}
		if err != nil {
			select {
			case l.reqs <- fifoRequest{err: err}:
			case <-l.done:
			}
			return
		}
	}
}

// accept waits for the first handshake to complete, starting one for each
// request that comes meanwhile. A handshake started by one accept call may
// complete in a later one.
func (l *fifoListener) accept(ctx context.Context) (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		select {
		case <-l.done:
			return nil, fmt.Errorf("bridge: accept: %w", ErrClosed)
		default:
		}
		if l.rerr != nil {
			return nil, fmt.Errorf("bridge: accept fifo:%s: %w", l.path, l.rerr)
		}
		reqs := l.reqs
		if l.hs.full() {
			reqs = nil // the next request waits for a handshake to finish
		}
		select {
		case <-l.done:
			return nil, fmt.Errorf("bridge: accept: %w", ErrClosed)
		case <-ctx.Done():
			return nil, fmt.Errorf("bridge: accept: %w", ctx.Err())
		case r := <-l.hs.finished():
			if r.Err == nil {
				return r.Value, nil
			}
		case req := <-reqs:
			if req.err != nil {
				l.rerr = req.err
				continue
			}
			base := filepath.Join(l.dir, req.name)
			l.hs.start(req.name, func(ctx context.Context) (*fifoStream, error) {
				return l.openPair(ctx, base)
			})
		}
	}
}

// openPair opens the write end of .down first (the dialer holds its read end
// before it asks), then waits, until ctx ends, for the dialer to open .up
// for writing: a read end with no writer would see end of stream at once.
// The dialer then removes both names. A dialer that dies in between is
// noticed by its .down losing its reader. On failure the pair is removed.
func (l *fifoListener) openPair(ctx context.Context, base string) (*fifoStream, error) {
	wfd, err := openFIFO(base+fifoDown, unix.O_WRONLY)
	if err != nil {
		removeFIFOPair(base)
		return nil, err
	}
	rfd, err := openFIFOReaderWait(ctx, base+fifoUp, func() error {
		if !hasReader(wfd) {
			return errDialerGone
		}
		return nil
	})
	if err != nil {
		unix.Close(wfd)
		removeFIFOPair(base)
		return nil, err
	}
	r, err := fileFromFD(rfd, base+fifoUp)
	if err != nil {
		unix.Close(wfd)
		return nil, err
	}
	w, err := fileFromFD(wfd, base+fifoDown)
	if err != nil {
		r.Close()
		return nil, err
	}
	return &fifoStream{r: r, w: w, name: l.path}, nil
}

var errDialerGone = errors.New("bridge: the dialer is gone")

// removeFIFOPair removes a pair's names, where they are FIFOs of ours.
func removeFIFOPair(base string) {
	for _, name := range []string{base + fifoUp, base + fifoDown} {
		var st unix.Stat_t
		if unix.Lstat(name, &st) == nil && checkFIFO(name, &st) == nil {
			os.Remove(name)
		}
	}
}

// hasReader reports whether the FIFO open for writing on fd still has a
// reader (poll reports POLLERR on a write end whose readers are all gone).
func hasReader(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	n, err := unix.Poll(fds, 0)
	return err != nil || n == 0 || fds[0].Revents&unix.POLLERR == 0
}

// close stops listening, ends the handshakes in progress (removing their
// pairs) and removes the rendezvous FIFO if it is still the one this
// listener held.
func (l *fifoListener) close() error {
	var st unix.Stat_t
	if unix.Lstat(l.path, &st) == nil && uint64(st.Dev) == l.ident[0] && st.Ino == l.ident[1] {
		os.Remove(l.path)
	}
	close(l.done)
	err := l.rf.Close()
	l.reader.Wait()
	l.hs.close()
	l.keep.Close()
	return err
}

// dialFIFO connects to the listener of the rendezvous FIFO at path. A FIFO
// with no listener yet is waited for until ctx ends, as opening a FIFO does.
func dialFIFO(ctx context.Context, path string) (net.Conn, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return nil, fmt.Errorf("bridge: dial fifo:%s: no listener: %w", path, err)
	}
	if err := checkFIFO(path, &st); err != nil {
		return nil, err
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	name := filepath.Base(path) + "." + strconv.Itoa(os.Getpid()) + "." + hex.EncodeToString(rnd[:])
	base := filepath.Join(filepath.Dir(path), name)
	var fds []int
	cleanup := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
		os.Remove(base + fifoUp)
		os.Remove(base + fifoDown)
	}
	fail := func(err error) (net.Conn, error) {
		cleanup()
		return nil, fmt.Errorf("bridge: dial fifo:%s: %w", path, err)
	}
	for _, suffix := range []string{fifoUp, fifoDown} {
		if err := unix.Mkfifo(base+suffix, 0o600); err != nil {
			return fail(err)
		}
	}
	down, err := openFIFO(base+fifoDown, unix.O_RDONLY)
	if err != nil {
		return fail(err)
	}
	fds = append(fds, down)
	if err := sendFIFORequest(ctx, path, name); err != nil {
		return fail(err)
	}
	// The listener has the request once it is read. The blocking open of .up
	// returns as soon as the listener opens it (no polling delay); a
	// listener that dies before that leaves the rendezvous FIFO without a
	// reader, one that gives up on the handshake removes the pair.
	up, err := openFIFOWait(ctx, base+fifoUp, unix.O_WRONLY, func() error {
		if !fifoHasReader(path) {
			return ErrPeerGone
		}
		var st unix.Stat_t
		if unix.Lstat(base+fifoUp, &st) == unix.ENOENT {
			return errFIFOHandshakeDropped
		}
		return nil
	})
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist) || errors.Is(err, errFIFOHandshakeDropped):
			err = errFIFOHandshakeDropped
		case errors.Is(err, ErrPeerGone):
			err = ErrPeerGone
		case ctx.Err() != nil:
			err = fmt.Errorf("the listener did not answer: %w", ctx.Err())
		}
		return fail(err)
	}
	fds = append(fds, up)
	os.Remove(base + fifoUp)
	os.Remove(base + fifoDown)
	r, err := fileFromFD(down, base+fifoDown)
	if err != nil {
		unix.Close(up)
		return nil, err
	}
	w, err := fileFromFD(up, base+fifoUp)
	if err != nil {
		r.Close()
		return nil, err
	}
	return &fifoStream{r: r, w: w, name: path}, nil
}

// errFIFOHandshakeDropped: the listener took the request but removed the
// pair before the dialer opened it (its handshake deadline passed, or it
// closed).
var errFIFOHandshakeDropped = fmt.Errorf("the listener dropped the handshake: %w", syscall.ECONNREFUSED)

// sendFIFORequest writes one frame holding name (a msgpack str) to the
// rendezvous FIFO, in one write of at most PIPE_BUF bytes: atomic, however
// many dialers write at once.
func sendFIFORequest(ctx context.Context, path, name string) error {
	frame, err := fifoRequestFrame(name)
	if err != nil {
		return err
	}
	fd, err := openFIFOWriter(ctx, path, nil)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("no listener: %w", ctx.Err())
		}
		return err
	}
	defer unix.Close(fd)
	delay := 50 * time.Microsecond
	for {
		_, err := unix.Write(fd, frame)
		if err == nil {
			return nil
		}
		if err != unix.EAGAIN && err != unix.EINTR {
			return err
		}
		if err := sleepCtx(ctx, delay); err != nil { // the listener's FIFO is full
			return fmt.Errorf("the listener is not taking requests: %w", err)
		}
		delay = min(2*delay, 10*time.Millisecond)
	}
}
