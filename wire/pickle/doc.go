// Package pickle is a pickle codec for gobridge connections whose peer is
// unmodified Python code: a stdlib multiprocessing Connection sends and
// receives pickles. Codec satisfies wire.Codec; Encode, Decode, Unmarshal
// and Limits serve other uses. wire/SPEC.md section 15 is the normative type
// table.
//
// Decoding never calls anything and never trusts a length: the decoder
// refuses every class or function reference (GLOBAL, STACK_GLOBAL, INST, OBJ,
// NEWOBJ, REDUCE, BUILD, ...) with ErrReference naming it, except the few
// builtins the stdlib's pickler writes for plain data (set, frozenset,
// bytearray, bytes, _codecs.encode), which it interprets. It reads protocols 0
// to 5 (out-of-band buffers excepted) and bounds what a pickle may cost
// (Limits: its size, the nesting depth, memo entries, the values counted
// through shared references, the data copied), so that a pickle bomb fails
// with ErrTooLarge or ErrTooDeep after allocating about as much as the
// pickle's own size.
//
// Python to Go (Decode, or Unmarshal into *any):
//
//	None                 nil
//	bool                 bool
//	int                  int64, or *big.Int outside int64
//	float                float64
//	str                  string
//	bytes                []byte
//	bytearray            Bytearray
//	list                 []any
//	tuple                Tuple
//	dict                 map[string]any if every key is a str, else map[any]any
//	set, frozenset       Set, FrozenSet
//
// Go to Python (Encode, protocol 4): nil, nil pointers, slices and maps give
// None; bool; every int and uint width, *big.Int and big.Int give int;
// float32/64 give float; string (valid UTF-8) gives str; []byte and [N]byte
// give bytes; Bytearray gives bytearray; other slices and arrays give list;
// Tuple gives tuple; maps give dict; Set and FrozenSet give set and
// frozenset; structs give the dict of their msgpack shape (keys = `msgpack`
// tag names), as with package wire.
//
// Why not og-rek's decoder: github.com/kisielk/og-rek v1.3.0 encodes this
// package's output, but its decoder lacks the protocol 4 opcodes that every
// supported CPython writes by default for sets and frozensets (EMPTY_SET,
// ADDITEMS, FROZENSET) and for large values (LONG4, BINBYTES8,
// BINUNICODE8), loses appends made to a list after it was memoized (the
// memo keeps a stale slice, so x=[1,2]; [x, x] decodes as [[1 2] []]), and
// has no limits. A validator in front of it would have to run the pickle
// machine anyway to check depth, memo use and shared-reference expansion, so
// the decoder here is that machine, building values as it checks them.
package pickle
