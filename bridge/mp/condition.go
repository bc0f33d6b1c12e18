package mp

import (
	"context"
	"fmt"
	"runtime/debug"
	"sort"

	"github.com/gobridge/gobridge/internal/ofdlock"
)

// Condition layout after the common header (SPEC 10.11).
const (
	cvSeq      = 64  // futex: +1 by every notify that marked a waiter
	cvTicket   = 68  // the next waiter's ticket (wrapping)
	cvSlots    = 72  // cvNSlots slots of cvSlot bytes: u32 state, u32 ticket
	cvNSlots   = 128 // most waiters at a time
	cvSlot     = 8
	cvSize     = cvSlots + cvNSlots*cvSlot
	cvLive     = 64 // a waiter in slot i holds the OFD write lock on byte cvLive+i
	cvFree     = 0
	cvWaiting  = 1
	cvNotified = 2
)

// A Locker is the lock of a Condition: *Lock and *RLock are Lockers.
type Locker interface {
	Acquire(ctx context.Context) error
	Release() error
}

// Condition is a condition variable in a named segment;
// multiprocessing.Condition's counterpart (Python gobridge.Condition opens
// the same names). Its lock is the condition's own (byte 1 of its segment,
// as a Lock), or a Lock or RLock given to OpenCondition, which every process
// sharing the condition must then use too.
//
// It is crash-safe (SPEC 10.11): a holder that dies releases the lock, and a
// waiter holds a liveness lock that the kernel drops when it dies, so Notify
// never counts or waits for a dead waiter. At most 128 waiters at a time.
type Condition struct {
	o    *object
	lock Locker
	own  *userLock // the condition's own lock, or nil

	mine map[int]bool // slots this handle's goroutines wait in, under the internal lock
}

// OpenCondition creates condition name or attaches to it. lock nil uses the
// condition's own lock (Python: Condition(name=...)); otherwise lock is the
// one Python passes as Condition(lock, name=...).
func OpenCondition(name string, lock Locker, opts ...OpenOption) (*Condition, error) {
	o, err := openObject(name, kindCondition, cvSize, newOpenConfig(opts), [3]byte{kindCondition, 0, 0}, nil, nil)
	if err != nil {
		return nil, err
	}
	c := &Condition{o: o, lock: lock, mine: map[int]bool{}}
	if lock == nil {
		c.own = newUserLock(o)
	}
	return c, nil
}

// Name returns the condition's name.
func (c *Condition) Name() string { return c.o.name }

// Acquire takes the condition's lock, waiting until ctx is done.
func (c *Condition) Acquire(ctx context.Context) error {
	if c.own != nil {
		return c.own.acquire(ctx)
	}
	return c.lock.Acquire(ctx)
}

// Release releases the condition's lock.
func (c *Condition) Release() error {
	if c.own != nil {
		return c.own.release()
	}
	return c.lock.Release()
}

func (c *Condition) held() bool {
	return c.own == nil || c.own.held.Load()
}

// slot reads slot i's state and ticket once each; a state no process
// writes is ErrLayout.
func (c *Condition) slot(i int) (st, ticket uint32, err error) {
	o := c.o
	st = o.u32(cvSlots + i*cvSlot)
	if st > cvNotified {
		return 0, 0, fmt.Errorf("%w: %s: condition slot %d has state %d", ErrLayout, o.name, i, st)
	}
	return st, o.u32(cvSlots + i*cvSlot + 4), nil
}

// live reports whether slot i's waiter is alive: this handle's, or another
// open file description holds its liveness byte.
func (c *Condition) live(i int) bool {
	if c.mine[i] {
		return true
	}
	held, err := ofdlock.Held(c.o.fd, int64(cvLive+i))
	return err != nil || held // an error: assume alive, never steal a slot
}

// claim takes a free slot (or a dead waiter's) and its liveness lock, and
// registers it with the next ticket. Called with the internal lock.
func (c *Condition) claim() (int, error) {
	o := c.o
	for i := 0; i < cvNSlots; i++ {
		if c.mine[i] {
			continue
		}
		st, _, err := c.slot(i)
		if err != nil {
			return 0, err
		}
		if st != cvFree && c.live(i) {
			continue
		}
		if ok, err := ofdlock.TryLock(o.fd, int64(cvLive+i)); err != nil || !ok {
			continue // held by a description that is no waiter's: skip it
		}
		t := o.u32(cvTicket)
		o.set32(cvSlots+i*cvSlot+4, t)
		o.set32(cvSlots+i*cvSlot, cvWaiting)
		o.set32(cvTicket, t+1)
		c.mine[i] = true
		return i, nil
	}
	return 0, fmt.Errorf("mp: condition %s has %d waiters already", o.name, cvNSlots)
}

