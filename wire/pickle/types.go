package pickle

import "github.com/gobridge/gobridge/wire"

// Tuple is a Python tuple. Decoding gives a Tuple; encoding a Tuple gives a
// tuple (a []any gives a list).
type Tuple []any

// Set is a Python set: its keys are the elements. Elements are the values a
// Go map can key: nil, bool, int64, float64, string.
type Set map[any]struct{}

// FrozenSet is a Python frozenset, with the same elements as Set.
type FrozenSet map[any]struct{}

// Bytearray is a Python bytearray ([]byte is bytes).
type Bytearray []byte

// Limits bound what a decode may cost. The zero value of a field means its
// default.
type Limits struct {
	// MaxSize is the largest pickle accepted, in bytes
	// (default wire.DefaultMaxFrameSize).
	MaxSize int
	// MaxDepth is the deepest nesting of containers (default wire.MaxDepth).
	MaxDepth int
	// MaxMemo is the most memo entries (PUT, BINPUT, MEMOIZE) (default 1<<20).
	MaxMemo int
	// MaxValues bounds the values of the result counted as a walk of it
	// would meet them: a value that shared references (memo GETs, DUP)
	// place n times counts n times. The bound is max(MaxValues, len(pickle)),
	// which no pickle without shared references can exceed, since every value
	// costs at least one byte (default 1<<20).
	MaxValues int
}

func (l Limits) withDefaults() Limits {
	if l.MaxSize <= 0 {
		l.MaxSize = wire.DefaultMaxFrameSize
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = wire.MaxDepth
	}
	if l.MaxMemo <= 0 {
		l.MaxMemo = 1 << 20
	}
	if l.MaxValues <= 0 {
		l.MaxValues = 1 << 20
	}
	return l
}
