// Package pool runs Python functions in a pool of Python worker processes,
// the Go side of multiprocessing.Pool (seed 001's apply_async, map, close,
// join).
//
// Create a Pool with New(n, WithPython(interpreter)); each worker is
// `python -m gobridge._worker`, started with a gobridge Pipe handed down
// (bridge.StartProcess). New returns once every worker has said hello; an
// interpreter that cannot run the worker (gobridge not installed, say) makes
// it fail with an error matching ErrWorkerStart that carries the worker's
// own last line of standard error ("No module named 'gobridge'"). Functions are named "module:function" and get
// msgpack arguments (wire/SPEC.md section 3); results come back the same
// way. ApplyAsync returns an AsyncResult to Wait on; Map keeps the order of
// its items. Close stops accepting tasks, Join waits for the queued ones and
// the workers' exit, Terminate kills the workers at once.
//
// A Python exception comes back as a *PythonError carrying its type and
// message. A worker that dies (crash, SIGKILL) fails the task it was running
// with an error matching ErrWorkerDied, carrying its exit code, and is
// replaced before the next task. The protocol is in wire/SPEC.md section 12.
package pool
