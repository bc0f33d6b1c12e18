package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/gobridge/gobridge/bridge"
	"github.com/gobridge/gobridge/wire"
)

// connTransports are the transports `gobridge bench transports` measures,
// each at an address made in a fresh directory. A transport whose Listen
// says ErrUnsupportedTransport is skipped with a note, so adding one here is
// all a new transport needs.
var connTransports = []struct {
	name string
	addr func(dir string) string
}{
	{"unix", func(dir string) string { return "unix:" + filepath.Join(dir, "b.sock") }},
	{"fifo", func(dir string) string { return "fifo:" + filepath.Join(dir, "b.fifo") }},
	{"shm", func(dir string) string { return fmt.Sprintf("shm:gobridge-bench-%d", os.Getpid()) }},
	{"tcp", func(dir string) string { return "tcp:127.0.0.1:0" }}, // loopback; the listener reports its port
}

const mib = 1 << 20

// asyncioTransports are the transports gobridge.asyncio runs on (a
// descriptor to wait on): their tables also have "asyncio" rows, the
// Python side awaiting on an event loop, next to the blocking ones.
var asyncioTransports = map[string]bool{"unix": true, "fifo": true, "tcp": true}

// benchTransports measures, in one run, every transport for every pairing
// (RTT median and p99, 64-byte messages/s, 1 MiB throughput) next to
// multiprocessing.Pipe, multiprocessing.Queue, a Go AF_UNIX socket carrying
// bufio-buffered frames (rawUnix) and memcpy. RTTs are compared with
// mp.Pipe's, 64-byte rates with the framed Go socket's, 1 MiB throughput with
// memcpy.
func benchTransports(ctx context.Context, o Options) ([]Result, error) {
	return benchConns(ctx, o, "")
}

// benchFIFO is the transports table for fifo: alone (every pairing, with
// the same baselines, multiprocessing.Pipe among them).
func benchFIFO(ctx context.Context, o Options) ([]Result, error) {
	return benchConns(ctx, o, "fifo")
}

