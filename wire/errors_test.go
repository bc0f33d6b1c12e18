package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Every payload error matches ErrDecode (the connection stays usable);
// framing, target and encoding errors do not.
func TestErrDecodeFamily(t *testing.T) {
	for _, e := range []error{ErrMalformed, ErrTooDeep, ErrTooManyContainers, ErrInvalidUTF8,
		ErrUnknownExtension, ErrUnsupportedKey, ErrTargetType} {
		if !errors.Is(e, ErrDecode) {
			t.Errorf("%v does not match ErrDecode", e)
		}
	}
	for _, e := range []error{ErrFrameTooLarge, ErrBadHeader, ErrBadTarget, ErrUnsupportedType, io.ErrUnexpectedEOF} {
		if errors.Is(e, ErrDecode) {
			t.Errorf("%v matches ErrDecode", e)
		}
	}
	if !errors.Is(ErrTooManyContainers, ErrMalformed) || errors.Is(ErrMalformed, ErrTooManyContainers) {
		t.Error("ErrTooManyContainers is in the ErrMalformed family, not the reverse")
	}
	var n int
	p, _ := Marshal("not an int")
	err := Unmarshal(p, &n)
	if !errors.Is(err, ErrTargetType) || !errors.Is(err, ErrDecode) || !strings.HasPrefix(err.Error(), "wire: ") ||
		strings.Count(err.Error(), "wire:") != 1 {
		t.Errorf("a str into an int: %v", err)
	}
	fr := NewReader(bytes.NewReader([]byte{0, 0, 0, 9, 1}), 4)
	if _, err := fr.ReadFrame(nil); !errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrDecode) {
		t.Errorf("frame too large: %v", err)
	}
}

type keyStruct struct{ A, B int }

type extValue struct{}

func (extValue) MarshalMsgpack() ([]byte, error) { return []byte{0xd4, 0x05, 0x00}, nil } // ext type 5

type badStrings struct {
	Name string `msgpack:"name"`
}

// What no decoder accepts is refused when encoding, with the reason and
// ErrUnsupportedType (never ErrDecode), and nothing is written.
func TestEncoderRefusesWhatNoDecoderAccepts(t *testing.T) {
	deep := any(nil)
	for i := 0; i < MaxDepth+1; i++ {
		deep = []any{deep}
	}
	deepMap := any(nil)
	for i := 0; i < MaxDepth+1; i++ {
		deepMap = map[string]any{"k": deepMap}
	}
	deepTyped := []any{nil}
	for i := 0; i < MaxDepth; i++ {
		deepTyped = []any{deepTyped}
	}
	for _, tc := range []struct {
		name   string
		v      any
		reason error
		text   string
	}{
		{"array key, typed map", map[[2]int]int{{1, 2}: 3}, ErrUnsupportedKey, "an array used as a map key"},
		{"struct key, typed map", map[keyStruct]string{{1, 2}: "x"}, ErrUnsupportedKey, "a map used as a map key"},
		{"array key in map[any]any", map[any]any{[2]int{1, 2}: "x"}, ErrUnsupportedKey, "a [2]int key encodes as an array"},
		{"struct key in map[any]any", map[any]any{keyStruct{1, 2}: "x"}, ErrUnsupportedKey, "a wire.keyStruct key encodes as a map"},
		{"pointer-to-struct key", map[*keyStruct]int{{1, 2}: 1}, ErrUnsupportedKey, "a map used as a map key"},
		{"nested in a generic value", []any{map[string]any{"m": map[[1]string]int{{"a"}: 1}}}, ErrUnsupportedKey, "map[[1]string]int"},
		{"invalid UTF-8 string", "ok\xff", ErrInvalidUTF8, "not valid UTF-8"},
		{"invalid UTF-8 map key", map[string]any{"\xc3": 1}, ErrInvalidUTF8, "not valid UTF-8"},
		{"invalid UTF-8 key in map[any]any", map[any]any{"\xc3": 1}, ErrInvalidUTF8, "not valid UTF-8"},
		{"invalid UTF-8 struct field", badStrings{"\xe2\x82"}, ErrInvalidUTF8, "wire.badStrings"},
		{"invalid UTF-8 in a typed slice", []string{"a", "\xff"}, ErrInvalidUTF8, "[]string"},
		{"1025 nested []any", deep, ErrTooDeep, "more than 1024"},
		{"1025 nested maps", deepMap, ErrTooDeep, "more than 1024"},
		{"1025 nested, typed inside", []any{deepTyped}, ErrTooDeep, "more than 1024"},
		{"unknown extension from a Marshaler", []any{extValue{}}, ErrUnknownExtension, "type 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEncoder()
			p, err := e.Marshal(tc.v)
			if !errors.Is(err, tc.reason) || !errors.Is(err, ErrUnsupportedType) || errors.Is(err, ErrDecode) || p != nil {
				t.Fatalf("Marshal = %x, %v; want %v", p, err, tc.reason)
			}
			if !strings.Contains(err.Error(), tc.text) || strings.Count(err.Error(), "wire:") != 1 {
				t.Errorf("message %q does not say %q (once prefixed)", err, tc.text)
			}
			if frame, err := e.AppendFrame([]byte("x"), tc.v, 0); err == nil || string(frame) != "x" {
				t.Errorf("AppendFrame = %q, %v", frame, err)
			}
			if q, err := e.Marshal([]any{int64(1)}); err != nil || hex.EncodeToString(q) != "9101" {
				t.Errorf("the Encoder is not reusable: %x, %v", q, err)
			}
		})
	}
}

