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

// Each error names the operation, the address the caller gave and the
// cause, once: no stacked "bridge:" prefixes, no internal socket names.
func TestErrorMessagesNameOpAddressAndCause(t *testing.T) {
	dir := testenv.ShortDir(t)
	path := filepath.Join(dir, "s")
	addr := "unix:" + path
	l, err := Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	accepted := make(chan *Conn, 1)
	go func() {
		c, err := l.Accept(ctx)
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	c, err := Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := <-accepted
	if srv == nil {
		t.Fatal("accept failed")
	}

	// A receive deadline: the address, not the kernel's view of the socket.
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	err = c.Recv(new(any))
	wantMessage(t, err, "bridge: recv "+addr+": i/o timeout")
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("%v does not match os.ErrDeadlineExceeded", err)
	}
	c.SetReadDeadline(time.Time{})

	// The peer is gone: broken pipe, once, still matching the errno.
	srv.Close()
	for i := 0; i < 100 && err == nil || i == 0; i++ {
		err = c.SendBytes(make([]byte, 1<<10))
	}
	wantMessage(t, err, "bridge: send "+addr+": broken pipe")
	if !errors.Is(err, ErrBrokenPipe) || !(errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) {
		t.Errorf("%v does not match ErrBrokenPipe and EPIPE/ECONNRESET", err)
	}
	var oe *OpError
	if !errors.As(err, &oe) || oe.Op != "send" || oe.Addr != addr {
		t.Errorf("errors.As OpError: %#v", oe)
	}

	c.Close()
	err = c.Send(1)
	wantMessage(t, err, "bridge: send "+addr+": use of closed connection")
	if !errors.Is(err, ErrClosed) {
		t.Errorf("%v does not match ErrClosed", err)
	}

	// An unnamed pipe has no address to give.
	r, w, err := Pipe(false)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	err = w.SendBytes([]byte("x"))
	wantMessage(t, err, "bridge: send: broken pipe")
	w.Close()

	// Dial with no listener.
	_, err = Dial(ctx, "unix:"+filepath.Join(dir, "none"))
	wantMessage(t, err, "bridge: dial unix:"+filepath.Join(dir, "none")+": no listener: no such file or directory")
	if !errors.Is(err, syscall.ENOENT) {
		t.Errorf("%v does not match ENOENT", err)
	}
}

func wantMessage(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Errorf("no error, want %q", want)
		return
	}
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if n := strings.Count(err.Error(), "bridge:"); n != 1 {
		t.Errorf("%q has %d bridge: prefixes", err, n)
	}
}