// benchConns measures the transport named only, or every transport when
// only is empty.
func benchConns(ctx context.Context, o Options, only string) ([]Result, error) {
	rtts, msgs, bigs := 20000, 200000, 300
	if o.N > 0 {
		rtts, msgs = o.N, o.N
	}
	if o.Quick {
		rtts, msgs, bigs = 200, 2000, 5
	}
	dir, err := os.MkdirTemp("", "gobridge-bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	type series struct {
		name, pairing, unit string
		xs                  []float64
		rtt                 bool
	}
	var order []string
	all := map[string]*series{}
	add := func(name, pairing, unit string, rtt bool, xs ...float64) {
		k := name + "\x00" + pairing
		s := all[k]
		if s == nil {
			s = &series{name: name, pairing: pairing, unit: unit, rtt: rtt}
			all[k] = s
			order = append(order, k)
		}
		s.xs = append(s.xs, xs...)
	}
	step := func(what string) { fmt.Fprintf(o.Log, "    %s\n", what) }

	for round := 0; round < o.Rounds; round++ {
		fmt.Fprintf(o.Log, "  round %d/%d\n", round+1, o.Rounds)
		step("baselines: memcpy, framed Go AF_UNIX, multiprocessing.Pipe and Queue")
		add("memcpy", "go", "MB/s", false, memcpyRate())
		rawRTT, rawRate, rawBig, err := rawUnix(ctx, dir, rtts, msgs, bigs)
		if err != nil {
			return nil, fmt.Errorf("raw unix: %w", err)
		}
		add("go AF_UNIX framed rtt", "go-go", "us", true, rawRTT...)
		add("go AF_UNIX framed 64B", "go->go", "msg/s", false, rawRate)
		add("go AF_UNIX framed 1MiB", "go->go", "MB/s", false, rawBig)
		for _, b := range []struct{ name, mod, rtt, tput string }{
			{"mp.Pipe", "gobridge_bench", "mp-pipe-rtt", "mp-pipe-tput"},
			{"mp.Queue", "gobridge_bench_shm_conn", "mpq-rtt", "mpq-tput"},
		} {
			var s pySamples
			if err := pyModule(ctx, o, b.mod, &s, b.rtt, fmt.Sprint(rtts)); err != nil {
				return nil, err
			}
			add(b.name+" rtt", "py-py", "us", true, s.SamplesUS...)
			var r pyRate
			if err := pyModule(ctx, o, b.mod, &r, b.tput, fmt.Sprint(msgs), "64"); err != nil {
				return nil, err
			}
			add(b.name+" 64B", "py->py", "msg/s", false, r.MsgsPerS)
			if err := pyModule(ctx, o, b.mod, &r, b.tput, fmt.Sprint(bigs), fmt.Sprint(mib)); err != nil {
				return nil, err
			}
			add(b.name+" 1MiB", "py->py", "MB/s", false, r.MsgsPerS*mib/1e6)
		}
		for _, tr := range connTransports {
			if only != "" && tr.name != only {
				continue
			}
			addr := tr.addr(dir)
			l, err := bridge.Listen(addr)
			if errors.Is(err, bridge.ErrUnsupportedTransport) {
				if round == 0 {
					fmt.Fprintf(o.Log, "    %s: not available in this build, skipped\n", tr.name)
				}
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", tr.name, err)
			}
			err = func() error {
				defer l.Close()
				addr := l.Addr() // tcp: port 0 is now the port picked
				step(tr.name + ": go-go")
				samples, rate, err := goGo(ctx, l, addr, rtts, msgs)
				if err != nil {
					return err
				}
				add(tr.name+" rtt", "go-go", "us", true, samples...)
				add(tr.name+" 64B", "go->go", "msg/s", false, rate)
				if rate, err = goGoOneWay(ctx, l, addr, msgs, true); err != nil {
					return err
				}
				add(tr.name+" 64B frames", "go->go", "msg/s", false, rate)
				for _, frames := range []bool{false, true} {
					if rate, err = goGoOneWay(ctx, l, addr, msgs, frames, bridge.WithWriteBuffer(benchWriteBuffer)); err != nil {
						return err
					}
					name := tr.name + " 64B batched"
					if frames {
						name = tr.name + " 64B frames batched"
					}
					add(name, "go->go", "msg/s", false, rate)
				}
				big, err := goGoBig(ctx, l, addr, bigs)
				if err != nil {
					return err
				}
				add(tr.name+" 1MiB", "go->go", "MB/s", false, big)

				step(tr.name + ": go-python")
				if samples, err = goPyRoundTrips(ctx, o, l, addr, rtts); err != nil {
					return err
				}
				add(tr.name+" rtt", "go-py", "us", true, samples...)
				if rate, err = goToPy(ctx, o, l, addr, msgs); err != nil {
					return err
				}
				add(tr.name+" 64B", "go->py", "msg/s", false, rate)
				if rate, err = goToPySized(ctx, o, l, addr, bigs, mib); err != nil {
					return err
				}
				add(tr.name+" 1MiB", "go->py", "MB/s", false, rate)
				if rate, err = pyToGo(ctx, o, l, addr, msgs); err != nil {
					return err
				}
				add(tr.name+" 64B", "py->go", "msg/s", false, rate)
				if rate, err = pyToGo(ctx, o, l, addr, msgs, fmt.Sprint(benchWriteBuffer)); err != nil {
					return err
				}
				add(tr.name+" 64B batched", "py->go", "msg/s", false, rate)
				if rate, err = pyToGoSized(ctx, o, l, addr, bigs, mib); err != nil {
					return err
				}
				add(tr.name+" 1MiB", "py->go", "MB/s", false, rate)
				if !asyncioTransports[tr.name] {
					return nil
				}
				step(tr.name + ": go-python, the Python side on gobridge.asyncio")
				if samples, err = goPyRoundTripsRole(ctx, o, l, addr, rtts, "aecho"); err != nil {
					return err
				}
				add(tr.name+" asyncio rtt", "go-py", "us", true, samples...)
				if rate, err = goToPyRole(ctx, o, l, addr, msgs, "asink"); err != nil {
					return err
				}
				add(tr.name+" asyncio 64B", "go->py", "msg/s", false, rate)
				if rate, err = pyToGoRole(ctx, o, l, addr, msgs, "asource"); err != nil {
					return err
				}
				add(tr.name+" asyncio 64B", "py->go", "msg/s", false, rate)
				return nil
			}()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", tr.name, err)
			}
			step(tr.name + ": python-python")
			var s pySamples
			if err := pyModule(ctx, o, "gobridge_bench_shm_conn", &s, "pp-rtt", addr, fmt.Sprint(rtts)); err != nil {
				return nil, err
			}
			add(tr.name+" rtt", "py-py", "us", true, s.SamplesUS...)
			var r pyRate
			if err := pyModule(ctx, o, "gobridge_bench_shm_conn", &r, "pp-tput", addr, fmt.Sprint(msgs), "64"); err != nil {
				return nil, err
			}
			add(tr.name+" 64B", "py->py", "msg/s", false, r.MsgsPerS)
			if err := pyModule(ctx, o, "gobridge_bench_shm_conn", &r, "pp-tput", addr, fmt.Sprint(bigs), fmt.Sprint(mib)); err != nil {
				return nil, err
			}
			add(tr.name+" 1MiB", "py->py", "MB/s", false, r.MsgsPerS*mib/1e6)
		}
	}

	med := func(name, pairing string) float64 {
		if s := all[name+"\x00"+pairing]; s != nil {
			return median(s.xs)
		}
		return 0
	}
	pipeRTT := med("mp.Pipe rtt", "py-py")
	rawRate := med("go AF_UNIX framed 64B", "go->go")
	memcpy := med("memcpy", "go")
	var out []Result
	for _, k := range order {
		s := all[k]
		r := Result{Name: s.name, Pairing: s.pairing, Value: median(s.xs), Unit: s.unit}
		switch {
		case s.rtt:
			r.P99 = percentile(s.xs, 0.99)
			if s.name != "mp.Pipe rtt" {
				r.Baseline, r.Ratio = "mp.Pipe rtt py-py", r.Value/pipeRTT
			}
		case s.unit == "msg/s" && s.name != "go AF_UNIX framed 64B":
			r.Baseline, r.Ratio = "go AF_UNIX framed 64B go->go", r.Value/rawRate
		case s.unit == "MB/s" && s.name != "memcpy":
			r.Baseline, r.Ratio = "memcpy go", r.Value/memcpy
		}
		switch {
		case s.name == "shm rtt" && s.pairing == "go-py":
			r.Target = "<= 0.10x"
		case s.name == "shm 64B" && s.pairing == "go->go":
			r.Target = ">= 1.00x"
		case s.name == "shm 64B frames batched":
			r.Target = ">= 1.00x (like for like)"
		case s.name == "shm 1MiB" && s.pairing == "go->py":
			r.Target = ">= 0.50x"
		}
		out = append(out, r)
	}
	return out, nil
}

