package pickle

import (
	"encoding/hex"
	"errors"
	"math"
	"testing"

	"github.com/gobridge/gobridge/wire"
)

// FuzzUnmarshal: no input panics or escapes the documented errors, and what
// decodes encodes and decodes again to the same value.
func FuzzUnmarshal(f *testing.F) {
	for _, protos := range loadVectors(f).Vectors {
		for _, hexes := range protos {
			if p, _ := hex.DecodeString(hexes[0]); len(p) < 4096 {
				f.Add(p)
			}
		}
	}
	for _, tc := range refused {
		f.Add([]byte(tc.pickle))
	}
	for _, tc := range bombs {
		if len(tc.pickle) < 4096 {
			f.Add(tc.pickle)
		}
	}
	f.Add(nestedShared(4))
	small := Limits{MaxDepth: 8, MaxMemo: 16, MaxValues: 64}
	f.Fuzz(func(t *testing.T, p []byte) {
		for _, lim := range []Limits{{}, small} {
			v, err := lim.Decode(p)
			if err != nil {
				if !errors.Is(err, wire.ErrDecode) && !errors.Is(err, ErrTooLarge) {
					t.Fatalf("error outside the documented set: %v", err)
				}
				continue
			}
			q, err := Encode(v)
			if err != nil {
				t.Fatalf("decoded %s but cannot encode it: %v", show(v), err)
			}
			w, err := lim.Decode(q)
			if err != nil {
				t.Fatalf("re-decoding %s: %v", show(v), err)
			}
			if !hasNaNKey(v) && !equal(v, w) {
				t.Fatalf("round trip: %s became %s", show(v), show(w))
			}
			var a any
			if err := lim.Unmarshal(p, &a); err != nil {
				t.Fatalf("Unmarshal into *any failed where Decode did not: %v", err)
			}
		}
	})
}

// hasNaNKey reports a map keyed by NaN somewhere in v (such a key cannot be
// looked up, so equal cannot compare it).
func hasNaNKey(v any) bool {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if hasNaNKey(e) {
				return true
			}
		}
	case Tuple:
		return hasNaNKey([]any(x))
	case map[string]any:
		for _, e := range x {
			if hasNaNKey(e) {
				return true
			}
		}
	case map[any]any:
		for k, e := range x {
			if f, ok := k.(float64); ok && math.IsNaN(f) || hasNaNKey(e) {
				return true
			}
		}
	case Set:
		for k := range x {
			if f, ok := k.(float64); ok && math.IsNaN(f) {
				return true
			}
		}
	case FrozenSet:
		for k := range x {
			if f, ok := k.(float64); ok && math.IsNaN(f) {
				return true
			}
		}
	}
	return false
}
