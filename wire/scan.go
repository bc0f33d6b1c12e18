package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of arrays and maps a payload may have:
// msgpack-python's C unpacker stops at the same depth (SPEC section 3.2).
const MaxDepth = 1024

const (
	// MapWeight is what a map counts for in the container budget; an array
	// counts 1. A decoded map costs Python about three times what a list
	// costs, and Go more (SPEC section 3.2).
	MapWeight = 3
	// MinContainerBudget is the smallest container budget: no payload of
	// 64 KiB or less can reach it, so small payloads never pay for the
	// check (a Python decoder skips counting them).
	MinContainerBudget = 3 << 16
)

// ContainerBudget returns the most arrays + MapWeight × maps a payload of n
// bytes may hold: max(MinContainerBudget, n/3), so a list of [int, int]
// pairs (3 bytes each) fits and decoding costs each side a bounded multiple
// of the payload's size (SPEC section 3.2).
func ContainerBudget(n int) int { return max(MinContainerBudget, n/3) }

// Validate checks that p is exactly one msgpack object that obeys SPEC
// section 3: well formed, no trailing bytes, at most MaxDepth nested
// containers and no more than ContainerBudget(len(p)) of them, valid UTF-8
// in every str, no extension type but a well-formed timestamp, map keys of
// supported kinds, and no length that claims more elements or bytes than
// the payload holds (so decoding allocates nothing the payload does not pay
// for).
func Validate(p []byte) error { return validate(p, MinContainerBudget) }

// validate is Validate with the budget's minimum as a parameter, so that
// fuzzing reaches the budget with small payloads.
func validate(p []byte, minBudget int) error {
	s := scanner{p: p, budget: max(minBudget, len(p)/3)}
	if err := s.value(0, false); err != nil {
		return err
	}
	if s.i != len(p) {
		detail := fmt.Sprintf("%d trailing bytes after the object", len(p)-s.i)
		if v, ok := pickleProtocol(p); ok {
			detail += fmt.Sprintf("; the payload looks like a pickle (protocol %d), not msgpack: "+
				"the sender used pickle (multiprocessing's Connection.send?) instead of gobridge's send", v)
		}
		return &scanError{kind: ErrMalformed, detail: detail, off: -1}
	}
	return nil
}

// pickleProtocol reports whether p starts as a pickle of protocol 2 to 5
// does (the PROTO opcode 0x80, then the protocol number).
func pickleProtocol(p []byte) (int, bool) {
	if len(p) >= 2 && p[0] == 0x80 && p[1] >= 2 && p[1] <= 5 {
		return int(p[1]), true
	}
	return 0, false
}

// A scanError is what the scanner returns: a sentinel, what was wrong and
// where (off < 0: nowhere in particular).
type scanError struct {
	kind   error
	detail string
	off    int
}

func (e *scanError) Error() string {
	if e.off < 0 {
		return e.kind.Error() + ": " + e.detail
	}
	return fmt.Sprintf("%v: %s at offset %d", e.kind, e.detail, e.off)
}

func (e *scanError) Unwrap() error { return e.kind }

type scanner struct {
	p      []byte
	i      int
	weight int  // arrays + MapWeight × maps seen so far
	budget int  // the most weight allowed
	binKey bool // bin map keys are fine (checking what an encoder wrote: Python decodes them)
}

// fail builds an error; it is kept out of line so that the checks that
// call it stay small enough to inline.
//
//go:noinline
func (s *scanner) fail(kind error, off int, format string, args ...any) error {
	return &scanError{kind: kind, detail: fmt.Sprintf(format, args...), off: off}
}

//go:noinline
func (s *scanner) truncated(n uint64) error {
	return s.fail(ErrMalformed, s.i, "truncated (need %d bytes, %d left)", n, len(s.p)-s.i)
}

func (s *scanner) need(n uint64) error {
	if uint64(len(s.p)-s.i) < n {
		return s.truncated(n)
	}
	return nil
}

func (s *scanner) uint(n int) (uint64, error) {
	if err := s.need(uint64(n)); err != nil {
		return 0, err
	}
	var v uint64
	switch n {
	case 1:
		v = uint64(s.p[s.i])
	case 2:
		v = uint64(binary.BigEndian.Uint16(s.p[s.i:]))
	case 4:
		v = uint64(binary.BigEndian.Uint32(s.p[s.i:]))
	}
	s.i += n
	return v, nil
}

func (s *scanner) skip(n uint64) error {
	if err := s.need(n); err != nil {
		return err
	}
	s.i += int(n)
	return nil
}

func (s *scanner) str(n uint64) error {
	if err := s.need(n); err != nil {
		return err
	}
	if !utf8.Valid(s.p[s.i : s.i+int(n)]) {
		return s.badUTF8(n)
	}
	s.i += int(n)
	return nil
}

//go:noinline
func (s *scanner) badUTF8(n uint64) error { return s.fail(ErrInvalidUTF8, s.i, "a str of %d bytes", n) }

