package mp

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gobridge/gobridge/wire"
)

// DefaultCapacity is the ring size of a new queue, in bytes.
const DefaultCapacity = 1 << 20

// Queue layout after the common header (SPEC section 10.4).
const (
	qMaxsize  = 64
	qCapacity = 72
	qHead     = 80
	qTail     = 88
	qPutSeq   = 96
	qGetSeq   = 104
	qNPut     = 112 // futex: bumped by every put (getters sleep on it)
	qNGet     = 116 // futex: bumped by every get (putters sleep on it)
	qGetters  = 120 // getters asleep (a hint for the waker)
	qPutters  = 124 // putters asleep
	qUnfin    = 128 // futex: unfinished tasks (JoinableQueue)
	qGetRedoN = 136 // the get side's redo log: count at 136, entries at 144
	qRing     = 256

	recHeader = 8
	minCap    = 64

	getSpin = 50 * time.Microsecond // a blocking Get polls an empty queue this long before sleeping
)

// Queue is a FIFO of msgpack messages in a named segment, shared by every
// process that opens the name; multiprocessing.Queue's counterpart. Its
// methods are safe for concurrent use.
type Queue struct {
	o   *object
	cap uint64
}

// QueueStat is a snapshot of a queue's counters.
type QueueStat struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"`
	Size       int    `json:"qsize"`
	MaxSize    int    `json:"maxsize"`
	Capacity   int    `json:"capacity"`
	UsedBytes  int    `json:"used_bytes"`
	Puts       uint64 `json:"puts"`
	Gets       uint64 `json:"gets"`
	Unfinished int    `json:"unfinished_tasks"`
}

func roundCap(n int) int {
	if n <= 0 {
		n = DefaultCapacity
	}
	n = (n + 7) &^ 7
	return max(n, minCap)
}

// OpenQueue creates the queue name, or attaches to it if it exists (an
// existing queue keeps its own maxsize and capacity; a JoinableQueue may be
// opened as a Queue). Close the handle when done: the last one removes the
// queue and the messages still in it, unless WithKeep.
func OpenQueue(name string, opts ...OpenOption) (*Queue, error) {
	return openQueue(name, kindQueue, newOpenConfig(opts))
}

func openQueue(name string, kind byte, c openConfig) (*Queue, error) {
	capacity := roundCap(c.capacity)
	init := func(mem []byte) {
		q := &object{mem: mem}
		q.set64(qMaxsize, uint64(max(c.maxsize, 0)))
		q.set64(qCapacity, uint64(capacity))
	}
	check := func(mem []byte) error {
		q := &object{mem: mem}
		cp, h, t := q.u64(qCapacity), q.u64(qHead), q.u64(qTail)
		if cp < minCap || cp%8 != 0 || qRing+cp > uint64(len(mem)) || t < h || t-h > cp || h%8 != 0 || t%8 != 0 ||
			q.u64(qPutSeq) < q.u64(qGetSeq) || q.u32(qGetRedoN) > redoMax {
			return fmt.Errorf("%w: %s: queue fields out of range", ErrLayout, name)
		}
		return nil
	}
	o, err := openObject(name, kind, qRing+capacity, c, [3]byte{kind, 0, 0}, init, check)
	if err != nil {
		return nil, err
	}
	return &Queue{o: o, cap: o.u64(qCapacity)}, nil
}

// Name returns the queue's name.
func (q *Queue) Name() string { return q.o.name }

// Close releases this handle (see OpenQueue). Idempotent.
func (q *Queue) Close() error { return q.o.Close() }

func recSize(n int) uint64 { return recHeader + uint64((n+7)&^7) }

// Put encodes v (SPEC section 3) and appends it, waiting while the queue is
// full until ctx is done.
func (q *Queue) Put(ctx context.Context, v any) error {
	p, err := wire.Marshal(v)
	if err != nil {
		return err
	}
	return q.PutBytes(ctx, p)
}

