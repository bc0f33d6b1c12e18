package mp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
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
	redoEntry   = 16 // bytes per redo entry
	headerSize  = 64

	lockInternal = 0 // byte of the segment locked around every header change (a queue's put side)
	lockUser     = 1 // byte locked by Lock, RLock and Value/Array Lock
	lockGet      = 2 // a queue's get side (SPEC 10.5)

	maxSegment = 1 << 40 // the largest segment an opener maps
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
	kindBoundedSem    = 8
	kindEvent         = 9
	kindCondition     = 10
	kindBarrier       = 11
)

var kindNames = map[byte]string{
	kindQueue: shmseg.KindQueue, kindJoinableQueue: shmseg.KindJoinableQueue, kindValue: shmseg.KindValue,
	kindArray: shmseg.KindArray, kindSemaphore: shmseg.KindSemaphore, kindLock: shmseg.KindLock, kindRLock: shmseg.KindRLock,
	kindBoundedSem: shmseg.KindBoundedSemaphore, kindEvent: shmseg.KindEvent,
	kindCondition: shmseg.KindCondition, kindBarrier: shmseg.KindBarrier,
}

// fits reports whether a handle of kind want may open a segment holding kind
// have: a Queue opens a joinable queue, Lock and RLock open each other's.
func fits(want, have byte) bool {
	return have == want || (want == kindQueue && have == kindJoinableQueue) ||
		(want == kindLock && have == kindRLock) || (want == kindRLock && have == kindLock)
}

// minSize is the smallest segment an object of kind k can live in.
func minSize(k byte) int {
	switch k {
	case kindQueue, kindJoinableQueue:
		return qRing + minCap
	case kindBoundedSem:
		return bsemSize
	case kindCondition:
		return cvSize
	case kindBarrier:
		return barSize
	}
	return valueOff + 8
}

// waitSlice bounds every futex sleep, so that a waiter notices a cancelled
// context, and a wake-up lost to a killed process, within this long.
const waitSlice = 50 * time.Millisecond

// readyWait is how long an opener waits for a segment marked with its kind
// that carries no magic yet (SPEC 10.1) before ErrNotReady.
const readyWait = 2 * time.Second

// object is one handle on a shared object: the segment, its mapping, and the
// process-local mutexes that make the handle's OFD locks exclusive between
// goroutines (the kernel sees one owner per open file description).
type object struct {
	name     string
	kind     byte // the kind in the segment's header, read once when opening
	typecode byte // a Value's or Array's typecode, likewise
	seg      *shmseg.Segment
	fd       uintptr
	mem      []byte

	mu     chanMutex // held while this handle holds the internal lock
	gmu    chanMutex // held while this handle holds a queue's get lock
	closed atomic.Bool
	broken atomic.Bool // a fault: the segment was truncated under the mapping
}

// chanMutex is a mutex whose Lock can give up when a context ends.
type chanMutex chan struct{}

func newChanMutex() chanMutex { return make(chanMutex, 1) }

