// Command mppeer is the Go side of the shared-object interop tests
// (interop_tests/test_mp_*.py): the seed 003/004 queue roles and the
// counter, array, semaphore, crash and load roles. Output lines go to
// stdout; it stops on SIGINT or SIGTERM and closes what it opened.
//
//	mppeer producer Q NAME INTERVAL     seed 003: put NAME的A/B/C, one per INTERVAL, print each
//	mppeer consumer Q INTERVAL          seed 003: get and print until a falsy message
//	mppeer jproducer Q NAME INTERVAL    seed 003 JoinableQueue producer: put A/B/C, then join
//	mppeer jconsumer Q INTERVAL         seed 003 JoinableQueue consumer: get, print, task_done, forever
//	mppeer writer Q                     seed 004: put A, B, C
//	mppeer reader Q                     seed 004: get and print forever
//	mppeer put Q JSON                   put one value (gobridge JSON)
//	mppeer get Q                        get one value, print it (%v)
//	mppeer char V A                     attach to 'c' Value V and 'c' Array A (byte, WithTypecode('c')), print
//	                                    both, then store 'G' in V and "go" in A
//	mppeer char-make V A                create 'c' Value V = 'g' and 'c' Array A = "go!" (4 items), print
//	                                    "ready", wait for EOF on stdin, print both again
//	mppeer counter V N                  N times: lock V (int64 'q'), add 1, unlock
//	mppeer array-fill A N               fill int64 array A (N items) with i*i
//	mppeer array-sum A N                print the sum of int64 array A
//	mppeer sem S STATE N HOLD           N times: acquire S, count holders in int64 array STATE [now, peak], hold HOLD, release
//	mppeer bsem-make S N                create bounded semaphore S with value N, print "ready", wait for EOF
//	                                    on stdin, print "value=V"
//	mppeer bsem-check S                 attach to bounded semaphore S (at its bound): a Release must fail with
//	                                    ErrReleasedTooMany; acquire, release; print "max=M value=V"
//	mppeer event-wait E [TIMEOUT]       attach to event E, print "waiting", wait (at most TIMEOUT), print
//	                                    "set" or "timeout"
//	mppeer event-set E                  attach to event E and set it
//	mppeer cond-wait C                  attach to condition C (its own lock), acquire, wait until notified,
//	                                    print "notified", release
//	mppeer cond-notify C N              attach to condition C, acquire, notify N, release
//	mppeer cond-hold C                  attach to condition C, acquire, print "held", sleep until killed
//	mppeer seed-event-waiter E          seed_event.py's waiter: print "wait_for_event: starting", wait, print
//	                                    "wait_for_event: e.is_set()-> True"
//	mppeer seed-event-main E INTERVAL   seed_event.py's main: print "main: waiting before calling
//	                                    Event.set()", sleep 3 INTERVALs, set, print "main: event is set"
//	mppeer seed-barrier-worker B I      seed_barrier.py's worker-I of a Barrier(4): twice print "worker-I
//	                                    waiting for barrier with N others", wait, print "worker-I after barrier X"
//	mppeer seed-condition-producer C V INTERVAL
//	                                    seed_condition.py's producer: three times sleep INTERVAL, then under
//	                                    condition C add 1 to int32 Value V, print "produced one item, N
//	                                    available" and notify
//	mppeer seed-condition-consumer C V  seed_condition.py's consumer: three times under C wait until V > 0,
//	                                    subtract 1 and print "consumed one item, N left"
//	mppeer bar-wait B                   attach to barrier B, wait, print "index=I" or "broken"
//	mppeer produce Q ID N SIZE          put N messages [ID, seq, crc32, payload of SIZE bytes]
//	mppeer consume Q                    get messages until null; print a JSON summary per producer
//	mppeer hold-lock L                  acquire lock L, print "held", sleep until killed
//	mppeer hold-bytes Q                 take the OFD locks of bytes 0, 1 and 2 of object Q (internal, user,
//	                                    get) with plain fcntl, print "locked", sleep until killed (to be stopped)
//	mppeer spin-put Q SIZE              put messages [seq, payload] forever (to be killed)
//	mppeer spin-get Q                   get messages forever, print the count on each 1000 (to be killed)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/gobridge/gobridge/bridge/mp"
	"github.com/gobridge/gobridge/internal/ofdlock"
	"github.com/gobridge/gobridge/wire"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "mppeer:", err)
		os.Exit(1)
	}
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

