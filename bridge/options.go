package bridge

import (
	"time"

	"github.com/gobridge/gobridge/wire"
)

// A ConnOption configures the connections made by Dial, Listen (for every
// accepted connection), Pipe, NewConn and Parent.
type ConnOption func(*connConfig)

type connConfig struct {
	maxFrame         int64
	writeBuffer      int
	codec            wire.Codec // nil: msgpack
	authkey          []byte
	hasKey           bool // WithAuthkey was given (an empty key is a key)
	handshakeTimeout time.Duration
	insecureTCP      bool
}

// DefaultHandshakeTimeout bounds the authkey handshake (WithAuthkey) of each
// accepted or dialed connection unless WithHandshakeTimeout says otherwise.
const DefaultHandshakeTimeout = 5 * time.Second

func newConnConfig(opts []ConnOption) connConfig {
	c := connConfig{maxFrame: wire.DefaultMaxFrameSize, handshakeTimeout: DefaultHandshakeTimeout}
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

// WithCodec sets the payload encoding of Send and Recv (SendBytes and
// RecvBytes carry bytes either way): wire.Msgpack, the default (SPEC
// section 3), or pickle.Codec from package wire/pickle (SPEC section 15)
// for a peer that is unmodified multiprocessing code calling send and recv
// on a stdlib Connection. nil restores msgpack.
func WithCodec(codec wire.Codec) ConnOption {
	return func(c *connConfig) {
		if codec == wire.Msgpack {
			codec = nil // the Conn's own encoder, which reuses its buffer
		}
		c.codec = codec
	}
}

// WithAuthkey makes Listen's Accept and Dial run multiprocessing's authkey
// handshake with key (SPEC section 14) before they return the connection:
// the handshake of a stdlib Listener(..., authkey=key) or Client(...,
// authkey=key), so either can be the peer, and of gobridge's Python
// Listener and Client. Accept challenges first, then answers; Dial the
// reverse. It runs on every transport, within ctx and the handshake timeout
// (WithHandshakeTimeout). A wrong key, a peer without one, or a peer that
// does not finish in time gives an error matching ErrAuthentication, on
// both ends; Accept closes that connection and the Listener goes on (call
// Accept again). An empty key is a key, as in Python 3.13. The key is
// copied. Pipe, NewConn and Parent ignore it.
func WithAuthkey(key []byte) ConnOption {
	key = append([]byte{}, key...)
	return func(c *connConfig) {
		c.authkey, c.hasKey = key, true
	}
}

// WithHandshakeTimeout bounds the authkey handshake of each connection
// Accept or Dial makes (d <= 0 restores DefaultHandshakeTimeout): a peer
// that stays silent, or stalls inside a frame, fails its handshake with
// ErrAuthentication (and os.ErrDeadlineExceeded) instead of holding an
// accept loop.
func WithHandshakeTimeout(d time.Duration) ConnOption {
	return func(c *connConfig) {
		if d <= 0 {
			d = DefaultHandshakeTimeout
		}
		c.handshakeTimeout = d
	}
}

// WithInsecureTCP lets Listen serve a tcp: address that is not a loopback
// one without an authkey. Every process that can reach the port, on this
// machine or another, can then connect and exchange messages with the
// program: use it only on a network where that is true of trusted
// processes alone (or behind another access control). Without it such a
// Listen fails with ErrInsecureTCP; loopback addresses (127.0.0.0/8, ::1,
// a name resolving to one) and listeners with WithAuthkey need no opt-out.
func WithInsecureTCP() ConnOption {
	return func(c *connConfig) { c.insecureTCP = true }
}
