package mp

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/gobridge/gobridge/internal/shmseg"
)

// TestBoundedSemaphore: Release above the initial value fails with
// ErrReleasedTooMany and leaves the count; the bound is the segment's, not
// an attacher's; plain and bounded semaphores refuse each other's names.
func TestBoundedSemaphore(t *testing.T) {
	ctx := ctxT(t)
	name := tag(t)
	s, err := OpenBoundedSemaphore(name, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Release(); !errors.Is(err, ErrReleasedTooMany) {
		t.Fatalf("release at the bound: %v", err)
	}
	if s.Value() != 2 || s.MaxValue() != 2 {
		t.Fatalf("value %d, max %d", s.Value(), s.MaxValue())
	}
	other, err := OpenBoundedSemaphore(name, 9) // attaches: 9 is ignored
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if other.MaxValue() != 2 {
		t.Fatalf("attacher's bound %d", other.MaxValue())
	}
	if err := s.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.Release(); err != nil {
		t.Fatal(err)
	}
	if err := other.Release(); !errors.Is(err, ErrReleasedTooMany) {
		t.Fatalf("attacher's release at the bound: %v", err)
	}
	if _, err := OpenSemaphore(name, 1); !errors.Is(err, ErrKind) {
		t.Fatalf("OpenSemaphore of a bounded one: %v", err)
	}
	plain := tag(t)
	p, err := OpenSemaphore(plain, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := OpenBoundedSemaphore(plain, 1); !errors.Is(err, ErrKind) {
		t.Fatalf("OpenBoundedSemaphore of a plain one: %v", err)
	}
	if p.MaxValue() != semMax {
		t.Fatalf("plain max %d", p.MaxValue())
	}

	z, err := OpenBoundedSemaphore(tag(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	if got, _ := z.TryAcquire(); got {
		t.Fatal("acquired a BoundedSemaphore(0)")
	}
	if err := z.Release(); !errors.Is(err, ErrReleasedTooMany) {
		t.Fatalf("release of BoundedSemaphore(0): %v", err)
	}
}

// TestBoundedSemaphoreHostile: a stored bound above 2^31-1 is refused on
// attach, a count above the bound is ErrLayout on every operation.
func TestBoundedSemaphoreHostile(t *testing.T) {
	name := tag(t)
	s, err := OpenBoundedSemaphore(name, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.o.set32(semValue, 3)
	if _, err := s.TryAcquire(); !errors.Is(err, ErrLayout) {
		t.Fatalf("count above the bound: %v", err)
	}
	if err := s.Release(); !errors.Is(err, ErrLayout) {
		t.Fatalf("count above the bound: %v", err)
	}
	s.o.set32(semValue, 2)
	s.o.set32(bsemBound, 1<<31)
	if _, err := OpenBoundedSemaphore(name, 1); !errors.Is(err, ErrLayout) {
		t.Fatalf("bound 2^31: %v", err)
	}
}

// TestEvent: Set wakes a waiter of another handle, Clear, a Wait that times
// out, a set-then-clear pulse that a waiter does not miss, and the state
// word's count of sets.
func TestEvent(t *testing.T) {
	ctx := ctxT(t)
	name := tag(t)
	e, err := OpenEvent(name)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	other, err := OpenEvent(name, WithAttachOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if e.IsSet() {
		t.Fatal("a new event is set")
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := other.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait on a clear event: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- other.Wait(ctx) }()
	if err := e.Set(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !other.IsSet() || e.o.u32(evState) != 3 {
		t.Fatalf("set: %v %#x", other.IsSet(), e.o.u32(evState))
	}
	if err := e.Clear(); err != nil || e.IsSet() || e.o.u32(evState) != 2 {
		t.Fatalf("clear: %v %#x", err, e.o.u32(evState))
	}

	go func() { done <- other.Wait(ctx) }()
	for pulsing := true; pulsing; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("a pulse was missed: %v", err)
			}
			pulsing = false
		default:
			e.Set()
			e.Clear()
		}
	}

	e.o.set32(evState, 0xFFFFFFFE) // the count wraps
	e.Set()
	if e.o.u32(evState) != 1 {
		t.Fatalf("wrapped: %#x", e.o.u32(evState))
	}
	if _, err := OpenSemaphore(name, 1); !errors.Is(err, ErrKind) {
		t.Fatalf("OpenSemaphore of an event: %v", err)
	}
	e.Close()
	if err := e.Wait(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed: %v", err)
	}
}

func cvWaitingSlots(c *Condition) int {
	n := 0
	for i := 0; i < cvNSlots; i++ {
		if c.o.u32(cvSlots+i*cvSlot) == cvWaiting {
			n++
		}
	}
	return n
}

// TestCondition: Wait without the lock, a Wait that times out, Notify(1)
// wakes the oldest waiter of another handle, NotifyAll the rest, a given
// Lock, a hostile slot state.
func TestCondition(t *testing.T) {
	ctx := ctxT(t)
	name := tag(t)
	c, err := OpenCondition(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Wait(ctx); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("wait without the lock: %v", err)
	}
	if err := c.Notify(1); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("notify without the lock: %v", err)
	}
	c.Acquire(ctx)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := c.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait: %v", err)
	}
	if ok, _ := c.own.tryAcquire(); ok {
		t.Fatal("Wait returned without the lock")
	}
	c.Release()

	const n = 3
	done := make(chan int, n)
	for k := 0; k < n; k++ {
		w, err := OpenCondition(name, nil, WithAttachOnly())
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		go func(k int) {
			w.Acquire(ctx)
			if err := w.Wait(ctx); err != nil {
				t.Error(err)
			}
			w.Release()
			done <- k
		}(k)
		for cvWaitingSlots(c) != k+1 {
			time.Sleep(time.Millisecond)
		}
	}
	c.Acquire(ctx)
	c.Notify(1)
	c.Release()
	if k := <-done; k != 0 {
		t.Fatalf("notify woke waiter %d, not the oldest", k)
	}
	c.Acquire(ctx)
	c.NotifyAll()
	c.Release()
	<-done
	<-done

	lk, err := OpenLock(tag(t))
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	lc, err := OpenCondition(tag(t), lk)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	lc.Acquire(ctx)
	if ok, _ := lk.TryAcquire(); ok {
		t.Fatal("the condition does not hold its given lock")
	}
	lc.Release()

	c.o.set32(cvSlots+5*cvSlot, 7)
	c.Acquire(ctx)
	if err := c.Notify(1); !errors.Is(err, ErrLayout) {
		t.Fatalf("hostile slot: %v", err)
	}
	c.o.set32(cvSlots+5*cvSlot, cvWaiting) // nobody's: Notify frees it
	if err := c.Notify(1); err != nil || c.o.u32(cvSlots+5*cvSlot) != cvFree {
		t.Fatalf("dead slot: %v %d", err, c.o.u32(cvSlots+5*cvSlot))
	}
	c.Release()
}

// TestBarrier: three handles trip it three times with distinct indexes and
// one action per trip; a Wait whose context ends breaks it; Reset; Abort;
// a failing action; hostile fields.
func TestBarrier(t *testing.T) {
	ctx := ctxT(t)
	name := tag(t)
	trips := 0
	b, err := OpenBarrier(name, 3, func() error { trips++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var others [2]*Barrier
	for k := range others {
		if others[k], err = OpenBarrier(name, 99, nil); err != nil {
			t.Fatal(err)
		}
		defer others[k].Close()
	}
	if others[0].Parties() != 3 {
		t.Fatalf("attacher's parties %d", others[0].Parties())
	}
	for round := 0; round < 3; round++ {
		idx := make(chan int, 2)
		for _, w := range others {
			go func(w *Barrier) {
				i, err := w.Wait(ctx)
				if err != nil {
					t.Error(err)
				}
				idx <- i
			}(w)
		}
		for b.NWaiting() != 2 {
			time.Sleep(time.Millisecond)
		}
		i, err := b.Wait(ctx)
		if err != nil || i != 2 {
			t.Fatalf("last party: %d %v", i, err)
		}
		if got := <-idx + <-idx; got != 1 {
			t.Fatalf("indexes %d", got)
		}
	}
	if trips != 3 {
		t.Fatalf("%d actions", trips)
	}

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := b.Wait(short); !errors.Is(err, ErrBrokenBarrier) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed out wait: %v", err)
	}
	if !b.Broken() {
		t.Fatal("not broken")
	}
	if _, err := others[0].Wait(ctx); !errors.Is(err, ErrBrokenBarrier) {
		t.Fatalf("wait on a broken barrier: %v", err)
	}
	b.Reset()
	done := make(chan error, 1)
	go func() { _, err := others[0].Wait(ctx); done <- err }()
	for b.NWaiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	b.Abort()
	if err := <-done; !errors.Is(err, ErrBrokenBarrier) {
		t.Fatalf("abort: %v", err)
	}
	b.Reset()

	boom := errors.New("boom")
	f, err := OpenBarrier(name, 3, func() error { return boom })
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	go func() { _, err := others[0].Wait(ctx); done <- err }()
	go func() { _, err := others[1].Wait(ctx); done <- err }()
	for b.NWaiting() != 2 {
		time.Sleep(time.Millisecond)
	}
	if _, err := f.Wait(ctx); !errors.Is(err, boom) {
		t.Fatalf("failing action: %v", err)
	}
	for k := 0; k < 2; k++ {
		if err := <-done; !errors.Is(err, ErrBrokenBarrier) {
			t.Fatalf("after a failing action: %v", err)
		}
	}
	b.Reset()

	b.o.set32(barCount, 9)
	if _, err := b.Wait(ctx); !errors.Is(err, ErrLayout) {
		t.Fatalf("count 9: %v", err)
	}
	b.o.set32(barCount, 0)
	b.o.set32(barParties, 0)
	if _, err := OpenBarrier(name, 2, nil); !errors.Is(err, ErrLayout) {
		t.Fatalf("0 parties: %v", err)
	}
	if _, err := OpenBarrier(tag(t), 0, nil); err == nil {
		t.Fatal("0 parties accepted")
	}
}

// TestSyncTruncatedIsErrFault: another process truncates the segment of a
// bounded semaphore, an event (under a sleeping Wait), a condition and a
// barrier (under a sleeping Wait): every call fails with ErrFault, none
// dies of SIGBUS or hangs.
func TestSyncTruncatedIsErrFault(t *testing.T) {
	ctx := ctxT(t)
	bs, err := OpenBoundedSemaphore(tag(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	ev, err := OpenEvent(tag(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	cv, err := OpenCondition(tag(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cv.Close()
	bar, err := OpenBarrier(tag(t), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bar.Close()
	evDone, barDone := make(chan error, 1), make(chan error, 1)
	go func() { evDone <- ev.Wait(ctx) }()
	go func() { _, err := bar.Wait(ctx); barDone <- err }()
	for bar.NWaiting() != 1 {
		time.Sleep(time.Millisecond)
	}
	cv.Acquire(ctx)
	for _, n := range []string{bs.Name(), ev.Name(), cv.Name(), bar.Name()} {
		if err := os.Truncate(shmseg.Path(n), 0); err != nil {
			t.Fatal(err)
		}
	}
	for what, err := range map[string]error{
		"event Wait": <-evDone, "barrier Wait": <-barDone,
		"Release": bs.Release(), "Set": ev.Set(), "Clear": ev.Clear(), "Notify": cv.Notify(1),
		"Abort": bar.Abort(), "Reset": bar.Reset(),
	} {
		if !errors.Is(err, ErrFault) {
			t.Errorf("%s: %v, want ErrFault", what, err)
		}
	}
	if ev.IsSet() || bar.Broken() || bar.NWaiting() != 0 {
		t.Error("snapshots of a broken handle")
	}
}
