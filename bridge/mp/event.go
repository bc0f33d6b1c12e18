package mp

import (
	"context"
	"runtime/debug"
)

// Event layout after the common header (SPEC 10.10).
const (
	evState = 64 // futex: bit 0 set, bits 1-31 the number of set() that found it clear (wrapping)
)

// Event is a flag in a named segment that Set raises, Clear lowers and Wait
// waits for; multiprocessing.Event's counterpart (Python gobridge.Event
// opens the same names). A Wait that a Set woke returns nil even if a Clear
// came before it looked, as threading.Event's wait: the state word counts
// the sets, so no Set is missed.
type Event struct {
	o *object
}

// OpenEvent creates event name (clear) or attaches to it.
func OpenEvent(name string, opts ...OpenOption) (*Event, error) {
	o, err := openObject(name, kindEvent, valueOff+8, newOpenConfig(opts), [3]byte{kindEvent, 0, 0}, nil, nil)
	if err != nil {
		return nil, err
	}
	return &Event{o: o}, nil
}

// Name returns the event's name.
func (e *Event) Name() string { return e.o.name }

// IsSet reports whether the event is set (a snapshot; false once the handle
// is closed or broken).
func (e *Event) IsSet() bool {
	o := e.o
	if o.usable() != nil {
		return false
	}
	var set bool
	func() {
		defer o.guard(nil, nil, debug.SetPanicOnFault(true))
		set = o.u32(evState)&1 != 0
	}()
	return set
}

// Set sets the event and wakes every waiter. It waits for the internal lock
// as long as it takes.
func (e *Event) Set() (err error) {
	o := e.o
	var h held
	defer o.guard(&err, &h, debug.SetPanicOnFault(true))
	if err := o.lock(nil, &h); err != nil {
		return err
	}
	w := o.u32(evState) // read once
	if w&1 != 0 {
		o.unlock(&h)
		return nil
	}
	o.set32(evState, (w+2)|1) // one more set; the generation wraps in 31 bits
	o.unlock(&h)
	o.wake(evState, 1<<31-1)
	return nil
}

// Clear clears the event. It waits for the internal lock as long as it
// takes.
func (e *Event) Clear() (err error) {
	o := e.o
	var h held
	defer o.guard(&err, &h, debug.SetPanicOnFault(true))
	if err := o.lock(nil, &h); err != nil {
		return err
	}
	if w := o.u32(evState); w&1 != 0 {
		o.set32(evState, w&^1)
	}
	o.unlock(&h)
	return nil
}

// Wait returns nil once the event is set (at once if it is), or ctx's error
// when ctx ends first. It takes no lock.
func (e *Event) Wait(ctx context.Context) (err error) {
	o := e.o
	if err := o.usable(); err != nil {
		return err
	}
	defer o.guard(&err, nil, debug.SetPanicOnFault(true))
	w := o.u32(evState)
	for {
		if w&1 != 0 {
			return nil
		}
		serr := o.sleep(ctx, evState, w)
		if err := o.usable(); err != nil {
			return err
		}
		if now := o.u32(evState); now&1 != 0 || now>>1 != w>>1 {
			return nil // set, perhaps cleared again since
		}
		if serr != nil {
			return serr
		}
	}
}

// Close releases this handle; the last one removes the event unless kept.
func (e *Event) Close() error { return e.o.Close() }
