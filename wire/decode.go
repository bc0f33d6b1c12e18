package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Unmarshal decodes the single msgpack object in p into v, which must be a
// non-nil pointer (else ErrBadTarget, see CheckTarget). p is validated first
// (see Validate), so an error never leaves a partial value in a generic
// target. Every error about p itself matches ErrDecode.
//
// Into *any (and *[]any, *map[string]any, *map[any]any) values take the
// shapes of SPEC section 3.1: int64 (uint64 above math.MaxInt64), float64,
// string, []byte, []any, map[string]any when every key is a str and
// map[any]any otherwise, time.Time in UTC. Other targets (structs, typed
// slices and maps, scalars, types with a DecodeMsgpack method) are filled
// by vmihailenco/msgpack, which matches struct fields by their `msgpack`
// tags; interface-typed fields inside them hold int64 for negative and
// uint64 for non-negative integers. A valid payload that does not fit such
// a target gives ErrTargetType.
func Unmarshal(p []byte, v any) error {
	if err := CheckTarget(v); err != nil {
		return err
	}
	if err := Validate(p); err != nil {
		return err
	}
	switch t := v.(type) {
	case *any:
		x, _ := decodeAny(p, 0)
		*t = x
		return nil
	case *[]any:
		x, _ := decodeAny(p, 0)
		if x == nil {
			*t = nil
			return nil
		}
		if s, ok := x.([]any); ok {
			*t = s
			return nil
		}
	case *map[string]any:
		x, _ := decodeAny(p, 0)
		switch m := x.(type) {
		case nil:
			*t = nil
			return nil
		case map[string]any:
			*t = m
			return nil
		}
	}
	d := decoderPool.Get().(*pooledDecoder)
	defer decoderPool.Put(d)
	d.r.Reset(p)
	d.dec.Reset(&d.r)
	if err := d.dec.Decode(v); err != nil {
		return fmt.Errorf("%w (%T): %w", ErrTargetType, v, err)
	}
	return nil
}

// CheckTarget returns ErrBadTarget unless v is a non-nil pointer, the only
// thing Unmarshal can decode into. Receives check their target with it
// before reading, so a bad target costs no message.
func CheckTarget(v any) error {
	switch t := v.(type) { // the common targets, without reflect
	case *any:
		if t != nil {
			return nil
		}
	case *[]any:
		if t != nil {
			return nil
		}
	case *map[string]any:
		if t != nil {
			return nil
		}
	case *[]byte:
		if t != nil {
			return nil
		}
	case *string:
		if t != nil {
			return nil
		}
	default:
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() {
			return nil
		}
	}
	switch {
	case v == nil:
		return fmt.Errorf("%w, not nil", ErrBadTarget)
	case reflect.TypeOf(v).Kind() == reflect.Pointer:
		return fmt.Errorf("%w, not a nil %T", ErrBadTarget, v)
	}
	return fmt.Errorf("%w, not a %T (pass &v)", ErrBadTarget, v)
}

type pooledDecoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

var decoderPool = sync.Pool{New: func() any {
	d := &pooledDecoder{}
	d.dec = msgpack.NewDecoder(&d.r)
	d.dec.UseLooseInterfaceDecoding(true)
	d.dec.SetMapDecoder(func(dec *msgpack.Decoder) (any, error) {
		n, err := dec.DecodeMapLen()
		if err != nil || n < 0 {
			return nil, err
		}
		keys := make([]any, n)
		vals := make([]any, n)
		allStr := true
		for i := 0; i < n; i++ {
			if keys[i], err = dec.DecodeInterfaceLoose(); err != nil {
				return nil, err
			}
			if _, ok := keys[i].(string); !ok {
				allStr = false
			}
			if vals[i], err = dec.DecodeInterfaceLoose(); err != nil {
				return nil, err
			}
		}
		return buildMap(keys, vals, allStr), nil
	})
	return d
}}

func buildMap(keys, vals []any, allStr bool) any {
	if allStr {
		m := make(map[string]any, len(keys))
		for i, k := range keys {
			m[k.(string)] = vals[i]
		}
		return m
	}
	m := make(map[any]any, len(keys))
	for i, k := range keys {
		m[k] = vals[i]
	}
	return m
}

