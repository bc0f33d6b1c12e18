package mp

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
)

// Semaphore layout after the common header.
const (
	semValue   = 64 // futex: the count
	semWaiters = 68 // acquirers asleep (a hint for the waker)
	bsemBound  = 72 // a bounded semaphore's bound (its initial value)
	bsemSize   = 80 // a bounded semaphore's segment
)

// Semaphore is a counter in a named segment that Acquire decrements, waiting
// while it is 0, and Release increments; multiprocessing.Semaphore's
// counterpart. A count is not owned: a process that dies between Acquire
// and Release does not give it back (as with multiprocessing).
//
// A bounded semaphore (OpenBoundedSemaphore) is multiprocessing.BoundedSemaphore's
// counterpart: Release above its initial value fails with ErrReleasedTooMany.
type Semaphore struct {
	o   *object
	max uint32 // the largest count: semMax, or a bounded semaphore's bound
}

// semMax is the largest count (Python's SEM_VALUE_MAX on Linux).
const semMax = 1<<31 - 1

// OpenSemaphore creates semaphore name with count value, or attaches to it
// (its current count is kept).
func OpenSemaphore(name string, value int, opts ...OpenOption) (*Semaphore, error) {
	if value < 0 || value > semMax {
		return nil, fmt.Errorf("mp: semaphore initial value %d out of range", value)
	}
	o, err := openObject(name, kindSemaphore, valueOff+8, newOpenConfig(opts), [3]byte{kindSemaphore, 0, 0},
		func(mem []byte) { (&object{mem: mem}).set32(semValue, uint32(value)) }, nil)
	if err != nil {
		return nil, err
	}
	return &Semaphore{o: o, max: semMax}, nil
}

// OpenBoundedSemaphore creates bounded semaphore name with count value, or
// attaches to it (its current count and bound are kept). The bound, the
// initial value, is stored in the segment (SPEC 10.9), so every process, Go
// or Python, refuses a Release that would take the count above it
// (ErrReleasedTooMany). A plain semaphore's segment is refused (ErrKind), and
// OpenSemaphore refuses a bounded one.
func OpenBoundedSemaphore(name string, value int, opts ...OpenOption) (*Semaphore, error) {
	if value < 0 || value > semMax {
		return nil, fmt.Errorf("mp: semaphore initial value %d out of range", value)
	}
	bound := uint32(value) // a creator's; check replaces it with the segment's
	o, err := openObject(name, kindBoundedSem, bsemSize, newOpenConfig(opts), [3]byte{kindBoundedSem, 0, 0},
		func(mem []byte) {
			w := &object{mem: mem}
			w.set32(semValue, uint32(value))
			w.set32(bsemBound, uint32(value))
		},
		func(mem []byte) error {
			b := (&object{mem: mem}).u32(bsemBound) // read once
			if b > semMax {
				return fmt.Errorf("%w: %s: bounded semaphore bound %d", ErrLayout, name, b)
			}
			bound = b
			return nil
		})
	if err != nil {
		return nil, err
	}
	return &Semaphore{o: o, max: bound}, nil
}

// MaxValue returns the largest count Release may reach: a bounded
// semaphore's bound, 2^31-1 for a plain one.
func (s *Semaphore) MaxValue() int { return int(s.max) }

// Name returns the semaphore's name.
func (s *Semaphore) Name() string { return s.o.name }

// count reads the count once and checks it (called with the internal lock).
func (s *Semaphore) count() (uint32, error) {
	v := s.o.u32(semValue)
	if v > s.max {
		return 0, fmt.Errorf("%w: %s: semaphore count %d", ErrLayout, s.o.name, v)
	}
	return v, nil
}

// Acquire decrements the count, waiting while it is 0 until ctx is done; ctx
// bounds the wait for the internal lock too.
func (s *Semaphore) Acquire(ctx context.Context) (err error) {
	o := s.o
	var h held
	defer o.guard(&err, &h, debug.SetPanicOnFault(true))
	asleep := false // counted in semWaiters by the last round
	for {
		if err := o.lock(ctx, &h); err != nil {
			if asleep && o.tryLock(&h) {
				uncount(o, semWaiters)
				o.unlock(&h)
			}
			return err
		}
		if asleep {
			uncount(o, semWaiters)
			asleep = false
		}
		v, err := s.count()
		if err != nil {
			o.unlock(&h)
			return err
		}
		if v > 0 {
			o.set32(semValue, v-1)
			o.unlock(&h)
			return nil
		}
		o.set32(semWaiters, o.u32(semWaiters)+1)
		asleep = true
		o.unlock(&h)
		if err := o.sleep(ctx, semValue, 0); err != nil {
			if o.tryLock(&h) {
				uncount(o, semWaiters)
				o.unlock(&h)
			}
			return err
		}
	}
}

