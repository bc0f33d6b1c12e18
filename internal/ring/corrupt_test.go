package ring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

// pastDeadline is a Waiter whose deadline has passed: a blocked Read or
// Write returns at once, so a test of a corrupt ring cannot hang.
func pastDeadline() *Waiter {
	w := waiter(0, time.Hour)
	w.Deadline = func() time.Time { return time.Now().Add(-time.Second) }
	return w
}

func put64(mem []byte, off int, v uint64) { binary.LittleEndian.PutUint64(mem[off:], v) }
func put32(mem []byte, off int, v uint32) { binary.LittleEndian.PutUint32(mem[off:], v) }

// TestCorruptHead: a producer index that claims more than C buffered bytes,
// or lies behind the consumer's, is ErrCorrupt on every consumer call; no
// byte is delivered and nothing waits.
func TestCorruptHead(t *testing.T) {
	const capacity = 64
	for _, tc := range []struct {
		name string
		head func(tail uint64) uint64
	}{
		{"one past full", func(tail uint64) uint64 { return tail + capacity + 1 }},
		{"2^40 buffered", func(tail uint64) uint64 { return tail + 1<<40 }},
		{"behind the tail", func(tail uint64) uint64 { return tail - 1 }},
		{"far behind", func(tail uint64) uint64 { return tail - 1<<63 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, mem := newTestRing(t, capacity)
			tw(t, r, []byte("abc"))
			buf := make([]byte, 3)
			tr(t, r, buf)
			put64(mem, offHead, tc.head(3))
			if n, err := r.TryRead(buf); n != 0 || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("TryRead = %d, %v; want ErrCorrupt", n, err)
			}
			if !r.Readable() {
				t.Fatal("Readable = false: a Read would not report the corruption")
			}
			if _, err := r.Buffered(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Buffered: %v", err)
			}
			start := time.Now()
			if n, err := r.Read(buf, waiter(time.Millisecond, time.Hour)); n != 0 || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Read = %d, %v; want ErrCorrupt", n, err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("Read took %v", d)
			}
		})
	}
}

// TestCorruptTail: a consumer index past the producer's, or more than C
// behind it, is ErrCorrupt once the producer needs to look at it.
func TestCorruptTail(t *testing.T) {
	const capacity = 64
	for _, tc := range []struct {
		name string
		tail func(head uint64) uint64
	}{
		{"past the head", func(head uint64) uint64 { return head + 1 }},
		{"far past", func(head uint64) uint64 { return head + 1<<40 }},
		{"more than C behind", func(head uint64) uint64 { return head - capacity - 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, mem := newTestRing(t, capacity)
			tw(t, r, make([]byte, capacity)) // full: the next write must load tail
			put64(mem, offTail, tc.tail(capacity))
			if n, err := r.TryWrite([]byte{1}); n != 0 || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("TryWrite = %d, %v; want ErrCorrupt", n, err)
			}
			start := time.Now()
			if n, err := r.Write([]byte{1, 2}, waiter(time.Millisecond, time.Hour)); n != 0 || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Write = %d, %v; want ErrCorrupt", n, err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("Write took %v", d)
			}
		})
	}
}

// TestOwnIndexNotReloaded: each side keeps its own index in process memory.
// Garbage written over it in the shared block changes nothing for that side
// (the next publish overwrites it), so the other side alone can judge it.
func TestOwnIndexNotReloaded(t *testing.T) {
	r, mem := newTestRing(t, 64)
	tw(t, r, []byte("hello"))
	put64(mem, offHead, 1<<50) // garbage over the producer's own index
	tw(t, r, []byte(" world"))
	if h := binary.LittleEndian.Uint64(mem[offHead:]); h != 11 {
		t.Fatalf("head after the next write = %d, want 11", h)
	}
	buf := make([]byte, 5)
	tr(t, r, buf)
	put64(mem, offTail, 1<<50) // garbage over the consumer's own index
	rest := make([]byte, 6)
	if n := tr(t, r, rest); n != 6 || string(rest) != " world" {
		t.Fatalf("read %q", rest[:n])
	}
	if tl := binary.LittleEndian.Uint64(mem[offTail:]); tl != 11 {
		t.Fatalf("tail after the next read = %d, want 11", tl)
	}
}

