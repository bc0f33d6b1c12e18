package bridge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/gobridge/gobridge/internal/testenv"
)

// pair is a sender and a receiver over one transport.
type pair struct{ tx, rx *Conn }

// transports returns a constructor for every transport, so that one test body
// runs over all of them (yamux's style).
func transports() map[string]func(t *testing.T, opts ...ConnOption) pair {
	return map[string]func(t *testing.T, opts ...ConnOption) pair{
		"socketpair": func(t *testing.T, opts ...ConnOption) pair {
			a, b, err := Pipe(true, opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Close(); b.Close() })
			return pair{a, b}
		},
		"pipe": func(t *testing.T, opts ...ConnOption) pair {
			r, w, err := Pipe(false, opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close(); w.Close() })
			return pair{w, r}
		},
		"unix": func(t *testing.T, opts ...ConnOption) pair {
			l, err := Listen("unix:"+filepath.Join(testenv.ShortDir(t), "s.sock"), opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
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
				t.Fatal(err)
			}
			s := <-accepted
			t.Cleanup(func() { d.Close(); s.Close() })
			return pair{d, s}
		},
		"shm": shmPair,
		"tcp": func(t *testing.T, opts ...ConnOption) pair {
			l, err := Listen("tcp:127.0.0.1:0", opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
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
				t.Fatal(err)
			}
			s := <-accepted
			t.Cleanup(func() { d.Close(); s.Close() })
			return pair{d, s}
		},
	}
}

func forEachTransport(t *testing.T, body func(t *testing.T, mk func(t *testing.T, opts ...ConnOption) pair)) {
	for name, mk := range transports() {
		t.Run(name, func(t *testing.T) { body(t, mk) })
	}
}

func TestSendRecvValues(t *testing.T) {
	forEachTransport(t, func(t *testing.T, mk func(*testing.T, ...ConnOption) pair) {
		p := mk(t)
		values := []any{nil, true, int64(-3), uint64(1 << 63), 2.5, "héllo", []byte{0, 1},
			[]any{int64(1), "x"}, map[string]any{"k": []any{}}, map[any]any{int64(1): "one"},
			time.Date(2026, 11, 22, 8, 0, 0, 123456789, time.UTC)}
		go func() {
			for _, v := range values {
				if err := p.tx.Send(v); err != nil {
					t.Error(err)
					return
				}
			}
			p.tx.Close()
		}()
		for _, want := range values {
			var got any
			if err := p.rx.Recv(&got); err != nil {
				t.Fatal(err)
			}
			if tm, ok := want.(time.Time); ok {
				if !tm.Equal(got.(time.Time)) {
					t.Fatalf("got %v, want %v", got, want)
				}
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %#v, want %#v", got, want)
			}
		}
		var v any
		if err := p.rx.Recv(&v); err != io.EOF {
			t.Fatalf("after close: %v, want io.EOF", err)
		}
	})
}

func TestLargePayloads(t *testing.T) {
	forEachTransport(t, func(t *testing.T, mk func(*testing.T, ...ConnOption) pair) {
		p := mk(t)
		big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
		go func() {
			p.tx.SendBytes(big)
			p.tx.SendBytes(nil)
		}()
		got, err := p.rx.RecvBytes()
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("got %d bytes, %v", len(got), err)
		}
		buf := make([]byte, 16)
		got, err = p.rx.RecvBytesInto(context.Background(), buf)
		if err != nil || len(got) != 0 {
			t.Fatalf("empty frame: %q, %v", got, err)
		}
	})
}

