package pickle_test

import (
	"errors"
	"fmt"

	"github.com/gobridge/gobridge/wire/pickle"
)

// A pickle from Python's pickle.dumps({'op': 'add', 'args': (1, 2)}) decodes
// to Go values; Go values encode to what pickle.loads reads.
func Example() {
	p := []byte("\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x02op\x94\x8c\x03add\x94\x8c\x04args\x94K\x01K\x02\x86\x94u.")
	var v any
	if err := pickle.Unmarshal(p, &v); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("%v %T\n", v, v.(map[string]any)["args"])

	out, _ := pickle.Encode(map[string]any{"ok": true})
	fmt.Printf("% x\n", out[:2])
	// Output:
	// map[args:[1 2] op:add] pickle.Tuple
	// 80 04
}

// A pickle that would run code is refused, naming what it references.
func Example_refused() {
	_, err := pickle.Decode([]byte("cos\nsystem\n(S'rm -rf /'\ntR."))
	fmt.Println(errors.Is(err, pickle.ErrReference))
	fmt.Println(err)
	// Output:
	// true
	// pickle: class or function reference refused: GLOBAL os.system at offset 0 (the decoder calls nothing; only plain data decodes)
}
