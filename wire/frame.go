package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

const (
	// DefaultMaxFrameSize is the default limit on a payload, for readers and
	// writers alike (SPEC section 2.1).
	DefaultMaxFrameSize = 64 << 20

	// MaxHeaderSize is the size of the longest frame header.
	MaxHeaderSize = 12

	// shortMax is the largest payload a 4-byte header can describe.
	shortMax = math.MaxInt32

	// growStep bounds how far ahead of the received bytes a reader allocates.
	growStep = 1 << 20
)

// AppendHeader appends the frame header for an n-byte payload to dst.
func AppendHeader(dst []byte, n int64) []byte {
	if n <= shortMax {
		return binary.BigEndian.AppendUint32(dst, uint32(n))
	}
	dst = append(dst, 0xff, 0xff, 0xff, 0xff)
	return binary.BigEndian.AppendUint64(dst, uint64(n))
}

// HeaderSize returns the size of the header for an n-byte payload.
func HeaderSize(n int64) int {
	if n <= shortMax {
		return 4
	}
	return 12
}

// ErrShortHeader: ParseHeader was given fewer bytes than the header needs
// (4, or 12 for the long form).
var ErrShortHeader = errors.New("wire: incomplete frame header")

// ParseHeader reads the SPEC section 2 frame header at the start of b and
// returns the payload size it announces and the header's length (4 or 12).
// Fewer bytes than the header needs give ErrShortHeader; a header no writer
// produces (a negative length other than -1, a long form whose length fits
// in 4 bytes) gives ErrBadHeader; a long form above math.MaxInt64 gives
// ErrFrameTooLarge. It applies no other limit: callers compare n with theirs.
func ParseHeader(b []byte) (n int64, hdrLen int, err error) {
	if len(b) < 4 {
		return 0, 0, ErrShortHeader
	}
	s := int32(binary.BigEndian.Uint32(b))
	if s >= 0 {
		return int64(s), 4, nil
	}
	if s != -1 {
		return 0, 0, fmt.Errorf("%w: negative length %d", ErrBadHeader, s)
	}
	if len(b) < 12 {
		return 0, 0, ErrShortHeader
	}
	u := binary.BigEndian.Uint64(b[4:12])
	if u <= shortMax {
		return 0, 0, fmt.Errorf("%w: 8-byte length %d fits in 4 bytes", ErrBadHeader, u)
	}
	if u > math.MaxInt64 {
		return 0, 0, tooLarge(u, math.MaxInt64)
	}
	return int64(u), 12, nil
}

// CheckSize reports ErrFrameTooLarge when a payload of n bytes to send
// exceeds max (max <= 0: no limit).
func CheckSize(n, max int64) error {
	if max > 0 && n > max {
		return fmt.Errorf("%w: bad message length: %d bytes is more than the limit of %d "+
			"(raise it on both ends: bridge.WithMaxFrameSize in Go, max_frame_size= in Python)", ErrFrameTooLarge, n, max)
	}
	return nil
}

// tooLarge is the reader's ErrFrameTooLarge for a header claiming n bytes.
func tooLarge(n uint64, max int64) error {
	return fmt.Errorf("%w: bad message length: a frame header claims %d bytes, more than the limit of %d "+
		"(raise it with bridge.WithMaxFrameSize, or the max of wire.NewReader)", ErrFrameTooLarge, n, max)
}

// WriteFrame writes one frame carrying p to w, as a single Write when the
// payload is small, refusing payloads over max (max <= 0: no limit).
func WriteFrame(w io.Writer, p []byte, max int64) error {
	if err := CheckSize(int64(len(p)), max); err != nil {
		return err
	}
	if len(p) <= 64<<10 {
		buf := make([]byte, 0, MaxHeaderSize+len(p))
		buf = AppendHeader(buf, int64(len(p)))
		_, err := w.Write(append(buf, p...))
		return err
	}
	hdr := AppendHeader(make([]byte, 0, MaxHeaderSize), int64(len(p)))
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(p)
	return err
}

