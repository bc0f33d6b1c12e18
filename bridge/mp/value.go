package mp

import (
	"context"
	"fmt"
	"math"
	"runtime/debug"
	"sync/atomic"
	"unsafe"
)

// Number is the set of Go types a Value or Array holds, one per typecode
// (SPEC section 10.3): int8 'b', uint8 'B', int16 'h', uint16 'H', int32 'i',
// uint32 'I', int64 'q' (or 'l'), uint64 'Q' (or 'L'), float32 'f',
// float64 'd'; and uint8 (byte) for 'c', a char of Python's (bytes of length
// 1), with WithTypecode('c').
type Number interface {
	~int8 | ~uint8 | ~int16 | ~uint16 | ~int32 | ~uint32 | ~int64 | ~uint64 | ~float32 | ~float64
}

// Typecode returns the default typecode of T.
func Typecode[T Number]() byte {
	var z T
	switch any(z).(type) {
	case int8:
		return 'b'
	case uint8:
		return 'B'
	case int16:
		return 'h'
	case uint16:
		return 'H'
	case int32:
		return 'i'
	case uint32:
		return 'I'
	case int64:
		return 'q'
	case uint64:
		return 'Q'
	case float32:
		return 'f'
	case float64:
		return 'd'
	}
	// A named type (~int32...): go by size and kind.
	size := unsafe.Sizeof(z)
	isFloat := isFloat[T]()
	neg := T(0)-1 < 0
	switch {
	case isFloat && size == 4:
		return 'f'
	case isFloat:
		return 'd'
	}
	codes := map[uintptr][2]byte{1: {'B', 'b'}, 2: {'H', 'h'}, 4: {'I', 'i'}, 8: {'Q', 'q'}}
	if neg {
		return codes[size][1]
	}
	return codes[size][0]
}

// ItemSize returns the bytes of one item of typecode tc (l and L are 8 bytes,
// Linux's C long), or 0 for an unknown typecode.
func ItemSize(tc byte) int {
	switch tc {
	case 'b', 'B', 'c':
		return 1
	case 'h', 'H':
		return 2
	case 'i', 'I', 'f':
		return 4
	case 'l', 'L', 'q', 'Q', 'd':
		return 8
	}
	return 0
}

func sameTypecode(a, b byte) bool {
	return a == b || (a == 'l' && b == 'q') || (a == 'q' && b == 'l') || (a == 'L' && b == 'Q') || (a == 'Q' && b == 'L')
}

func typecodeFor[T Number](c openConfig) (byte, error) {
	tc := Typecode[T]()
	if c.typecode != 0 {
		// 'c' (Python's ctypes.c_char, one byte) is held as a byte
		if !sameTypecode(tc, c.typecode) && !(c.typecode == 'c' && tc == 'B') {
			return 0, fmt.Errorf("%w %q for %T", ErrTypecode, c.typecode, *new(T))
		}
		tc = c.typecode
	}
	return tc, nil
}

const valueOff = 64 // the value of a Value, the items of an Array

// Value is one number in a named segment, multiprocessing.Value's
// counterpart. Load and Store are single atomic memory accesses; Add is an
// atomic read-modify-write against other Go Adds. A Python process does
// `v.value += 1` as a load and a store under the object's lock, so a
// counter shared with Python is changed under Lock on the Go side too (as
// Python's `with v.get_lock():`).
//
// Every accessor returns an error rather than letting a fault kill the
// process: ErrFault when another process truncated the segment (the handle
// is then broken), ErrClosed after Close.
type Value[T Number] struct {
	o  *object
	ul *userLock
	tc byte
}

// OpenValue creates Value name holding init, or attaches to it (its current
// value is kept; its typecode must match T: ErrKind otherwise).
func OpenValue[T Number](name string, init T, opts ...OpenOption) (*Value[T], error) {
	c := newOpenConfig(opts)
	tc, err := typecodeFor[T](c)
	if err != nil {
		return nil, err
	}
	o, err := openObject(name, kindValue, valueOff+8, c, [3]byte{kindValue, tc, byte(ItemSize(tc))},
		func(mem []byte) { *(*T)(unsafe.Pointer(&mem[valueOff])) = init }, nil)
	if err != nil {
		return nil, err
	}
	return &Value[T]{o: o, ul: newUserLock(o), tc: o.typecode}, nil
}

func (v *Value[T]) ptr() *T { return (*T)(unsafe.Pointer(&v.o.mem[valueOff])) }

// Name returns the value's name.
func (v *Value[T]) Name() string { return v.o.name }

// Typecode returns the value's typecode (read once, when opening).
func (v *Value[T]) Typecode() byte { return v.tc }

// Load reads the value atomically.
func (v *Value[T]) Load() (x T, err error) {
	o := v.o
	if err := o.usable(); err != nil {
		return x, err
	}
	defer o.guard(&err, nil, debug.SetPanicOnFault(true))
	return load(v.ptr()), nil
}

