package ring

import (
	"testing"
	"unsafe"

	"github.com/gobridge/gobridge/internal/vectors"
)

// TestCtlLayoutMatchesContract: the control block (SPEC 11.2) as New maps
// it, each field's offset and width taken from the pointers a Ring really
// uses, is the one in interop_tests/vectors/layouts.json, which Python's
// constants are checked against too.
func TestCtlLayoutMatchesContract(t *testing.T) {
	l := vectors.LoadLayouts(t)
	if got := l.Int("ring_ctl", "size"); got != CtlSize {
		t.Errorf("ring_ctl.size: layouts.json %d, CtlSize %d", got, CtlSize)
	}
	if got := l.Int("ring_ctl", "step"); got != Step {
		t.Errorf("ring_ctl.step: layouts.json %d, Step %d", got, Step)
	}
	mem := make([]byte, 2*CtlSize+4096)
	ctl := mem[64-uintptr(unsafe.Pointer(&mem[0]))%64:][:CtlSize] // 64-byte aligned
	r, err := New(ctl, make([]byte, 4096))
	if err != nil {
		t.Fatal(err)
	}
	base := uintptr(unsafe.Pointer(&ctl[0]))
	off := func(p unsafe.Pointer) int { return int(uintptr(p) - base) }
	l.CheckFields("ring_ctl", map[string]vectors.Field{
		"head":    {Off: off(unsafe.Pointer(r.headp)), Size: int(unsafe.Sizeof(*r.headp))},
		"wclosed": {Off: off(unsafe.Pointer(r.wclosed)), Size: int(unsafe.Sizeof(*r.wclosed))},
		"tail":    {Off: off(unsafe.Pointer(r.tailp)), Size: int(unsafe.Sizeof(*r.tailp))},
		"rclosed": {Off: off(unsafe.Pointer(r.rclosed)), Size: int(unsafe.Sizeof(*r.rclosed))},
		"rwait":   {Off: off(unsafe.Pointer(r.rwait)), Size: int(unsafe.Sizeof(*r.rwait))},
		"wwait":   {Off: off(unsafe.Pointer(r.wwait)), Size: int(unsafe.Sizeof(*r.wwait))},
	})
}
