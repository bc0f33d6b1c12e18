package bridge

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobridge/gobridge/internal/testenv"
)

// signalHelper (a child of the tests below) reports SIGUSR1 and SIGUSR2 on
// c, listens on a unix socket and a FIFO in the directory it is sent, and
// leaves SIGTERM/SIGINT to the shutdown default.
func signalHelper(c *Conn) int {
	s := NewSignals()
	s.Handle(syscall.SIGUSR1, func(sig os.Signal) { c.Send("usr1") })
	s.Handle(syscall.SIGUSR2, func(sig os.Signal) { c.Send("usr2") })
	var dir string
	if c.Recv(&dir) != nil {
		return 6
	}
	for _, a := range []string{"unix:" + filepath.Join(dir, "s.sock"), "fifo:" + filepath.Join(dir, "f")} {
		l, err := Listen(a)
		if err != nil {
			return 7
		}
		s.CloseOnShutdown(l)
	}
	c.Send("listening")
	select {}
}

func TestSignalsHandlersAndShutdown(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		p := startHelper(t, "signals")
		ctx := joinCtx(t)
		dir := testenv.ShortDir(t)
		c := p.Conn()
		c.Send(dir)
		var s string
		if err := c.RecvContext(ctx, &s); err != nil || s != "listening" {
			t.Fatalf("%q %v", s, err)
		}
		for _, tc := range []struct {
			sig  syscall.Signal
			want string
		}{{syscall.SIGUSR1, "usr1"}, {syscall.SIGUSR2, "usr2"}, {syscall.SIGUSR1, "usr1"}} {
			p.Signal(tc.sig)
			if err := c.RecvContext(ctx, &s); err != nil || s != tc.want {
				t.Fatalf("after %v: %q %v", tc.sig, s, err)
			}
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 2 {
			t.Fatalf("expected a socket and a FIFO, found %d entries", len(ents))
		}
		p.Signal(sig)
		var pe *ProcessExitError
		if err := p.Join(ctx); !errors.As(err, &pe) || pe.Code != -int(sig) {
			t.Fatalf("join after %v: %v", sig, err)
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			t.Errorf("left after %v: %s", sig, e.Name())
		}
	}
}

