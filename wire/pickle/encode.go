package pickle

import (
	"bytes"
	"fmt"
	"math/big"
	"reflect"
	"time"
	"unicode/utf8"

	ogorek "github.com/kisielk/og-rek"

	"github.com/gobridge/gobridge/wire"
)

// Protocol is the pickle protocol Encode writes: 4, the default protocol
// (pickle.DEFAULT_PROTOCOL) of CPython 3.8 to 3.13, which every supported
// interpreter reads and which multiprocessing.Connection.send itself writes.
const Protocol = 4

// Encode returns the pickle of v (protocol 4), whose natural Python value is
// given by the package doc's type table. Values with no pickle form (chan,
// func, complex, time.Time, a string that is not UTF-8, a map key that
// Python cannot hash) give ErrUnsupportedType; nesting deeper than
// wire.MaxDepth (a cycle, say) gives ErrTooDeep; nothing is written then.
func Encode(v any) ([]byte, error) {
	x, err := plain(reflect.ValueOf(v), 0)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := ogorek.NewEncoderWithConfig(&buf, &ogorek.EncoderConfig{Protocol: Protocol, StrictUnicode: true})
	if err := enc.Encode(x); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupportedType, err)
	}
	return buf.Bytes(), nil
}

var (
	bigIntType = reflect.TypeFor[big.Int]()
	timeType   = reflect.TypeFor[time.Time]()
	tupleType  = reflect.TypeFor[Tuple]()
	setType    = reflect.TypeFor[Set]()
	fsetType   = reflect.TypeFor[FrozenSet]()
	barrType   = reflect.TypeFor[Bytearray]()
)

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupportedType, fmt.Sprintf(format, args...))
}

// plain turns v into the values og-rek encodes as the natural Python value:
// ogorek.None, bool, int64/uint64, float64, string, ogorek.Bytes (bytes),
// []byte (bytearray), *big.Int, []any (list), ogorek.Tuple, map[any]any,
// ogorek.Call of builtins.set/frozenset.
func plain(v reflect.Value, depth int) (any, error) {
	if depth > wire.MaxDepth {
		return nil, fmt.Errorf("%w: the value nests more than %d containers (a cycle?)", ErrTooDeep, wire.MaxDepth)
	}
	if !v.IsValid() {
		return ogorek.None{}, nil
	}
	t := v.Type()
	switch t {
	case bigIntType:
		z := v.Interface().(big.Int)
		return new(big.Int).Set(&z), nil
	case timeType:
		return nil, unsupported("time.Time (datetime is not part of the pickle codec)")
	case tupleType, setType, fsetType, barrType:
		return plainOwn(v, depth)
	}
	switch t.Kind() {
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint(), nil
	case reflect.Float32, reflect.Float64:
		return v.Float(), nil
	case reflect.String:
		s := v.String()
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("%w: %w: a string that is not valid UTF-8", ErrUnsupportedType, ErrInvalidUTF8)
		}
		return s, nil
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return ogorek.None{}, nil
		}
		return plain(v.Elem(), depth+1)
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && v.IsNil() {
			return ogorek.None{}, nil
		}
		if t.Elem().Kind() == reflect.Uint8 {
			b := make([]byte, v.Len())
			reflect.Copy(reflect.ValueOf(b), v)
			if len(b) >= 1<<32 {
				return nil, unsupported("bytes of %d bytes (4 GiB or more)", len(b))
			}
			return ogorek.Bytes(b), nil
		}
		l := make([]any, v.Len())
		for i := range l {
			x, err := plain(v.Index(i), depth+1)
			if err != nil {
				return nil, err
			}
			l[i] = x
		}
		return l, nil
	case reflect.Map:
		if v.IsNil() {
			return ogorek.None{}, nil
		}
		m := make(map[any]any, v.Len())
		it := v.MapRange()
		for it.Next() {
			k, err := plainKey(it.Key(), depth)
			if err != nil {
				return nil, err
			}
			x, err := plain(it.Value(), depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = x
		}
		return m, nil
	case reflect.Struct:
		// Structs take their msgpack shape (a dict keyed by the msgpack tag
		// names), so that both codecs agree on a struct's fields.
		p, err := wire.Marshal(v.Interface())
		if err != nil {
			return nil, err
		}
		var g any
		if err := wire.Unmarshal(p, &g); err != nil {
			return nil, err
		}
		return plain(reflect.ValueOf(g), depth)
	}
	return nil, unsupported("a Go %s has no pickle form", t)
}

func plainOwn(v reflect.Value, depth int) (any, error) {
	switch x := v.Interface().(type) {
	case Tuple:
		t := make(ogorek.Tuple, len(x))
		for i, e := range x {
			p, err := plain(reflect.ValueOf(e), depth+1)
			if err != nil {
				return nil, err
			}
			t[i] = p
		}
		return t, nil
	case Bytearray:
		return []byte(bytes.Clone(x)), nil
	case Set, FrozenSet:
		name := "set"
		m := map[any]struct{}(nil)
		if s, ok := x.(Set); ok {
			m = s
		} else {
			name, m = "frozenset", x.(FrozenSet)
		}
		l := make([]any, 0, len(m))
		for e := range m {
			p, err := plainKey(reflect.ValueOf(e), depth)
			if err != nil {
				return nil, err
			}
			l = append(l, p)
		}
		return ogorek.Call{Callable: ogorek.Class{Module: "builtins", Name: name}, Args: ogorek.Tuple{l}}, nil
	}
	panic("unreachable")
}

// plainKey converts a map key or set element, which Python must be able to hash.
func plainKey(k reflect.Value, depth int) (any, error) {
	x, err := plain(k, depth+1)
	if err != nil {
		return nil, err
	}
	switch x.(type) {
	case ogorek.None, bool, int64, uint64, float64, string, ogorek.Bytes, *big.Int:
		return x, nil
	case ogorek.Tuple:
		return nil, unsupported("a tuple as a map key (Go cannot hash it back)")
	}
	return nil, fmt.Errorf("%w: %w: a map key of type %s, which Python cannot hash", ErrUnsupportedType, ErrUnsupportedKey, k.Type())
}
