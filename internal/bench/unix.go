package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gobridge/gobridge/bridge"
)

// payload64 encodes to a 64-byte msgpack payload (bin8 header + 62 bytes).
var payload64 = make([]byte, 62)

type pySamples struct {
	SamplesUS []float64 `json:"samples_us"`
}

type pyRate struct {
	MsgsPerS float64 `json:"msgs_per_s"`
}

// benchUnix measures round trips and 64-byte throughput over unix sockets for
// Go<->Python and Go<->Go, next to Python<->Python multiprocessing.Pipe and
// Python<->Python gobridge, all in this run.
func benchUnix(ctx context.Context, o Options) ([]Result, error) {
	rtts, msgs := 20000, 200000
	if o.N > 0 {
		rtts, msgs = o.N, o.N
	}
	if o.Quick {
		rtts, msgs = 200, 2000
	}
	dir, err := os.MkdirTemp("", "gobridge-bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	addr := "unix:" + filepath.Join(dir, "b.sock")
	l, err := bridge.Listen(addr)
	if err != nil {
		return nil, err
	}
	defer l.Close()

	var pipeRTT, goPyRTT, goGoRTT, pyPyRTT []float64
	var pipeRate, goPyRate, pyGoRate, goGoRate, pyPyRate []float64
	for round := 0; round < o.Rounds; round++ {
		fmt.Fprintf(o.Log, "  round %d/%d\n", round+1, o.Rounds)
		var s pySamples
		if err := pyBench(ctx, o, &s, "mp-pipe-rtt", fmt.Sprint(rtts)); err != nil {
			return nil, err
		}
		pipeRTT = append(pipeRTT, s.SamplesUS...)
		if err := pyBench(ctx, o, &s, "gb-pipe-rtt", fmt.Sprint(rtts)); err != nil {
			return nil, err
		}
		pyPyRTT = append(pyPyRTT, s.SamplesUS...)
		var r pyRate
		if err := pyBench(ctx, o, &r, "mp-pipe-tput", fmt.Sprint(msgs), "64"); err != nil {
			return nil, err
		}
		pipeRate = append(pipeRate, r.MsgsPerS)
		if err := pyBench(ctx, o, &r, "gb-pipe-tput", fmt.Sprint(msgs), "64"); err != nil {
			return nil, err
		}
		pyPyRate = append(pyPyRate, r.MsgsPerS)

		samples, err := goPyRoundTrips(ctx, o, l, addr, rtts)
		if err != nil {
			return nil, err
		}
		goPyRTT = append(goPyRTT, samples...)
		rate, err := goToPy(ctx, o, l, addr, msgs)
		if err != nil {
			return nil, err
		}
		goPyRate = append(goPyRate, rate)
		rate, err = pyToGo(ctx, o, l, addr, msgs)
		if err != nil {
			return nil, err
		}
		pyGoRate = append(pyGoRate, rate)
		samples, rate, err = goGo(ctx, l, addr, rtts, msgs)
		if err != nil {
			return nil, err
		}
		goGoRTT = append(goGoRTT, samples...)
		goGoRate = append(goGoRate, rate)
	}
	pipeMed, pipeRateMed := median(pipeRTT), median(pipeRate)
	lat := func(pairing string, xs []float64, target string) Result {
		return Result{Name: "unix rtt", Pairing: pairing, Value: median(xs), P99: percentile(xs, 0.99), Unit: "us",
			Baseline: "mp.Pipe rtt py-py", Ratio: median(xs) / pipeMed, Target: target}
	}
	tput := func(pairing string, xs []float64, target string) Result {
		return Result{Name: "unix 64B", Pairing: pairing, Value: median(xs), Unit: "msg/s",
			Baseline: "mp.Pipe 64B py->py", Ratio: median(xs) / pipeRateMed, Target: target}
	}
	return []Result{
		{Name: "mp.Pipe rtt", Pairing: "py-py", Value: pipeMed, P99: percentile(pipeRTT, 0.99), Unit: "us"},
		lat("go-py", goPyRTT, "<= 0.90x"),
		lat("go-go", goGoRTT, ""),
		lat("py-py", pyPyRTT, ""),
		{Name: "mp.Pipe 64B", Pairing: "py->py", Value: pipeRateMed, Unit: "msg/s"},
		tput("go->py", goPyRate, ">= 2x"),
		tput("py->go", pyGoRate, ""),
		tput("go->go", goGoRate, ""),
		tput("py->py", pyPyRate, ""),
	}, nil
}

func goPyRoundTrips(ctx context.Context, o Options, l *bridge.Listener, addr string, n int) ([]float64, error) {
	return goPyRoundTripsRole(ctx, o, l, addr, n, "echo")
}

// goPyRoundTripsRole is goPyRoundTrips against the Python echo role named
// (echo, or aecho: the same over gobridge.asyncio).
func goPyRoundTripsRole(ctx context.Context, o Options, l *bridge.Listener, addr string, n int, role string) ([]float64, error) {
	c, wait, err := acceptPeer(ctx, o, l, role, addr)
	if err != nil {
		return nil, err
	}
	samples, err := roundTrips(ctx, c, n)
	if werr := wait(); err == nil && werr != nil {
		err = fmt.Errorf("python echo: %w", werr)
	}
	return samples, err
}

// roundTrips sends a 64-byte message and waits for it to come back, n times
// after a warm-up, and returns each round trip in microseconds.
//
// The loops call Send/Recv, not the ctx variants: a cancellable ctx costs a
// context.AfterFunc per call, which would be measured instead of the
// transport. Cancelling ctx closes the Conn, which ends the loop just as well.
func roundTrips(ctx context.Context, c *bridge.Conn, n int) ([]float64, error) {
	defer context.AfterFunc(ctx, func() { c.Close() })()
	samples := make([]float64, 0, n)
	var v []byte
	for i := 0; i < n+n/10; i++ {
		t := time.Now()
		if err := c.Send(payload64); err != nil {
			return nil, err
		}
		if err := c.Recv(&v); err != nil {
			return nil, err
		}
		if i >= n/10 {
			samples = append(samples, float64(time.Since(t).Nanoseconds())/1e3)
		}
	}
	return samples, nil
}

func goToPy(ctx context.Context, o Options, l *bridge.Listener, addr string, n int) (float64, error) {
	return goToPyRole(ctx, o, l, addr, n, "sink")
}

// goToPyRole is goToPy into the Python sink role named (sink, or asink:
// gobridge.asyncio).
func goToPyRole(ctx context.Context, o Options, l *bridge.Listener, addr string, n int, role string) (float64, error) {
	c, wait, err := acceptPeer(ctx, o, l, role, addr, fmt.Sprint(n))
	if err != nil {
		return 0, err
	}
	defer context.AfterFunc(ctx, func() { c.Close() })()
	t := time.Now()
	for i := 0; i < n && err == nil; i++ {
		err = c.Send(payload64)
	}
	var done string
	if err == nil {
		err = c.Recv(&done)
	}
	rate := float64(n) / since(t)
	if werr := wait(); err == nil && werr != nil {
		err = fmt.Errorf("python sink: %w", werr)
	}
	return rate, err
}

func pyToGo(ctx context.Context, o Options, l *bridge.Listener, addr string, n int, batch ...string) (float64, error) {
	return pyToGoRole(ctx, o, l, addr, n, "source", batch...)
}

// pyToGoRole is pyToGo from the Python source role named (source, or
// asource: gobridge.asyncio).
func pyToGoRole(ctx context.Context, o Options, l *bridge.Listener, addr string, n int, role string, batch ...string) (float64, error) {
	c, wait, err := acceptPeer(ctx, o, l, append([]string{role, addr, fmt.Sprint(n), "64"}, batch...)...)
	if err != nil {
		return 0, err
	}
	rate, err := drain(ctx, c, n)
	if err == nil {
		err = c.Send("done")
	}
	if werr := wait(); err == nil && werr != nil {
		err = fmt.Errorf("python source: %w", werr)
	}
	return rate, err
}

// drain receives n messages and returns the rate from the first to the last.
func drain(ctx context.Context, c *bridge.Conn, n int) (float64, error) {
	defer context.AfterFunc(ctx, func() { c.Close() })()
	var v []byte
	var t time.Time
	for i := 0; i < n; i++ {
		if err := c.Recv(&v); err != nil {
			return 0, err
		}
		if i == 0 {
			t = time.Now()
		}
	}
	return float64(n-1) / since(t), nil
}

// goPair dials addr (with dialOpts) from a goroutine that runs peer on its
// Conn, accepts that connection and runs main on it: the shape of every
// Go->Go measurement. Both Conns close when ctx ends. It returns main's
// error, or else peer's.
func goPair(ctx context.Context, l *bridge.Listener, addr string, peer, main func(c *bridge.Conn) error, dialOpts ...bridge.ConnOption) error {
	errc := make(chan error, 1)
	go func() {
		c, err := bridge.Dial(ctx, addr, dialOpts...)
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		defer context.AfterFunc(ctx, func() { c.Close() })()
		errc <- peer(c)
	}()
	c, err := l.Accept(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	defer context.AfterFunc(ctx, func() { c.Close() })()
	if err = main(c); err != nil {
		c.Close() // a peer waiting for main's reply must not wait forever
	}
	if perr := <-errc; err == nil {
		err = perr
	}
	return err
}

// goGo measures round trips and throughput between two goroutines over the
// same transport.
func goGo(ctx context.Context, l *bridge.Listener, addr string, rtts, msgs int) (samples []float64, rate float64, err error) {
	err = goPair(ctx, l, addr, func(c *bridge.Conn) error {
		for { // echo the round trips, then sink the stream
			var v []byte
			if err := c.Recv(&v); err != nil {
				return err
			}
			if len(v) == 0 {
				break
			}
			c.Send(v)
		}
		if _, err := drain(ctx, c, msgs); err != nil {
			return err
		}
		return c.Send("done")
	}, func(c *bridge.Conn) error {
		var err error
		if samples, err = roundTrips(ctx, c, rtts); err != nil {
			return err
		}
		c.Send([]byte{})
		t := time.Now()
		for i := 0; i < msgs && err == nil; i++ {
			err = c.Send(payload64)
		}
		var done string
		if err == nil {
			err = c.Recv(&done)
		}
		rate = float64(msgs) / since(t)
		return err
	})
	return samples, rate, err
}
