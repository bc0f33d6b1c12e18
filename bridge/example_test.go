package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/gobridge/gobridge/bridge"
	"github.com/gobridge/gobridge/wire/pickle"
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

// Many small sends batched: the frames go out in one write when the buffer
// fills, on Flush, or, as here, before the sender's next receive. A Python
// sender calls conn.set_write_buffer(64 << 10).
func ExampleWithWriteBuffer() {
	a, b, _ := bridge.Pipe(true, bridge.WithWriteBuffer(64<<10))
	defer a.Close()
	defer b.Close()
	go func() {
		sum := 0
		for range 1000 {
			var n int
			b.Recv(&n)
			sum += n
		}
		b.Send(sum) // batched as well: Flush writes it
		b.Flush()
	}()
	for i := range 1000 {
		a.Send(i) // no write yet
	}
	var sum int
	a.Recv(&sum) // writes the batch, then waits for the reply
	fmt.Println(sum, a.Buffered())
	// Output: 499500 0
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

// A named pipe shared by writers, read as the receive end of a one-way
// Pipe: a Python writer would use gobridge.open_fifo(path, "w").
func ExampleOpenFIFOReader() {
	dir, _ := os.MkdirTemp("", "gb")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "jobs")
	if _, err := bridge.Mkfifo(path); err != nil { // mode 0600
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	go func() {
		w, err := bridge.OpenFIFOWriter(ctx, path) // waits for a reader
		if err != nil {
			return
		}
		defer w.Close()
		w.Send("job 1")
		w.Send("job 2")
	}()
	r, err := bridge.OpenFIFOReader(ctx, path) // waits for a writer
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	for {
		var job string
		if err := r.RecvContext(ctx, &job); err != nil {
			fmt.Println(err) // io.EOF once the last writer has closed
			return
		}
		fmt.Println(job)
	}
	// Output:
	// job 1
	// job 2
	// EOF
}

// A child process with a connection (a Python child would pick its end up
// with gobridge.parent()); here sleep, to show what a terminated child
// reports.
func ExampleStartProcess() {
	p, err := bridge.StartProcess(exec.Command("sleep", "10"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	p.Terminate()
	var exit *bridge.ProcessExitError
	fmt.Println(errors.As(p.Join(context.Background()), &exit), exit.Code)
	code, _ := p.ExitCode()
	fmt.Println(code)
	// Output:
	// true -15
	// -15
}

// A Go server for unmodified multiprocessing code: the Python side is
// multiprocessing.connection.Client(path, authkey=b"secret"), calling send
// and recv, which pickle; WithCodec(pickle.Codec{}) speaks that. Here a Go
// client with the same options stands in for it.
func ExampleWithAuthkey() {
	dir, _ := os.MkdirTemp("", "gb")
	defer os.RemoveAll(dir)
	opts := []bridge.ConnOption{bridge.WithAuthkey([]byte("secret")), bridge.WithCodec(pickle.Codec{})}
	l, err := bridge.Listen("unix:"+filepath.Join(dir, "app.sock"), opts...)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept(context.Background())
			if errors.Is(err, bridge.ErrClosed) {
				return
			} else if err != nil { // ErrAuthentication: that client is gone, serve the next
				continue
			}
			var req map[string]any
			c.Recv(&req)
			c.Send(map[string]any{"echo": req["job"]})
			c.Close()
		}
	}()
	c, err := bridge.Dial(context.Background(), l.Addr(), opts...)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	c.Send(map[string]any{"job": "resize"})
	var reply map[string]any
	c.Recv(&reply)
	fmt.Println(reply["echo"])

	_, err = bridge.Dial(context.Background(), l.Addr(), bridge.WithAuthkey([]byte("guess")))
	fmt.Println(errors.Is(err, bridge.ErrAuthentication))
	// Output:
	// resize
	// true
}
