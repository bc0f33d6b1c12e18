package pickle

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// interpreters returns the CPythons to test against: $GOBRIDGE_PYTHONS
// (space-separated) or pyenv's 3.10 to 3.13.
func interpreters(t *testing.T) []string {
	t.Helper()
	var found []string
	if env := os.Getenv("GOBRIDGE_PYTHONS"); env != "" {
		found = strings.Fields(env)
	} else {
		for _, v := range []string{"3.10", "3.11", "3.12", "3.13"} {
			m, _ := filepath.Glob("/root/.pyenv/versions/" + v + ".*/bin/python" + v)
			found = append(found, m...)
		}
	}
	if len(found) == 0 {
		t.Skip("no CPython 3.10-3.13 found (set GOBRIDGE_PYTHONS)")
	}
	return found
}

// Pickles written live by each interpreter, at every protocol, decode to want.
func TestDecodeLiveInterpreters(t *testing.T) {
	for _, py := range interpreters(t) {
		t.Run(filepath.Base(py), func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command(py, "testdata/values.py").Output()
			if err != nil {
				t.Fatalf("%s: %v", py, err)
			}
			var f struct {
				Version string              `json:"version"`
				Vectors map[string][]string `json:"vectors"`
			}
			if err := json.Unmarshal(out, &f); err != nil {
				t.Fatal(err)
			}
			vs := map[string][][]string{}
			for name, hexes := range f.Vectors {
				for _, h := range hexes {
					vs[name] = append(vs[name], []string{h})
				}
			}
			checkVectors(t, f.Version, vs)
		})
	}
}

type sample struct {
	A int      `msgpack:"a"`
	B []string `msgpack:"b"`
}

// goOnly are Go values whose Python value is the expression beside them.
var goOnly = map[string]struct {
	v    any
	expr string
}{
	"int8":        {int8(-5), "-5"},
	"uint64_max":  {uint64(math.MaxUint64), "2**64-1"},
	"uint8":       {uint8(200), "200"},
	"float32":     {float32(0.5), "0.5"},
	"nil_slice":   {[]int(nil), "None"},
	"nil_map":     {map[string]int(nil), "None"},
	"nil_pointer": {(*int)(nil), "None"},
	"pointer":     {new(int), "0"},
	"ints":        {[]int{1, 2}, "[1, 2]"},
	"array":       {[2]string{"a", "b"}, "['a', 'b']"},
	"byte_array":  {[3]byte{1, 2, 3}, "b'\\x01\\x02\\x03'"},
	"map_typed":   {map[string]int{"a": 1}, "{'a': 1}"},
	"map_int_key": {map[int]string{3: "c"}, "{3: 'c'}"},
	"bytes_key":   {map[string]any{"k": map[any]any{}}, "{'k': {}}"},
	"struct":      {sample{A: 1, B: []string{"x"}}, "{'a': 1, 'b': ['x']}"},
	"big_value":   {*big.NewInt(-3), "-3"},
	"set_of_str":  {Set{"x": {}}, "{'x'}"},
	"tuple_mixed": {Tuple{nil, Bytearray("z"), []byte("y")}, "(None, bytearray(b'z'), b'y')"},
}

const checkLoads = `
import json, math, pickle, sys
exec(open(sys.argv[1]).read().replace('if __name__ == "__main__":', 'if False:'))

def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b

cases = json.load(sys.stdin)
bad = []
for name, (h, expr) in cases.items():
    want = VALUES[name] if expr is None else eval(expr)
    data = bytes.fromhex(h)
    if data[:2] != b"\x80\x04":
        bad.append(f"{name}: not protocol 4: {data[:2]!r}")
    try:
        got = pickle.loads(data)
    except Exception as e:
        bad.append(f"{name}: {type(e).__name__}: {e}")
        continue
    if not same(got, want):
        bad.append(f"{name}: got {got!r:.100}, want {want!r:.100}")
print(json.dumps(bad))
`

// Go values encode to pickles that every interpreter unpickles to the
// natural Python value (the same type, the same value).
func TestEncodeLiveInterpreters(t *testing.T) {
	cases := map[string][2]any{}
	for name, v := range want {
		p, err := Encode(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cases[name] = [2]any{hex.EncodeToString(p), nil}
	}
	for name, c := range goOnly {
		p, err := Encode(c.v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cases["go_"+name] = [2]any{hex.EncodeToString(p), c.expr}
	}
	in, _ := json.Marshal(cases)
	for _, py := range interpreters(t) {
		t.Run(filepath.Base(py), func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(py, "-c", checkLoads, "testdata/values.py")
			cmd.Stdin = bytes.NewReader(in)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			var bad []string
			if err := json.Unmarshal(out, &bad); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			for _, b := range bad {
				t.Error(b)
			}
		})
	}
}
