// Package ring is a single-producer single-consumer byte ring in memory shared
// between processes, with futex wake-ups that cost nothing while nobody
// sleeps. The layout and protocol are wire/SPEC.md section 11.2-11.4;
// python/gobridge/_internal/ring.py implements the same on the same bytes.
//
// Create a Ring with New over a control block (CtlSize bytes) and a data area
// (a power of two bytes) of a MAP_SHARED mapping. One process (one goroutine
// at a time) calls the producer's methods (TryWrite, Write, CloseWrite), one
// the consumer's (TryRead, Read, Readable, Buffered, CloseRead). Blocking calls
// spin briefly, then sleep on a futex in bounded slices, and between slices
// ask the Waiter whether to give up (deadline, local close, peer gone).
//
// The other process may write anything into the shared memory at any time.
// Each side therefore keeps its own index in process memory (it stores it to
// the control block and never loads it back), loads the other side's index
// once per decision and checks it: head - tail (mod 2^64) must lie in [0, C].
// Anything else is ErrCorrupt, and the indices are never used. Every copy is
// bounded by the data area, so garbage in the data only garbles the bytes
// read; a flag word counts as set when it is nonzero.
package ring

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gobridge/gobridge/internal/futex"
)

// Control block layout (SPEC 11.2): three cache lines, so that the producer's
// and the consumer's stores never share a line.
const (
	CtlSize    = 192
	offHead    = 0   // uint64, bytes ever written; stored by the producer only
	offWClosed = 8   // uint32, nonzero once the producer has closed its end
	offTail    = 64  // uint64, bytes ever read; stored by the consumer only
	offRClosed = 72  // uint32, nonzero once the consumer has closed its end
	offRWait   = 128 // uint32 futex word: 1 while the consumer sleeps (or is about to)
	offWWait   = 132 // uint32 futex word: 1 while the producer sleeps for space
)

// Errors.
var (
	// ErrPeerGone: the other process died (the Waiter's Check said so)
	// without closing its end.
	ErrPeerGone = errors.New("ring: peer process is gone")
	// ErrPeerClosed: Write after the consumer closed its end.
	ErrPeerClosed = errors.New("ring: peer closed its end")
	// ErrClosed: this end was closed locally.
	ErrClosed = errors.New("ring: closed")
	// ErrLayout: a control block or data area that New cannot use.
	ErrLayout = errors.New("ring: bad layout")
	// ErrCorrupt: the other side's index is impossible (head - tail is not
	// in [0, C]): the peer, or something else that can write the shared
	// memory, broke the protocol. The ring must not be used again.
	ErrCorrupt = errors.New("ring: impossible index state")
)

// Step is the most a write or read moves before it publishes its index
// (SPEC 11.4): a larger transfer is published step by step, so that the
// consumer copies out one step while the producer copies in the next. A
// write of at most Step bytes that fits is published with one index store.
const Step = 64 << 10

// A Ring is one direction of a channel.
type Ring struct {
	headp, tailp     *uint64 // the shared indices
	wclosed, rclosed *uint32
	rwait, wwait     *uint32
	data             []byte
	size, mask       uint64
	idle             bool // New found head == tail

	// Each side's own index and its last validated sight of the other's,
	// in process memory: a side never loads its own index back from the
	// shared block (the peer could have written it), and it reads the
	// other side's cache line only when what it saw last is used up. On
	// separate lines: the producer writes head and tailSeen, the consumer
	// tail and headSeen.
	_        [64]byte
	head     uint64 // producer's
	tailSeen uint64 // producer's
	_        [48]byte
	tail     uint64 // consumer's
	headSeen uint64 // consumer's
	_        [48]byte
}

// New returns the Ring whose control block is ctl (CtlSize bytes, 64-byte
// aligned) and whose data area is data (a power of two bytes). It loads both
// indices once: they become the producer's and the consumer's starting
// points (any values, so that a ring may start near 2^64), and New fails with
// ErrCorrupt when they are impossible already.
func New(ctl, data []byte) (*Ring, error) {
	n := uint64(len(data))
	if len(ctl) < CtlSize || n == 0 || n&(n-1) != 0 || uintptr(unsafe.Pointer(&ctl[0]))%64 != 0 {
		return nil, ErrLayout
	}
	p := unsafe.Pointer(&ctl[0])
	r := &Ring{
		headp:   (*uint64)(unsafe.Add(p, offHead)),
		wclosed: (*uint32)(unsafe.Add(p, offWClosed)),
		tailp:   (*uint64)(unsafe.Add(p, offTail)),
		rclosed: (*uint32)(unsafe.Add(p, offRClosed)),
		rwait:   (*uint32)(unsafe.Add(p, offRWait)),
		wwait:   (*uint32)(unsafe.Add(p, offWWait)),
		data:    data[:n:n],
		size:    n,
		mask:    n - 1,
	}
	h, t := atomic.LoadUint64(r.headp), atomic.LoadUint64(r.tailp)
	if h-t > n {
		return nil, corrupt(h, t, n)
	}
	r.head, r.tailSeen = h, t
	r.tail, r.headSeen = t, h
	r.idle = h == t
	return r, nil
}

