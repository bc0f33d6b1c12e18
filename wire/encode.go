package wire

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// An Encoder turns values into payloads following SPEC section 3.1: integers
// in their smallest form, map keys sorted, structs as maps keyed by their
// `msgpack` tags, time.Time as the timestamp extension. It reuses one buffer,
// so a connection can keep one per direction. An Encoder is not safe for
// concurrent use.
type Encoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
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
	if err := e.value(v); err != nil {
		e.buf.Reset()
		return nil, err
	}
	return e.buf.Bytes(), nil
}

// value encodes the generic shapes itself (fast, and with map keys of any
// kind in a fixed order) and hands every other type to vmihailenco/msgpack.
func (e *Encoder) value(v any) error {
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
		if err = e.enc.EncodeArrayLen(len(x)); err != nil {
			return err
		}
		for _, el := range x {
			if err := e.value(el); err != nil {
				return err
			}
		}
	case map[string]any:
		if x == nil {
			return e.enc.EncodeNil()
		}
		if err = e.enc.EncodeMapLen(len(x)); err != nil {
			return err
		}
		if len(x) == 1 { // nothing to sort
			for k, v := range x {
				if err := e.enc.EncodeString(k); err != nil {
					return err
				}
				return e.value(v)
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := e.enc.EncodeString(k); err != nil {
				return err
			}
			if err := e.value(x[k]); err != nil {
				return err
			}
		}
	case map[any]any:
		if x == nil {
			return e.enc.EncodeNil()
		}
		if err = e.enc.EncodeMapLen(len(x)); err != nil {
			return err
		}
		if len(x) == 1 { // nothing to sort
			for k, v := range x {
				if err := e.value(k); err != nil {
					return err
				}
				return e.value(v)
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
			if err := e.value(p.k); err != nil {
				return err
			}
			if err := e.value(p.v); err != nil {
				return err
			}
		}
	default:
		err = e.enc.Encode(v)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupportedType, err)
	}
	return nil
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
