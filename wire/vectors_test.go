package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// vector is one entry of interop_tests/vectors/vectors.json (SPEC section 8).
type vector struct {
	Name      string          `json:"name"`
	Hex       string          `json:"hex"`
	Gen       string          `json:"gen"`
	N         int             `json:"n"`
	Byte      int             `json:"byte"`
	Value     json.RawMessage `json:"value"`
	Canonical bool            `json:"canonical"`
	Go        string          `json:"go"`
	Error     string          `json:"error"`
}

var vectorErrors = map[string]error{
	"malformed":         ErrMalformed,
	"too_deep":          ErrTooDeep,
	"invalid_utf8":      ErrInvalidUTF8,
	"unknown_extension": ErrUnknownExtension,
	"unsupported_key":   ErrUnsupportedKey,
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "interop_tests", "vectors", "vectors.json"))
	if err != nil {
		t.Fatalf("shared vectors: %v", err)
	}
	var vs []vector
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatalf("vectors.json: %v", err)
	}
	return vs
}

// payload returns the vector's bytes, expanding generator entries.
func (v vector) payload() ([]byte, error) {
	switch v.Gen {
	case "":
		return hex.DecodeString(v.Hex)
	case "deep_array":
		return append(bytes.Repeat([]byte{0x91}, v.N), 0xc0), nil
	case "bin":
		p := []byte{0xc6, byte(v.N >> 24), byte(v.N >> 16), byte(v.N >> 8), byte(v.N)}
		switch {
		case v.N < 256:
			p = []byte{0xc4, byte(v.N)}
		case v.N < 65536:
			p = []byte{0xc5, byte(v.N >> 8), byte(v.N)}
		}
		return append(p, bytes.Repeat([]byte{byte(v.Byte)}, v.N)...), nil
	}
	return nil, fmt.Errorf("unknown generator %q", v.Gen)
}

// expected returns the vector's value in Go's shapes.
func (v vector) expected() (any, error) {
	switch {
	case v.Gen == "deep_array":
		var x any
		for i := 0; i < v.N; i++ {
			if i == 0 {
				x = []any{nil}
			} else {
				x = []any{x}
			}
		}
		return x, nil
	case v.Gen == "bin":
		return bytes.Repeat([]byte{byte(v.Byte)}, v.N), nil
	}
	return FromJSON(v.Value)
}

func typeName(x any) string {
	if x == nil {
		return "nil"
	}
	return fmt.Sprintf("%T", x)
}

// same compares decoded values: NaN equals NaN, times by instant.
func same(a, b any) bool {
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
			if !same(x[i], y[i]) {
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
			if yv, ok := y[k]; !ok || !same(xv, yv) {
				return false
			}
		}
		return true
	case map[any]any:
		y, ok := b.(map[any]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			if yv, ok := y[k]; !ok || !same(xv, yv) {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestVectors(t *testing.T) {
	vs := loadVectors(t)
	if len(vs) < 40 {
		t.Fatalf("only %d vectors; the contract asks for at least 40", len(vs))
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			p, err := v.payload()
			if err != nil {
				t.Fatal(err)
			}
			var got any
			err = Unmarshal(p, &got)
			if v.Error != "" {
				want, ok := vectorErrors[v.Error]
				if !ok {
					t.Fatalf("unknown error class %q", v.Error)
				}
				if !errors.Is(err, want) {
					t.Fatalf("err = %v, want %v", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			want, err := v.expected()
			if err != nil {
				t.Fatalf("vector value: %v", err)
			}
			if !same(got, want) {
				t.Fatalf("decoded %#v, want %#v", got, want)
			}
			if v.Go != "" && typeName(got) != v.Go {
				t.Errorf("Go type %s, want %s", typeName(got), v.Go)
			}
			if v.Canonical {
				back, err := Marshal(want)
				if err != nil || !bytes.Equal(back, p) {
					t.Errorf("re-encoded %x, %v; want %x", back, err, p)
				}
			}
		})
	}
}
