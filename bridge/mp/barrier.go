package mp

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/gobridge/gobridge/internal/ofdlock"
)

// Barrier layout after the common header (SPEC 10.12).
const (
	barParties  = 64 // fixed at creation, 1..barNSlots
	barGen      = 68 // futex: +1 at every trip, reset, abort or break
	barBroken   = 72 // not 0: broken
	barCount    = 76 // parties arrived in this generation
	barSlots    = 80 // barNSlots slots of barSlot bytes: u32 state, u32 arrival index
	barNSlots   = 128
	barSlot     = 8
	barSize     = barSlots + barNSlots*barSlot
	barLive     = 64 // a party in slot i holds the OFD write lock on byte barLive+i
	barFree     = 0
	barWaiting  = 1
	barPassed   = 2
	barBrokenSt = 3
)

// Barrier makes parties wait for each other; multiprocessing.Barrier's
// counterpart (threading.Barrier's semantics; Python gobridge.Barrier opens
// the same names). Wait blocks until Parties parties wait, then all return,
// each with a distinct arrival index; the last to arrive runs the handle's
// action first. A Wait whose context ends, Abort, an action that fails, or a
// party killed while waiting breaks the barrier: every waiter, and every
// later Wait until Reset, fails with ErrBrokenBarrier. At most 128 parties.
type Barrier struct {
	o       *object
	parties int
	action  func() error

	mu   sync.Mutex   // guards mine; taken with the internal lock held
	mine map[int]bool // slots this handle's goroutines wait in
}

// OpenBarrier creates barrier name for parties parties, or attaches to it
// (its parties are kept; the argument is ignored). action, which may be nil,
// is run by this handle when its Wait is the last to arrive; an error from
// it breaks the barrier and is returned by that Wait.
func OpenBarrier(name string, parties int, action func() error, opts ...OpenOption) (*Barrier, error) {
	if parties < 1 || parties > barNSlots {
		return nil, fmt.Errorf("mp: barrier parties %d not between 1 and %d", parties, barNSlots)
	}
	n := parties
	o, err := openObject(name, kindBarrier, barSize, newOpenConfig(opts), [3]byte{kindBarrier, 0, 0},
		func(mem []byte) { (&object{mem: mem}).set32(barParties, uint32(parties)) },
		func(mem []byte) error {
			p := (&object{mem: mem}).u32(barParties) // read once
			if p < 1 || p > barNSlots {
				return fmt.Errorf("%w: %s: barrier of %d parties", ErrLayout, name, p)
			}
			n = int(p)
			return nil
		})
	if err != nil {
		return nil, err
	}
	return &Barrier{o: o, parties: n, action: action, mine: map[int]bool{}}, nil
}

// Name returns the barrier's name.
func (b *Barrier) Name() string { return b.o.name }

// Parties returns the number of parties that must wait for it to trip.
func (b *Barrier) Parties() int { return b.parties }

// NWaiting returns the number of parties waiting now (a snapshot; 0 once
// the handle is closed or broken).
func (b *Barrier) NWaiting() (n int) {
	o := b.o
	if o.usable() != nil {
		return 0
	}
	defer o.guard(nil, nil, debug.SetPanicOnFault(true))
	return min(int(o.u32(barCount)), b.parties)
}

// Broken reports whether the barrier is broken (until Reset).
func (b *Barrier) Broken() (broken bool) {
	o := b.o
	if o.usable() != nil {
		return false
	}
	defer o.guard(nil, nil, debug.SetPanicOnFault(true))
	return o.u32(barBroken) != 0
}

func (b *Barrier) st(i int) (uint32, error) {
	st := b.o.u32(barSlots + i*barSlot)
	if st > barBrokenSt {
		return 0, fmt.Errorf("%w: %s: barrier slot %d has state %d", ErrLayout, b.o.name, i, st)
	}
	return st, nil
}

func (b *Barrier) live(i int) bool {
	if b.mine[i] {
		return true
	}
	held, err := ofdlock.Held(b.o.fd, int64(barLive+i))
	return err != nil || held
}

// releaseAll ends this generation: every waiting party gets state, the
// count goes to 0, broken is stored, gen += 1. With the internal lock.
func (b *Barrier) releaseAll(state, broken uint32) error {
	o := b.o
	for i := 0; i < barNSlots; i++ {
		st, err := b.st(i)
		if err != nil {
			return err
		}
		if st == barWaiting {
			o.set32(barSlots+i*barSlot, state)
		}
	}
	o.set32(barCount, 0)
	o.set32(barBroken, broken)
	o.set32(barGen, o.u32(barGen)+1)
	return nil
}

// reap frees dead parties' slots; a dead party that was waiting breaks the
// barrier. It reports whether anything changed. With the internal lock.
func (b *Barrier) reap() (bool, error) {
	changed := false
	for i := 0; i < barNSlots; i++ {
		st, err := b.st(i)
		if err != nil {
			return changed, err
		}
		if st == barFree || b.live(i) {
			continue
		}
		b.o.set32(barSlots+i*barSlot, barFree)
		if st == barWaiting {
			if err := b.releaseAll(barBrokenSt, 1); err != nil {
				return changed, err
			}
			changed = true
		}
	}
	return changed, nil
}

