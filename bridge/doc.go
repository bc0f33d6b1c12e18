// Package bridge connects Go and Python processes on one Linux machine with
// the primitives Python programmers know from multiprocessing: a Conn is a
// multiprocessing.connection.Connection (frames byte-identical to CPython's,
// msgpack payloads), obtained from Dial, a Listener's Accept, Pipe, or Parent
// in a child process.
//
// Start with Listen and Dial for unrelated processes ("unix:/run/app.sock"),
// or Pipe plus StartWithConn for a child: the child, Go or Python, picks its
// end up with Parent (gobridge.parent() in Python). Send and Recv move
// values; SendBytes and RecvBytes move opaque payloads. Every blocking call
// has a ctx-taking variant, and Conn has net.Conn-style deadlines whose
// errors satisfy errors.Is(err, os.ErrDeadlineExceeded). Call Close to
// release a Conn or Listener; a Listener's Close removes its socket file.
//
// Errors are matched with errors.Is against the sentinels of this package
// (ErrClosed, ErrFrameTooLarge, ErrBrokenPipe, ...) and io.EOF, which Recv
// returns when the peer closed cleanly between messages.
//
// The wire format is specified in wire/SPEC.md; the Python side lives in the
// gobridge package (pip install ./python).
package bridge