// A Reader reads frames from a byte stream. It keeps its place across errors
// that leave the stream intact (a deadline, a cancelled context): the next
// ReadFrame resumes the same frame. Framing errors (ErrFrameTooLarge,
// ErrBadHeader, a truncated frame) are sticky, because the stream is out of
// step after them.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	r   io.Reader
	max int64

	hdr  [MaxHeaderSize]byte
	nhdr int   // header bytes read so far
	size int64 // payload size; -1 while the header is incomplete
	buf  []byte
	n    int64 // payload bytes read so far
	err  error // sticky framing error
}

// NewReader returns a Reader of r with the given limit (max <= 0: DefaultMaxFrameSize).
func NewReader(r io.Reader, max int64) *Reader {
	if max <= 0 {
		max = DefaultMaxFrameSize
	}
	return &Reader{r: r, max: max, size: -1}
}

// SetMaxFrameSize changes the limit for frames whose header is not read yet.
func (fr *Reader) SetMaxFrameSize(max int64) {
	if max <= 0 {
		max = DefaultMaxFrameSize
	}
	fr.max = max
}

// MaxFrameSize returns the current limit.
func (fr *Reader) MaxFrameSize() int64 { return fr.max }

// InFrame reports whether part of a frame has been read.
func (fr *Reader) InFrame() bool { return fr.nhdr > 0 }

// Err returns the sticky framing error, if any.
func (fr *Reader) Err() error { return fr.err }

// ReadFrame reads the next frame and returns its payload. The payload is
// appended to dst[:0] when dst has room for it, else a new slice is allocated;
// the caller owns the result. At a clean end of stream it returns io.EOF; in
// the middle of a frame, an error wrapping io.ErrUnexpectedEOF.
func (fr *Reader) ReadFrame(dst []byte) ([]byte, error) {
	if fr.err != nil {
		return nil, fr.err
	}
	if fr.size < 0 {
		if err := fr.readHeader(); err != nil {
			return nil, err
		}
		if fr.size <= int64(cap(dst)) {
			fr.buf = dst[:fr.size]
		} else {
			fr.buf = make([]byte, min(fr.size, growStep))
		}
	}
	for fr.n < fr.size {
		if int64(len(fr.buf)) == fr.n { // grow in steps: memory follows the bytes that arrive
			next := make([]byte, min(fr.size, fr.n+max(growStep, fr.n)))
			copy(next, fr.buf[:fr.n])
			fr.buf = next
		}
		k, err := fr.r.Read(fr.buf[fr.n:])
		fr.n += int64(k)
		if err != nil && fr.n < fr.size {
			if err == io.EOF {
				return nil, fr.fail(fmt.Errorf("wire: got end of file during message (%d of %d payload bytes): %w",
					fr.n, fr.size, io.ErrUnexpectedEOF))
			}
			return nil, err
		}
	}
	p := fr.buf[:fr.size]
	fr.nhdr, fr.size, fr.buf, fr.n = 0, -1, nil, 0
	return p, nil
}

func (fr *Reader) readHeader() error {
	want := 4
	if fr.nhdr >= 4 && int32(binary.BigEndian.Uint32(fr.hdr[:4])) == -1 {
		want = 12
	}
	for fr.nhdr < want {
		k, err := fr.r.Read(fr.hdr[fr.nhdr:want])
		fr.nhdr += k
		if fr.nhdr == 4 && want == 4 && int32(binary.BigEndian.Uint32(fr.hdr[:4])) == -1 {
			want = 12
		}
		if err != nil && fr.nhdr < want {
			if err == io.EOF {
				if fr.nhdr == 0 {
					return io.EOF
				}
				return fr.fail(fmt.Errorf("wire: got end of file during message header: %w", io.ErrUnexpectedEOF))
			}
			return err
		}
	}
	size, _, err := ParseHeader(fr.hdr[:want])
	if err != nil {
		if errors.Is(err, ErrFrameTooLarge) { // above MaxInt64: name this reader's limit
			err = tooLarge(binary.BigEndian.Uint64(fr.hdr[4:12]), fr.max)
		}
		return fr.fail(err)
	}
	if size > fr.max {
		return fr.fail(tooLarge(uint64(size), fr.max))
	}
	fr.size = size
	return nil
}

func (fr *Reader) fail(err error) error {
	fr.err = err
	fr.buf = nil
	return err
}
