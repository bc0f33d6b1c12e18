package bridge

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/gobridge/gobridge/internal/authkey"
	"github.com/gobridge/gobridge/internal/unixsock"
	"github.com/gobridge/gobridge/wire"
)

// Errors returned by this package; match them with errors.Is. The wire
// errors are the same values as package wire's.
var (
	// ErrClosed: the Conn or Listener was closed by this process. It also
	// matches net.ErrClosed.
	ErrClosed = fmt.Errorf("bridge: %w", net.ErrClosed)
	// ErrBrokenPipe: the peer is gone while sending (EPIPE or ECONNRESET,
	// which errors.Is also matches).
	ErrBrokenPipe = errors.New("bridge: broken pipe")
	// ErrNotReadable: Recv on the send-only end of a one-way Pipe.
	ErrNotReadable = errors.New("bridge: connection is write-only")
	// ErrNotWritable: Send on the receive-only end of a one-way Pipe.
	ErrNotWritable = errors.New("bridge: connection is read-only")
	// ErrAddrInUse: Listen on a path held by a live server or by a file that
	// is not a socket. It also matches syscall.EADDRINUSE.
	ErrAddrInUse = unixsock.ErrInUse
	// ErrBadAddress: an address that SPEC section 4 does not allow.
	ErrBadAddress = errors.New("bridge: bad address")
	// ErrNoParent: Parent in a process that was not given a connection.
	ErrNoParent = errors.New("bridge: no connection from a parent (GOBRIDGE_FD is not set)")
	// ErrUnsupportedTransport: an address scheme reserved for a later version.
	ErrUnsupportedTransport = errors.New("bridge: transport not supported yet")
	// ErrPeerGone: an shm: peer process died (SIGKILL, crash) without closing its
	// end: its control socket closed while its ring was not marked closed (a
	// dropped Conn that is collected is closed for it). It also matches
	// syscall.ECONNRESET, what a socket reports in the same case. A receive
	// returns every whole frame the peer finished first; a frame it was
	// writing is never delivered. A fifo: Dial whose listener dies during the
	// handshake gets it too.
	ErrPeerGone = fmt.Errorf("bridge: peer process is gone: %w", syscall.ECONNRESET)
	// ErrCorrupt: an shm: peer left the shared ring indices in a state no
	// correct peer can produce (more bytes buffered than the ring holds, a read
	// index past the write index). The connection is over in both directions:
	// every later receive and send returns the same error, and the peer is told
	// (its end sees end of stream or a broken pipe). It also matches
	// syscall.EPROTO. The message names the ring and the values found.
	ErrCorrupt error = corruptError{}
	// ErrInsecureTCP: Listen on a tcp: address that is not a loopback one
	// (a wildcard such as 0.0.0.0 or [::], or a host's own network address)
	// without WithAuthkey or WithInsecureTCP: anyone who can reach the port
	// could send it messages.
	ErrInsecureTCP = errors.New("bridge: a tcp: listener on a non-loopback address needs WithAuthkey (or WithInsecureTCP)")
	// ErrAuthentication: the authkey handshake (WithAuthkey, SPEC section
	// 14) failed: a wrong key, a peer with no key, a malformed or oversized
	// handshake message, or a peer that did not finish within the handshake
	// timeout. The cause stays matchable too (io.EOF,
	// os.ErrDeadlineExceeded, ErrFrameTooLarge). Python raises
	// multiprocessing.AuthenticationError in the same cases.
	ErrAuthentication = authkey.ErrAuthentication

	// ErrDecode matches every error about a received payload that does not
	// decode (ErrMalformed, ErrTooDeep, ErrTooManyContainers, ...): the Conn
	// is still usable. Any other receive error but a deadline means the
	// stream is cut or out of step.
	ErrDecode            = wire.ErrDecode
	ErrFrameTooLarge     = wire.ErrFrameTooLarge
	ErrBadHeader         = wire.ErrBadHeader
	ErrMalformed         = wire.ErrMalformed
	ErrTooDeep           = wire.ErrTooDeep
	ErrTooManyContainers = wire.ErrTooManyContainers
	ErrInvalidUTF8       = wire.ErrInvalidUTF8
	ErrUnknownExtension  = wire.ErrUnknownExtension
	ErrUnsupportedKey    = wire.ErrUnsupportedKey
	ErrTargetType        = wire.ErrTargetType
	ErrBadTarget         = wire.ErrBadTarget
	ErrUnsupportedType   = wire.ErrUnsupportedType
)

