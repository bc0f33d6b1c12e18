package wire_test

import (
	"bytes"
	"errors"
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

// ErrDecode tells a payload that does not decode, after which the stream
// is still in step, from a framing error, after which it is not.
func ExampleErrDecode() {
	var stream bytes.Buffer
	wire.WriteFrame(&stream, []byte{0xc1}, 0) // 0xc1 is never valid msgpack
	ok, _ := wire.Marshal("next")
	wire.WriteFrame(&stream, ok, 0)

	r := wire.NewReader(&stream, 0)
	for {
		p, err := r.ReadFrame(nil)
		if err != nil {
			fmt.Println("stream:", err)
			return
		}
		var v any
		if err := wire.Unmarshal(p, &v); errors.Is(err, wire.ErrDecode) {
			fmt.Println("skipped:", err)
			continue
		}
		fmt.Println("got", v)
	}
	// Output:
	// skipped: wire: malformed msgpack: reserved byte 0xc1 at offset 0
	// got next
	// stream: EOF
}
