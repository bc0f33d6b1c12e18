package mp

import (
	"os"
)

// An OpenOption configures the Open functions. Options that do not apply to
// an object (WithMaxSize for a Value) are ignored.
type OpenOption func(*openConfig)

type openConfig struct {
	mode       os.FileMode
	keep       bool
	createOnly bool
	attachOnly bool
	otherOwner bool
	maxsize    int
	capacity   int
	typecode   byte
}

func newOpenConfig(opts []OpenOption) openConfig {
	c := openConfig{capacity: DefaultCapacity}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithMaxSize bounds a new queue to n messages (multiprocessing's maxsize);
// n <= 0, the default, bounds it only by its ring's bytes. Attaching keeps
// the existing queue's bound.
func WithMaxSize(n int) OpenOption { return func(c *openConfig) { c.maxsize = n } }

// WithCapacity sets the bytes of a new queue's ring (default
// DefaultCapacity, rounded up to a multiple of 8, at least 64). A message
// needs 8 bytes plus its msgpack payload rounded up to 8; one that can never
// fit is refused with ErrTooLarge. Attaching keeps the existing capacity.
func WithCapacity(bytes int) OpenOption { return func(c *openConfig) { c.capacity = bytes } }

// WithTypecode makes a new Value or Array use typecode tc instead of the
// default for its Go type: 'l' instead of 'q', 'L' instead of 'Q' (the same
// 8 bytes on Linux; attaching accepts either), or 'c' for a Value[byte] or
// Array[byte] (Python's ctypes.c_char: each item is bytes of length 1 there,
// a byte here). A 'c' object is opened only with WithTypecode('c'), and
// WithTypecode('c') opens no 'B' one.
func WithTypecode(tc byte) OpenOption { return func(c *openConfig) { c.typecode = tc } }

// WithMode sets the permissions of a new segment (default 0600).
func WithMode(mode os.FileMode) OpenOption { return func(c *openConfig) { c.mode = mode } }

// WithKeep keeps the object after its last handle closes (and from `gobridge
// shm gc`); `gobridge shm rm NAME` removes it.
func WithKeep() OpenOption { return func(c *openConfig) { c.keep = true } }

// WithCreateOnly fails with an error satisfying errors.Is(err, os.ErrExist)
// when the name exists.
func WithCreateOnly() OpenOption { return func(c *openConfig) { c.createOnly = true } }

// WithAttachOnly fails with an error satisfying errors.Is(err,
// os.ErrNotExist) when the name does not exist, instead of creating it.
func WithAttachOnly() OpenOption { return func(c *openConfig) { c.attachOnly = true } }

// WithAllowOtherOwner permits attaching to an object another user created.
func WithAllowOtherOwner() OpenOption { return func(c *openConfig) { c.otherOwner = true } }
