package ring

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"runtime/metrics"
	"testing"

	"github.com/gobridge/gobridge/wire"
	"golang.org/x/sys/unix"
)

// Bytes the fuzzer's writers put in the data area are below 0x80; the bytes
// around the data area are 0xff. A byte >= 0x80 read from the ring would come
// from outside the data area.
const (
	guard     = 0xff
	fuzzLimit = 1024 // frame limit of the frame reader op
	// The allocation counter is the whole process's, the fuzzing engine's
	// copies of its inputs included; a reader that believed a header
	// (up to 2^63 bytes) would pass this bound by far.
	maxAlloc = 4 << 20
)

// ringReader makes a Ring an io.Reader for wire.Reader, with a Waiter that
// never waits.
type ringReader struct {
	r *Ring
	w *Waiter
}

func (rr ringReader) Read(p []byte) (int, error) { return rr.r.Read(p, rr.w) }

// FuzzRing drives one ring through its producer's and consumer's calls while
// a "peer" (the fuzz input) writes indices, flags and data into the shared
// control block between any two calls. Whatever it writes, no call panics,
// reads outside the data area, returns more than asked, blocks, allocates
// beyond the frame limit or fails with an error the package does not
// document.
func FuzzRing(f *testing.F) {
	f.Add([]byte{0, 10, 1, 4, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 8})
	f.Add([]byte{0, 64, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0, 64, 1, 64, 2, 0, 0, 0, 0, 0, 1, 0, 0, 1, 1})
	f.Add([]byte{4, 1, 0, 0, 0, 6, 8, 6, 8})
	f.Add([]byte{5, 0, 0x7f, 5, 1, 0xff, 5, 2, 0xff, 5, 3, 0xff, 0, 4, 8})
	f.Add([]byte{2, 0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 3, 0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 200, 1, 200, 7, 255, 6, 255})
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	// One shared mapping for every input (inputs run one at a time in a
	// worker), set up afresh for each: an mmap per input cost more than
	// the input.
	mem, err := unix.Mmap(-1, 0, 3*4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANON)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { unix.Munmap(mem) })
	f.Fuzz(func(t *testing.T, in []byte) { fuzzRing(t, mem, sample, in) })
}

// fuzzRing runs one input over a fresh ring in mem.
func fuzzRing(t *testing.T, mem []byte, sample []metrics.Sample, in []byte) {
	const capacity = 64
	clear(mem[:CtlSize])
	for i := CtlSize; i < len(mem); i++ {
		mem[i] = guard
	}
	data := mem[4096 : 4096+capacity]
	clear(data)
	r, err := New(mem[:CtlSize], data)
	if err != nil {
		t.Fatal(err)
	}
	w := pastDeadline()
	w.Check = func() error { return ErrPeerGone }
	fr := wire.NewReader(ringReader{r, w}, fuzzLimit)
	buf := make([]byte, 256)
	next := func() byte {
		if len(in) == 0 {
			return 0
		}
		b := in[0]
		in = in[1:]
		return b
	}
	word := func(n int) uint64 {
		var b [8]byte
		for i := 0; i < n; i++ {
			b[i] = next()
		}
		return binary.LittleEndian.Uint64(b[:])
	}
	clean := func(p []byte) {
		for i, b := range p {
			if b >= 0x80 {
				t.Fatalf("byte %d of a read is %#x: it came from outside the data area", i, b)
			}
		}
	}
	for ops := 0; len(in) > 0 && ops < 64; ops++ {
		switch op := next() % 9; op {
		case 0, 7: // producer
			k := int(next())
			p := buf[:k]
			for i := range p {
				p[i] = byte(i) & 0x7f
			}
			var n int
			if op == 0 {
				n, err = r.TryWrite(p)
			} else {
				n, err = r.Write(p, w)
			}
			if n > k || n > capacity && op == 0 {
				t.Fatalf("write of %d bytes reported %d", k, n)
			}
			if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrPeerClosed) &&
				!errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, ErrPeerGone) {
				t.Fatalf("write: undocumented error %v", err)
			}
		case 1, 6: // consumer
			k := int(next())
			p := buf[:k]
			var n int
			if op == 1 {
				n, err = r.TryRead(p)
			} else {
				n, err = r.Read(p, w)
			}
			if n > k || n > capacity {
				t.Fatalf("read of %d bytes returned %d", k, n)
			}
			clean(p[:n])
			if err != nil && err != io.EOF && !errors.Is(err, ErrCorrupt) &&
				!errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, ErrPeerGone) {
				t.Fatalf("read: undocumented error %v", err)
			}
			if n, err := r.Buffered(); err == nil && (n < 0 || n > capacity) {
				t.Fatalf("Buffered = %d", n)
			}
			r.Readable()
		case 2: // the peer's head, whole or its low bytes
			put64(mem, offHead, word(8))
		case 3:
			put64(mem, offTail, word(8))
		case 4: // a flag word
			off := []int{offWClosed, offRClosed, offRWait, offWWait}[next()%4]
			put32(mem, off, uint32(word(4)))
		case 5: // a data byte
			data[int(next())%capacity] = next() & 0x7f
		case 8: // one frame through the frame reader
			metrics.Read(sample)
			before := sample[0].Value.Uint64()
			p, err := fr.ReadFrame(nil)
			metrics.Read(sample)
			if grew := sample[0].Value.Uint64() - before; grew > maxAlloc {
				t.Fatalf("a frame read allocated %d bytes with a %d-byte limit", grew, fuzzLimit)
			}
			if len(p) > fuzzLimit {
				t.Fatalf("frame of %d bytes past the %d-byte limit", len(p), fuzzLimit)
			}
			clean(p)
			if err != nil && err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) &&
				!errors.Is(err, wire.ErrFrameTooLarge) && !errors.Is(err, wire.ErrBadHeader) &&
				!errors.Is(err, ErrCorrupt) && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, ErrPeerGone) {
				t.Fatalf("frame: undocumented error %v", err)
			}
			if fr.Err() != nil {
				fr = wire.NewReader(ringReader{r, w}, fuzzLimit) // out of step: start over
			}
		}
	}
	for i := 4096 + capacity; i < len(mem); i++ {
		if mem[i] != guard {
			t.Fatalf("byte %d past the data area was overwritten", i-4096-capacity)
		}
	}
	for i := CtlSize; i < 4096; i++ {
		if mem[i] != guard {
			t.Fatalf("byte %d between the control block and the data was overwritten", i)
		}
	}
}