// memcpyRate is plain copy bandwidth in MB/s of 1 MiB copies, the size the
// 1 MiB figures move (so both see the same caches).
func memcpyRate() float64 {
	src, dst := make([]byte, mib), make([]byte, mib)
	for i := range src {
		src[i] = byte(i)
	}
	copy(dst, src) // fault the pages in
	const n = 2000
	t := time.Now()
	for i := 0; i < n; i++ {
		copy(dst, src)
	}
	return n * mib / 1e6 / since(t)
}

// rawUnix is the socket baseline: a plain Go AF_UNIX stream socket carrying
// frames of SPEC section 2 (4-byte length, then the payload) with no msgpack
// and no Conn, each side buffered with bufio, as a hand-written Go program
// would do it. It measures 64-byte round trips (one frame each way, flushed),
// 64-byte messages/s (the writer writes a header and a payload per message
// into a 64 KiB bufio.Writer; the reader takes each header from a 64 KiB
// bufio.Reader and reads that message into its buffer), and 1 MiB messages.
// Both rates run until the reader acknowledges the last message.
func rawUnix(ctx context.Context, dir string, rtts, msgs, bigs int) ([]float64, float64, float64, error) {
	path := filepath.Join(dir, "raw.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, 0, 0, err
	}
	defer ln.Close()
	errc := make(chan error, 1)
	go func() { errc <- rawUnixPeer(ln, rtts+rtts/10, msgs, bigs) }()
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, 0, 0, err
	}
	defer c.Close()
	defer context.AfterFunc(ctx, func() { c.Close() })()
	fail := func(err error) ([]float64, float64, float64, error) {
		c.Close()
		if perr := <-errc; perr != nil && !errors.Is(perr, io.EOF) && !errors.Is(perr, net.ErrClosed) {
			return nil, 0, 0, fmt.Errorf("%w (peer: %v)", err, perr)
		}
		return nil, 0, 0, err
	}
	br, bw := bufio.NewReaderSize(c, 64<<10), bufio.NewWriterSize(c, 64<<10)
	msg := make([]byte, 64)
	samples := make([]float64, 0, rtts)
	for i := 0; i < rtts+rtts/10; i++ {
		t := time.Now()
		if err := writeRawFrame(bw, msg); err != nil {
			return fail(err)
		}
		if err := bw.Flush(); err != nil {
			return fail(err)
		}
		if _, err := readRawFrame(br, msg); err != nil {
			return fail(err)
		}
		if i >= rtts/10 {
			samples = append(samples, float64(time.Since(t).Nanoseconds())/1e3)
		}
	}
	stream := func(p []byte, n int) (float64, error) {
		t := time.Now()
		for i := 0; i < n; i++ {
			if err := writeRawFrame(bw, p); err != nil {
				return 0, err
			}
		}
		if err := bw.Flush(); err != nil {
			return 0, err
		}
		if _, err := readRawFrame(br, msg); err != nil { // the reader's acknowledgement
			return 0, err
		}
		return since(t), nil
	}
	d, err := stream(msg, msgs)
	if err != nil {
		return fail(err)
	}
	rate := float64(msgs) / d
	if d, err = stream(make([]byte, mib), bigs); err != nil {
		return fail(err)
	}
	bigRate := float64(bigs) * mib / 1e6 / d
	return samples, rate, bigRate, <-errc
}

