package bridge

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/gobridge/gobridge/internal/testenv"
	"github.com/gobridge/gobridge/wire"
	"github.com/gobridge/gobridge/wire/pickle"
)

// keyedAddrs is one listening address per transport that has a Listener.
func keyedAddrs(t *testing.T) map[string]string {
	dir := testenv.ShortDir(t)
	return map[string]string{
		"unix": "unix:" + filepath.Join(dir, "k.sock"),
		"fifo": "fifo:" + filepath.Join(dir, "k.fifo"),
		"shm":  "shm:" + testenv.Name("ak"),
	}
}

type accepted struct {
	c   *Conn
	err error
}

func acceptOne(l *Listener) <-chan accepted {
	ch := make(chan accepted, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := l.Accept(ctx)
		ch <- accepted{c, err}
	}()
	return ch
}

func dialCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestAuthkeyEveryTransport(t *testing.T) {
	for name, addr := range keyedAddrs(t) {
		t.Run(name, func(t *testing.T) {
			key := WithAuthkey([]byte("the key"))
			l, err := Listen(addr, key, WithHandshakeTimeout(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()

			// The right key: a working connection.
			ch := acceptOne(l)
			d, err := Dial(dialCtx(t), addr, key)
			if err != nil {
				t.Fatal(err)
			}
			a := <-ch
			if a.err != nil {
				t.Fatal(a.err)
			}
			if err := d.Send("hello"); err != nil {
				t.Fatal(err)
			}
			var got any
			if err := a.c.Recv(&got); err != nil || got != "hello" {
				t.Fatalf("got %v, %v", got, err)
			}
			d.Close()
			a.c.Close()

			// A wrong key: ErrAuthentication on both ends.
			ch = acceptOne(l)
			_, err = Dial(dialCtx(t), addr, WithAuthkey([]byte("wrong")))
			if !errors.Is(err, ErrAuthentication) {
				t.Fatalf("dial with a wrong key: %v", err)
			}
			if a := <-ch; !errors.Is(a.err, ErrAuthentication) {
				t.Fatalf("accept of a wrong key: %v", a.err)
			}

			// No key: the client waits for a message, the listener for a
			// reply, until the handshake timeout.
			ch = acceptOne(l)
			silent, err := Dial(dialCtx(t), addr)
			if err != nil {
				t.Fatal(err)
			}
			a = <-ch
			if !errors.Is(a.err, ErrAuthentication) || !errors.Is(a.err, context.DeadlineExceeded) {
				t.Fatalf("accept of a client without a key: %v", a.err)
			}
			silent.Close()

			// And the listener still serves.
			ch = acceptOne(l)
			d, err = Dial(dialCtx(t), addr, key)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if a = <-ch; a.err != nil {
				t.Fatal(a.err)
			}
			a.c.Close()
		})
	}
}

func TestAuthkeyEmptyKeyIsAKey(t *testing.T) {
	addr := "unix:" + filepath.Join(testenv.ShortDir(t), "e.sock")
	l, err := Listen(addr, WithAuthkey(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch := acceptOne(l)
	d, err := Dial(dialCtx(t), addr, WithAuthkey([]byte{}))
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if a := <-ch; a.err != nil {
		t.Fatal(a.err)
	} else {
		a.c.Close()
	}
	// A keyed client against the same listener with another key fails.
	ch = acceptOne(l)
	if _, err := Dial(dialCtx(t), addr, WithAuthkey([]byte("x"))); !errors.Is(err, ErrAuthentication) {
		t.Fatal(err)
	}
	if a := <-ch; !errors.Is(a.err, ErrAuthentication) {
		t.Fatal(a.err)
	}
}

// A client that stalls inside a handshake frame fails at the timeout.
func TestAuthkeyStalledMidFrame(t *testing.T) {
	path := filepath.Join(testenv.ShortDir(t), "m.sock")
	l, err := Listen("unix:"+path, WithAuthkey([]byte("k")), WithHandshakeTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch := acceptOne(l)
	raw, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := wire.NewReader(raw, 256).ReadFrame(nil); err != nil { // the challenge
		t.Fatal(err)
	}
	raw.Write([]byte{0, 0, 0, 40, '{'})
	a := <-ch
	if !errors.Is(a.err, ErrAuthentication) || !errors.Is(a.err, context.DeadlineExceeded) {
		t.Fatalf("accept: %v", a.err)
	}
}

func TestCodecPickleGoToGo(t *testing.T) {
	forEachTransport(t, func(t *testing.T, mk func(*testing.T, ...ConnOption) pair) {
		p := mk(t, WithCodec(pickle.Codec{}))
		want := map[string]any{"a": []any{int64(1), "two", 3.5}, "b": []byte("x")}
		if err := p.tx.Send(want); err != nil {
			t.Fatal(err)
		}
		raw, err := p.rx.RecvBytes()
		if err != nil {
			t.Fatal(err)
		}
		if raw[0] != 0x80 || raw[1] != 4 { // PROTO 4
			t.Fatalf("not a protocol 4 pickle: % x", raw[:2])
		}
		var got any
		if err := (pickle.Codec{}).Unmarshal(raw, &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("got %#v, %v", got, err)
		}
		if err := p.tx.Send(want); err != nil {
			t.Fatal(err)
		}
		got = nil
		if err := p.rx.Recv(&got); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Recv: %#v, %v", got, err)
		}
	})
}
