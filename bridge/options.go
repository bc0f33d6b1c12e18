package bridge

import "github.com/gobridge/gobridge/wire"

// A ConnOption configures the connections made by Dial, Listen (for every
// accepted connection), Pipe, NewConn and Parent.
type ConnOption func(*connConfig)

type connConfig struct {
	maxFrame int64
}

func newConnConfig(opts []ConnOption) connConfig {
	c := connConfig{maxFrame: wire.DefaultMaxFrameSize}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithMaxFrameSize sets the largest payload the connection reads or writes
// (SPEC section 2.1). n <= 0 restores the default, wire.DefaultMaxFrameSize.
func WithMaxFrameSize(n int64) ConnOption {
	return func(c *connConfig) {
		if n <= 0 {
			n = wire.DefaultMaxFrameSize
		}
		c.maxFrame = n
	}
}
