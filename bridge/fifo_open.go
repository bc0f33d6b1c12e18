package bridge

// The fifo: transport (wire/SPEC.md section 6.6). Two uses of named pipes:
//
//   - Connections. Listen("fifo:/p") makes the rendezvous FIFO /p; each Dial
//     makes a private pair /p.<pid>.<rand>.up and .down, asks for it with one
//     atomic request frame written to /p, and removes the pair once both ends
//     are open. Each connection is duplex and private, like a socket's. The
//     listener scans /p for requests, skipping anything else
//     (fifo_request.go), and runs their handshakes concurrently, each under
//     a deadline (handshakes.go), so that no dialer holds up another.
//   - Plain named pipes. OpenFIFOReader and OpenFIFOWriter open an existing
//     FIFO (Mkfifo, `gobridge mkfifo`) as one end of a one-way connection, as
//     Pipe(false): any number of writers, one reader, end of stream when the
//     last writer closes. Frames larger than PIPE_BUF are written under an
//     exclusive flock(2) on the FIFO, smaller ones under a shared one, so
//     that no frame lands inside another.
//
// This file opens FIFOs (by path, refusing anything that is not a FIFO of
// ours) and has the plain-pipe API; fifo_stream.go is the byte stream,
// fifo_listen.go and fifo_dial.go the two sides of a connection's handshake.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/gobridge/gobridge/internal/ofdlock"
	"golang.org/x/sys/unix"
)

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

// plainFIFO takes the result of opening a plain pipe at path (fd, or the
// error that open returned), refuses a live listener's rendezvous and wraps
// the descriptor; fd is closed on failure.
func plainFIFO(path string, fd int, err error) (*os.File, error) {
	if err != nil {
		return nil, err
	}
	if err := checkNotRendezvous(fd, path); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return fileFromFD(fd, path)
}

// OpenFIFOReader opens the named pipe at path (made with Mkfifo) as a
// receive-only Conn, waiting until ctx ends for a writer to open it. Recv
// returns io.EOF once the last writer has closed. A live fifo: listener's
// rendezvous FIFO is refused with ErrAddrInUse.
func OpenFIFOReader(ctx context.Context, path string, opts ...ConnOption) (*Conn, error) {
	fd, err := openFIFOReaderWait(ctx, path, nil)
	f, err := plainFIFO(path, fd, err)
	if err != nil {
		return nil, err
	}
	s := &fifoStream{r: f, name: path}
	c := newConn(s, true, false, newConnConfig(opts))
	c.addr = SchemeFIFO + ":" + path
	return c, nil
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
	f, err := plainFIFO(path, fd, err)
	if err != nil {
		return nil, err
	}
	s := &fifoStream{w: f, name: path, lock: true}
	c := newConn(s, false, true, cfg)
	c.addr = SchemeFIFO + ":" + path
	return c, nil
}
