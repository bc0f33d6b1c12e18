package bridge

// The listening side of the shm: transport (SPEC 11.3): a unix socket at
// /dev/shm/NAME, and the handshakes that validate each dialer's memory.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobridge/gobridge/internal/shmseg"
	"github.com/gobridge/gobridge/internal/unixsock"
	"golang.org/x/sys/unix"
)

const (
	// shmHandshake bounds the time from a dialer's connect to its request;
	// a dialer that connects and sends nothing is dropped after it, and
	// never delays the others, whose handshakes run beside it.
	shmHandshake = 5 * time.Second
	// shmBacklog bounds the connections in handshake or waiting for
	// Accept; past it, new ones wait in the socket's backlog.
	shmBacklog = 64
	shmMaxFDs  = 8 // room for descriptors in a request (all are closed; one is used)
)

// errShmRefused: a listener refused a request (SPEC 11.3). Dialers see end
// of stream; the listener keeps serving.
var errShmRefused = errors.New("bridge: shm: request refused")

func refuse(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errShmRefused, fmt.Sprintf(format, a...))
}

// shmTransport is the shm: entry of the scheme table (transport.go).
type shmTransport struct{}

// A shmListener accepts shm: connections at one name. A goroutine accepts
// sockets and starts a handshake for each in hs (handshakes.go), where
// they run side by side, each under its own deadline; another moves the
// connections they produce to ready, where they wait for Accept.
type shmListener struct {
	name   string
	ul     *net.UnixListener
	file   unixsock.File
	ctx    context.Context // cancelled by close: stops the two goroutines
	cancel context.CancelFunc
	hs     *pendingHandshakes[uint64, *shmStream]
	ready  chan *shmStream
	slots  chan struct{} // one per connection in handshake or in ready
	wg     sync.WaitGroup
	closed atomic.Bool

	refused     atomic.Int64          // requests refused, for tests
	lastRefusal atomic.Pointer[error] // and why, for tests
}

func (shmTransport) listen(name string, _ connConfig) (listenerImpl, error) {
	if err := checkShmName(name); err != nil {
		return nil, err
	}
	ul, f, err := unixsock.Listen(shmseg.Path(name), 0o600)
	if err != nil {
		return nil, fmt.Errorf("bridge: shm:%s: %w", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &shmListener{name: name, ul: ul, file: f, ctx: ctx, cancel: cancel,
		hs: newPendingHandshakes[uint64](shmBacklog, shmHandshake,
			func(s *shmStream) { s.Close() }), // handshaken, never accepted: the dialer sees end of stream
		ready: make(chan *shmStream, shmBacklog), slots: make(chan struct{}, shmBacklog)}
	l.wg.Add(2)
	go l.acceptLoop()
	go l.collect()
	return l, nil
}

// acceptLoop accepts sockets while a slot is free and starts a handshake
// for each.
func (l *shmListener) acceptLoop() {
	defer l.wg.Done()
	for key := uint64(0); ; key++ {
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
		// The slots keep the running handshakes under hs's limit, so start
		// refuses only once close has begun.
		if !l.hs.start(key, func(ctx context.Context) (*shmStream, error) { return l.handshake(ctx, c) }) {
			c.Close()
			<-l.slots
			return
		}
	}
}

// collect moves each successful handshake's connection to ready (a slot is
// held for it, so that never blocks) and gives a failed one's slot back.
func (l *shmListener) collect() {
	defer l.wg.Done()
	for {
		select {
		case r := <-l.hs.finished():
			if r.Err != nil {
				err := r.Err
				l.refused.Add(1)
				l.lastRefusal.Store(&err)
				<-l.slots
				continue
			}
			l.ready <- r.Value
		case <-l.ctx.Done():
			return
		}
	}
}

func (l *shmListener) accept(ctx context.Context) (transportConn, error) {
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
// descriptor received. ctx ends at the handshake's deadline or when the
// listener closes.
func (l *shmListener) handshake(ctx context.Context, c *net.UnixConn) (s *shmStream, err error) {
	var mem []byte
	defer func() {
		if err != nil {
			if mem != nil {
				unix.Munmap(mem)
			}
			c.Close()
		}
	}()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
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
		return nil, refuse("the listener closed, or the handshake deadline passed")
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

func (l *shmListener) close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.cancel()
	err := l.ul.Close()
	l.wg.Wait()
	l.hs.close() // ends the handshakes still running; discards those finished since collect stopped
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
