package pickle

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"unicode/utf8"

	"github.com/gobridge/gobridge/wire"
)

// maxIntDigits is CPython's limit on the digits of an int parsed from text
// (sys.int_info.default_max_str_digits): the text INT and LONG opcodes of
// protocol 0 cost quadratic time beyond it.
const maxIntDigits = 4300

type kind uint8

const (
	kList kind = iota
	kTuple
	kDict
	kSet
	kFrozenSet
)

var kindName = [...]string{"list", "tuple", "dict", "set", "frozenset"}

// A node is a container under construction. Lists, dicts and sets stay
// mutable until STOP (a memo reference can append to them later), so the Go
// values are built once, at the end, by freeze.
type node struct {
	kind  kind
	items []any // dict: key, value, key, value, ...

	state  uint8 // 0: not frozen, 1: freezing, 2: frozen
	out    any
	height int
	weight int
}

// classRef is what GLOBAL and STACK_GLOBAL push: one of the allowed names.
type classRef struct{ module, name string }

// allowed are the references the stdlib's pickler writes for plain data; a
// REDUCE of one of them is interpreted here, never called.
var allowed = map[classRef]bool{
	{"builtins", "set"}: true, {"__builtin__", "set"}: true,
	{"builtins", "frozenset"}: true, {"__builtin__", "frozenset"}: true,
	{"builtins", "bytearray"}: true, {"__builtin__", "bytearray"}: true,
	{"builtins", "bytes"}: true, {"__builtin__", "bytes"}: true,
	{"_codecs", "encode"}: true,
}

type decoder struct {
	p     []byte
	i     int // offset of the next byte
	op    int // offset of the current opcode
	lim   Limits
	stack []any
	marks []int
	memo  map[uint64]any

	copies     int // elements copied by LIST, TUPLE, REDUCE, ... (bounded by budget)
	budget     int
	containers int // lists, tuples and sets + wire.MapWeight × dicts made so far
	maxCont    int // wire.ContainerBudget(len(p))
	maxValue   int
}

// Decode decodes the pickle p into a Go value (see the package doc for the
// type table), within the default Limits.
func Decode(p []byte) (any, error) { return Limits{}.Decode(p) }

// Decode decodes the pickle p within l.
func (l Limits) Decode(p []byte) (any, error) {
	l = l.withDefaults()
	if len(p) > l.MaxSize {
		return nil, fmt.Errorf("%w: a %d-byte pickle is over the limit of %d bytes", ErrTooLarge, len(p), l.MaxSize)
	}
	d := &decoder{p: p, lim: l, memo: map[uint64]any{}}
	d.maxValue = max(l.MaxValues, len(p))
	d.budget = 2*len(p) + 1<<16
	d.maxCont = wire.ContainerBudget(len(p))
	v, err := d.run()
	if err != nil {
		return nil, err
	}
	out, _, _, err := d.freeze(v, 0)
	return out, err
}

func (d *decoder) malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s at offset %d", ErrMalformed, fmt.Sprintf(format, args...), d.op)
}

func (d *decoder) refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s at offset %d (the decoder calls nothing; only plain data decodes)",
		ErrReference, fmt.Sprintf(format, args...), d.op)
}

func (d *decoder) take(n uint64) ([]byte, error) {
	if n > uint64(len(d.p)-d.i) {
		if n > 1<<20 {
			return nil, fmt.Errorf("%w: opcode at offset %d claims %d bytes, only %d remain", ErrTooLarge, d.op, n, len(d.p)-d.i)
		}
		return nil, d.malformed("truncated argument (%d bytes wanted, %d remain)", n, len(d.p)-d.i)
	}
	b := d.p[d.i : d.i+int(n)]
	d.i += int(n)
	return b, nil
}

func (d *decoder) u8() (uint64, error) {
	b, err := d.take(1)
	if err != nil {
		return 0, err
	}
	return uint64(b[0]), nil
}

func (d *decoder) u16() (uint64, error) {
	b, err := d.take(2)
	if err != nil {
		return 0, err
	}
	return uint64(binary.LittleEndian.Uint16(b)), nil
}

func (d *decoder) u32() (uint64, error) {
	b, err := d.take(4)
	if err != nil {
		return 0, err
	}
	return uint64(binary.LittleEndian.Uint32(b)), nil
}

