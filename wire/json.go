package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrJSON: text that is not gobridge JSON (SPEC section 7).
var ErrJSON = errors.New("wire: invalid gobridge JSON")

// FromJSON parses one gobridge JSON value (SPEC section 7) into the shapes
// Unmarshal gives for *any: int64/uint64, float64, string, []byte, []any,
// map[string]any or map[any]any, time.Time.
func FromJSON(text []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(text))
	d.UseNumber()
	var raw any
	if err := d.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJSON, err)
	}
	if d.More() {
		return nil, fmt.Errorf("%w: more than one value", ErrJSON)
	}
	return fromJSON(raw)
}

func fromJSON(raw any) (any, error) {
	switch x := raw.(type) {
	case nil, bool, string:
		return x, nil
	case json.Number:
		return parseNumber(string(x))
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			v, err := fromJSON(e)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case map[string]any:
		if len(x) == 1 {
			for k, e := range x {
				if v, ok, err := fromWrapper(k, e); ok || err != nil {
					return v, err
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			v, err := fromJSON(e)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: unexpected %T", ErrJSON, raw)
}

func parseNumber(s string) (any, error) {
	if strings.ContainsAny(s, ".eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrJSON, err)
		}
		return f, nil
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return u, nil
	}
	return nil, fmt.Errorf("%w: integer %s outside [-2^63, 2^64)", ErrJSON, s)
}

// fromWrapper decodes {"$bin": ...} and friends; ok is false for a plain object.
func fromWrapper(key string, e any) (v any, ok bool, err error) {
	bad := func(format string, args ...any) (any, bool, error) {
		return nil, true, fmt.Errorf("%w: %s: %s", ErrJSON, key, fmt.Sprintf(format, args...))
	}
	switch key {
	case "$bin":
		s, isStr := e.(string)
		if !isStr {
			return bad("want a base64 string")
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return bad("%v", err)
		}
		return b, true, nil
	case "$time":
		s, isStr := e.(string)
		if !isStr {
			return bad("want an RFC 3339 string")
		}
		t, err := parseTime(s)
		if err != nil {
			return bad("%v", err)
		}
		return t.UTC(), true, nil
	case "$float":
		switch e {
		case "NaN":
			return math.NaN(), true, nil
		case "Infinity":
			return math.Inf(1), true, nil
		case "-Infinity":
			return math.Inf(-1), true, nil
		}
		return bad("want NaN, Infinity or -Infinity")
	case "$map":
		pairs, isArr := e.([]any)
		if !isArr {
			return bad("want an array of [key, value] pairs")
		}
		keys := make([]any, len(pairs))
		vals := make([]any, len(pairs))
		allStr := true
		for i, p := range pairs {
			kv, isPair := p.([]any)
			if !isPair || len(kv) != 2 {
				return bad("element %d is not a [key, value] pair", i)
			}
			if keys[i], err = fromJSON(kv[0]); err != nil {
				return nil, true, err
			}
			switch keys[i].(type) {
			case []any, map[string]any, map[any]any, []byte:
				return bad("key %d: %T cannot be a map key", i, keys[i])
			case string:
			default:
				allStr = false
			}
			if vals[i], err = fromJSON(kv[1]); err != nil {
				return nil, true, err
			}
		}
		return buildMap(keys, vals, allStr), true, nil
	}
	return nil, false, nil
}

var wrapperKeys = map[string]bool{"$bin": true, "$time": true, "$float": true, "$map": true}

// ToJSON renders a value of the shapes Unmarshal gives for *any (and the
// usual Go scalars) as gobridge JSON, without a trailing newline.
func ToJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := writeJSON(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeJSON(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int:
		b.WriteString(strconv.FormatInt(int64(x), 10))
	case int8, int16, int32, int64:
		fmt.Fprintf(b, "%d", x)
	case uint, uint8, uint16, uint32, uint64:
		fmt.Fprintf(b, "%d", x)
	case float32:
		return writeJSON(b, float64(x))
	case float64:
		switch {
		case math.IsNaN(x):
			b.WriteString(`{"$float":"NaN"}`)
		case math.IsInf(x, 1):
			b.WriteString(`{"$float":"Infinity"}`)
		case math.IsInf(x, -1):
			b.WriteString(`{"$float":"-Infinity"}`)
		default:
			s := strconv.FormatFloat(x, 'g', -1, 64)
			if !strings.ContainsAny(s, ".e") {
				s += ".0"
			}
			b.WriteString(s)
		}
	case string:
		writeJSONString(b, x)
	case []byte:
		b.WriteString(`{"$bin":"`)
		b.WriteString(base64.StdEncoding.EncodeToString(x))
		b.WriteString(`"}`)
	case time.Time:
		b.WriteString(`{"$time":"`)
		b.WriteString(x.UTC().Format(time.RFC3339Nano))
		b.WriteString(`"}`)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) == 1 && wrapperKeys[keys[0]] {
			return writePairs(b, []any{keys[0]}, []any{x[keys[0]]})
		}
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(b, k)
			b.WriteByte(':')
			if err := writeJSON(b, x[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case map[any]any:
		keys := make([]any, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return KeyLess(keys[i], keys[j]) })
		vals := make([]any, len(keys))
		for i, k := range keys {
			vals[i] = x[k]
		}
		return writePairs(b, keys, vals)
	default:
		return fmt.Errorf("%w: %T has no gobridge JSON form", ErrUnsupportedType, v)
	}
	return nil
}

func writePairs(b *bytes.Buffer, keys, vals []any) error {
	b.WriteString(`{"$map":[`)
	for i := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('[')
		if err := writeJSON(b, keys[i]); err != nil {
			return err
		}
		b.WriteByte(',')
		if err := writeJSON(b, vals[i]); err != nil {
			return err
		}
		b.WriteByte(']')
	}
	b.WriteString(`]}`)
	return nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // cannot fail for a string
	b.Truncate(b.Len() - 1)
}

// parseTime parses RFC 3339 and, for instants outside years 0000-9999 (which
// RFC 3339 cannot write), the form time.Format gives them: a leading '-'
// for years before 0, five or more digits after 9999 (SPEC section 7).
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err == nil {
		return t, nil
	}
	body, neg := strings.CutPrefix(s, "-")
	i := strings.IndexByte(body, '-')
	if i < 4 || (!neg && (i == 4 || body[0] == '0')) {
		return time.Time{}, err
	}
	year, aerr := strconv.Atoi(body[:i])
	if aerr != nil || year < 0 || body[0] == '+' {
		return time.Time{}, err
	}
	if neg {
		year = -year
	}
	base := "2001" // a year of the same kind, so that February 29 parses only where it exists
	if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		base = "2000"
	}
	u, err := time.Parse(time.RFC3339Nano, base+body[i:])
	if err != nil {
		return time.Time{}, err
	}
	t = time.Date(year, u.Month(), u.Day(), u.Hour(), u.Minute(), u.Second(), u.Nanosecond(), u.Location())
	if t.Year() != year { // past what time.Time holds
		return time.Time{}, fmt.Errorf("year %d out of range", year)
	}
	return t, nil
}
