package wire_test

import (
	"bytes"
	"fmt"

	"github.com/gobridge/gobridge/wire"
)

// Frames written by WriteFrame are what Python's multiprocessing.connection
// reads with recv_bytes; the payload is one msgpack object.
func Example() {
	payload, _ := wire.Marshal(map[string]any{"op": "add", "args": []any{1, 2}})
	var stream bytes.Buffer
	wire.WriteFrame(&stream, payload, wire.DefaultMaxFrameSize)
	fmt.Printf("header % x\n", stream.Bytes()[:4])

	got, _ := wire.NewReader(&stream, 0).ReadFrame(nil)
	var v any
	wire.Unmarshal(got, &v)
	fmt.Println(v)
	// Output:
	// header 00 00 00 10
	// map[args:[1 2] op:add]
}

func ExampleToJSON() {
	v, _ := wire.FromJSON([]byte(`{"$map":[[1,"one"],[2,{"$bin":"AQI="}]]}`))
	p, _ := wire.Marshal(v)
	var back any
	wire.Unmarshal(p, &back)
	text, _ := wire.ToJSON(back)
	fmt.Printf("%x\n%s\n", p, text)
	// Output:
	// 8201a36f6e6502c4020102
	// {"$map":[[1,"one"],[2,{"$bin":"AQI="}]]}
}
