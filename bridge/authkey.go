package bridge

// The authkey handshake (SPEC section 14) in the connection layer: Accept and
// Dial run it on the Conn they made, whatever the transport.

import (
	"context"

	"github.com/gobridge/gobridge/internal/authkey"
)

// handshakeFrames is the Conn as authkey.FrameRW: whole frames, received
// with the handshake's own size limit.
type handshakeFrames struct{ c *Conn }

func (h handshakeFrames) SendBytesContext(ctx context.Context, p []byte) error {
	return h.c.SendBytesContext(ctx, p)
}

func (h handshakeFrames) RecvBytesMax(ctx context.Context, max int64) ([]byte, error) {
	c := h.c
	if err := c.checkRead(); err != nil {
		return nil, err
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.fr.SetMaxFrameSize(min(max, c.maxFrame))
	defer c.fr.SetMaxFrameSize(c.maxFrame)
	return c.readFrameLocked(ctx, nil)
}

// authenticate runs the handshake on c if cfg has a key: the listener's side
// (challenge, then answer) or the client's, within ctx and the handshake
// timeout. A failure closes c and is an OpError of op matching
// ErrAuthentication.
func (c *Conn) authenticate(ctx context.Context, cfg connConfig, op string, listener bool) error {
	if !cfg.hasKey {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.handshakeTimeout)
	defer cancel()
	var err error
	if listener {
		err = authkey.Accept(ctx, handshakeFrames{c}, cfg.authkey)
	} else {
		err = authkey.Connect(ctx, handshakeFrames{c}, cfg.authkey)
	}
	if err != nil {
		c.Close()
		return &OpError{Op: op, Addr: c.addr, Err: err}
	}
	return nil
}
