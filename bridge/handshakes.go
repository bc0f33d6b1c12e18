package bridge

// Pending handshakes: the part of a listener's accept that must not wait on
// one client while others queue (SPEC 6.6, 11.3). The fifo: and shm:
// listeners use it; it knows nothing of either transport.

import (
	"context"
	"sync"
	"time"
)

// A handshakeResult is one finished handshake: its key, and its value or
// the error that ended it.
type handshakeResult[K comparable, T any] struct {
	Key   K
	Value T
	Err   error
}

// pendingHandshakes runs handshakes concurrently, each in its own goroutine
// under its own deadline, and hands them out in the order they finish.
//
// Start one with start, receive finished ones from finished (a receiver owns
// the value it gets), and stop with close, which ends the handshakes still
// running (their ctx is cancelled), waits for their goroutines, and passes
// the values of those that finished but were never received to discard.
type pendingHandshakes[K comparable, T any] struct {
	timeout time.Duration
	limit   int
	discard func(T)

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	done   chan handshakeResult[K, T]
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[K]struct{}
}

// newPendingHandshakes returns an empty set that runs at most limit
// handshakes at a time, each for at most timeout.
func newPendingHandshakes[K comparable, T any](limit int, timeout time.Duration, discard func(T)) *pendingHandshakes[K, T] {
	ctx, cancel := context.WithCancel(context.Background())
	return &pendingHandshakes[K, T]{
		timeout: timeout,
		limit:   limit,
		discard: discard,
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan handshakeResult[K, T]),
		running: make(map[K]struct{}),
	}
}

// start runs hs in a goroutine of its own, with a ctx that ends when the
// handshake timeout passes or close is called; hs must return soon after
// ctx ends. start reports false, and runs nothing, when a handshake with
// the same key is still running, limit handshakes are, or close was called.
func (p *pendingHandshakes[K, T]) start(key K, hs func(ctx context.Context) (T, error)) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, dup := p.running[key]; dup || len(p.running) >= p.limit || p.ctx.Err() != nil {
		return false
	}
	p.running[key] = struct{}{}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(p.ctx, p.timeout)
		v, err := hs(ctx)
		cancel()
		p.mu.Lock()
		delete(p.running, key)
		p.mu.Unlock()
		select {
		case p.done <- handshakeResult[K, T]{Key: key, Value: v, Err: err}:
		case <-p.ctx.Done():
			if err == nil && p.discard != nil {
				p.discard(v)
			}
		}
	}()
	return true
}

// full reports whether limit handshakes are running, so that start would
// refuse another.
func (p *pendingHandshakes[K, T]) full() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.running) >= p.limit
}

// finished delivers each handshake once it has finished, successful or not,
// first finished first.
func (p *pendingHandshakes[K, T]) finished() <-chan handshakeResult[K, T] { return p.done }

// close ends the handshakes still running and waits for their goroutines.
// Idempotent.
func (p *pendingHandshakes[K, T]) close() {
	p.mu.Lock() // a start either runs before, and is waited for, or sees ctx ended
	p.cancel()
	p.mu.Unlock()
	p.wg.Wait()
}
