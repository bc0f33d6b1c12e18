package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/gobridge/gobridge/bridge/pool"
)

// benchPool measures pool.Map tasks per second (Go driving Python workers)
// against multiprocessing.Pool.map on the same function
// (gobridge_bench_pool:square) with as many workers, in this run. Both are
// timed after a warm-up map, so worker start-up is not counted.
func benchPool(ctx context.Context, o Options) ([]Result, error) {
	n := 100000
	if o.N > 0 {
		n = o.N
	}
	if o.Quick {
		n = 2000
	}
	workers := max(2, runtime.NumCPU())
	p, err := pool.New(workers, pool.WithPython(o.Python), pool.WithEnv(pyEnv(o)))
	if err != nil {
		return nil, err
	}
	defer func() {
		p.Close()
		p.Join(context.Background())
	}()
	items := make([]any, n)
	for i := range items {
		items[i] = i
	}
	if _, err := p.Map(ctx, "gobridge_bench_pool:square", items[:workers*10]); err != nil {
		return nil, err
	}
	var goRate, mpRate []float64
	for round := 0; round < o.Rounds; round++ {
		fmt.Fprintf(o.Log, "  round %d/%d\n", round+1, o.Rounds)
		var r struct {
			TasksPerS float64 `json:"tasks_per_s"`
		}
		if err := pyModule(ctx, o, "gobridge_bench_pool", &r, "mp-pool-map", fmt.Sprint(n), fmt.Sprint(workers)); err != nil {
			return nil, err
		}
		mpRate = append(mpRate, r.TasksPerS)
		t := time.Now()
		out, err := p.Map(ctx, "gobridge_bench_pool:square", items)
		if err != nil {
			return nil, err
		}
		goRate = append(goRate, float64(n)/since(t))
		if out[n-1] != int64((n-1)*(n-1)) {
			return nil, fmt.Errorf("pool.Map: wrong result %v", out[n-1])
		}
	}
	pairing := fmt.Sprintf("%d workers", workers)
	return []Result{
		{Name: "mp.Pool.map", Pairing: "py " + pairing, Value: median(mpRate), Unit: "tasks/s"},
		{Name: "pool.Map", Pairing: "go->py " + pairing, Value: median(goRate), Unit: "tasks/s",
			Baseline: "mp.Pool.map py " + pairing, Ratio: median(goRate) / median(mpRate)},
	}, nil
}
