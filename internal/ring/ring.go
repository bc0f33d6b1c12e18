// Package ring is a single-producer single-consumer byte ring in memory shared
// between processes, with futex wake-ups that cost nothing while nobody
// sleeps. The layout and protocol are wire/SPEC.md section 11.2-11.4;
// python/gobridge/_ring.py implements the same on the same bytes.
//
// Create a Ring with New over a control block (CtlSize bytes) and a data area
// (a power of two bytes) of a MAP_SHARED mapping. One process (one goroutine
// at a time) calls the producer's methods (Write, CloseWrite), one the
// consumer's (Read, CloseRead). Blocking calls spin briefly, then sleep on a
// futex in bounded slices, and between slices ask the Waiter whether to give
// up (deadline, local close, peer gone).
package ring

import (
	"errors"
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
	offWClosed = 8   // uint32, 1 once the producer has closed its end
	offTail    = 64  // uint64, bytes ever read; stored by the consumer only
	offRClosed = 72  // uint32, 1 once the consumer has closed its end
	offRWait   = 128 // uint32 futex word: 1 while the consumer sleeps (or is about to)
	offWWait   = 132 // uint32 futex word: 1 while the producer sleeps for space
)

// Errors.
var (
	// ErrPeerGone: the other process died (its liveness lock vanished)
	// without closing its end.
	ErrPeerGone = errors.New("ring: peer process is gone")
	// ErrPeerClosed: Write after the consumer closed its end.
	ErrPeerClosed = errors.New("ring: peer closed its end")
	// ErrClosed: this end was closed locally.
	ErrClosed = errors.New("ring: closed")
	// ErrLayout: a control block or data area that New cannot use.
	ErrLayout = errors.New("ring: bad layout")
)

// Step is the most a write or read moves before it publishes its index
// (SPEC 11.4): a larger transfer is published step by step, so that the
// consumer copies out one step while the producer copies in the next. A
// write of at most Step bytes that fits is published with one index store.
const Step = 64 << 10

// A Ring is one direction of a channel.
type Ring struct {
	head, tail       *uint64
	wclosed, rclosed *uint32
	rwait, wwait     *uint32
	data             []byte
	mask             uint64

	// Each side's last sight of the other's index, so that it reads the
	// other side's cache line only when what it saw last is used up. On
	// separate lines: the producer writes tailSeen, the consumer headSeen.
	_        [64]byte
	tailSeen uint64 // producer's
	_        [56]byte
	headSeen uint64 // consumer's
	_        [56]byte
}

// New returns the Ring whose control block is ctl (CtlSize bytes, 64-byte
// aligned) and whose data area is data (a power of two bytes).
func New(ctl, data []byte) (*Ring, error) {
	n := uint64(len(data))
	if len(ctl) < CtlSize || n == 0 || n&(n-1) != 0 || uintptr(unsafe.Pointer(&ctl[0]))%64 != 0 {
		return nil, ErrLayout
	}
	p := unsafe.Pointer(&ctl[0])
	r := &Ring{
		head:    (*uint64)(unsafe.Add(p, offHead)),
		wclosed: (*uint32)(unsafe.Add(p, offWClosed)),
		tail:    (*uint64)(unsafe.Add(p, offTail)),
		rclosed: (*uint32)(unsafe.Add(p, offRClosed)),
		rwait:   (*uint32)(unsafe.Add(p, offRWait)),
		wwait:   (*uint32)(unsafe.Add(p, offWWait)),
		data:    data,
		mask:    n - 1,
	}
	// Indices seen earlier than the true ones only make the free space or
	// the buffered bytes look smaller, so these are safe whichever side
	// calls New and whatever the peer has done since.
	r.tailSeen = atomic.LoadUint64(r.tail)
	r.headSeen = atomic.LoadUint64(r.head)
	return r, nil
}

// Cap returns the data area's size.
func (r *Ring) Cap() int { return len(r.data) }