// lock takes m, giving up when ctx ends; a nil ctx, or one that never ends,
// waits as long as it takes.
func (m chanMutex) lock(ctx context.Context) error {
	select {
	case m <- struct{}{}:
		return nil
	default:
	}
	if ctx == nil || ctx.Done() == nil {
		m <- struct{}{}
		return nil
	}
	select {
	case m <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m chanMutex) tryLock() bool {
	select {
	case m <- struct{}{}:
		return true
	default:
		return false
	}
}

func (m chanMutex) unlock() { <-m }

// held records which of its handle's locks one operation holds, so that a
// fault in the middle of it releases them (see guard).
type held uint8

const (
	heldInternal held = 1 << iota
	heldGet
)

// initFunc writes the object-specific fields of a new segment, before the
// magic is set and before anyone else can see the segment.
type initFunc func(mem []byte)

// checkFunc validates an existing segment's immutable object-specific fields
// (the header is already checked, and the segment is at least minSize),
// reading each once; the caller keeps the values it checked.
type checkFunc func(mem []byte) error

// openObject creates or attaches segment name holding an object of kind. size
// is the segment size a new object needs; hdr is the kind, typecode and item
// size it records; init fills a new one; check validates an existing one.
//
// A creator writes the whole header (the magic last) before shmseg publishes
// the name, so an attacher never writes anything: a segment without the
// magic is either not a gobridge object (refused, untouched) or, when it
// carries the kind mark, one being made by an older creator (waited for, at
// most readyWait). No lock is taken while opening: the opener reads only the
// fields that never change after creation; every operation validates the
// others it reads.
func openObject(name string, kind byte, size int, c openConfig, hdr [3]byte, init initFunc, check checkFunc) (*object, error) {
	so := shmseg.Options{Mode: c.mode, Keep: c.keep, AllowOtherOwner: c.otherOwner, Kind: kindNames[kind]}
	var made []byte // the mapping so.Init made and filled
	unmapMade := func() {
		if made != nil {
			_ = unix.Munmap(made)
			made = nil
		}
	}
	so.Init = func(f *os.File) error {
		unmapMade()
		mem, err := mapFile(f, int64(size), name)
		if err != nil {
			return err
		}
		_ = shmseg.Populate(mem, true) // best effort: it only saves page faults
		// Nobody else can see this file yet, but guard the writes anyway.
		if err := shmseg.Guard(func() {
			mem[offVersion] = version
			mem[offKind] = kind
			mem[offTypecode] = hdr[1]
			mem[offItemsize] = hdr[2]
			if init != nil {
				init(mem)
			}
			atomic.StoreUint32((*uint32)(unsafe.Pointer(&mem[offMagic])), magic)
		}); err != nil {
			_ = unix.Munmap(mem)
			return fmt.Errorf("%w: %s", err, name)
		}
		made = mem
		return nil
	}
	for try := 0; ; try++ {
		if !c.createOnly {
			ao := so
			ao.Keep = false // marked keep only once it is known to be ours
			seg, err := shmseg.Attach(name, 0, ao)
			if err == nil {
				o, err := attachObject(seg, name, kind, hdr, check)
				if err == nil && c.keep {
					_ = seg.SetKeep() // without user xattrs: kept by this handle only, as before
				}
				if err != nil {
					if o != nil {
						_ = unix.Munmap(o.mem)
					}
					seg.Abandon() // refused: leave it as it was, even as its last handle
					return nil, err
				}
				return o, nil
			}
			if !errors.Is(err, shmseg.ErrNotExist) || c.attachOnly {
				return nil, openErr(err)
			}
		}
		seg, err := shmseg.Create(name, int64(size), so)
		if err == nil {
			o := newObject(seg, name, kind, made)
			o.typecode = hdr[1]
			return o, nil
		}
		unmapMade()
		if !errors.Is(err, shmseg.ErrExist) || c.createOnly || try > 10 {
			return nil, openErr(err)
		}
	}
}

func openErr(err error) error {
	switch {
	case errors.Is(err, shmseg.ErrExist):
		return fmt.Errorf("%w: %w", os.ErrExist, err)
	case errors.Is(err, shmseg.ErrNotExist):
		return fmt.Errorf("%w: %w", os.ErrNotExist, err)
	}
	return err
}

func newObject(seg *shmseg.Segment, name string, kind byte, mem []byte) *object {
	return &object{name: name, kind: kind, seg: seg, fd: seg.File().Fd(), mem: mem, mu: newChanMutex(), gmu: newChanMutex()}
}

// mapFile maps n bytes of f, without populating them: an attacher
// populates only what its object uses, once it knows (a planted sparse
// segment of a terabyte must not be allocated).
func mapFile(f *os.File, n int64, name string) ([]byte, error) {
	mem, err := unix.Mmap(int(f.Fd()), 0, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mp: mmap %s: %w", name, err)
	}
	return mem, nil
}

// attachObject maps an existing segment and checks that it holds an object a
// handle of kind may use, before taking any lock and without writing to it:
// first the kind mark (a name in use by another kind, say an shm: listener,
// is refused at once), then the magic, the header and the size the kind
// needs, then check.
func attachObject(seg *shmseg.Segment, name string, kind byte, hdr [3]byte, check checkFunc) (*object, error) {
	mark, err := seg.Kind()
	if err != nil {
		return nil, err
	}
	marked := mark != ""
	if marked {
		k := byte(0)
		for code, n := range kindNames {
			if n == mark {
				k = code
			}
		}
		if k == 0 || !fits(kind, k) {
			return nil, fmt.Errorf("%w: %s holds a %s, not a %s", ErrKind, name, mark, kindNames[kind])
		}
	}
	deadline := time.Now().Add(readyWait)
	for {
		n, err := seg.Size()
		if err != nil {
			return nil, err
		}
		if n > maxSegment {
			return nil, fmt.Errorf("%w: %s has %d bytes", ErrLayout, name, n)
		}
		if n >= headerSize {
			mem, err := mapFile(seg.File(), n, name)
			if err != nil {
				return nil, err
			}
			var m uint32
			if err := shmseg.Guard(func() { m = atomic.LoadUint32((*uint32)(unsafe.Pointer(&mem[offMagic]))) }); err != nil {
				_ = unix.Munmap(mem)
				return nil, fmt.Errorf("%w: %s", err, name)
			}
			if m == magic {
				o := newObject(seg, name, kind, mem)
				if err := o.checkHeader(hdr, check); err != nil {
					_ = unix.Munmap(mem)
					return nil, err
				}
				return o, nil
			}
			_ = unix.Munmap(mem)
			if m != 0 {
				return nil, fmt.Errorf("%w: %s is not a gobridge shared object (magic %#x), left untouched", ErrLayout, name, m)
			}
		}
		if !marked {
			return nil, fmt.Errorf("%w: %s is not a gobridge shared object (%d bytes, no magic, no kind mark), left untouched", ErrLayout, name, n)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: %s (marked %s, never given its header)", ErrNotReady, name, mark)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkHeader validates the header of an attached segment, reading each
// field once, and records its kind.
func (o *object) checkHeader(hdr [3]byte, check checkFunc) (err error) {
	defer o.guard(&err, nil, debug.SetPanicOnFault(true))
	v, k, tc, size := o.mem[offVersion], o.mem[offKind], o.mem[offTypecode], o.mem[offItemsize]
	if v != version {
		return fmt.Errorf("%w: %s has version %d, not %d", ErrLayout, o.name, v, version)
	}
	if !fits(o.kind, k) {
		return fmt.Errorf("%w: %s holds a %s, not a %s", ErrKind, o.name, kindName(k), kindNames[o.kind])
	}
	if hdr[1] != 0 {
		if tc != hdr[1] && !sameTypecode(tc, hdr[1]) {
			return fmt.Errorf("%w: %s has typecode %q, not %q", ErrKind, o.name, tc, hdr[1])
		}
		if size != hdr[2] {
			return fmt.Errorf("%w: %s: item size %d for typecode %q", ErrLayout, o.name, size, tc)
		}
	}
	if need := minSize(k); len(o.mem) < need {
		return fmt.Errorf("%w: %s has %d bytes, a %s needs at least %d", ErrLayout, o.name, len(o.mem), kindName(k), need)
	}
	o.kind, o.typecode = k, tc
	if check != nil {
		if err := check(o.mem); err != nil {
			return err
		}
	}
	_ = shmseg.Populate(o.mem[:min(len(o.mem), o.used())], true)
	return nil
}

// used is how many bytes of its segment the object uses (the rest of a
// larger segment is never touched): a queue its ring, an array its items.
func (o *object) used() int {
	switch {
	case o.queue():
		return qRing + int(min(o.u64(qCapacity), uint64(len(o.mem))))
	case o.kind == kindArray:
		return arrayItems + int(min(o.u64(arrayLenOff), uint64(len(o.mem))))*max(ItemSize(o.typecode), 1)
	}
	return valueOff + 8
}

func kindName(k byte) string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("kind %d", k)
}

func (o *object) queue() bool { return o.kind == kindQueue || o.kind == kindJoinableQueue }

func (o *object) p32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&o.mem[off])) }
func (o *object) p64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&o.mem[off])) }
func (o *object) u32(off int) uint32  { return atomic.LoadUint32(o.p32(off)) }
func (o *object) u64(off int) uint64  { return atomic.LoadUint64(o.p64(off)) }
func (o *object) set32(off int, v uint32) {
	atomic.StoreUint32(o.p32(off), v)
}
func (o *object) set64(off int, v uint64) { atomic.StoreUint64(o.p64(off), v) }

