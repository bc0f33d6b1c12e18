package shmseg

// Kinds of the multiprocessing-style shared objects (bridge/mp and
// python/gobridge/_internal/objects.py, wire/SPEC.md section 10), so that `gobridge shm
// ls` names what each segment holds.
const (
	KindQueue            = "queue"
	KindJoinableQueue    = "joinable_queue"
	KindValue            = "value"
	KindArray            = "array"
	KindSemaphore        = "semaphore"
	KindLock             = "lock"
	KindRLock            = "rlock"
	KindBoundedSemaphore = "bounded_semaphore"
	KindEvent            = "event"
	KindCondition        = "condition"
	KindBarrier          = "barrier"
)
