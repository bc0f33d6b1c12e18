package mp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gobridge/gobridge/internal/futex"
	"github.com/gobridge/gobridge/internal/ofdlock"
	"github.com/gobridge/gobridge/internal/shmseg"
	"golang.org/x/sys/unix"
)

// The common header of every shared object (SPEC section 10.2).
const (
	magic   = 0x504d4247 // "GBMP" little-endian
	version = 2          // 2: queues have a get lock and a get redo log (SPEC 10.5)

	offMagic    = 0
	offVersion  = 4
	offKind     = 5
	offTypecode = 6
	offItemsize = 7
	offRedoN    = 8 // the header's redo log: count at 8, then from 16 up to redoMax entries of 16 bytes (u32 offset, u32 width, u64 value)
	offHolder   = 12
	redoMax     = 3
	headerSize  = 64

	lockInternal = 0 // byte of the segment locked around every header change (a queue's put side)
	lockUser     = 1 // byte locked by Lock, RLock and Value/Array Lock
	lockGet      = 2 // a queue's get side (SPEC 10.5)
)

// Kind codes, stored in the header.
const (
	kindQueue         = 1
	kindJoinableQueue = 2
	kindValue         = 3
	kindArray         = 4
	kindSemaphore     = 5
	kindLock          = 6
	kindRLock         = 7
)

var kindNames = map[byte]string{
	kindQueue: shmseg.KindQueue, kindJoinableQueue: shmseg.KindJoinableQueue, kindValue: shmseg.KindValue,
	kindArray: shmseg.KindArray, kindSemaphore: shmseg.KindSemaphore, kindLock: shmseg.KindLock, kindRLock: shmseg.KindRLock,
}

// waitSlice bounds every futex sleep, so that a waiter notices a cancelled
// context, and a wake-up lost to a killed process, within this long.
const waitSlice = 50 * time.Millisecond

// object is one handle on a shared object: the segment, its mapping, and the
// process-local mutex that makes the handle's OFD lock exclusive between
// goroutines (the kernel sees one owner per open file description).
type object struct {
	name string
	kind byte
	seg  *shmseg.Segment
	fd   uintptr
	mem  []byte

	mu     sync.Mutex // held while this handle holds the internal lock
	gmu    sync.Mutex // held while this handle holds a queue's get lock
	closed atomic.Bool
}

// initFunc writes the object-specific fields of a new segment (called with
// the internal lock held, before the magic is set).
type initFunc func(mem []byte)

// checkFunc validates an existing segment's object-specific fields.
type checkFunc func(mem []byte) error

// openObject creates or attaches segment name holding an object of kind. size
// is the segment size a new object needs; init fills it; check validates an
// existing one (header fields already checked).
func openObject(name string, kind byte, size int, c openConfig, hdr [3]byte, init initFunc, check checkFunc) (*object, error) {
	so := shmseg.Options{Mode: c.mode, Keep: c.keep, AllowOtherOwner: c.otherOwner, Kind: kindNames[kind]}
	var seg *shmseg.Segment
	var err error
	for try := 0; ; try++ {
		if !c.createOnly {
			seg, err = shmseg.Attach(name, 0, so)
			if err == nil || !errors.Is(err, shmseg.ErrNotExist) || c.attachOnly {
				break
			}
		}
		seg, err = shmseg.Create(name, int64(size), so)
		if err == nil || !errors.Is(err, shmseg.ErrExist) || c.createOnly || try > 10 {
			break
		}
	}
	if err != nil {
		switch {
		case errors.Is(err, shmseg.ErrExist):
			err = fmt.Errorf("%w: %w", os.ErrExist, err)
		case errors.Is(err, shmseg.ErrNotExist):
			err = fmt.Errorf("%w: %w", os.ErrNotExist, err)
		}
		return nil, err
	}
	o, err := mapObject(seg, name, kind)
	if err != nil {
		seg.Close()
		return nil, err
	}
	if err := o.setup(size, c.attachOnly, hdr, init, check); err != nil {
		o.Close()
		return nil, err
	}
	return o, nil
}

func mapObject(seg *shmseg.Segment, name string, kind byte) (*object, error) {
	n, err := seg.Size()
	if err != nil {
		return nil, err
	}
	if n < headerSize || n > 1<<40 {
		return nil, fmt.Errorf("%w: %s has %d bytes", ErrLayout, name, n)
	}
	fd := seg.File().Fd()
	mem, err := unix.Mmap(int(fd), 0, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mp: mmap %s: %w", name, err)
	}
	_ = shmseg.Populate(mem, true)
	return &object{name: name, kind: kind, seg: seg, fd: fd, mem: mem}, nil
}

