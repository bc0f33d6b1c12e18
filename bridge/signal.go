package bridge

import (
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// Signals runs handlers for signals, as Python's signal.signal does, and
// ties gobridge's resources to shutdown: on SIGTERM or SIGINT that has no
// handler of its own, it closes every registered Closer (Listeners, whose
// Close removes their socket file or FIFO; shared-memory segments; Conns),
// newest first, and then dies of the same signal, so that the parent sees
// the usual status (-15 or -2 in Python's exitcode). A handler registered for
// SIGTERM or SIGINT replaces that default; it may call Shutdown itself.
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
				s.Shutdown()
				dieOf(sig.(syscall.Signal))
			}
		}
	}
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
