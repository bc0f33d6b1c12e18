package authkey

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gobridge/gobridge/wire"
	"golang.org/x/sys/unix"
)

var key = []byte("the key")

// socketPair returns the two ends of a real AF_UNIX stream socketpair.
func socketPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = c
	}
	return conns[0], conns[1]
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// both runs server on one end and client on the other and returns their errors.
func both(t *testing.T, server, client func(context.Context, FrameRW) error) (serr, cerr error) {
	t.Helper()
	a, b := socketPair(t)
	ctx := ctxFor(t, 5*time.Second)
	done := make(chan error, 1)
	go func() { done <- client(ctx, NewStream(b)) }()
	serr = server(ctx, NewStream(a))
	if serr != nil {
		a.Close() // a server that gave up hangs up, as a Listener does
	}
	return serr, <-done
}

func with(f func(context.Context, FrameRW, []byte) error, k []byte) func(context.Context, FrameRW) error {
	return func(ctx context.Context, rw FrameRW) error { return f(ctx, rw, k) }
}

func TestHandshakeGoGo(t *testing.T) {
	legacy := func(ctx context.Context, rw FrameRW, k []byte) error { return deliver(ctx, rw, k, "") }
	for _, tc := range []struct {
		name        string
		deliver     func(context.Context, FrameRW, []byte) error
		dkey, akey  []byte
		wantSuccess bool
	}{
		{"modern", DeliverChallenge, key, key, true},
		{"legacy", legacy, key, key, true},
		{"modern wrong key", DeliverChallenge, key, []byte("other"), false},
		{"legacy wrong key", legacy, key, []byte("other"), false},
		{"empty key on one side", DeliverChallenge, key, nil, false},
		{"empty keys", DeliverChallenge, nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serr, cerr := both(t, with(tc.deliver, tc.dkey), with(AnswerChallenge, tc.akey))
			if tc.wantSuccess {
				if serr != nil || cerr != nil {
					t.Fatalf("deliver: %v, answer: %v", serr, cerr)
				}
				return
			}
			if !errors.Is(serr, ErrAuthentication) || !errors.Is(cerr, ErrAuthentication) {
				t.Fatalf("deliver: %v, answer: %v; want ErrAuthentication on both", serr, cerr)
			}
		})
	}
}

func TestMutual(t *testing.T) {
	serr, cerr := both(t, with(Accept, key), with(Connect, key))
	if serr != nil || cerr != nil {
		t.Fatalf("accept: %v, connect: %v", serr, cerr)
	}
	serr, cerr = both(t, with(Accept, key), with(Connect, []byte("x")))
	if !errors.Is(serr, ErrAuthentication) || !errors.Is(cerr, ErrAuthentication) {
		t.Fatalf("accept: %v, connect: %v", serr, cerr)
	}
}

// raw is a peer that speaks frames by hand.
type raw struct {
	t  *testing.T
	rw *Stream
}

func (r raw) send(p []byte) {
	r.t.Helper()
	if err := r.rw.SendBytesContext(context.Background(), p); err != nil {
		r.t.Fatal(err)
	}
}

func (r raw) recv() []byte {
	r.t.Helper()
	p, err := r.rw.RecvBytesMax(context.Background(), 1<<20)
	if err != nil {
		r.t.Fatal(err)
	}
	return p
}

// tryRecv receives a frame, or nil once the other end has hung up.
func (r raw) tryRecv() []byte {
	p, _ := r.rw.RecvBytesMax(context.Background(), 1<<20)
	return p
}

// silent waits, sending nothing, until the other end hangs up.
func (r raw) silent() {
	for r.tryRecv() != nil {
	}
}

// deliverTo runs DeliverChallenge against a raw peer that plays script, and
// returns its error.
func deliverTo(t *testing.T, script func(raw)) error {
	t.Helper()
	a, b := socketPair(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer b.Close()
		script(raw{t, NewStream(b)})
	}()
	err := DeliverChallenge(ctxFor(t, 2*time.Second), NewStream(a), key)
	a.Close()
	<-done
	return err
}

func TestDeliverHostile(t *testing.T) {
	sum := func(msg []byte) []byte { m := hmac.New(sha256.New, key); m.Write(msg); return m.Sum(nil) }
	for _, tc := range []struct {
		name   string
		script func(raw)
		want   error
	}{
		{"reply over 256 bytes", func(r raw) { r.recv(); r.send(make([]byte, 257)) }, wire.ErrFrameTooLarge},
		{"header claims 2 GiB", func(r raw) {
			r.recv()
			r.rw.c.Write([]byte{0x7f, 0xff, 0xff, 0xff})
		}, wire.ErrFrameTooLarge},
		{"unprefixed 32-byte reply", func(r raw) { r.recv(); r.send(make([]byte, 32)) }, ErrAuthentication},
		{"unknown digest", func(r raw) {
			msg := r.recv()[len(challengeTag):]
			r.send(append([]byte("{sha1}"), sum(msg)[:20]...))
		}, ErrAuthentication},
		{"right digest, truncated MAC", func(r raw) {
			msg := r.recv()[len(challengeTag):]
			r.send(append([]byte("{sha256}"), sum(msg)[:31]...))
		}, ErrAuthentication},
		{"MAC over the payload without the prefix", func(r raw) {
			msg := r.recv()[len(challengeTag):]
			r.send(append([]byte("{sha256}"), sum(msg[len("{sha256}"):])...))
		}, ErrAuthentication},
		{"empty reply", func(r raw) { r.recv(); r.send(nil) }, ErrAuthentication},
		{"hang up", func(r raw) { r.recv() }, io.EOF},
		{"silent", func(r raw) { r.recv(); r.silent() }, os.ErrDeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			err := deliverTo(t, tc.script)
			if !errors.Is(err, ErrAuthentication) || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want ErrAuthentication and %v", err, tc.want)
			}
			if d := time.Since(start); d > 2500*time.Millisecond {
				t.Fatalf("took %v, past the 2s context", d)
			}
		})
	}
	t.Run("silent reports the context", func(t *testing.T) {
		err := deliverTo(t, func(r raw) { r.recv(); r.silent() })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want context.DeadlineExceeded", err)
		}
	})
}