// PutNowait is Put without waiting: ErrFull when there is no room.
func (q *Queue) PutNowait(v any) error {
	p, err := wire.Marshal(v)
	if err != nil {
		return err
	}
	return q.put(nil, p)
}

// PutBytes appends an already encoded payload p, which must be one msgpack
// object (Python's get decodes it).
func (q *Queue) PutBytes(ctx context.Context, p []byte) error { return q.put(ctx, p) }

// put appends p; ctx nil means do not wait. Putters hold the internal
// lock and getters the get lock, so a putter and a getter never wait for
// each other (SPEC 10.4, 10.5): the putter reads the getters' head and
// get_seq without their lock, and a stale value only makes it see less room.
func (q *Queue) put(ctx context.Context, p []byte) error {
	need := recSize(len(p))
	if need > q.cap || int64(len(p)) > wire.DefaultMaxFrameSize {
		return fmt.Errorf("%w: %d bytes, the ring holds %d", ErrTooLarge, len(p), q.cap)
	}
	o := q.o
	asleep := false // counted in qPutters by the last round
	for {
		if err := o.lock(); err != nil {
			return err
		}
		if asleep {
			uncount(o, qPutters)
			asleep = false
		}
		// nget before head and get_seq: a get that makes room after these
		// reads changes nget, so the sleep below returns at once.
		seq := o.u32(qNGet)
		h, t := o.u64(qHead), o.u64(qTail)
		ps, gs := o.u64(qPutSeq), o.u64(qGetSeq)
		maxsize := o.u64(qMaxsize)
		if (maxsize == 0 || ps-gs < maxsize) && q.cap-(t-h) >= need {
			q.write(t, p)
			rs := []redo{{qTail, 8, t + need}, {qPutSeq, 8, ps + 1}}
			if o.mem[offKind] == kindJoinableQueue {
				rs = append(rs, redo{qUnfin, 4, uint64(o.u32(qUnfin) + 1)})
			}
			o.commit(offRedoN, rs...)
			atomic.AddUint32(o.p32(qNPut), 1) // a full barrier: getters is read after it
			// Wake a sleeping getter before unlocking: getters take the get
			// lock, not ours, so it runs while our unlock is still in the
			// kernel, and put->get is one system call shorter.
			if o.u32(qGetters) > 0 {
				o.wake(qNPut, 1)
			}
			o.unlock()
			return nil
		}
		if ctx == nil {
			o.unlock()
			return ErrFull
		}
		o.set32(qPutters, o.u32(qPutters)+1)
		asleep = true
		o.unlock()
		if err := o.sleep(ctx, qNGet, seq); err != nil {
			if o.lock() == nil {
				uncount(o, qPutters)
				o.unlock()
			}
			return err
		}
	}
}

// uncount takes back a sleeper's count at off (a hint, never below 0);
// called with the lock that guards it held.
func uncount(o *object, off int) {
	if n := o.u32(off); n > 0 {
		o.set32(off, n-1)
	}
}

// write copies a record (header and payload) into the ring at position t;
// the payload may wrap around the end.
func (q *Queue) write(t uint64, p []byte) {
	ring := q.o.mem[qRing : qRing+q.cap]
	at := t % q.cap
	hdr := ring[at : at+recHeader]
	hdr[0], hdr[1], hdr[2], hdr[3] = byte(len(p)), byte(len(p)>>8), byte(len(p)>>16), byte(len(p)>>24)
	hdr[4], hdr[5], hdr[6], hdr[7] = 0, 0, 0, 0
	at = (at + recHeader) % q.cap
	n := copy(ring[at:], p)
	copy(ring, p[n:])
}

// Get removes the oldest message and decodes it into an any (SPEC section
// 3.1), waiting while the queue is empty until ctx is done.
func (q *Queue) Get(ctx context.Context) (any, error) {
	p, err := q.get(ctx)
	if err != nil {
		return nil, err
	}
	var v any
	err = wire.Unmarshal(p, &v)
	return v, err
}

