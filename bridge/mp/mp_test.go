package mp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gobridge/gobridge/internal/testenv"
)

func tag(t testing.TB) string {
	t.Helper()
	n := testenv.Name("mp")
	t.Cleanup(func() {
		if _, err := os.Stat("/dev/shm/" + n); err == nil {
			t.Errorf("%s left behind", n)
			os.Remove("/dev/shm/" + n)
		}
	})
	return n
}

// ok returns x, panicking on err (for accessors whose error is not the
// point of the test).
func ok[T any](x T, err error) T {
	if err != nil {
		panic(err)
	}
	return x
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestQueueFIFOAndWrap(t *testing.T) {
	ctx := ctxT(t)
	name := tag(t)
	q, err := OpenQueue(name, WithCapacity(256))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	r, err := OpenQueue(name) // a second handle
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := 0; i < 500; i++ {
		msg := []any{int64(i), "x" + fmt.Sprint(i), []byte{byte(i), 1, 2}}
		if err := q.Put(ctx, msg); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if err := q.Put(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}
		got, err := r.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(msg) {
			t.Fatalf("%d: got %v want %v", i, got, msg)
		}
		if i%3 == 0 {
			if v, err := r.Get(ctx); err != nil || v != nil {
				t.Fatalf("got %v %v, want nil", v, err)
			}
		}
	}
	if !q.Empty() || q.Qsize() != 0 {
		t.Fatal("not empty")
	}
}

func TestQueueFullEmptyTooLarge(t *testing.T) {
	name := tag(t)
	q, err := OpenQueue(name, WithMaxSize(2), WithCapacity(128))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := q.GetNowait(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("got %v, want ErrEmpty", err)
	}
	for i := 0; i < 2; i++ {
		if err := q.PutNowait(i); err != nil {
			t.Fatal(err)
		}
	}
	if !q.Full() {
		t.Fatal("not full")
	}
	if err := q.PutNowait(3); !errors.Is(err, ErrFull) {
		t.Fatalf("got %v, want ErrFull", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := q.Put(ctx, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	if err := q.PutNowait(make([]byte, 200)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	// A blocked Put completes when a Get makes room.
	done := make(chan error)
	go func() { done <- q.Put(ctxT(t), "late") }()
	time.Sleep(20 * time.Millisecond)
	if v, _ := q.GetNowait(); v != int64(0) {
		t.Fatalf("got %v", v)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, err := q.Stat(context.Background())
	if err != nil || st.Size != 2 || st.MaxSize != 2 || st.Capacity != 128 || st.Puts != 3 {
		t.Fatalf("stat %+v %v", st, err)
	}
}

func TestQueueManyGoroutines(t *testing.T) {
	ctx := ctxT(t)
	name := tag(t)
	q, err := OpenQueue(name, WithMaxSize(16), WithCapacity(512))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	const producers, per = 4, 2000
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := OpenQueue(name)
			if err != nil {
				t.Error(err)
				return
			}
			defer h.Close()
			for i := 0; i < per; i++ {
				if err := h.Put(ctx, []int{p, i}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	seen := make(map[[2]int64]bool)
	var mu sync.Mutex
	var cg sync.WaitGroup
	for c := 0; c < 3; c++ {
		cg.Add(1)
		go func() {
			defer cg.Done()
			for {
				var v []int64
				if err := q.GetInto(ctx, &v); err != nil {
					t.Error(err)
					return
				}
				if v == nil {
					return
				}
				mu.Lock()
				k := [2]int64{v[0], v[1]}
				if seen[k] {
					t.Errorf("duplicate %v", k)
				}
				seen[k] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for c := 0; c < 3; c++ {
		q.Put(ctx, nil)
	}
	cg.Wait()
	if len(seen) != producers*per {
		t.Fatalf("got %d messages, want %d", len(seen), producers*per)
	}
}

func TestJoinableQueue(t *testing.T) {
	ctx := ctxT(t)
	q, err := OpenJoinableQueue(tag(t))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i := 0; i < 3; i++ {
		q.Put(ctx, i)
	}
	go func() {
		for i := 0; i < 3; i++ {
			q.Get(ctx)
			time.Sleep(5 * time.Millisecond)
			q.TaskDone()
		}
	}()
	if err := q.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.TaskDone(); !errors.Is(err, ErrTaskDone) {
		t.Fatalf("got %v", err)
	}
	q2, err := OpenJoinableQueue(q.Name())
	if err != nil {
		t.Fatal(err)
	}
	q2.Close()
	plain, err := OpenQueue(tag(t))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := OpenJoinableQueue(plain.Name()); !errors.Is(err, ErrKind) {
		t.Fatalf("got %v, want ErrKind", err)
	}
}

func TestKindMismatch(t *testing.T) {
	name := tag(t)
	v, err := OpenValue[int32](name, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := OpenQueue(name); !errors.Is(err, ErrKind) {
		t.Fatalf("got %v", err)
	}
	if _, err := OpenValue[float64](name, 0); !errors.Is(err, ErrKind) {
		t.Fatalf("got %v", err)
	}
	w, err := OpenValue[int32](name, 99)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if ok(w.Load()) != 7 {
		t.Fatalf("attach changed the value: %d", ok(w.Load()))
	}
	if _, err := OpenQueue(name+"-none", WithAttachOnly()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}

func testValue[T Number](t *testing.T, init, delta T) {
	v, err := OpenValue[T](tag(t), init)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				v.Add(delta)
			}
		}()
	}
	wg.Wait()
	if got, want := ok(v.Load()), init+40*delta; got != want {
		t.Fatalf("%T: got %v want %v", got, got, want)
	}
	v.Store(init)
	if ok(v.Load()) != init {
		t.Fatal("store")
	}
}

func TestValueTypes(t *testing.T) {
	testValue[int8](t, -100, 1)
	testValue[uint8](t, 10, 2)
	testValue[int16](t, -3000, 7)
	testValue[uint16](t, 3, 100)
	testValue[int32](t, -1, 1000)
	testValue[uint32](t, 1, 1000)
	testValue[int64](t, -1<<40, 1<<20)
	testValue[uint64](t, 1<<63, 3)
	testValue[float32](t, 0.5, 0.25)
	testValue[float64](t, -1.5, 0.125)
}

func TestArray(t *testing.T) {
	a, err := OpenArray(tag(t), []int16{1, 2, 3, -4, 5})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.Add(1, 10)
	a.Store(4, -5)
	if got := fmt.Sprint(ok(a.Snapshot())); got != "[1 12 3 -4 -5]" {
		t.Fatal(got)
	}
	if _, err := OpenArrayLen[int16](a.Name(), 4); !errors.Is(err, ErrKind) {
		t.Fatalf("got %v", err)
	}
}

func TestLockAndSemaphore(t *testing.T) {
	ctx := ctxT(t)
	name := tag(t)
	l1, err := OpenLock(name)
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	l2, err := OpenLock(name)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if err := l1.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := l2.TryAcquire(); ok {
		t.Fatal("second handle got a held lock")
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if err := l2.Acquire(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if err := l2.Release(); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("got %v", err)
	}
	go func() { time.Sleep(20 * time.Millisecond); l1.Release() }()
	if err := l2.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	l2.Release()

	s, err := OpenSemaphore(tag(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Acquire(ctx)
	s.Acquire(ctx)
	if ok, _ := s.TryAcquire(); ok || s.Value() != 0 {
		t.Fatal("acquired a third time")
	}
	go func() { time.Sleep(20 * time.Millisecond); s.Release() }()
	if err := s.Acquire(ctx); err != nil {
		t.Fatal(err)
	}

	r, err := OpenRLock(tag(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Acquire(ctx)
	r.Acquire(ctx)
	r.Release()
	r.Release()
	if err := r.Release(); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("got %v", err)
	}
}

// TestRedoReplay: a putter killed after its commit point (the message and
// the redo entries written, the fields not), with nobody putting after it.
// A getter that finds the queue empty with the redo count set takes the
// internal lock, which finishes the commit, and gets the message: blocking
// or not.
func TestRedoReplay(t *testing.T) {
	for _, get := range []struct {
		name string
		get  func(q *Queue) (any, error)
	}{
		{"Get", func(q *Queue) (any, error) { return q.Get(ctxT(t)) }},
		{"GetNowait", func(q *Queue) (any, error) { return q.GetNowait() }},
	} {
		t.Run(get.name, func(t *testing.T) {
			q, err := OpenQueue(tag(t))
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			p := []byte{0xa1, 'x'}
			o := q.o
			var h held
			if err := o.lock(nil, &h); err != nil {
				t.Fatal(err)
			}
			q.write(0, p)
			o.logCommit(offRedoN, redo{qTail, 8, recSize(len(p))}, redo{qPutSeq, 8, 1}) // "killed" here: fields not yet written
			o.unlock(&h)
			v, err := get.get(q)
			if err != nil || v != "x" {
				t.Fatalf("got %v %v", v, err)
			}
		})
	}
}

// TestGetRedoReplay interrupts a get's commit after its commit point: the
// next getter finishes it, so the message is taken once and the next one is
// delivered.
func TestGetRedoReplay(t *testing.T) {
	ctx := ctxT(t)
	q, err := OpenQueue(tag(t))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, s := range []string{"first", "second"} {
		if err := q.Put(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	o := q.o
	var hl held
	if err := o.lockGet(nil, &hl); err != nil {
		t.Fatal(err)
	}
	h, gs := o.u64(qHead), o.u64(qGetSeq)
	p, err := q.read(h, o.u64(qTail))
	if err != nil {
		t.Fatal(err)
	}
	o.logCommit(qGetRedoN, redo{qHead, 8, h + recSize(len(p))}, redo{qGetSeq, 8, gs + 1}) // "killed" here: fields not yet written
	o.unlockGet(&hl)
	v, err := q.GetNowait()
	if err != nil || v != "second" {
		t.Fatalf("got %v %v, want second", v, err)
	}
	if n := q.Qsize(); n != 0 {
		t.Fatalf("qsize %d after the replayed get and one more", n)
	}
}

// Typecode 'c' (Python's ctypes.c_char) is a byte in Go, opened only as 'c'.
func TestCharTypecode(t *testing.T) {
	name := tag(t)
	v, err := OpenValue[byte](name, 'x', WithTypecode('c'))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.Typecode() != 'c' || ok(v.Load()) != 'x' {
		t.Fatalf("typecode %q value %q", v.Typecode(), ok(v.Load()))
	}
	w, err := OpenValue[byte](name, 0, WithTypecode('c'), WithAttachOnly())
	if err != nil {
		t.Fatal(err)
	}
	if ok(w.Load()) != 'x' {
		t.Fatal("attach did not keep the value")
	}
	w.Close()
	if _, err := OpenValue[byte](name, 0); !errors.Is(err, ErrKind) {
		t.Fatalf("'B' opened a 'c' value: %v", err)
	}
	if _, err := OpenValue[int8](tag(t), 0, WithTypecode('c')); !errors.Is(err, ErrTypecode) {
		t.Fatalf("int8 as 'c': %v", err)
	}
	a, err := OpenArray(tag(t), []byte("hello"), WithTypecode('c'))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if got := string(ok(a.Snapshot())); got != "hello" {
		t.Fatal(got)
	}
}
