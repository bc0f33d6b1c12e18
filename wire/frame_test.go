package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"runtime"
	"testing"
	"time"
)

func TestHeaderLayout(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want []byte
	}{
		{0, []byte{0, 0, 0, 0}},
		{5, []byte{0, 0, 0, 5}},
		{0x7fffffff, []byte{0x7f, 0xff, 0xff, 0xff}},
		{0x80000000, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x80, 0, 0, 0}},
		{1 << 40, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0, 0, 0, 0, 0}},
	} {
		got := AppendHeader(nil, tc.n)
		if !bytes.Equal(got, tc.want) || HeaderSize(tc.n) != len(tc.want) {
			t.Errorf("AppendHeader(%d) = %x, want %x", tc.n, got, tc.want)
		}
	}
}

// TestParseHeader: ParseHeader reads back what AppendHeader writes, with
// trailing bytes ignored, and refuses short and impossible headers.
func TestParseHeader(t *testing.T) {
	for _, n := range []int64{0, 5, 0x7fffffff, 0x80000000, 1 << 40, 1<<63 - 1} {
		b := append(AppendHeader(nil, n), 1, 2, 3)
		got, hl, err := ParseHeader(b)
		if err != nil || got != n || hl != HeaderSize(n) {
			t.Errorf("ParseHeader(%x) = %d, %d, %v; want %d, %d", b, got, hl, err, n, HeaderSize(n))
		}
		for k := 0; k < hl; k++ {
			if _, _, err := ParseHeader(b[:k]); !errors.Is(err, ErrShortHeader) {
				t.Errorf("ParseHeader(%x) = %v, want ErrShortHeader", b[:k], err)
			}
		}
	}
	for _, tc := range []struct {
		b    []byte
		want error
	}{
		{[]byte{0xff, 0xff, 0xff, 0xfe}, ErrBadHeader},
		{[]byte{0x80, 0, 0, 0}, ErrBadHeader},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff}, ErrBadHeader},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0}, ErrFrameTooLarge},
	} {
		if n, _, err := ParseHeader(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("ParseHeader(%x) = %d, %v; want %v", tc.b, n, err, tc.want)
		}
	}
}

func TestReadFrames(t *testing.T) {
	var stream bytes.Buffer
	payloads := [][]byte{{}, []byte("a"), bytes.Repeat([]byte{7}, 70000), []byte("last")}
	for _, p := range payloads {
		if err := WriteFrame(&stream, p, 0); err != nil {
			t.Fatal(err)
		}
	}
	fr := NewReader(&stream, 0)
	for i, want := range payloads {
		got, err := fr.ReadFrame(nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: got %d bytes, %v", i, len(got), err)
		}
	}
	if _, err := fr.ReadFrame(nil); err != io.EOF {
		t.Fatalf("after last frame: %v, want io.EOF", err)
	}
}

func TestReadFrameReusesDst(t *testing.T) {
	var stream bytes.Buffer
	WriteFrame(&stream, []byte("hello"), 0)
	dst := make([]byte, 0, 64)
	got, err := NewReader(&stream, 0).ReadFrame(dst)
	if err != nil || string(got) != "hello" || &got[0] != &dst[:1][0] {
		t.Fatalf("got %q, %v; reused=%v", got, err, err == nil && &got[0] == &dst[:1][0])
	}
}

func TestHugeHeaderAllocatesNothing(t *testing.T) {
	for _, hdr := range [][]byte{
		{0x7f, 0xff, 0xff, 0xff}, // 2 GiB - 1
		{0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // 2^63-1
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // 2^64-1
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		fr := NewReader(bytes.NewReader(append(hdr, 1, 2, 3)), 0)
		_, err := fr.ReadFrame(nil)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("header %x: err = %v, want ErrFrameTooLarge", hdr, err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<16 {
			t.Errorf("header %x: allocated %d bytes", hdr, grew)
		}
		if _, err2 := fr.ReadFrame(nil); !errors.Is(err2, ErrFrameTooLarge) {
			t.Errorf("framing error is not sticky: %v", err2)
		}
	}
}

func TestTruncatedFrameGrowsWithData(t *testing.T) {
	// A header that claims 60 MiB followed by 10 bytes and EOF.
	hdr := binary.BigEndian.AppendUint32(nil, 60<<20)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := NewReader(bytes.NewReader(append(hdr, make([]byte, 10)...)), 0).ReadFrame(nil)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want ErrUnexpectedEOF", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 2<<20 {
		t.Errorf("allocated %d bytes for 10 received", grew)
	}
}

func TestBadHeaders(t *testing.T) {
	for name, in := range map[string][]byte{
		"negative":      {0xff, 0xff, 0xff, 0xfe, 0},
		"short-in-long": {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 5},
	} {
		if _, err := NewReader(bytes.NewReader(in), 0).ReadFrame(nil); !errors.Is(err, ErrBadHeader) {
			t.Errorf("%s: err = %v, want ErrBadHeader", name, err)
		}
	}
	for name, in := range map[string][]byte{
		"mid-header":  {0, 0},
		"mid-payload": {0, 0, 0, 4, 'a'},
		"mid-long":    {0xff, 0xff, 0xff, 0xff, 0, 0},
	} {
		if _, err := NewReader(bytes.NewReader(in), 0).ReadFrame(nil); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: err = %v, want ErrUnexpectedEOF", name, err)
		}
	}
}

func TestLimitIsSettable(t *testing.T) {
	var stream bytes.Buffer
	WriteFrame(&stream, make([]byte, 100), 0)
	if err := WriteFrame(&stream, make([]byte, 100), 99); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("writer limit: %v", err)
	}
	fr := NewReader(&stream, 99)
	if _, err := fr.ReadFrame(nil); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("reader limit: %v", err)
	}
}

// A read deadline in the middle of a frame must not lose the bytes read so far.
func TestResumeAfterTimeout(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	fr := NewReader(r, 0)
	frame := AppendHeader(nil, 6)
	frame = append(frame, "abcdef"...)
	for _, cut := range []int{2, 7} { // inside the header, inside the payload
		w.Write(frame[:cut])
		r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := fr.ReadFrame(nil); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("cut %d: err = %v, want deadline", cut, err)
		}
		r.SetReadDeadline(time.Time{})
		w.Write(frame[cut:])
		got, err := fr.ReadFrame(nil)
		if err != nil || string(got) != "abcdef" {
			t.Fatalf("cut %d: resumed read = %q, %v", cut, got, err)
		}
	}
}