func TestSignalsShutdownOnce(t *testing.T) {
	s := NewSignals()
	defer s.Stop()
	n := 0
	s.CloseOnShutdown(closerFunc(func() error { n++; return nil }))
	un := s.CloseOnShutdown(closerFunc(func() error { t.Error("unregistered closer ran"); return nil }))
	un()
	s.Shutdown()
	s.Shutdown()
	select {
	case <-s.ShutdownDone():
	case <-context.Background().Done():
	}
	if n != 1 {
		t.Fatalf("closed %d times", n)
	}
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// naturalLoopHelper (a child of TestSignalsNaturalLoops) listens on the
// address it is sent, registers the Listener with CloseOnShutdown and runs
// the loop a program writes without thinking of signals: it returns (so the
// process would exit 0) as soon as a call fails, neither deferring Close nor
// asking why. Mode "accept" loops on Accept, serving each connection in a
// goroutine; mode "recv" accepts one connection, registers it too, and loops
// on its Recv in the main goroutine.
func naturalLoopHelper(c *Conn) int {
	s := NewSignals()
	var addr, mode string
	if c.Recv(&addr) != nil || c.Recv(&mode) != nil {
		return 6
	}
	l, err := Listen(addr)
	if err != nil {
		return 7
	}
	s.CloseOnShutdown(l)
	if mode == "stuck" { // a Closer that never returns
		s.CloseOnShutdown(closerFunc(func() error { time.Sleep(time.Hour); return nil }))
	}
	c.Send("listening")
	echo := func(conn *Conn) {
		var v any
		for conn.Recv(&v) == nil {
			conn.Send(v)
		}
	}
	if mode == "recv" {
		conn, err := l.Accept(context.Background())
		if err != nil {
			return 0
		}
		s.CloseOnShutdown(conn)
		echo(conn)
		return 0
	}
	for {
		conn, err := l.Accept(context.Background())
		if err != nil {
			return 0
		}
		go echo(conn)
	}
}

// SIGTERM to a process running a natural loop over each transport: every run
// dies of SIGTERM (never exits 0 because Accept or Recv returned first), and
// the socket file, FIFO or /dev/shm name is gone. A third of the runs wait
// in Accept, a third in Accept with a client being served, a third in a
// registered Conn's Recv.
func TestSignalsNaturalLoops(t *testing.T) {
	const runs = 30
	for _, scheme := range []string{SchemeUnix, SchemeFIFO, SchemeShm} {
		t.Run(scheme, func(t *testing.T) {
			for i := range runs {
				dir := testenv.ShortDir(t)
				addr := scheme + ":" + filepath.Join(dir, "l")
				var shmName string
				if scheme == SchemeShm {
					shmName = testenv.Name("sig")
					addr = scheme + ":" + shmName
				}
				mode := "accept"
				if i%3 == 2 {
					mode = "recv"
				}
				p := startHelper(t, "natural-loop")
				ctx := joinCtx(t)
				c := p.Conn()
				c.Send(addr)
				c.Send(mode)
				var s string
				if err := c.RecvContext(ctx, &s); err != nil || s != "listening" {
					t.Fatalf("run %d: %q %v", i, s, err)
				}
				var cl *Conn
				if i%3 != 0 {
					var err error
					cl, err = Dial(ctx, addr)
					if err != nil {
						t.Fatalf("run %d: dial: %v", i, err)
					}
					var v any
					if err := cl.Send("ping"); err != nil || cl.RecvContext(ctx, &v) != nil {
						t.Fatalf("run %d (%s): echo: %v", i, mode, err)
					}
				}
				p.Terminate()
				var pe *ProcessExitError
				if err := p.Join(ctx); !errors.As(err, &pe) || pe.Code != -int(syscall.SIGTERM) {
					t.Errorf("run %d (%s): join after SIGTERM: %v", i, mode, err)
				}
				if cl != nil { // the last handle of an shm: connection removes it
					cl.Close()
				}
				ents, _ := os.ReadDir(dir)
				for _, e := range ents {
					t.Errorf("run %d (%s): left behind: %s", i, mode, e.Name())
				}
				if shmName != "" {
					ents, _ := os.ReadDir("/dev/shm")
					for _, e := range ents {
						if n := e.Name(); n == shmName || strings.HasPrefix(n, shmName+".") {
							t.Errorf("run %d (%s): left behind: /dev/shm/%s", i, mode, n)
							os.Remove("/dev/shm/" + n)
						}
					}
				}
			}
		})
	}
}

// A registered Closer that never returns does not keep the process alive:
// after ShutdownGrace it dies of the signal all the same.
func TestSignalsShutdownGrace(t *testing.T) {
	t.Parallel()
	p := startHelper(t, "natural-loop")
	ctx := joinCtx(t)
	c := p.Conn()
	c.Send("unix:" + filepath.Join(testenv.ShortDir(t), "l"))
	c.Send("stuck")
	var s string
	if err := c.RecvContext(ctx, &s); err != nil || s != "listening" {
		t.Fatalf("%q %v", s, err)
	}
	start := time.Now()
	p.Terminate()
	var pe *ProcessExitError
	if err := p.Join(ctx); !errors.As(err, &pe) || pe.Code != -int(syscall.SIGTERM) {
		t.Fatalf("join after SIGTERM: %v", err)
	}
	if d := time.Since(start); d < ShutdownGrace-time.Second || d > ShutdownGrace+3*time.Second {
		t.Fatalf("died %v after SIGTERM; the grace is %v", d, ShutdownGrace)
	}
}
