package wire

import "errors"

// Errors returned by this package. Match them with errors.Is: returned errors
// wrap them with detail (the size claimed, the offset of a bad byte, ...).
var (
	// ErrFrameTooLarge: a frame header claims more bytes than the reader's
	// limit, or a payload to send exceeds the writer's limit.
	ErrFrameTooLarge = errors.New("wire: frame too large")
	// ErrBadHeader: a frame header that no writer produces (a negative length
	// other than -1, or a non-canonical 8-byte length).
	ErrBadHeader = errors.New("wire: bad frame header")
	// ErrMalformed: the payload is not exactly one well-formed msgpack object.
	ErrMalformed = errors.New("wire: malformed msgpack")
	// ErrTooDeep: arrays and maps nested deeper than MaxDepth.
	ErrTooDeep = errors.New("wire: nesting too deep")
	// ErrInvalidUTF8: a msgpack str that is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("wire: invalid UTF-8 in str")
	// ErrUnknownExtension: a msgpack extension type other than the timestamp (-1).
	ErrUnknownExtension = errors.New("wire: unknown extension type")
	// ErrUnsupportedKey: a map key that Go cannot use (array, map or bin).
	ErrUnsupportedKey = errors.New("wire: unsupported map key")
	// ErrUnsupportedType: a Go value that has no msgpack form (chan, func, ...).
	ErrUnsupportedType = errors.New("wire: unsupported type")
)
