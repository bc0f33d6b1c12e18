package bridge

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"testing"

	"github.com/gobridge/gobridge/internal/testenv"
)

// benchPair returns two connected duplex Conns over a transport; opts
// configure the first.
func benchPair(b *testing.B, transport string, opts ...ConnOption) (*Conn, *Conn) {
	switch transport {
	case "socketpair":
		x, y, err := Pipe(true, opts...) // both ends: Pipe has no other way
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { x.Close(); y.Close() })
		return x, y
	case "unix", "shm":
		addr := filepath.Join(testenv.ShortDir(b), "b.sock")
		if transport == "shm" {
			addr = "shm:" + shmName(b)
		}
		l, err := Listen(addr)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Close() })
		ch := make(chan *Conn, 1)
		go func() { c, _ := l.Accept(context.Background()); ch <- c }()
		x, err := Dial(context.Background(), l.Addr(), opts...)
		if err != nil {
			b.Fatal(err)
		}
		y := <-ch
		b.Cleanup(func() { x.Close(); y.Close() })
		return x, y
	}
	b.Fatalf("unknown transport %s", transport)
	return nil, nil
}

// BenchmarkRoundTrip: a 64-byte message there and back (ns/op is the RTT).
func BenchmarkRoundTrip(b *testing.B) {
	for _, tr := range []string{"socketpair", "unix", "shm"} {
		b.Run(tr, func(b *testing.B) {
			x, y := benchPair(b, tr)
			go func() {
				for {
					p, err := y.RecvBytes()
					if err != nil || y.SendBytes(p) != nil {
						return
					}
				}
			}()
			msg := make([]byte, 64)
			b.SetBytes(64)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				x.SendBytes(msg)
				if _, err := x.RecvBytes(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSend64: one-way 64-byte messages (Send/Recv with msgpack), the
// figure `gobridge bench` compares with multiprocessing.Pipe.
func BenchmarkSend64(b *testing.B) {
	msg := make([]byte, 62) // a 64-byte msgpack payload
	var v []byte
	benchOneWay64(b, func(x *Conn) error { return x.Send(msg) }, func(y *Conn) error { return y.Recv(&v) })
}

// BenchmarkRawUnix64: the floor: 64-byte writes on a plain Go AF_UNIX socket.
func BenchmarkRawUnix64(b *testing.B) {
	x, y := benchPair(b, "unix")
	xs, ys := x.s.(net.Conn), y.s.(net.Conn)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for n := 0; n < 68*b.N; {
			k, err := ys.Read(buf)
			if err != nil {
				return
			}
			n += k
		}
	}()
	msg := make([]byte, 68)
	b.SetBytes(64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		xs.Write(msg)
	}
	<-done
}

// BenchmarkRawUnixBufio64: what BenchmarkSendBytes64Batched is measured
// against: 64-byte frames written through a 64 KiB bufio.Writer on a plain
// Go AF_UNIX socket and read through a bufio.Reader, header then payload,
// as gobridge bench's "go AF_UNIX framed" baseline does. No Conn, no locks.
func BenchmarkRawUnixBufio64(b *testing.B) {
	x, y := benchPair(b, "unix")
	br := bufio.NewReaderSize(y.s.(net.Conn), 64<<10)
	bw := bufio.NewWriterSize(x.s.(net.Conn), 64<<10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var hdr [4]byte
		buf := make([]byte, 64)
		for i := 0; i < b.N; i++ {
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				return
			}
			if _, err := io.ReadFull(br, buf[:binary.BigEndian.Uint32(hdr[:])]); err != nil {
				return
			}
		}
	}()
	msg := make([]byte, 64)
	hdr := binary.BigEndian.AppendUint32(nil, 64)
	b.SetBytes(64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bw.Write(hdr)
		bw.Write(msg)
	}
	bw.Flush()
	<-done
}

// BenchmarkSendBytes64: one-way 64-byte frames (SendBytes/RecvBytesInto, no
// msgpack, no allocation): what the transport and the framing cost.
func BenchmarkSendBytes64(b *testing.B) {
	msg, buf := make([]byte, 64), make([]byte, 64)
	benchOneWay64(b, func(x *Conn) error { return x.SendBytes(msg) }, func(y *Conn) error {
		_, err := y.RecvBytesInto(context.Background(), buf)
		return err
	})
}

// BenchmarkSendBytes64Batched is BenchmarkSendBytes64 with the sender made
// WithWriteBuffer(64 KiB): the like-for-like of a Go program writing frames
// through a bufio.Writer (BenchmarkRawUnix64 writes each one).
func BenchmarkSendBytes64Batched(b *testing.B) {
	msg, buf := make([]byte, 64), make([]byte, 64)
	benchOneWay64(b, func(x *Conn) error { return x.SendBytes(msg) }, func(y *Conn) error {
		_, err := y.RecvBytesInto(context.Background(), buf)
		return err
	}, WithWriteBuffer(64<<10))
}

// benchOneWay64 runs send b.N times on one end of each transport (made with
// opts) while a goroutine runs recv as often on the other.
func benchOneWay64(b *testing.B, send, recv func(*Conn) error, opts ...ConnOption) {
	for _, tr := range []string{"socketpair", "unix", "shm"} {
		b.Run(tr, func(b *testing.B) {
			x, y := benchPair(b, tr, opts...)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 0; i < b.N; i++ {
					if recv(y) != nil {
						return
					}
				}
			}()
			b.SetBytes(64)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := send(x); err != nil {
					b.Fatal(err)
				}
			}
			if err := x.Flush(); err != nil {
				b.Fatal(err)
			}
			<-done
		})
	}
}
