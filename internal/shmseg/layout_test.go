package shmseg

import (
	"testing"

	"github.com/gobridge/gobridge/internal/vectors"
)

// TestMarksMatchContract: the xattr names of the marks and the kind List
// gives sockets (SPEC 9.4) are the ones in
// interop_tests/vectors/layouts.json. The kinds themselves are checked,
// with bridge/shm's, in bridge/shm's TestSegmentKindsMatchContract.
func TestMarksMatchContract(t *testing.T) {
	l := vectors.LoadLayouts(t)
	for _, c := range []struct{ key, file, code string }{
		{"xattr_kind", l.Str("segment_kinds", "xattr_kind"), xattrKind},
		{"xattr_keep", l.Str("segment_kinds", "xattr_keep"), xattrKeep},
	} {
		if c.file != c.code {
			t.Errorf("segment_kinds.%s: layouts.json %q, the code %q", c.key, c.file, c.code)
		}
	}
	if got := l.Keys("segment_kinds", "listed_only"); len(got) != 1 || got[0] != KindSocket {
		t.Errorf("segment_kinds.listed_only: layouts.json %q, the code lists only %q", got, KindSocket)
	}
}
