// Package shm shares memory between Go and Python processes the way Python's
// mmap module does, including Windows' tagname, which this package makes work
// on Linux.
//
// Open maps a named segment ("tag") from /dev/shm: the same bytes as Python's
// gobridge.mmap.mmap(-1, n, tagname=tag) and as
// multiprocessing.shared_memory.SharedMemory(name=tag). OpenFile maps an
// ordinary file, like mmap.mmap(f.fileno(), n). Both return an *MMap with the
// methods of Python's mmap object (Read, Write, ReadAt, WriteAt, Seek, Tell,
// Find, RFind, ReadLine, Move, Flush, Resize, Size, Len) and Bytes for direct
// access. Call Close when done: the last handle on a tag removes the segment
// (as on Windows) unless it was opened WithKeep.
//
// OpenShareableList reads and writes a multiprocessing.shared_memory.ShareableList
// created by Python 3.9 or later.
//
// Every accessor except Bytes turns a fault on the mapping (the file was
// truncated by another process) into ErrFault and every out-of-range offset
// into ErrOutOfRange; neither kills the process. Memory from Bytes is raw:
// guard access to it with Guard when another process may shrink the file.
//
// wire/SPEC.md section 9 is the contract shared with the Python package.
package shm