func (d *decoder) u64() (uint64, error) {
	b, err := d.take(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// s32 reads a signed 4-byte length, refusing a negative one.
func (d *decoder) len32s() (uint64, error) {
	n, err := d.u32()
	if err == nil && int32(n) < 0 {
		err = d.malformed("negative length %d", int32(n))
	}
	return n, err
}

func (d *decoder) line() ([]byte, error) {
	for j := d.i; j < len(d.p); j++ {
		if d.p[j] == '\n' {
			b := d.p[d.i:j]
			d.i = j + 1
			return b, nil
		}
	}
	return nil, d.malformed("text argument without a newline")
}

// base is the bottom of the stack the current opcode may see: the last mark.
func (d *decoder) base() int {
	if len(d.marks) == 0 {
		return 0
	}
	return d.marks[len(d.marks)-1]
}

func (d *decoder) need(n int) error {
	if len(d.stack)-d.base() < n {
		return d.malformed("stack underflow (%d items needed)", n)
	}
	return nil
}

func (d *decoder) push(v any) { d.stack = append(d.stack, v) }

// pushNode pushes a new container, counted against the container budget
// that package wire applies to msgpack (SPEC section 3.2): each one costs
// tens of bytes, so their number follows the pickle's size.
func (d *decoder) pushNode(k kind, items []any) error {
	if k == kDict {
		d.containers += wire.MapWeight
	} else {
		d.containers++
	}
	if d.containers > d.maxCont {
		return fmt.Errorf("%w: more containers than a %d-byte pickle may hold (lists, tuples, sets + %d × dicts ≤ max(%d, bytes/3)) at offset %d",
			ErrTooLarge, len(d.p), wire.MapWeight, wire.MinContainerBudget, d.op)
	}
	d.push(&node{kind: k, items: items})
	return nil
}

func (d *decoder) pop() any {
	v := d.stack[len(d.stack)-1]
	d.stack = d.stack[:len(d.stack)-1]
	return v
}

// popMark removes the items above the last mark, and the mark, and returns a
// copy of the items.
func (d *decoder) popMark() ([]any, error) {
	if len(d.marks) == 0 {
		return nil, d.malformed("no MARK to pop")
	}
	k := d.marks[len(d.marks)-1]
	d.marks = d.marks[:len(d.marks)-1]
	items, err := d.copyItems(d.stack[k:])
	d.stack = d.stack[:k]
	return items, err
}

func (d *decoder) copyItems(items []any) ([]any, error) {
	d.copies += len(items)
	if d.copies > d.budget {
		return nil, fmt.Errorf("%w: the pickle copies more than %d values (at offset %d)", ErrTooLarge, d.budget, d.op)
	}
	return append([]any(nil), items...), nil
}

func (d *decoder) charge(n int) error {
	d.copies += n / 8
	if d.copies > d.budget {
		return fmt.Errorf("%w: the pickle copies more data than its size allows (at offset %d)", ErrTooLarge, d.op)
	}
	return nil
}

func (d *decoder) top(k kind, op string) (*node, error) {
	n, ok := d.stack[len(d.stack)-1].(*node)
	if !ok || n.kind != k {
		return nil, d.malformed("%s on a %s, not a %s", op, typeName(d.stack[len(d.stack)-1]), kindName[k])
	}
	return n, nil
}

func typeName(v any) string {
	switch v := v.(type) {
	case *node:
		return kindName[v.kind]
	case classRef:
		return "class reference"
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case Bytearray:
		return "bytearray"
	}
	return fmt.Sprintf("%T", v)
}

func (d *decoder) memoPut(idx uint64) error {
	if err := d.need(1); err != nil {
		return err
	}
	if _, ok := d.memo[idx]; !ok && len(d.memo) >= d.lim.MaxMemo {
		return fmt.Errorf("%w: more than %d memo entries (at offset %d)", ErrTooLarge, d.lim.MaxMemo, d.op)
	}
	d.memo[idx] = d.stack[len(d.stack)-1]
	return nil
}

func (d *decoder) memoGet(idx uint64) error {
	v, ok := d.memo[idx]
	if !ok {
		return d.malformed("memo entry %d was never stored", idx)
	}
	d.push(v)
	return nil
}

func textIndex(d *decoder) (uint64, error) {
	b, err := d.line()
	if err != nil {
		return 0, err
	}
	n, perr := strconv.ParseUint(string(b), 10, 64)
	if perr != nil {
		return 0, d.malformed("bad memo index %q", b)
	}
	return n, nil
}

// bytesArg copies b out of the input, so that the result does not alias it.
func (d *decoder) bytesArg(b []byte) ([]byte, error) {
	return append([]byte{}, b...), d.charge(len(b))
}

func (d *decoder) utf8Arg(b []byte) (string, error) {
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%w: at offset %d", ErrInvalidUTF8, d.op)
	}
	return string(b), nil
}

func (d *decoder) run() (any, error) {
	for d.i < len(d.p) {
		d.op = d.i
		c := d.p[d.i]
		d.i++
		var err error
		switch c {
		case '.': // STOP
			if len(d.stack) != 1 || len(d.marks) != 0 {
				return nil, d.malformed("STOP with %d items and %d marks on the stack, not one value", len(d.stack), len(d.marks))
			}
			if d.i != len(d.p) {
				return nil, d.malformed("%d trailing bytes after STOP", len(d.p)-d.i)
			}
			if _, ok := d.stack[0].(classRef); ok {
				return nil, d.refuse("a bare class reference as the value")
			}
			return d.stack[0], nil
		case 0x80: // PROTO
			var v uint64
			if v, err = d.u8(); err == nil && v > 5 {
				err = d.malformed("unsupported protocol %d", v)
			}
		case 0x95: // FRAME
			var n uint64
			if n, err = d.u64(); err == nil && n > uint64(len(d.p)-d.i) {
				err = d.malformed("FRAME of %d bytes, only %d remain", n, len(d.p)-d.i)
			}
		case '(': // MARK
			d.marks = append(d.marks, len(d.stack))
		case '0': // POP
			if len(d.stack) > d.base() {
				d.pop()
			} else {
				_, err = d.popMark()
			}
		case '1': // POP_MARK
			_, err = d.popMark()
		case '2': // DUP
			if err = d.need(1); err == nil {
				d.push(d.stack[len(d.stack)-1])
			}
		case 'N':
			d.push(nil)
		case 0x88:
			d.push(true)
		case 0x89:
			d.push(false)
		case 'I': // INT (text)
			err = d.textInt(false)
		case 'L': // LONG (text)
			err = d.textInt(true)
		case 'J': // BININT
			var n uint64
			if n, err = d.u32(); err == nil {
				d.push(int64(int32(n)))
			}
		case 'K': // BININT1
			var n uint64
			if n, err = d.u8(); err == nil {
				d.push(int64(n))
			}
		case 'M': // BININT2
			var n uint64
			if n, err = d.u16(); err == nil {
				d.push(int64(n))
			}
		case 0x8a, 0x8b: // LONG1, LONG4
			var n uint64
			if c == 0x8a {
				n, err = d.u8()
			} else {
				n, err = d.len32s()
			}
			var b []byte
			if err == nil {
				b, err = d.take(n)
			}
			if err == nil {
				d.push(longFromLE(b))
			}
		case 'F': // FLOAT (text)
			var b []byte
			if b, err = d.line(); err == nil {
				f, perr := strconv.ParseFloat(string(b), 64)
				if perr != nil && !isRange(perr) {
					err = d.malformed("bad float %q", b)
				} else {
					d.push(f)
				}
			}
		case 'G': // BINFLOAT
			var b []byte
			if b, err = d.take(8); err == nil {
				d.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
			}
		case 'V': // UNICODE (raw-unicode-escape text)
			var b []byte
			if b, err = d.line(); err == nil {
				var s string
				if s, err = d.rawUnicodeEscape(b); err == nil {
					d.push(s)
				}
			}
		case 'X', 0x8c, 0x8d: // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
			var n uint64
			switch c {
			case 'X':
				n, err = d.u32()
			case 0x8c:
				n, err = d.u8()
			default:
				n, err = d.u64()
			}
			var b []byte
			if err == nil {
				b, err = d.take(n)
			}
			var s string
			if err == nil {
				s, err = d.utf8Arg(b)
			}
			if err == nil {
				d.push(s)
			}
		case 'S': // STRING (a Python 2 str literal; decoded as ASCII, as the stdlib does)
			var b []byte
			if b, err = d.line(); err == nil {
				var s string
				if s, err = d.stringLiteral(b); err == nil {
					d.push(s)
				}
			}
		case 'T', 'U': // BINSTRING, SHORT_BINSTRING
			var n uint64
			if c == 'T' {
				n, err = d.len32s()
			} else {
				n, err = d.u8()
			}
			var b []byte
			if err == nil {
				b, err = d.take(n)
			}
			if err == nil {
				if !isASCII(b) {
					err = fmt.Errorf("%w: a Python 2 str that is not ASCII at offset %d", ErrInvalidUTF8, d.op)
				} else {
					d.push(string(b))
				}
			}
		case 'B', 'C', 0x8e, 0x96: // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
			var n uint64
			switch c {
			case 'B':
				n, err = d.u32()
			case 'C':
				n, err = d.u8()
			default:
				n, err = d.u64()
			}
			var b []byte
			if err == nil {
				b, err = d.take(n)
			}
			if err == nil {
				b, err = d.bytesArg(b)
			}
			if err == nil {
				if c == 0x96 {
					d.push(Bytearray(b))
				} else {
					d.push(b)
				}
			}
		case ']':
			err = d.pushNode(kList, nil)
		case ')':
			err = d.pushNode(kTuple, nil)
		case '}':
			err = d.pushNode(kDict, nil)
		case 0x8f:
			err = d.pushNode(kSet, nil)
		case 'l', 't', 'd', 0x91: // LIST, TUPLE, DICT, FROZENSET
			var items []any
			if items, err = d.popMark(); err == nil {
				k := kindOf(c)
				if k == kDict && len(items)%2 != 0 {
					err = d.malformed("DICT with an odd number of items")
				} else {
					err = d.pushNode(k, items)
				}
			}
		case 0x85, 0x86, 0x87: // TUPLE1-3
			n := int(c - 0x84)
			if err = d.need(n); err == nil {
				var items []any
				if items, err = d.copyItems(d.stack[len(d.stack)-n:]); err == nil {
					d.stack = d.stack[:len(d.stack)-n]
					err = d.pushNode(kTuple, items)
				}
			}
		case 'a': // APPEND
			if err = d.need(2); err == nil {
				v := d.pop()
				var l *node
				if l, err = d.top(kList, "APPEND"); err == nil {
					l.items = append(l.items, v)
				}
			}
		case 'e', 'u', 0x90: // APPENDS, SETITEMS, ADDITEMS
			var items []any
			if items, err = d.popMark(); err == nil {
				if err = d.need(1); err == nil {
					k := kindOf(c)
					var n *node
					if n, err = d.top(k, "APPENDS/SETITEMS/ADDITEMS"); err == nil {
						if k == kDict && len(items)%2 != 0 {
							err = d.malformed("SETITEMS with an odd number of items")
						}
						n.items = append(n.items, items...)
					}
				}
			}
		case 's': // SETITEM
			if err = d.need(3); err == nil {
				v, k := d.pop(), d.pop()
				var n *node
				if n, err = d.top(kDict, "SETITEM"); err == nil {
					n.items = append(n.items, k, v)
				}
			}
		case 'p': // PUT
			var idx uint64
			if idx, err = textIndex(d); err == nil {
				err = d.memoPut(idx)
			}
		case 'q', 'r': // BINPUT, LONG_BINPUT
			var idx uint64
			if c == 'q' {
				idx, err = d.u8()
			} else {
				idx, err = d.u32()
			}
			if err == nil {
				err = d.memoPut(idx)
			}
		case 0x94: // MEMOIZE
			err = d.memoPut(uint64(len(d.memo)))
		case 'g': // GET
			var idx uint64
			if idx, err = textIndex(d); err == nil {
				err = d.memoGet(idx)
			}
		case 'h', 'j': // BINGET, LONG_BINGET
			var idx uint64
			if c == 'h' {
				idx, err = d.u8()
			} else {
				idx, err = d.u32()
			}
			if err == nil {
				err = d.memoGet(idx)
			}
		case 'c': // GLOBAL
			var mod, name []byte
			if mod, err = d.line(); err == nil {
				if name, err = d.line(); err == nil {
					err = d.global(string(mod), string(name), "GLOBAL")
				}
			}
		case 0x93: // STACK_GLOBAL
			if err = d.need(2); err == nil {
				name, mod := d.pop(), d.pop()
				ms, ok1 := mod.(string)
				ns, ok2 := name.(string)
				if !ok1 || !ok2 {
					err = d.malformed("STACK_GLOBAL of a %s and a %s, not two str", typeName(mod), typeName(name))
				} else {
					err = d.global(ms, ns, "STACK_GLOBAL")
				}
			}
		case 'R': // REDUCE
			err = d.reduce()
		case 'i': // INST
			var mod, name []byte
			if mod, err = d.line(); err == nil {
				if name, err = d.line(); err == nil {
					err = d.refuse("INST (creating an instance) of %s.%s", mod, name)
				}
			}
		case 'o':
			err = d.refuse("OBJ (creating an instance)%s", d.classBelowMark())
		case 'b':
			err = d.refuse("BUILD (setting an object's state)")
		case 0x81, 0x92:
			what := "NEWOBJ"
			if c == 0x92 {
				what = "NEWOBJ_EX"
			}
			err = d.refuse("%s (cls.__new__)", what)
		case 0x82, 0x83, 0x84:
			err = d.refuse("EXT%d (a class from the copyreg extension registry)", 1<<(c-0x82))
		case 'P', 'Q':
			err = d.refuse("a persistent id (PERSID/BINPERSID)")
		case 0x97, 0x98:
			err = d.refuse("an out-of-band buffer (NEXT_BUFFER/READONLY_BUFFER)")
		default:
			err = d.malformed("unknown opcode 0x%02x", c)
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, d.malformed("no STOP opcode")
}

// kindOf is the container an opcode builds or extends.
func kindOf(c byte) kind {
	switch c {
	case 'l', 'e':
		return kList
	case 't':
		return kTuple
	case 'd', 'u':
		return kDict
	case 0x90:
		return kSet
	}
	return kFrozenSet
}

func isRange(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func (d *decoder) classBelowMark() string {
	if len(d.marks) > 0 {
		if k := d.marks[len(d.marks)-1]; k < len(d.stack) {
			if c, ok := d.stack[k].(classRef); ok {
				return " of " + c.module + "." + c.name
			}
		}
	}
	return ""
}

func (d *decoder) global(mod, name, op string) error {
	c := classRef{mod, name}
	if !allowed[c] {
		return d.refuse("%s %s.%s", op, mod, name)
	}
	d.push(c)
	return nil
}

// reduce interprets the calls the stdlib's pickler writes for plain data.
func (d *decoder) reduce() error {
	if err := d.need(2); err != nil {
		return err
	}
	argv, fn := d.pop(), d.pop()
	c, ok := fn.(classRef)
	if !ok {
		return d.malformed("REDUCE of a %s, not a class reference", typeName(fn))
	}
	t, ok := argv.(*node)
	if !ok || t.kind != kTuple {
		return d.malformed("REDUCE of %s.%s with a %s, not a tuple of arguments", c.module, c.name, typeName(argv))
	}
	args := t.items
	bad := func() error {
		return d.refuse("REDUCE %s.%s with arguments (%s)", c.module, c.name, argTypes(args))
	}
	switch c.name {
	case "set", "frozenset":
		k := kSet
		if c.name == "frozenset" {
			k = kFrozenSet
		}
		if len(args) == 0 {
			return d.pushNode(k, nil)
		}
		src, ok := args[0].(*node)
		if len(args) != 1 || !ok || src.kind == kDict {
			return bad()
		}
		items, err := d.copyItems(src.items)
		if err != nil {
			return err
		}
		return d.pushNode(k, items)
	case "bytes":
		if len(args) != 0 {
			return bad()
		}
		d.push([]byte{})
	case "encode": // _codecs.encode(str, "latin1"): bytes in protocols 0-2
		if len(args) != 2 || (args[1] != "latin1" && args[1] != "latin-1") {
			return bad()
		}
		s, ok := args[0].(string)
		if !ok {
			return bad()
		}
		b, err := d.latin1(s)
		if err != nil {
			return err
		}
		d.push(b)
	case "bytearray":
		switch {
		case len(args) == 0:
			d.push(Bytearray{})
		case len(args) == 1:
			b, ok := args[0].([]byte)
			if !ok {
				return bad()
			}
			if err := d.charge(len(b)); err != nil {
				return err
			}
			d.push(Bytearray(append([]byte{}, b...)))
		case len(args) == 2 && (args[1] == "latin-1" || args[1] == "latin1"):
			s, ok := args[0].(string)
			if !ok {
				return bad()
			}
			b, err := d.latin1(s)
			if err != nil {
				return err
			}
			d.push(Bytearray(b))
		default:
			return bad()
		}
	default:
		return bad()
	}
	return nil
}

func argTypes(args []any) string {
	s := ""
	for i, a := range args {
		if i > 0 {
			s += ", "
		}
		s += typeName(a)
	}
	return s
}

func (d *decoder) latin1(s string) ([]byte, error) {
	if err := d.charge(len(s)); err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, d.malformed("_codecs.encode: %U is not latin-1", r)
		}
		b = append(b, byte(r))
	}
	return b, nil
}

// textInt parses INT ("I01"/"I00" are True/False) and LONG (trailing "L").
func (d *decoder) textInt(long bool) error {
	b, err := d.line()
	if err != nil {
		return err
	}
	if !long && len(b) == 2 && b[0] == '0' && (b[1] == '0' || b[1] == '1') {
		d.push(b[1] == '1')
		return nil
	}
	s := string(b)
	if long && len(s) > 0 && s[len(s)-1] == 'L' {
		s = s[:len(s)-1]
	}
	if n, perr := strconv.ParseInt(s, 10, 64); perr == nil {
		d.push(n)
		return nil
	}
	digits := len(s)
	if digits > 0 && (s[0] == '-' || s[0] == '+') {
		digits--
	}
	if digits > maxIntDigits {
		return fmt.Errorf("%w: an int of %d digits at offset %d (CPython's limit is %d)", ErrTooLarge, digits, d.op, maxIntDigits)
	}
	z, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return d.malformed("bad integer %q", b[:min(len(b), 32)])
	}
	d.push(normInt(z))
	return nil
}

// longFromLE decodes a little-endian two's-complement integer (LONG1, LONG4).
func longFromLE(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	if len(b) <= 8 {
		var u uint64
		for i := len(b) - 1; i >= 0; i-- {
			u = u<<8 | uint64(b[i])
		}
		if len(b) < 8 && b[len(b)-1]&0x80 != 0 {
			u |= ^uint64(0) << (8 * len(b)) // sign-extend
		}
		return int64(u)
	}
	be := make([]byte, len(b))
	for i, c := range b {
		be[len(b)-1-i] = c
	}
	z := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		z.Sub(z, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return normInt(z)
}

func normInt(z *big.Int) any {
	if z.IsInt64() {
		return z.Int64()
	}
	return z
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// rawUnicodeEscape decodes Python's raw-unicode-escape: bytes are latin-1,
// except \uXXXX and \UXXXXXXXX.
func (d *decoder) rawUnicodeEscape(b []byte) (string, error) {
	out := make([]rune, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\\' && i+1 < len(b) && (b[i+1] == 'u' || b[i+1] == 'U') {
			n := 4
			if b[i+1] == 'U' {
				n = 8
			}
			if i+2+n > len(b) {
				return "", d.malformed("truncated \\%c escape", b[i+1])
			}
			v, perr := strconv.ParseUint(string(b[i+2:i+2+n]), 16, 32)
			if perr != nil {
				return "", d.malformed("bad \\%c escape", b[i+1])
			}
			if v > utf8.MaxRune || (v >= 0xd800 && v < 0xe000) {
				return "", fmt.Errorf("%w: escape \\%c%s (a surrogate or beyond U+10FFFF) at offset %d", ErrInvalidUTF8, b[i+1], b[i+2:i+2+n], d.op)
			}
			out = append(out, rune(v))
			i += 1 + n
			continue
		}
		out = append(out, rune(c))
	}
	return string(out), nil
}

// stringLiteral decodes the repr of a Python 2 str (STRING), as the stdlib
// does with its default encoding="ASCII": escape_decode, then ASCII.
func (d *decoder) stringLiteral(b []byte) (string, error) {
	if len(b) < 2 || (b[0] != '\'' && b[0] != '"') || b[len(b)-1] != b[0] {
		return "", d.malformed("STRING argument is not a quoted literal")
	}
	b = b[1 : len(b)-1]
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i == len(b) {
			return "", d.malformed("STRING ends with a backslash")
		}
		switch e := b[i]; e {
		case '\n':
		case '\\', '\'', '"':
			out = append(out, e)
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case 'r':
			out = append(out, '\r')
		case 'a':
			out = append(out, 7)
		case 'b':
			out = append(out, 8)
		case 'f':
			out = append(out, 12)
		case 'v':
			out = append(out, 11)
		case 'x':
			if i+2 >= len(b) {
				return "", d.malformed("truncated \\x escape")
			}
			v, perr := strconv.ParseUint(string(b[i+1:i+3]), 16, 8)
			if perr != nil {
				return "", d.malformed("bad \\x escape")
			}
			out = append(out, byte(v))
			i += 2
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v, j := 0, i
			for j < len(b) && j < i+3 && b[j] >= '0' && b[j] <= '7' {
				v = v*8 + int(b[j]-'0')
				j++
			}
			out = append(out, byte(v))
			i = j - 1
		default:
			out = append(out, '\\', e)
		}
	}
	if !isASCII(out) {
		return "", fmt.Errorf("%w: a Python 2 str that is not ASCII at offset %d", ErrInvalidUTF8, d.op)
	}
	return string(out), nil
}

// freeze builds the Go value of v at depth (the root is at 0), once per node,
// and returns it with its height and its weight (values counted as a walk
// meets them).
func (d *decoder) freeze(v any, depth int) (any, int, int, error) {
	switch x := v.(type) {
	case classRef:
		return nil, 0, 0, d.refuseAt("a class reference %s.%s used as a value", x.module, x.name)
	case *node:
		return d.freezeNode(x, depth)
	}
	return v, 0, 1, nil
}

func (d *decoder) refuseAt(format string, args ...any) error {
	return fmt.Errorf("%w: %s (the decoder calls nothing; only plain data decodes)", ErrReference, fmt.Sprintf(format, args...))
}

func (d *decoder) tooMany() error {
	return fmt.Errorf("%w: the value holds more than %d values counted through its shared references "+
		"(Limits.MaxValues)", ErrTooLarge, d.maxValue)
}

func (d *decoder) freezeNode(n *node, depth int) (any, int, int, error) {
	switch n.state {
	case 1:
		return nil, 0, 0, fmt.Errorf("%w: a %s that contains itself (recursive values have no Go form)", ErrMalformed, kindName[n.kind])
	case 2:
		if depth+n.height > d.lim.MaxDepth {
			return nil, 0, 0, fmt.Errorf("%w: containers nested more than %d deep", ErrTooDeep, d.lim.MaxDepth)
		}
		return n.out, n.height, n.weight, nil
	}
	if depth+1 > d.lim.MaxDepth {
		return nil, 0, 0, fmt.Errorf("%w: containers nested more than %d deep", ErrTooDeep, d.lim.MaxDepth)
	}
	n.state = 1
	height, weight := 0, 1
	vals := make([]any, len(n.items))
	for i, it := range n.items {
		v, h, w, err := d.freeze(it, depth+1)
		if err != nil {
			return nil, 0, 0, err
		}
		vals[i] = v
		height = max(height, h)
		weight += w
		if weight > d.maxValue {
			return nil, 0, 0, d.tooMany()
		}
	}
	var out any
	switch n.kind {
	case kList:
		out = vals
	case kTuple:
		out = Tuple(vals)
	case kDict:
		allStr := true
		for i := 0; i < len(vals); i += 2 {
			if err := checkKey(vals[i], "dict key"); err != nil {
				return nil, 0, 0, err
			}
			if _, ok := vals[i].(string); !ok {
				allStr = false
			}
		}
		if allStr {
			m := make(map[string]any, len(vals)/2)
			for i := 0; i < len(vals); i += 2 {
				m[vals[i].(string)] = vals[i+1]
			}
			out = m
		} else {
			m := make(map[any]any, len(vals)/2)
			for i := 0; i < len(vals); i += 2 {
				m[vals[i]] = vals[i+1]
			}
			out = m
		}
	case kSet, kFrozenSet:
		m := make(map[any]struct{}, len(vals))
		for _, v := range vals {
			if err := checkKey(v, kindName[n.kind]+" element"); err != nil {
				return nil, 0, 0, err
			}
			m[v] = struct{}{}
		}
		if n.kind == kSet {
			out = Set(m)
		} else {
			out = FrozenSet(m)
		}
	}
	n.state, n.out, n.height, n.weight, n.items = 2, out, height+1, weight, nil
	return out, n.height, weight, nil
}

func checkKey(k any, what string) error {
	switch k.(type) {
	case nil, bool, int64, float64, string:
		return nil
	}
	return fmt.Errorf("%w: a %s of type %s (Go map keys are None, bool, int64, float64 and str)", ErrUnsupportedKey, what, typeName(k))
}
