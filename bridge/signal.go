package bridge

import (
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Signals runs handlers for signals, as Python's signal.signal does, and
// ties gobridge's resources to shutdown. On SIGTERM or SIGINT that has no
// handler of its own it ends the process in three steps (SPEC section 6.8):
//
//  1. From the moment the signal is taken, a Listener's Accept or AcceptRaw
//     that fails, and a Conn call that fails with ErrClosed, no longer
//     returns to its caller: that goroutine waits for the process to die.
//  2. Every registered Closer is closed, newest first (a Listener's Close
//     removes its socket file, FIFO or shm: name; segments are closed; a
//     Conn flushes its batched frames), within ShutdownGrace in all.
//  3. The process dies of the same signal, so that its parent sees the
//     usual status (-15 or -2 as Python's exitcode, 143 or 130 in a shell;
//     128 plus the signal number should the signal be blocked or ignored).
//
// Step 1 makes the loop a program writes without thinking of signals
// correct with no code of its own:
//
//	s.CloseOnShutdown(l)
//	for {
//		c, err := l.Accept(ctx)
//		if err != nil {
//			return // main returns
//		}
//		go serve(c)
//	}
//
// Shutdown's Close wakes that Accept, but the error is held back, so main
// cannot return (and the process exit with status 0, its names left behind)
// before every name is removed and the signal ends the process. Closers that
// are not gobridge's (a net.Listener, say) are closed in the same order, but
// a goroutine that their Close wakes runs on: if it makes main return, the
// process exits 0.
//
// A handler registered for SIGTERM or SIGINT replaces that default; it may
// call Shutdown itself. Shutdown called that way, or by any other code,
// closes the Closers and does nothing more: blocked calls return ErrClosed.
//
// Handlers run one at a time on a goroutine of the Signals, never
// concurrently with each other. Call Stop to restore the default dispositions.
type Signals struct {
	ch       chan os.Signal
	stopped  chan struct{}
	finished chan struct{}

	mu       sync.Mutex
	handlers map[os.Signal][]func(os.Signal)
	closers  map[int]io.Closer
	next     int

	shutdownOnce sync.Once
	shutdownDone chan struct{}
	stopOnce     sync.Once
}

// NewSignals starts watching SIGTERM and SIGINT (and later whatever Handle
// adds).
func NewSignals() *Signals {
	s := &Signals{
		ch:           make(chan os.Signal, 8),
		stopped:      make(chan struct{}),
		finished:     make(chan struct{}),
		handlers:     map[os.Signal][]func(os.Signal){},
		closers:      map[int]io.Closer{},
		shutdownDone: make(chan struct{}),
	}
	signal.Notify(s.ch, syscall.SIGTERM, syscall.SIGINT)
	go s.loop()
	return s
}

// Handle runs fn each time sig arrives (SIGUSR1, SIGUSR2, SIGTERM, ...).
func (s *Signals) Handle(sig os.Signal, fn func(os.Signal)) {
	s.mu.Lock()
	s.handlers[sig] = append(s.handlers[sig], fn)
	s.mu.Unlock()
	signal.Notify(s.ch, sig)
}

// CloseOnShutdown registers c to be closed by Shutdown. The returned func
// unregisters it (call it when you close c yourself).
func (s *Signals) CloseOnShutdown(c io.Closer) (unregister func()) {
	s.mu.Lock()
	id := s.next
	s.next++
	s.closers[id] = c
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.closers, id)
		s.mu.Unlock()
	}
}

// Shutdown closes the registered Closers, newest first, once; later calls
// wait for the first to finish.
func (s *Signals) Shutdown() {
	s.shutdownOnce.Do(func() {
		s.mu.Lock()
		cs := make([]io.Closer, 0, len(s.closers))
		for i := s.next - 1; i >= 0; i-- {
			if c, ok := s.closers[i]; ok {
				cs = append(cs, c)
			}
		}
		s.closers = map[int]io.Closer{}
		s.mu.Unlock()
		for _, c := range cs {
			c.Close()
		}
		close(s.shutdownDone)
	})
	<-s.shutdownDone
}

// ShutdownDone is closed once Shutdown has closed everything.
func (s *Signals) ShutdownDone() <-chan struct{} { return s.shutdownDone }

// Stop stops handling signals (their default dispositions return) and waits
// for a running handler to finish. It does not run Shutdown.
func (s *Signals) Stop() {
	s.stopOnce.Do(func() {
		signal.Stop(s.ch)
		close(s.stopped)
		<-s.finished
	})
}

func (s *Signals) loop() {
	defer close(s.finished)
	for {
		select {
		case <-s.stopped:
			return
		case sig := <-s.ch:
			s.mu.Lock()
			hs := append([]func(os.Signal){}, s.handlers[sig]...)
			s.mu.Unlock()
			for _, h := range hs {
				h(sig)
			}
			if len(hs) == 0 && (sig == syscall.SIGTERM || sig == syscall.SIGINT) {
				s.end(sig.(syscall.Signal))
			}
		}
	}
}

// ShutdownGrace bounds how long the default SIGTERM or SIGINT waits for the
// registered Closers (a Conn flushing its batch to a peer that does not
// read, say) before the process dies of the signal anyway.
const ShutdownGrace = 5 * time.Second

// ending is set once a Signals has begun to end the process for a signal.
// It is process-wide, as signal dispositions are, and never cleared: the
// process dies right after.
var ending atomic.Bool

// end is the default for SIGTERM and SIGINT: hold back the errors that
// closing would hand to the program's own loops, close everything
// registered, and die of sig.
func (s *Signals) end(sig syscall.Signal) {
	ending.Store(true)
	done := make(chan struct{})
	go func() {
		s.Shutdown()
		close(done)
	}()
	t := time.NewTimer(ShutdownGrace)
	select {
	case <-done:
	case <-t.C:
	}
	dieOf(sig)
}

// waitIfEnding returns err, unless err is not nil and a Signals is ending
// the process: then the calling goroutine waits for the process to die, so
// that a loop that stops at the error (and a main that returns after it)
// cannot end the process with status 0 before the signal does. Only error
// paths call it: the cost is one atomic load where an error is returned.
func waitIfEnding(err error) error {
	if err != nil && ending.Load() {
		for {
			// A sleep, not a channel receive: with every goroutine parked
			// here the runtime would report a deadlock and exit 2.
			time.Sleep(time.Hour)
		}
	}
	return err
}

// dieOf ends the process with sig's default action, so that its parent sees
// it killed by sig. Should the signal be blocked or ignored somewhere, it
// exits with 128+sig, the shell's code for it.
func dieOf(sig syscall.Signal) {
	signal.Reset(sig)
	syscall.Kill(os.Getpid(), sig)
	time.Sleep(time.Second) // a sleeping goroutine, not select{}: the runtime would call that a deadlock
	os.Exit(128 + int(sig))
}
