// Package vectors loads the shared test vectors (interop_tests/vectors,
// wire/SPEC.md section 8) for the Go tests, and compares decoded values the
// way the contract means them. pytest reads the same file.
package vectors

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// Vector is one entry of vectors.json.
type Vector struct {
	Name      string          `json:"name"`
	Hex       string          `json:"hex"`
	Gen       string          `json:"gen"`
	N         int             `json:"n"`
	Byte      int             `json:"byte"`
	Unit      string          `json:"unit"`
	UnitValue json.RawMessage `json:"unit_value"`
	Value     json.RawMessage `json:"value"`
	Canonical bool            `json:"canonical"`
	Go        string          `json:"go"`
	Py        string          `json:"py"`
	Error     string          `json:"error"`
	PyError   string          `json:"py_error"`
}

// Path is the location of vectors.json.
func Path() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "interop_tests", "vectors", "vectors.json")
}

// Load reads every vector.
func Load(t testing.TB) []Vector {
	t.Helper()
	data, err := os.ReadFile(Path())
	if err != nil {
		t.Fatalf("shared vectors: %v", err)
	}
	var vs []Vector
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatalf("vectors.json: %v", err)
	}
	return vs
}

// Valid returns the vectors that Go decodes (those without an error class);
// it includes those Python cannot (PyError set).
func Valid(vs []Vector) []Vector {
	var out []Vector
	for _, v := range vs {
		if v.Error == "" {
			out = append(out, v)
		}
	}
	return out
}

// Shared returns the vectors that both languages decode.
func Shared(vs []Vector) []Vector {
	var out []Vector
	for _, v := range vs {
		if v.Error == "" && v.PyError == "" {
			out = append(out, v)
		}
	}
	return out
}

// Payload returns the vector's bytes, expanding generator entries.
func (v Vector) Payload() ([]byte, error) {
	switch v.Gen {
	case "":
		return hex.DecodeString(v.Hex)
	case "deep_array":
		return append(bytes.Repeat([]byte{0x91}, v.N), 0xc0), nil
	case "bin":
		var p []byte
		switch {
		case v.N < 256:
			p = []byte{0xc4, byte(v.N)}
		case v.N < 65536:
			p = []byte{0xc5, byte(v.N >> 8), byte(v.N)}
		default:
			p = []byte{0xc6, byte(v.N >> 24), byte(v.N >> 16), byte(v.N >> 8), byte(v.N)}
		}
		return append(p, bytes.Repeat([]byte{byte(v.Byte)}, v.N)...), nil
	case "array_of":
		unit, err := hex.DecodeString(v.Unit)
		if err != nil {
			return nil, fmt.Errorf("vector %s: unit: %w", v.Name, err)
		}
		var p []byte
		switch {
		case v.N < 16:
			p = []byte{0x90 | byte(v.N)}
		case v.N < 65536:
			p = []byte{0xdc, byte(v.N >> 8), byte(v.N)}
		default:
			p = []byte{0xdd, byte(v.N >> 24), byte(v.N >> 16), byte(v.N >> 8), byte(v.N)}
		}
		return append(p, bytes.Repeat(unit, v.N)...), nil
	}
	return nil, fmt.Errorf("vector %s: unknown generator %q", v.Name, v.Gen)
}

// Expected returns the vector's value in Go's shapes; parse reads gobridge
// JSON (wire.FromJSON, which this package cannot import).
func (v Vector) Expected(parse func([]byte) (any, error)) (any, error) {
	switch v.Gen {
	case "":
		return parse(v.Value)
	case "deep_array":
		var x any = []any{nil}
		for i := 1; i < v.N; i++ {
			x = []any{x}
		}
		return x, nil
	case "bin":
		return bytes.Repeat([]byte{byte(v.Byte)}, v.N), nil
	case "array_of":
		unit, err := parse(v.UnitValue)
		if err != nil {
			return nil, fmt.Errorf("vector %s: unit_value: %w", v.Name, err)
		}
		x := make([]any, v.N)
		for i := range x {
			x[i] = unit
		}
		return x, nil
	}
	return nil, fmt.Errorf("vector %s: unknown generator %q", v.Name, v.Gen)
}

// TypeName is the name the vectors' "go" field uses for x's type.
func TypeName(x any) string {
	if x == nil {
		return "nil"
	}
	return fmt.Sprintf("%T", x)
}

// Same compares decoded values: NaN equals NaN, -0 differs from 0, times by
// instant, bytes by content.
func Same(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && (x == y && math.Signbit(x) == math.Signbit(y) || math.IsNaN(x) && math.IsNaN(y))
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Same(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			if yv, ok := y[k]; !ok || !Same(xv, yv) {
				return false
			}
		}
		return true
	case map[any]any:
		y, ok := b.(map[any]any)
		if !ok || len(x) != len(y) {
			return false
		}
		// A NaN key is never found by lookup: NaN-keyed values are compared
		// as multisets instead.
		var xNaN, yNaN []any
		for k, xv := range x {
			if isNaN(k) {
				xNaN = append(xNaN, xv)
			} else if yv, ok := y[k]; !ok || !Same(xv, yv) {
				return false
			}
		}
		for k, yv := range y {
			if isNaN(k) {
				yNaN = append(yNaN, yv)
			}
		}
		if len(xNaN) != len(yNaN) {
			return false
		}
	next:
		for _, xv := range xNaN {
			for j, yv := range yNaN {
				if Same(xv, yv) {
					yNaN = append(yNaN[:j], yNaN[j+1:]...)
					continue next
				}
			}
			return false
		}
		return true
	}
	return a == b
}

func isNaN(k any) bool {
	switch f := k.(type) {
	case float64:
		return math.IsNaN(f)
	case float32:
		return math.IsNaN(float64(f))
	}
	return false
}