// A reply a client gave on one connection is worthless on the next: each
// challenge is fresh.
func TestReplayedReplyFails(t *testing.T) {
	var recorded []byte
	if err := deliverTo(t, func(r raw) {
		msg := r.recv()[len(challengeTag):]
		reply, err := response(key, msg)
		if err != nil {
			t.Error(err)
		}
		recorded = reply
		r.send(reply)
		if v := r.recv(); !bytes.Equal(v, welcome) {
			t.Errorf("verdict %q", v)
		}
	}); err != nil {
		t.Fatalf("honest client refused: %v", err)
	}
	var verdict []byte
	err := deliverTo(t, func(r raw) {
		r.recv()
		r.send(recorded)
		verdict = r.recv()
	})
	if !errors.Is(err, ErrAuthentication) || !bytes.Equal(verdict, failure) {
		t.Fatalf("replayed reply: err %v, verdict %q", err, verdict)
	}
}

// A man in the middle that rewrites the challenge's digest to md5 gets a
// reply that the challenger refuses: the MAC covers the prefix.
func TestNoDowngrade(t *testing.T) {
	err := deliverTo(t, func(r raw) {
		msg := r.recv()[len(challengeTag):]
		forged := append([]byte("{md5}"), msg[len("{sha256}"):]...)
		reply, err := response(key, forged)
		if err != nil {
			t.Error(err)
		}
		r.send(reply)
		r.recv()
	})
	if !errors.Is(err, ErrAuthentication) {
		t.Fatalf("downgraded reply accepted: %v", err)
	}
	// The legacy reply a 3.10 client computes (raw MD5 over the whole message)
	// is accepted, as CPython 3.12 accepts it.
	if err := deliverTo(t, func(r raw) {
		msg := r.recv()[len(challengeTag):]
		m := hmac.New(md5.New, key)
		m.Write(msg)
		r.send(m.Sum(nil))
		r.recv()
	}); err != nil {
		t.Fatalf("3.10-style reply refused: %v", err)
	}
}

// answerTo runs AnswerChallenge against a raw challenger.
func answerTo(t *testing.T, script func(raw)) error {
	t.Helper()
	a, b := socketPair(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer b.Close()
		script(raw{t, NewStream(b)})
	}()
	err := AnswerChallenge(ctxFor(t, 2*time.Second), NewStream(a), key)
	a.Close()
	<-done
	return err
}

func TestAnswerHostile(t *testing.T) {
	challenge := func(body string) func(raw) {
		return func(r raw) {
			r.send(append(bytes.Clone(challengeTag), body...))
			if r.tryRecv() != nil {
				r.send(welcome)
			}
		}
	}
	for _, tc := range []struct {
		name   string
		script func(raw)
		want   error
	}{
		{"no tag", func(r raw) { r.send(make([]byte, 40)) }, ErrAuthentication},
		{"short challenge", challenge("0123456789"), ErrAuthentication},
		{"19 bytes", challenge("0123456789012345678"), ErrAuthentication},
		{"unprefixed 30 bytes", challenge("012345678901234567890123456789"), ErrAuthentication},
		{"unknown digest", challenge("{sha1}012345678901234567890123456789"), ErrAuthentication},
		{"unterminated digest", challenge("{sha256012345678901234567890123456789"), ErrAuthentication},
		{"challenge over 256 bytes", func(r raw) { r.send(append(bytes.Clone(challengeTag), make([]byte, 250)...)) }, wire.ErrFrameTooLarge},
		{"verdict over 256 bytes", func(r raw) {
			r.send(append(bytes.Clone(challengeTag), "{sha256}0123456789012345678901234567890123456789"...))
			r.recv()
			r.send(make([]byte, 300))
		}, wire.ErrFrameTooLarge},
		{"failure verdict", func(r raw) {
			r.send(append(bytes.Clone(challengeTag), "{sha256}0123456789012345678901234567890123456789"...))
			r.recv()
			r.send(failure)
		}, ErrAuthentication},
		{"silent challenger", func(r raw) { r.silent() }, os.ErrDeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := answerTo(t, tc.script)
			if !errors.Is(err, ErrAuthentication) || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want ErrAuthentication and %v", err, tc.want)
			}
		})
	}
	// Every allowed digest is answered in kind.
	for name := range digests {
		t.Run("digest "+name, func(t *testing.T) {
			msg := append([]byte("{"+name+"}"), "0123456789012345678901234567890123456789"...)
			var reply []byte
			err := answerTo(t, func(r raw) {
				r.send(append(bytes.Clone(challengeTag), msg...))
				reply = r.recv()
				r.send(welcome)
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := verify(key, msg, reply); err != nil || !bytes.HasPrefix(reply, []byte("{"+name+"}")) {
				t.Fatalf("reply %q: %v", reply, err)
			}
		})
	}
}

// A cancelled context ends a handshake at once.
func TestCancel(t *testing.T) {
	a, b := socketPair(t)
	_ = b
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	err := AnswerChallenge(ctx, NewStream(a), key)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrAuthentication) {
		t.Fatalf("got %v", err)
	}
}
