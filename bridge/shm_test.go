package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobridge/gobridge/internal/shmseg"
	"github.com/gobridge/gobridge/internal/testenv"
)

// shmName returns a fresh shm: name for a test; the test's cleanup checks
// that nothing with that prefix is left in /dev/shm.
func shmName(t testing.TB) string {
	t.Helper()
	name := testenv.Name("conn")
	t.Cleanup(func() {
		ents, _ := os.ReadDir(shmseg.Dir)
		for _, e := range ents {
			if n := e.Name(); n == name || len(n) > len(name) && n[:len(name)+1] == name+"." {
				t.Errorf("left behind: %s", n)
				os.Remove(shmseg.Path(n))
			}
		}
	})
	return name
}

func shmPair(t *testing.T, opts ...ConnOption) pair {
	t.Helper()
	l, err := Listen("shm:"+shmName(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan *Conn, 1)
	go func() {
		c, err := l.Accept(context.Background())
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	d, err := Dial(context.Background(), l.Addr(), opts...)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	s := <-accepted
	t.Cleanup(func() { d.Close(); s.Close(); l.Close() })
	return pair{d, s}
}

func TestShmListenTwiceInUse(t *testing.T) {
	name := shmName(t)
	l, err := Listen("shm:" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := Listen("shm:" + name); !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("second Listen: %v, want ErrAddrInUse", err)
	}
}

func TestShmDialNoListener(t *testing.T) {
	name := shmName(t)
	_, err := Dial(context.Background(), "shm:"+name)
	if !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("Dial: %v, want ENOENT", err)
	}
}

func TestShmAcceptContext(t *testing.T) {
	l, err := Listen("shm:" + shmName(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := l.Accept(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Accept: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Accept took %v after its deadline", d)
	}
	done := make(chan error, 1)
	go func() { _, err := l.Accept(context.Background()); done <- err }()
	time.Sleep(20 * time.Millisecond)
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Accept after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
}

func TestShmManyConnections(t *testing.T) {
	l, err := Listen("shm:" + shmName(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const n = 8
	var served sync.WaitGroup
	defer served.Wait() // every server end closed before the leftover check
	served.Add(n)
	go func() {
		for i := 0; i < n; i++ {
			c, err := l.Accept(context.Background())
			if err != nil {
				served.Add(i - n)
				return
			}
			go func() {
				defer served.Done()
				defer c.Close()
				var v any
				for c.Recv(&v) == nil {
					c.Send(v)
				}
			}()
		}
	}()
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			// The client's Close runs before it reports: a report sent first
			// let the test end (and check for leftovers) while the last
			// handle of the segment was still closing.
			errs <- func() error {
				c, err := Dial(context.Background(), l.Addr())
				if err != nil {
					return err
				}
				defer c.Close()
				for j := 0; j < 100; j++ {
					if err := c.Send(int64(i*1000 + j)); err != nil {
						return err
					}
					var v any
					if err := c.Recv(&v); err != nil || v != int64(i*1000+j) {
						return fmt.Errorf("got %v, %v", v, err)
					}
				}
				return nil
			}()
		}(i)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestShmLargerThanRing(t *testing.T) {
	p := shmPair(t)
	msg := make([]byte, 3*shmDefaultRing+12345)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	go p.tx.SendBytes(msg)
	buf := make([]byte, len(msg))
	got, err := p.rx.RecvBytesInto(context.Background(), buf)
	if err != nil {
		t.Fatal(err)
	}
	if &got[0] != &buf[0] || string(got) != string(msg) {
		t.Fatal("large message differs or was not received into the caller's slice")
	}
}

func TestShmCloseGivesEOFAndEPIPE(t *testing.T) {
	p := shmPair(t)
	p.tx.SendBytes([]byte("last"))
	p.tx.Close()
	b, err := p.rx.RecvBytes()
	if err != nil || string(b) != "last" {
		t.Fatalf("RecvBytes = %q, %v", b, err)
	}
	if _, err := p.rx.RecvBytes(); err != io.EOF {
		t.Fatalf("after close: %v, want io.EOF", err)
	}
	if err := p.rx.SendBytes([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("send to closed peer: %v, want EPIPE", err)
	}
}
