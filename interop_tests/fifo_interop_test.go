package interop_tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobridge/gobridge/bridge"
	"github.com/gobridge/gobridge/internal/testenv"
)

// fifoPath makes a FIFO in a fresh short directory, removed after the test.
func fifoPath(t *testing.T) string {
	t.Helper()
	p := filepath.Join(testenv.ShortDir(t), "f")
	if _, err := bridge.Mkfifo(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(p) })
	return p
}

// Eight concurrent writers (four Go processes, four Python processes) of
// 100 KiB frames to one FIFO: every frame arrives whole, whichever language
// reads, and the reader sees EOF when the last writer closes.
func TestFIFOEightWritersAcross(t *testing.T) {
	const frames, size = 8, 100 << 10
	var ws []fifoWriter
	for i := range 8 {
		ws = append(ws, fifoWriter{python: i%2 == 1, n: frames, size: size, tag: i * frames})
	}
	fifoWritersAcross(t, ws, 8*frames)
}

// Large frames (which the kernel writes in pieces as the pipe fills) and
// small ones (atomic) from Go and Python writers at once: no small frame
// lands between the pieces of a large one.
func TestFIFOSmallAndLargeWritersAcross(t *testing.T) {
	fifoWritersAcross(t, []fifoWriter{
		{python: false, n: 30, size: 100 << 10, tag: 0},
		{python: true, n: 30, size: 100 << 10, tag: 30},
		{python: false, n: 4000, size: 100, tag: 60},
		{python: true, n: 4000, size: 100, tag: 60},
	}, -1)
}

// A fifoWriter is one writer process: n frames of size bytes, frame i
// filled with byte tag+i.
type fifoWriter struct {
	python       bool
	n, size, tag int
}

// fifoWritersAcross runs the writers at once into one FIFO, read by a Go
// and then by a Python reader: every frame must arrive whole (one byte value
// throughout, one of the writers' sizes), all of them, and distinct first
// bytes (-1: not checked).
func fifoWritersAcross(t *testing.T, ws []fifoWriter, distinct int) {
	peer := buildProcPeer(t)
	total, sizes := 0, map[int]bool{}
	for _, w := range ws {
		total += w.n
		sizes[w.size] = true
	}
	for _, reader := range []string{"go", "python"} {
		t.Run(reader+"-reader", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			path := fifoPath(t)
			// The reader opens first; an anchor writer held by the test keeps
			// the FIFO open until every writer process has exited, so that
			// writers that start late still find a reader. The reader's EOF
			// comes when the anchor, the last writer, closes.
			var report struct{ Distinct, Total, Bad int }
			readerDone := make(chan error, 1)
			rc := make(chan *bridge.Conn, 1)
			if reader == "go" {
				go func() {
					r, err := bridge.OpenFIFOReader(ctx, path)
					if err != nil {
						readerDone <- err
						return
					}
					rc <- r
				}()
			} else {
				py := exec.CommandContext(ctx, testenv.Python(t), procPeerScript(), "fifo-read", path)
				py.Stderr = os.Stderr
				go func() { // not runPython: t.Fatal belongs to the test's goroutine
					out, err := py.Output()
					if err != nil {
						readerDone <- fmt.Errorf("python reader: %w", err)
						return
					}
					lines := strings.Split(strings.TrimSpace(string(out)), "\n")
					readerDone <- json.Unmarshal([]byte(lines[len(lines)-1]), &report)
				}()
			}
			anchor, err := bridge.OpenFIFOWriter(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			var cmds []*exec.Cmd
			for _, w := range ws {
				args := []string{"fifo-write", path, fmt.Sprint(w.n), fmt.Sprint(w.size), fmt.Sprint(w.tag)}
				cmd := exec.CommandContext(ctx, peer, args...)
				if w.python {
					cmd = exec.CommandContext(ctx, testenv.Python(t), append([]string{procPeerScript()}, args...)...)
				}
				cmd.Stderr = os.Stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				cmds = append(cmds, cmd)
			}
			// The writers are waited for here; a test that fails first
			// kills them, and reports only its own failure.
			var werr error
			writersDone := make(chan struct{})
			go func() {
				defer close(writersDone)
				for _, c := range cmds {
					if err := c.Wait(); err != nil && werr == nil {
						werr = fmt.Errorf("writer: %w", err)
					}
				}
				anchor.Close()
			}()
			t.Cleanup(func() {
				for _, c := range cmds {
					c.Process.Kill()
				}
				<-writersDone
			})
			if reader == "go" {
				var r *bridge.Conn
				select {
				case r = <-rc:
				case err := <-readerDone:
					t.Fatal(err)
				}
				defer r.Close()
				seen := map[byte]bool{}
				for {
					p, err := r.RecvBytesContext(ctx)
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					report.Total++
					if !sizes[len(p)] || !bytes.Equal(p, bytes.Repeat(p[:1], len(p))) {
						report.Bad++ // an empty frame too: only an interleaved stream makes one
						continue
					}
					seen[p[0]] = true
				}
				report.Distinct = len(seen)
			} else if err := <-readerDone; err != nil {
				t.Fatal(err)
			}
			if report.Total != total || (distinct >= 0 && report.Distinct != distinct) || report.Bad != 0 {
				t.Fatalf("reader saw %+v, want %d whole frames (%d distinct)", report, total, distinct)
			}
			<-writersDone
			if werr != nil {
				t.Fatal(werr)
			}
		})
	}
}

