package wire

// A Codec turns values into payloads and back. Msgpack, this package's
// format, is the default; package wire/pickle provides the pickle codec that
// a stock multiprocessing.connection peer speaks (SPEC section 15). A
// connection takes one codec for both directions.
type Codec interface {
	// Marshal returns the payload encoding v.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes the payload p into v, a non-nil pointer.
	Unmarshal(p []byte, v any) error
	// Name is the codec's name as the CLI spells it ("msgpack", "pickle").
	Name() string
}

// Msgpack is the Codec of Marshal and Unmarshal (SPEC section 3).
var Msgpack Codec = msgpackCodec{}

type msgpackCodec struct{}

func (msgpackCodec) Marshal(v any) ([]byte, error)   { return Marshal(v) }
func (msgpackCodec) Unmarshal(p []byte, v any) error { return Unmarshal(p, v) }
func (msgpackCodec) Name() string                    { return "msgpack" }
