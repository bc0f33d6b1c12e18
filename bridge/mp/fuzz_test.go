package mp

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/gobridge/gobridge/internal/shmseg"
	"github.com/gobridge/gobridge/internal/testenv"
	"github.com/gobridge/gobridge/wire"
	"golang.org/x/sys/unix"
)

// segmentTemplate returns the bytes of a real object of the kind which
// selects: a queue of capacity 256 holding messages whose last payload wraps
// around the ring's end, with a commit left in each redo log (a putter and
// a getter "killed" after their commit points); a value; a semaphore; an
// array.
func segmentTemplate(t testing.TB, which uint8) []byte {
	t.Helper()
	name := testenv.Name("fuzztmpl")
	defer os.Remove(shmseg.Path(name))
	ctx := context.Background()
	switch which % 4 {
	case 0:
		q, err := OpenJoinableQueue(name, WithCapacity(256), WithMaxSize(6))
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		for i, v := range []any{"a", []any{1, 2.5, nil}, make([]byte, 60), "wraps around the ring's end", 7} {
			if err := q.Put(ctx, v); err != nil {
				t.Fatal(err)
			}
			if i < 3 {
				if _, err := q.Get(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		o := q.o
		var h held
		o.lockGet(nil, &h)
		hd := o.u64(qHead)
		p, _ := q.read(hd, o.u64(qTail))
		o.logCommit(qGetRedoN, redo{qHead, 8, hd + recSize(len(p))}, redo{qGetSeq, 8, o.u64(qGetSeq) + 1})
		o.unlockGet(&h)
		o.lock(nil, &h)
		t0, msg := o.u64(qTail), []byte{0xa3, 'e', 'n', 'd'}
		q.write(t0, msg)
		o.logCommit(offRedoN, redo{qTail, 8, t0 + recSize(len(msg))}, redo{qPutSeq, 8, o.u64(qPutSeq) + 1},
			redo{qUnfin, 4, uint64(o.u32(qUnfin) + 1)})
		o.unlock(&h)
	case 1:
		v, err := OpenValue[float64](name, 2.5)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
	case 2:
		s, err := OpenSemaphore(name, 2)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	case 3:
		a, err := OpenArray(name, []int16{1, -2, 3})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
	}
	b, err := os.ReadFile(shmseg.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// documented reports whether err is one the package documents for what a
// hostile segment can cause.
func documented(err error) bool {
	for _, e := range []error{ErrLayout, ErrKind, ErrEmpty, ErrFull, ErrTaskDone, ErrNotHeld, context.Canceled,
		// a payload that does not decode (SPEC 10.4: consumed and reported)
		wire.ErrMalformed, wire.ErrTooDeep, wire.ErrInvalidUTF8, wire.ErrUnknownExtension, wire.ErrUnsupportedKey} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// FuzzObjectSegment opens a segment another process could have written:
// a real object's bytes (segmentTemplate) cut to size and patched at the
// offsets the input names. Opening, and then every operation, must end in
// a documented error or a result, with no panic, no fault, no allocation
// beyond the ring, no wait (every call here is non-blocking or bounded).
func FuzzObjectSegment(f *testing.F) {
	tmpl := [4][]byte{}
	for i := range tmpl {
		tmpl[i] = segmentTemplate(f, uint8(i))
	}
	f.Add(uint8(0), uint16(0xffff), []byte{})
	f.Add(uint8(0), uint16(64), []byte{})
	f.Add(uint8(0), uint16(0xffff), []byte{1, 24, 0xf0, 1, 25, 0xff, 1, 26, 0xff, 1, 27, 0xff}) // a record length at ring offset 24
	f.Add(uint8(0), uint16(0xffff), []byte{0, qTail + 5, 1, 0, qHead, 3})
	f.Add(uint8(0), uint16(0xffff), []byte{0, offRedoN + 8, qCapacity, 0, qGetRedoN, 9})
	f.Add(uint8(0), uint16(0xffff), []byte{0, offKind, kindValue, 0, qCapacity + 1, 0x10})
	f.Add(uint8(1), uint16(0xffff), []byte{0, offTypecode, 'i'})
	f.Add(uint8(2), uint16(0xffff), []byte{0, semValue + 3, 0x80})
	f.Add(uint8(3), uint16(0xffff), []byte{0, arrayLenOff, 9})
	f.Add(uint8(3), uint16(70), []byte{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a done context: every wait gives up at once
	f.Fuzz(func(t *testing.T, which uint8, size uint16, patch []byte) {
		seg := append([]byte(nil), tmpl[which%4]...)
		seg = seg[:min(int(size), len(seg))]
		for i := 0; i+2 < len(patch) && len(seg) > 0; i += 3 {
			seg[(int(patch[i])<<8|int(patch[i+1]))%len(seg)] = patch[i+2]
		}
		name := testenv.Name("fuzz")
		path := shmseg.Path(name)
		fd, err := unix.Open(path, unix.O_CREAT|unix.O_EXCL|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(path)
		_, err = unix.Write(fd, seg)
		unix.Close(fd)
		if err != nil && len(seg) > 0 {
			t.Fatal(err)
		}
		check := func(what string, err error) {
			if err != nil && !documented(err) {
				t.Fatalf("%s: undocumented error %v", what, err)
			}
		}
		switch which % 4 {
		case 0:
			q, err := OpenQueue(name, WithAttachOnly())
			check("open", err)
			if err != nil {
				return
			}
			defer q.Close()
			_, err = q.Stat(ctx)
			check("stat", err)
			for i := 0; i < 3; i++ {
				p, err := q.get(nil)
				check("get", err)
				if uint64(len(p)) > q.cap {
					t.Fatalf("a %d-byte message from a %d-byte ring", len(p), q.cap)
				}
				if err == nil {
					var v any
					check("decode", wire.Unmarshal(p, &v))
				}
			}
			check("put", q.PutNowait([]any{"fuzz", 1}))
			check("getctx", func() error { _, err := q.Get(ctx); return err }())
			_ = q.Qsize() + q.Qsize()
			_ = q.Full()
			if q.o.kind == kindJoinableQueue {
				jq := &JoinableQueue{q}
				check("task_done", jq.TaskDone())
				_ = jq.Unfinished()
			}
		case 1:
			v, err := OpenValue[float64](name, 0, WithAttachOnly())
			check("open", err)
			if err != nil {
				return
			}
			defer v.Close()
			_, err = v.Add(1)
			check("add", err)
			check("lock", v.Lock(ctx))
		case 2:
			s, err := OpenSemaphore(name, 0, WithAttachOnly())
			check("open", err)
			if err != nil {
				return
			}
			defer s.Close()
			_, err = s.TryAcquire()
			check("tryacquire", err)
			err = s.Release()
			if err != nil && !documented(err) && s.Value() != semMax { // "released too many times"
				t.Fatalf("release: %v", err)
			}
			_ = s.Value()
		case 3:
			a, err := OpenArrayLen[int16](name, 3, WithAttachOnly())
			check("open", err)
			if err != nil {
				return
			}
			defer a.Close()
			_, err = a.Snapshot()
			check("snapshot", err)
			_, err = a.Add(2, 5)
			check("add", err)
		}
	})
}