type corruptError struct{}

func (corruptError) Error() string        { return "bridge: shm: the peer broke the ring protocol" }
func (corruptError) Is(target error) bool { return target == syscall.EPROTO }

// An OpError is what a Conn operation returns when its transport fails: it
// names the operation, the address the Conn was made with (as the caller
// gave it; empty for an unnamed Pipe or inherited end) and the cause, once:
//
//	bridge: send unix:/run/app.sock: broken pipe
//	bridge: recv fifo:/tmp/q: i/o timeout
//
// errors.Is and errors.As see through it to the cause: ErrClosed,
// ErrBrokenPipe, os.ErrDeadlineExceeded, the errno.
type OpError struct {
	Op   string // "send", "recv", "poll", "file", "set deadline"
	Addr string // SPEC section 4 syntax, or "" when the Conn has no address
	Err  error
}

func (e *OpError) Error() string {
	s := "bridge: " + e.Op
	if e.Addr != "" {
		s += " " + e.Addr
	}
	return s + ": " + causeText(e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

// causeText is err's message without what OpError already says: the
// "bridge: " of this package's sentinels and the net.OpError and
// os.SyscallError layers of the standard library, whose text names internal
// socket addresses ("write unix @->@: write: broken pipe").
func causeText(err error) string {
	switch {
	case errors.Is(err, ErrBrokenPipe):
		return "broken pipe"
	case errors.Is(err, ErrClosed):
		return "use of closed connection"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "i/o timeout"
	}
	for {
		var op *net.OpError
		var sc *os.SyscallError
		switch {
		case errors.As(err, &op) && op.Err != nil && op.Error() == err.Error():
			err = op.Err
			continue
		case errors.As(err, &sc) && sc.Error() == err.Error():
			err = sc.Err
			continue
		}
		break
	}
	s := err.Error()
	for _, p := range []string{"bridge: ", "wire: "} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}

// withText is err with another message: errors.Is and errors.As still see err.
func withText(text string, err error) error { return textError{text, err} }

type textError struct {
	text string
	err  error
}

func (e textError) Error() string { return e.text }
func (e textError) Unwrap() error { return e.err }

// opError is err as an OpError of op on the Conn at addr, unless it is
// already one or is end of stream (io.EOF stays bare, as net.Conn's).
func opError(op, addr string, err error) error {
	var oe *OpError
	if err == nil || errors.Is(err, io.EOF) || errors.As(err, &oe) {
		return err
	}
	return &OpError{Op: op, Addr: addr, Err: err}
}

// closedError is op's ErrClosed; while a Signals ends the process it does
// not return (see waitIfEnding).
func closedError(op, addr string) error {
	return waitIfEnding(&OpError{Op: op, Addr: addr, Err: ErrClosed})
}

// ioError turns the transport's errors into this package's, as an OpError:
// a use of a closed descriptor into ErrClosed, EPIPE/ECONNRESET on a write
// into ErrBrokenPipe (still matching the errno). A deadline or context
// error keeps matching os.ErrDeadlineExceeded or ctx.Err().
func ioError(op, addr string, err error, writing bool) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed):
		return closedError(op, addr)
	case writing && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) && !errors.Is(err, ErrBrokenPipe):
		err = fmt.Errorf("%w: %w", ErrBrokenPipe, err)
	}
	return opError(op, addr, err)
}
