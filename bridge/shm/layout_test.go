package shm

import (
	"slices"
	"testing"

	"github.com/gobridge/gobridge/internal/shmseg"
	"github.com/gobridge/gobridge/internal/vectors"
)

// TestSegmentKindsMatchContract: the kinds a gobridge segment is marked
// with (SPEC 9.4: this package's, internal/shmseg's and bridge/mp's) are
// exactly those of interop_tests/vectors/layouts.json, which Python's
// constants are checked against too.
func TestSegmentKindsMatchContract(t *testing.T) {
	code := []string{
		shmseg.KindMMap, shmseg.KindRaw, KindShareableList,
		shmseg.KindQueue, shmseg.KindJoinableQueue, shmseg.KindValue, shmseg.KindArray,
		shmseg.KindSemaphore, shmseg.KindLock, shmseg.KindRLock, shmseg.KindBoundedSemaphore, shmseg.KindEvent, shmseg.KindCondition, shmseg.KindBarrier,
	}
	file := vectors.LoadLayouts(t).Strings("segment_kinds", "kinds")
	slices.Sort(code)
	slices.Sort(file)
	if !slices.Equal(code, file) {
		t.Errorf("segment_kinds.kinds: layouts.json %q, the code %q", file, code)
	}
}
