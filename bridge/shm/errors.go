package shm

import (
	"errors"

	"github.com/gobridge/gobridge/internal/shmseg"
)

// Errors returned by this package; match them with errors.Is.
var (
	// ErrClosed: the MMap or ShareableList was closed.
	ErrClosed = errors.New("shm: closed")
	// ErrOutOfRange: an offset, length or seek position outside the mapping.
	ErrOutOfRange = errors.New("shm: out of range")
	// ErrReadOnly: a write to a mapping opened with AccessRead.
	ErrReadOnly = errors.New("shm: mapping is read-only")
	// ErrNotResizable: Resize of an AccessRead or AccessCopy mapping.
	ErrNotResizable = errors.New("shm: mapping cannot be resized in this access mode")
	// ErrBusy: Resize of a tagged mapping while other handles (in this or
	// another process) map the tag; Windows refuses that resize too.
	ErrBusy = errors.New("shm: other handles map the tag")
	// ErrLayout: a ShareableList whose bytes are not the CPython 3.9+ layout.
	ErrLayout = errors.New("shm: not a ShareableList this package understands")
	// ErrType: a ShareableList value of a type the list cannot hold.
	ErrType = errors.New("shm: unsupported ShareableList value type")

	// Errors of the segment layer, re-exported.
	ErrFault      = shmseg.ErrFault      // mapped memory lost its backing (truncated file)
	ErrName       = shmseg.ErrName       // invalid tag
	ErrExist      = shmseg.ErrExist      // WithCreateOnly and the tag exists
	ErrNotExist   = shmseg.ErrNotExist   // WithAttachOnly (or length 0) and no such tag
	ErrOtherOwner = shmseg.ErrOtherOwner // the segment belongs to another user
	ErrNotRegular = shmseg.ErrNotRegular // the name is a symlink, FIFO, directory...
	ErrTooSmall   = shmseg.ErrTooSmall   // the existing segment is shorter than length
)
