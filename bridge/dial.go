package bridge

import (
	"context"
	"net"
)

// Dial connects to a Listener (Go's, or Python's gobridge.Listener) at addr:
// "unix:/path" (or a bare path), "fifo:/path" or "shm:NAME" (SPEC section 4).
// No listener at addr gives an error matching syscall.ECONNREFUSED or
// syscall.ENOENT (a fifo: address whose FIFO exists waits for its listener
// until ctx ends). With WithAuthkey, Dial runs the handshake before it
// returns (a wrong key: ErrAuthentication).
func Dial(ctx context.Context, addr string, opts ...ConnOption) (*Conn, error) {
	nc, err := dialTransport(ctx, addr)
	if err != nil {
		return nil, err
	}
	cfg := newConnConfig(opts)
	c := newConn(nc, true, true, cfg)
	c.addr = addr
	if err := c.authenticate(ctx, cfg, "dial", false); err != nil {
		return nil, err
	}
	return c, nil
}

// DialRaw connects to addr, as Dial, and returns a plain byte stream without
// gobridge framing (SPEC section 6.5), for servers that speak their own
// protocol.
func DialRaw(ctx context.Context, addr string) (net.Conn, error) {
	nc, err := dialTransport(ctx, addr)
	if err != nil {
		return nil, err
	}
	return nc, nil
}

// dialTransport looks addr's scheme up and dials it.
func dialTransport(ctx context.Context, addr string) (transportConn, error) {
	t, _, path, err := lookupTransport("dial", addr)
	if err != nil {
		return nil, err
	}
	return t.dial(ctx, addr, path)
}
