package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobridge/gobridge/internal/testenv"
	"github.com/gobridge/gobridge/wire"
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

// writeRaw writes p to the FIFO at path as a hostile same-user process
// would: one plain write(2), no lock, no framing of its own.
func writeRaw(t *testing.T, path string, p []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(p); err != nil {
		t.Fatal(err)
	}
}

// fifoEcho dials l's address, sends v, and checks that the Conn that
// Accept returns gets it and that the reply comes back; it returns how long
// the Accept took.
func fifoEcho(ctx context.Context, t *testing.T, l *Listener, v string) time.Duration {
	t.Helper()
	start := time.Now()
	dialed := make(chan error, 1)
	go func() {
		c, err := Dial(ctx, l.Addr())
		if err == nil {
			defer c.Close()
			if err = c.Send(v); err == nil {
				var got string
				if err = c.RecvContext(ctx, &got); err == nil && got != v {
					err = fmt.Errorf("reply %q", got)
				}
			}
		}
		dialed <- err
	}()
	c, err := l.Accept(ctx)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	defer c.Close()
	var got string
	if err := c.RecvContext(ctx, &got); err != nil || got != v {
		t.Fatalf("recv: %q %v", got, err)
	}
	c.Send(got)
	if err := <-dialed; err != nil {
		t.Fatalf("dialer: %v", err)
	}
	return took
}

// Garbage written into a live rendezvous FIFO is skipped: the listener keeps
// serving, and a client that dials right after gets through.
func TestFIFOListenerSkipsGarbage(t *testing.T) {
	ctx := fifoCtx(t)
	dir := testenv.ShortDir(t)
	path := filepath.Join(dir, "f")
	l, err := Listen("fifo:" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	str := func(s string) []byte {
		p, _ := wire.Marshal(s)
		return append(wire.AppendHeader(nil, int64(len(p))), p...)
	}
	garbage := []struct {
		what string
		p    []byte
	}{
		{"negative length", []byte{0xff, 0xff, 0xff, 0xfe}},
		{"huge 8-byte length", []byte{0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"frame too large", []byte{0x7f, 0xff, 0xff, 0xff, 1, 2, 3}},
		{"non-str payload", []byte{0, 0, 0, 1, 0x07}},
		{"str with a slash", str("f.1/../../x.0123456789ab")},
		{"a plain pipe's message", str("hello")},
		{"random bytes", randomBytes(5, 200<<10)},
		{"a request cut short", mustFrame(t, "f.99.0123456789ab")[:9]},
	}
	for _, g := range garbage {
		writeRaw(t, path, g.p)
		if took := fifoEcho(ctx, t, l, g.what); took > 2*time.Second {
			t.Errorf("after %s: accept took %v", g.what, took)
		}
	}
	l.Close()
	noFIFOsLeft(t, dir)
}

// stallFIFODialer plays a dialer that posts a request and then stops: with
// pair, it makes the pair; with down, it also opens .down for reading (and
// keeps it open until the test ends). It returns the pair's base path.
func stallFIFODialer(t *testing.T, path string, pair, down bool) string {
	t.Helper()
	name := fifoTestName(filepath.Base(path), os.Getpid(), rand.Uint64())
	base := filepath.Join(filepath.Dir(path), name)
	if pair {
		for _, s := range []string{fifoUp, fifoDown} {
			if err := syscall.Mkfifo(base+s, 0o600); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Remove(base + s) })
		}
	}
	if down {
		fd, err := syscall.Open(base+fifoDown, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Close(fd) })
	}
	writeRaw(t, path, mustFrame(t, name))
	return base
}

