package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

type point struct {
	X     int64    `msgpack:"x"`
	Label string   `msgpack:"label"`
	Tags  []string `msgpack:"tags"`
	Skip  string   `msgpack:"-"`
}

func TestStructIsMapByTag(t *testing.T) {
	p, err := Marshal(point{X: 1, Label: "a", Skip: "no"})
	if err != nil {
		t.Fatal(err)
	}
	var m any
	if err := Unmarshal(p, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"x": int64(1), "label": "a", "tags": nil}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("struct arrived as %#v, want %#v", m, want)
	}
	// and back: a generic map (as Python sends a dict) fills the struct
	in, _ := Marshal(map[string]any{"x": int64(-5), "label": "b", "tags": []any{"t"}, "extra": true})
	var got point
	if err := Unmarshal(in, &got); err != nil {
		t.Fatal(err)
	}
	if got.X != -5 || got.Label != "b" || !reflect.DeepEqual(got.Tags, []string{"t"}) {
		t.Fatalf("got %+v", got)
	}
}

func TestNilVersusEmpty(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{[]int(nil), "c0"}, {[]int{}, "90"}, {map[string]int(nil), "c0"}, {map[string]int{}, "80"},
		{[]byte(nil), "c0"}, {[]byte{}, "c400"},
	} {
		p, err := Marshal(tc.v)
		if err != nil || hex.EncodeToString(p) != tc.want {
			t.Errorf("Marshal(%#v) = %x, %v; want %s", tc.v, p, err, tc.want)
		}
	}
	var s []int
	if err := Unmarshal([]byte{0xc0}, &s); err != nil || s != nil {
		t.Errorf("nil into slice: %#v %v", s, err)
	}
	if err := Unmarshal([]byte{0x90}, &s); err != nil || s == nil || len(s) != 0 {
		t.Errorf("[] into slice: %#v %v", s, err)
	}
}

func TestIntegerShapes(t *testing.T) {
	for _, tc := range []struct {
		v    any
		hex  string
		back any
	}{
		{int8(-1), "ff", int64(-1)},
		{uint16(300), "cd012c", int64(300)},
		{int64(math.MinInt64), "d38000000000000000", int64(math.MinInt64)},
		{uint64(math.MaxUint64), "cfffffffffffffffff", uint64(math.MaxUint64)},
		{uint64(1 << 63), "cf8000000000000000", uint64(1 << 63)},
		{uint64(math.MaxInt64), "cf7fffffffffffffff", int64(math.MaxInt64)},
		{float32(1.5), "ca3fc00000", float64(1.5)},
	} {
		p, err := Marshal(tc.v)
		if err != nil || hex.EncodeToString(p) != tc.hex {
			t.Errorf("Marshal(%T %v) = %x, %v; want %s", tc.v, tc.v, p, err, tc.hex)
			continue
		}
		var got any
		if err := Unmarshal(p, &got); err != nil || got != tc.back {
			t.Errorf("Unmarshal(%x) = %T %v, %v; want %T %v", p, got, got, err, tc.back, tc.back)
		}
	}
}

func TestTimestampWidths(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		size int
	}{
		{time.Unix(1577836800, 0), 6},     // fixext4: ts32
		{time.Unix(1577836800, 5000), 10}, // fixext8: ts64
		{time.Unix(-2208988800, 0), 15},   // ext8 len 12: ts96 (1900)
		{time.Unix(1<<34, 1), 15},         // beyond 34 bits
	} {
		p, err := Marshal(tc.t)
		if err != nil || len(p) != tc.size {
			t.Errorf("Marshal(%v) = %x (%d bytes), %v; want %d bytes", tc.t, p, len(p), err, tc.size)
			continue
		}
		var got any
		if err := Unmarshal(p, &got); err != nil || !got.(time.Time).Equal(tc.t) || got.(time.Time).Location() != time.UTC {
			t.Errorf("round trip of %v = %v, %v", tc.t, got, err)
		}
	}
}