// Init prepares a fresh control block: both indices at start (any value;
// tests start near 2^64), flags and futex words clear. Only the side that
// creates the memory calls it, before the other side can see it.
func Init(ctl []byte, start uint64) error {
	if len(ctl) < CtlSize || uintptr(unsafe.Pointer(&ctl[0]))%64 != 0 {
		return ErrLayout
	}
	clear(ctl[:CtlSize])
	p := unsafe.Pointer(&ctl[0])
	atomic.StoreUint64((*uint64)(unsafe.Add(p, offHead)), start)
	atomic.StoreUint64((*uint64)(unsafe.Add(p, offTail)), start)
	return nil
}

func corrupt(head, tail, size uint64) error {
	return fmt.Errorf("%w: head %d - tail %d = %d bytes buffered in a %d-byte ring", ErrCorrupt, head, tail, head-tail, size)
}

// Idle reports whether the ring was empty when New loaded its indices and
// neither end is marked closed now (each flag loaded once): what a fresh
// ring must look like.
func (r *Ring) Idle() bool {
	return r.idle && atomic.LoadUint32(r.wclosed) == 0 && atomic.LoadUint32(r.rclosed) == 0
}

// Cap returns the data area's size.
func (r *Ring) Cap() int { return len(r.data) }

// Buffered returns the bytes written and not yet read (consumer's side), or
// ErrCorrupt.
func (r *Ring) Buffered() (int, error) {
	h := atomic.LoadUint64(r.headp)
	if n := h - r.tail; n <= r.size {
		return int(n), nil
	}
	return 0, corrupt(h, r.tail, r.size)
}

// A Waiter tells a blocked Read or Write when to stop waiting.
type Waiter struct {
	// Spin is how long to poll before sleeping.
	Spin time.Duration
	// Slice bounds each sleep; between slices Check runs.
	Slice time.Duration
	// Deadline returns the current deadline (zero: none). It is read again
	// after every wake-up, so a deadline moved into the past by another
	// goroutine (followed by Interrupt) takes effect at once.
	Deadline func() time.Time
	// Check returns a non-nil error to stop waiting: a local close
	// (ErrClosed) or a dead peer (ErrPeerGone). It is called after every
	// slice that ended without progress, so it may cost a system call.
	Check func() error
	// Closed reports a local close cheaply (an atomic load); checked on
	// every wake-up.
	Closed func() bool
}

// TryWrite copies as much of p as fits, publishes it and wakes a sleeping
// consumer. It never blocks. More than Step bytes are published Step bytes
// at a time. It loads the consumer's index only when the last one it saw
// leaves too little room, and fails with ErrCorrupt, writing nothing, when
// that index is impossible.
func (r *Ring) TryWrite(p []byte) (int, error) {
	head := r.head
	n := uint64(len(p))
	if free := r.size - (head - r.tailSeen); n > free {
		t := atomic.LoadUint64(r.tailp) // acquire: the space after the index
		used := head - t
		if used > r.size {
			return 0, corrupt(head, t, r.size)
		}
		r.tailSeen = t
		n = min(n, r.size-used)
	}
	for done := uint64(0); done < n; {
		k := min(n-done, Step)
		i := (head + done) & r.mask
		c := copy(r.data[i:], p[done:done+k])
		copy(r.data, p[done+uint64(c):done+k])
		done += k
		r.head = head + done
		publish(r.headp, r.head, r.rwait)
	}
	return int(n), nil
}

// publish stores a side's index and wakes the other side if its flag says it
// sleeps. Swap, not Store: the index store must be a full barrier before the
// flag load (Dekker with the other side, SPEC 11.4), so that either it sees
// the new index or we see its flag. On amd64 both are one XCHG; under the
// race detector Store is only a release and a wake-up could be lost.
func publish(index *uint64, v uint64, flag *uint32) {
	atomic.SwapUint64(index, v)
	if atomic.LoadUint32(flag) != 0 {
		atomic.StoreUint32(flag, 0)
		futex.Wake(flag, 1)
	}
}

// TryRead copies up to len(p) buffered bytes, releases their space and wakes
// a producer waiting for space. It never blocks. More than Step bytes are
// released Step bytes at a time. It loads the producer's index only when the
// bytes it saw last are used up, and fails with ErrCorrupt, reading nothing,
// when that index is impossible.
func (r *Ring) TryRead(p []byte) (int, error) {
	tail := r.tail
	n := uint64(len(p))
	if avail := r.headSeen - tail; n > avail {
		h := atomic.LoadUint64(r.headp) // acquire: the bytes before the index
		avail = h - tail
		if avail > r.size {
			return 0, corrupt(h, tail, r.size)
		}
		r.headSeen = h
		n = min(n, avail)
	}
	for done := uint64(0); done < n; {
		k := min(n-done, Step)
		i := (tail + done) & r.mask
		c := copy(p[done:done+k], r.data[i:])
		copy(p[done+uint64(c):done+k], r.data)
		done += k
		r.tail = tail + done
		publish(r.tailp, r.tail, r.wwait)
	}
	return int(n), nil
}

