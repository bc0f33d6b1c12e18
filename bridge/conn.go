package bridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobridge/gobridge/wire"
	"golang.org/x/sys/unix"
)

// stream is what a Conn runs on: a net.Conn (sockets) or an *os.File (pipes).
type stream interface {
	io.ReadWriteCloser
	SetDeadline(t time.Time) error
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
	SyscallConn() (syscall.RawConn, error)
}

const (
	readBufSize = 64 << 10 // bytes read per system call, at most
	smallFrame  = 64 << 10 // payloads up to this go out in one write with their header
)

// aLongTimeAgo is a deadline in the past, to interrupt blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// A Conn is one end of a gobridge connection: the Go counterpart of
// multiprocessing.connection.Connection. It carries frames (SPEC section 2)
// whose payloads are msgpack objects (section 3).
//
// One goroutine may receive while another sends. Concurrent Sends are
// serialized, as are concurrent receives, so frames never interleave.
//
// Deadlines work as on net.Conn. A receive interrupted by a deadline or a
// cancelled context keeps what it read and resumes the same frame next time.
// A send interrupted after writing part of a frame leaves the peer mid-frame:
// like crypto/tls, the Conn then refuses further sends with the same error.
type Conn struct {
	s        stream
	addr     string // as the caller gave it, for errors; "" for an unnamed end
	readable bool
	writable bool

	rmu  sync.Mutex
	br   *bufio.Reader
	fr   *wire.Reader
	rbuf []byte // Recv's payload buffer, reused: Unmarshal keeps no reference to it

	codec wire.Codec // WithCodec's; nil: msgpack through enc and wire.Unmarshal

	wmu     sync.Mutex
	enc     *wire.Encoder
	wbuf    []byte
	werr    error       // sticky: a frame was cut short
	wcap    int         // WithWriteBuffer's size; 0: every send is written at once
	batch   []byte      // frames sent but not yet written (WithWriteBuffer)
	pending atomic.Bool // len(batch) > 0, for receives to check without wmu

	dmu            sync.Mutex // guards the user's deadlines, restored after ctx and Poll
	readDeadline   time.Time
	writeDeadline  time.Time
	maxFrame       int64
	closeOnce      sync.Once
	closeErr       error
	closed         atomic.Bool
	unreadableErr  atomic.Pointer[error] // CPython's _bad_message_length: set after a framing error
	unreadableOnce sync.Once
}

func newConn(s stream, readable, writable bool, cfg connConfig) *Conn {
	c := &Conn{s: s, readable: readable, writable: writable, maxFrame: cfg.maxFrame, codec: cfg.codec}
	if readable {
		c.br = bufio.NewReaderSize(s, readBufSize)
		c.fr = wire.NewReader(c.br, cfg.maxFrame)
	}
	if writable {
		c.enc = wire.NewEncoder()
		if c.wcap = cfg.writeBuffer; c.wcap > 0 {
			c.batch = make([]byte, 0, c.wcap)
		}
	}
	return c
}

// NewConn returns a Conn that carries frames over nc (any stream socket, for
// example one from a Listener's AcceptRaw). The Conn owns nc.
func NewConn(nc net.Conn, opts ...ConnOption) (*Conn, error) {
	s, ok := nc.(stream)
	if !ok {
		return nil, fmt.Errorf("bridge: NewConn: %T has no SyscallConn method", nc)
	}
	return newConn(s, true, true, newConnConfig(opts)), nil
}

// Readable reports whether the Conn can receive (false for the send end of a
// one-way Pipe).
func (c *Conn) Readable() bool { return c.readable }

// Writable reports whether the Conn can send.
func (c *Conn) Writable() bool { return c.writable }

// MaxFrameSize returns the largest payload the Conn sends or receives.
func (c *Conn) MaxFrameSize() int64 { return c.maxFrame }

// Send encodes v as one msgpack object (SPEC section 3), or with the codec
// given by WithCodec, and sends it.
func (c *Conn) Send(v any) error { return c.SendContext(context.Background(), v) }