// setup initializes the segment if nobody has (whoever holds the internal
// lock first and finds no magic does it), or checks it.
func (o *object) setup(size int, attachOnly bool, hdr [3]byte, init initFunc, check checkFunc) error {
	queue := o.kind == kindQueue || o.kind == kindJoinableQueue
	for deadline := time.Now().Add(2 * time.Second); ; {
		done, err := o.setupOnce(queue, size, attachOnly, hdr, init, check)
		if done || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s", ErrNotReady, o.name)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// setupOnce is one try of setup; done is false when the object is not
// initialized yet and this opener may not do it. A queue's fields are
// checked with both of its locks held (get lock first), so that getters do
// not move head under the check.
func (o *object) setupOnce(queue bool, size int, attachOnly bool, hdr [3]byte, init initFunc, check checkFunc) (done bool, err error) {
	if queue {
		if err := o.lockGet(); err != nil {
			return false, err
		}
		defer o.unlockGet()
	}
	if err := o.lock(); err != nil {
		return false, err
	}
	defer o.unlock()
	if o.u32(offMagic) == magic {
		return true, o.checkHeader(hdr, check)
	}
	if attachOnly {
		return false, nil
	}
	if len(o.mem) < size {
		return false, fmt.Errorf("%w: %s has %d bytes, an empty object needs %d", ErrLayout, o.name, len(o.mem), size)
	}
	o.mem[offVersion] = version
	o.mem[offKind] = o.kind
	o.mem[offTypecode] = hdr[1]
	o.mem[offItemsize] = hdr[2]
	if init != nil {
		init(o.mem)
	}
	atomic.StoreUint32(o.p32(offMagic), magic)
	return true, nil
}

func (o *object) checkHeader(hdr [3]byte, check checkFunc) error {
	if o.mem[offVersion] != version {
		return fmt.Errorf("%w: %s has version %d, not %d", ErrLayout, o.name, o.mem[offVersion], version)
	}
	k := o.mem[offKind]
	ok := k == o.kind || (o.kind == kindQueue && k == kindJoinableQueue) || (o.kind == kindLock && k == kindRLock) || (o.kind == kindRLock && k == kindLock)
	if !ok {
		return fmt.Errorf("%w: %s holds a %s, not a %s", ErrKind, o.name, kindName(k), kindNames[o.kind])
	}
	if hdr[1] != 0 && o.mem[offTypecode] != hdr[1] && !sameTypecode(o.mem[offTypecode], hdr[1]) {
		return fmt.Errorf("%w: %s has typecode %q, not %q", ErrKind, o.name, o.mem[offTypecode], hdr[1])
	}
	if n := o.u32(offRedoN); n > redoMax {
		return fmt.Errorf("%w: %s: redo count %d", ErrLayout, o.name, n)
	}
	if check != nil {
		return check(o.mem)
	}
	return nil
}

func kindName(k byte) string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("kind %d", k)
}

func (o *object) p32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&o.mem[off])) }
func (o *object) p64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&o.mem[off])) }
func (o *object) u32(off int) uint32  { return atomic.LoadUint32(o.p32(off)) }
func (o *object) u64(off int) uint64  { return atomic.LoadUint64(o.p64(off)) }
func (o *object) set32(off int, v uint32) {
	atomic.StoreUint32(o.p32(off), v)
}
func (o *object) set64(off int, v uint64) { atomic.StoreUint64(o.p64(off), v) }

// lock takes the internal lock (this handle's mutex, then the OFD lock on
// byte 0) and replays an interrupted commit of the header's redo log.
func (o *object) lock() error { return o.lockAt(&o.mu, lockInternal, offRedoN) }

func (o *object) unlock() { o.unlockAt(&o.mu, lockInternal) }

// lockGet takes a queue's get lock (byte 2) and replays an interrupted
// commit of the get side's redo log. Lock order: the get lock before the
// internal lock, never the reverse.
func (o *object) lockGet() error { return o.lockAt(&o.gmu, lockGet, qGetRedoN) }

func (o *object) unlockGet() { o.unlockAt(&o.gmu, lockGet) }

func (o *object) lockAt(mu *sync.Mutex, b int64, log int) error {
	mu.Lock()
	if o.closed.Load() {
		mu.Unlock()
		return ErrClosed
	}
	if err := ofdlock.Lock(o.fd, b); err != nil {
		mu.Unlock()
		return err
	}
	if o.u32(offMagic) == magic && o.hasLog(log) {
		o.replay(log)
	}
	return nil
}

func (o *object) unlockAt(mu *sync.Mutex, b int64) {
	_ = ofdlock.Unlock(o.fd, b)
	mu.Unlock()
}

// hasLog reports whether the redo log at log exists in this segment: the
// header's always does, the get log only in a queue.
func (o *object) hasLog(log int) bool {
	if log == offRedoN {
		return true
	}
	k := o.mem[offKind]
	return (k == kindQueue || k == kindJoinableQueue) && len(o.mem) >= qRing
}

// redo is one field of a commit.
type redo struct {
	off   int
	width int // 4 or 8
	val   uint64
}

