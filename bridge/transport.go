package bridge

// Transports: what each address scheme (SPEC section 4) supplies so that
// Listen, Dial and DialRaw work on it. Everything above the byte stream
// (framing, deadlines, contexts, Poll, batching) is Conn's and the same for
// every transport.

import (
	"context"
	"fmt"
	"net"
	"syscall"
)

// A transport listens and dials for one address scheme.
type transport interface {
	// listen starts listening at path, the address without its scheme,
	// for connections configured by cfg (tcp: checks it has a key).
	listen(path string, cfg connConfig) (listenerImpl, error)
	// dial connects to the listener at path; addr is the address as the
	// caller gave it, for error messages.
	dial(ctx context.Context, addr, path string) (transportConn, error)
}

// A listenerImpl is one transport's listener, held by a Listener.
type listenerImpl interface {
	// accept waits for a connection, returning an error matching
	// ctx.Err() when ctx ends and one matching ErrClosed after close.
	accept(ctx context.Context) (transportConn, error)
	// close stops listening and removes the name listen made, if it is
	// still the one listen made. It is called once.
	close() error
}

// A listenerAddr is a listenerImpl that knows its address better than the
// caller did (tcp: port 0 becomes the port the kernel picked).
type listenerAddr interface {
	address() string
}

// A transportConn is a connection a transport makes: a net.Conn, for
// AcceptRaw and DialRaw, and a stream a Conn runs on.
type transportConn interface {
	net.Conn
	SyscallConn() (syscall.RawConn, error)
}

// transportsByScheme is the scheme table: each scheme that works, and its
// transport. A scheme ParseAddress knows but this table lacks gives
// ErrUnsupportedTransport.
var transportsByScheme = map[string]transport{
	SchemeUnix: unixTransport{},
	SchemeFIFO: fifoTransport{},
	SchemeShm:  shmTransport{},
	SchemeTCP:  tcpTransport{},
}

// lookupTransport parses addr and returns its scheme's transport and the
// address without its scheme. op ("listen", "dial") is for the error of a
// scheme that has no transport.
func lookupTransport(op, addr string) (t transport, scheme, path string, err error) {
	scheme, path, err = ParseAddress(addr)
	if err != nil {
		return nil, "", "", err
	}
	t, ok := transportsByScheme[scheme]
	if !ok {
		return nil, "", "", fmt.Errorf("%w: %s %s", ErrUnsupportedTransport, op, addr)
	}
	return t, scheme, path, nil
}