// usable reports why the handle cannot be used: closed, or broken by a fault.
func (o *object) usable() error {
	if o.closed.Load() {
		return ErrClosed
	}
	if o.broken.Load() {
		return o.faultErr()
	}
	return nil
}

func (o *object) faultErr() error {
	return fmt.Errorf("%w: %s (its segment was truncated; this handle is broken, close it)", ErrFault, o.name)
}

// guard ends every operation that touches the mapping. Deferred as
//
//	defer o.guard(&err, &h, debug.SetPanicOnFault(true))
//
// it restores the goroutine's fault setting and turns a fault on the mapping
// (another process truncated the segment: SIGBUS) into ErrFault: the locks
// the operation holds (h, which may be nil) are released and the handle is
// marked broken, so that its later calls fail at once. Other panics go on.
func (o *object) guard(err *error, h *held, old bool) {
	debug.SetPanicOnFault(old)
	r := recover()
	if r == nil {
		return
	}
	if _, ok := r.(interface{ Addr() uintptr }); !ok {
		panic(r)
	}
	o.broken.Store(true)
	if h != nil {
		if *h&heldGet != 0 {
			o.unlockGet(h)
		}
		if *h&heldInternal != 0 {
			o.unlock(h)
		}
	}
	if err != nil {
		*err = o.faultErr()
	}
}

