package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// arrayOf is an array32 of n copies of unit, one element each.
func arrayOf(n int, unit []byte) []byte { return flatArrayOf(n, unit, 1) }

// flatArrayOf is an array32 of n copies of unit, which holds per elements.
func flatArrayOf(n int, unit []byte, per int) []byte {
	p := binary.BigEndian.AppendUint32([]byte{0xdd}, uint32(n*per))
	return append(p, bytes.Repeat(unit, n)...)
}

func TestContainerBudgetEdges(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    []byte
		ok   bool
	}{
		{"empty arrays at the minimum", arrayOf(MinContainerBudget-1, []byte{0x90}), true},
		{"empty arrays one over", arrayOf(MinContainerBudget, []byte{0x90}), false},
		{"empty maps at the minimum", arrayOf((MinContainerBudget-1)/MapWeight, []byte{0x80}), true},
		{"empty maps one over", arrayOf((MinContainerBudget-1)/MapWeight+1, []byte{0x80}), false},
		{"one-entry maps over", arrayOf(MinContainerBudget/MapWeight, []byte{0x81, 0, 0}), false},
		{"int pairs, any number", arrayOf(400000, []byte{0x92, 0x01, 0x02}), true},
		{"1-char strings, any number", arrayOf(1000000, []byte{0xa1, 'a'}), true},
		{"[0] arrays, 2 bytes each", arrayOf(300000, []byte{0x91, 0x00}), false},
		{"[[], 0, 0] triples", flatArrayOf(300000, []byte{0x90, 0, 0}, 3), true},
		{"[[], 0] pairs", flatArrayOf(300000, []byte{0x90, 0}, 2), false},
		{"records of 7 bytes", arrayOf(100000, []byte{0x82, 0xa1, 'x', 0x01, 0xa1, 'y', 0x02}), false},
		{"records of 9 bytes", arrayOf(100000, []byte{0x82, 0xa1, 'x', 0x01, 0xa1, 'y', 0xcd, 0x03, 0xe8}), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v any
			err := Unmarshal(tc.p, &v)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrTooManyContainers) || !errors.Is(err, ErrMalformed) || !errors.Is(err, ErrDecode) || v != nil {
				t.Fatalf("err = %v (value %T), want ErrTooManyContainers", err, v)
			}
			if !strings.Contains(err.Error(), "bytes/3") {
				t.Errorf("the message does not say the limit: %v", err)
			}
		})
	}
}

// Payloads up to 64 KiB can never reach the budget, so a decoder may skip
// counting them (Python does).
func TestSmallPayloadsCannotReachTheBudget(t *testing.T) {
	if ContainerBudget(64<<10) != MinContainerBudget || MapWeight*(64<<10) > MinContainerBudget {
		t.Fatalf("ContainerBudget(64 KiB) = %d", ContainerBudget(64<<10))
	}
	if err := Validate(arrayOf((64<<10 - 5), []byte{0x80})); err != nil {
		t.Fatal(err)
	}
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// The budget bounds what decoding a payload can cost: the worst payloads
// it allows cost about what dense legitimate data does, and those it
// refuses cost nothing (the scan allocates nothing).
func TestDecodeMemoryIsBounded(t *testing.T) {
	const n = 3 << 20
	worst := map[string][]byte{
		"[[], 0, 0] triples":    flatArrayOf(n/3, []byte{0x90, 0, 0}, 3),
		"[{}, 0 x 8] nines":     flatArrayOf(n/9, []byte{0x80, 0, 0, 0, 0, 0, 0, 0, 0}, 9),
		"[{0: 0}, 0 x 6] nines": flatArrayOf(n/9, []byte{0x81, 0, 0, 0, 0, 0, 0, 0, 0}, 7),
		"int pairs":             arrayOf(n/3, []byte{0x92, 0, 0}),
	}
	for name, p := range worst {
		var v any
		got := allocated(func() {
			if err := Unmarshal(p, &v); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		})
		ratio := float64(got) / float64(len(p))
		t.Logf("%s: %.1f bytes allocated per payload byte", name, ratio)
		if ratio > 60 {
			t.Errorf("%s: decoding allocates %.1f bytes per payload byte", name, ratio)
		}
		v = nil
	}
	for name, p := range map[string][]byte{
		"empty arrays":   arrayOf(n, []byte{0x90}),
		"empty maps":     arrayOf(n, []byte{0x80}),
		"one-entry maps": arrayOf(n/3, []byte{0x81, 0, 0}),
	} {
		var v any
		got := allocated(func() {
			if err := Unmarshal(p, &v); !errors.Is(err, ErrTooManyContainers) {
				t.Fatalf("%s: %v", name, err)
			}
		})
		if got > 64<<10 {
			t.Errorf("%s: refusing allocated %d bytes", name, got)
		}
	}
}

func TestEncoderRefusesOverBudget(t *testing.T) {
	many := make([]any, MinContainerBudget)
	for i := range many {
		many[i] = []any{}
	}
	_, err := Marshal(many)
	if !errors.Is(err, ErrTooManyContainers) || !errors.Is(err, ErrUnsupportedType) || errors.Is(err, ErrDecode) {
		t.Fatalf("err = %v", err)
	}
	if _, err := Marshal(many[1:]); err != nil { // exactly the budget
		t.Fatal(err)
	}
	typed := make([][]int, MinContainerBudget) // counted through the check of what vmihailenco wrote
	for i := range typed {
		typed[i] = []int{}
	}
	if _, err := Marshal(typed); !errors.Is(err, ErrTooManyContainers) {
		t.Fatalf("typed: err = %v", err)
	}
}
