package bridge

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobridge/gobridge/internal/testenv"
	"github.com/gobridge/gobridge/wire"
)

// The hostile side of the authkey handshake (SPEC 13, 14): every attack
// fails that Accept (or Dial) with ErrAuthentication and the listener goes
// on serving.

var hostileKey = []byte("hostile key")

// keyedListener listens on a unix socket and on tcp loopback.
func keyedListeners(t *testing.T, opts ...ConnOption) map[string]*Listener {
	out := map[string]*Listener{}
	for name, addr := range map[string]string{
		"unix": "unix:" + filepath.Join(testenv.ShortDir(t), "h.sock"),
		"tcp":  "tcp:127.0.0.1:0",
	} {
		l, err := Listen(addr, append([]ConnOption{WithAuthkey(hostileKey)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		out[name] = l
	}
	return out
}

// rawDial connects to l's address without gobridge: the test speaks the bytes.
func rawDial(t *testing.T, l *Listener) net.Conn {
	t.Helper()
	scheme, rest, _ := ParseAddress(l.Addr())
	c, err := net.Dial(map[string]string{"unix": "unix", "tcp": "tcp"}[scheme], rest)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

func readChallenge(t *testing.T, c net.Conn) []byte {
	t.Helper()
	p, err := wire.NewReader(c, 256).ReadFrame(nil)
	if err != nil || !bytes.HasPrefix(p, []byte("#CHALLENGE#{sha256}")) {
		t.Fatalf("challenge: %q, %v", p, err)
	}
	return p
}

func replyTo(challenge []byte) []byte {
	msg := challenge[len("#CHALLENGE#"):]
	m := hmac.New(sha256.New, hostileKey)
	m.Write(msg)
	return append([]byte("{sha256}"), m.Sum(nil)...)
}

func sendFrame(c net.Conn, p []byte) { wire.WriteFrame(c, p, 0) }

func stillServes(t *testing.T, l *Listener) {
	t.Helper()
	ch := acceptOne(l)
	d, err := Dial(dialCtx(t), l.Addr(), WithAuthkey(hostileKey))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	a := <-ch
	if a.err != nil {
		t.Fatal(a.err)
	}
	defer a.c.Close()
	a.c.Send("still serving")
	var got string
	if err := d.Recv(&got); err != nil || got != "still serving" {
		t.Fatalf("%q, %v", got, err)
	}
}

func TestAuthkeyHostileReplies(t *testing.T) {
	attacks := map[string]struct {
		send func(c net.Conn)
		also error // what else the error matches
	}{
		"oversized":    {func(c net.Conn) { c.Write(append([]byte{0, 0, 0x10, 0}, make([]byte, 4096)...)) }, ErrFrameTooLarge},
		"huge header":  {func(c net.Conn) { c.Write([]byte{0xff, 0xff, 0xff, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0}) }, ErrFrameTooLarge},
		"bad header":   {func(c net.Conn) { c.Write([]byte{0xff, 0xff, 0xff, 0xfe}) }, ErrBadHeader},
		"malformed":    {func(c net.Conn) { sendFrame(c, []byte("{sha256}short")) }, nil},
		"no prefix":    {func(c net.Conn) { sendFrame(c, bytes.Repeat([]byte("x"), 32)) }, nil},
		"wrong digest": {func(c net.Conn) { sendFrame(c, append([]byte("{md5}"), make([]byte, 32)...)) }, nil},
		"hang up":      {func(c net.Conn) { c.Close() }, io.EOF},
		"half a frame": {func(c net.Conn) { c.Write([]byte{0, 0, 0, 40, '{'}) }, context.DeadlineExceeded},
	}
	for tname, l := range keyedListeners(t, WithHandshakeTimeout(500*time.Millisecond)) {
		for name, at := range attacks {
			t.Run(tname+"/"+name, func(t *testing.T) {
				ch := acceptOne(l)
				c := rawDial(t, l)
				readChallenge(t, c)
				at.send(c)
				a := <-ch
				if !errors.Is(a.err, ErrAuthentication) || at.also != nil && !errors.Is(a.err, at.also) {
					t.Fatalf("accept: %v (want ErrAuthentication and %v)", a.err, at.also)
				}
				stillServes(t, l)
			})
		}
	}
}

// A reply recorded on one connection is refused on the next: each challenge
// is fresh.
func TestAuthkeyReplayedReply(t *testing.T) {
	for name, l := range keyedListeners(t) {
		t.Run(name, func(t *testing.T) {
			ch := acceptOne(l)
			first := rawDial(t, l)
			recorded := replyTo(readChallenge(t, first))
			sendFrame(first, recorded)
			r := wire.NewReader(first, 256)
			if p, err := r.ReadFrame(nil); err != nil || string(p) != "#WELCOME#" {
				t.Fatalf("%q, %v", p, err)
			}
			// Our half: challenge the listener (no check: this client trusts it).
			sendFrame(first, append([]byte("#CHALLENGE#{sha256}"), make([]byte, 40)...))
			if _, err := r.ReadFrame(nil); err != nil {
				t.Fatal(err)
			}
			sendFrame(first, []byte("#WELCOME#"))
			if a := <-ch; a.err != nil {
				t.Fatal(a.err)
			} else {
				a.c.Close()
			}

			ch = acceptOne(l)
			second := rawDial(t, l)
			if bytes.Equal(replyTo(readChallenge(t, second)), recorded) {
				t.Fatal("the same challenge twice")
			}
			sendFrame(second, recorded)
			if p, err := wire.NewReader(second, 256).ReadFrame(nil); err != nil || string(p) != "#FAILURE#" {
				t.Fatalf("%q, %v", p, err)
			}
			if a := <-ch; !errors.Is(a.err, ErrAuthentication) {
				t.Fatalf("accept of a replayed reply: %v", a.err)
			}
			stillServes(t, l)
		})
	}
}

func TestAuthkeyManyClientsAtOnce(t *testing.T) {
	for name, l := range keyedListeners(t) {
		t.Run(name, func(t *testing.T) {
			const n = 24
			var wg sync.WaitGroup
			results := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					key := hostileKey
					if i%4 == 0 {
						key = []byte("wrong")
					}
					c, err := Dial(dialCtx(t), l.Addr(), WithAuthkey(key), WithHandshakeTimeout(20*time.Second))
					if err == nil {
						err = c.Send(i)
						var back int
						if err == nil {
							err = c.Recv(&back)
						}
						if err == nil && back != i*10 {
							err = errors.New("wrong reply")
						}
						c.Close()
					}
					results[i] = err
				}()
			}
			served, refused := 0, 0
			for range n {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				c, err := l.Accept(ctx)
				cancel()
				if errors.Is(err, ErrAuthentication) {
					refused++
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				var v int
				if err := c.Recv(&v); err == nil {
					c.Send(v * 10)
				}
				c.Close()
				served++
			}
			wg.Wait()
			if served != n*3/4 || refused != n/4 {
				t.Fatalf("served %d, refused %d", served, refused)
			}
			for i, err := range results {
				if (i%4 == 0) != errors.Is(err, ErrAuthentication) || i%4 != 0 && err != nil {
					t.Errorf("client %d: %v", i, err)
				}
			}
		})
	}
}

// A listener that breaks the rules fails Dial with ErrAuthentication within
// the handshake timeout.
func TestAuthkeyHostileListeners(t *testing.T) {
	attacks := map[string]func(c net.Conn){
		"silent":          func(c net.Conn) {},
		"oversized":       func(c net.Conn) { sendFrame(c, append([]byte("#CHALLENGE#{sha256}"), make([]byte, 1000)...)) },
		"not a challenge": func(c net.Conn) { sendFrame(c, []byte("#WELCOME#")) },
		"short challenge": func(c net.Conn) { sendFrame(c, append([]byte("#CHALLENGE#"), make([]byte, 19)...)) },
		"unknown digest":  func(c net.Conn) { sendFrame(c, append([]byte("#CHALLENGE#{sha1}"), make([]byte, 40)...)) },
	}
	for name, attack := range attacks {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				attack(c)
				io.Copy(io.Discard, c)
			}()
			_, err = Dial(context.Background(), "tcp:"+ln.Addr().String(), WithAuthkey(hostileKey), WithHandshakeTimeout(300*time.Millisecond))
			if !errors.Is(err, ErrAuthentication) {
				t.Fatalf("Dial: %v", err)
			}
			if !strings.Contains(err.Error(), "dial tcp:127.0.0.1:") {
				t.Errorf("the error does not name the address: %v", err)
			}
		})
	}
}
