package shm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// KindShareableList marks segments created by NewShareableList.
const KindShareableList = "shareable_list"

// ShareableList is a multiprocessing.shared_memory.ShareableList (the layout
// of CPython 3.9 and later, SPEC section 9.7). Values are int64, float64,
// bool, string, []byte and nil, as in Python. Like Python's, the list has a
// fixed length and each slot a fixed capacity; its methods are not atomic
// with respect to other processes writing the same slot.
type ShareableList struct {
	m       *MMap
	n       int
	offsets []int64 // n+1 offsets from the data area's start
}

const (
	slAlign      = 8
	slFmtInt     = "q"
	slFmtFloat   = "d"
	slFmtBool    = "xxxxxxx?"
	slFmtNone    = "xxxxxx?x"
	slCodeValue  = 0 // int, float, bool
	slCodeStr    = 1
	slCodeBytes  = 2
	slCodeNone   = 3
	slMaxEntries = 1 << 24
)

var ne = binary.NativeEndian

// OpenShareableList attaches to the ShareableList in segment name (Python's
// ShareableList(name=name)). It checks the whole layout first and returns an
// error wrapping ErrLayout when any part of it is not what CPython 3.9+
// writes. Close it when done; that does not remove the segment.
func OpenShareableList(name string, opts ...OpenOption) (*ShareableList, error) {
	opts = append(opts, WithAttachOnly())
	m, err := Open(name, 0, AccessWrite, opts...)
	if err != nil {
		return nil, err
	}
	l := &ShareableList{m: m}
	if err := Guard(func() { err = l.parse() }); err != nil {
		m.Close()
		return nil, err
	}
	if err != nil {
		m.Close()
		return nil, err
	}
	return l, nil
}

// NewShareableList creates segment name holding values, laid out exactly as
// Python's ShareableList(values, name=name) would. Strings and byte slices
// get their Python capacity: 8*(len/8+1) bytes (UTF-8 bytes for strings).
func NewShareableList(name string, values []any, opts ...OpenOption) (*ShareableList, error) {
	n := len(values)
	formats := make([]string, n)
	codes := make([]int8, n)
	offsets := make([]int64, n+1)
	norm := make([]any, n)
	for i, v := range values {
		nv, err := normalize(v)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		norm[i] = nv
		size := int64(slAlign)
		switch x := nv.(type) {
		case int64:
			formats[i], codes[i] = slFmtInt, slCodeValue
		case float64:
			formats[i], codes[i] = slFmtFloat, slCodeValue
		case bool:
			formats[i], codes[i] = slFmtBool, slCodeValue
		case nil:
			formats[i], codes[i] = slFmtNone, slCodeNone
		case string:
			size = int64(slAlign * (len(x)/slAlign + 1))
			formats[i], codes[i] = strconv.FormatInt(size, 10)+"s", slCodeStr
		case []byte:
			size = int64(slAlign * (len(x)/slAlign + 1))
			formats[i], codes[i] = strconv.FormatInt(size, 10)+"s", slCodeBytes
		}
		if len(formats[i]) > 8 {
			return nil, fmt.Errorf("%w: item %d needs format %q, longer than 8 bytes", ErrType, i, formats[i])
		}
		offsets[i+1] = offsets[i] + size
	}
	dataStart := int64(n+2) * 8
	total := dataStart + offsets[n] + int64(n)*8 + int64(n)
	opts = append([]OpenOption{WithKind(KindShareableList)}, opts...)
	opts = append(opts, WithCreateOnly())
	m, err := Open(name, int(total), AccessWrite, opts...)
	if err != nil {
		return nil, err
	}
	l := &ShareableList{m: m, n: n, offsets: offsets}
	err = Guard(func() {
		b := m.data
		ne.PutUint64(b[0:], uint64(n))
		for i, o := range offsets {
			ne.PutUint64(b[8+8*i:], uint64(o))
		}
		for i, v := range norm {
			l.putRaw(i, formats[i], codes[i], v)
		}
	})
	if err != nil {
		m.Close()
		return nil, err
	}
	return l, nil
}

func (l *ShareableList) dataStart() int64    { return int64(l.n+2) * 8 }
func (l *ShareableList) formatsStart() int64 { return l.dataStart() + l.offsets[l.n] }
func (l *ShareableList) codesStart() int64   { return l.formatsStart() + int64(l.n)*8 }

func layoutErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrLayout, fmt.Sprintf(format, args...))
}

func (l *ShareableList) parse() error {
	b := l.m.data
	size := int64(len(b))
	if size < 16 {
		return layoutErr("segment has %d bytes, fewer than the 16 of an empty list", size)
	}
	n := int64(ne.Uint64(b[0:]))
	if n < 0 || n > slMaxEntries || (n+2)*8+9*n > size {
		return layoutErr("item count %d does not fit a %d-byte segment", n, size)
	}
	l.n = int(n)
	l.offsets = make([]int64, n+1)
	for i := range l.offsets {
		l.offsets[i] = int64(ne.Uint64(b[8+8*i:]))
	}
	if l.offsets[0] != 0 {
		return layoutErr("first offset is %d, not 0 (a Python 3.8 list stores sizes, not offsets)", l.offsets[0])
	}
	for i := 1; i <= l.n; i++ {
		d := l.offsets[i] - l.offsets[i-1]
		if d < slAlign || d%slAlign != 0 || l.offsets[i] > size {
			return layoutErr("item %d occupies %d bytes (offsets %d..%d): not a positive multiple of 8", i-1, d, l.offsets[i-1], l.offsets[i])
		}
	}
	if l.codesStart()+n > size {
		return layoutErr("list needs %d bytes, the segment has %d", l.codesStart()+n, size)
	}
	for i := 0; i < l.n; i++ {
		if _, _, err := l.slot(i); err != nil {
			return err
		}
	}
	return nil
}

// slot reads and checks item i's format and back-transform code.
func (l *ShareableList) slot(i int) (string, int8, error) {
	b := l.m.data
	raw := b[l.formatsStart()+int64(i)*8:][:8]
	fmtStr := string(bytes.TrimRight(raw, "\x00"))
	code := int8(b[l.codesStart()+int64(i)])
	alloc := l.offsets[i+1] - l.offsets[i]
	switch fmtStr {
	case slFmtInt, slFmtFloat, slFmtBool:
		if code == slCodeValue {
			return fmtStr, code, nil
		}
	case slFmtNone:
		if code == slCodeNone {
			return fmtStr, code, nil
		}
	default:
		if k, ok := strFormat(fmtStr); ok && k <= alloc && (code == slCodeStr || code == slCodeBytes) {
			return fmtStr, code, nil
		}
	}
	return "", 0, layoutErr("item %d has format %q with back-transform code %d in a %d-byte slot", i, fmtStr, code, alloc)
}

// strFormat parses "<k>s".
func strFormat(f string) (int64, bool) {
	if len(f) < 2 || f[len(f)-1] != 's' {
		return 0, false
	}
	k, err := strconv.ParseInt(f[:len(f)-1], 10, 64)
	if err != nil || k <= 0 || f[0] == '+' || f[0] == '0' {
		return 0, false
	}
	return k, true
}

// Len returns the number of items.
func (l *ShareableList) Len() int { return l.n }

// Name returns the segment's name.
func (l *ShareableList) Name() string { return l.m.Tag() }

// Format returns the struct format of all items, Python's l.format.
func (l *ShareableList) Format() (string, error) {
	var sb bytes.Buffer
	err := l.guard(func() error {
		for i := 0; i < l.n; i++ {
			f, _, err := l.slot(i)
			if err != nil {
				return err
			}
			sb.WriteString(f)
		}
		return nil
	})
	return sb.String(), err
}

func (l *ShareableList) guard(f func() error) error {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	if l.m.closed {
		return ErrClosed
	}
	var err error
	if gerr := Guard(func() { err = f() }); gerr != nil {
		return gerr
	}
	return err
}

func (l *ShareableList) index(i int) (int, error) {
	if i < 0 {
		i += l.n
	}
	if i < 0 || i >= l.n {
		return 0, fmt.Errorf("%w: index %d of %d items", ErrOutOfRange, i, l.n)
	}
	return i, nil
}