// commit changes up to three fields so that a process killed at any
// instruction leaves either none or all of them changed: the entries are
// written to the redo log at log (its count at log, entries from log+8),
// then their count (the commit point), then the fields, then the count is
// cleared. The next holder of the lock that guards the log finishes a
// commit whose count is set (replay). Called with that lock held.
func (o *object) commit(log int, rs ...redo) {
	o.logCommit(log, rs...)
	o.apply(log, len(rs))
	o.set32(log, 0)
}

// logCommit is commit up to its commit point: the entries, then their count.
// A process killed right after it leaves a commit for the next holder to
// replay.
func (o *object) logCommit(log int, rs ...redo) {
	for i, r := range rs {
		e := log + 8 + 16*i
		o.set32(e, uint32(r.off))
		o.set32(e+4, uint32(r.width))
		o.set64(e+8, r.val)
	}
	o.set32(log, uint32(len(rs)))
}

func (o *object) replay(log int) {
	n := int(o.u32(log))
	if n == 0 {
		return
	}
	if n > redoMax {
		n = 0 // corrupt: drop it rather than write anywhere
	}
	o.apply(log, n)
	o.set32(log, 0)
}

func (o *object) apply(log, n int) {
	for i := 0; i < n; i++ {
		e := log + 8 + 16*i
		off, width, val := int(o.u32(e)), o.u32(e+4), o.u64(e+8)
		if off < headerSize || off+int(width) > len(o.mem) || off%int(max(width, 1)) != 0 {
			continue
		}
		switch width {
		case 4:
			o.set32(off, uint32(val))
		case 8:
			o.set64(off, val)
		}
	}
}

// sleep waits on the futex word at off while it holds val, for at most
// waitSlice, the time left before ctx's deadline, or until ctx is done.
func (o *object) sleep(ctx context.Context, off int, val uint32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := waitSlice
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return context.DeadlineExceeded
		}
		d = min(d, left)
	}
	if err := futex.Wait(o.p32(off), val, d); err != nil && err != os.ErrDeadlineExceeded {
		return err
	}
	return ctx.Err()
}

func (o *object) wake(off int, n int) {
	_, _ = futex.Wake(o.p32(off), n)
}

// Close releases the handle: it unmaps the object and closes the segment;
// the last handle removes the object from /dev/shm unless it is kept.
// Idempotent. Calls blocked in another goroutine must have returned.
func (o *object) Close() error {
	o.gmu.Lock()
	defer o.gmu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed.Swap(true) {
		return nil
	}
	err := unix.Munmap(o.mem)
	if cerr := o.seg.Close(); err == nil {
		err = cerr
	}
	return err
}

// userLock is the lock on byte 1: Lock, RLock, and the lock of a Value or an
// Array. The handle's OFD lock is shared by its goroutines, so a mutex makes
// them exclusive; the kernel releases the OFD lock of a process that dies.
type userLock struct {
	o    *object
	mu   chan struct{} // a mutex whose acquisition can be abandoned
	held atomic.Bool
}

func newUserLock(o *object) *userLock {
	return &userLock{o: o, mu: make(chan struct{}, 1)}
}

// acquire takes the lock; with a ctx that can end it polls the OFD lock
// (waiting on the release word in between), otherwise it blocks in the
// kernel. It records this process as the holder (SPEC 10.8).
func (l *userLock) acquire(ctx context.Context) error {
	select {
	case l.mu <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if l.o.closed.Load() {
		<-l.mu
		return ErrClosed
	}
	var err error
	if ctx.Done() == nil {
		err = ofdlock.Lock(l.o.fd, lockUser)
	} else {
		for {
			var ok bool
			if ok, err = ofdlock.TryLock(l.o.fd, lockUser); ok || err != nil {
				break
			}
			if err = l.o.sleep(ctx, offHolder, l.o.u32(offHolder)); err != nil {
				break
			}
		}
	}
	if err != nil {
		<-l.mu
		return err
	}
	l.o.set32(offHolder, uint32(os.Getpid()))
	l.held.Store(true)
	return nil
}

func (l *userLock) tryAcquire() (bool, error) {
	select {
	case l.mu <- struct{}{}:
	default:
		return false, nil
	}
	if l.o.closed.Load() {
		<-l.mu
		return false, ErrClosed
	}
	ok, err := ofdlock.TryLock(l.o.fd, lockUser)
	if !ok || err != nil {
		<-l.mu
		return false, err
	}
	l.o.set32(offHolder, uint32(os.Getpid()))
	l.held.Store(true)
	return true, nil
}

func (l *userLock) release() error {
	if !l.held.Load() {
		return ErrNotHeld
	}
	l.held.Store(false)
	l.o.set32(offHolder, 0)
	err := ofdlock.Unlock(l.o.fd, lockUser)
	l.o.wake(offHolder, 1<<30)
	<-l.mu
	return err
}
