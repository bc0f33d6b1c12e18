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
	nc, err := acceptCtx(ctx, u.l, u.l.AcceptUnix)
	if err != nil {
		return nil, err
	}
	return nc, nil
}

// deadlineListener is a net listener whose Accept a deadline interrupts.
type deadlineListener interface{ SetDeadline(time.Time) error }

// acceptCtx runs accept (the listener's AcceptUnix or AcceptTCP) so that ctx
// ends it: cancellation sets a deadline in the past, and the deadline is
// cleared again before returning. A connection accepted as ctx ended is
// closed, not lost silently.
func acceptCtx[C net.Conn](ctx context.Context, l deadlineListener, accept func() (C, error)) (C, error) {
	var zero C
	var stop func() bool
	fired := make(chan struct{})
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() {
			l.SetDeadline(aLongTimeAgo)
			close(fired)
		})
	}
	nc, err := accept()
	if stop != nil && !stop() {
		<-fired
		l.SetDeadline(noDeadline)
		if err == nil {
			nc.Close()
		}
		return zero, fmt.Errorf("bridge: accept: %w", ctx.Err())
	}
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return zero, fmt.Errorf("bridge: accept: %w", ErrClosed)
		}
		return zero, err
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
