package bridge

// The tcp: transport (wire/SPEC.md section 5.3): TCP streams, TCP_NODELAY
// set, the same Conn as every other transport. A listener on an address
// that is not a loopback one needs an authkey or an explicit opt-out.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// tcpTransport is the tcp: entry of the scheme table (transport.go).
type tcpTransport struct{}

// listen resolves hostport to one address, checks that it is loopback
// unless cfg has a key or the opt-out, and listens there.
func (tcpTransport) listen(hostport string, cfg connConfig) (listenerImpl, error) {
	ta, err := net.ResolveTCPAddr("tcp", hostport)
	if err != nil {
		return nil, &OpError{Op: "listen", Addr: "tcp:" + hostport, Err: err}
	}
	if !ta.IP.IsLoopback() && !cfg.hasKey && !cfg.insecureTCP {
		return nil, fmt.Errorf("%w: listen tcp:%s", ErrInsecureTCP, hostport)
	}
	network := "tcp6"
	if ta.IP.To4() != nil {
		network = "tcp4" // 0.0.0.0 is IPv4 only, as it is in Python: not "tcp"'s dual-stack [::]
	}
	l, err := net.ListenTCP(network, ta)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			err = fmt.Errorf("%w: %w", ErrAddrInUse, err)
		}
		return nil, &OpError{Op: "listen", Addr: "tcp:" + hostport, Err: err}
	}
	return &tcpListener{l: l}, nil
}

func (tcpTransport) dial(ctx context.Context, addr, hostport string) (transportConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			err = withText("no listener: "+causeText(err), err)
		}
		return nil, &OpError{Op: "dial", Addr: addr, Err: err}
	}
	tc := nc.(*net.TCPConn)
	tc.SetNoDelay(true) // Go's default already; said here because SPEC requires it
	return tc, nil
}

// A tcpListener is a listening TCP socket.
type tcpListener struct {
	l *net.TCPListener
}

func (t *tcpListener) address() string {
	a := t.l.Addr().(*net.TCPAddr)
	return SchemeTCP + ":" + net.JoinHostPort(a.IP.String(), strconv.Itoa(a.Port))
}

// accept waits in AcceptTCP; ctx works through the listener's deadline.
func (t *tcpListener) accept(ctx context.Context) (transportConn, error) {
	nc, err := acceptCtx(ctx, t.l, t.l.AcceptTCP)
	if err != nil {
		return nil, err
	}
	nc.SetNoDelay(true)
	return nc, nil
}

func (t *tcpListener) close() error { return t.l.Close() }
