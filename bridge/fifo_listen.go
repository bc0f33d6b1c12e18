package bridge

// The listening side of the fifo: transport (SPEC 6.6): the rendezvous
// FIFO, the requests read from it (fifo_request.go) and their concurrent
// handshakes (handshakes.go).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gobridge/gobridge/internal/ofdlock"
	"golang.org/x/sys/unix"
)

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

// fifoTransport is the fifo: entry of the scheme table (transport.go).
type fifoTransport struct{}

// listen makes (or adopts) the rendezvous FIFO at path and holds an OFD
// write lock on its byte fifoListenerMark for as long as it listens: a
// second listener, in any process, gets ErrAddrInUse, and plain-pipe readers
// and writers refuse the FIFO; a dead listener's lock is gone with it.
func (fifoTransport) listen(path string, _ connConfig) (listenerImpl, error) {
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
func (l *fifoListener) accept(ctx context.Context) (transportConn, error) {
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
	return newFIFOPairStream(rfd, base+fifoUp, wfd, base+fifoDown, l.path)
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
