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
// Addresses name the transport: "unix:/path" (AF_UNIX sockets), "fifo:/path"
// (named pipes: a rendezvous FIFO and a private pair per connection) and
// "shm:NAME" (rings in shared memory); all give the same Conn. Plain named
// pipes shared by many writers are opened with OpenFIFOReader and
// OpenFIFOWriter (Mkfifo makes one).
//
// An shm: listener is a unix socket at /dev/shm/NAME; each connection's
// rings live in a sealed memfd that the dialer passes over that socket,
// which stays open so that each side learns when the other is gone
// (ErrPeerGone). Neither side can shrink the memory, so no access faults; a
// peer that writes impossible ring indices ends its connection with
// ErrCorrupt. A Conn dropped without Close is closed when it is garbage
// collected; Close is still the owner's job.
//
// To serve or reach unmodified multiprocessing code, give Listen or Dial
// WithAuthkey (the stdlib's authkey handshake, run by Accept and Dial on
// every transport; a wrong key is ErrAuthentication on both ends) and
// WithCodec(pickle.Codec{}) from package wire/pickle (the stdlib's Connection
// pickles; the decoder never calls anything).
//
// Each Send is written at once, as in multiprocessing. Many small messages
// go faster with WithWriteBuffer, which batches frames until the buffer
// fills, Flush, the next receive, or Close (Python:
// Connection.set_write_buffer).
//
// StartProcess is Go's multiprocessing.Process for any program: it starts a
// child with a Pipe end handed down and reports Join, ExitCode (minus the
// signal number when killed), Terminate and Kill; WithDaemon children die
// with their parent. Signals runs signal handlers and, on SIGTERM or SIGINT,
// closes the Listeners, Conns and segments registered with CloseOnShutdown,
// so that no socket file, FIFO or /dev/shm object is left, and then dies of
// the signal. Meanwhile the Accept and Conn calls that those closes make
// fail do not return, so a loop that returns from main when Accept fails
// still ends the process as the signal says (status -15), not with 0. Package bridge/pool runs
// Python functions in a pool of Python workers; bridge/mp has named Queue,
// Value, Array, Semaphore and Lock objects; bridge/shm tagged shared memory.
//
// Errors are matched with errors.Is against the sentinels of this package
// (ErrClosed, ErrFrameTooLarge, ErrBrokenPipe, ...) and io.EOF, which Recv
// returns when the peer closed cleanly between messages. A Recv error that
// matches ErrDecode is about that one message (it did not decode; the next
// Recv returns the next one); most others mean the Conn cannot receive.
//
// The wire format is specified in wire/SPEC.md; the Python side lives in the
// gobridge package (pip install ./python).
package bridge