// SendContext is Send that gives up when ctx is done.
func (c *Conn) SendContext(ctx context.Context, v any) error {
	if err := c.checkWrite(); err != nil {
		return err
	}
	if c.codec != nil {
		p, err := c.codec.Marshal(v)
		if err != nil {
			return err
		}
		c.wmu.Lock()
		defer c.wmu.Unlock()
		return c.writeFrame(ctx, p)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	p, err := c.enc.Marshal(v)
	if err != nil {
		return err
	}
	return c.writeFrame(ctx, p)
}

// SendBytes sends p as one frame.
func (c *Conn) SendBytes(p []byte) error { return c.SendBytesContext(context.Background(), p) }

// SendBytesContext is SendBytes that gives up when ctx is done.
func (c *Conn) SendBytesContext(ctx context.Context, p []byte) error {
	if err := c.checkWrite(); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeFrame(ctx, p)
}

// writeFrame writes header and payload, or adds them to the batch; c.wmu is
// held.
func (c *Conn) writeFrame(ctx context.Context, p []byte) error {
	if c.werr != nil {
		return c.werr
	}
	if err := wire.CheckSize(int64(len(p)), c.maxFrame); err != nil {
		return err
	}
	if c.wcap > 0 {
		need := wire.HeaderSize(int64(len(p))) + len(p)
		if len(c.batch)+need > c.wcap {
			if err := c.flushLocked(ctx); err != nil {
				return err
			}
		}
		if need <= c.wcap {
			if len(c.batch) == 0 {
				c.pending.Store(true) // once per batch: an atomic store is an XCHG
			}
			c.batch = wire.AppendHeader(c.batch, int64(len(p)))
			c.batch = append(c.batch, p...)
			return nil
		}
	}
	c.wbuf = wire.AppendHeader(c.wbuf[:0], int64(len(p)))
	total := int64(len(c.wbuf) + len(p))
	var n int64
	var err error
	if ctx.Done() == nil { // no closure to allocate on the common path
		n, err = c.writeRaw(p)
	} else {
		err = c.withContext(ctx, c.s.SetWriteDeadline, &c.writeDeadline, func() error {
			var err error
			n, err = c.writeRaw(p)
			return err
		})
	}
	if err == nil {
		return nil
	}
	err = ioError("send", c.addr, err, true)
	if n > 0 && n < total {
		c.werr = c.cutShort(err, fmt.Sprintf("interrupted after %d of %d bytes of a frame", n, total))
		return c.werr
	}
	return err
}

// Flush writes the frames that WithWriteBuffer holds back. It returns at
// once when nothing is waiting.
func (c *Conn) Flush() error { return c.FlushContext(context.Background()) }

// FlushContext is Flush that gives up when ctx is done. Receives and Poll
// call it first, so that a request still batched never waits for its own
// reply, and return its error. When ctx or the
// write deadline ends it before any byte is written, the frames stay batched
// for the next Flush; after part of the batch was written the Conn refuses
// further sends (see Conn), and after another error (a broken pipe) the
// frames are dropped.
func (c *Conn) FlushContext(ctx context.Context) error {
	if !c.pending.Load() { // inlined into every receive: the rest is a call
		return nil
	}
	return c.flush(ctx)
}

func (c *Conn) flush(ctx context.Context) error {
	if err := c.checkWrite(); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.flushLocked(ctx)
}

// Buffered returns how many bytes of frames WithWriteBuffer holds back.
func (c *Conn) Buffered() int {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return len(c.batch)
}

// flushLocked writes the batch; c.wmu is held.
func (c *Conn) flushLocked(ctx context.Context) error {
	if len(c.batch) == 0 {
		return nil
	}
	if c.werr != nil {
		return c.werr
	}
	var n int
	var err error
	if ctx.Done() == nil {
		n, err = c.s.Write(c.batch)
	} else {
		err = c.withContext(ctx, c.s.SetWriteDeadline, &c.writeDeadline, func() error {
			var err error
			n, err = c.s.Write(c.batch)
			return err
		})
	}
	if err == nil {
		c.batch = c.batch[:0]
		c.pending.Store(false)
		return nil
	}
	err = ioError("send", c.addr, err, true)
	if n > 0 {
		c.werr = c.cutShort(err, fmt.Sprintf("interrupted after %d of %d batched bytes", n, len(c.batch)))
	}
	if n > 0 || !(errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil) {
		// Only a deadline or ctx leaves the batch for a later Flush: after
		// any other error (a broken pipe) its frames can never go, and
		// receives must not fail on them again.
		c.batch = c.batch[:0]
		c.pending.Store(false)
	}
	if c.werr != nil {
		return c.werr
	}
	return err
}

// cutShort is the sticky error of a send that wrote part of a frame: err (an
// OpError from ioError) with what was written and what it means.
func (c *Conn) cutShort(err error, what string) error {
	cause := err
	var oe *OpError
	if errors.As(err, &oe) {
		cause = oe.Err
	}
	return &OpError{Op: "send", Addr: c.addr, Err: withText(what+"; the connection can no longer send: "+causeText(cause), cause)}
}

// writeRaw writes the header in c.wbuf and payload p to the stream.
func (c *Conn) writeRaw(p []byte) (int64, error) {
	if len(p) <= smallFrame { // one write of header and payload
		c.wbuf = append(c.wbuf, p...)
		k, err := c.s.Write(c.wbuf)
		return int64(k), err
	}
	bufs := net.Buffers{c.wbuf, p} // writev: no copy of a large payload
	return bufs.WriteTo(c.s)
}

// Recv receives one message and decodes it into v, a non-nil pointer
// (see wire.Unmarshal for the shapes a *any receives); any other v gives
// ErrBadTarget before anything is read. At a clean end of stream it returns
// io.EOF. A payload that does not decode gives an error matching ErrDecode
// and leaves the Conn usable: the next Recv returns the next message. Other
// errors (framing, I/O) leave the Conn unable to receive.
func (c *Conn) Recv(v any) error { return c.RecvContext(context.Background(), v) }

// RecvContext is Recv that gives up when ctx is done.
func (c *Conn) RecvContext(ctx context.Context, v any) error {
	if err := wire.CheckTarget(v); err != nil {
		return err
	}
	if err := c.checkRead(); err != nil {
		return err
	}
	if err := c.FlushContext(ctx); err != nil {
		return err
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	// The payload goes into c.rbuf and is decoded before the next receive can
	// reuse it: Unmarshal copies every string and byte slice it keeps.
	resumed := c.fr.InFrame() // its buffer is an earlier call's, maybe a caller's
	p, err := c.readFrameLocked(ctx, c.rbuf)
	if err != nil {
		if c.fr.InFrame() {
			// The frame resumes into c.rbuf, and may then be returned by
			// RecvBytes: the buffer is no longer ours to reuse.
			c.rbuf = nil
		}
		return err
	}
	if !resumed && cap(p) <= maxRecvBuf {
		c.rbuf = p[:0]
	}
	if c.codec != nil {
		return c.codec.Unmarshal(p, v)
	}
	return wire.Unmarshal(p, v)
}

// maxRecvBuf bounds the payload buffer a Conn keeps between Recvs.
const maxRecvBuf = 64 << 10

// RecvBytes receives one frame and returns its payload.
func (c *Conn) RecvBytes() ([]byte, error) { return c.recvFrame(context.Background(), nil) }

// RecvBytesContext is RecvBytes that gives up when ctx is done.
func (c *Conn) RecvBytesContext(ctx context.Context) ([]byte, error) { return c.recvFrame(ctx, nil) }

// RecvBytesInto receives one frame into buf when it fits (buf[:n] is
// returned, no allocation), else into a new slice.
func (c *Conn) RecvBytesInto(ctx context.Context, buf []byte) ([]byte, error) {
	return c.recvFrame(ctx, buf)
}

func (c *Conn) recvFrame(ctx context.Context, dst []byte) ([]byte, error) {
	if err := c.checkRead(); err != nil {
		return nil, err
	}
	if err := c.FlushContext(ctx); err != nil {
		return nil, err
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return c.readFrameLocked(ctx, dst)
}

// readFrameLocked reads one frame into dst when it fits; c.rmu is held.
func (c *Conn) readFrameLocked(ctx context.Context, dst []byte) ([]byte, error) {
	var p []byte
	var err error
	if ctx.Done() == nil { // no closure to allocate on the common path
		p, err = c.fr.ReadFrame(dst)
	} else {
		err = c.withContext(ctx, c.s.SetReadDeadline, &c.readDeadline, func() error {
			var err error
			p, err = c.fr.ReadFrame(dst)
			return err
		})
	}
	if err == nil {
		return p, nil
	}
	if c.fr.Err() != nil { // the stream is out of step: stop reading, as CPython does
		c.makeUnreadable(err)
	}
	if errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	return nil, ioError("recv", c.addr, err, false)
}

// makeUnreadable follows CPython's _bad_message_length: a duplex Conn stays
// open for sending, a receive-only one is closed.
func (c *Conn) makeUnreadable(err error) {
	c.unreadableOnce.Do(func() {
		c.unreadableErr.Store(&err)
		if !c.writable {
			c.Close()
		}
	})
}

// Poll reports whether a message (or end of stream) can be received without
// blocking, waiting up to timeout; a negative timeout waits indefinitely.
func (c *Conn) Poll(timeout time.Duration) (bool, error) {
	if timeout < 0 {
		return c.PollContext(context.Background())
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.PollContext(ctx)
}

// PollContext waits until a message (or end of stream) can be received or
// ctx is done; it returns false, nil when ctx ends first.
func (c *Conn) PollContext(ctx context.Context) (bool, error) {
	if err := c.checkRead(); err != nil {
		return false, err
	}
	if err := c.FlushContext(ctx); err != nil {
		return false, err
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.br.Buffered() > 0 {
		return true, nil
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return c.pollNow()
	}
	err := c.withContext(ctx, c.s.SetReadDeadline, &c.readDeadline, func() error {
		_, err := c.br.Peek(1)
		return err
	})
	switch {
	case err == nil, errors.Is(err, io.EOF):
		return true, nil
	case ctx.Err() != nil && (errors.Is(err, ctx.Err()) || errors.Is(err, os.ErrDeadlineExceeded)):
		return false, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return false, err // the Conn's own read deadline passed
	}
	return true, nil // an error is ready to be received
}

// pollNow asks the kernel whether the descriptor is readable, without waiting.
// A stream without a descriptor (shm:) answers itself.
func (c *Conn) pollNow() (bool, error) {
	if p, ok := c.s.(interface{ readyNow() bool }); ok {
		return p.readyNow(), nil
	}
	rc, err := c.s.SyscallConn()
	if err != nil {
		return false, ioError("poll", c.addr, err, false)
	}
	ready := false
	cerr := rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(fds, 0)
			if err == unix.EINTR {
				continue
			}
			ready = err == nil && n > 0
			return
		}
	})
	if cerr != nil {
		return false, ioError("poll", c.addr, cerr, false)
	}
	return ready, nil
}

// withContext runs op with the deadline set by SetReadDeadline or
// SetWriteDeadline, shortened by ctx, and returns ctx.Err() when ctx ended
// the operation. user is the deadline the caller set, restored afterwards.
func (c *Conn) withContext(ctx context.Context, set func(time.Time) error, user *time.Time, op func() error) error {
	if ctx.Done() == nil {
		return op()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		set(aLongTimeAgo)
		close(fired)
	})
	err := op()
	if stop() {
		return err
	}
	<-fired // ctx ended during op: put the caller's deadline back
	c.dmu.Lock()
	set(*user)
	c.dmu.Unlock()
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("bridge: %w", ctx.Err())
	}
	return err
}

