package bridge

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

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

// closedError is op's ErrClosed; while a Signals ends the process it does
// not return (see waitIfEnding).
func closedError(op string) error {
	return waitIfEnding(fmt.Errorf("bridge: %s: %w", op, ErrClosed))
}

// mapIOError turns the transport's errors into this package's: a use of a
// closed descriptor into ErrClosed, EPIPE/ECONNRESET on a write into
// ErrBrokenPipe (still matching the errno).
func mapIOError(op string, err error, writing bool) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed):
		return closedError(op)
	case writing && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)):
		return fmt.Errorf("bridge: %s: %w: %w", op, ErrBrokenPipe, err)
	}
	return err
}