// lock takes the internal lock (this handle's mutex, then the OFD lock on
// byte 0) and replays an interrupted commit of the header's redo log. It
// gives up when ctx ends; a nil ctx, or one that never ends, waits as long
// as it takes (SPEC 10.5). Called inside a guarded operation.
func (o *object) lock(ctx context.Context, h *held) error {
	return o.lockAt(ctx, o.mu, lockInternal, offRedoN, h, heldInternal)
}

func (o *object) unlock(h *held) { o.unlockAt(o.mu, lockInternal, h, heldInternal) }

// lockGet takes a queue's get lock (byte 2) and replays an interrupted
// commit of the get side's redo log. Lock order: the get lock before the
// internal lock, never the reverse.
func (o *object) lockGet(ctx context.Context, h *held) error {
	return o.lockAt(ctx, o.gmu, lockGet, qGetRedoN, h, heldGet)
}

func (o *object) unlockGet(h *held) { o.unlockAt(o.gmu, lockGet, h, heldGet) }

// tryLock takes the internal lock if it is free at once (to take back a
// sleeper's count after the caller's deadline passed).
func (o *object) tryLock(h *held) bool {
	return o.tryLockAt(o.mu, lockInternal, offRedoN, h, heldInternal)
}

func (o *object) tryLockGet(h *held) bool {
	return o.tryLockAt(o.gmu, lockGet, qGetRedoN, h, heldGet)
}

func (o *object) lockAt(ctx context.Context, mu chanMutex, b int64, log int, h *held, bit held) error {
	if err := mu.lock(ctx); err != nil {
		return err
	}
	if err := o.usable(); err != nil {
		mu.unlock()
		return err
	}
	if err := ofdlock.LockContext(ctx, o.fd, b); err != nil {
		mu.unlock()
		return err
	}
	*h |= bit
	if n := o.u32(log); n != 0 {
		o.replay(log, n)
	}
	return nil
}

func (o *object) tryLockAt(mu chanMutex, b int64, log int, h *held, bit held) bool {
	if !mu.tryLock() {
		return false
	}
	if o.usable() != nil {
		mu.unlock()
		return false
	}
	if ok, err := ofdlock.TryLock(o.fd, b); !ok || err != nil {
		mu.unlock()
		return false
	}
	*h |= bit
	if n := o.u32(log); n != 0 {
		o.replay(log, n)
	}
	return true
}

