package pickle

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/big"
	"runtime"
	"strings"
	"testing"

	"github.com/gobridge/gobridge/wire"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func rep(s string, n int) string { return strings.Repeat(s, n) }

// refused are pickles that reference code; the error names the reference.
var refused = []struct {
	name, pickle, names string
}{
	{"GLOBAL os.system", "cos\nsystem\n(S'echo hi'\ntR.", "GLOBAL os.system"},
	{"STACK_GLOBAL", "\x80\x04\x8c\x02os\x8c\x06system\x93.", "STACK_GLOBAL os.system"},
	{"INST", "(ios\nsystem\nS'x'\n.", "INST (creating an instance) of os.system"},
	{"OBJ", "(cbuiltins\nset\no.", "OBJ (creating an instance) of builtins.set"},
	{"BUILD", "]}b.", "BUILD"},
	{"NEWOBJ", "\x80\x02cbuiltins\nset\n)\x81.", "NEWOBJ"},
	{"EXT1", "\x80\x02\x82\x01.", "EXT1"},
	{"PERSID", "Pid\n.", "persistent id"},
	{"out-of-band buffer", "\x80\x05\x97.", "out-of-band"},
	{"REDUCE of an allowed name with odd arguments", "cbuiltins\nset\n(K\x01tR.", "REDUCE builtins.set with arguments (int)"},
	{"bytearray of a list", "\x80\x02c__builtin__\nbytearray\n]\x85R.", "REDUCE __builtin__.bytearray"},
	{"a bare class", "cbuiltins\nset\n.", "bare class reference"},
	{"a class inside a list", "](cbuiltins\nset\ne.", "class reference builtins.set"},
	{"datetime", string(unhex("8004952a000000000000008c086461746574696d65948c086461746574696d65949394430a07e4010203040500000094859452942e")), "STACK_GLOBAL datetime.datetime"},
	{"OrderedDict", string(unhex("80049529000000000000008c0b636f6c6c656374696f6e73948c0b4f726465726564446963749493942952948c0161944b01732e")), "collections.OrderedDict"},
	{"exception", string(unhex("800263657863657074696f6e730a56616c75654572726f720a710058010000007871018571025271032e")), "exceptions.ValueError"},
	{"Fraction", "cfractions\nFraction\np0\n(I1\nI3\ntp1\nRp2\n.", "GLOBAL fractions.Fraction"},
}

func TestReferencesRefused(t *testing.T) {
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.pickle))
			if !errors.Is(err, ErrReference) || !errors.Is(err, wire.ErrDecode) {
				t.Fatalf("got %v, want ErrReference", err)
			}
			if !strings.Contains(err.Error(), tc.names) {
				t.Fatalf("%q does not name %q", err, tc.names)
			}
		})
	}
}

// nestedShared is a "billion laughs": levels of lists, each holding ten
// references to the one below.
func nestedShared(levels int) []byte {
	var b bytes.Buffer
	b.WriteString("\x80\x04](K\x01K\x02e\x940") // memo 0: [1, 2]
	for i := 0; i < levels; i++ {
		b.WriteString("](")
		for j := 0; j < 10; j++ {
			b.WriteString("j")
			b.Write([]byte{byte(i), 0, 0, 0})
		}
		b.WriteString("e\x94") // memo i+1
		b.WriteString("0")     // pop it: only the memo keeps it
	}
	b.WriteString("j")
	b.Write([]byte{byte(levels), 0, 0, 0})
	b.WriteString(".")
	return b.Bytes()
}