// decodeAny decodes the validated object at the start of p and returns it
// and the number of bytes it took. p must have passed Validate.
func decodeAny(p []byte, i int) (any, int) {
	c := p[i]
	i++
	be := binary.BigEndian
	switch {
	case c <= 0x7f:
		return int64(c), i
	case c >= 0xe0:
		return int64(int8(c)), i
	case c <= 0x8f:
		return decodeMap(p, i, int(c&0x0f))
	case c <= 0x9f:
		return decodeArray(p, i, int(c&0x0f))
	case c <= 0xbf:
		n := int(c & 0x1f)
		return string(p[i : i+n]), i + n
	}
	switch c {
	case 0xc0:
		return nil, i
	case 0xc2:
		return false, i
	case 0xc3:
		return true, i
	case 0xc4:
		n := int(p[i])
		return bytes.Clone(p[i+1 : i+1+n]), i + 1 + n
	case 0xc5:
		n := int(be.Uint16(p[i:]))
		return bytes.Clone(p[i+2 : i+2+n]), i + 2 + n
	case 0xc6:
		n := int(be.Uint32(p[i:]))
		return bytes.Clone(p[i+4 : i+4+n]), i + 4 + n
	case 0xc7:
		n := int(p[i])
		return decodeTime(p[i+2 : i+2+n]), i + 2 + n
	case 0xc8:
		n := int(be.Uint16(p[i:]))
		return decodeTime(p[i+3 : i+3+n]), i + 3 + n
	case 0xc9:
		n := int(be.Uint32(p[i:]))
		return decodeTime(p[i+5 : i+5+n]), i + 5 + n
	case 0xca:
		return float64(math.Float32frombits(be.Uint32(p[i:]))), i + 4
	case 0xcb:
		return math.Float64frombits(be.Uint64(p[i:])), i + 8
	case 0xcc:
		return int64(p[i]), i + 1
	case 0xcd:
		return int64(be.Uint16(p[i:])), i + 2
	case 0xce:
		return int64(be.Uint32(p[i:])), i + 4
	case 0xcf:
		u := be.Uint64(p[i:])
		if u > math.MaxInt64 {
			return u, i + 8
		}
		return int64(u), i + 8
	case 0xd0:
		return int64(int8(p[i])), i + 1
	case 0xd1:
		return int64(int16(be.Uint16(p[i:]))), i + 2
	case 0xd2:
		return int64(int32(be.Uint32(p[i:]))), i + 4
	case 0xd3:
		return int64(be.Uint64(p[i:])), i + 8
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		n := 1 << (c - 0xd4)
		return decodeTime(p[i+1 : i+1+n]), i + 1 + n
	case 0xd9:
		n := int(p[i])
		return string(p[i+1 : i+1+n]), i + 1 + n
	case 0xda:
		n := int(be.Uint16(p[i:]))
		return string(p[i+2 : i+2+n]), i + 2 + n
	case 0xdb:
		n := int(be.Uint32(p[i:]))
		return string(p[i+4 : i+4+n]), i + 4 + n
	case 0xdc:
		return decodeArray(p, i+2, int(be.Uint16(p[i:])))
	case 0xdd:
		return decodeArray(p, i+4, int(be.Uint32(p[i:])))
	case 0xde:
		return decodeMap(p, i+2, int(be.Uint16(p[i:])))
	case 0xdf:
		return decodeMap(p, i+4, int(be.Uint32(p[i:])))
	}
	panic(errors.New("wire: decodeAny on unvalidated input"))
}

func decodeArray(p []byte, i, n int) (any, int) {
	a := make([]any, n)
	for k := range a {
		a[k], i = decodeAny(p, i)
	}
	return a, i
}

// decodeMap decodes n pairs into a map[string]any while the keys are strs
// (decoded without boxing them), switching to a map[any]any at the first
// key that is not; no slice of keys is kept on the way.
func decodeMap(p []byte, i, n int) (any, int) {
	if n == 0 {
		return map[string]any{}, i // every key is a str
	}
	if _, _, ok := decodeStr(p, i); !ok {
		return decodeAnyMap(p, i, n, nil)
	}
	m := make(map[string]any, n)
	for k := 0; k < n; k++ {
		key, j, ok := decodeStr(p, i)
		if !ok {
			return decodeAnyMap(p, i, n-k, m)
		}
		m[key], i = decodeAny(p, j)
	}
	return m, i
}

// decodeAnyMap decodes n pairs into a map[any]any that starts with the
// entries of done.
func decodeAnyMap(p []byte, i, n int, done map[string]any) (any, int) {
	m := make(map[any]any, n+len(done))
	for k, v := range done {
		m[k] = v
	}
	for k := 0; k < n; k++ {
		var key, val any
		key, i = decodeAny(p, i)
		val, i = decodeAny(p, i)
		m[key] = val
	}
	return m, i
}

// decodeStr decodes the validated str at p[i], if it is one.
func decodeStr(p []byte, i int) (string, int, bool) {
	c := p[i]
	var n int
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n, i = int(c&0x1f), i+1
	case c == 0xd9:
		n, i = int(p[i+1]), i+2
	case c == 0xda:
		n, i = int(binary.BigEndian.Uint16(p[i+1:])), i+3
	case c == 0xdb:
		n, i = int(binary.BigEndian.Uint32(p[i+1:])), i+5
	default:
		return "", i, false
	}
	return string(p[i : i+n]), i + n, true
}

// decodeTime decodes a validated timestamp extension body.
func decodeTime(d []byte) time.Time {
	be := binary.BigEndian
	switch len(d) {
	case 4:
		return time.Unix(int64(be.Uint32(d)), 0).UTC()
	case 8:
		v := be.Uint64(d)
		return time.Unix(int64(v&(1<<34-1)), int64(v>>34)).UTC()
	default:
		return time.Unix(int64(be.Uint64(d[4:])), int64(be.Uint32(d))).UTC()
	}
}