// rawUnixPeer is rawUnix's other end: it echoes rtts frames, then receives
// msgs 64-byte and bigs 1 MiB frames, acknowledging each batch with a frame.
func rawUnixPeer(ln net.Listener, rtts, msgs, bigs int) error {
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	br, bw := bufio.NewReaderSize(c, 64<<10), bufio.NewWriterSize(c, 64<<10)
	buf := make([]byte, mib)
	for i := 0; i < rtts; i++ {
		n, err := readRawFrame(br, buf)
		if err != nil {
			return err
		}
		if err := writeRawFrame(bw, buf[:n]); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	}
	for _, batch := range []struct{ n, size int }{{msgs, 64}, {bigs, mib}} {
		for i := 0; i < batch.n; i++ {
			n, err := readRawFrame(br, buf)
			if err != nil {
				return err
			}
			if n != batch.size {
				return fmt.Errorf("raw unix: frame %d has %d bytes, want %d", i, n, batch.size)
			}
		}
		if err := writeRawFrame(bw, []byte("ok")); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// writeRawFrame buffers p's SPEC section 2 header (wire.AppendHeader) and p.
func writeRawFrame(w *bufio.Writer, p []byte) error {
	var hdr [4]byte
	if _, err := w.Write(wire.AppendHeader(hdr[:0], int64(len(p)))); err != nil {
		return err
	}
	_, err := w.Write(p)
	return err
}

// readRawFrame reads one frame into buf and returns its length.
func readRawFrame(r *bufio.Reader, buf []byte) (int, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, err
	}
	m, _, err := wire.ParseHeader(hdr[:]) // the baseline's frames are all short: 4-byte headers
	if err != nil {
		return 0, err
	}
	n := int(m)
	if n > len(buf) {
		return 0, fmt.Errorf("raw unix: frame of %d bytes, buffer of %d", n, len(buf))
	}
	_, err = io.ReadFull(r, buf[:n])
	return n, err
}

// benchWriteBuffer is the batch size of the batched rows: the framed
// socket baseline's bufio.Writer size.
const benchWriteBuffer = 64 << 10

// goGoOneWay sends n 64-byte messages between two goroutines, from a Conn
// made with dialOpts: msgpack Send/Recv, or with frames SendBytes and
// RecvBytesInto (no msgpack, no allocation: the like-for-like of the framed
// socket baseline). The sender's wait for the receiver's reply ends the
// timing (and, WithWriteBuffer, flushes the last batch); msg/s.
func goGoOneWay(ctx context.Context, l *bridge.Listener, addr string, n int, frames bool, dialOpts ...bridge.ConnOption) (rate float64, err error) {
	err = goPair(ctx, l, addr, func(c *bridge.Conn) error {
		msg := make([]byte, len(payload64)+2)
		var err error
		t := time.Now()
		for i := 0; i < n && err == nil; i++ {
			if frames {
				err = c.SendBytes(msg)
			} else {
				err = c.Send(payload64)
			}
		}
		if err == nil {
			_, err = c.RecvBytes()
		}
		rate = float64(n) / since(t)
		return err
	}, func(c *bridge.Conn) error {
		buf := make([]byte, 64)
		var v []byte // reused, as drain's: Unmarshal decodes into its room
		for i := 0; i < n; i++ {
			if frames {
				p, err := c.RecvBytesInto(context.Background(), buf)
				if err != nil {
					return err
				}
				if len(p) != len(payload64)+2 {
					return fmt.Errorf("frame %d has %d bytes", i, len(p))
				}
				continue
			}
			if err := c.Recv(&v); err != nil {
				return err
			}
			if len(v) != len(payload64) {
				return fmt.Errorf("message %d has %d bytes", i, len(v))
			}
		}
		return c.SendBytes([]byte("done"))
	}, dialOpts...)
	return rate, err
}

// goGoBig sends n 1 MiB messages between two goroutines; MB/s.
func goGoBig(ctx context.Context, l *bridge.Listener, addr string, n int) (rate float64, err error) {
	err = goPair(ctx, l, addr, func(c *bridge.Conn) error {
		buf := make([]byte, 2*mib)
		for i := 0; i < n; i++ {
			if _, err := c.RecvBytesInto(ctx, buf); err != nil {
				return err
			}
		}
		return c.SendBytes([]byte("done"))
	}, func(c *bridge.Conn) error {
		big := make([]byte, mib)
		var err error
		t := time.Now()
		for i := 0; i < n && err == nil; i++ {
			err = c.SendBytesContext(ctx, big)
		}
		if err == nil {
			_, err = c.RecvBytesContext(ctx)
		}
		rate = float64(n) * mib / 1e6 / since(t)
		return err
	})
	return rate, err
}

// acceptShmConnPeer starts a role of gobridge_bench_shm_conn that connects
// to addr, and accepts it.
func acceptShmConnPeer(ctx context.Context, o Options, l *bridge.Listener, args ...string) (*bridge.Conn, func() error, error) {
	return acceptModulePeer(ctx, o, l, "gobridge_bench_shm_conn", args...)
}

// goToPySized sends n payloads of size bytes (SendBytes from one buffer) to a
// Python receiver that receives into one buffer (recv_bytes_into); MB/s.
func goToPySized(ctx context.Context, o Options, l *bridge.Listener, addr string, n, size int) (float64, error) {
	c, wait, err := acceptShmConnPeer(ctx, o, l, "sink-into", addr, fmt.Sprint(n), fmt.Sprint(size))
	if err != nil {
		return 0, err
	}
	p := make([]byte, size)
	t := time.Now()
	for i := 0; i < n && err == nil; i++ {
		err = c.SendBytesContext(ctx, p)
	}
	var done string
	if err == nil {
		err = c.RecvContext(ctx, &done)
	}
	rate := float64(n) * float64(size) / 1e6 / since(t)
	if werr := wait(); err == nil && werr != nil {
		err = fmt.Errorf("python sink: %w", werr)
	}
	return rate, err
}

// pyToGoSized receives n payloads of size bytes from Python's send_bytes into
// one reused buffer; MB/s.
func pyToGoSized(ctx context.Context, o Options, l *bridge.Listener, addr string, n, size int) (float64, error) {
	c, wait, err := acceptShmConnPeer(ctx, o, l, "source-bytes", addr, fmt.Sprint(n), fmt.Sprint(size))
	if err != nil {
		return 0, err
	}
	buf := make([]byte, size+16)
	var t time.Time
	for i := 0; i < n && err == nil; i++ {
		_, err = c.RecvBytesInto(ctx, buf)
		if i == 0 {
			t = time.Now()
		}
	}
	rate := float64(n-1) * float64(size) / 1e6 / since(t)
	if err == nil {
		err = c.SendContext(ctx, "done")
	}
	if werr := wait(); err == nil && werr != nil {
		err = fmt.Errorf("python source: %w", werr)
	}
	return rate, err
}
