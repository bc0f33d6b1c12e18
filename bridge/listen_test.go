package bridge

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gobridge/gobridge/internal/testenv"
	"golang.org/x/net/nettest"
)

func TestListenerFileLifecycle(t *testing.T) {
	path := filepath.Join(testenv.ShortDir(t), "l.sock")
	l, err := Listen("unix:" + path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(path)
	if err != nil || st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket file: %v, %v", st.Mode(), err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("bind left a private directory behind: %v", entries)
	}
	if _, err := Listen(path); !errors.Is(err, ErrAddrInUse) || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second Listen on a live socket: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("Close left the socket file: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.Accept(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(testenv.ShortDir(t), "stale.sock")
	// A socket file whose server is gone, as a SIGKILLed process leaves it.
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	l, err := Listen(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	defer l.Close()
	c, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestListenRefusesNonSockets(t *testing.T) {
	dir := testenv.ShortDir(t)
	regular := filepath.Join(dir, "file")
	os.WriteFile(regular, []byte("precious"), 0o644)
	link := filepath.Join(dir, "link")
	os.Symlink(filepath.Join(dir, "elsewhere"), link)
	for _, p := range []string{regular, link, dir} {
		if _, err := Listen(p); !errors.Is(err, ErrAddrInUse) {
			t.Errorf("Listen(%s): %v, want ErrAddrInUse", p, err)
		}
	}
	if b, _ := os.ReadFile(regular); string(b) != "precious" {
		t.Fatal("Listen touched a regular file")
	}
	if _, err := os.Lstat(filepath.Join(dir, "elsewhere")); !os.IsNotExist(err) {
		t.Fatal("Listen followed a symlink")
	}
}

func TestCloseRemovesOnlyItsOwnFile(t *testing.T) {
	path := filepath.Join(testenv.ShortDir(t), "own.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	os.WriteFile(path, []byte("someone else's"), 0o600)
	l.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Close removed a file it did not create: %v", err)
	}
}

func TestBadAddresses(t *testing.T) {
	for _, a := range []string{"", "unix:", "bogus:x", "unix:@abstract", "unix:/a\x00b", "unix:/" + string(make([]byte, 200))} {
		if _, err := Listen(a); !errors.Is(err, ErrBadAddress) {
			t.Errorf("Listen(%q): %v", a, err)
		}
	}
	if _, err := Dial(context.Background(), "tcp:localhost"); !errors.Is(err, ErrBadAddress) {
		t.Errorf("tcp: %v", err)
	}
}

func TestAcceptContext(t *testing.T) {
	l, err := Listen(filepath.Join(testenv.ShortDir(t), "a.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Accept(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Accept: %v", err)
	}
	// the listener still works after a cancelled Accept
	go func() {
		if c, err := Dial(context.Background(), l.Addr()); err == nil {
			c.Close()
		}
	}()
	c, err := l.Accept(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// The raw byte streams are plain net.Conns: x/net/nettest checks them for
// races, timeouts and close behaviour.
func TestRawConnIsNetConn(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		l, err := Listen(filepath.Join(testenv.ShortDir(t), "raw.sock"))
		if err != nil {
			return nil, nil, nil, err
		}
		type res struct {
			c   net.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() {
			c, err := l.AcceptRaw(context.Background())
			ch <- res{c, err}
		}()
		c1, err = DialRaw(context.Background(), l.Addr())
		if err != nil {
			l.Close()
			return nil, nil, nil, err
		}
		r := <-ch
		if r.err != nil {
			c1.Close()
			l.Close()
			return nil, nil, nil, r.err
		}
		return c1, r.c, func() { c1.Close(); r.c.Close(); l.Close() }, nil
	})
}