func TestFrameLimit(t *testing.T) {
	forEachTransport(t, func(t *testing.T, mk func(*testing.T, ...ConnOption) pair) {
		p := mk(t, WithMaxFrameSize(1024))
		if err := p.tx.SendBytes(make([]byte, 1025)); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("send over the limit: %v", err)
		}
		// A peer that ignores the limit: write the frame by hand.
		raw := binary.BigEndian.AppendUint32(nil, 1<<30)
		go p.tx.s.Write(raw)
		var v any
		if err := p.rx.Recv(&v); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("recv: %v, want ErrFrameTooLarge", err)
		}
		// As CPython's _bad_message_length: a duplex conn stops reading but
		// still sends; a receive-only one is closed.
		err := p.rx.Recv(&v)
		if p.rx.Writable() {
			if !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("second recv: %v, want the same error", err)
			}
			if err := p.rx.Send("still writable"); err != nil {
				t.Fatalf("duplex conn no longer writable: %v", err)
			}
		} else if !errors.Is(err, ErrClosed) {
			t.Fatalf("receive-only conn after a framing error: %v, want ErrClosed", err)
		}
	})
}

func TestBadPayloadKeepsConnUsable(t *testing.T) {
	forEachTransport(t, func(t *testing.T, mk func(*testing.T, ...ConnOption) pair) {
		p := mk(t)
		go func() {
			p.tx.SendBytes([]byte{0xc1})             // reserved byte
			p.tx.SendBytes([]byte{0xa2, 0xff, 0xfe}) // invalid UTF-8
			p.tx.SendBytes([]byte{0xd4, 0x05, 0x00}) // unknown extension
			p.tx.Send("next")
		}()
		var v any
		for _, want := range []error{ErrMalformed, ErrInvalidUTF8, ErrUnknownExtension} {
			if err := p.rx.Recv(&v); !errors.Is(err, want) {
				t.Fatalf("got %v, want %v", err, want)
			}
		}
		if err := p.rx.Recv(&v); err != nil || v != "next" {
			t.Fatalf("after bad payloads: %v, %v", v, err)
		}
	})
}

func TestDeadlineAndContextResume(t *testing.T) {
	forEachTransport(t, func(t *testing.T, mk func(*testing.T, ...ConnOption) pair) {
		p := mk(t)
		var v any
		p.rx.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if err := p.rx.Recv(&v); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("deadline: %v", err)
		}
		p.rx.SetReadDeadline(time.Time{})

		// half a frame, then a cancelled context, then the rest
		frame := append(binary.BigEndian.AppendUint32(nil, 3), 0xa2, 'o', 'k')
		p.tx.s.Write(frame[:5])
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := p.rx.RecvContext(ctx, &v); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ctx: %v", err)
		}
		p.tx.s.Write(frame[5:])
		if err := p.rx.Recv(&v); err != nil || v != "ok" {
			t.Fatalf("resumed: %v %v", v, err)
		}
		cctx, ccancel := context.WithCancel(context.Background())
		ccancel()
		if err := p.rx.RecvContext(cctx, &v); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled ctx: %v", err)
		}
	})
}

func TestPoll(t *testing.T) {
	forEachTransport(t, func(t *testing.T, mk func(*testing.T, ...ConnOption) pair) {
		p := mk(t)
		if ok, err := p.rx.Poll(0); ok || err != nil {
			t.Fatalf("empty Poll(0) = %v, %v", ok, err)
		}
		if ok, err := p.rx.Poll(10 * time.Millisecond); ok || err != nil {
			t.Fatalf("empty Poll(10ms) = %v, %v", ok, err)
		}
		p.tx.Send(1)
		p.tx.Send(2)
		if ok, err := p.rx.Poll(time.Second); !ok || err != nil {
			t.Fatalf("Poll = %v, %v", ok, err)
		}
		var v any
		p.rx.Recv(&v)
		if ok, _ := p.rx.Poll(0); !ok { // the second message is buffered
			t.Fatal("buffered message not reported by Poll(0)")
		}
		p.rx.Recv(&v)
		p.tx.Close()
		if ok, _ := p.rx.Poll(time.Second); !ok {
			t.Fatal("end of stream not reported by Poll")
		}
	})
}

