package ofdlock

import (
	"testing"
	"unsafe"

	"github.com/gobridge/gobridge/internal/vectors"
	"golang.org/x/sys/unix"
)

// TestFlockMatchesContract: the struct flock this package passes to fcntl
// (SPEC 10.5) has the size of interop_tests/vectors/layouts.json, which
// Python packs by hand (its python_struct) and checks against the same
// file.
func TestFlockMatchesContract(t *testing.T) {
	if got, want := int64(unsafe.Sizeof(unix.Flock_t{})), vectors.LoadLayouts(t).Int("flock", "size"); got != want {
		t.Errorf("flock.size: layouts.json %d, unix.Flock_t %d bytes", want, got)
	}
}
