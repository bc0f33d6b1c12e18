package wire

import "testing"

var benchRecords = func() []byte {
	recs := make([]any, 1000)
	for i := range recs {
		recs[i] = map[string]any{"id": int64(i), "name": "n", "v": 1.5}
	}
	p, _ := Marshal(recs)
	return p
}()

var benchStruct = struct {
	ID    int64    `msgpack:"id"`
	Name  string   `msgpack:"name"`
	Score float64  `msgpack:"score"`
	Tags  []string `msgpack:"tags"`
}{7, "alice", 0.97, []string{"a", "b"}}

// BenchmarkUnmarshalRecords: 1000 small maps into *any.
func BenchmarkUnmarshalRecords(b *testing.B) {
	b.SetBytes(int64(len(benchRecords)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var v any
		if err := Unmarshal(benchRecords, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMarshalGeneric: a small map[string]any message, the generic path.
func BenchmarkMarshalGeneric(b *testing.B) {
	e := NewEncoder()
	v := map[string]any{"op": "add", "args": []any{int64(1), int64(2)}, "id": int64(7)}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := e.Marshal(v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMarshalStruct: a struct, encoded by vmihailenco/msgpack and then
// checked by the scanner.
func BenchmarkMarshalStruct(b *testing.B) {
	e := NewEncoder()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := e.Marshal(benchStruct); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMarshalRecords: 1000 small maps through the generic path.
func BenchmarkMarshalRecords(b *testing.B) {
	var v any
	Unmarshal(benchRecords, &v)
	e := NewEncoder()
	b.SetBytes(int64(len(benchRecords)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := e.Marshal(v); err != nil {
			b.Fatal(err)
		}
	}
}
