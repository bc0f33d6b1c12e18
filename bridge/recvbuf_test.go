package bridge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// TestRecvReusesNoValue: Recv decodes from a buffer the Conn reuses, so
// values it returned earlier (byte slices, strings, nested, struct fields)
// must not change when later messages arrive.
func TestRecvReusesNoValue(t *testing.T) {
	type rec struct {
		B []byte `msgpack:"b"`
		S string `msgpack:"s"`
	}
	forEachTransport(t, func(t *testing.T, mk func(*testing.T, ...ConnOption) pair) {
		p := mk(t)
		first := bytes.Repeat([]byte{'a'}, 60)
		go func() {
			p.tx.Send(first)
			p.tx.Send(string(first))
			p.tx.Send(map[string]any{"b": first, "s": string(first)})
			p.tx.Send(map[string]any{"b": first, "s": string(first)})
			for i := 0; i < 10; i++ { // same sizes, other bytes
				p.tx.Send(bytes.Repeat([]byte{byte('b' + i)}, 60))
				p.tx.Send(map[string]any{"b": bytes.Repeat([]byte{byte('b' + i)}, 60), "s": string(bytes.Repeat([]byte{byte('b' + i)}, 60))})
			}
		}()
		var b []byte
		var s string
		var m any
		var r rec
		if err := p.rx.Recv(&b); err != nil {
			t.Fatal(err)
		}
		if err := p.rx.Recv(&s); err != nil {
			t.Fatal(err)
		}
		if err := p.rx.Recv(&m); err != nil {
			t.Fatal(err)
		}
		if err := p.rx.Recv(&r); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			var x any
			if err := p.rx.Recv(&x); err != nil {
				t.Fatal(err)
			}
		}
		mm := m.(map[string]any)
		if !bytes.Equal(b, first) || s != string(first) || !bytes.Equal(mm["b"].([]byte), first) ||
			mm["s"] != string(first) || !bytes.Equal(r.B, first) || r.S != string(first) {
			t.Fatalf("an earlier value changed: %x %q %v %+v", b, s, mm, r)
		}
	})
}

// TestRecvBytesAfterInterruptedRecvOwnsItsSlice: a frame that Recv started
// (into the Conn's buffer) and RecvBytes finished belongs to the caller of
// RecvBytes: later Recvs must not write into it.
func TestRecvBytesAfterInterruptedRecvOwnsItsSlice(t *testing.T) {
	forEachTransport(t, func(t *testing.T, mk func(*testing.T, ...ConnOption) pair) {
		p := mk(t)
		var v any
		// prime the Conn's buffer with a message larger than the next frame
		go p.tx.Send(bytes.Repeat([]byte{'p'}, 100))
		if err := p.rx.Recv(&v); err != nil {
			t.Fatal(err)
		}
		payload := append([]byte{0xc4, 20}, bytes.Repeat([]byte{'x'}, 20)...) // bin8 of 20 bytes
		frame := append(binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload...)
		p.tx.s.Write(frame[:10])
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := p.rx.RecvContext(ctx, &v); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ctx: %v", err)
		}
		p.tx.s.Write(frame[10:])
		got, err := p.rx.RecvBytes()
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("RecvBytes = %x, %v", got, err)
		}
		keep := append([]byte(nil), got...)
		go func() {
			for i := 0; i < 5; i++ {
				p.tx.Send(bytes.Repeat([]byte{'y'}, 20))
			}
		}()
		for i := 0; i < 5; i++ {
			if err := p.rx.Recv(&v); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, keep) {
			t.Fatalf("RecvBytes' slice was overwritten: %q", got)
		}
	})
}