// A writer whose reader has gone gets a broken-pipe error, and SIGPIPE
// kills neither side: a Python writer after a Go reader closed, a Go writer
// after a Python reader exited.
func TestFIFOBrokenPipeAcross(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := fifoPath(t)
	cmd := exec.CommandContext(ctx, testenv.Python(t), procPeerScript(), "fifo-broken", path)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r, err := bridge.OpenFIFOReader(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	lines.Scan() // "open"
	r.Close()
	stdin.Write([]byte("go\n"))
	lines.Scan()
	if got := lines.Text(); got != "BrokenPipeError 32" {
		t.Fatalf("python writer: %q", got)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("python writer died: %v", err)
	}

	py := exec.CommandContext(ctx, testenv.Python(t), "-c",
		"import gobridge, sys; r = gobridge.open_fifo(sys.argv[1], 'r', timeout=20); print(r.recv(), flush=True)", path)
	py.Stderr = os.Stderr
	if err := py.Start(); err != nil {
		t.Fatal(err)
	}
	w, err := bridge.OpenFIFOWriter(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Send("one")
	py.Wait()
	for i := 0; i < 100 && err == nil; i++ {
		err = w.SendBytes(make([]byte, 1000))
	}
	if !errors.Is(err, bridge.ErrBrokenPipe) {
		t.Fatalf("go writer: %v", err)
	}
}

// fifo: connections across the language line, both ways, and through the
// CLI's echo.
func TestFIFOConnectionsAcross(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := testenv.ShortDir(t)
	roundTrip := func(c *bridge.Conn) {
		t.Helper()
		for _, v := range []any{"hi", bytes.Repeat([]byte{7}, 200<<10)} {
			if err := c.SendContext(ctx, v); err != nil {
				t.Fatal(err)
			}
			var got any
			if err := c.RecvContext(ctx, &got); err != nil || fmt.Sprint(got) != fmt.Sprint(v) {
				t.Fatalf("echo: %v", err)
			}
		}
	}
	// Go listens, Python dials.
	addr := "fifo:" + filepath.Join(dir, "g")
	l, err := bridge.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	py := exec.CommandContext(ctx, testenv.Python(t), procPeerScript(), "fifo-echo", addr)
	py.Stderr = os.Stderr
	py.Start()
	c, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(c)
	c.Close()
	if err := py.Wait(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	// Python listens, Go dials.
	addr = "fifo:" + filepath.Join(dir, "p")
	py = exec.CommandContext(ctx, testenv.Python(t), procPeerScript(), "fifo-serve", addr)
	py.Stderr = os.Stderr
	out, _ := py.StdoutPipe()
	py.Start()
	bufio.NewReader(out).ReadString('\n')
	c, err = bridge.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(c)
	c.Close()
	if err := py.Wait(); err != nil {
		t.Fatal(err)
	}
	// The CLI: gobridge echo on a fifo: address, Python's Client.
	addr = "fifo:" + filepath.Join(dir, "e")
	echo := exec.CommandContext(ctx, testenv.Gobridge(t), "echo", addr)
	echo.Stderr = os.Stderr
	echo.Start()
	got := runPython(t, "-c", `
import gobridge, sys, time
deadline = time.monotonic() + 20
while True:
    try:
        c = gobridge.Client(sys.argv[1], timeout=20)
        break
    except FileNotFoundError:
        if time.monotonic() > deadline: raise
        time.sleep(0.01)
c.send([1, "x"]); print(c.recv()); c.close()`, addr)
	if got != "[1, 'x']\n" {
		t.Fatalf("cli echo: %q", got)
	}
	echo.Process.Signal(os.Interrupt)
	echo.Wait()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
}
