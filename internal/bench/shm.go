package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gobridge/gobridge/bridge/shm"
)

// benchShm measures copy bandwidth through a tagged segment, Go->Python and
// Python->Go, for 1 MiB and 64 MiB blocks, next to a plain memory copy (Go's
// copy and Python's memoryview assignment) of the same size in the same run.
//
// A transfer is two copies: the writer copies its block into the segment, the
// reader copies it out into its own buffer. Each side times its own copy;
// the transfer's bandwidth is size / (write time + read time). The
// line-based handshake that tells the reader the block is there is not
// counted: it is the cost of the message transport, benchmarked elsewhere.
// The target is at least 0.5x memcpy, which is what two copies at memcpy
// speed give; the single copies are reported too.
func benchShm(ctx context.Context, o Options) ([]Result, error) {
	type block struct {
		name  string
		size  int
		iters int
	}
	blocks := []block{{"1MiB", 1 << 20, 200}, {"64MiB", 64 << 20, 8}}
	if o.Quick {
		blocks = []block{{"1MiB", 1 << 20, 5}, {"64MiB", 64 << 20, 1}}
	}
	if o.N > 0 {
		for i := range blocks {
			blocks[i].iters = o.N
		}
	}
	var out []Result
	for _, b := range blocks {
		fmt.Fprintf(o.Log, "  shm %s\n", b.name)
		rs, err := benchShmBlock(ctx, o, b.name, b.size, b.iters*max(o.Rounds, 1))
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

func benchShmBlock(ctx context.Context, o Options, name string, size, iters int) ([]Result, error) {
	tag := fmt.Sprintf("gobridge-bench-%d", os.Getpid())
	m, err := shm.Open(tag, size, shm.AccessWrite, shm.WithCreateOnly())
	if err != nil {
		return nil, err
	}
	defer m.Close()
	seg := m.Bytes()
	src := make([]byte, size)
	dst := make([]byte, size)
	for i := range src {
		src[i] = byte(i)
	}
	copy(dst, src) // fault both in

	cmd := pyCommand(ctx, o, "gobridge_bench_shm", tag, strconv.Itoa(size))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer cmd.Wait()
	defer stdin.Close()
	rd := bufio.NewReader(stdout)
	ask := func(c string) (time.Duration, error) {
		if _, err := fmt.Fprintln(stdin, c); err != nil {
			return 0, fmt.Errorf("python: %w", err)
		}
		line, err := rd.ReadString('\n')
		if err != nil {
			return 0, fmt.Errorf("python: %w", err)
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
		return time.Duration(ns), err
	}
	timeCopy := func(d, s []byte) time.Duration {
		t0 := time.Now()
		copy(d, s)
		return time.Since(t0)
	}
	// Warm up both sides once (page tables, caches, the interpreter).
	copy(seg, src)
	for _, c := range []string{"r", "w", "m"} {
		if _, err := ask(c); err != nil {
			return nil, err
		}
	}
	copy(dst, seg)

	gbps := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e9 }
	var goPy, pyGo, goMem, pyMem []float64
	var goW, pyR, pyW, goR []float64 // the single copies
	for i := 0; i < iters; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		tw := timeCopy(seg, src)
		tr, err := ask("r")
		if err != nil {
			return nil, err
		}
		goPy = append(goPy, gbps(tw+tr))
		goW, pyR = append(goW, gbps(tw)), append(pyR, gbps(tr))

		tw, err = ask("w")
		if err != nil {
			return nil, err
		}
		tr = timeCopy(dst, seg)
		pyGo = append(pyGo, gbps(tw+tr))
		pyW, goR = append(pyW, gbps(tw)), append(goR, gbps(tr))

		goMem = append(goMem, gbps(timeCopy(dst, src)))
		tm, err := ask("m")
		if err != nil {
			return nil, err
		}
		pyMem = append(pyMem, gbps(tm))
	}
	fmt.Fprintln(stdin, "q")
	base := median(goMem)
	res := func(pairing string, xs []float64, target string) Result {
		r := Result{Name: "shm copy " + name, Pairing: pairing, Value: median(xs), Unit: "GB/s"}
		if target != "-" {
			r.Baseline, r.Ratio, r.Target = "shm copy "+name+" Go memcpy", median(xs)/base, target
		}
		return r
	}
	return []Result{
		res("Go memcpy", goMem, "-"),
		res("Python memcpy", pyMem, "-"),
		res("Go->Python", goPy, ">=0.5x"),
		res("Python->Go", pyGo, ">=0.5x"),
		// The single copies: what a reader that uses the mapping in place
		// (memoryview, numpy.frombuffer, Bytes) pays is the writer's copy.
		res("Go->segment", goW, ""),
		res("segment->Python", pyR, ""),
		res("Python->segment", pyW, ""),
		res("segment->Go", goR, ""),
	}, nil
}