// leave frees slot i and reports whether it was notified. Called with the
// internal lock.
func (c *Condition) leave(i int) bool {
	o := c.o
	notified := o.u32(cvSlots+i*cvSlot) == cvNotified
	o.set32(cvSlots+i*cvSlot, cvFree)
	delete(c.mine, i)
	_ = ofdlock.Unlock(o.fd, int64(cvLive+i))
	return notified
}

// Wait releases the lock, which the caller holds (once, for an RLock),
// sleeps until notified or ctx ends, and takes the lock again (waiting as
// long as that takes) before it returns: nil if notified, ctx's error
// otherwise. ErrNotHeld if the condition's own lock is not held by this
// handle.
func (c *Condition) Wait(ctx context.Context) (err error) {
	if err := c.o.usable(); err != nil {
		return err
	}
	if !c.held() {
		return ErrNotHeld
	}
	o := c.o
	var h held
	defer o.guard(&err, &h, debug.SetPanicOnFault(true))
	if err := o.lock(ctx, &h); err != nil {
		return err // ctx ended first (the internal lock's holder is stopped): still holding the lock
	}
	i, err := c.claim()
	o.unlock(&h)
	if err != nil {
		return err
	}
	if err := c.Release(); err != nil {
		c.finish(&h, i)
		return err
	}
	defer func() {
		if aerr := c.Acquire(context.Background()); aerr != nil && err == nil {
			err = aerr
		}
	}()
	var serr error
	for {
		seq := o.u32(cvSeq) // before the state: a notify after this read changes it
		if o.u32(cvSlots+i*cvSlot) == cvNotified {
			break
		}
		if serr = o.sleep(ctx, cvSeq, seq); serr != nil {
			break
		}
	}
	if c.finish(&h, i) {
		return nil
	}
	if serr == nil {
		serr = ctx.Err()
	}
	return serr
}

// finish leaves slot i under the internal lock (waiting as long as it
// takes) and reports whether it was notified.
func (c *Condition) finish(h *held, i int) bool {
	o := c.o
	if err := o.lock(nil, h); err != nil {
		return false
	}
	notified := c.leave(i)
	o.unlock(h)
	return notified
}

// Notify wakes up to n waiters, the longest waiting first, skipping (and
// freeing the slots of) dead ones. ErrNotHeld if the condition's own lock
// is not held by this handle.
func (c *Condition) Notify(n int) (err error) {
	if err := c.o.usable(); err != nil {
		return err
	}
	if !c.held() {
		return ErrNotHeld
	}
	o := c.o
	var h held
	defer o.guard(&err, &h, debug.SetPanicOnFault(true))
	if err := o.lock(nil, &h); err != nil {
		return err
	}
	next := o.u32(cvTicket)
	type waiter struct {
		age uint32
		i   int
	}
	var waiting []waiter
	for i := 0; i < cvNSlots; i++ {
		st, t, err := c.slot(i)
		if err != nil {
			o.unlock(&h)
			return err
		}
		if st == cvFree {
			continue
		}
		if !c.live(i) {
			o.set32(cvSlots+i*cvSlot, cvFree) // a dead waiter's slot
		} else if st == cvWaiting {
			waiting = append(waiting, waiter{next - t, i})
		}
	}
	sort.Slice(waiting, func(a, b int) bool { return waiting[a].age > waiting[b].age }) // oldest first
	woke := false
	for k := 0; k < len(waiting) && k < n; k++ {
		o.set32(cvSlots+waiting[k].i*cvSlot, cvNotified)
		woke = true
	}
	if woke {
		o.set32(cvSeq, o.u32(cvSeq)+1)
	}
	o.unlock(&h)
	if woke {
		o.wake(cvSeq, 1<<31-1)
	}
	return nil
}

// NotifyAll wakes every waiter.
func (c *Condition) NotifyAll() error { return c.Notify(cvNSlots) }

// Close releases this handle; the last one removes the condition unless
// kept.
func (c *Condition) Close() error { return c.o.Close() }
