// Package mp gives Go the shared objects of Python's multiprocessing — Queue,
// JoinableQueue, Value, Array, Semaphore, BoundedSemaphore, Lock, RLock,
// Event, Condition and Barrier — as named objects in shared memory that Go and Python processes
// open by name, with no broker process in between. Python's side is gobridge.Queue, gobridge.Value, ...
// (python/gobridge/queues.py, sharedctypes.py, synchronize.py); the layouts
// are wire/SPEC.md section 10. A Python SimpleQueue is a queue here
// (OpenQueue); Python's RawValue and RawArray are Values and Arrays (the
// lock is Python's choice, the segment the same). Python's typecode 'c' (a
// char) is a Value[byte] or Array[byte] opened WithTypecode('c').
//
// Open an object with OpenQueue, OpenJoinableQueue, OpenValue, OpenArray,
// OpenSemaphore, OpenBoundedSemaphore, OpenLock, OpenRLock, OpenEvent,
// OpenCondition or OpenBarrier:
// each creates the object when the name is free and attaches to it
// otherwise (WithCreateOnly and WithAttachOnly choose one). Call Close when done; the last handle to close removes the
// object from /dev/shm unless it was opened WithKeep.
//
//	q, err := mp.OpenQueue("jobs", mp.WithMaxSize(2))
//	...
//	defer q.Close()
//	err = q.Put(ctx, "p1's A")      // any value wire.Marshal takes
//	v, err := q.Get(ctx)             // decoded as SPEC section 3.1 says
//
// Every call that can block takes a context first and returns its error when
// it ends; the context bounds the whole call, waits for the internal locks
// included, even while another process holding them is stopped. The Nowait
// and Try variants, TaskDone and Release never wait for the queue's state
// but do wait for its internal lock, which a running process holds for
// microseconds. Errors are the sentinels in errors.go (ErrFull, ErrEmpty,
// ...).
//
// Nothing another process wrote is trusted. An opener never writes to a
// segment it did not create (a creator writes the whole object before the
// name exists); a name that holds something else (another kind, an shm:
// listener, someone else's data, a socket) is refused at once, untouched.
// Every field an operation reads is read once and checked, and an
// impossible state is ErrLayout on that object. If another process truncates
// the segment, the fault (SIGBUS) becomes ErrFault on that handle, which is
// then broken; that is why Value's and Array's accessors return errors.
//
// Processes exclude each other with Linux open-file-description locks on
// bytes of the segment file, which the kernel releases when a holder dies,
// and sleep on futex words in the segment. A process killed with SIGKILL at
// any point never blocks the others and never makes half a message visible;
// a message whose Put returned is delivered once (SPEC section 10.7). A Lock
// whose holder dies is released, not left locked (SPEC section 10.8).
package mp
