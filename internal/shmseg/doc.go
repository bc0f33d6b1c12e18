// Package shmseg creates, attaches and reclaims gobridge's named shared-memory
// segments: regular files in /dev/shm that Go and Python map with mmap.
//
// Start with Open (create or attach), Create (must not exist) or Attach (must
// exist); each returns a *Segment, one handle. Map the segment's File with
// mmap, then call Close on the handle: the last handle to close removes the
// segment from /dev/shm unless it was opened with Keep. Unlink removes a
// segment now (holders keep their mappings); List and GC back the CLI's
// `gobridge shm ls` and `gobridge shm gc`, and ListSockets the unix sockets
// of shm: listeners there (GC removes the caller's stale ones).
//
// The protocol (wire/SPEC.md section 9) is shared with python/gobridge/_internal/shmseg.py:
//
//   - every handle holds flock(LOCK_SH) on its own open file description;
//   - a closer that wins flock(LOCK_EX|LOCK_NB) is the last handle and
//     unlinks the path, if the path still names its inode;
//   - an opener that got LOCK_SH re-checks st_nlink > 0 and that the path
//     still names the same inode, and starts over otherwise;
//   - a new segment is built unnamed (O_TMPFILE), sized, pre-allocated, marked
//     and locked, then published with linkat, which fails when the name
//     exists: nobody sees a half-made segment, and the name is never
//     followed through a symlink (O_EXCL semantics);
//   - the xattr user.gobridge.kind marks a segment as gobridge's (GC touches
//     nothing else) and names what it holds; user.gobridge.keep=1 exempts it
//     from last-close removal and from GC.
//
// Options.Init fills a new segment before its name is published (the shared
// objects write their header there), so a name never names a half-made
// segment; where O_TMPFILE is missing, a private temporary name is linked to
// the real one instead (link(2), which fails when the name exists).
//
// A process killed with SIGKILL loses its flocks with it, so its segments
// become unheld and GC reclaims them.
//
// Accessing mapped memory whose backing file shrank raises SIGBUS; Copy turns
// that into ErrFault instead of killing the process.
package shmseg