// Buffered returns the bytes written and not yet read.
func (r *Ring) Buffered() int {
	return int(atomic.LoadUint64(r.head) - atomic.LoadUint64(r.tail))
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
// at a time.
func (r *Ring) TryWrite(p []byte) int {
	head := *r.head // only this side stores head
	size := uint64(len(r.data))
	n := uint64(len(p))
	if free := size - (head - r.tailSeen); n > free {
		r.tailSeen = atomic.LoadUint64(r.tail) // acquire: the space after the index
		if free = size - (head - r.tailSeen); n > free {
			n = free
		}
	}
	for done := uint64(0); done < n; {
		k := min(n-done, Step)
		i := (head + done) & r.mask
		c := copy(r.data[i:], p[done:done+k])
		copy(r.data, p[done+uint64(c):done+k])
		done += k
		publish(r.head, head+done, r.rwait)
	}
	return int(n)
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
// released Step bytes at a time.
func (r *Ring) TryRead(p []byte) int {
	tail := *r.tail // only this side stores tail
	n := uint64(len(p))
	if avail := r.headSeen - tail; n > avail {
		r.headSeen = atomic.LoadUint64(r.head) // acquire: the bytes before the index
		if avail = r.headSeen - tail; n > avail {
			n = avail
		}
	}
	for done := uint64(0); done < n; {
		k := min(n-done, Step)
		i := (tail + done) & r.mask
		c := copy(p[done:done+k], r.data[i:])
		copy(p[done+uint64(c):done+k], r.data)
		done += k
		publish(r.tail, tail+done, r.wwait)
	}
	return int(n)
}

// Write writes all of p, waiting for space as needed. It returns the bytes
// written and, when it stopped early, why: ErrPeerClosed, a Waiter error, or
// os.ErrDeadlineExceeded.
func (r *Ring) Write(p []byte, w *Waiter) (int, error) {
	done := 0
	for {
		if atomic.LoadUint32(r.rclosed) != 0 {
			return done, ErrPeerClosed
		}
		done += r.TryWrite(p[done:])
		if done == len(p) {
			return done, nil
		}
		err := r.wait(w, r.wwait, func() bool {
			return atomic.LoadUint64(r.head)-atomic.LoadUint64(r.tail) < uint64(len(r.data)) ||
				atomic.LoadUint32(r.rclosed) != 0
		})
		if err != nil {
			return done, err
		}
	}
}

// Read waits until at least one byte is buffered and reads what fits in p.
// After the producer closed its end and every byte was read it returns
// io.EOF; after the producer died without closing, ErrPeerGone.
func (r *Ring) Read(p []byte, w *Waiter) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if n := r.TryRead(p); n > 0 {
			return n, nil
		}
		if atomic.LoadUint32(r.wclosed) != 0 {
			if n := r.TryRead(p); n > 0 { // written just before the close
				return n, nil
			}
			return 0, io.EOF
		}
		err := r.wait(w, r.rwait, func() bool {
			return atomic.LoadUint64(r.head) != atomic.LoadUint64(r.tail) || atomic.LoadUint32(r.wclosed) != 0
		})
		if err != nil {
			if n := r.TryRead(p); n > 0 { // bytes a dead peer finished are whole
				return n, nil
			}
			return 0, err
		}
	}
}

// Readable reports, without waiting, whether Read would return at once.
func (r *Ring) Readable() bool {
	return atomic.LoadUint64(r.head) != atomic.LoadUint64(r.tail) || atomic.LoadUint32(r.wclosed) != 0
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
		timeout := w.Slice
		if dl := w.Deadline(); !dl.IsZero() {
			left := time.Until(dl)
			if left <= 0 {
				return os.ErrDeadlineExceeded
			}
			if left < timeout {
				timeout = left
			}
		}
		atomic.SwapUint32(flag, 1) // a full barrier, then the load: see publish
		if ready() {
			atomic.StoreUint32(flag, 0)
			return nil
		}
		if err := futex.Wait(flag, 1, timeout); err != nil && err != os.ErrDeadlineExceeded {
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