// GetNowait is Get without waiting: ErrEmpty when there is no message.
func (q *Queue) GetNowait() (any, error) {
	p, err := q.get(nil)
	if err != nil {
		return nil, err
	}
	var v any
	err = wire.Unmarshal(p, &v)
	return v, err
}

// GetInto is Get decoding into v (a pointer, as wire.Unmarshal takes). The
// message is removed even if it does not decode into v.
func (q *Queue) GetInto(ctx context.Context, v any) error {
	p, err := q.get(ctx)
	if err != nil {
		return err
	}
	return wire.Unmarshal(p, v)
}

// GetBytes removes the oldest message and returns its payload undecoded.
func (q *Queue) GetBytes(ctx context.Context) ([]byte, error) { return q.get(ctx) }

func (q *Queue) get(ctx context.Context) ([]byte, error) {
	o := q.o
	if ctx != nil && !o.closed.Load() && o.u64(qPutSeq) == o.u64(qGetSeq) {
		// Spin briefly without the lock: a message that arrives within
		// getSpin costs no futex sleep and wake-up on either side.
		for end := time.Now().Add(getSpin); o.u64(qPutSeq) == o.u64(qGetSeq) && time.Now().Before(end); {
		}
	}
	asleep := false // counted in qGetters by the last round
	for {
		if err := o.lockGet(); err != nil {
			return nil, err
		}
		if asleep {
			uncount(o, qGetters)
			asleep = false
		}
		// nput before put_seq: a put after these reads changes nput, so the
		// sleep below returns at once.
		seq := o.u32(qNPut)
		ps, gs := o.u64(qPutSeq), o.u64(qGetSeq)
		if ps != gs {
			h, t := o.u64(qHead), o.u64(qTail)
			p, err := q.read(h, t)
			if err != nil {
				o.unlockGet()
				return nil, err
			}
			need := recSize(len(p))
			o.commit(qGetRedoN, redo{qHead, 8, h + need}, redo{qGetSeq, 8, gs + 1})
			atomic.AddUint32(o.p32(qNGet), 1) // a full barrier: putters is read after it
			getters := o.u32(qGetters)
			room := roomEnough(t-h-need, q.cap, ps-gs-1, o.u64(qMaxsize))
			o.unlockGet()
			if room && o.u32(qPutters) > 0 {
				o.wake(qNGet, 1)
			}
			if getters > 0 && ps-gs > 1 {
				o.wake(qNPut, 1) // pass the baton: more messages are waiting
			}
			return p, nil
		}
		if o.u32(offRedoN) != 0 {
			// A putter is inside its commit, or was killed there: take the
			// internal lock (get lock first, as always), which finishes the
			// commit, and look again.
			if err := o.lock(); err != nil {
				o.unlockGet()
				return nil, err
			}
			o.unlock()
			o.unlockGet()
			continue
		}
		if ctx == nil {
			o.unlockGet()
			return nil, ErrEmpty
		}
		o.set32(qGetters, o.u32(qGetters)+1)
		asleep = true
		o.unlockGet()
		if err := o.sleep(ctx, qNPut, seq); err != nil {
			if o.lockGet() == nil {
				uncount(o, qGetters)
				o.unlockGet()
			}
			return nil, err
		}
	}
}

// roomEnough reports whether a get that left used bytes and count messages
// wakes a sleeping putter: only once the ring is at most half full (and at
// most half of maxsize), so that a fast putter refills in a burst instead of
// sleeping and waking once per message (SPEC section 10.4).
func roomEnough(used, capacity, count, maxsize uint64) bool {
	return used <= capacity/2 && (maxsize == 0 || count <= maxsize/2)
}