// container checks n elements (2n for maps) after a header at offset at.
func (s *scanner) container(n uint64, isMap bool, depth, at int) error {
	if depth >= MaxDepth {
		return s.fail(ErrTooDeep, at, "more than %d nested arrays/maps", MaxDepth)
	}
	per := uint64(1)
	if isMap {
		per = 2
		s.weight += MapWeight
	} else {
		s.weight++
	}
	if s.weight > s.budget {
		return s.fail(ErrTooManyContainers, at, "more than %d (arrays count 1, maps %d) in a payload of %d bytes, "+
			"the most its size allows: max(%d, bytes/3)", s.budget, MapWeight, len(s.p), MinContainerBudget)
	}
	if err := s.need(n * per); err != nil { // every element takes at least one byte
		return err
	}
	for k := uint64(0); k < n; k++ {
		if isMap {
			if err := s.value(depth+1, true); err != nil {
				return err
			}
		}
		if err := s.value(depth+1, false); err != nil {
			return err
		}
	}
	return nil
}

func (s *scanner) ext(n uint64) error {
	if err := s.need(1 + n); err != nil {
		return err
	}
	typ := int8(s.p[s.i])
	s.i++
	if typ != -1 {
		return s.fail(ErrUnknownExtension, s.i-1, "type %d", typ)
	}
	d := s.p[s.i : s.i+int(n)]
	var nsec uint64
	switch n {
	case 4:
	case 8:
		nsec = binary.BigEndian.Uint64(d) >> 34
	case 12:
		nsec = uint64(binary.BigEndian.Uint32(d))
	default:
		return s.fail(ErrMalformed, s.i-1, "timestamp of %d bytes (want 4, 8 or 12)", n)
	}
	if nsec >= 1e9 {
		return s.fail(ErrMalformed, s.i-1, "timestamp nanoseconds %d out of range", nsec)
	}
	s.i += int(n)
	return nil
}

func (s *scanner) badKey(what string) error {
	return s.fail(ErrUnsupportedKey, s.i-1, "%s used as a map key", what)
}

func (s *scanner) value(depth int, isKey bool) error {
	if err := s.need(1); err != nil {
		return err
	}
	at := s.i
	c := s.p[s.i]
	s.i++
	switch {
	case c <= 0x7f || c >= 0xe0: // fixint
		return nil
	case c <= 0x8f: // fixmap
		if isKey {
			return s.badKey("a map")
		}
		return s.container(uint64(c&0x0f), true, depth, at)
	case c <= 0x9f: // fixarray
		if isKey {
			return s.badKey("an array")
		}
		return s.container(uint64(c&0x0f), false, depth, at)
	case c <= 0xbf: // fixstr: most keys and short strings, checked here when ASCII
		n := int(c & 0x1f)
		if len(s.p)-s.i < n {
			return s.truncated(uint64(n))
		}
		for _, b := range s.p[s.i : s.i+n] {
			if b >= utf8.RuneSelf {
				return s.str(uint64(n))
			}
		}
		s.i += n
		return nil
	}
	switch c {
	case 0xc0, 0xc2, 0xc3: // nil, false, true
		return nil
	case 0xc1:
		return s.fail(ErrMalformed, at, "reserved byte 0xc1")
	case 0xc4, 0xc5, 0xc6: // bin 8/16/32
		if isKey && !s.binKey {
			return s.badKey("a bin (Go cannot key a map with []byte)")
		}
		n, err := s.uint(1 << (c - 0xc4))
		if err != nil {
			return err
		}
		return s.skip(n)
	case 0xc7, 0xc8, 0xc9: // ext 8/16/32
		n, err := s.uint(1 << (c - 0xc7))
		if err != nil {
			return err
		}
		return s.ext(n)
	case 0xca:
		return s.skip(4)
	case 0xcb:
		return s.skip(8)
	case 0xcc, 0xd0:
		return s.skip(1)
	case 0xcd, 0xd1:
		return s.skip(2)
	case 0xce, 0xd2:
		return s.skip(4)
	case 0xcf, 0xd3:
		return s.skip(8)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1/2/4/8/16
		return s.ext(1 << (c - 0xd4))
	case 0xd9, 0xda, 0xdb: // str 8/16/32
		n, err := s.uint(1 << (c - 0xd9))
		if err != nil {
			return err
		}
		return s.str(n)
	case 0xdc, 0xdd: // array 16/32
		if isKey {
			return s.badKey("an array")
		}
		n, err := s.uint(2 << (c - 0xdc))
		if err != nil {
			return err
		}
		return s.container(n, false, depth, at)
	case 0xde, 0xdf: // map 16/32
		if isKey {
			return s.badKey("a map")
		}
		n, err := s.uint(2 << (c - 0xde))
		if err != nil {
			return err
		}
		return s.container(n, true, depth, at)
	}
	panic("unreachable")
}

// checkEncoded checks the one object an encoder wrote at p (a value at the
// given depth, or a map key) as a decoder would, adding its containers to
// *weight. The container budget is the encoder's to check, once the whole
// payload's size is known.
func checkEncoded(p []byte, depth int, isKey bool, weight *int) error {
	s := scanner{p: p, budget: math.MaxInt, binKey: true}
	err := s.value(depth, isKey)
	*weight += s.weight
	return err
}
