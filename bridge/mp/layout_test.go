package mp

import (
	"testing"

	"github.com/gobridge/gobridge/internal/vectors"
)

// TestLayoutsMatchContract: the shared-object header, the Value, Array,
// Semaphore and Queue layouts, the kind codes and names and the lock bytes
// (SPEC 10.2-10.9) are the ones in interop_tests/vectors/layouts.json,
// which Python's constants are checked against too. Sizes are the widths
// the code reads and writes (u32: 4, set64: 8).
func TestLayoutsMatchContract(t *testing.T) {
	l := vectors.LoadLayouts(t)
	ints := func(sec string, want map[string]int64) {
		t.Helper()
		for key, code := range want {
			if got := l.Int(sec, key); got != code {
				t.Errorf("%s.%s: layouts.json %d, the code %d", sec, key, got, code)
			}
		}
	}

	ints("object", map[string]int64{
		"magic": magic, "version": version, "header_size": headerSize,
		"redo_max": redoMax, "redo_entry_size": redoEntry,
	})
	l.CheckFields("object", map[string]vectors.Field{
		"magic":    {Off: offMagic, Size: 4},
		"version":  {Off: offVersion, Size: 1},
		"kind":     {Off: offKind, Size: 1},
		"typecode": {Off: offTypecode, Size: 1},
		"itemsize": {Off: offItemsize, Size: 1},
		"redo_n":   {Off: offRedoN, Size: 4},
		"holder":   {Off: offHolder, Size: 4},
		"redo":     {Off: offRedoN + 8, Size: redoMax * redoEntry},
	})
	codes := map[string]int64{}
	for code, name := range kindNames {
		codes[name] = int64(code)
	}
	l.CheckInts("object", "kinds", codes)
	l.CheckInts("object", "lock_bytes", map[string]int64{
		"internal": lockInternal, "user": lockUser, "get": lockGet,
	})

	l.CheckFields("value", map[string]vectors.Field{
		"value":       {Off: valueOff, Size: 8},
		"array_len":   {Off: arrayLenOff, Size: 8},
		"array_items": {Off: arrayItems, Size: 0},
	})
	ints("value", map[string]int64{"value_size": int64(minSize(kindValue))})
	sizes := l.Ints("value", "item_sizes")
	for tc, size := range sizes {
		if len(tc) != 1 || int64(ItemSize(tc[0])) != size {
			t.Errorf("value.item_sizes[%q]: layouts.json %d, ItemSize %d", tc, size, ItemSize(tc[0]))
		}
	}
	for c := 0; c < 256; c++ {
		if _, listed := sizes[string(rune(c))]; ItemSize(byte(c)) != 0 && !listed {
			t.Errorf("typecode %q has an item size in Go and none in layouts.json", rune(c))
		}
	}

	l.CheckFields("semaphore", map[string]vectors.Field{
		"count":   {Off: semValue, Size: 4},
		"waiters": {Off: semWaiters, Size: 4},
	})
	ints("semaphore", map[string]int64{"size": int64(minSize(kindSemaphore))})
	l.CheckFields("bounded_semaphore", map[string]vectors.Field{
		"count":   {Off: semValue, Size: 4},
		"waiters": {Off: semWaiters, Size: 4},
		"bound":   {Off: bsemBound, Size: 4},
	})
	ints("bounded_semaphore", map[string]int64{"size": int64(minSize(kindBoundedSem))})
	l.CheckFields("event", map[string]vectors.Field{"state": {Off: evState, Size: 4}})
	ints("event", map[string]int64{"size": int64(minSize(kindEvent))})
	l.CheckFields("condition", map[string]vectors.Field{
		"seq":    {Off: cvSeq, Size: 4},
		"ticket": {Off: cvTicket, Size: 4},
		"slots":  {Off: cvSlots, Size: cvNSlots * cvSlot},
	})
	ints("condition", map[string]int64{
		"size": int64(minSize(kindCondition)), "slots": cvNSlots, "slot_size": cvSlot, "liveness_lock_byte": cvLive,
	})
	l.CheckFields("barrier", map[string]vectors.Field{
		"parties": {Off: barParties, Size: 4},
		"gen":     {Off: barGen, Size: 4},
		"broken":  {Off: barBroken, Size: 4},
		"count":   {Off: barCount, Size: 4},
		"slots":   {Off: barSlots, Size: barNSlots * barSlot},
	})
	ints("barrier", map[string]int64{
		"size": int64(minSize(kindBarrier)), "slots": barNSlots, "slot_size": barSlot, "liveness_lock_byte": barLive,
	})
	l.CheckInts("barrier", "states", map[string]int64{
		"free": barFree, "waiting": barWaiting, "passed": barPassed, "broken": barBrokenSt,
	})
	l.CheckInts("condition", "states", map[string]int64{"free": cvFree, "waiting": cvWaiting, "notified": cvNotified})

	ints("queue", map[string]int64{
		"record_header": recHeader, "min_capacity": minCap, "default_capacity": DefaultCapacity,
	})
	l.CheckFields("queue", map[string]vectors.Field{
		"maxsize":    {Off: qMaxsize, Size: 8},
		"capacity":   {Off: qCapacity, Size: 8},
		"head":       {Off: qHead, Size: 8},
		"tail":       {Off: qTail, Size: 8},
		"put_seq":    {Off: qPutSeq, Size: 8},
		"get_seq":    {Off: qGetSeq, Size: 8},
		"nput":       {Off: qNPut, Size: 4},
		"nget":       {Off: qNGet, Size: 4},
		"getters":    {Off: qGetters, Size: 4},
		"putters":    {Off: qPutters, Size: 4},
		"unfinished": {Off: qUnfin, Size: 4},
		"get_redo_n": {Off: qGetRedoN, Size: 4},
		"get_redo":   {Off: qGetRedoN + 8, Size: redoMax * redoEntry},
		"ring":       {Off: qRing, Size: 0},
	})
}
