package bridge

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// The first handshake to finish is handed out first, whichever started
// first; a key is not run twice at once; the limit holds; each handshake's
// ctx ends at its deadline.
func TestPendingHandshakesFirstFinishedFirst(t *testing.T) {
	p := newPendingHandshakes[string, int](2, 200*time.Millisecond, nil)
	defer p.close()
	slow := func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	release := make(chan struct{})
	fast := func(context.Context) (int, error) {
		<-release
		return 7, nil
	}
	if !p.start("slow", slow) || !p.start("fast", fast) {
		t.Fatal("start refused")
	}
	if p.start("third", fast) || !p.full() {
		t.Fatal("started over the limit")
	}
	close(release)
	start := time.Now()
	r := <-p.finished()
	if r.Key != "fast" || r.Value != 7 || r.Err != nil || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("first finished: %+v after %v", r, time.Since(start))
	}
	if p.start("slow", slow) {
		t.Fatal("the same key started twice")
	}
	r = <-p.finished()
	if r.Key != "slow" || !errors.Is(r.Err, context.DeadlineExceeded) {
		t.Fatalf("second: %+v", r)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the deadline of 200ms ended the handshake after %v", d)
	}
	if p.full() || !p.start("slow", slow) {
		t.Fatal("a finished key cannot start again")
	}
}

// close ends the running handshakes, waits for them, and discards the values
// of those that finished but were never received.
func TestPendingHandshakesClose(t *testing.T) {
	var discarded, running atomic.Int32
	p := newPendingHandshakes[int, int](10, time.Minute, func(int) { discarded.Add(1) })
	for i := range 3 {
		p.start(i, func(ctx context.Context) (int, error) {
			running.Add(1)
			defer running.Add(-1)
			<-ctx.Done()
			return 0, ctx.Err()
		})
	}
	done := make(chan struct{})
	for i := 3; i < 5; i++ {
		p.start(i, func(context.Context) (int, error) { defer func() { done <- struct{}{} }(); return i, nil })
	}
	<-done
	<-done
	start := time.Now()
	p.close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("close took %v", d)
	}
	if n := running.Load(); n != 0 {
		t.Fatalf("%d handshakes still running after close", n)
	}
	if n := discarded.Load(); n != 2 {
		t.Fatalf("discarded %d values, want 2", n)
	}
	if p.start(9, func(context.Context) (int, error) { return 0, nil }) {
		t.Fatal("started after close")
	}
	p.close() // idempotent
}
