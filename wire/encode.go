package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
)

// An Encoder turns values into payloads following SPEC section 3.1: integers
// in their smallest form, map keys sorted, structs as maps keyed by their
// `msgpack` tags, time.Time as the timestamp extension. It refuses what no
// decoder would accept (SPEC 3.3): a string that is not UTF-8
// (ErrInvalidUTF8), a map key that encodes as an array or map
// (ErrUnsupportedKey), nesting deeper than MaxDepth (ErrTooDeep), an
// extension type other than the timestamp (ErrUnknownExtension), more
// containers than ContainerBudget allows (ErrTooManyContainers); each of
// those errors also matches ErrUnsupportedType, and none matches ErrDecode.
//
// Types with their own encoding (vmihailenco/msgpack's CustomEncoder or
// Marshaler) are encoded by their method; what it writes is checked like
// the rest. An Encoder reuses one buffer, so a connection can keep one per
// direction. An Encoder is not safe for concurrent use.
type Encoder struct {
	buf    bytes.Buffer
	enc    *msgpack.Encoder
	weight int // arrays + MapWeight × maps written by the current encode
}

// NewEncoder returns an Encoder.
func NewEncoder() *Encoder {
	e := &Encoder{}
	e.enc = msgpack.NewEncoder(&e.buf)
	e.enc.UseCompactInts(true)
	e.enc.SetSortMapKeys(true)
	return e
}

// AppendFrame encodes v and appends a whole frame (header and payload) to dst,
// refusing payloads over max (max <= 0: no limit). On error dst is returned
// unchanged.
func (e *Encoder) AppendFrame(dst []byte, v any, max int64) ([]byte, error) {
	p, err := e.encode(v)
	if err != nil {
		return dst, err
	}
	if err := CheckSize(int64(len(p)), max); err != nil {
		return dst, err
	}
	dst = AppendHeader(dst, int64(len(p)))
	return append(dst, p...), nil
}

// Marshal returns the payload for v. The result is valid until the next call.
func (e *Encoder) Marshal(v any) ([]byte, error) { return e.encode(v) }

func (e *Encoder) encode(v any) ([]byte, error) {
	e.buf.Reset()
	e.weight = 0
	err := e.value(v, 0)
	if err == nil && e.weight > MinContainerBudget && e.weight > ContainerBudget(e.buf.Len()) {
		err = &encodeError{reason: ErrTooManyContainers, msg: fmt.Sprintf(
			"%v: %d (arrays count 1, maps %d) in a payload of %d bytes, more than its size allows "+
				"(max(%d, bytes/3), SPEC 3.2)", ErrTooManyContainers, e.weight, MapWeight, e.buf.Len(), MinContainerBudget)}
	}
	if err != nil {
		e.buf.Reset()
		return nil, err
	}
	return e.buf.Bytes(), nil
}

// An encodeError is a value that cannot be sent: it matches
// ErrUnsupportedType and the reason (ErrUnsupportedKey, ErrInvalidUTF8,
// ...), but not ErrDecode, as nothing was decoded.
type encodeError struct {
	reason error
	msg    string
}

func (e *encodeError) Error() string { return e.msg }

func (e *encodeError) Is(target error) bool {
	return target == ErrUnsupportedType || target == e.reason
}

func refuse(reason error, format string, args ...any) error {
	return &encodeError{reason: reason, msg: reason.Error() + ": " + fmt.Sprintf(format, args...)}
}

func tooDeep() error {
	return refuse(ErrTooDeep, "the value nests more than %d arrays/maps, which no decoder accepts", MaxDepth)
}

func badString(s string) error {
	return refuse(ErrInvalidUTF8, "a Go string of %d bytes is not valid UTF-8, which no decoder accepts in a msgpack str "+
		"(send bytes as []byte)", len(s))
}

