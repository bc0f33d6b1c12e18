package shm

import (
	"encoding/binary"
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/gobridge/gobridge/internal/shmseg"
)

func TestShareableListRoundTrip(t *testing.T) {
	name := tag(t)
	vals := []any{int64(-7), 2.5, true, nil, "héllo", []byte("by\x00tes"), false}
	l, err := NewShareableList(name, vals)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, _ := l.Format()
	if f != "qdxxxxxxx?xxxxxx?x8s8sxxxxxxx?" {
		t.Fatalf("format %q", f)
	}
	r, err := OpenShareableList(name)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.List()
	if err != nil {
		t.Fatal(err)
	}
	want := []any{int64(-7), 2.5, true, nil, "héllo", []byte("by\x00tes"), false}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v", got)
	}
	if err := r.Set(0, "eight by"); err != nil {
		t.Fatal(err)
	}
	if err := r.Set(4, "toolongforit"); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("long string: %v", err)
	}
	if err := r.Set(-1, 42); err != nil {
		t.Fatal(err)
	}
	if err := r.Set(1, struct{}{}); !errors.Is(err, ErrType) {
		t.Fatalf("struct: %v", err)
	}
	v0, _ := l.Get(0)
	v6, _ := l.Get(6)
	if v0 != "eight by" || v6 != int64(42) {
		t.Fatalf("after set: %#v %#v", v0, v6)
	}
	if _, err := l.Get(7); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("index 7: %v", err)
	}
}

func TestShareableListRejectsUnknownLayouts(t *testing.T) {
	put := func(b []byte, off int, v int64) { binary.NativeEndian.PutUint64(b[off:], uint64(v)) }
	good := func() []byte {
		// [1]: n=1, offsets 0,8, data q, format "q", code 0
		b := make([]byte, 8+16+8+8+1)
		put(b, 0, 1)
		put(b, 8, 0)
		put(b, 16, 8)
		put(b, 24, 1)
		b[32] = 'q'
		return b
	}
	for _, tc := range []struct {
		name string
		mod  func([]byte) []byte
	}{
		{"count too large", func(b []byte) []byte { put(b, 0, 1<<40); return b }},
		{"negative count", func(b []byte) []byte { put(b, 0, -1); return b }},
		{"3.8 sizes not offsets", func(b []byte) []byte { put(b, 8, 8); return b }},
		{"offset not multiple of 8", func(b []byte) []byte { put(b, 16, 7); return b }},
		{"unknown format", func(b []byte) []byte { b[32] = 'i'; return b }},
		{"wrong code", func(b []byte) []byte { b[40] = 1; return b }},
		{"string longer than slot", func(b []byte) []byte { copy(b[32:], "16s"); b[40] = 1; return b }},
		{"truncated", func(b []byte) []byte { return b[:20] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := tag(t)
			if err := os.WriteFile(shmseg.Path(name), tc.mod(good()), 0o600); err != nil {
				t.Fatal(err)
			}
			l, err := OpenShareableList(name)
			if !errors.Is(err, ErrLayout) {
				if l != nil {
					l.Close()
				}
				t.Fatalf("err %v, want ErrLayout", err)
			}
		})
	}
	name := tag(t)
	os.WriteFile(shmseg.Path(name), good(), 0o600)
	l, err := OpenShareableList(name)
	if err != nil {
		t.Fatalf("good layout: %v", err)
	}
	l.Close()
	if _, err := os.Stat(shmseg.Path(name)); err != nil {
		t.Fatal("closing an attached (unmarked) list removed it")
	}
}
