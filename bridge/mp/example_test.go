package mp_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/gobridge/gobridge/bridge/mp"
)

func ExampleOpenQueue() {
	ctx := context.Background()
	name := fmt.Sprintf("example-queue-%d", os.Getpid())
	q, err := mp.OpenQueue(name, mp.WithMaxSize(2))
	if err != nil {
		panic(err)
	}
	defer q.Close() // the last handle removes the queue
	q.Put(ctx, "p1的A")
	q.Put(ctx, []any{1, 2.5, nil})
	fmt.Println(q.Full(), q.PutNowait("C") == mp.ErrFull)
	for !q.Empty() {
		v, _ := q.Get(ctx)
		fmt.Println(v)
	}
	// Output:
	// true true
	// p1的A
	// [1 2.5 <nil>]
}

func ExampleOpenValue() {
	ctx := context.Background()
	v, err := mp.OpenValue[int32](fmt.Sprintf("example-value-%d", os.Getpid()), 0)
	if err != nil {
		panic(err)
	}
	defer v.Close()
	v.Add(5)
	// A read-modify-write that Python processes also do (under get_lock()).
	v.Lock(ctx)
	x, _ := v.Load()
	v.Store(x * 2)
	v.Unlock()
	x, err = v.Load() // an error only if the handle is closed or its segment was truncated
	fmt.Println(x, err, string(v.Typecode()))
	// Output: 10 <nil> i
}

func ExampleOpenBoundedSemaphore() {
	ctx := context.Background()
	s, err := mp.OpenBoundedSemaphore(fmt.Sprintf("example-bsem-%d", os.Getpid()), 1)
	if err != nil {
		panic(err)
	}
	defer s.Close()
	s.Acquire(ctx)
	fmt.Println(s.Release())
	fmt.Println(errors.Is(s.Release(), mp.ErrReleasedTooMany), s.Value())
	// Output:
	// <nil>
	// true 1
}

func ExampleOpenEvent() {
	ctx := context.Background()
	e, err := mp.OpenEvent(fmt.Sprintf("example-event-%d", os.Getpid()))
	if err != nil {
		panic(err)
	}
	defer e.Close()
	done := make(chan error)
	go func() { done <- e.Wait(ctx) }() // another process could wait as well (Python: gobridge.Event(name=...).wait())
	e.Set()
	fmt.Println(<-done, e.IsSet())
	// Output: <nil> true
}

func ExampleOpenCondition() {
	ctx := context.Background()
	name := fmt.Sprintf("example-cond-%d", os.Getpid())
	c, err := mp.OpenCondition(name, nil) // its own lock; Python: gobridge.Condition(name=name)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.Acquire(ctx)
	go func() { // as another process would
		w, _ := mp.OpenCondition(name, nil)
		defer w.Close()
		w.Acquire(ctx) // once c.Wait has released the lock
		w.Notify(1)
		w.Release()
	}()
	fmt.Println(c.Wait(ctx)) // nil: notified, and the lock is held again
	c.Release()
	// Output: <nil>
}

func ExampleOpenBarrier() {
	ctx := context.Background()
	name := fmt.Sprintf("example-barrier-%d", os.Getpid())
	b, err := mp.OpenBarrier(name, 2, nil) // Python: gobridge.Barrier(2, name=name)
	if err != nil {
		panic(err)
	}
	defer b.Close()
	done := make(chan int)
	go func() { // as another process would
		o, _ := mp.OpenBarrier(name, 2, nil)
		defer o.Close()
		i, _ := o.Wait(ctx)
		done <- i
	}()
	i, err := b.Wait(ctx)
	fmt.Println(i+<-done, err) // the indexes are 0 and 1
	// Output: 1 <nil>
}
