package interop_tests

// A hostile same-user process against fifo: listeners of either language
// (issue 11): garbage in the rendezvous FIFO, stalled dialers, plain-pipe
// writers on a rendezvous. The listener keeps serving, a legitimate client
// of the other language gets through at once, plain pipes refuse at once.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobridge/gobridge/bridge"
	"github.com/gobridge/gobridge/internal/testenv"
	"github.com/gobridge/gobridge/wire"
)

// fifoGarbage is what a hostile writer puts into a rendezvous FIFO.
func fifoGarbage() [][]byte {
	str := func(s string) []byte {
		p, _ := wire.Marshal(s)
		return append(wire.AppendHeader(nil, int64(len(p))), p...)
	}
	random := make([]byte, 100<<10)
	rand.Read(random)
	return [][]byte{
		{0xff, 0xff, 0xff, 0xfe}, // negative length
		{0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // huge length
		{0, 0, 0, 1, 0x07},           // a frame whose payload is no str
		str("f.1/../x.0123456789ab"), // a str with a slash
		str("hello"),                 // a plain pipe's message
		random,
	}
}

// writeFIFOGarbage writes each piece of fifoGarbage into the FIFO at path.
func writeFIFOGarbage(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, g := range fifoGarbage() {
		if _, err := f.Write(g); err != nil {
			t.Fatal(err)
		}
	}
}

// stallDialer plays a dialer that posts a request for the rendezvous FIFO
// at path and stops: it makes its pair and opens .down for reading (kept
// open until the test ends), but never opens .up. It returns the pair's
// base path.
func stallDialer(t *testing.T, path string) string {
	t.Helper()
	var rnd [6]byte
	rand.Read(rnd[:])
	name := fmt.Sprintf("%s.%d.%s", filepath.Base(path), os.Getpid(), hex.EncodeToString(rnd[:]))
	base := filepath.Join(filepath.Dir(path), name)
	for _, s := range []string{".up", ".down"} {
		if err := syscall.Mkfifo(base+s, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(base + s) })
	}
	fd, err := syscall.Open(base+".down", syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	p, _ := wire.Marshal(name)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(append(wire.AppendHeader(nil, int64(len(p))), p...)); err != nil {
		t.Fatal(err)
	}
	return base
}

// pyAttackClient is the Python side against a Go listener: a plain writer
// that must be refused, garbage, a stalled dialer (pair made, .down open,
// .up never), then a legitimate Client; one JSON line reports it all.
const pyAttackClient = `
import errno, json, os, secrets, sys, time
import gobridge
p = sys.argv[1]
out = {}
t0 = time.monotonic()
try:
    gobridge.open_fifo(p, "w", timeout=10).send(1)
    out["plain"] = "opened"
except OSError as e:
    out["plain"] = errno.errorcode.get(e.errno, str(e.errno))
out["plain_s"] = time.monotonic() - t0
fd = os.open(p, os.O_WRONLY)
for g in (b"\xff\xff\xff\xfe", b"\x7f\xff\xff\xff\x01", b"\x00\x00\x00\x01\x07", os.urandom(100000)):
    os.write(fd, g)
name = "%s.%d.%s" % (os.path.basename(p), os.getpid(), secrets.token_hex(6))
base = os.path.join(os.path.dirname(p), name)
os.mkfifo(base + ".up"); os.mkfifo(base + ".down")
down = os.open(base + ".down", os.O_RDONLY | os.O_NONBLOCK)
payload = gobridge.encode(name)
os.write(fd, len(payload).to_bytes(4, "big") + payload)
os.close(fd)
t0 = time.monotonic()
with gobridge.Client("fifo:" + p, timeout=10) as c:
    out["connect_s"] = time.monotonic() - t0
    c.send("from python")
    out["reply"] = c.recv()
os.close(down)
for s in (".up", ".down"):
    if os.path.lexists(base + s):
        os.unlink(base + s)
print(json.dumps(out))
`

// A Go listener, in process and as gobridge echo, against a hostile Python
// process: the Python plain writer is refused at once, its garbage and its
// stalled dialer hold up nothing, and its legitimate Client gets through.
func TestFIFOGoListenerUnderAttackFromPython(t *testing.T) {
	check := func(t *testing.T, out string) {
		t.Helper()
		var r struct {
			Plain    string
			PlainS   float64 `json:"plain_s"`
			ConnectS float64 `json:"connect_s"`
			Reply    string
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("python: %q: %v", out, err)
		}
		if r.Plain != "EADDRINUSE" || r.PlainS > 1 {
			t.Errorf("open_fifo(rendezvous, 'w'): %s after %.2fs, want EADDRINUSE at once", r.Plain, r.PlainS)
		}
		if r.ConnectS > 2 || r.Reply != "from python" {
			t.Errorf("client: connected after %.2fs, reply %q", r.ConnectS, r.Reply)
		}
	}
	t.Run("in-process", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		dir := testenv.ShortDir(t)
		path := filepath.Join(dir, "f")
		l, err := bridge.Listen("fifo:" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		served := make(chan error, 1)
		go func() {
			c, err := l.Accept(ctx)
			if err == nil {
				defer c.Close()
				var v any
				if err = c.RecvContext(ctx, &v); err == nil {
					err = c.Send(v)
				}
			}
			served <- err
		}()
		check(t, runPython(t, "-c", pyAttackClient, path))
		if err := <-served; err != nil {
			t.Fatal(err)
		}
		l.Close()
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("left behind: %v", ents)
		}
	})
	t.Run("gobridge-echo", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		dir := testenv.ShortDir(t)
		path := filepath.Join(dir, "f")
		echo := exec.CommandContext(ctx, testenv.Gobridge(t), "echo", "fifo:"+path)
		stderr, _ := echo.StderrPipe()
		if err := echo.Start(); err != nil {
			t.Fatal(err)
		}
		defer echo.Wait()
		defer echo.Process.Kill()
		lines := bufio.NewReader(stderr)
		if line, _ := lines.ReadString('\n'); !strings.Contains(line, "listening") {
			t.Fatalf("gobridge echo: %q", line)
		}
		// The four bytes of issue 11 first, from the shell's printf.
		if err := exec.Command("sh", "-c", `printf '\377\377\377\376' > "$1"`, "sh", path).Run(); err != nil {
			t.Fatal(err)
		}
		check(t, runPython(t, "-c", pyAttackClient, path))
		// gobridge send --pipe on the rendezvous: refused at once.
		start := time.Now()
		out, err := exec.CommandContext(ctx, testenv.Gobridge(t), "send", "--pipe", path, "1").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "rendezvous") || time.Since(start) > 2*time.Second {
			t.Errorf("gobridge send --pipe on the rendezvous: %v after %v: %s", err, time.Since(start), out)
		}
		echo.Process.Signal(os.Interrupt)
		rest, _ := io.ReadAll(lines)
		if err := echo.Wait(); err != nil && echo.ProcessState.ExitCode() != 130 { // 130: ended by SIGINT
			t.Fatalf("gobridge echo: %v: %s", err, rest)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("left behind: %v", ents)
		}
	})
}

