package shm

import (
	"os"

	"github.com/gobridge/gobridge/internal/shmseg"
)

// Access is a mapping's access mode; the values are Python's mmap constants.
type Access int

const (
	AccessDefault Access = 0 // read-write, shared (as AccessWrite)
	AccessRead    Access = 1 // read-only
	AccessWrite   Access = 2 // read-write, shared with every other mapping
	AccessCopy    Access = 3 // copy-on-write: writes stay in this process
)

func (a Access) String() string {
	switch a {
	case AccessDefault:
		return "ACCESS_DEFAULT"
	case AccessRead:
		return "ACCESS_READ"
	case AccessWrite:
		return "ACCESS_WRITE"
	case AccessCopy:
		return "ACCESS_COPY"
	}
	return "Access(?)"
}

// An OpenOption configures Open and OpenShareableList.
type OpenOption func(*openConfig)

type openConfig struct {
	seg        shmseg.Options
	createOnly bool
	attachOnly bool
	noPrefault bool
}

// WithMode sets the permissions of a segment Open creates (default 0600).
// The umask does not apply.
func WithMode(mode os.FileMode) OpenOption {
	return func(c *openConfig) { c.seg.Mode = mode }
}

// WithKeep keeps the segment after its last handle closes (and from `gobridge
// shm gc`); remove it with Unlink or `gobridge shm rm`.
func WithKeep() OpenOption {
	return func(c *openConfig) { c.seg.Keep = true }
}

// WithAllowOtherOwner permits attaching to a segment owned by another user.
// /dev/shm is world-writable, so by default such a segment is refused: it may
// have been planted.
func WithAllowOtherOwner() OpenOption {
	return func(c *openConfig) { c.seg.AllowOtherOwner = true }
}

// WithCreateOnly fails with ErrExist when the tag exists.
func WithCreateOnly() OpenOption {
	return func(c *openConfig) { c.createOnly = true }
}

// WithAttachOnly fails with ErrNotExist when the tag does not exist, instead
// of creating it.
func WithAttachOnly() OpenOption {
	return func(c *openConfig) { c.attachOnly = true }
}

// WithKind sets the kind a new segment is marked with (shown by `gobridge shm
// ls`); for packages built on this one.
func WithKind(kind string) OpenOption {
	return func(c *openConfig) { c.seg.Kind = kind }
}

// WithoutPrefault skips pre-faulting the mapping's pages.
func WithoutPrefault() OpenOption {
	return func(c *openConfig) { c.noPrefault = true }
}

func newOpenConfig(opts []OpenOption) openConfig {
	c := openConfig{seg: shmseg.Options{Kind: shmseg.KindMMap}}
	for _, o := range opts {
		o(&c)
	}
	return c
}
