package bridge

// Tests of Mkfifo and the plain-pipe API (fifo_open.go) and of the
// writers' flock (fifo_stream.go).

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobridge/gobridge/internal/testenv"
)

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

// A plain-pipe reader or writer refuses a live listener's rendezvous FIFO at
// once, instead of blocking on it (writers) or taking its requests (readers).
func TestFIFOPlainPipeRefusesRendezvous(t *testing.T) {
	ctx := fifoCtx(t)
	dir := testenv.ShortDir(t)
	path := filepath.Join(dir, "f")
	l, err := Listen("fifo:" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	if w, err := OpenFIFOWriter(ctx, path); !errors.Is(err, ErrAddrInUse) {
		if err == nil {
			w.SendContext(ctx, 1)
			w.Close()
		}
		t.Fatalf("writer: %v, want ErrAddrInUse", err)
	}
	if r, err := OpenFIFOReader(ctx, path); !errors.Is(err, ErrAddrInUse) {
		if err == nil {
			r.Close()
		}
		t.Fatalf("reader: %v, want ErrAddrInUse", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusing took %v", d)
	}
	if took := fifoEcho(ctx, t, l, "still serving"); took > 2*time.Second {
		t.Errorf("accept took %v", took)
	}
	// Once the listener has gone, the FIFO is a plain pipe again.
	l.Close()
	Mkfifo(path)
	defer os.Remove(path)
	rc := openFIFOReaderAsync(ctx, t, path)
	w, err := OpenFIFOWriter(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if r := <-rc; r != nil {
		r.Close()
	}
}