// must returns x, panicking on err: a role that cannot read its own state
// array has nothing sensible left to do.
func must[T any](x T, err error) T {
	if err != nil {
		panic(err)
	}
	return x
}

func dur(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case int64:
		return x != 0
	case uint64:
		return x != 0
	case float64:
		return x != 0
	case []any:
		return len(x) > 0
	case []byte:
		return len(x) > 0
	}
	return true
}

func run(ctx context.Context, a []string) error {
	if len(a) < 2 {
		return fmt.Errorf("usage: see the package comment")
	}
	switch a[0] {
	case "producer", "jproducer":
		// The seed's Queue(2) / JoinableQueue(2).
		var q *mp.Queue
		var jq *mp.JoinableQueue
		var err error
		if a[0] == "jproducer" {
			jq, err = mp.OpenJoinableQueue(a[1], mp.WithMaxSize(2))
			if jq != nil {
				q = jq.Queue
			}
		} else {
			q, err = mp.OpenQueue(a[1], mp.WithMaxSize(2))
		}
		if err != nil {
			return err
		}
		defer q.Close()
		for _, v := range []string{"A", "B", "C"} {
			sleep(ctx, dur(a[3]))
			product := a[2] + "的" + v
			if err := q.Put(ctx, product); err != nil {
				return err
			}
			fmt.Printf("%s已被添加至队列中\n", product)
		}
		if jq != nil {
			return jq.Join(ctx)
		}
		return nil
	case "consumer", "jconsumer":
		var q *mp.Queue
		var jq *mp.JoinableQueue
		var err error
		if a[0] == "jconsumer" {
			jq, err = mp.OpenJoinableQueue(a[1], mp.WithMaxSize(2))
			if jq != nil {
				q = jq.Queue
			}
		} else {
			q, err = mp.OpenQueue(a[1], mp.WithMaxSize(2))
		}
		if err != nil {
			return err
		}
		defer q.Close()
		fmt.Println("ready")
		for {
			product, err := q.Get(ctx)
			if err != nil {
				return err
			}
			if jq == nil && !truthy(product) {
				return nil
			}
			sleep(ctx, dur(a[2])*12/10)
			fmt.Printf("%v已被取出\n", product)
			if jq != nil {
				if err := jq.TaskDone(); err != nil {
					return err
				}
			}
		}
	case "writer":
		q, err := mp.OpenQueue(a[1])
		if err != nil {
			return err
		}
		defer q.Close()
		fmt.Printf("Process to write: %d\n", os.Getpid())
		for _, v := range []string{"A", "B", "C"} {
			fmt.Printf("Put %s to queue...\n", v)
			if err := q.Put(ctx, v); err != nil {
				return err
			}
			sleep(ctx, time.Duration(rand.Float64()*float64(100*time.Millisecond)))
		}
		return nil
	case "reader":
		q, err := mp.OpenQueue(a[1])
		if err != nil {
			return err
		}
		defer q.Close()
		fmt.Printf("Process to read: %d\n", os.Getpid())
		for {
			v, err := q.Get(ctx)
			if err != nil {
				return err
			}
			fmt.Printf("Get %v from queue.\n", v)
		}
	case "put":
		q, err := mp.OpenQueue(a[1])
		if err != nil {
			return err
		}
		defer q.Close()
		v, err := wire.FromJSON([]byte(a[2]))
		if err != nil {
			return err
		}
		return q.Put(ctx, v)
	case "get":
		q, err := mp.OpenQueue(a[1], mp.WithAttachOnly())
		if err != nil {
			return err
		}
		defer q.Close()
		v, err := q.Get(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("%v\n", v)
		return nil
	case "char":
		v, err := mp.OpenValue[byte](a[1], 0, mp.WithTypecode('c'), mp.WithAttachOnly())
		if err != nil {
			return err
		}
		defer v.Close()
		arr, err := mp.OpenArrayLen[byte](a[2], 4, mp.WithTypecode('c'), mp.WithAttachOnly())
		if err != nil {
			return err
		}
		defer arr.Close()
		items, err := arr.Snapshot()
		if err != nil {
			return err
		}
		fmt.Printf("%q %q\n", must(v.Load()), items)
		if err := v.Store('G'); err != nil {
			return err
		}
		for i, c := range []byte("go") {
			if err := arr.Store(i, c); err != nil {
				return err
			}
		}
		return nil
	case "char-make":
		v, err := mp.OpenValue[byte](a[1], 'g', mp.WithTypecode('c'), mp.WithCreateOnly())
		if err != nil {
			return err
		}
		defer v.Close()
		arr, err := mp.OpenArray(a[2], []byte("go!\x00"), mp.WithTypecode('c'), mp.WithCreateOnly())
		if err != nil {
			return err
		}
		defer arr.Close()
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		fmt.Printf("%q %q\n", must(v.Load()), must(arr.Snapshot()))
		return nil
	case "counter":
		v, err := mp.OpenValue[int64](a[1], 0)
		if err != nil {
			return err
		}
		defer v.Close()
		for i := atoi(a[2]); i > 0; i-- {
			if err := v.Lock(ctx); err != nil {
				return err
			}
			x, err := v.Load()
			if err == nil {
				err = v.Store(x + 1)
			}
			if err != nil {
				return err
			}
			if err := v.Unlock(); err != nil {
				return err
			}
		}
		return nil
	case "array-fill", "array-sum":
		arr, err := mp.OpenArrayLen[int64](a[1], atoi(a[2]))
		if err != nil {
			return err
		}
		defer arr.Close()
		if err := arr.Lock(ctx); err != nil {
			return err
		}
		defer arr.Unlock()
		if a[0] == "array-fill" {
			for i := 0; i < arr.Len(); i++ {
				if err := arr.Store(i, int64(i*i)); err != nil {
					return err
				}
			}
			return nil
		}
		items, err := arr.Snapshot()
		if err != nil {
			return err
		}
		var sum int64
		for _, x := range items {
			sum += x
		}
		fmt.Println(sum)
		return nil
	case "sem":
		s, err := mp.OpenSemaphore(a[1], 3)
		if err != nil {
			return err
		}
		defer s.Close()
		st, err := mp.OpenArrayLen[int64](a[2], 2)
		if err != nil {
			return err
		}
		defer st.Close()
		hold := dur(a[4])
		for i := atoi(a[3]); i > 0; i-- {
			if err := s.Acquire(ctx); err != nil {
				return err
			}
			if err := st.Lock(ctx); err != nil {
				return err
			}
			now := must(st.Load(0)) + 1
			must(0, st.Store(0, now))
			must(0, st.Store(1, max(must(st.Load(1)), now)))
			st.Unlock()
			sleep(ctx, hold)
			if err := st.Lock(ctx); err != nil {
				return err
			}
			must(0, st.Store(0, must(st.Load(0))-1))
			st.Unlock()
			if err := s.Release(); err != nil {
				return err
			}
		}
		return nil
	case "bsem-make":
		s, err := mp.OpenBoundedSemaphore(a[1], atoi(a[2]), mp.WithCreateOnly())
		if err != nil {
			return err
		}
		defer s.Close()
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		fmt.Printf("value=%d\n", s.Value())
		return nil
	case "bsem-check":
		s, err := mp.OpenBoundedSemaphore(a[1], 0, mp.WithAttachOnly())
		if err != nil {
			return err
		}
		defer s.Close()
		if err := s.Release(); !errors.Is(err, mp.ErrReleasedTooMany) {
			return fmt.Errorf("release at the bound: %v", err)
		}
		if err := s.Acquire(ctx); err != nil {
			return err
		}
		if err := s.Release(); err != nil {
			return err
		}
		fmt.Printf("max=%d value=%d\n", s.MaxValue(), s.Value())
		return nil
	case "event-wait":
		e, err := mp.OpenEvent(a[1], mp.WithAttachOnly())
		if err != nil {
			return err
		}
		defer e.Close()
		wctx := ctx
		if len(a) > 2 {
			var cancel context.CancelFunc
			wctx, cancel = context.WithTimeout(ctx, dur(a[2]))
			defer cancel()
		}
		fmt.Println("waiting")
		if err := e.Wait(wctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				fmt.Println("timeout")
				return nil
			}
			return err
		}
		fmt.Println("set")
		return nil
	case "event-set":
		e, err := mp.OpenEvent(a[1], mp.WithAttachOnly())
		if err != nil {
			return err
		}
		defer e.Close()
		return e.Set()
	case "seed-event-waiter", "seed-event-main":
		e, err := mp.OpenEvent(a[1])
		if err != nil {
			return err
		}
		defer e.Close()
		if a[0] == "seed-event-main" {
			fmt.Println("main: waiting before calling Event.set()")
			sleep(ctx, 3*dur(a[2]))
			if err := e.Set(); err != nil {
				return err
			}
			fmt.Println("main: event is set")
			return nil
		}
		fmt.Println("wait_for_event: starting")
		if err := e.Wait(ctx); err != nil {
			return err
		}
		fmt.Println("wait_for_event: e.is_set()->", pyBool(e.IsSet()))
		return nil
	case "seed-barrier-worker":
		b, err := mp.OpenBarrier(a[1], 4, nil)
		if err != nil {
			return err
		}
		defer b.Close()
		name := "worker-" + a[2]
		for range 2 {
			fmt.Println(name, "waiting for barrier with", b.NWaiting(), "others")
			i, err := b.Wait(ctx)
			if err != nil {
				return err
			}
			fmt.Println(name, "after barrier", i)
		}
		return nil
	case "seed-condition-producer", "seed-condition-consumer":
		c, err := mp.OpenCondition(a[1], nil)
		if err != nil {
			return err
		}
		defer c.Close()
		items, err := mp.OpenValue[int32](a[2], 0)
		if err != nil {
			return err
		}
		defer items.Close()
		for range 3 {
			if a[0] == "seed-condition-producer" {
				sleep(ctx, dur(a[3]))
			}
			if err := c.Acquire(ctx); err != nil {
				return err
			}
			err := seedCondStep(ctx, c, items, a[0] == "seed-condition-producer")
			if rerr := c.Release(); err == nil {
				err = rerr
			}
			if err != nil {
				return err
			}
		}
		return nil
	case "cond-wait", "cond-notify", "cond-hold":
		c, err := mp.OpenCondition(a[1], nil, mp.WithAttachOnly())
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.Acquire(ctx); err != nil {
			return err
		}
		defer c.Release()
		switch a[0] {
		case "cond-wait":
			if err := c.Wait(ctx); err != nil {
				return err
			}
			fmt.Println("notified")
		case "cond-notify":
			return c.Notify(atoi(a[2]))
		default:
			fmt.Println("held")
			<-ctx.Done()
		}
		return nil
	case "bar-wait":
		b, err := mp.OpenBarrier(a[1], 1, nil, mp.WithAttachOnly())
		if err != nil {
			return err
		}
		defer b.Close()
		i, err := b.Wait(ctx)
		if errors.Is(err, mp.ErrBrokenBarrier) {
			fmt.Println("broken")
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Printf("index=%d\n", i)
		return nil
	case "produce":
		q, err := mp.OpenQueue(a[1])
		if err != nil {
			return err
		}
		defer q.Close()
		id, n, size := atoi(a[2]), atoi(a[3]), atoi(a[4])
		for i := 0; i < n; i++ {
			payload := make([]byte, size)
			for j := range payload {
				payload[j] = byte(id*31 + i + j)
			}
			if err := q.Put(ctx, []any{id, i, crc32.ChecksumIEEE(payload), payload}); err != nil {
				return err
			}
		}
		return nil
	case "consume":
		q, err := mp.OpenQueue(a[1])
		if err != nil {
			return err
		}
		defer q.Close()
		type acc struct {
			Count int64   `json:"count"`
			Sum   int64   `json:"sum"`
			Sum2  float64 `json:"sum2"`
			Bad   int64   `json:"bad"`
		}
		out := map[string]*acc{}
		for {
			var m []any
			if err := q.GetInto(ctx, &m); err != nil {
				return err
			}
			if m == nil {
				break
			}
			id := fmt.Sprint(m[0])
			seq := m[1].(int64)
			payload, _ := m[3].([]byte)
			c := out[id]
			if c == nil {
				c = &acc{}
				out[id] = c
			}
			c.Count++
			c.Sum += seq
			c.Sum2 += float64(seq) * float64(seq)
			if uint64(crc32.ChecksumIEEE(payload)) != toU64(m[2]) {
				c.Bad++
			}
		}
		return json.NewEncoder(os.Stdout).Encode(out)
	case "hold-lock":
		l, err := mp.OpenLock(a[1])
		if err != nil {
			return err
		}
		defer l.Close()
		if err := l.Acquire(ctx); err != nil {
			return err
		}
		fmt.Println("held")
		<-ctx.Done()
		return nil
	case "hold-bytes":
		f, err := os.OpenFile("/dev/shm/"+a[1], os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		for b := int64(0); b < 3; b++ {
			if err := ofdlock.Lock(f.Fd(), b); err != nil {
				return err
			}
		}
		fmt.Println("locked")
		<-ctx.Done()
		return nil
	case "spin-put":
		q, err := mp.OpenQueue(a[1])
		if err != nil {
			return err
		}
		defer q.Close()
		payload := make([]byte, atoi(a[2]))
		for i := 0; ; i++ {
			if err := q.Put(ctx, []any{i, payload}); err != nil {
				return err
			}
			if i == 0 {
				fmt.Println("started")
			}
		}
	case "spin-get":
		q, err := mp.OpenQueue(a[1])
		if err != nil {
			return err
		}
		defer q.Close()
		fmt.Println("started")
		for i := 1; ; i++ {
			if _, err := q.Get(ctx); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("unknown role %q", a[0])
}

// seedCondStep is one step of seed_condition.py's producer or consumer, with
// the condition's lock held.
func seedCondStep(ctx context.Context, c *mp.Condition, items *mp.Value[int32], produce bool) error {
	n, err := items.Load()
	if err != nil {
		return err
	}
	if produce {
		if err := items.Store(n + 1); err != nil {
			return err
		}
		fmt.Println("produced one item,", n+1, "available")
		return c.Notify(1)
	}
	for n <= 0 { // cv.wait_for(lambda: items.value > 0)
		if err := c.Wait(ctx); err != nil {
			return err
		}
		if n, err = items.Load(); err != nil {
			return err
		}
	}
	if err := items.Store(n - 1); err != nil {
		return err
	}
	fmt.Println("consumed one item,", n-1, "left")
	return nil
}

// pyBool is b as Python prints it.
func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func toU64(v any) uint64 {
	switch x := v.(type) {
	case int64:
		return uint64(x)
	case uint64:
		return x
	}
	return 1<<64 - 1
}
