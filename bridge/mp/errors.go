package mp

import (
	"errors"

	"github.com/gobridge/gobridge/internal/shmseg"
)

// Errors. Callers test them with errors.Is; blocking calls that give up
// because their context ended return the context's error (context.Canceled or
// context.DeadlineExceeded) instead.
var (
	// ErrFull: PutNowait on a queue holding maxsize messages, or whose ring
	// has no room for the message (Python raises queue.Full).
	ErrFull = errors.New("mp: queue is full")
	// ErrEmpty: GetNowait on an empty queue (Python raises queue.Empty).
	ErrEmpty = errors.New("mp: queue is empty")
	// ErrTooLarge: a message that can never fit the queue's ring (Python
	// raises ValueError). Nothing is written.
	ErrTooLarge = errors.New("mp: message larger than the queue's capacity")
	// ErrClosed: the handle was closed (every call but Close fails with it;
	// the snapshots Qsize, Empty, Full, Unfinished and Semaphore.Value
	// return 0 or false).
	ErrClosed = errors.New("mp: closed")
	// ErrKind: the segment holds another kind of object, another typecode,
	// or another length than the caller asked for, or carries another
	// gobridge kind mark (an shm: listener's conn-listen, an mmap tag...).
	// It is refused before any lock is taken, and left as it was.
	ErrKind = errors.New("mp: segment holds a different object")
	// ErrLayout: the segment is not a valid shared object (no magic, another
	// version, too small for its kind, fields out of range): it was not
	// made by gobridge, or another process corrupted it. An open refuses it
	// without writing to it; an operation that reads an impossible state
	// (head past tail, a record longer than the bytes queued...) fails with
	// it and changes nothing.
	ErrLayout = errors.New("mp: invalid shared object layout")
	// ErrNotReady: the segment carries the kind mark of the object asked for
	// but never got its header (a creator of an older version died while
	// making it); `gobridge shm gc` removes it once nobody holds it.
	ErrNotReady = errors.New("mp: shared object not initialized")
	// ErrNotHeld: Release/Unlock of a lock this handle does not hold
	// (Python raises ValueError, or AssertionError for RLock as
	// multiprocessing does).
	ErrNotHeld = errors.New("mp: lock not held by this handle")
	// ErrReleasedTooMany: Release of a bounded semaphore at its bound, or of
	// any semaphore at 2^31-1 (Python raises ValueError "semaphore or lock
	// released too many times", as multiprocessing does). The count is
	// unchanged.
	ErrReleasedTooMany = errors.New("mp: semaphore or lock released too many times")
	// ErrBrokenBarrier: Barrier.Wait on a broken barrier, or one that broke
	// (Abort, a Wait whose context ended, a failing action, a party killed
	// while waiting) or was Reset while it waited (Python raises
	// threading.BrokenBarrierError, as multiprocessing's Barrier does).
	ErrBrokenBarrier = errors.New("mp: broken barrier")
	// ErrTaskDone: TaskDone called more times than there were items
	// (Python raises ValueError).
	ErrTaskDone = errors.New("mp: task_done() called too many times")
	// ErrTypecode: an unknown typecode.
	ErrTypecode = errors.New("mp: unknown typecode")

	// Errors of the segment layer, re-exported.

	// ErrFault: another process truncated the object's segment under this
	// handle's mapping (where Go would otherwise die of SIGBUS). The handle
	// is broken: every later call fails with ErrFault; Close it. Other
	// handles are not affected until they touch the lost pages.
	ErrFault = shmseg.ErrFault
	// ErrNotRegular: the name is a socket, FIFO, directory or symlink.
	ErrNotRegular = shmseg.ErrNotRegular
	// ErrName: the name breaks SPEC 9.1 (1 to 255 bytes of valid UTF-8, no
	// '/', NUL or "..", no leading '.').
	ErrName = shmseg.ErrName
)
