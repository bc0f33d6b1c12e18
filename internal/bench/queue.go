package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
	"unsafe"

	"github.com/gobridge/gobridge/bridge/mp"
	"golang.org/x/sys/unix"
)

// benchQueue measures named-queue throughput (64-byte messages) and put->get
// latency Go->Python and Python->Go, next to multiprocessing.Queue
// Python->Python (a forked producer, as multiprocessing does) and gobridge's
// Queue Python->Python, all in this run. Throughput is timed by the
// consumer from its first message to its last; latency is the consumer's
// CLOCK_MONOTONIC on return from get minus the producer's just before put,
// with one message every 200 us so the consumer is asleep when it arrives
// (internal/bench/python/gobridge_bench_queue.py does the Python roles the same way).
// Beside them, the floor under that latency: a bare futex wake-up from idle,
// for each pairing of waker and sleeper (wake.go).
func benchQueue(ctx context.Context, o Options) ([]Result, error) {
	msgs, lats := 200000, 5000
	if o.N > 0 {
		msgs, lats = o.N, o.N
	}
	if o.Quick {
		msgs, lats = 2000, 200
	}
	const pace = 200 // microseconds between latency messages
	var mpRate, gbPyRate, goPyRate, pyGoRate []float64
	var mpLat, gbPyLat, goPyLat, pyGoLat []float64
	wakeLat := map[string][]float64{}
	for round := 0; round < max(o.Rounds, 1); round++ {
		fmt.Fprintf(o.Log, "  round %d/%d\n", round+1, max(o.Rounds, 1))
		var r pyRate
		if err := pyQueueBench(ctx, o, &r, "mp-tput", fmt.Sprint(msgs), "64"); err != nil {
			return nil, err
		}
		mpRate = append(mpRate, r.MsgsPerS)
		if err := pyQueueBench(ctx, o, &r, "gb-tput", fmt.Sprint(msgs), "64"); err != nil {
			return nil, err
		}
		gbPyRate = append(gbPyRate, r.MsgsPerS)
		var s pySamples
		if err := pyQueueBench(ctx, o, &s, "mp-lat", fmt.Sprint(lats), fmt.Sprint(pace)); err != nil {
			return nil, err
		}
		mpLat = append(mpLat, s.SamplesUS...)
		if err := pyQueueBench(ctx, o, &s, "gb-lat", fmt.Sprint(lats), fmt.Sprint(pace)); err != nil {
			return nil, err
		}
		gbPyLat = append(gbPyLat, s.SamplesUS...)

		rate, err := queueGoToPy(ctx, o, msgs)
		if err != nil {
			return nil, err
		}
		goPyRate = append(goPyRate, rate)
		rate, err = queuePyToGo(ctx, o, msgs)
		if err != nil {
			return nil, err
		}
		pyGoRate = append(pyGoRate, rate)
		samples, err := queueLatGoToPy(ctx, o, lats, pace)
		if err != nil {
			return nil, err
		}
		goPyLat = append(goPyLat, samples...)
		samples, err = queueLatPyToGo(ctx, o, lats, pace)
		if err != nil {
			return nil, err
		}
		pyGoLat = append(pyGoLat, samples...)
		for _, pairing := range wakePairings {
			samples, err := wakeFloor(ctx, o, pairing, lats, pace*time.Microsecond)
			if err != nil {
				return nil, fmt.Errorf("wake floor %s: %w", pairing, err)
			}
			wakeLat[pairing] = append(wakeLat[pairing], samples...)
		}
	}
	mpRateMed, mpLatMed := median(mpRate), median(mpLat)
	tput := func(pairing string, xs []float64, target string) Result {
		return Result{Name: "queue 64B", Pairing: pairing, Value: median(xs), Unit: "msg/s",
			Baseline: "mp.Queue 64B py->py", Ratio: median(xs) / mpRateMed, Target: target}
	}
	lat := func(pairing string, xs []float64, target string) Result {
		return Result{Name: "queue put->get", Pairing: pairing, Value: median(xs), P99: percentile(xs, 0.99), Unit: "us",
			Baseline: "mp.Queue put->get py->py", Ratio: median(xs) / mpLatMed, Target: target}
	}
	out := []Result{
		{Name: "mp.Queue 64B", Pairing: "py->py", Value: mpRateMed, Unit: "msg/s"},
		tput("go->py", goPyRate, ">= 2x"),
		tput("py->go", pyGoRate, ">= 2x"),
		tput("py->py", gbPyRate, ""),
		{Name: "mp.Queue put->get", Pairing: "py->py", Value: mpLatMed, P99: percentile(mpLat, 0.99), Unit: "us"},
		lat("go->py", goPyLat, "<= 0.5x"),
		lat("py->go", pyGoLat, "<= 0.5x"),
		lat("py->py", gbPyLat, ""),
	}
	for _, pairing := range wakePairings {
		r := lat(pairing, wakeLat[pairing], "")
		r.Name = "futex wake (floor)"
		out = append(out, r)
	}
	return out, nil
}

