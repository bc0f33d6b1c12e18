package mp

import (
	"context"
	"errors"
	"testing"
	"time"
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