// Stalled dialers do not hold up the others: a legitimate client queued
// behind them is accepted at once, and a stalled handshake gives up at its
// deadline and removes the stalled dialer's pair.
func TestFIFOStalledDialers(t *testing.T) {
	ctx := fifoCtx(t)
	dir := testenv.ShortDir(t)
	path := filepath.Join(dir, "f")
	l, err := Listen("fifo:" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const deadline = 700 * time.Millisecond
	l.impl.(*fifoListener).hs.timeout = deadline
	stalled := []string{
		stallFIFODialer(t, path, true, true),   // opens .down, never .up
		stallFIFODialer(t, path, true, true),   // a second one
		stallFIFODialer(t, path, false, false), // posts and opens nothing
		stallFIFODialer(t, path, true, false),  // makes its pair, opens nothing
	}
	start := time.Now()
	for i := range 3 {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		took := fifoEcho(actx, t, l, fmt.Sprint("legit ", i))
		cancel()
		if took > 2*time.Second {
			t.Errorf("client %d accepted after %v", i, took)
		}
	}
	// The stalled handshakes give up at their deadline and remove the pairs.
	for _, base := range stalled {
		for _, s := range []string{fifoUp, fifoDown} {
			for {
				if _, err := os.Lstat(base + s); errors.Is(err, os.ErrNotExist) {
					break
				}
				if time.Since(start) > deadline+3*time.Second {
					t.Fatalf("%s still there %v after its request", base+s, time.Since(start))
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	l.Close()
	noFIFOsLeft(t, dir)
}

// Close ends the handshakes in progress at once, removing their pairs, and
// waits for them.
func TestFIFOCloseEndsHandshakes(t *testing.T) {
	dir := testenv.ShortDir(t)
	path := filepath.Join(dir, "f")
	l, err := Listen("fifo:" + path)
	if err != nil {
		t.Fatal(err)
	}
	base := stallFIFODialer(t, path, true, true)
	actx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := l.Accept(actx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("accept: %v", err)
	}
	if _, err := os.Lstat(base + fifoDown); err != nil {
		t.Fatalf("the stalled pair is gone before its deadline: %v", err)
	}
	start := time.Now()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("close took %v", d)
	}
	if _, err := l.Accept(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("accept after close: %v", err)
	}
	noFIFOsLeft(t, dir)
}

// readFIFORequest reads one request from the rendezvous FIFO open on r, as a
// stand-in listener, and returns the name it asks for.
func readFIFORequest(t *testing.T, r *os.File) string {
	t.Helper()
	var data []byte
	buf := make([]byte, pipeBuf)
	for deadline := time.Now().Add(10 * time.Second); len(data) < 4 || len(data) < 4+(int(data[2])<<8|int(data[3])); {
		if time.Now().After(deadline) {
			t.Fatal("no request on the rendezvous FIFO in 10 s")
		}
		n, _ := r.Read(buf)
		data = append(data, buf[:n]...)
		time.Sleep(time.Millisecond)
	}
	var name string
	if err := wire.Unmarshal(data[4:], &name); err != nil {
		t.Fatal(err)
	}
	return name
}

// A listener that gives up on a handshake removes the pair; the dialer then
// fails at once with ECONNREFUSED, not at its own deadline.
func TestFIFODialDroppedHandshake(t *testing.T) {
	dir := testenv.ShortDir(t)
	path := filepath.Join(dir, "f")
	if _, err := Mkfifo(path); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0) // the stand-in listener
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	done := make(chan error, 1)
	go func() {
		c, err := Dial(fifoCtx(t), "fifo:"+path)
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	base := filepath.Join(dir, readFIFORequest(t, r))
	start := time.Now()
	os.Remove(base + fifoUp)
	os.Remove(base + fifoDown)
	select {
	case err := <-done:
		if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "dropped the handshake") {
			t.Fatalf("dial: %v, want ECONNREFUSED", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dial still waiting 10 s after its pair was removed")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("dial took %v to notice", d)
	}
	r.Close()
	os.Remove(path)
	noFIFOsLeft(t, dir)
}

// A stalled dialer that removes its pair while the listener waits on it
// cannot keep the handshake (and Close) waiting: the listener's wait is tied
// to the FIFO it opened, not to the path.
func TestFIFOStalledDialerRemovesItsPair(t *testing.T) {
	dir := testenv.ShortDir(t)
	path := filepath.Join(dir, "f")
	l, err := Listen("fifo:" + path)
	if err != nil {
		t.Fatal(err)
	}
	l.impl.(*fifoListener).hs.timeout = 300 * time.Millisecond
	base := stallFIFODialer(t, path, true, true)
	actx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := l.Accept(actx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("accept: %v", err)
	}
	os.Remove(base + fifoUp)
	os.Remove(base + fifoDown)
	// Past the handshake deadline, and again at Close.
	time.Sleep(500 * time.Millisecond)
	base2 := stallFIFODialer(t, path, true, true)
	actx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	l.Accept(actx)
	os.Remove(base2 + fifoUp)
	os.Remove(base2 + fifoDown)
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close still waiting 5 s for a handshake on a removed pair")
	}
	noFIFOsLeft(t, dir)
}
