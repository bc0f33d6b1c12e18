package bridge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWriteBufferHoldsUntilFlush: batched frames stay with the sender until
// Flush, then arrive whole and in order.
func TestWriteBufferHoldsUntilFlush(t *testing.T) {
	forEachTransport(t, func(t *testing.T, mk func(*testing.T, ...ConnOption) pair) {
		p := mk(t, WithWriteBuffer(4096))
		for i := range 3 {
			if err := p.tx.Send(i); err != nil {
				t.Fatal(err)
			}
		}
		if n := p.tx.Buffered(); n != 3*(4+1) {
			t.Fatalf("Buffered() = %d, want 15", n)
		}
		if ok, err := p.rx.Poll(30 * time.Millisecond); ok || err != nil {
			t.Fatalf("Poll before Flush = %v, %v: batched frames were written", ok, err)
		}
		if err := p.tx.Flush(); err != nil {
			t.Fatal(err)
		}
		if n := p.tx.Buffered(); n != 0 {
			t.Fatalf("Buffered() after Flush = %d", n)
		}
		for i := range 3 {
			var v int
			if err := p.rx.Recv(&v); err != nil || v != i {
				t.Fatalf("Recv = %d, %v; want %d", v, err, i)
			}
		}
	})
}

// TestWriteBufferOverflowAndLargeFrames: a batch that fills goes out by
// itself, and a frame larger than the buffer follows the batch, so that
// 2000 frames of mixed sizes arrive intact and in order with one final Flush.
func TestWriteBufferOverflowAndLargeFrames(t *testing.T) {
	forEachTransport(t, func(t *testing.T, mk func(*testing.T, ...ConnOption) pair) {
		p := mk(t, WithWriteBuffer(1000))
		const n = 2000
		size := func(i int) int {
			switch i % 50 {
			case 7:
				return 5000 // larger than the buffer
			case 8:
				return 996 // header and payload fill the buffer exactly
			}
			return 8 + i%90
		}
		errc := make(chan error, 1)
		go func() {
			for i := range n {
				b := bytes.Repeat([]byte{byte(i)}, size(i))
				binary.LittleEndian.PutUint32(b, uint32(i))
				if err := p.tx.SendBytes(b); err != nil {
					errc <- err
					return
				}
			}
			errc <- p.tx.Flush()
		}()
		for i := range n {
			b, err := p.rx.RecvBytes()
			if err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			if len(b) != size(i) || binary.LittleEndian.Uint32(b) != uint32(i) || b[len(b)-1] != byte(i) {
				t.Fatalf("frame %d: %d bytes, seq %d", i, len(b), binary.LittleEndian.Uint32(b))
			}
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	})
}

// TestWriteBufferFlushesBeforeRecv: a request left in the batch is written
// before the sender waits for the reply, so request/reply never deadlocks.
func TestWriteBufferFlushesBeforeRecv(t *testing.T) {
	forEachTransport(t, func(t *testing.T, mk func(*testing.T, ...ConnOption) pair) {
		p := mk(t, WithWriteBuffer(1<<16))
		if !p.rx.Writable() {
			t.Skip("one-way")
		}
		go func() {
			var v int
			if err := p.rx.Recv(&v); err == nil {
				p.rx.Send(v + 1)
				p.rx.Flush()
			}
		}()
		if err := p.tx.Send(41); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var v int
		if err := p.tx.RecvContext(ctx, &v); err != nil || v != 42 {
			t.Fatalf("reply = %d, %v", v, err)
		}
	})
}

// TestWriteBufferCloseFlushes: Close writes the batch before closing, so the
// peer reads every frame and then end of stream.
func TestWriteBufferCloseFlushes(t *testing.T) {
	forEachTransport(t, func(t *testing.T, mk func(*testing.T, ...ConnOption) pair) {
		p := mk(t, WithWriteBuffer(4096))
		for i := range 10 {
			p.tx.Send(i)
		}
		if err := p.tx.Close(); err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			var v int
			if err := p.rx.Recv(&v); err != nil || v != i {
				t.Fatalf("Recv = %d, %v; want %d", v, err, i)
			}
		}
		var v any
		if err := p.rx.Recv(&v); err != io.EOF {
			t.Fatalf("after the batch: %v, want io.EOF", err)
		}
	})
}

// TestWriteBufferBrokenPipe: a flush to a closed peer fails as a Send would.
func TestWriteBufferBrokenPipe(t *testing.T) {
	forEachTransport(t, func(t *testing.T, mk func(*testing.T, ...ConnOption) pair) {
		p := mk(t, WithWriteBuffer(1<<16))
		p.rx.Close()
		var err error
		for i := 0; i < 100 && err == nil; i++ {
			if err = p.tx.SendBytes(make([]byte, 1000)); err == nil {
				err = p.tx.Flush()
			}
		}
		if !errors.Is(err, ErrBrokenPipe) {
			t.Fatalf("flush to a closed peer: %v", err)
		}
	})
}

// TestWriteBufferRefusedOnSharedFIFO: with a reader there, the open would
// succeed; WithWriteBuffer is what makes it fail.
func TestWriteBufferRefusedOnSharedFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if _, err := Mkfifo(path); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc := openFIFOReaderAsync(ctx, t, path)
	w, err := OpenFIFOWriter(ctx, path) // the reader is open once this returns
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if r := <-rc; r != nil {
		defer r.Close()
	}
	c, err := OpenFIFOWriter(ctx, path, WithWriteBuffer(4096))
	if err == nil {
		c.Close()
		t.Fatal("OpenFIFOWriter accepted WithWriteBuffer")
	}
	if !strings.Contains(err.Error(), "WithWriteBuffer") {
		t.Fatalf("OpenFIFOWriter: %v, want the WithWriteBuffer refusal", err)
	}
}

// TestWriteBufferFailedFlushThenReceive: a batch that can never be written
// (the peer closed) fails one receive, is dropped, and the peer's last
// message is still received.
func TestWriteBufferFailedFlushThenReceive(t *testing.T) {
	forEachTransport(t, func(t *testing.T, mk func(*testing.T, ...ConnOption) pair) {
		if strings.HasSuffix(t.Name(), "/tcp") {
			t.Skip("TCP takes the first write after the peer's close (its RST comes after), so no flush fails at once")
		}
		p := mk(t, WithWriteBuffer(1<<16))
		if !p.rx.Writable() {
			t.Skip("one-way")
		}
		p.rx.Send("bye")
		p.rx.Close()
		p.tx.SendBytes(make([]byte, 1000))
		var got string
		if err := p.tx.Recv(&got); !errors.Is(err, ErrBrokenPipe) {
			t.Fatalf("first Recv: %q, %v; want the flush's broken pipe", got, err)
		}
		if err := p.tx.Recv(&got); err != nil || got != "bye" {
			t.Fatalf("peer's last message: %q, %v", got, err)
		}
		if p.tx.Buffered() != 0 {
			t.Fatalf("%d bytes still batched", p.tx.Buffered())
		}
	})
}