// wakePairings are the waker->sleeper pairings of the wake floor.
var wakePairings = []string{"go->go", "go->py", "py->go", "py->py"}

// pyQueueBench runs `python -m gobridge_bench_queue ARGS...` and decodes the
// JSON object on the last line of its output.
func pyQueueBench(ctx context.Context, o Options, out any, args ...string) error {
	cmd := pyCommand(ctx, o, "gobridge_bench_queue", args...)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("python %s: %w", strings.Join(args, " "), err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return json.Unmarshal([]byte(lines[len(lines)-1]), out)
}

func benchQueueName() string {
	return fmt.Sprintf("gobridge-benchq-%d-%d", os.Getpid(), time.Now().UnixNano())
}

func monoNS() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// withPy opens a fresh queue, starts a Python role on it and runs f; the
// Python role's last output line is decoded into out (when out is not nil).
func withPy(ctx context.Context, o Options, out any, f func(q *mp.Queue) error, args ...string) error {
	name := benchQueueName()
	q, err := mp.OpenQueue(name)
	if err != nil {
		return err
	}
	defer q.Close()
	cmd := pyCommand(ctx, o, "gobridge_bench_queue", append([]string{args[0], name}, args[1:]...)...)
	cmd.Stderr = os.Stderr
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	ferr := f(q)
	if ferr != nil {
		cmd.Process.Kill()
	}
	werr := cmd.Wait()
	if ferr != nil {
		return ferr
	}
	if werr != nil {
		return fmt.Errorf("python %s: %w", args[0], werr)
	}
	if out == nil {
		return nil
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return json.Unmarshal([]byte(lines[len(lines)-1]), out)
}

func queueGoToPy(ctx context.Context, o Options, n int) (float64, error) {
	var r pyRate
	err := withPy(ctx, o, &r, func(q *mp.Queue) error {
		for i := 0; i < n; i++ {
			if err := q.Put(ctx, payload64); err != nil {
				return err
			}
		}
		return nil
	}, "get", fmt.Sprint(n))
	return r.MsgsPerS, err
}

func queuePyToGo(ctx context.Context, o Options, n int) (float64, error) {
	var rate float64
	err := withPy(ctx, o, nil, func(q *mp.Queue) error {
		if _, err := q.GetBytes(ctx); err != nil {
			return err
		}
		t := time.Now()
		for i := 1; i < n; i++ {
			if _, err := q.Get(ctx); err != nil {
				return err
			}
		}
		rate = float64(n-1) / since(t)
		return nil
	}, "put", fmt.Sprint(n), "64")
	return rate, err
}

func queueLatGoToPy(ctx context.Context, o Options, n, pace int) ([]float64, error) {
	var s pySamples
	pad := make([]byte, 48)
	err := withPy(ctx, o, &s, func(q *mp.Queue) error {
		for i := 0; i < n; i++ {
			if err := q.Put(ctx, []any{monoNS(), pad}); err != nil {
				return err
			}
			sleepPrecise(time.Duration(pace) * time.Microsecond)
		}
		return nil
	}, "lat-get", fmt.Sprint(n))
	return s.SamplesUS, err
}

func queueLatPyToGo(ctx context.Context, o Options, n, pace int) ([]float64, error) {
	var out []float64
	err := withPy(ctx, o, nil, func(q *mp.Queue) error {
		for i := 0; i < n; i++ {
			var m []any
			if err := q.GetInto(ctx, &m); err != nil {
				return err
			}
			ts, _ := m[0].(int64)
			if i >= n/10 {
				out = append(out, float64(monoNS()-ts)/1e3)
			}
		}
		return nil
	}, "lat-put", fmt.Sprint(n), fmt.Sprint(pace))
	return out, err
}

// sleepPrecise sleeps for d in nanosleep(2), as Python's time.sleep does.
// time.Sleep rounds short sleeps up to about a millisecond here (the
// runtime's timers), which would pace the Go producer at 1.1 ms instead of
// the 200 us its Python counterparts keep. The call is a raw system call, so
// the thread just sleeps, as Python's does: through unix.Nanosleep the
// runtime counts the sleep as a blocking system call, hands the thread's P
// to another thread that spins looking for work, and on these 2 cores that
// spinning thread holds the core the woken consumer needs: a Go waker's
// futex wake-up then took 36-45 us to reach a C sleeper, against 6 us with
// the raw call (and 5 us from a C waker).
func sleepPrecise(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	for {
		_, _, e := unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), uintptr(unsafe.Pointer(&ts)), 0)
		if e != unix.EINTR {
			return
		}
	}
}
