package pickle

import (
	"fmt"
	"math"
	"math/big"

	"github.com/gobridge/gobridge/wire"
)

// Codec is the pickle wire.Codec, for a connection whose peer is unmodified
// Python code calling send and recv on a stdlib Connection. Its Limits bound
// every decode (the zero value: the defaults).
type Codec struct {
	Limits Limits
}

var _ wire.Codec = Codec{}

// Name returns "pickle".
func (Codec) Name() string { return "pickle" }

// Marshal returns the pickle of v (see Encode).
func (Codec) Marshal(v any) ([]byte, error) { return Encode(v) }

// Unmarshal decodes the pickle p into v (see Unmarshal), within c.Limits.
func (c Codec) Unmarshal(p []byte, v any) error { return c.Limits.Unmarshal(p, v) }

// Unmarshal decodes the pickle p into v within the default Limits.
func Unmarshal(p []byte, v any) error { return Limits{}.Unmarshal(p, v) }

// Unmarshal decodes the pickle p into v, a non-nil pointer. Into *any the
// value is Decode's. Other targets (structs, typed slices and maps, scalars)
// are filled as wire.Unmarshal fills them from the same value sent as
// msgpack (struct fields by their `msgpack` tags): tuples and sets become
// sequences, bytearray bytes, and an int outside int64 and uint64 gives
// wire.ErrTargetType. The pickle is decoded completely first, so an error
// never leaves a partial value.
func (l Limits) Unmarshal(p []byte, v any) error {
	if err := wire.CheckTarget(v); err != nil {
		return err
	}
	x, err := l.Decode(p)
	if err != nil {
		return err
	}
	if t, ok := v.(*any); ok {
		*t = x
		return nil
	}
	m, err := msgpackShape(x)
	if err != nil {
		return err
	}
	b, err := wire.Marshal(m)
	if err != nil {
		return fmt.Errorf("%w (%T): %w", wire.ErrTargetType, v, err)
	}
	return wire.Unmarshal(b, v)
}

// Plain maps a value Decode returned onto the types package wire encodes
// (its msgpack shape, as a typed Unmarshal sees it): tuples and sets become
// []any (a set's elements in no particular order), bytearray []byte, a big
// int uint64 when it fits; one that does not is wire.ErrTargetType. The CLI
// prints pickled messages through it, as gobridge JSON.
func Plain(x any) (any, error) { return msgpackShape(x) }

// msgpackShape maps a decoded value onto the types wire.Marshal takes.
func msgpackShape(x any) (any, error) {
	switch x := x.(type) {
	case *big.Int:
		if x.IsUint64() {
			return x.Uint64(), nil
		}
		return nil, fmt.Errorf("%w: an int of %d bits does not fit int64 or uint64", wire.ErrTargetType, x.BitLen())
	case Bytearray:
		return []byte(x), nil
	case []any:
		return seqShape(x)
	case Tuple:
		return seqShape(x)
	case Set:
		return setShape(x)
	case FrozenSet:
		return setShape(x)
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			s, err := msgpackShape(e)
			if err != nil {
				return nil, err
			}
			m[k] = s
		}
		return m, nil
	case map[any]any:
		m := make(map[any]any, len(x))
		for k, e := range x {
			s, err := msgpackShape(e)
			if err != nil {
				return nil, err
			}
			if f, ok := k.(float64); ok && math.IsNaN(f) {
				return nil, fmt.Errorf("%w: a NaN dict key", wire.ErrTargetType)
			}
			m[k] = s
		}
		return m, nil
	}
	return x, nil
}

func seqShape(x []any) (any, error) {
	l := make([]any, len(x))
	for i, e := range x {
		s, err := msgpackShape(e)
		if err != nil {
			return nil, err
		}
		l[i] = s
	}
	return l, nil
}

func setShape(x map[any]struct{}) (any, error) {
	l := make([]any, 0, len(x))
	for e := range x {
		l = append(l, e)
	}
	return l, nil
}
