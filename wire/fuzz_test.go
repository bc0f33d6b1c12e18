package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/gobridge/gobridge/internal/vectors"
)

func seedPayloads(f *testing.F) {
	for _, v := range vectors.Load(f) {
		if p, err := v.Payload(); err == nil && len(p) < 4096 {
			f.Add(p)
		}
	}
}

// FuzzUnmarshal checks decode -> encode -> decode: whatever decodes must
// encode, and decode again to the same value (x/net/dnsmessage's FuzzUnpackPack).
func FuzzUnmarshal(f *testing.F) {
	seedPayloads(f)
	f.Fuzz(func(t *testing.T, p []byte) {
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