func TestMapKeys(t *testing.T) {
	p, err := Marshal(map[any]any{int64(2): "b", int64(-1): "a", "s": true, nil: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	// nil, numbers ascending, then strings
	if want := "84c0cb3fe0000000000000ffa16102a162a173c3"; hex.EncodeToString(p) != want {
		t.Fatalf("got %x, want %s", p, want)
	}
	var got any
	if err := Unmarshal(p, &got); err != nil {
		t.Fatal(err)
	}
	if m := got.(map[any]any); m[int64(2)] != "b" || m[nil] != 0.5 {
		t.Fatalf("got %#v", got)
	}
}

func TestRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		hex  string
		want error
	}{
		{"reserved byte", "c1", ErrMalformed},
		{"trailing", "9101" + "02", ErrMalformed},
		{"truncated str", "a3616263"[:6], ErrMalformed},
		{"array claims 4G", "ddffffffff", ErrMalformed},
		{"invalid utf8", "a2fffe", ErrInvalidUTF8},
		{"unknown ext", "d40500", ErrUnknownExtension},
		{"bad ts length", "c703ff000000", ErrMalformed},
		{"ts64 nsec too big", "d7ff" + "ffffffff" + "00000000", ErrMalformed},
		{"array key", "81" + "90" + "01", ErrUnsupportedKey},
		{"bin key", "81" + "c40161" + "01", ErrUnsupportedKey},
	} {
		p, _ := hex.DecodeString(tc.hex)
		var v any
		err := Unmarshal(p, &v)
		if !errors.Is(err, tc.want) || v != nil {
			t.Errorf("%s: err = %v (value %v), want %v", tc.name, err, v, tc.want)
		}
	}
	deep := append(bytes.Repeat([]byte{0x91}, MaxDepth+1), 0xc0)
	if err := Validate(deep); !errors.Is(err, ErrTooDeep) {
		t.Errorf("depth %d: %v", MaxDepth+1, err)
	}
	if err := Validate(deep[1:]); err != nil {
		t.Errorf("depth %d: %v", MaxDepth, err)
	}
	if _, err := Marshal(make(chan int)); !errors.Is(err, ErrUnsupportedType) {
		t.Errorf("chan: %v", err)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for _, text := range []string{
		`null`, `true`, `-9223372036854775808`, `18446744073709551615`, `1.0`, `1e+300`,
		`{"$float":"NaN"}`, `{"$float":"-Infinity"}`, `"héllo \u003c"`, `{"$bin":"AAEC"}`,
		`{"$time":"2026-11-22T08:00:00.123456789Z"}`, `[1,[2,[]],{}]`, `{"a":1,"b":[true]}`,
		`{"$map":[[-1,"x"],[2,"y"]]}`, `{"$map":[["$bin","not a wrapper"]]}`,
	} {
		v, err := FromJSON([]byte(text))
		if err != nil {
			t.Errorf("FromJSON(%s): %v", text, err)
			continue
		}
		p, err := Marshal(v)
		if err != nil {
			t.Errorf("Marshal(%s): %v", text, err)
			continue
		}
		var back any
		if err := Unmarshal(p, &back); err != nil {
			t.Errorf("Unmarshal(%s): %v", text, err)
			continue
		}
		out, err := ToJSON(back)
		if err != nil {
			t.Errorf("ToJSON(%s): %v", text, err)
			continue
		}
		want := text
		if text == `"héllo \u003c"` {
			want = `"héllo <"`
		}
		if string(out) != want {
			t.Errorf("JSON round trip: %s -> %s", text, out)
		}
	}
	for _, bad := range []string{`18446744073709551616`, `{"$bin":3}`, `{"$map":[[[1],2]]}`, `1 2`} {
		if _, err := FromJSON([]byte(bad)); !errors.Is(err, ErrJSON) {
			t.Errorf("FromJSON(%s) = %v, want ErrJSON", bad, err)
		}
	}
}

// A NaN map key is never found by lookup, so the encoder must not look keys
// up again after sorting them: {NaN: 48} once came back as {NaN: nil}
// (found by FuzzUnmarshal).
func TestNaNMapKeyKeepsItsValue(t *testing.T) {
	var v any
	if err := Unmarshal([]byte("\x81\xca\xff\xa1\x00\x00\x30"), &v); err != nil { // {float32 NaN: 48}
		t.Fatal(err)
	}
	p, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var back any
	if err := Unmarshal(p, &back); err != nil {
		t.Fatal(err)
	}
	w, _ := back.(map[any]any)
	for k, val := range w {
		if f, ok := k.(float64); !ok || !math.IsNaN(f) || val != int64(48) {
			t.Fatalf("round trip gave %T %#v: %T %#v", k, k, val, val)
		}
	}
	if len(w) != 1 {
		t.Fatalf("round trip gave %#v", back)
	}
}