// locked runs f with the internal lock (waiting as long as it takes) and
// this handle's mutex, then wakes the sleepers on gen if wake.
func (b *Barrier) locked(h *held, wake bool, f func() error) error {
	return b.lockedCtx(nil, h, wake, f)
}

// lockedCtx is locked, giving up when ctx ends (nil: as long as it takes).
func (b *Barrier) lockedCtx(ctx context.Context, h *held, wake bool, f func() error) error {
	o := b.o
	if err := o.lock(ctx, h); err != nil {
		return err
	}
	b.mu.Lock()
	err := f()
	b.mu.Unlock()
	o.unlock(h)
	if wake {
		o.wake(barGen, 1<<31-1)
	}
	return err
}

// Wait waits until Parties parties wait here, then returns this party's
// arrival index (0 to Parties-1). ctx ending breaks the barrier and returns
// ErrBrokenBarrier (wrapping ctx's error), as threading's timeout does;
// ErrBrokenBarrier too if it is or becomes broken, or is reset while
// waiting.
func (b *Barrier) Wait(ctx context.Context) (index int, err error) {
	o := b.o
	var h held
	defer o.guard(&err, &h, debug.SetPanicOnFault(true))
	slot, last := -1, false
	err = b.lockedCtx(ctx, &h, true, func() error {
		if _, err := b.reap(); err != nil {
			return err
		}
		if o.u32(barBroken) != 0 {
			return ErrBrokenBarrier
		}
		n := o.u32(barCount)
		if n >= uint32(b.parties) {
			return fmt.Errorf("%w: %s: %d parties waiting at a barrier of %d", ErrLayout, o.name, n, b.parties)
		}
		for i := 0; i < barNSlots && slot < 0; i++ {
			if b.mine[i] {
				continue
			}
			if st, err := b.st(i); err != nil {
				return err
			} else if st != barFree {
				continue
			}
			if ok, err := ofdlock.TryLock(o.fd, int64(barLive+i)); err == nil && ok {
				slot = i
			}
		}
		if slot < 0 {
			return fmt.Errorf("mp: barrier %s has no free slot", o.name)
		}
		b.mine[slot] = true
		o.set32(barSlots+slot*barSlot, barWaiting)
		o.set32(barSlots+slot*barSlot+4, n)
		o.set32(barCount, n+1)
		index, last = int(n), int(n)+1 == b.parties
		return nil
	})
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return 0, fmt.Errorf("%w: %w", ErrBrokenBarrier, err) // the internal lock's holder is stopped
	}
	if err != nil {
		return 0, err
	}
	var cause error
	if last {
		if b.action != nil {
			cause = b.action()
		}
	} else {
		for {
			gen := o.u32(barGen) // before the state: a change after this read bumps it
			if o.u32(barSlots+slot*barSlot) != barWaiting {
				break
			}
			if cause = o.sleep(ctx, barGen, gen); cause != nil {
				break
			}
			if o.u32(barSlots+slot*barSlot) == barWaiting && o.u32(barGen) == gen { // a slice: look for dead parties
				var lerr error
				_ = b.locked(&h, true, func() error { _, lerr = b.reap(); return nil })
				if lerr != nil {
					cause = lerr
					break
				}
			}
		}
	}
	var st uint32
	lerr := b.locked(&h, true, func() error {
		var err error
		if st, err = b.st(slot); err != nil {
			return err
		}
		if st == barWaiting { // the last party, or one whose ctx ended
			if last && cause == nil {
				st = barPassed
				err = b.releaseAll(barPassed, 0)
			} else {
				st = barBrokenSt
				err = b.releaseAll(barBrokenSt, 1)
			}
		}
		o.set32(barSlots+slot*barSlot, barFree)
		delete(b.mine, slot)
		_ = ofdlock.Unlock(o.fd, int64(barLive+slot))
		return err
	})
	switch {
	case lerr != nil:
		return 0, lerr
	case last && cause != nil:
		return 0, cause
	case st != barPassed && cause != nil:
		return 0, fmt.Errorf("%w: %w", ErrBrokenBarrier, cause)
	case st != barPassed:
		return 0, ErrBrokenBarrier
	}
	return index, nil
}

// Reset returns the barrier to its initial state: parties waiting now fail
// with ErrBrokenBarrier, and it is no longer broken.
func (b *Barrier) Reset() (err error) {
	var h held
	defer b.o.guard(&err, &h, debug.SetPanicOnFault(true))
	return b.locked(&h, true, func() error { return b.releaseAll(barBrokenSt, 0) })
}

// Abort breaks the barrier: parties waiting now and every later Wait fail
// with ErrBrokenBarrier until Reset.
func (b *Barrier) Abort() (err error) {
	var h held
	defer b.o.guard(&err, &h, debug.SetPanicOnFault(true))
	return b.locked(&h, true, func() error { return b.releaseAll(barBrokenSt, 1) })
}

// Close releases this handle; the last one removes the barrier unless kept.
func (b *Barrier) Close() error { return b.o.Close() }
