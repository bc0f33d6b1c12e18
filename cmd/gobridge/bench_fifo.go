package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gobridge/gobridge/bridge"
)

// benchFIFO measures fifo: connections Go<->Python (round trips, 64-byte
// messages/s both ways) next to multiprocessing.Pipe Python<->Python, in
// this run. The Python peers are gobridge._bench's echo/sink/source roles,
// which dial the fifo: address as they dial unix: ones.
func benchFIFO(ctx context.Context, o benchOptions) ([]benchResult, error) {
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
	addr := "fifo:" + filepath.Join(dir, "b.fifo")
	l, err := bridge.Listen(addr)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	var pipeRTT, goPyRTT, pipeRate, goPyRate, pyGoRate []float64
	for round := 0; round < o.Rounds; round++ {
		fmt.Fprintf(o.Log, "  round %d/%d\n", round+1, o.Rounds)
		var s pySamples
		if err := pyBench(ctx, o, &s, "mp-pipe-rtt", fmt.Sprint(rtts)); err != nil {
			return nil, err
		}
		pipeRTT = append(pipeRTT, s.SamplesUS...)
		var r pyRate
		if err := pyBench(ctx, o, &r, "mp-pipe-tput", fmt.Sprint(msgs), "64"); err != nil {
			return nil, err
		}
		pipeRate = append(pipeRate, r.MsgsPerS)
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
		if rate, err = pyToGo(ctx, o, l, addr, msgs); err != nil {
			return nil, err
		}
		pyGoRate = append(pyGoRate, rate)
	}
	pipeMed, pipeRateMed := median(pipeRTT), median(pipeRate)
	tput := func(pairing string, xs []float64) benchResult {
		return benchResult{Name: "fifo 64B", Pairing: pairing, Value: median(xs), Unit: "msg/s",
			Baseline: "mp.Pipe py->py", Ratio: median(xs) / pipeRateMed}
	}
	return []benchResult{
		{Name: "mp.Pipe rtt", Pairing: "py-py", Value: pipeMed, P99: percentile(pipeRTT, 0.99), Unit: "us"},
		{Name: "fifo rtt", Pairing: "go-py", Value: median(goPyRTT), P99: percentile(goPyRTT, 0.99), Unit: "us",
			Baseline: "mp.Pipe py-py", Ratio: median(goPyRTT) / pipeMed},
		{Name: "mp.Pipe 64B", Pairing: "py->py", Value: pipeRateMed, Unit: "msg/s"},
		tput("go->py", goPyRate),
		tput("py->go", pyGoRate),
	}, nil
}
