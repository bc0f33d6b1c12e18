package bridge

// Rendezvous requests of the fifo: transport (wire/SPEC.md section 6.6): the
// one frame a dialer writes to the listener's FIFO, and the scanner that
// finds them in whatever else the FIFO carries.

import (
	"bytes"
	"fmt"

	"github.com/gobridge/gobridge/wire"
)

// Request names are "<base>.<pid>.<12 hex>": base is the rendezvous FIFO's
// basename, pid 1 to 10 decimal digits.
const (
	fifoPidMax = 10
	fifoHexLen = 12
	// fifoReqTail bounds the part after "<base>.": pid, '.', hex.
	fifoReqTailMin = 1 + 1 + fifoHexLen
	fifoReqTailMax = fifoPidMax + 1 + fifoHexLen
)

var errFIFOPathTooLong = fmt.Errorf("%w: fifo path too long", ErrBadAddress)

// fifoRequestFrame returns the request frame for name: a SPEC section 2
// header and the msgpack str, at most PIPE_BUF bytes so that one write(2)
// is atomic.
func fifoRequestFrame(name string) ([]byte, error) {
	p, err := wire.Marshal(name)
	if err != nil {
		return nil, err
	}
	frame := append(wire.AppendHeader(nil, int64(len(p))), p...)
	if len(frame) > pipeBuf {
		return nil, errFIFOPathTooLong
	}
	return frame, nil
}

// fifoStrHeader is the shortest msgpack str header that a payload of n
// bytes can start with, and the length of the str it announces; ok is false
// for the payload sizes no str in its shortest form fills exactly.
func fifoStrHeader(n int) (hdr [3]byte, hlen, strLen int, ok bool) {
	switch {
	case n >= 1 && n-1 < 32:
		return [3]byte{0xa0 | byte(n-1)}, 1, n - 1, true
	case n-2 >= 32 && n-2 < 256:
		return [3]byte{0xd9, byte(n - 2)}, 2, n - 2, true
	case n-3 >= 256 && n-3 < 1<<16:
		return [3]byte{0xda, byte((n - 3) >> 8), byte(n - 3)}, 3, n - 3, true
	}
	return hdr, 0, 0, false
}

type fifoMatch int

const (
	fifoNoMatch fifoMatch = iota // p does not start with a request
	fifoPartial                  // p is the start of a request, or may be
	fifoWhole                    // p starts with a whole request
)

// matchFIFORequest checks whether p starts with a request for the listener
// whose FIFO's basename is base. With fifoWhole it returns the frame's
// length and the requested name. Every byte of p is checked as soon as it is
// there, so a prefix that cannot become a request is refused at once.
func matchFIFORequest(p []byte, base string) (frameLen int, name string, m fifoMatch) {
	// The header: a 4-byte length well under PIPE_BUF, so its first two
	// bytes are zero and the third at most 0x0f.
	if len(p) < 4 {
		for i, b := range p {
			if (i < 2 && b != 0) || (i == 2 && b > 0x0f) {
				return 0, "", fifoNoMatch
			}
		}
		return 0, "", fifoPartial
	}
	n64, hlen, err := wire.ParseHeader(p)
	if err != nil || hlen != 4 {
		return 0, "", fifoNoMatch
	}
	n := int(n64)
	sh, shlen, strLen, ok := fifoStrHeader(n)
	tail := strLen - len(base) - 1
	if !ok || 4+n > pipeBuf || tail < fifoReqTailMin || tail > fifoReqTailMax {
		return 0, "", fifoNoMatch
	}
	// Then the str header, "<base>.", and the tail, byte by byte.
	body := p[4:]
	pidLen := tail - 1 - fifoHexLen
	for i, b := range body {
		if i >= n {
			break
		}
		var good bool
		switch j := i - shlen; {
		case i < shlen:
			good = b == sh[i]
		case j < len(base):
			good = b == base[j]
		case j == len(base):
			good = b == '.'
		case j-len(base)-1 < pidLen:
			good = b >= '0' && b <= '9'
		case j-len(base)-1 == pidLen:
			good = b == '.'
		default:
			good = (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f')
		}
		if !good {
			return 0, "", fifoNoMatch
		}
	}
	if len(body) < n {
		return 0, "", fifoPartial
	}
	return 4 + n, string(body[shlen:n]), fifoWhole
}

// fifoScanBuf is the scanner's buffer size: a partial request (less than
// PIPE_BUF) kept from one feed to the next, and room for new bytes.
const fifoScanBuf = 2 * pipeBuf

// fifoRequestScanner finds the requests in the bytes read from a rendezvous
// FIFO (SPEC 6.6). Anything else is skipped a byte at a time until a request
// starts: no header is trusted for a size, and the buffer never grows past
// fifoScanBuf. A request, written whole by one atomic write, is never lost
// to garbage before it: its header starts with two zero bytes, and every
// false start that reaches them fails there (a request's str holds no zero
// byte, and a frame or str header that takes them in announces no request),
// so the scan comes to the real start. FuzzFIFORequestScanner checks this.
type fifoRequestScanner struct {
	base string
	buf  []byte // bytes kept from earlier feeds: a possible request's start
}

func newFIFORequestScanner(base string) *fifoRequestScanner {
	return &fifoRequestScanner{base: base, buf: make([]byte, 0, fifoScanBuf)}
}

// feed takes the next bytes read from the FIFO and appends to names the
// requests that are now whole.
func (s *fifoRequestScanner) feed(p []byte, names []string) []string {
	for len(p) > 0 {
		k := copy(s.buf[len(s.buf):cap(s.buf)], p)
		s.buf = s.buf[:len(s.buf)+k]
		p = p[k:]
		names = s.scan(names)
	}
	return names
}

// scan consumes the requests and garbage in s.buf and keeps only the start
// of a request still to come (less than PIPE_BUF bytes).
func (s *fifoRequestScanner) scan(names []string) []string {
	b := s.buf
	i := 0
	for i < len(b) {
		z := bytes.IndexByte(b[i:], 0)
		if z < 0 {
			i = len(b)
			break
		}
		i += z
		n, name, m := matchFIFORequest(b[i:], s.base)
		switch m {
		case fifoWhole:
			names = append(names, name)
			i += n
			continue
		case fifoPartial:
			s.buf = s.buf[:copy(s.buf, b[i:])]
			return names
		}
		i++
	}
	s.buf = s.buf[:0]
	return names
}