func TestNewRefusesImpossibleIndices(t *testing.T) {
	_, mem := newTestRing(t, 64)
	put64(mem, offHead, 65)
	if _, err := New(mem[:CtlSize], mem[4096:4096+64]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("New over head - tail = 65 in a 64-byte ring: %v", err)
	}
	put64(mem, offHead, 10)
	put64(mem, offTail, 10)
	r, err := New(mem[:CtlSize], mem[4096:4096+64])
	if err != nil || !r.Idle() {
		t.Fatalf("New over an empty ring: idle %v, %v", r != nil && r.Idle(), err)
	}
	put32(mem, offRClosed, 7)
	if r.Idle() {
		t.Fatal("Idle with rclosed set")
	}
	put64(mem, offHead, 12)
	if r, err := New(mem[:CtlSize], mem[4096:4096+64]); err != nil || r.Idle() {
		t.Fatal("Idle with two bytes buffered")
	}
}

// TestGarbageFlags: any nonzero value in a closed flag means closed.
func TestGarbageFlags(t *testing.T) {
	r, mem := newTestRing(t, 64)
	tw(t, r, []byte("last"))
	put32(mem, offWClosed, 0xdeadbeef)
	buf := make([]byte, 16)
	w := waiter(0, time.Hour)
	if n, err := r.Read(buf, w); err != nil || string(buf[:n]) != "last" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if _, err := r.Read(buf, w); err != io.EOF {
		t.Fatalf("Read after the bytes = %v, want io.EOF", err)
	}
	put32(mem, offRClosed, 0x80000000)
	if _, err := r.Write([]byte{1}, w); !errors.Is(err, ErrPeerClosed) {
		t.Fatalf("Write = %v, want ErrPeerClosed", err)
	}
}

// TestPeerGoneAfterClose: a peer that closed its end and then exited (its
// liveness check fails) gives end of stream, not ErrPeerGone.
func TestPeerGoneAfterClose(t *testing.T) {
	r, _ := newTestRing(t, 64)
	w := waiter(0, 5*time.Millisecond)
	w.Check = func() error {
		r.CloseWrite()
		r.CloseRead()
		return ErrPeerGone
	}
	buf := make([]byte, 8)
	if _, err := r.Read(buf, w); err != io.EOF {
		t.Fatalf("Read = %v, want io.EOF", err)
	}
	tw(t, r, make([]byte, 64))
	if _, err := r.Write([]byte{1}, w); !errors.Is(err, ErrPeerClosed) {
		t.Fatalf("Write = %v, want ErrPeerClosed", err)
	}
}

// TestWrapFromAnyStart: rings whose indices start anywhere, also just below
// 2^64, carry bytes across the wrap with Write and Read.
func TestWrapFromAnyStart(t *testing.T) {
	for _, start := range []uint64{0, 1<<64 - 1, 1<<64 - 100, 1<<64 - 4096, 1 << 63} {
		_, mem := newTestRing(t, 256)
		put64(mem, offHead, start)
		put64(mem, offTail, start)
		r, err := New(mem[:CtlSize], mem[4096:4096+256])
		if err != nil {
			t.Fatal(err)
		}
		src := pattern(0, 2000)
		done := make(chan error, 1)
		go func() {
			_, err := r.Write(src, waiter(time.Millisecond, time.Hour))
			done <- err
		}()
		got := make([]byte, 0, len(src))
		buf := make([]byte, 77)
		for len(got) < len(src) {
			n, err := r.Read(buf, waiter(time.Millisecond, time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, buf[:n]...)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, src) {
			t.Fatalf("start %d: bytes differ", start)
		}
		if h := binary.LittleEndian.Uint64(mem[offHead:]); h != start+2000 {
			t.Fatalf("start %d: head %d", start, h)
		}
	}
}

// TestDeadlineOnEmptyRing: a blocked Read whose deadline passed returns
// os.ErrDeadlineExceeded, not a made-up byte.
func TestDeadlineOnEmptyRing(t *testing.T) {
	r, _ := newTestRing(t, 64)
	if n, err := r.Read(make([]byte, 4), pastDeadline()); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read = %d, %v", n, err)
	}
}
