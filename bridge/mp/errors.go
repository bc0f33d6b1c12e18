package mp

import "errors"

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
	// ErrClosed: the handle was closed.
	ErrClosed = errors.New("mp: closed")
	// ErrKind: the segment holds another kind of object, another typecode,
	// or another length than the caller asked for.
	ErrKind = errors.New("mp: segment holds a different object")
	// ErrLayout: the segment is not a valid shared object (bad magic or
	// version, fields out of range): it was not made by gobridge or is
	// corrupt. Nothing is read from it.
	ErrLayout = errors.New("mp: invalid shared object layout")
	// ErrNotReady: an attach-only open found a segment its creator never
	// initialized.
	ErrNotReady = errors.New("mp: shared object not initialized")
	// ErrNotHeld: Release/Unlock of a lock this handle does not hold
	// (Python raises ValueError, or AssertionError for RLock as
	// multiprocessing does).
	ErrNotHeld = errors.New("mp: lock not held by this handle")
	// ErrTaskDone: TaskDone called more times than there were items
	// (Python raises ValueError).
	ErrTaskDone = errors.New("mp: task_done() called too many times")
	// ErrTypecode: an unknown typecode.
	ErrTypecode = errors.New("mp: unknown typecode")
)