// value encodes the generic shapes itself (fast, and with map keys of any
// kind in a fixed order) and hands every other type to vmihailenco/msgpack,
// then checks what it wrote. depth is the number of containers around v.
func (e *Encoder) value(v any, depth int) error {
	var err error
	switch x := v.(type) {
	case nil:
		err = e.enc.EncodeNil()
	case bool:
		err = e.enc.EncodeBool(x)
	case int64:
		err = e.enc.EncodeInt(x)
	case int:
		err = e.enc.EncodeInt(int64(x))
	case uint64:
		err = e.enc.EncodeUint(x)
	case float64:
		err = e.enc.EncodeFloat64(x)
	case string:
		if !utf8.ValidString(x) {
			return badString(x)
		}
		err = e.enc.EncodeString(x)
	case []byte:
		if x == nil {
			return e.enc.EncodeNil()
		}
		err = e.enc.EncodeBytes(x)
	case time.Time:
		err = e.enc.EncodeTime(x)
	case []any:
		if x == nil {
			return e.enc.EncodeNil()
		}
		if depth >= MaxDepth {
			return tooDeep()
		}
		e.weight++
		if err = e.enc.EncodeArrayLen(len(x)); err != nil {
			return err
		}
		for _, el := range x {
			if err := e.value(el, depth+1); err != nil {
				return err
			}
		}
	case map[string]any:
		if x == nil {
			return e.enc.EncodeNil()
		}
		if depth >= MaxDepth {
			return tooDeep()
		}
		e.weight += MapWeight
		if err = e.enc.EncodeMapLen(len(x)); err != nil {
			return err
		}
		if len(x) == 1 { // nothing to sort
			for k, v := range x {
				if !utf8.ValidString(k) {
					return badString(k)
				}
				if err := e.enc.EncodeString(k); err != nil {
					return err
				}
				return e.value(v, depth+1)
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			if !utf8.ValidString(k) {
				return badString(k)
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := e.enc.EncodeString(k); err != nil {
				return err
			}
			if err := e.value(x[k], depth+1); err != nil {
				return err
			}
		}
	case map[any]any:
		if x == nil {
			return e.enc.EncodeNil()
		}
		if depth >= MaxDepth {
			return tooDeep()
		}
		e.weight += MapWeight
		if err = e.enc.EncodeMapLen(len(x)); err != nil {
			return err
		}
		if len(x) == 1 { // nothing to sort
			for k, v := range x {
				if err := e.key(k, depth+1); err != nil {
					return err
				}
				return e.value(v, depth+1)
			}
		}
		// Pairs, not keys looked up again: a NaN key is never found by x[k].
		type pair struct{ k, v any }
		pairs := make([]pair, 0, len(x))
		for k, v := range x {
			pairs = append(pairs, pair{k, v})
		}
		sort.Slice(pairs, func(i, j int) bool { return KeyLess(pairs[i].k, pairs[j].k) })
		for _, p := range pairs {
			if err := e.key(p.k, depth+1); err != nil {
				return err
			}
			if err := e.value(p.v, depth+1); err != nil {
				return err
			}
		}
	default:
		start := e.buf.Len()
		if err = e.enc.Encode(v); err == nil {
			return e.check(start, depth, false, v)
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupportedType, err)
	}
	return nil
}

// key encodes a key of a map[any]any: the kinds SPEC 3.1 allows directly,
// anything else through vmihailenco/msgpack and then checked.
func (e *Encoder) key(k any, depth int) error {
	switch x := k.(type) {
	case nil, bool, int64, int, uint64, float64, time.Time:
		return e.value(k, depth)
	case string:
		if !utf8.ValidString(x) {
			return badString(x)
		}
		return e.enc.EncodeString(x)
	}
	start := e.buf.Len()
	if err := e.enc.Encode(k); err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupportedType, err)
	}
	return e.check(start, depth, true, k)
}

// check checks the object written since start, as a decoder would.
func (e *Encoder) check(start, depth int, isKey bool, v any) error {
	err := checkEncoded(e.buf.Bytes()[start:], depth, isKey, &e.weight)
	if err == nil {
		return nil
	}
	var se *scanError
	if !errors.As(err, &se) {
		return fmt.Errorf("%w: %v", ErrUnsupportedType, err)
	}
	switch {
	case se.kind == ErrTooDeep:
		return tooDeep()
	case isKey && se.kind == ErrUnsupportedKey && se.off == 0:
		return refuse(ErrUnsupportedKey, "a %T key encodes as %s, and no decoder accepts an array or map as a map key",
			v, keyShape(e.buf.Bytes()[start]))
	case se.kind == ErrUnsupportedKey:
		return refuse(ErrUnsupportedKey, "%s (in the encoding of a %T): no decoder accepts an array or map as a map key",
			se.detail, v)
	}
	return refuse(se.kind, "%s (in the encoding of a %T), which no decoder accepts", se.detail, v)
}

func keyShape(c byte) string {
	if c&0xf0 == 0x80 || c == 0xde || c == 0xdf {
		return "a map"
	}
	return "an array"
}

// KeyLess is the order in which the Encoder writes the keys of a map[any]any
// (SPEC section 3.1): nil, then bools (false first), then numbers by value
// (NaN last), then strings bytewise, then times, then anything else by its
// printed form.
func KeyLess(a, b any) bool {
	ra, rb := keyRank(a), keyRank(b)
	if ra != rb {
		return ra < rb
	}
	switch ra {
	case 1:
		return !a.(bool) && b.(bool)
	case 2:
		fa, fb := keyNum(a), keyNum(b)
		if fa != fb {
			if math.IsNaN(fa) || math.IsNaN(fb) {
				return !math.IsNaN(fa)
			}
			return fa < fb
		}
		return fmt.Sprint(a) < fmt.Sprint(b) // equal as floats: exact integer text
	case 3:
		return a.(string) < b.(string)
	case 4:
		return a.(time.Time).Before(b.(time.Time))
	}
	return fmt.Sprint(a) < fmt.Sprint(b)
}

func keyRank(k any) int {
	switch k.(type) {
	case nil:
		return 0
	case bool:
		return 1
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return 2
	case string:
		return 3
	case time.Time:
		return 4
	}
	return 5
}

func keyNum(k any) float64 {
	switch x := k.(type) {
	case int:
		return float64(x)
	case int8:
		return float64(x)
	case int16:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case uint:
		return float64(x)
	case uint8:
		return float64(x)
	case uint16:
		return float64(x)
	case uint32:
		return float64(x)
	case uint64:
		return float64(x)
	case float32:
		return float64(x)
	case float64:
		return x
	}
	return 0
}

var encoderPool = sync.Pool{New: func() any { return NewEncoder() }}

// Marshal returns the payload encoding v (SPEC section 3.1).
func Marshal(v any) ([]byte, error) {
	e := encoderPool.Get().(*Encoder)
	defer encoderPool.Put(e)
	p, err := e.encode(v)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(p), nil
}