// TryAcquire decrements the count if it is positive and reports whether it
// did. It waits for the internal lock as long as it takes.
func (s *Semaphore) TryAcquire() (ok bool, err error) {
	o := s.o
	var h held
	defer o.guard(&err, &h, debug.SetPanicOnFault(true))
	if err := o.lock(nil, &h); err != nil {
		return false, err
	}
	defer o.unlock(&h)
	v, err := s.count()
	if err != nil || v == 0 {
		return false, err
	}
	o.set32(semValue, v-1)
	return true, nil
}

// Release increments the count and wakes a waiter. It waits for the
// internal lock as long as it takes.
func (s *Semaphore) Release() (err error) {
	o := s.o
	var h held
	defer o.guard(&err, &h, debug.SetPanicOnFault(true))
	if err := o.lock(nil, &h); err != nil {
		return err
	}
	v, err := s.count()
	if err != nil {
		o.unlock(&h)
		return err
	}
	if v == s.max {
		o.unlock(&h)
		return fmt.Errorf("%w: %s", ErrReleasedTooMany, o.name)
	}
	o.set32(semValue, v+1)
	waiters := o.u32(semWaiters)
	o.unlock(&h)
	if waiters > 0 {
		o.wake(semValue, 1)
	}
	return nil
}

// Value returns the current count (Python's get_value()); 0 once the handle
// is closed or broken.
func (s *Semaphore) Value() (n int) {
	o := s.o
	if o.usable() != nil {
		return 0
	}
	defer o.guard(nil, nil, debug.SetPanicOnFault(true))
	return int(o.u32(semValue))
}

// Close releases this handle; the last one removes the semaphore unless kept.
func (s *Semaphore) Close() error { return s.o.Close() }

// Lock is a mutual-exclusion lock in a named segment; multiprocessing.Lock's
// counterpart, but robust: the kernel releases it when its holder dies, and
// the next Acquire succeeds (SPEC section 10.8). The holder is the handle:
// goroutines sharing a handle exclude each other, and any of them may
// Release.
type Lock struct {
	o  *object
	ul *userLock
}

// OpenLock creates or attaches lock name.
func OpenLock(name string, opts ...OpenOption) (*Lock, error) {
	o, err := openObject(name, kindLock, valueOff+8, newOpenConfig(opts), [3]byte{kindLock, 0, 0}, nil, nil)
	if err != nil {
		return nil, err
	}
	return &Lock{o: o, ul: newUserLock(o)}, nil
}

// Name returns the lock's name.
func (l *Lock) Name() string { return l.o.name }

// Acquire takes the lock, waiting until ctx is done.
func (l *Lock) Acquire(ctx context.Context) error { return l.ul.acquire(ctx) }

// TryAcquire takes the lock if it is free and reports whether it did.
func (l *Lock) TryAcquire() (bool, error) { return l.ul.tryAcquire() }

// Release releases the lock; ErrNotHeld if this handle does not hold it.
func (l *Lock) Release() error { return l.ul.release() }

// Close releases this handle (and the lock, if it holds it).
func (l *Lock) Close() error { return l.o.Close() }

// RLock is a recursive Lock: the handle that holds it may acquire it again and
// must release it as many times; multiprocessing.RLock's counterpart. The
// owner is the handle, not a goroutine: goroutines that need separate
// ownership open separate handles.
type RLock struct {
	o     *object
	ul    *userLock
	mu    sync.Mutex
	count int
}

// OpenRLock creates or attaches recursive lock name.
func OpenRLock(name string, opts ...OpenOption) (*RLock, error) {
	o, err := openObject(name, kindRLock, valueOff+8, newOpenConfig(opts), [3]byte{kindRLock, 0, 0}, nil, nil)
	if err != nil {
		return nil, err
	}
	return &RLock{o: o, ul: newUserLock(o)}, nil
}

// Name returns the lock's name.
func (l *RLock) Name() string { return l.o.name }

// Acquire takes the lock, or counts one more level if this handle holds it.
func (l *RLock) Acquire(ctx context.Context) error {
	l.mu.Lock()
	if l.count > 0 {
		l.count++
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()
	if err := l.ul.acquire(ctx); err != nil {
		return err
	}
	l.mu.Lock()
	l.count = 1
	l.mu.Unlock()
	return nil
}

// Release drops one level; the last one releases the lock.
func (l *RLock) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.count == 0 {
		return ErrNotHeld
	}
	l.count--
	if l.count == 0 {
		return l.ul.release()
	}
	return nil
}

// Close releases this handle (and the lock, if it holds it).
func (l *RLock) Close() error { return l.o.Close() }
