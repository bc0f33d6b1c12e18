package bridge

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// Bases of three lengths, so that requests carry each msgpack str form:
// fixstr, str8 and str16.
var fifoTestBases = []string{"p", "rendezvous-of-twenty", strings.Repeat("b", 250)}

func fifoTestName(base string, pid int, rnd uint64) string {
	return base + "." + itoa(pid) + "." + hex12(rnd)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func hex12(v uint64) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 12)
	for i := range b {
		b[11-i] = digits[v&15]
		v >>= 4
	}
	return string(b)
}

func mustFrame(t testing.TB, name string) []byte {
	t.Helper()
	f, err := fifoRequestFrame(name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// What the rendezvous may carry besides requests: each is skipped, and the
// request after it is found.
func TestFIFORequestScannerSkipsGarbage(t *testing.T) {
	frame := func(p []byte) []byte { return append([]byte{0, 0, byte(len(p) >> 8), byte(len(p))}, p...) }
	good := "p.4242.0123456789ab"
	cases := map[string][]byte{
		"negative length":        {0xff, 0xff, 0xff, 0xfe},
		"huge 8-byte length":     {0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"2 GiB length":           {0x7f, 0xff, 0xff, 0xff},
		"length over PIPE_BUF":   {0, 0, 0x10, 0x01, 0xb3},
		"non-str payload":        frame([]byte{0x07}),
		"str with a slash":       frame([]byte("\xb1p.1/../../etc/pw")),
		"other base":             mustFrame(t, "q.4242.0123456789ab"),
		"uppercase hex":          mustFrame(t, "p.4242.0123456789AB"),
		"pid of 11 digits":       mustFrame(t, "p.12345678901.0123456789ab"),
		"no pid":                 mustFrame(t, "p..0123456789ab"),
		"str8 where fixstr fits": frame(append([]byte{0xd9, byte(len(good))}, good...)),
		"a request cut short":    mustFrame(t, good)[:10],
		"zeros":                  make([]byte, 100),
		"random":                 randomBytes(1, 100<<10),
	}
	for what, garbage := range cases {
		t.Run(what, func(t *testing.T) {
			s := newFIFORequestScanner("p")
			names := s.feed(garbage, nil)
			names = s.feed(mustFrame(t, good), names)
			if len(names) != 1 || names[0] != good {
				t.Fatalf("found %q, want only %q", names, good)
			}
			if cap(s.buf) != fifoScanBuf || len(s.buf) != 0 {
				t.Fatalf("buffer: len %d cap %d", len(s.buf), cap(s.buf))
			}
		})
	}
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Requests of every str form, between random garbage, fed in pieces of
// random sizes: every request is found, in order.
func TestFIFORequestScannerFindsEveryRequest(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, base := range fifoTestBases {
		var stream []byte
		var want []string
		for i := range 500 {
			stream = append(stream, randomBytes(uint64(i), r.IntN(300))...)
			name := fifoTestName(base, 1+r.IntN(1<<22), r.Uint64())
			want = append(want, name)
			stream = append(stream, mustFrame(t, name)...)
		}
		s := newFIFORequestScanner(base)
		var got []string
		for len(stream) > 0 {
			k := min(len(stream), 1+r.IntN(20000))
			got = s.feed(stream[:k], got)
			stream = stream[k:]
		}
		// Random garbage may hold a request by chance; the real ones must
		// all be there, in order.
		j := 0
		for _, n := range got {
			if j < len(want) && n == want[j] {
				j++
			}
		}
		if j != len(want) {
			t.Fatalf("base of %d bytes: found %d of %d requests", len(base), j, len(want))
		}
	}
}

func FuzzFIFORequestScanner(f *testing.F) {
	f.Add([]byte{0xff, 0xff, 0xff, 0xfe}, uint16(2), uint8(0))
	f.Add([]byte{0, 0, 0, 0x14, 0xb3, 'p', '.', '1'}, uint16(5), uint8(0))
	f.Add([]byte{0, 0, 0}, uint16(1), uint8(1))
	f.Add(mustFrame(f, "p.1.0123456789ab")[:12], uint16(3), uint8(0))
	f.Add(mustFrame(f, fifoTestName(fifoTestBases[2], 99, 5))[:200], uint16(100), uint8(2))
	f.Add(randomBytes(3, 600), uint16(300), uint8(1))
	f.Fuzz(func(t *testing.T, garbage []byte, split uint16, which uint8) {
		base := fifoTestBases[int(which)%len(fifoTestBases)]
		want := fifoTestName(base, 1234, 0xfeedbeef)
		s := newFIFORequestScanner(base)
		k := int(split) % (len(garbage) + 1)
		var names []string
		for _, p := range [][]byte{garbage[:k], garbage[k:], mustFrame(t, want)} {
			names = s.feed(p, names)
			if cap(s.buf) != fifoScanBuf || len(s.buf) >= pipeBuf {
				t.Fatalf("buffer: len %d cap %d", len(s.buf), cap(s.buf))
			}
		}
		if len(names) == 0 || names[len(names)-1] != want {
			t.Fatalf("after %x: found %q, want %q last", garbage, names, want)
		}
		for _, n := range names { // anything found is a request a dialer could send
			fr := mustFrame(t, n)
			if l, got, m := matchFIFORequest(fr, base); m != fifoWhole || got != n || l != len(fr) {
				t.Fatalf("found %q, which is no request", n)
			}
			if !bytes.HasPrefix([]byte(n), []byte(base+".")) || strings.ContainsRune(n, '/') {
				t.Fatalf("found %q", n)
			}
		}
	})
}
