package mp

import (
	"context"
	"testing"
)

// BenchmarkQueuePutGet is one Put and one Get of a small message through one
// handle: the cost of the locks, the checks and the copies, with no sleep.
func BenchmarkQueuePutGet(b *testing.B) {
	ctx := context.Background()
	q, err := OpenQueue(tag(b))
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	p := make([]byte, 62)
	p[0], p[1] = 0xc4, 60 // bin 8 of 60 bytes: a 64-byte msgpack payload
	for i := 0; i < b.N; i++ {
		if err := q.PutBytes(ctx, p); err != nil {
			b.Fatal(err)
		}
		if _, err := q.GetBytes(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQueuePutGetDeadline is BenchmarkQueuePutGet with a context that
// has a deadline: the internal locks are polled instead of waited for.
func BenchmarkQueuePutGetDeadline(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 1<<40)
	defer cancel()
	q, err := OpenQueue(tag(b))
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	p := make([]byte, 62)
	p[0], p[1] = 0xc4, 60
	for i := 0; i < b.N; i++ {
		if err := q.PutBytes(ctx, p); err != nil {
			b.Fatal(err)
		}
		if _, err := q.GetBytes(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValueLoad is one guarded atomic load of a Value (the fault guard
// and the closed check around a single memory access).
func BenchmarkValueLoad(b *testing.B) {
	v, err := OpenValue[int64](tag(b), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	var s int64
	for i := 0; i < b.N; i++ {
		x, err := v.Load()
		if err != nil {
			b.Fatal(err)
		}
		s += x
	}
	_ = s
}

// BenchmarkValueAdd is one guarded atomic add.
func BenchmarkValueAdd(b *testing.B) {
	v, err := OpenValue[int64](tag(b), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	for i := 0; i < b.N; i++ {
		if _, err := v.Add(1); err != nil {
			b.Fatal(err)
		}
	}
}
