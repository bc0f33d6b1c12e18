package wire

import "errors"

// Errors returned by this package. Match them with errors.Is: returned errors
// wrap them with detail (the size claimed, the offset of a bad byte, ...).
//
// Every error about a payload that was received whole but does not decode
// (ErrMalformed, ErrTooDeep, ErrTooManyContainers, ErrInvalidUTF8,
// ErrUnknownExtension, ErrUnsupportedKey, ErrTargetType) also matches
// ErrDecode: after one of those a connection is still usable, while framing
// errors (ErrFrameTooLarge, ErrBadHeader, a truncated frame) leave the stream
// out of step.
var (
	// ErrDecode matches every error about a payload that does not decode
	// (SPEC section 3): the frame was consumed whole, so the connection
	// stays usable and the next receive returns the next message.
	ErrDecode = errors.New("wire: payload does not decode")

	// ErrFrameTooLarge: a frame header claims more bytes than the reader's
	// limit, or a payload to send exceeds the writer's limit.
	ErrFrameTooLarge = errors.New("wire: frame too large")
	// ErrBadHeader: a frame header that no writer produces (a negative length
	// other than -1, or a non-canonical 8-byte length).
	ErrBadHeader = errors.New("wire: bad frame header")
	// ErrMalformed: the payload is not exactly one well-formed msgpack object.
	ErrMalformed error = &decodeError{msg: "wire: malformed msgpack"}
	// ErrTooDeep: arrays and maps nested deeper than MaxDepth.
	ErrTooDeep error = &decodeError{msg: "wire: nesting too deep"}
	// ErrTooManyContainers: more arrays and maps than the payload's size
	// allows (ContainerBudget, SPEC section 3.2). It also matches
	// ErrMalformed.
	ErrTooManyContainers error = &decodeError{msg: "wire: too many arrays and maps", also: ErrMalformed}
	// ErrInvalidUTF8: a msgpack str that is not valid UTF-8.
	ErrInvalidUTF8 error = &decodeError{msg: "wire: invalid UTF-8 in str"}
	// ErrUnknownExtension: a msgpack extension type other than the timestamp (-1).
	ErrUnknownExtension error = &decodeError{msg: "wire: unknown extension type"}
	// ErrUnsupportedKey: a map key that no decoder accepts (an array or a
	// map) or that Go cannot decode (bin).
	ErrUnsupportedKey error = &decodeError{msg: "wire: unsupported map key"}
	// ErrTargetType: a valid payload that does not fit the Go value given to
	// Unmarshal (a str into an int field, ...).
	ErrTargetType error = &decodeError{msg: "wire: payload does not fit the target"}

	// ErrBadTarget: Unmarshal (or a receive) was given something other than
	// a non-nil pointer. Nothing was read.
	ErrBadTarget = errors.New("wire: decode target must be a non-nil pointer")
	// ErrUnsupportedType: a Go value that has no msgpack form (chan, func, ...).
	ErrUnsupportedType = errors.New("wire: unsupported type")
)

// decodeError is the type of the sentinels that also match ErrDecode.
type decodeError struct {
	msg  string
	also error // another sentinel this one matches
}

func (e *decodeError) Error() string { return e.msg }

func (e *decodeError) Is(target error) bool {
	return target == ErrDecode || (e.also != nil && target == e.also)
}