func (o *object) unlockAt(mu chanMutex, b int64, h *held, bit held) {
	*h &^= bit
	_ = ofdlock.Unlock(o.fd, b)
	mu.unlock()
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
// then their count (the commit point), then the fields from rs (never read
// back from the log), then the count is cleared. The next holder of the lock
// that guards the log finishes a commit whose count is set (replay). Called
// with that lock held.
func (o *object) commit(log int, rs ...redo) {
	o.logCommit(log, rs...)
	for _, r := range rs {
		if r.width == 4 {
			o.set32(r.off, uint32(r.val))
		} else {
			o.set64(r.off, r.val)
		}
	}
	o.set32(log, 0)
}

// logCommit is commit up to its commit point: the entries, then their count.
// A process killed right after it leaves a commit for the next holder to
// replay.
func (o *object) logCommit(log int, rs ...redo) {
	for i, r := range rs {
		e := log + 8 + redoEntry*i
		o.set32(e, uint32(r.off))
		o.set32(e+4, uint32(r.width))
		o.set64(e+8, r.val)
	}
	o.set32(log, uint32(len(rs)))
}

// replay finishes a commit interrupted after its commit point (SPEC 10.5):
// of the n entries of the log at log, it applies those that name one of the
// fields that log's commits change, with that field's width, and skips any
// other (corrupt or hostile: nothing else is ever written), then clears the
// count. A count above redoMax drops the log. Called with the lock that
// guards the log held.
func (o *object) replay(log int, n uint32) {
	if n <= redoMax {
		for i := 0; i < int(n); i++ {
			e := log + 8 + redoEntry*i
			off, width, val := o.u32(e), o.u32(e+4), o.u64(e+8)
			if !o.logField(log, off, width) {
				continue
			}
			if width == 4 {
				o.set32(int(off), uint32(val))
			} else {
				o.set64(int(off), val)
			}
		}
	}
	o.set32(log, 0)
}

// logField reports whether a commit through the log at log may change the
// field at off of width bytes: a put's tail, put_seq (and a joinable
// queue's unfinished), a get's head and get_seq. Only queues commit.
func (o *object) logField(log int, off, width uint32) bool {
	if !o.queue() {
		return false
	}
	switch log {
	case offRedoN:
		return (off == qTail || off == qPutSeq) && width == 8 || off == qUnfin && width == 4 && o.kind == kindJoinableQueue
	case qGetRedoN:
		return (off == qHead || off == qGetSeq) && width == 8
	}
	return false
}

// sleep waits on the futex word at off while it holds val, for at most
// waitSlice, the time left before ctx's deadline, or until ctx is done.
func (o *object) sleep(ctx context.Context, off int, val uint32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dl, _ := ctx.Deadline()
	if err := futex.WaitBounded(o.p32(off), val, dl, waitSlice); err != nil {
		if err == os.ErrDeadlineExceeded {
			return context.DeadlineExceeded
		}
		if errors.Is(err, unix.EFAULT) { // the page is gone: truncated
			o.broken.Store(true)
			return o.faultErr()
		}
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
	_ = o.gmu.lock(nil)
	defer o.gmu.unlock()
	_ = o.mu.lock(nil)
	defer o.mu.unlock()
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
	mu   chanMutex
	held atomic.Bool
}

func newUserLock(o *object) *userLock {
	return &userLock{o: o, mu: newChanMutex()}
}

// acquire takes the lock; with a ctx that can end it polls the OFD lock
// (waiting on the release word in between), otherwise it blocks in the
// kernel. It records this process as the holder (SPEC 10.8).
func (l *userLock) acquire(ctx context.Context) (err error) {
	if err := l.mu.lock(ctx); err != nil {
		return err
	}
	o := l.o
	if err := o.usable(); err != nil {
		l.mu.unlock()
		return err
	}
	locked := false
	defer func() {
		if err != nil && locked {
			_ = ofdlock.Unlock(o.fd, lockUser)
		}
		if err != nil {
			l.mu.unlock()
		}
	}()
	defer o.guard(&err, nil, debug.SetPanicOnFault(true))
	if ctx.Done() == nil {
		err = ofdlock.Lock(o.fd, lockUser)
	} else {
		for {
			var ok bool
			if ok, err = ofdlock.TryLock(o.fd, lockUser); ok || err != nil {
				break
			}
			if err = o.sleep(ctx, offHolder, o.u32(offHolder)); err != nil {
				break
			}
		}
	}
	if err != nil {
		return err
	}
	locked = true
	o.set32(offHolder, uint32(os.Getpid()))
	l.held.Store(true)
	return nil
}

func (l *userLock) tryAcquire() (ok bool, err error) {
	if !l.mu.tryLock() {
		return false, nil
	}
	o := l.o
	if err := o.usable(); err != nil {
		l.mu.unlock()
		return false, err
	}
	ok, err = ofdlock.TryLock(o.fd, lockUser)
	if !ok || err != nil {
		l.mu.unlock()
		return false, err
	}
	defer func() {
		if err != nil {
			_ = ofdlock.Unlock(o.fd, lockUser)
			l.mu.unlock()
		}
	}()
	defer o.guard(&err, nil, debug.SetPanicOnFault(true))
	o.set32(offHolder, uint32(os.Getpid()))
	l.held.Store(true)
	return true, nil
}

// release gives the lock back: holder cleared, the OFD lock released, the
// sleepers on holder woken. The OFD lock and the mutex are released even
// when the segment faults (truncated) under the write of holder.
func (l *userLock) release() error {
	if !l.held.Load() {
		return ErrNotHeld
	}
	l.held.Store(false)
	o := l.o
	defer l.mu.unlock()
	if o.closed.Load() {
		return nil // Close dropped the OFD lock with the descriptor
	}
	err := o.clearHolder()
	if uerr := ofdlock.Unlock(o.fd, lockUser); err == nil {
		err = uerr
	}
	o.wake(offHolder, 1<<30)
	return err
}

func (o *object) clearHolder() (err error) {
	if err := o.usable(); err != nil {
		return err
	}
	defer o.guard(&err, nil, debug.SetPanicOnFault(true))
	o.set32(offHolder, 0)
	return nil
}