// SetDeadline sets the read and write deadlines, as net.Conn does.
func (c *Conn) SetDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.readDeadline, c.writeDeadline = t, t
	return ioError("set deadline", c.addr, c.s.SetDeadline(t), false)
}

// SetReadDeadline sets the deadline for receives and Poll.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.readDeadline = t
	return ioError("set deadline", c.addr, c.s.SetReadDeadline(t), false)
}

// SetWriteDeadline sets the deadline for sends.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.writeDeadline = t
	return ioError("set deadline", c.addr, c.s.SetWriteDeadline(t), false)
}

func (c *Conn) checkRead() error {
	if c.closed.Load() {
		return closedError("recv", c.addr)
	}
	if !c.readable {
		return ErrNotReadable
	}
	if p := c.unreadableErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *Conn) checkWrite() error {
	if c.closed.Load() {
		return closedError("send", c.addr)
	}
	if !c.writable {
		return ErrNotWritable
	}
	return nil
}

// Close closes the connection; blocked calls return ErrClosed. Frames that
// WithWriteBuffer holds back are written first, unless a Send is in progress
// in another goroutine (Close does not wait for it); like a Send, that
// write blocks while the peer is not reading, until the write deadline.
// Closing again does nothing and returns the first result.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		var ferr error
		if c.pending.Load() && c.wmu.TryLock() {
			ferr = c.flushLocked(context.Background())
			c.wmu.Unlock()
		}
		c.closed.Store(true)
		c.closeErr = c.s.Close()
		if c.closeErr == nil {
			c.closeErr = ferr
		}
	})
	return c.closeErr
}

// File returns a duplicate of the Conn's descriptor, for handing to another
// process. It shares the open file description, so it may be in non-blocking
// mode (SPEC section 6.3: the receiving process sets the mode it needs).
// The Conn stays open; close both when done.
func (c *Conn) File() (*os.File, error) {
	rc, err := c.s.SyscallConn()
	if err != nil {
		return nil, ioError("file", c.addr, err, false)
	}
	var nfd int
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, ioError("file", c.addr, err, false)
	}
	if derr != nil {
		return nil, fmt.Errorf("bridge: dup: %w", derr)
	}
	return os.NewFile(uintptr(nfd), "gobridge-conn"), nil
}
