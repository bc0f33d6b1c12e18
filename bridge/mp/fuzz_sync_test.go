package mp

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/gobridge/gobridge/internal/shmseg"
	"github.com/gobridge/gobridge/internal/testenv"
	"golang.org/x/sys/unix"
)

// syncTemplate returns the bytes of a real bounded semaphore, event,
// condition or barrier (which selects), as segmentTemplate does for the
// other kinds.
func syncTemplate(t testing.TB, which uint8) []byte {
	t.Helper()
	name := testenv.Name("fuzztmpl")
	defer os.Remove(shmseg.Path(name))
	var c interface{ Close() error }
	var err error
	switch which % 4 {
	case 0:
		c, err = OpenBoundedSemaphore(name, 3)
	case 1:
		var e *Event
		if e, err = OpenEvent(name); err == nil {
			err = e.Set()
		}
		c = e
	case 2:
		c, err = OpenCondition(name, nil)
	case 3:
		c, err = OpenBarrier(name, 2, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := os.ReadFile(shmseg.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzSyncSegment: a bounded semaphore, event, condition or barrier whose
// segment another process wrote (a real one's bytes cut to size and
// patched). Opening and every operation end in a documented error or a
// result: no panic, no fault, no wait past the (already done) context.
func FuzzSyncSegment(f *testing.F) {
	tmpl := [4][]byte{}
	for i := range tmpl {
		tmpl[i] = syncTemplate(f, uint8(i))
	}
	f.Add(uint8(0), uint16(0xffff), []byte{})
	f.Add(uint8(0), uint16(0xffff), []byte{0, bsemBound + 3, 0x80})
	f.Add(uint8(0), uint16(0xffff), []byte{0, semValue, 9})
	f.Add(uint8(1), uint16(0xffff), []byte{0, evState, 0xfe, 0, evState + 3, 0xff})
	f.Add(uint8(2), uint16(0xffff), []byte{0, cvSlots + 8, 1, 0, cvSlots + 16, 2})
	f.Add(uint8(2), uint16(0xffff), []byte{0, cvSlots, 9})
	f.Add(uint8(2), uint16(200), []byte{})
	f.Add(uint8(3), uint16(0xffff), []byte{0, barParties, 0})
	f.Add(uint8(3), uint16(0xffff), []byte{0, barCount, 2, 0, barSlots, 1})
	f.Add(uint8(3), uint16(0xffff), []byte{0, barParties, 1, 0, barBroken, 1})
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
			if err != nil && !documented(err) && !errors.Is(err, ErrReleasedTooMany) && !errors.Is(err, ErrBrokenBarrier) {
				t.Fatalf("%s: undocumented error %v", what, err)
			}
		}
		switch which % 4 {
		case 0:
			s, err := OpenBoundedSemaphore(name, 0, WithAttachOnly())
			check("open", err)
			if err != nil {
				return
			}
			defer s.Close()
			_, err = s.TryAcquire()
			check("tryacquire", err)
			check("release", s.Release())
			check("acquire", s.Acquire(ctx))
			if s.MaxValue() > semMax {
				t.Fatalf("bound %d", s.MaxValue())
			}
		case 1:
			e, err := OpenEvent(name, WithAttachOnly())
			check("open", err)
			if err != nil {
				return
			}
			defer e.Close()
			_ = e.IsSet()
			check("wait", e.Wait(ctx))
			check("clear", e.Clear())
			check("wait", e.Wait(ctx))
			check("set", e.Set())
		case 2:
			c, err := OpenCondition(name, nil, WithAttachOnly())
			check("open", err)
			if err != nil {
				return
			}
			defer c.Close()
			if err := c.Acquire(context.Background()); err != nil {
				t.Fatal(err)
			}
			check("wait", c.Wait(ctx))
			check("notify", c.Notify(2))
			check("notify_all", c.NotifyAll())
			check("release", c.Release())
		case 3:
			b, err := OpenBarrier(name, 2, nil, WithAttachOnly())
			check("open", err)
			if err != nil {
				return
			}
			defer b.Close()
			_, _ = b.NWaiting(), b.Broken()
			_, err = b.Wait(ctx)
			check("wait", err)
			check("reset", b.Reset())
			_, err = b.Wait(ctx)
			check("wait", err)
			check("abort", b.Abort())
		}
	})
}
