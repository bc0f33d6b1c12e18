package bridge

import (
	"context"
	"net"
	"sync"
)

// A Listener accepts connections at one address (SPEC section 4): a unix
// socket ("unix:/path", section 5.1: its socket file has mode 0600), a
// rendezvous FIFO ("fifo:/path", section 6.6) or a shared-memory name
// ("shm:NAME", section 11). Every transport gives the same Conn, and Close
// removes the name Listen made.
type Listener struct {
	impl listenerImpl // the transport's listener (transport.go)
	addr string
	cfg  connConfig

	closeOnce sync.Once
	closeErr  error
}

// Listen listens on addr: "unix:/path" (or a bare path), "fifo:/path",
// "shm:NAME" or "tcp:HOST:PORT". An address a live listener holds, or a path
// taken by a file of another kind (a regular file, a symlink), gives
// ErrAddrInUse; what a dead listener left there (a stale socket file, its
// FIFO or name) is taken over. A tcp: listener whose address is not a
// loopback one needs WithAuthkey, or WithInsecureTCP to say that anyone who
// can reach the port may connect (else ErrInsecureTCP).
func Listen(addr string, opts ...ConnOption) (*Listener, error) {
	t, scheme, path, err := lookupTransport("listen", addr)
	if err != nil {
		return nil, err
	}
	cfg := newConnConfig(opts)
	impl, err := t.listen(path, cfg)
	if err != nil {
		return nil, err
	}
	l := &Listener{impl: impl, addr: scheme + ":" + path, cfg: cfg}
	if a, ok := impl.(listenerAddr); ok {
		l.addr = a.address()
	}
	return l, nil
}

// Addr returns the address the Listener listens on, in SPEC section 4
// syntax. For tcp: it is the address bound, with the port the kernel picked
// for port 0 ("tcp:127.0.0.1:41234", "tcp:[::1]:41234").
func (l *Listener) Addr() string { return l.addr }

// Accept waits for a connection, on any transport. Cancelling ctx makes it
// return an error matching ctx.Err(); after Close it returns ErrClosed
// (except while a Signals ends the process: then it does not return, see
// Signals). On a unix socket contexts work through the listener's deadline,
// so when several goroutines Accept at once, one's cancellation can
// interrupt the others (they return an error and may simply call Accept
// again). With WithAuthkey, Accept runs the handshake on the connection
// before returning it; a client that fails it (ErrAuthentication) is closed
// and Accept returns its error: call Accept again for the next client.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	nc, err := l.accept(ctx)
	if err != nil {
		return nil, waitIfEnding(err)
	}
	c := newConn(nc, true, true, l.cfg)
	c.addr = l.addr
	if err := c.authenticate(ctx, l.cfg, "accept", true); err != nil {
		return nil, err
	}
	return c, nil
}

// AcceptRaw waits for a connection and returns it as a plain byte stream,
// without gobridge framing (SPEC section 6.5), for peers that speak their own
// protocol on the connection (a socket, a FIFO pair or shared-memory rings).
func (l *Listener) AcceptRaw(ctx context.Context) (net.Conn, error) {
	nc, err := l.accept(ctx)
	if err != nil {
		return nil, waitIfEnding(err)
	}
	return nc, nil
}

func (l *Listener) accept(ctx context.Context) (transportConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.impl.accept(ctx)
}

// Close stops listening and removes the socket file, rendezvous FIFO or
// shm: name, if it is still the one Listen made (a file another process put
// there is left alone). Connections already accepted stay open. Closing
// again returns the first result.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.impl.close() })
	return l.closeErr
}
