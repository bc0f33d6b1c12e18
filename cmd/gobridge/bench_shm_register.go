package main

import "context"

// Temporary: registers `gobridge bench shm` until bench.go's benchmarks table
// gets the line {"shm", benchShm}; then delete this file.
func init() {
	benchmarks = append(benchmarks, struct {
		name string
		run  func(ctx context.Context, o benchOptions) ([]benchResult, error)
	}{"shm", benchShm})
}
