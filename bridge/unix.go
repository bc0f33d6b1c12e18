package bridge

// The unix: transport (wire/SPEC.md section 5.1): an AF_UNIX stream socket
// whose file has mode 0600. A bare path is a unix: address.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/gobridge/gobridge/internal/unixsock"
)

var noDeadline time.Time

// unixTransport is the unix: entry of the scheme table (transport.go).
type unixTransport struct{}

func (unixTransport) listen(path string, _ connConfig) (listenerImpl, error) {
	l, f, err := unixsock.Listen(path, 0o600)
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	return &unixListener{l: l, file: f}, nil
}

func (unixTransport) dial(ctx context.Context, addr, path string) (transportConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			err = withText("no listener: "+causeText(err), err)
		}
		return nil, &OpError{Op: "dial", Addr: addr, Err: err}
	}
	return nc.(*net.UnixConn), nil
}

// A unixListener is a listening socket and the file it made.
type unixListener struct {
	l    *net.UnixListener
	file unixsock.File
}

// accept waits in AcceptUnix; ctx works through the listener's deadline.
func (u *unixListener) accept(ctx context.Context) (transportConn, error) {
	var stop func() bool
	fired := make(chan struct{})
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() {
			u.l.SetDeadline(aLongTimeAgo)
			close(fired)
		})
	}
	nc, err := u.l.AcceptUnix()
	if stop != nil && !stop() {
		<-fired
		u.l.SetDeadline(noDeadline)
		if nc != nil {
			nc.Close()
		}
		return nil, fmt.Errorf("bridge: accept: %w", ctx.Err())
	}
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return nil, fmt.Errorf("bridge: accept: %w", ErrClosed)
		}
		return nil, err
	}
	return nc, nil
}

func (u *unixListener) close() error {
	err := u.l.Close()
	if rerr := u.file.Remove(); err == nil {
		err = rerr
	}
	return err
}
