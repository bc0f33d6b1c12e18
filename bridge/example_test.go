package bridge_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gobridge/gobridge/bridge"
)

// Pipe works as multiprocessing.Pipe: here both ends stay in one process.
func ExamplePipe() {
	a, b, _ := bridge.Pipe(true)
	defer a.Close()
	defer b.Close()
	go a.Send(map[string]any{"msg": "hello", "n": 3})
	var got map[string]any
	b.Recv(&got)
	fmt.Println(got["msg"], got["n"])
	// Output: hello 3
}

// A server and a client on a unix socket; a Python client would use
// gobridge.Client("unix:" + path) the same way.
func ExampleListen() {
	dir, _ := os.MkdirTemp("", "gb")
	defer os.RemoveAll(dir)
	l, err := bridge.Listen("unix:" + filepath.Join(dir, "app.sock"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	go func() {
		c, err := l.Accept(context.Background())
		if err != nil {
			return
		}
		defer c.Close()
		var req string
		c.Recv(&req)
		c.Send("copy! " + req)
	}()
	c, _ := bridge.Dial(context.Background(), l.Addr())
	defer c.Close()
	c.Send("hello")
	var reply string
	c.Recv(&reply)
	fmt.Println(reply)
	// Output: copy! hello
}
