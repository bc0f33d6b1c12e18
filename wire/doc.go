// Package wire implements gobridge's wire format: frames byte-identical to
// CPython's multiprocessing.connection (a 4-byte big-endian length, or -1 and
// an 8-byte length for payloads over 2 GiB) carrying one msgpack object each,
// with the type mapping and limits that SPEC.md fixes for Go and Python alike.
//
// Most programs use package bridge, which puts this format on sockets, pipes
// and shared memory. Use wire directly to frame bytes on a stream of your own:
// write with AppendHeader or WriteFrame, read with a Reader (or parse a header
// in a buffer with ParseHeader), and encode values with Marshal and Unmarshal
// (or an Encoder, which reuses its buffer).
//
// Every reader has a size limit (DefaultMaxFrameSize, 64 MiB, unless set): a
// header that claims more allocates nothing and gives ErrFrameTooLarge. The
// decoder checks a payload completely before building a value, so malformed
// msgpack, nesting deeper than MaxDepth, more arrays and maps than
// ContainerBudget allows for the payload's size (which bounds the memory a
// decode takes), invalid UTF-8 and unknown extension types give an error
// that errors.Is matches against the sentinels below, and against ErrDecode,
// and never a partial value. The encoder refuses what no decoder would
// accept (a map key that encodes as an array or map, a string that is not
// UTF-8, ...) before writing anything.
//
// A Codec (Marshal, Unmarshal, Name) is a payload format that a connection
// can be given; Msgpack is this package's, and package wire/pickle provides
// an opt-in pickle codec for unmodified multiprocessing peers (SPEC section
// 15).
//
// SPEC.md in this directory is the normative description; the vectors in
// interop_tests/vectors are checked by this package's tests and by pytest.
package wire

// Version is the version of the wire format this package implements.
const Version = 1
