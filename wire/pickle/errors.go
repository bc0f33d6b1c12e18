package pickle

import (
	"errors"

	"github.com/gobridge/gobridge/wire"
)

// Errors of this package. Match them with errors.Is; the returned errors wrap
// them with the detail (the opcode, its offset, the class named). Every
// decode error also matches wire.ErrDecode: the frame was consumed whole and
// a connection stays usable.
var (
	// ErrMalformed: not one well-formed pickle (an unknown opcode, a
	// truncated argument, a stack that does not hold what an opcode needs,
	// trailing bytes after STOP).
	ErrMalformed error = &sentinel{"pickle: malformed pickle", []error{wire.ErrDecode, wire.ErrMalformed}}
	// ErrReference: the pickle names a class or function (GLOBAL,
	// STACK_GLOBAL, INST, OBJ, NEWOBJ, REDUCE, BUILD, EXT*, persistent ids,
	// out-of-band buffers) other than the few builtins that pickle uses for
	// plain data (set, frozenset, bytearray, bytes, _codecs.encode). The
	// decoder never calls anything; it refuses the pickle and names what it
	// references.
	ErrReference error = &sentinel{"pickle: class or function reference refused", []error{wire.ErrDecode}}
	// ErrTooLarge: a limit of Limits was exceeded (size, memo entries,
	// values counted through shared references), or an argument claims
	// more bytes than the pickle holds.
	ErrTooLarge error = &sentinel{"pickle: over a decode limit", []error{wire.ErrDecode}}
	// ErrTooDeep is wire.ErrTooDeep: containers nested deeper than
	// Limits.MaxDepth.
	ErrTooDeep = wire.ErrTooDeep
	// ErrInvalidUTF8 is wire.ErrInvalidUTF8: a str that is not valid UTF-8
	// (including the lone surrogates Python allows) or a protocol 0-2 str
	// that is not ASCII.
	ErrInvalidUTF8 = wire.ErrInvalidUTF8
	// ErrUnsupportedKey is wire.ErrUnsupportedKey: a dict key or set element
	// that a Go map cannot hold (tuple, bytes, frozenset, an int outside
	// int64).
	ErrUnsupportedKey = wire.ErrUnsupportedKey
	// ErrUnsupportedType is wire.ErrUnsupportedType: a Go value with no
	// pickle form (chan, func, time.Time, invalid UTF-8 string, ...).
	ErrUnsupportedType = wire.ErrUnsupportedType
)

type sentinel struct {
	msg  string
	also []error
}

func (e *sentinel) Error() string { return e.msg }

func (e *sentinel) Is(target error) bool {
	for _, a := range e.also {
		if errors.Is(a, target) {
			return true
		}
	}
	return false
}