// pyAttackedListener is a Python Listener with a short handshake deadline:
// it prints "listening", then accepts and echoes one connection, then waits
// for its standard input to close.
const pyAttackedListener = `
import sys
import gobridge
with gobridge.Listener(sys.argv[1]) as l:
    l._impl._handshake_timeout = 0.5
    print("listening", flush=True)
    with l.accept(timeout=20) as c:
        c.send(c.recv())
    print("served", flush=True)
    sys.stdin.read()
`

// A Python listener against a hostile Go process: garbage, stalled
// dialers, and plain-pipe writers (bridge.OpenFIFOWriter, gobridge send
// --pipe) refused at once; a Go client gets through at once, and the stalled
// pairs are removed at the handshake deadline.
func TestFIFOPythonListenerUnderAttackFromGo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := testenv.ShortDir(t)
	path := filepath.Join(dir, "f")
	py := exec.CommandContext(ctx, testenv.Python(t), "-c", pyAttackedListener, "fifo:"+path)
	py.Stderr = os.Stderr
	stdin, _ := py.StdinPipe()
	stdout, _ := py.StdoutPipe()
	if err := py.Start(); err != nil {
		t.Fatal(err)
	}
	defer py.Wait()
	defer py.Process.Kill()
	lines := bufio.NewReader(stdout)
	if line, _ := lines.ReadString('\n'); line != "listening\n" {
		t.Fatalf("python listener: %q", line)
	}
	start := time.Now()
	if w, err := bridge.OpenFIFOWriter(ctx, path); !errors.Is(err, bridge.ErrAddrInUse) {
		if err == nil {
			w.Close()
		}
		t.Errorf("OpenFIFOWriter on the rendezvous: %v", err)
	}
	out, err := exec.CommandContext(ctx, testenv.Gobridge(t), "send", "--pipe", path, "1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "rendezvous") {
		t.Errorf("gobridge send --pipe on the rendezvous: %v: %s", err, out)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("refusing the plain writers took %v", d)
	}
	writeFIFOGarbage(t, path)
	stalled := []string{stallDialer(t, path), stallDialer(t, path)}
	start = time.Now()
	c, err := bridge.Dial(ctx, "fifo:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("dial took %v behind the stalled dialers", d)
	}
	if err := c.SendContext(ctx, "from go"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := c.RecvContext(ctx, &got); err != nil || got != "from go" {
		t.Fatalf("echo: %q %v", got, err)
	}
	c.Close()
	if line, _ := lines.ReadString('\n'); line != "served\n" {
		t.Fatalf("python listener: %q", line)
	}
	// Its handshakes with the stalled dialers give up at the deadline (0.5 s)
	// and remove their pairs.
	for _, base := range stalled {
		for _, s := range []string{".up", ".down"} {
			for {
				if _, err := os.Lstat(base + s); errors.Is(err, os.ErrNotExist) {
					break
				}
				if time.Since(start) > 5*time.Second {
					t.Fatalf("%s still there after %v", base+s, time.Since(start))
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	stdin.Close()
	if err := py.Wait(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}
