package authkey

import (
	"context"
	"errors"
	"net"
	"os"
	"time"

	"github.com/gobridge/gobridge/wire"
)

// A Stream is a FrameRW on a net.Conn, framed as wire/SPEC.md section 2 says.
// It reads no byte past the frames it returns, so the conn can be handed on
// after a handshake. A Stream is not safe for concurrent use.
type Stream struct {
	c net.Conn
	r *wire.Reader
}

// NewStream returns a Stream on c.
func NewStream(c net.Conn) *Stream {
	return &Stream{c: c, r: wire.NewReader(c, MaxMessageSize)}
}

// SendBytesContext sends p as one frame, within ctx.
func (s *Stream) SendBytesContext(ctx context.Context, p []byte) error {
	return s.within(ctx, s.c.SetWriteDeadline, func() error {
		return wire.WriteFrame(s.c, p, 0)
	})
}

// RecvBytesMax receives one frame of at most max bytes, within ctx. A longer
// frame gives wire.ErrFrameTooLarge before its payload is read.
func (s *Stream) RecvBytesMax(ctx context.Context, max int64) ([]byte, error) {
	var p []byte
	err := s.within(ctx, s.c.SetReadDeadline, func() error {
		s.r.SetMaxFrameSize(max)
		var err error
		p, err = s.r.ReadFrame(nil)
		return err
	})
	return p, err
}

// within runs op with the conn's deadline set from ctx, and cut short when
// ctx is cancelled. It returns ctx's error when that is why op failed.
func (s *Stream) within(ctx context.Context, set func(time.Time) error, op func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dl, _ := ctx.Deadline() // zero: no deadline
	if err := set(dl); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { set(time.Unix(1, 0)) })
	err := op()
	stop()
	set(time.Time{})
	if err != nil {
		// The deadline the conn reports is ctx's: say so. The socket's
		// timer can fire a moment before ctx's own, so check the clock too.
		if cerr := ctx.Err(); cerr != nil {
			err = errors.Join(err, cerr)
		} else if !dl.IsZero() && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
			err = errors.Join(err, context.DeadlineExceeded)
		}
	}
	return err
}