func TestCloseUnblocksAndIsIdempotent(t *testing.T) {
	forEachTransport(t, func(t *testing.T, mk func(*testing.T, ...ConnOption) pair) {
		p := mk(t)
		done := make(chan error, 1)
		go func() {
			var v any
			done <- p.rx.Recv(&v)
		}()
		time.Sleep(20 * time.Millisecond)
		p.rx.Close()
		select {
		case err := <-done:
			if !errors.Is(err, ErrClosed) || !errors.Is(err, net.ErrClosed) {
				t.Fatalf("blocked Recv after Close: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not unblock Recv")
		}
		if err := p.rx.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := p.rx.RecvBytes(); !errors.Is(err, ErrClosed) {
			t.Fatalf("Recv after Close: %v", err)
		}
	})
}

func TestOneWayMisuse(t *testing.T) {
	r, w, err := Pipe(false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := r.Send(1); !errors.Is(err, ErrNotWritable) || err.Error() != "bridge: connection is read-only" {
		t.Errorf("Send on receive end: %v", err)
	}
	if _, err := w.RecvBytes(); !errors.Is(err, ErrNotReadable) {
		t.Errorf("Recv on send end: %v", err)
	}
	if _, err := w.Poll(0); !errors.Is(err, ErrNotReadable) {
		t.Errorf("Poll on send end: %v", err)
	}
}

func TestBrokenPipe(t *testing.T) {
	forEachTransport(t, func(t *testing.T, mk func(*testing.T, ...ConnOption) pair) {
		p := mk(t)
		p.rx.Close()
		var err error
		for i := 0; i < 100 && err == nil; i++ { // the first writes may land in the kernel buffer
			err = p.tx.SendBytes(make([]byte, 1<<16))
		}
		if !errors.Is(err, ErrBrokenPipe) || !(errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) {
			t.Fatalf("send to a closed peer: %v", err)
		}
	})
}

// TestHelperProcess is not a test: the tests below re-run the test binary as
// a child process with GOBRIDGE_HELPER set (go-plugin's pattern).
func TestHelperProcess(t *testing.T) {
	switch os.Getenv("GOBRIDGE_HELPER") {
	case "":
		return
	case "echo-parent": // echo messages on the inherited connection, then exit
		c, err := Parent()
		if err != nil {
			os.Exit(3)
		}
		for {
			var v any
			if err := c.Recv(&v); err != nil {
				os.Exit(0)
			}
			c.Send(map[string]any{"child-got": v})
		}
	case "half-frame": // write half a frame, then wait to be killed
		c, err := Parent()
		if err != nil {
			os.Exit(3)
		}
		c.s.Write([]byte{0, 0, 0, 100, 0x91})
		time.Sleep(time.Minute)
	case "no-parent":
		if _, err := Parent(); errors.Is(err, ErrNoParent) {
			os.Exit(0)
		}
		os.Exit(4)
	}
	os.Exit(5)
}

func helper(t *testing.T, mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "GOBRIDGE_HELPER="+mode)
	cmd.Stderr = os.Stderr
	return cmd
}

func TestStartWithConnAndParent(t *testing.T) {
	for _, duplex := range []bool{true} {
		mine, theirs, err := Pipe(duplex)
		if err != nil {
			t.Fatal(err)
		}
		defer mine.Close()
		cmd := helper(t, "echo-parent")
		if err := StartWithConn(cmd, theirs); err != nil {
			t.Fatal(err)
		}
		if err := mine.Send([]any{"hi", int64(1)}); err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := mine.Recv(&got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, map[string]any{"child-got": []any{"hi", int64(1)}}) {
			t.Fatalf("got %#v", got)
		}
		mine.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	if err := helper(t, "no-parent").Run(); err != nil {
		t.Fatalf("Parent without GOBRIDGE_FD: %v", err)
	}
}

func TestPeerKilledMidFrame(t *testing.T) {
	mine, theirs, err := Pipe(true)
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	cmd := helper(t, "half-frame")
	if err := StartWithConn(cmd, theirs); err != nil {
		t.Fatal(err)
	}
	if ok, err := mine.Poll(10 * time.Second); !ok || err != nil {
		t.Fatalf("child wrote nothing: %v %v", ok, err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	done := make(chan error, 1)
	go func() { _, err := mine.RecvBytes(); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("survivor hangs after its peer died mid-frame")
	}
}
