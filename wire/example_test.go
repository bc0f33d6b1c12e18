package wire_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/gobridge/gobridge/wire"
	"github.com/vmihailenco/msgpack/v5"
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

// Celsius has its own msgpack form (vmihailenco/msgpack's CustomEncoder and
// CustomDecoder): a float in degrees. Send and Recv, Marshal and Unmarshal
// use these methods for a Celsius wherever it sits, and the peer sees a
// plain float (a Python float).
type Celsius struct{ Kelvin float64 }

func (c Celsius) EncodeMsgpack(e *msgpack.Encoder) error { return e.EncodeFloat64(c.Kelvin - 273.15) }

func (c *Celsius) DecodeMsgpack(d *msgpack.Decoder) error {
	deg, err := d.DecodeFloat64()
	c.Kelvin = deg + 273.15
	return err
}

// Types of your own choose their encoding with EncodeMsgpack/DecodeMsgpack
// (or MarshalMsgpack/UnmarshalMsgpack); what they write is checked as every
// payload is, so a custom encoding cannot send what no decoder accepts.
func Example_customEncoding() {
	p, _ := wire.Marshal(map[string]any{"room": Celsius{Kelvin: 294.15}})
	var generic any
	wire.Unmarshal(p, &generic) // what a peer without the type sees
	fmt.Printf("%.2f\n", generic.(map[string]any)["room"])

	var typed map[string]Celsius
	wire.Unmarshal(p, &typed)
	fmt.Printf("%.2f K\n", typed["room"].Kelvin)
	// Output:
	// 21.00
	// 294.15 K
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

// A Codec chooses the payload format; Msgpack is this package's own.
func ExampleCodec() {
	var c wire.Codec = wire.Msgpack
	p, _ := c.Marshal([]any{"x", 1})
	var v any
	c.Unmarshal(p, &v)
	fmt.Println(c.Name(), len(p), v)
	// Output:
	// msgpack 4 [x 1]
}
