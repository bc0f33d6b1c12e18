package bridge

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

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
