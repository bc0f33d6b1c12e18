package bridge_test

import (
	"errors"
	"fmt"

	"github.com/gobridge/gobridge/bridge"
)

// A receive loop that keeps going past a message it cannot decode (an error
// matching ErrDecode: the frame was consumed, the Conn is usable) and stops
// at anything else (end of stream, a cut or out-of-step stream).
func ExampleConn_Recv_decodeError() {
	a, b, _ := bridge.Pipe(true)
	defer b.Close()
	go func() {
		a.Send(1)
		a.SendBytes([]byte{0x81, 0x90, 0x01}) // {[]: 1}: no decoder accepts an array as a map key
		a.Send(2)
		a.Close()
	}()
	for {
		var n int
		err := b.Recv(&n)
		switch {
		case err == nil:
			fmt.Println("got", n)
		case errors.Is(err, bridge.ErrDecode):
			fmt.Println("skipped a message:", errors.Is(err, bridge.ErrUnsupportedKey))
		default:
			fmt.Println("done:", err)
			return
		}
	}
	// Output:
	// got 1
	// skipped a message: true
	// got 2
	// done: EOF
}