// Store writes the value atomically.
func (v *Value[T]) Store(x T) (err error) {
	o := v.o
	if err := o.usable(); err != nil {
		return err
	}
	defer o.guard(&err, nil, debug.SetPanicOnFault(true))
	store(v.ptr(), x)
	return nil
}

// Add adds delta atomically and returns the new value.
func (v *Value[T]) Add(delta T) (x T, err error) {
	o := v.o
	if err := o.usable(); err != nil {
		return x, err
	}
	defer o.guard(&err, nil, debug.SetPanicOnFault(true))
	return add(v.ptr(), delta), nil
}

// Lock takes the value's lock (Python's get_lock()), waiting until ctx is
// done. It is robust: a holder that dies releases it (SPEC section 10.8).
func (v *Value[T]) Lock(ctx context.Context) error { return v.ul.acquire(ctx) }

// Unlock releases the lock taken by Lock.
func (v *Value[T]) Unlock() error { return v.ul.release() }

// Close releases this handle; the last one removes the value unless kept.
func (v *Value[T]) Close() error { return v.o.Close() }

// Array is a fixed-length array of numbers in a named segment,
// multiprocessing.Array's counterpart. Each item is read and written
// atomically; Lock makes several accesses one step, for Python's
// get_lock() holders too. Accessors return errors as Value's do; an index
// out of range panics, as with a slice.
type Array[T Number] struct {
	o  *object
	ul *userLock
	n  int
}

// OpenArray creates Array name with the items of init (its length is the
// array's), or attaches to it (its items are kept; typecode and length must
// match: ErrKind otherwise).
func OpenArray[T Number](name string, init []T, opts ...OpenOption) (*Array[T], error) {
	return openArray(name, len(init), init, opts)
}

// OpenArrayLen is OpenArray with n zero items.
func OpenArrayLen[T Number](name string, n int, opts ...OpenOption) (*Array[T], error) {
	return openArray[T](name, n, nil, opts)
}