// Get returns item i (negative counts from the end) as int64, float64, bool,
// string, []byte or nil. Strings and bytes lose trailing NUL bytes, as in
// Python.
func (l *ShareableList) Get(i int) (any, error) {
	i, err := l.index(i)
	if err != nil {
		return nil, err
	}
	var v any
	err = l.guard(func() error {
		f, code, err := l.slot(i)
		if err != nil {
			return err
		}
		p := l.m.data[l.dataStart()+l.offsets[i]:]
		switch f {
		case slFmtInt:
			v = int64(ne.Uint64(p))
		case slFmtFloat:
			v = math.Float64frombits(ne.Uint64(p))
		case slFmtBool:
			v = p[7] != 0
		case slFmtNone:
			v = nil
		default:
			k, _ := strFormat(f)
			s := bytes.TrimRight(p[:k], "\x00")
			if code == slCodeStr {
				if !utf8.Valid(s) {
					return fmt.Errorf("%w: item %d is not valid UTF-8", ErrLayout, i)
				}
				v = string(s)
			} else {
				v = append([]byte{}, s...)
			}
		}
		return nil
	})
	return v, err
}

// List returns all items.
func (l *ShareableList) List() ([]any, error) {
	out := make([]any, l.n)
	for i := range out {
		v, err := l.Get(i)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func normalize(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string, []byte, int64, float64:
		return x, nil
	case int:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint:
		if uint64(x) > math.MaxInt64 {
			return nil, fmt.Errorf("%w: %d does not fit int64 (struct format q)", ErrType, x)
		}
		return int64(x), nil
	case uint64:
		if x > math.MaxInt64 {
			return nil, fmt.Errorf("%w: %d does not fit int64 (struct format q)", ErrType, x)
		}
		return int64(x), nil
	case float32:
		return float64(x), nil
	}
	return nil, fmt.Errorf("%w: %T", ErrType, v)
}

// Set stores v at item i. As in Python, a string or []byte must fit the
// slot's capacity (ErrOutOfRange otherwise), and any item may change type.
func (l *ShareableList) Set(i int, v any) error {
	i, err := l.index(i)
	if err != nil {
		return err
	}
	nv, err := normalize(v)
	if err != nil {
		return err
	}
	return l.guard(func() error {
		cur, _, err := l.slot(i)
		if err != nil {
			return err
		}
		alloc := l.offsets[i+1] - l.offsets[i]
		var f string
		var code int8
		switch x := nv.(type) {
		case int64:
			f, code = slFmtInt, slCodeValue
		case float64:
			f, code = slFmtFloat, slCodeValue
		case bool:
			f, code = slFmtBool, slCodeValue
		case nil:
			f, code = slFmtNone, slCodeNone
		case string, []byte:
			size := int64(len(asBytes(x)))
			if size > alloc {
				return fmt.Errorf("%w: %d bytes exceed the item's %d-byte storage", ErrOutOfRange, size, alloc)
			}
			code = slCodeBytes
			if _, ok := x.(string); ok {
				code = slCodeStr
			}
			if _, ok := strFormat(cur); ok {
				f = cur
			} else {
				f = strconv.FormatInt(alloc, 10) + "s"
			}
		}
		l.putRaw(i, f, code, nv)
		return nil
	})
}

func asBytes(v any) []byte {
	if s, ok := v.(string); ok {
		return []byte(s)
	}
	return v.([]byte)
}

// putRaw writes item i's format, code and value (format first, as Python).
func (l *ShareableList) putRaw(i int, f string, code int8, v any) {
	b := l.m.data
	fs := b[l.formatsStart()+int64(i)*8:][:8]
	clear(fs)
	copy(fs, f)
	b[l.codesStart()+int64(i)] = byte(code)
	p := b[l.dataStart()+l.offsets[i]:]
	switch x := v.(type) {
	case int64:
		ne.PutUint64(p, uint64(x))
	case float64:
		ne.PutUint64(p, math.Float64bits(x))
	case bool:
		clear(p[:8])
		if x {
			p[7] = 1
		}
	case nil:
		clear(p[:8])
	default:
		k, _ := strFormat(f)
		clear(p[:k])
		copy(p[:k], asBytes(x))
	}
}

// Close releases the mapping. It does not remove the segment unless this
// list was made by NewShareableList and is its last gobridge handle.
func (l *ShareableList) Close() error { return l.m.Close() }

// Unlink removes the list's segment (Python's l.shm.unlink()).
func (l *ShareableList) Unlink() error { return Unlink(l.m.Tag()) }
