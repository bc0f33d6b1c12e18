package bridge

// The byte stream of a fifo: connection or plain named pipe (SPEC 6.6): one
// or two FIFO descriptors, and the writers' flock for a shared FIFO.

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobridge/gobridge/wire"
	"golang.org/x/sys/unix"
)

// pipeBuf is PIPE_BUF on Linux: writes up to this size to a pipe are atomic.
const pipeBuf = 4096

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

// newFIFOPairStream is a connection's duplex stream over the read end rfd
// (of the FIFO at rpath) and the write end wfd (at wpath), both
// non-blocking; name is the rendezvous FIFO's path. On failure both
// descriptors are closed.
func newFIFOPairStream(rfd int, rpath string, wfd int, wpath, name string) (*fifoStream, error) {
	r, err := fileFromFD(rfd, rpath)
	if err != nil {
		unix.Close(wfd)
		return nil, err
	}
	w, err := fileFromFD(wfd, wpath)
	if err != nil {
		r.Close()
		return nil, err
	}
	return &fifoStream{r: r, w: w, name: name}, nil
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