var bombs = []struct {
	name   string
	pickle []byte
	want   error
}{
	{"shared-reference amplification", nestedShared(30), ErrTooLarge},
	{"nesting 100000 deep", []byte(rep("]", 100000) + rep("a", 99999) + "."), ErrTooDeep},
	{"nesting through later appends", func() []byte {
		// 2000 empty lists in the memo, then list i+1 appended into list i:
		// each APPEND sees a shallow list, the result is 2000 deep.
		var b bytes.Buffer
		b.WriteString(rep("]\x940", 2000))
		for i := 0; i < 1999; i++ {
			b.WriteString("j")
			b.Write([]byte{byte(i), byte(i >> 8), 0, 0})
			b.WriteString("j")
			b.Write([]byte{byte(i + 1), byte((i + 1) >> 8), 0, 0})
			b.WriteString("a0")
		}
		b.WriteString("j\x00\x00\x00\x00.")
		return b.Bytes()
	}(), ErrTooDeep},
	{"a million empty lists", []byte("\x80\x04](" + rep("]", 1<<20) + "e."), ErrTooLarge},
	{"LONG4 claiming 2 GiB", []byte("\x80\x02\x8b\xff\xff\xff\x7f\x01\x02."), ErrTooLarge},
	{"BINBYTES8 claiming 2^64-1", []byte("\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xffab."), ErrTooLarge},
	{"BINUNICODE8 claiming 2^63", []byte("\x80\x04\x8d\x00\x00\x00\x00\x00\x00\x00\x80ab."), ErrTooLarge},
	{"BYTEARRAY8 claiming 1 TiB", []byte("\x80\x05\x96\x00\x00\x00\x00\x00\x01\x00\x00ab."), ErrTooLarge},
	{"BINUNICODE claiming 4 GiB", []byte("X\xff\xff\xff\xffab."), ErrTooLarge},
	{"FRAME claiming 2^64-1", []byte("\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xffN."), ErrMalformed},
	{"a 10000-digit text int", []byte("I" + rep("9", 10000) + "\n."), ErrTooLarge},
	{"set() of a big list, many times", func() []byte {
		var b bytes.Buffer
		b.WriteString("\x80\x04](")
		for i := 0; i < 20000; i++ {
			b.WriteString("N")
		}
		b.WriteString("e\x94\x8c\x08builtins\x8c\x03set\x93\x94") // memo 0: the list, memo 1: set
		b.WriteString("](")
		for i := 0; i < 20000; i++ {
			b.WriteString("h\x01h\x00\x85R") // set(list)
		}
		b.WriteString("e.")
		return b.Bytes()
	}(), ErrTooLarge},
	{"a list that contains itself", []byte("]\x942a."), ErrMalformed},
}

func TestBombs(t *testing.T) {
	for _, tc := range bombs {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := Decode(tc.pickle)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tc.want) || !errors.Is(err, wire.ErrDecode) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			// The container budget lets any pickle hold 196608 containers
			// (about 20 MiB of Go values), and more in proportion to its size.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 48*uint64(len(tc.pickle))+24<<20 {
				t.Fatalf("allocated %d bytes for a %d-byte pickle", alloc, len(tc.pickle))
			}
		})
	}
}

func TestLimits(t *testing.T) {
	memo := []byte("](" + rep("N\x94", 11) + "e.")
	if _, err := (Limits{MaxMemo: 10}).Decode(memo); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("11 memo entries over a limit of 10: %v", err)
	}
	if _, err := (Limits{MaxMemo: 11}).Decode(memo); err != nil {
		t.Fatalf("11 memo entries within 11: %v", err)
	}
	if _, err := (Limits{MaxSize: 3}).Decode([]byte("K\x01.")); err != nil {
		t.Fatal(err)
	}
	if _, err := (Limits{MaxSize: 2}).Decode([]byte("K\x01.")); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("size: %v", err)
	}
	deep := []byte(rep("]", 5) + rep("a", 4) + ".")
	if _, err := (Limits{MaxDepth: 5}).Decode(deep); err != nil {
		t.Fatal(err)
	}
	if _, err := (Limits{MaxDepth: 4}).Decode(deep); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("depth: %v", err)
	}
	// Shared references within the bound decode.
	if v, err := Decode(nestedShared(3)); err != nil || len(v.([]any)) != 10 {
		t.Fatalf("1000-leaf shared value: %v", err)
	}
}