// read copies out the record at position h (h < t).
func (q *Queue) read(h, t uint64) ([]byte, error) {
	ring := q.o.mem[qRing : qRing+q.cap]
	at := h % q.cap
	hdr := ring[at : at+recHeader]
	n := int(uint32(hdr[0]) | uint32(hdr[1])<<8 | uint32(hdr[2])<<16 | uint32(hdr[3])<<24)
	if recSize(n) > t-h {
		return nil, fmt.Errorf("%w: %s: record of %d bytes with %d bytes queued", ErrLayout, q.o.name, n, t-h)
	}
	p := make([]byte, n)
	at = (at + recHeader) % q.cap
	c := copy(p, ring[at:])
	copy(p[c:], ring)
	return p, nil
}

// Qsize returns the number of messages in the queue (a snapshot).
func (q *Queue) Qsize() int {
	if q.o.closed.Load() {
		return 0
	}
	ps, gs := q.o.u64(qPutSeq), q.o.u64(qGetSeq)
	if ps < gs {
		return 0
	}
	return int(ps - gs)
}

// Empty reports whether the queue holds no message (a snapshot).
func (q *Queue) Empty() bool { return q.Qsize() == 0 }

// Full reports whether the queue holds maxsize messages (a snapshot).
func (q *Queue) Full() bool {
	if q.o.closed.Load() {
		return false
	}
	m := q.o.u64(qMaxsize)
	return m > 0 && uint64(q.Qsize()) >= m
}

// Stat returns the queue's counters, read under both of its locks.
func (q *Queue) Stat() (QueueStat, error) {
	o := q.o
	if err := o.lockGet(); err != nil {
		return QueueStat{}, err
	}
	defer o.unlockGet()
	if err := o.lock(); err != nil {
		return QueueStat{}, err
	}
	defer o.unlock()
	ps, gs := o.u64(qPutSeq), o.u64(qGetSeq)
	return QueueStat{
		Name: o.name, Kind: kindName(o.mem[offKind]), Size: int(ps - gs), MaxSize: int(o.u64(qMaxsize)),
		Capacity: int(q.cap), UsedBytes: int(o.u64(qTail) - o.u64(qHead)), Puts: ps, Gets: gs,
		Unfinished: int(o.u32(qUnfin)),
	}, nil
}

// JoinableQueue is a Queue whose consumers call TaskDone for every message
// and whose Join waits until all are done; multiprocessing.JoinableQueue's
// counterpart.
type JoinableQueue struct {
	*Queue
}

// OpenJoinableQueue creates or attaches the joinable queue name (a plain
// queue of that name is refused with ErrKind).
func OpenJoinableQueue(name string, opts ...OpenOption) (*JoinableQueue, error) {
	q, err := openQueue(name, kindJoinableQueue, newOpenConfig(opts))
	if err != nil {
		return nil, err
	}
	return &JoinableQueue{q}, nil
}

// TaskDone marks one message taken with Get as processed; ErrTaskDone when
// every put has already been matched.
func (q *JoinableQueue) TaskDone() error {
	o := q.o
	if err := o.lock(); err != nil {
		return err
	}
	n := o.u32(qUnfin)
	if n == 0 {
		o.unlock()
		return ErrTaskDone
	}
	o.set32(qUnfin, n-1)
	o.unlock()
	if n == 1 {
		o.wake(qUnfin, 1<<30)
	}
	return nil
}

// Join waits until every message put has been matched by a TaskDone, or
// until ctx is done.
func (q *JoinableQueue) Join(ctx context.Context) error {
	o := q.o
	for {
		if o.closed.Load() {
			return ErrClosed
		}
		n := o.u32(qUnfin)
		if n == 0 {
			return nil
		}
		if err := o.sleep(ctx, qUnfin, n); err != nil {
			return err
		}
	}
}

// Unfinished returns the number of messages put and not yet marked done.
func (q *JoinableQueue) Unfinished() int { return int(q.o.u32(qUnfin)) }
