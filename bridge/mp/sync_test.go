package mp

import (
	"errors"
	"testing"
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