func TestMalformed(t *testing.T) {
	for _, tc := range []struct {
		name, pickle string
		want         error
	}{
		{"empty", "", ErrMalformed},
		{"no STOP", "K\x01", ErrMalformed},
		{"trailing bytes", "K\x01.x", ErrMalformed},
		{"two values", "K\x01K\x02.", ErrMalformed},
		{"open mark", "(K\x01.", ErrMalformed},
		{"APPEND without a list", "K\x01K\x02a.", ErrMalformed},
		{"APPEND below a mark", "](K\x01a.", ErrMalformed},
		{"unknown opcode", "\xff.", ErrMalformed},
		{"protocol 6", "\x80\x06N.", ErrMalformed},
		{"odd DICT", "(K\x01d.", ErrMalformed},
		{"GET of nothing", "h\x05.", ErrMalformed},
		{"truncated BININT", "J\x01\x02", ErrMalformed},
		{"text without newline", "I12", ErrMalformed},
		{"STACK_GLOBAL of ints", "K\x01K\x02\x93.", ErrMalformed},
		{"REDUCE of a non-class", "K\x01)R.", ErrMalformed},
		{"invalid UTF-8", "X\x02\x00\x00\x00\xc3\x28.", ErrInvalidUTF8},
		{"lone surrogate", "V\\ud800\n.", ErrInvalidUTF8},
		{"non-ASCII py2 str", "U\x01\xe9.", ErrInvalidUTF8},
		{"tuple dict key", "}K\x01K\x02\x86K\x03s.", ErrUnsupportedKey},
		{"bytes dict key", "\x80\x03}C\x01aK\x03s.", ErrUnsupportedKey},
		{"list set element", "\x80\x04\x8f(]\x90.", ErrUnsupportedKey},
		{"big int key", "}\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01K\x03s.", ErrUnsupportedKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.pickle))
			if !errors.Is(err, tc.want) || !errors.Is(err, wire.ErrDecode) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestProtocol0Text(t *testing.T) {
	for _, tc := range []struct {
		pickle string
		want   any
	}{
		{"I01\n.", true},
		{"I00\n.", false},
		{"I-12\n.", int64(-12)},
		{"I99999999999999999999\n.", bigInt("99999999999999999999")},
		{"L5L\n.", int64(5)},
		{"F-1.25\n.", -1.25},
		{"S'a\\nb\\x41\\101\\''\n.", "a\nbAA'"},
		{"V\\u00e9\\U0001f600x\n.", "é😀x"},
		{"Vcaf\xe9\n.", "café"}, // raw-unicode-escape: bytes are latin-1
		{"(lp0\nI1\naI2\na.", []any{int64(1), int64(2)}},
		{"(dp0\nVa\np1\nI1\ns.", map[string]any{"a": int64(1)}},
		{"(I1\nI2\ntp0\n.", Tuple{int64(1), int64(2)}},
		{"(lp0\ng0\n0.", []any{}}, // POP of the GET; the list stays
	} {
		got, err := Decode([]byte(tc.pickle))
		if err != nil || !equal(got, tc.want) {
			t.Errorf("%q: got %s, %v; want %s", tc.pickle, show(got), err, show(tc.want))
		}
	}
}

type target struct {
	Name  string         `msgpack:"name"`
	Tags  []string       `msgpack:"tags"`
	Count int            `msgpack:"count"`
	Extra map[string]int `msgpack:"extra"`
}

func TestUnmarshalTyped(t *testing.T) {
	// {'name': 'x', 'tags': ('a', 'b'), 'count': 3, 'extra': {'k': 1}} at protocol 4
	p, err := Encode(map[string]any{"name": "x", "tags": Tuple{"a", "b"}, "count": 3, "extra": map[string]any{"k": 1}})
	if err != nil {
		t.Fatal(err)
	}
	var got target
	if err := Unmarshal(p, &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != "x" || len(got.Tags) != 2 || got.Tags[1] != "b" || got.Count != 3 || got.Extra["k"] != 1 {
		t.Fatalf("got %+v", got)
	}
	var ints []int
	if err := Unmarshal([]byte("\x80\x04\x8f(K\x05\x90."), &ints); err != nil || len(ints) != 1 || ints[0] != 5 {
		t.Fatalf("set into []int: %v %v", ints, err)
	}
	var n int
	if err := Unmarshal([]byte("\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01."), &n); !errors.Is(err, wire.ErrTargetType) {
		t.Fatalf("2^64 into int: %v", err)
	}
	var s string
	if err := Unmarshal([]byte("K\x01."), &s); !errors.Is(err, wire.ErrTargetType) {
		t.Fatalf("int into string: %v", err)
	}
	if err := Unmarshal([]byte("K\x01."), nil); !errors.Is(err, wire.ErrBadTarget) {
		t.Fatalf("nil target: %v", err)
	}
	var c wire.Codec = Codec{}
	var v any
	if err := c.Unmarshal([]byte("cos\nsystem\n."), &v); !errors.Is(err, ErrReference) || v != nil {
		t.Fatalf("codec: %v %v", v, err)
	}
	if c.Name() != "pickle" {
		t.Fatal(c.Name())
	}
}

func TestRoundTrip(t *testing.T) {
	for name, v := range want {
		p, err := Encode(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := Decode(p)
		if err != nil || !equal(got, v) {
			t.Errorf("%s: got %s, %v", name, show(got), err)
		}
	}
	// A shared list stays shared in Go, as in Python.
	got, err := Decode(unhex(loadVectors(t).Vectors["shared"][4][0]))
	if err != nil {
		t.Fatal(err)
	}
	if l := got.([]any); &l[0].([]any)[0] != &l[1].([]any)[0] {
		t.Fatalf("the two references were copied: %v", got)
	}
}

func TestEncodeRefuses(t *testing.T) {
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	for _, tc := range []struct {
		name string
		v    any
		want error
	}{
		{"chan", make(chan int), ErrUnsupportedType},
		{"func", func() {}, ErrUnsupportedType},
		{"complex", complex(1, 2), ErrUnsupportedType},
		{"invalid UTF-8", "\xff", ErrInvalidUTF8},
		{"cycle", cyclic, ErrTooDeep},
		{"slice key", map[any]any{[1]int{1}: 1}, ErrUnsupportedKey},
	} {
		if _, err := Encode(tc.v); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	if p, err := Encode(big.NewInt(7)); err != nil || !bytes.HasPrefix(p, []byte{0x80, Protocol}) {
		t.Fatalf("%x %v", p, err)
	}
}
