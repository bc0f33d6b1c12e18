package bridge

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func noDelay(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY) })
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

func TestTCPPortZeroAndNoDelay(t *testing.T) {
	for _, addr := range []string{"tcp:127.0.0.1:0", "tcp:localhost:0", "tcp:[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			l, err := Listen(addr)
			if strings.Contains(addr, "::1") && err != nil && errors.Is(err, syscall.EADDRNOTAVAIL) {
				t.Skip("no IPv6 loopback here")
			}
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			_, rest, _ := ParseAddress(l.Addr())
			host, port, err := net.SplitHostPort(rest)
			if err != nil || port == "0" || net.ParseIP(host) == nil || !net.ParseIP(host).IsLoopback() {
				t.Fatalf("Addr() = %q", l.Addr())
			}
			if p, _ := strconv.Atoi(port); p <= 0 {
				t.Fatalf("Addr() = %q", l.Addr())
			}
			ch := make(chan net.Conn, 1)
			go func() {
				c, err := l.AcceptRaw(context.Background())
				if err != nil {
					t.Error(err)
				}
				ch <- c
			}()
			d, err := DialRaw(context.Background(), l.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			a := <-ch
			defer a.Close()
			if noDelay(t, d) == 0 || noDelay(t, a) == 0 {
				t.Fatal("TCP_NODELAY not set")
			}
		})
	}
}

func TestTCPSecureByDefault(t *testing.T) {
	for _, addr := range []string{"tcp:0.0.0.0:0", "tcp:[::]:0"} {
		if _, err := Listen(addr); !errors.Is(err, ErrInsecureTCP) {
			t.Errorf("Listen(%q) without a key: %v", addr, err)
		}
	}
	for _, opt := range []ConnOption{WithAuthkey([]byte("k")), WithInsecureTCP()} {
		l, err := Listen("tcp:0.0.0.0:0", opt)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(l.Addr(), "tcp:0.0.0.0:") {
			t.Errorf("Addr() = %q", l.Addr())
		}
		l.Close()
	}
}

func TestTCPErrors(t *testing.T) {
	l, err := Listen("tcp:127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr()
	if _, err := Listen(addr); !errors.Is(err, ErrAddrInUse) || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second Listen(%q): %v", addr, err)
	}
	l.Close()
	if _, err := Dial(context.Background(), addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial to a closed listener: %v", err)
	}
	if _, err := Listen("tcp:no-such-host.invalid:0"); err == nil {
		t.Error("Listen on an unresolvable host worked")
	}
}
