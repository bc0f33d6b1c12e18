package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
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