// Write writes all of p, waiting for space as needed. It returns the bytes
// written and, when it stopped early, why: ErrPeerClosed, ErrCorrupt, a
// Waiter error, or os.ErrDeadlineExceeded.
func (r *Ring) Write(p []byte, w *Waiter) (int, error) {
	done := 0
	for {
		if atomic.LoadUint32(r.rclosed) != 0 {
			return done, ErrPeerClosed
		}
		n, err := r.TryWrite(p[done:])
		done += n
		if err != nil || done == len(p) {
			return done, err
		}
		// Ready when there is room, when the consumer closed, or when its
		// index is impossible (TryWrite then says so).
		err = r.wait(w, r.wwait, func() bool {
			return r.head-atomic.LoadUint64(r.tailp) != r.size || atomic.LoadUint32(r.rclosed) != 0
		})
		if err != nil {
			if errors.Is(err, ErrPeerGone) && atomic.LoadUint32(r.rclosed) != 0 {
				err = ErrPeerClosed // it closed its end, then exited
			}
			return done, err
		}
	}
}

// Read waits until at least one byte is buffered and reads what fits in p.
// After the producer closed its end and every byte was read it returns
// io.EOF; after the producer died without closing, ErrPeerGone; after it
// broke the protocol, ErrCorrupt.
func (r *Ring) Read(p []byte, w *Waiter) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if n, err := r.TryRead(p); n > 0 || err != nil {
			return n, err
		}
		if atomic.LoadUint32(r.wclosed) != 0 {
			return r.drained(p, io.EOF) // bytes written just before the close
		}
		err := r.wait(w, r.rwait, func() bool {
			return atomic.LoadUint64(r.headp) != r.tail || atomic.LoadUint32(r.wclosed) != 0
		})
		if err != nil {
			if errors.Is(err, ErrPeerGone) && atomic.LoadUint32(r.wclosed) != 0 {
				err = io.EOF // it closed its end, then exited
			}
			return r.drained(p, err) // bytes a dead peer finished are whole
		}
	}
}

// drained returns what is still buffered, else err.
func (r *Ring) drained(p []byte, err error) (int, error) {
	if n, rerr := r.TryRead(p); n > 0 || rerr != nil {
		return n, rerr
	}
	return 0, err
}

// Readable reports, without waiting, whether Read would return at once:
// bytes are buffered, the producer closed, or its index is impossible.
func (r *Ring) Readable() bool {
	return atomic.LoadUint64(r.headp) != r.tail || atomic.LoadUint32(r.wclosed) != 0
}

// wait blocks until ready() holds, first spinning, then sleeping on flag
// (this side's futex word) in slices.
func (r *Ring) wait(w *Waiter, flag *uint32, ready func() bool) error {
	if w.Spin > 0 {
		start := time.Now()
		for i := 0; ; i++ {
			if ready() {
				return nil
			}
			if i&63 == 63 {
				if w.Closed() {
					return ErrClosed
				}
				if time.Since(start) > w.Spin {
					break
				}
			}
		}
	}
	lastCheck := time.Now()
	for {
		if w.Closed() {
			return ErrClosed
		}
		dl := w.Deadline()
		if !dl.IsZero() && !time.Now().Before(dl) {
			return os.ErrDeadlineExceeded // before announcing a sleep that will not happen
		}
		atomic.SwapUint32(flag, 1) // a full barrier, then the load: see publish
		if ready() {
			atomic.StoreUint32(flag, 0)
			return nil
		}
		if err := futex.WaitBounded(flag, 1, dl, w.Slice); err != nil {
			return err
		}
		if ready() {
			return nil
		}
		if now := time.Now(); now.Sub(lastCheck) >= w.Slice {
			lastCheck = now
			if err := w.Check(); err != nil {
				return err
			}
		}
	}
}

// InterruptReader wakes the consumer sleeping in Read, so that it re-reads
// its deadline and Closed (or sees a close).
func (r *Ring) InterruptReader() {
	atomic.StoreUint32(r.rwait, 0)
	futex.Wake(r.rwait, 1<<30)
}

// InterruptWriter wakes the producer sleeping in Write.
func (r *Ring) InterruptWriter() {
	atomic.StoreUint32(r.wwait, 0)
	futex.Wake(r.wwait, 1<<30)
}

// CloseWrite marks the producer's end closed and wakes the consumer: it reads
// what is buffered, then io.EOF.
func (r *Ring) CloseWrite() {
	atomic.StoreUint32(r.wclosed, 1)
	r.InterruptReader()
}

// CloseRead marks the consumer's end closed and wakes the producer: its
// writes fail with ErrPeerClosed.
func (r *Ring) CloseRead() {
	atomic.StoreUint32(r.rclosed, 1)
	r.InterruptWriter()
}

// WriterClosed reports whether the producer closed its end.
func (r *Ring) WriterClosed() bool { return atomic.LoadUint32(r.wclosed) != 0 }

// ReaderClosed reports whether the consumer closed its end.
func (r *Ring) ReaderClosed() bool { return atomic.LoadUint32(r.rclosed) != 0 }
