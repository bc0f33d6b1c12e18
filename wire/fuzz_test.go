package wire

import (
	"bytes"
	"errors"
	"io"
	"math"
	"testing"

	"github.com/gobridge/gobridge/internal/vectors"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

func seedPayloads(f *testing.F) {
	for _, v := range vectors.Load(f) {
		if p, err := v.Payload(); err == nil && len(p) < 4096 {
			f.Add(p)
		}
	}
}

// FuzzUnmarshal checks decode -> encode -> decode: whatever decodes must
// encode, and decode again to the same value (x/net/dnsmessage's
// FuzzUnpackPack). It also checks the container budget with a minimum small
// enough for fuzzed payloads to reach (checkBudget).
func FuzzUnmarshal(f *testing.F) {
	seedPayloads(f)
	f.Add([]byte{0x94, 0x90, 0x90, 0x80, 0x90})
	f.Fuzz(func(t *testing.T, p []byte) {
		checkBudget(t, p)
		var v any
		if err := Unmarshal(p, &v); err != nil {
			if v != nil {
				t.Fatalf("error %v left a value %#v", err, v)
			}
			return
		}
		q, err := Marshal(v)
		if err != nil {
			t.Fatalf("decoded %#v does not encode: %v", v, err)
		}
		var w any
		if err := Unmarshal(q, &w); err != nil {
			t.Fatalf("re-encoded %x does not decode: %v", q, err)
		}
		if !vectors.Same(v, w) {
			t.Fatalf("round trip changed %#v into %#v", v, w)
		}
	})
}

// checkBudget: a payload is refused with ErrTooManyContainers exactly when
// its arrays + MapWeight × maps exceed max(4, len/3), and the budget refuses
// nothing else.
func checkBudget(t *testing.T, p []byte) {
	const min = 4
	err := validate(p, min)
	if full := validate(p, math.MaxInt); full != nil {
		if err == nil {
			t.Fatalf("valid with a small budget, invalid with none: %v", full)
		}
		return
	}
	w := weightOf(msgpack.NewDecoder(bytes.NewReader(p)))
	over := w > max(min, len(p)/3)
	if over != errors.Is(err, ErrTooManyContainers) || (!over && err != nil) {
		t.Fatalf("weight %d, budget %d: %v", w, max(min, len(p)/3), err)
	}
}

// weightOf counts arrays + MapWeight × maps in the (valid) object d reads,
// with vmihailenco/msgpack's decoder rather than this package's scanner.
func weightOf(d *msgpack.Decoder) int {
	c, _ := d.PeekCode()
	switch {
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, _ := d.DecodeArrayLen()
		w := 1
		for i := 0; i < n; i++ {
			w += weightOf(d)
		}
		return w
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, _ := d.DecodeMapLen()
		w := MapWeight
		for i := 0; i < 2*n; i++ {
			w += weightOf(d)
		}
		return w
	}
	d.Skip()
	return 0
}

// FuzzReadFrame feeds arbitrary bytes to a Reader with a small limit: it must
// return frames whose sizes match their headers, or an error, never panic or
// allocate beyond the limit.
func FuzzReadFrame(f *testing.F) {
	for _, v := range vectors.Load(f) {
		if p, err := v.Payload(); err == nil && len(p) < 4096 {
			var b bytes.Buffer
			WriteFrame(&b, p, 0)
			f.Add(b.Bytes())
		}
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := NewReader(bytes.NewReader(in), 1<<16)
		for {
			p, err := fr.ReadFrame(nil)
			if err != nil {
				if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) &&
					!errors.Is(err, ErrFrameTooLarge) && !errors.Is(err, ErrBadHeader) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(p) > 1<<16 {
				t.Fatalf("frame of %d bytes passed a 64 KiB limit", len(p))
			}
		}
	})
}
