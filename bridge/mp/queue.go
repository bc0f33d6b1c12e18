package mp

import (
	"context"
	"fmt"
	"runtime/debug"
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
	o       *object
	cap     uint64 // the ring's bytes, read once when opening
	maxsize uint64 // read once when opening; 0: no count limit
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

// maxMaxsize bounds a stored maxsize, so that it fits an int.
const maxMaxsize = 1<<63 - 1

// OpenQueue creates the queue name, or attaches to it if it exists (an
// existing queue keeps its own maxsize and capacity; a JoinableQueue may be
// opened as a Queue). Close the handle when done: the last one removes the
// queue and the messages still in it, unless WithKeep.
func OpenQueue(name string, opts ...OpenOption) (*Queue, error) {
	return openQueue(name, kindQueue, newOpenConfig(opts))
}

func openQueue(name string, kind byte, c openConfig) (*Queue, error) {
	capacity := roundCap(c.capacity)
	// Fields that never change after creation, read once: ours when we
	// create the queue, the checked ones when we attach.
	cp, m := uint64(capacity), uint64(max(c.maxsize, 0))
	init := func(mem []byte) {
		q := &object{mem: mem}
		q.set64(qMaxsize, m)
		q.set64(qCapacity, cp)
	}
	check := func(mem []byte) error {
		q := &object{mem: mem}
		cp, m = q.u64(qCapacity), q.u64(qMaxsize)
		if cp < minCap || cp%8 != 0 || cp > uint64(len(mem)-qRing) || m > maxMaxsize {
			return fmt.Errorf("%w: %s: capacity %d or maxsize %d out of range for %d bytes", ErrLayout, name, cp, m, len(mem))
		}
		return nil
	}
	o, err := openObject(name, kind, qRing+capacity, c, [3]byte{kind, 0, 0}, init, check)
	if err != nil {
		return nil, err
	}
	return &Queue{o: o, cap: cp, maxsize: m}, nil
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

// put appends p; ctx nil means do not wait for room (the internal lock is
// still waited for, as there is no deadline). Putters hold the internal
// lock and getters the get lock, so a putter and a getter never wait for
// each other (SPEC 10.4, 10.5): the putter reads the getters' head and
// get_seq without their lock, and a stale value only makes it see less room.
func (q *Queue) put(ctx context.Context, p []byte) (err error) {
	need := recSize(len(p))
	if need > q.cap || int64(len(p)) > wire.DefaultMaxFrameSize {
		return fmt.Errorf("%w: %d bytes, the ring holds %d", ErrTooLarge, len(p), q.cap)
	}
	o := q.o
	var h held
	defer o.guard(&err, &h, debug.SetPanicOnFault(true))
	asleep := false // counted in qPutters by the last round
	for {
		if err := o.lock(ctx, &h); err != nil {
			if asleep && o.tryLock(&h) {
				uncount(o, qPutters)
				o.unlock(&h)
			}
			return err
		}
		if asleep {
			uncount(o, qPutters)
			asleep = false
		}
		// nget before head and get_seq: a get that makes room after these
		// reads changes nget, so the sleep below returns at once. Each
		// field is read once and checked before use.
		seq := o.u32(qNGet)
		hd, t := o.u64(qHead), o.u64(qTail)
		ps, gs := o.u64(qPutSeq), o.u64(qGetSeq)
		if err := q.valid(hd, t, ps, gs); err != nil {
			o.unlock(&h)
			return err
		}
		if (q.maxsize == 0 || ps-gs < q.maxsize) && q.cap-(t-hd) >= need {
			q.write(t, p)
			rs := [3]redo{{qTail, 8, t + need}, {qPutSeq, 8, ps + 1}}
			n := 2
			if o.kind == kindJoinableQueue {
				rs[2] = redo{qUnfin, 4, uint64(o.u32(qUnfin) + 1)}
				n = 3
			}
			o.commit(offRedoN, rs[:n]...)
			atomic.AddUint32(o.p32(qNPut), 1) // a full barrier: getters is read after it
			// Wake a sleeping getter before unlocking: getters take the get
			// lock, not ours, so it runs while our unlock is still in the
			// kernel, and put->get is one system call shorter.
			if o.u32(qGetters) > 0 {
				o.wake(qNPut, 1)
			}
			o.unlock(&h)
			return nil
		}
		if ctx == nil {
			o.unlock(&h)
			return ErrFull
		}
		o.set32(qPutters, o.u32(qPutters)+1)
		asleep = true
		o.unlock(&h)
		if err := o.sleep(ctx, qNGet, seq); err != nil {
			if o.tryLock(&h) {
				uncount(o, qPutters)
				o.unlock(&h)
			}
			return err
		}
	}
}

// valid checks the positions and counters one operation read (each once):
// head <= tail, at most capacity bytes queued, positions multiples of 8,
// put_seq >= get_seq. They hold at every instant for honest processes, even
// for the other side's fields read without its lock (SPEC 10.4); anything
// else is a layout error on this queue, and nothing is read or written.
func (q *Queue) valid(h, t, ps, gs uint64) error {
	if h > t || t-h > q.cap || h%8 != 0 || t%8 != 0 || ps < gs {
		return fmt.Errorf("%w: %s: head %d, tail %d, put_seq %d, get_seq %d with a %d-byte ring", ErrLayout, q.o.name, h, t, ps, gs, q.cap)
	}
	return nil
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

func (q *Queue) get(ctx context.Context) (p []byte, err error) {
	o := q.o
	if err := o.usable(); err != nil {
		return nil, err
	}
	var h held
	defer o.guard(&err, &h, debug.SetPanicOnFault(true))
	if ctx != nil && o.u64(qPutSeq) == o.u64(qGetSeq) {
		// Spin briefly without the lock: a message that arrives within
		// getSpin costs no futex sleep and wake-up on either side.
		for end := time.Now().Add(getSpin); o.u64(qPutSeq) == o.u64(qGetSeq) && time.Now().Before(end); {
		}
	}
	asleep := false // counted in qGetters by the last round
	for {
		if err := o.lockGet(ctx, &h); err != nil {
			if asleep && o.tryLockGet(&h) {
				uncount(o, qGetters)
				o.unlockGet(&h)
			}
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
			hd, t := o.u64(qHead), o.u64(qTail)
			if err := q.valid(hd, t, ps, gs); err != nil {
				o.unlockGet(&h)
				return nil, err
			}
			p, err := q.read(hd, t)
			if err != nil {
				o.unlockGet(&h)
				return nil, err
			}
			need := recSize(len(p))
			o.commit(qGetRedoN, redo{qHead, 8, hd + need}, redo{qGetSeq, 8, gs + 1})
			atomic.AddUint32(o.p32(qNGet), 1) // a full barrier: putters is read after it
			getters := o.u32(qGetters)
			room := roomEnough(t-hd-need, q.cap, ps-gs-1, q.maxsize)
			o.unlockGet(&h)
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
			if err := o.lock(ctx, &h); err != nil {
				o.unlockGet(&h)
				return nil, err
			}
			o.unlock(&h)
			o.unlockGet(&h)
			continue
		}
		if ctx == nil {
			o.unlockGet(&h)
			return nil, ErrEmpty
		}
		o.set32(qGetters, o.u32(qGetters)+1)
		asleep = true
		o.unlockGet(&h)
		if err := o.sleep(ctx, qNPut, seq); err != nil {
			if o.tryLockGet(&h) {
				uncount(o, qGetters)
				o.unlockGet(&h)
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

// read copies out the record at position h, given valid positions (valid)
// and a message there (h < t). Its length is checked against the bytes
// queued, t - h, hence the ring's capacity, before anything is allocated.
func (q *Queue) read(h, t uint64) ([]byte, error) {
	ring := q.o.mem[qRing : qRing+q.cap]
	at := h % q.cap
	hdr := ring[at : at+recHeader]
	n := uint64(hdr[0]) | uint64(hdr[1])<<8 | uint64(hdr[2])<<16 | uint64(hdr[3])<<24
	if recHeader+(n+7)&^7 > t-h {
		return nil, fmt.Errorf("%w: %s: record of %d bytes with %d bytes queued", ErrLayout, q.o.name, n, t-h)
	}
	p := make([]byte, n)
	at = (at + recHeader) % q.cap
	c := copy(p, ring[at:])
	copy(p[c:], ring)
	return p, nil
}

// Qsize returns the number of messages in the queue (a snapshot); 0 once
// the handle is closed or broken.
func (q *Queue) Qsize() (n int) {
	o := q.o
	if o.usable() != nil {
		return 0
	}
	defer o.guard(nil, nil, debug.SetPanicOnFault(true))
	ps, gs := o.u64(qPutSeq), o.u64(qGetSeq)
	if ps < gs {
		return 0
	}
	return int(min(ps-gs, maxMaxsize))
}

// Empty reports whether the queue holds no message (a snapshot).
func (q *Queue) Empty() bool { return q.Qsize() == 0 }

// Full reports whether the queue holds maxsize messages (a snapshot).
func (q *Queue) Full() bool {
	return q.maxsize > 0 && uint64(q.Qsize()) >= q.maxsize
}

// Stat returns the queue's counters, read under both of its locks (which it
// waits for until ctx ends).
func (q *Queue) Stat(ctx context.Context) (st QueueStat, err error) {
	o := q.o
	var h held
	defer o.guard(&err, &h, debug.SetPanicOnFault(true))
	if err := o.lockGet(ctx, &h); err != nil {
		return QueueStat{}, err
	}
	defer o.unlockGet(&h)
	if err := o.lock(ctx, &h); err != nil {
		return QueueStat{}, err
	}
	defer o.unlock(&h)
	hd, t := o.u64(qHead), o.u64(qTail)
	ps, gs := o.u64(qPutSeq), o.u64(qGetSeq)
	if err := q.valid(hd, t, ps, gs); err != nil {
		return QueueStat{}, err
	}
	st = QueueStat{
		Name: o.name, Kind: kindName(o.kind), Size: int(min(ps-gs, maxMaxsize)), MaxSize: int(q.maxsize),
		Capacity: int(q.cap), UsedBytes: int(t - hd), Puts: ps, Gets: gs,
	}
	if o.kind == kindJoinableQueue {
		st.Unfinished = int(o.u32(qUnfin))
	}
	return st, nil
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
// every put has already been matched. It waits for the internal lock as
// long as it takes.
func (q *JoinableQueue) TaskDone() (err error) {
	o := q.o
	var h held
	defer o.guard(&err, &h, debug.SetPanicOnFault(true))
	if err := o.lock(nil, &h); err != nil {
		return err
	}
	n := o.u32(qUnfin)
	if n == 0 {
		o.unlock(&h)
		return ErrTaskDone
	}
	o.set32(qUnfin, n-1)
	o.unlock(&h)
	if n == 1 {
		o.wake(qUnfin, 1<<30)
	}
	return nil
}

// Join waits until every message put has been matched by a TaskDone, or
// until ctx is done.
func (q *JoinableQueue) Join(ctx context.Context) (err error) {
	o := q.o
	defer o.guard(&err, nil, debug.SetPanicOnFault(true))
	for {
		if err := o.usable(); err != nil {
			return err
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

// Unfinished returns the number of messages put and not yet marked done; 0
// once the handle is closed or broken.
func (q *JoinableQueue) Unfinished() (n int) {
	o := q.o
	if o.usable() != nil {
		return 0
	}
	defer o.guard(nil, nil, debug.SetPanicOnFault(true))
	return int(o.u32(qUnfin))
}
