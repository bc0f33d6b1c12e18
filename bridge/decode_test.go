package bridge

import (
	"errors"
	"strings"
	"testing"
)

// A bad Recv target is refused before anything is read, so the message
// waits for a good one.
func TestRecvBadTargetKeepsMessage(t *testing.T) {
	forEachTransport(t, func(t *testing.T, mk func(*testing.T, ...ConnOption) pair) {
		p := mk(t)
		go p.tx.Send("kept")
		var s string
		var nilPtr *string
		for _, bad := range []any{nil, s, nilPtr, 5} {
			if err := p.rx.Recv(bad); !errors.Is(err, ErrBadTarget) || errors.Is(err, ErrDecode) {
				t.Fatalf("Recv(%T) = %v, want ErrBadTarget", bad, err)
			}
		}
		if err := p.rx.Recv(&s); err != nil || s != "kept" {
			t.Fatalf("the message after bad targets: %q, %v", s, err)
		}
	})
}

// ErrDecode tells a payload that did not decode (the Conn is usable) from a
// broken stream (it is not).
func TestErrDecodeMeansUsable(t *testing.T) {
	forEachTransport(t, func(t *testing.T, mk func(*testing.T, ...ConnOption) pair) {
		p := mk(t, WithMaxFrameSize(1<<20))
		many := make([]byte, 5+200000) // 200000 empty arrays: over the container budget
		copy(many, []byte{0xdd, 0, 0x03, 0x0d, 0x40})
		for i := 5; i < len(many); i++ {
			many[i] = 0x90
		}
		go func() {
			p.tx.SendBytes([]byte{0xc1})
			p.tx.SendBytes(many)
			p.tx.Send("not an int")
			p.tx.Send(7)
		}()
		var v any
		var n int
		for i, want := range []error{ErrMalformed, ErrTooManyContainers} {
			if err := p.rx.Recv(&v); !errors.Is(err, want) || !errors.Is(err, ErrDecode) {
				t.Fatalf("message %d: %v, want %v and ErrDecode", i, err, want)
			}
		}
		if err := p.rx.Recv(&n); !errors.Is(err, ErrTargetType) || !errors.Is(err, ErrDecode) {
			t.Fatalf("a str into an int: %v", err)
		}
		if err := p.rx.Recv(&n); err != nil || n != 7 {
			t.Fatalf("after the payload errors: %v, %v", n, err)
		}
	})
}

// The frame limit errors say how to raise the limit.
func TestFrameLimitMessages(t *testing.T) {
	a, b, err := Pipe(true, WithMaxFrameSize(16))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	err = a.SendBytes(make([]byte, 17))
	if !errors.Is(err, ErrFrameTooLarge) || !strings.Contains(err.Error(), "WithMaxFrameSize") {
		t.Fatalf("send: %v", err)
	}
	go a.s.Write([]byte{0, 0, 0, 17})
	var v any
	err = b.Recv(&v)
	if !errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), "WithMaxFrameSize") {
		t.Fatalf("recv: %v", err)
	}
}
