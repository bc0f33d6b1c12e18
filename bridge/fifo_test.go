package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobridge/gobridge/internal/testenv"
)

func fifoCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// noFIFOsLeft fails if dir holds anything after the test's closes.
func noFIFOsLeft(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		t.Errorf("left behind: %s", filepath.Join(dir, e.Name()))
	}
}

func TestFIFOConnections(t *testing.T) {
	ctx := fifoCtx(t)
	dir := testenv.ShortDir(t)
	addr := "fifo:" + filepath.Join(dir, "f")
	l, err := Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(addr); !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("second listener: %v", err)
	}
	const dialers = 4
	var wg sync.WaitGroup
	for i := range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Dial(ctx, addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			big := bytes.Repeat([]byte{byte(i)}, 300<<10)
			for _, v := range [][]byte{[]byte(fmt.Sprint(i)), big} {
				if err := c.SendBytes(v); err != nil {
					t.Error(err)
					return
				}
				got, err := c.RecvBytesContext(ctx)
				if err != nil || !bytes.Equal(got, v) {
					t.Errorf("dialer %d: echo of %d bytes: %d bytes, %v", i, len(v), len(got), err)
				}
			}
		}()
	}
	for range dialers {
		c, err := l.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		go func() { // echo until the dialer closes
			defer c.Close()
			for {
				p, err := c.RecvBytesContext(ctx)
				if err != nil {
					if !errors.Is(err, io.EOF) {
						t.Error(err)
					}
					return
				}
				c.SendBytes(p)
			}
		}()
	}
	wg.Wait()
	actx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := l.Accept(actx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("idle Accept: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	noFIFOsLeft(t, dir)
}

func TestFIFODialWaitsForListener(t *testing.T) {
	dir := testenv.ShortDir(t)
	path := filepath.Join(dir, "f")
	if _, err := Dial(context.Background(), "fifo:"+path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dial with no FIFO: %v", err)
	}
	Mkfifo(path)
	defer os.Remove(path)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Dial(ctx, "fifo:"+path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial with no listener: %v", err)
	}
	os.Remove(path)
	noFIFOsLeft(t, dir)
}

func TestMkfifoRefuses(t *testing.T) {
	dir := testenv.ShortDir(t)
	reg := filepath.Join(dir, "reg")
	os.WriteFile(reg, nil, 0o600)
	link := filepath.Join(dir, "link")
	fifo := filepath.Join(dir, "fifo")
	if created, err := Mkfifo(fifo); !created || err != nil {
		t.Fatal(created, err)
	}
	if created, err := Mkfifo(fifo); created || err != nil {
		t.Fatalf("existing FIFO: %v %v", created, err)
	}
	os.Symlink(fifo, link)
	for _, p := range []string{reg, link, dir} {
		if _, err := Mkfifo(p); !errors.Is(err, ErrAddrInUse) {
			t.Errorf("Mkfifo(%s): %v", p, err)
		}
		if _, err := Listen("fifo:" + p); !errors.Is(err, ErrAddrInUse) {
			t.Errorf("Listen(%s): %v", p, err)
		}
	}
	if _, err := OpenFIFOWriter(context.Background(), link); err == nil {
		t.Error("opened a symlink")
	}
	if os.Geteuid() != 0 {
		return // making a FIFO owned by another user needs root
	}
	theirs := filepath.Join(dir, "theirs")
	if err := syscall.Mkfifo(theirs, 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chown(theirs, 65534, 65534)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Mkfifo(theirs); !errors.Is(err, ErrAddrInUse) {
		t.Errorf("Mkfifo(another user's): %v", err)
	}
	if _, err := Listen("fifo:" + theirs); !errors.Is(err, ErrAddrInUse) {
		t.Errorf("Listen(another user's): %v", err)
	}
	if _, err := OpenFIFOWriter(ctx, theirs); !errors.Is(err, ErrAddrInUse) {
		t.Errorf("OpenFIFOWriter(another user's): %v", err)
	}
	if _, err := OpenFIFOReader(ctx, theirs); !errors.Is(err, ErrAddrInUse) {
		t.Errorf("OpenFIFOReader(another user's): %v", err)
	}
	if _, err := Dial(ctx, "fifo:"+theirs); !errors.Is(err, ErrAddrInUse) {
		t.Errorf("Dial(another user's): %v", err)
	}
}

// openFIFOReaderAsync opens path for reading in a goroutine (the open waits
// for a writer) and hands the Conn over (nil after an error, reported).
func openFIFOReaderAsync(ctx context.Context, t *testing.T, path string) <-chan *Conn {
	rc := make(chan *Conn, 1)
	go func() {
		r, err := OpenFIFOReader(ctx, path)
		if err != nil {
			t.Error(err)
		}
		rc <- r
	}()
	return rc
}

// Eight writers of 100 KiB frames to one FIFO: the flock keeps every frame
// whole. The reader sees end of stream when the last writer closes.
func TestFIFOManyWriters(t *testing.T) {
	ctx := fifoCtx(t)
	dir := testenv.ShortDir(t)
	path := filepath.Join(dir, "f")
	if _, err := Mkfifo(path); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	const writers, frames, size = 8, 20, 100 << 10
	rc := openFIFOReaderAsync(ctx, t, path)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		w, err := OpenFIFOWriter(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Close()
			<-start
			for j := range frames {
				p := bytes.Repeat([]byte{byte(i*frames + j)}, size)
				if err := w.SendBytesContext(ctx, p); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	r := <-rc
	if r == nil {
		t.FailNow()
	}
	defer r.Close()
	if err := r.Send(1); !errors.Is(err, ErrNotWritable) {
		t.Fatalf("send on a reader: %v", err)
	}
	close(start)
	seen := map[byte]bool{}
	for {
		p, err := r.RecvBytesContext(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != size || !bytes.Equal(p, bytes.Repeat(p[:1], size)) {
			t.Fatalf("a frame of %d bytes is mixed", len(p))
		}
		seen[p[0]] = true
	}
	wg.Wait()
	if len(seen) != writers*frames {
		t.Fatalf("got %d distinct frames, want %d", len(seen), writers*frames)
	}
}

func TestFIFOBrokenPipeAndTimeouts(t *testing.T) {
	dir := testenv.ShortDir(t)
	path := filepath.Join(dir, "f")
	Mkfifo(path)
	defer os.Remove(path)
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := OpenFIFOReader(short, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reader without writer: %v", err)
	}
	if _, err := OpenFIFOWriter(short, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("writer without reader: %v", err)
	}
	ctx := fifoCtx(t)
	rc := make(chan *Conn, 1)
	go func() {
		r, _ := OpenFIFOReader(ctx, path)
		rc <- r
	}()
	w, err := OpenFIFOWriter(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r := <-rc
	if _, err := w.RecvBytes(); !errors.Is(err, ErrNotReadable) {
		t.Fatalf("recv on a writer: %v", err)
	}
	r.Close()
	if err := w.Send("x"); !errors.Is(err, ErrBrokenPipe) {
		t.Fatalf("send with no reader: %v", err)
	}
}

// A listener that dies after reading a dialer's request, before opening the
// dialer's pair, must not leave the dialer waiting: Dial fails with
// ErrPeerGone once the rendezvous FIFO has no reader, and removes its pair.
func TestFIFODialListenerDiesAfterRequest(t *testing.T) {
	dir := testenv.ShortDir(t)
	path := filepath.Join(dir, "f")
	if _, err := Mkfifo(path); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	// The stand-in listener: a read end of the rendezvous FIFO, as a real
	// listener holds, that reads one request and then goes away.
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		c, err := Dial(fifoCtx(t), "fifo:"+path)
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	buf := make([]byte, 4096)
	for deadline := time.Now().Add(10 * time.Second); ; {
		select {
		case err := <-done:
			t.Fatalf("dial returned before its request was read: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no request on the rendezvous FIFO in 10 s")
		}
		n, err := r.Read(buf)
		if n > 0 {
			break
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, io.EOF) && !errors.Is(err, syscall.EAGAIN) {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	r.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrPeerGone) {
			t.Fatalf("dial: %v, want ErrPeerGone", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dial still waiting 10 s after the listener went away")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("dial took %v to notice", d)
	}
	os.Remove(path)
	noFIFOsLeft(t, dir)
}
