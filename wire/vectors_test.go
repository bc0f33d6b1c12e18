package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gobridge/gobridge/internal/vectors"
)

var vectorErrors = map[string]error{
	"malformed":           ErrMalformed,
	"too_deep":            ErrTooDeep,
	"too_many_containers": ErrTooManyContainers,
	"invalid_utf8":        ErrInvalidUTF8,
	"unknown_extension":   ErrUnknownExtension,
	"unsupported_key":     ErrUnsupportedKey,
}

// expected returns a vector's value in Go's shapes.
func expected(v vectors.Vector) (any, error) { return v.Expected(FromJSON) }

func TestVectors(t *testing.T) {
	vs := vectors.Load(t)
	if len(vs) < 40 {
		t.Fatalf("only %d vectors; the contract asks for at least 40", len(vs))
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			p, err := v.Payload()
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
				if !errors.Is(err, want) || !errors.Is(err, ErrDecode) || got != nil {
					t.Fatalf("err = %v (value %v), want %v", err, got, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			want, err := expected(v)
			if err != nil {
				t.Fatalf("vector value: %v", err)
			}
			if !vectors.Same(got, want) {
				if v.Gen != "" { // too large to print
					t.Fatalf("decoded a different %T", got)
				}
				t.Fatalf("decoded %#v, want %#v", got, want)
			}
			if v.Go != "" && vectors.TypeName(got) != v.Go {
				t.Errorf("Go type %s, want %s", vectors.TypeName(got), v.Go)
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