func openArray[T Number](name string, n int, init []T, opts []OpenOption) (*Array[T], error) {
	c := newOpenConfig(opts)
	tc, err := typecodeFor[T](c)
	if err != nil {
		return nil, err
	}
	size := ItemSize(tc)
	if n < 0 || n > (maxSegment-arrayItems)/size {
		return nil, fmt.Errorf("mp: array length %d out of range", n)
	}
	want := arrayItems + n*size
	o, err := openObject(name, kindArray, want, c, [3]byte{kindArray, tc, byte(size)},
		func(mem []byte) {
			*(*uint64)(unsafe.Pointer(&mem[arrayLenOff])) = uint64(n)
			for i, x := range init {
				*(*T)(unsafe.Pointer(&mem[arrayItems+i*size])) = x
			}
		},
		func(mem []byte) error {
			got := atomic.LoadUint64((*uint64)(unsafe.Pointer(&mem[arrayLenOff])))
			if got != uint64(n) {
				return fmt.Errorf("%w: %s has %d items, not %d", ErrKind, name, got, n)
			}
			if want > len(mem) {
				return fmt.Errorf("%w: %s: %d items do not fit %d bytes", ErrLayout, name, got, len(mem))
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	return &Array[T]{o: o, ul: newUserLock(o), n: n}, nil
}

// Array layout: the length at 64, items from 72.
const (
	arrayLenOff = valueOff
	arrayItems  = valueOff + 8
)

func (a *Array[T]) ptr(i int) *T {
	if i < 0 || i >= a.n {
		panic(fmt.Sprintf("mp: index %d out of range [0, %d)", i, a.n))
	}
	return (*T)(unsafe.Pointer(&a.o.mem[arrayItems+i*int(unsafe.Sizeof(*new(T)))]))
}

// Name returns the array's name.
func (a *Array[T]) Name() string { return a.o.name }

// Len returns the number of items (read once, when opening).
func (a *Array[T]) Len() int { return a.n }

// Load reads item i atomically; it panics when i is out of range.
func (a *Array[T]) Load(i int) (x T, err error) {
	p := a.ptr(i)
	o := a.o
	if err := o.usable(); err != nil {
		return x, err
	}
	defer o.guard(&err, nil, debug.SetPanicOnFault(true))
	return load(p), nil
}

// Store writes item i atomically.
func (a *Array[T]) Store(i int, x T) (err error) {
	p := a.ptr(i)
	o := a.o
	if err := o.usable(); err != nil {
		return err
	}
	defer o.guard(&err, nil, debug.SetPanicOnFault(true))
	store(p, x)
	return nil
}

// Add adds delta to item i atomically and returns the new value.
func (a *Array[T]) Add(i int, delta T) (x T, err error) {
	p := a.ptr(i)
	o := a.o
	if err := o.usable(); err != nil {
		return x, err
	}
	defer o.guard(&err, nil, debug.SetPanicOnFault(true))
	return add(p, delta), nil
}

// Snapshot copies the items out (take Lock first for a consistent copy).
func (a *Array[T]) Snapshot() (out []T, err error) {
	o := a.o
	if err := o.usable(); err != nil {
		return nil, err
	}
	defer o.guard(&err, nil, debug.SetPanicOnFault(true))
	out = make([]T, a.n)
	for i := range out {
		out[i] = load(a.ptr(i))
	}
	return out, nil
}

// CopyFrom stores src's items from index 0 (at most Len).
func (a *Array[T]) CopyFrom(src []T) (err error) {
	o := a.o
	if err := o.usable(); err != nil {
		return err
	}
	defer o.guard(&err, nil, debug.SetPanicOnFault(true))
	for i := 0; i < min(len(src), a.n); i++ {
		store(a.ptr(i), src[i])
	}
	return nil
}

// Lock takes the array's lock (Python's get_lock()); robust like Value's.
func (a *Array[T]) Lock(ctx context.Context) error { return a.ul.acquire(ctx) }

// Unlock releases the lock taken by Lock.
func (a *Array[T]) Unlock() error { return a.ul.release() }

// Close releases this handle; the last one removes the array unless kept.
func (a *Array[T]) Close() error { return a.o.Close() }

// load, store and add are atomic for every width: 4- and 8-byte items use
// sync/atomic directly; 1- and 2-byte items live in a naturally aligned
// 4-byte word (every item of a Value is at offset 64; Array items are packed,
// so a 1- or 2-byte item shares its word with neighbours, which the
// compare-and-swap leaves unchanged).
func load[T Number](p *T) T {
	switch unsafe.Sizeof(*p) {
	case 8:
		b := atomic.LoadUint64((*uint64)(unsafe.Pointer(p)))
		return *(*T)(unsafe.Pointer(&b))
	case 4:
		b := atomic.LoadUint32((*uint32)(unsafe.Pointer(p)))
		return *(*T)(unsafe.Pointer(&b))
	}
	w, sh := word(p)
	b := atomic.LoadUint32(w) >> sh
	return *(*T)(unsafe.Pointer(&b))
}

func store[T Number](p *T, x T) {
	switch unsafe.Sizeof(*p) {
	case 8:
		atomic.StoreUint64((*uint64)(unsafe.Pointer(p)), *(*uint64)(unsafe.Pointer(&x)))
		return
	case 4:
		atomic.StoreUint32((*uint32)(unsafe.Pointer(p)), *(*uint32)(unsafe.Pointer(&x)))
		return
	}
	rmw(p, func(T) T { return x })
}

func add[T Number](p *T, d T) T {
	switch unsafe.Sizeof(*p) {
	case 8:
		if isInt[T]() {
			r := atomic.AddUint64((*uint64)(unsafe.Pointer(p)), *(*uint64)(unsafe.Pointer(&d)))
			return *(*T)(unsafe.Pointer(&r))
		}
		a := (*uint64)(unsafe.Pointer(p))
		for {
			old := atomic.LoadUint64(a)
			n := math.Float64frombits(old) + float64(d)
			if atomic.CompareAndSwapUint64(a, old, math.Float64bits(n)) {
				return T(n)
			}
		}
	case 4:
		if isInt[T]() {
			var r uint32
			if unsafe.Sizeof(d) == 4 {
				r = atomic.AddUint32((*uint32)(unsafe.Pointer(p)), *(*uint32)(unsafe.Pointer(&d)))
			}
			return *(*T)(unsafe.Pointer(&r))
		}
		a := (*uint32)(unsafe.Pointer(p))
		for {
			old := atomic.LoadUint32(a)
			n := math.Float32frombits(old) + float32(d)
			if atomic.CompareAndSwapUint32(a, old, math.Float32bits(n)) {
				return T(n)
			}
		}
	}
	return rmw(p, func(x T) T { return x + d })
}

// half is a variable so that T(half) is a run-time conversion: 0.5 for
// floats, 0 for integers.
var half = 0.5

func isFloat[T Number]() bool { return T(half) != 0 }
func isInt[T Number]() bool   { return T(half) == 0 }

// word returns the aligned 32-bit word holding the 1- or 2-byte item at p and
// the item's bit shift in it (little-endian).
func word[T Number](p *T) (*uint32, uint) {
	off := uintptr(unsafe.Pointer(p)) & 3
	return (*uint32)(unsafe.Add(unsafe.Pointer(p), -int(off))), uint(off) * 8
}

func rmw[T Number](p *T, f func(T) T) T {
	w, sh := word(p)
	width := unsafe.Sizeof(*p) * 8
	mask := uint32(1)<<width - 1
	for {
		old := atomic.LoadUint32(w)
		cur := old >> sh & mask
		x := f(*(*T)(unsafe.Pointer(&cur)))
		var nb uint32
		*(*T)(unsafe.Pointer(&nb)) = x
		n := old&^(mask<<sh) | (nb&mask)<<sh
		if atomic.CompareAndSwapUint32(w, old, n) {
			return x
		}
	}
}
