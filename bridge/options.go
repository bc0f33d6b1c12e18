package bridge

import "github.com/gobridge/gobridge/wire"

// A ConnOption configures the connections made by Dial, Listen (for every
// accepted connection), Pipe, NewConn and Parent.
type ConnOption func(*connConfig)

type connConfig struct {
	maxFrame    int64
	writeBuffer int
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

// WithWriteBuffer batches sends, as a bufio.Writer of n bytes would: a Send
// adds its frame to the batch, and the batch is written in one piece when
// the next frame would not fit, by Flush, before a receive or Poll on the
// same Conn (which then returns the error of that write), and by Close. A
// frame larger than n is written at once, after the batch. Until then the
// peer does not see the frames, and a process that dies loses them: call
// Flush when they must be delivered. A receive that has a batch to write
// waits for a Send in progress in another goroutine; Close does not, and
// skips the write then. Batching pays where sends are small and many: one
// ring publish (shm:) or one system call (sockets, pipes) per batch instead
// of per message. n <= 0 (the default) writes every frame at once. Not for
// OpenFIFOWriter, whose frames must each be written whole (it returns an
// error). SPEC section 2.2.
//
// Python's Connection.set_write_buffer is the same.
func WithWriteBuffer(n int) ConnOption {
	return func(c *connConfig) {
		c.writeBuffer = max(n, 0)
	}
}