// What a decoder accepts is still encoded: bin keys (Python decodes them,
// SPEC 3.1), keys of named scalar types, the deepest allowed nesting.
func TestEncoderStillAcceptsDecodable(t *testing.T) {
	type name string
	deep := any(nil)
	for i := 0; i < MaxDepth; i++ {
		deep = []any{deep}
	}
	for _, tc := range []struct {
		name string
		v    any
		hex  string
	}{
		{"[N]byte keys are bin", map[[2]byte]int{{1, 2}: 3}, "81c402010203"},
		{"named string keys", map[name]int{"a": 1}, "81a16101"},
		{"typed int keys in map[any]any", map[any]any{int8(-1): "x", uint16(7): "y"}, "82ffa17807a179"},
		{"time key", map[any]any{time.Unix(0, 0): 1}, "81d6ff0000000001"},
		{"1024 deep", deep, strings.Repeat("91", MaxDepth) + "c0"},
	} {
		p, err := Marshal(tc.v)
		if err != nil || hex.EncodeToString(p) != tc.hex {
			t.Errorf("%s: Marshal = %x, %v; want %s", tc.name, p, err, tc.hex)
		}
	}
}

func TestUnmarshalBadTarget(t *testing.T) {
	p, _ := Marshal("x")
	var s string
	var np *string
	for _, target := range []any{nil, s, np, 5, map[string]any{}} {
		err := Unmarshal(p, target)
		if !errors.Is(err, ErrBadTarget) || errors.Is(err, ErrDecode) {
			t.Errorf("Unmarshal(%T) = %v, want ErrBadTarget", target, err)
		}
	}
	if err := CheckTarget(&s); err != nil {
		t.Error(err)
	}
	if err := Unmarshal(p, &s); err != nil || s != "x" {
		t.Errorf("%q, %v", s, err)
	}
}

// msgpack reads a pickle (protocol 2 to 5) as an empty map and trailing
// bytes; the error says what it is.
func TestPickleIsRecognized(t *testing.T) {
	for _, h := range []string{
		"8004950a000000000000007d948c0161944b01732e", // pickle.dumps({'a': 1}, protocol=4)
		"80027d710058010000006171014b01732e",         // protocol 2
	} {
		p, _ := hex.DecodeString(h)
		err := Validate(p)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "looks like a pickle (protocol "+h[3:4]+")") {
			t.Errorf("%s: %v", h, err)
		}
	}
	if err := Validate([]byte{0x80, 0x01}); err == nil || strings.Contains(err.Error(), "pickle") {
		t.Errorf("not a pickle: %v", err)
	}
}

func TestFrameLimitMessagesSayHowToRaiseIt(t *testing.T) {
	err := CheckSize(100, 64)
	if !errors.Is(err, ErrFrameTooLarge) || !strings.Contains(err.Error(), "bridge.WithMaxFrameSize") ||
		!strings.Contains(err.Error(), "bad message length: 100 bytes") {
		t.Errorf("send: %v", err)
	}
	for _, hdr := range [][]byte{{0, 0, 0, 100}, {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 0}} {
		_, err := NewReader(bytes.NewReader(hdr), 64).ReadFrame(nil)
		if !errors.Is(err, ErrFrameTooLarge) || !strings.Contains(err.Error(), "bridge.WithMaxFrameSize") ||
			!strings.Contains(err.Error(), "limit of 64") {
			t.Errorf("receive %x: %v", hdr, err)
		}
	}
}

// Instants before year 0 or after 9999 (which Go decodes and Python cannot)
// print and parse as time.Format writes them (SPEC 7).
func TestJSONTimesOutsideRFC3339Years(t *testing.T) {
	for _, sec := range []int64{253402300800, -62135596801, -62167219201, -219951936000, 1 << 40, -1 << 40} {
		tm := time.Unix(sec, 5).UTC()
		text, err := ToJSON(tm)
		if err != nil {
			t.Fatal(err)
		}
		back, err := FromJSON(text)
		if err != nil || !back.(time.Time).Equal(tm) {
			t.Errorf("%d: %s -> %v, %v", sec, text, back, err)
		}
	}
	for _, bad := range []string{`{"$time":"02020-01-01T00:00:00Z"}`, `{"$time":"-020-01-01T00:00:00Z"}`,
		`{"$time":"10001-02-29T00:00:00Z"}`, `{"$time":"+10000-01-01T00:00:00Z"}`} {
		if v, err := FromJSON([]byte(bad)); !errors.Is(err, ErrJSON) {
			t.Errorf("FromJSON(%s) = %v, %v; want ErrJSON", bad, v, err)
		}
	}
	leap, err := FromJSON([]byte(`{"$time":"10000-02-29T00:00:00Z"}`))
	if err != nil || leap.(time.Time).Month() != time.February {
		t.Errorf("year 10000 is a leap year: %v, %v", leap, err)
	}
}

// A map whose keys start as strs and then are not becomes a map[any]any
// holding every entry.
func TestMixedKeysAfterStrKeys(t *testing.T) {
	p, _ := hex.DecodeString("83a16101a1620201c3") // {"a": 1, "b": 2, 1: true}
	var v any
	if err := Unmarshal(p, &v); err != nil {
		t.Fatal(err)
	}
	m, ok := v.(map[any]any)
	if !ok || len(m) != 3 || m["a"] != int64(1) || m["b"] != int64(2) || m[int64(1)] != true {
		t.Fatalf("got %#v", v)
	}
}

var _ msgpack.Marshaler = extValue{}
