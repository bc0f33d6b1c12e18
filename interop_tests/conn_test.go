package interop_tests

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobridge/gobridge/bridge"
	"github.com/gobridge/gobridge/internal/testenv"
	"github.com/gobridge/gobridge/internal/vectors"
	"github.com/gobridge/gobridge/wire"
)

func peerScript() string {
	return filepath.Join(testenv.RepoRoot(), "interop_tests", "peers", "conn_peer.py")
}

func seedScript(name string) string {
	return filepath.Join(testenv.RepoRoot(), "interop_tests", "seeds", name)
}

// startPeer starts conn_peer.py ROLE over a transport: "unix" (the peer dials
// our listener) or "pipe" (the peer inherits a socket pair end).
func startPeer(t *testing.T, transport, role string, args ...string) (*bridge.Conn, *exec.Cmd) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	switch transport {
	case "pipe":
		mine, theirs, err := bridge.Pipe(true)
		if err != nil {
			t.Fatal(err)
		}
		cmd := testenv.PythonCmd(t, append([]string{peerScript(), role, "-"}, args...)...)
		cmd.Stderr = os.Stderr
		if err := bridge.StartWithConn(cmd, theirs); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mine.Close(); cmd.Process.Kill(); cmd.Wait() })
		return mine, cmd
	case "unix":
		l, err := bridge.Listen("unix:" + filepath.Join(testenv.ShortDir(t), "peer.sock"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		cmd := testenv.PythonCmd(t, append([]string{peerScript(), role, l.Addr()}, args...)...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c, err := l.Accept(ctx)
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("python peer did not connect: %v", err)
		}
		t.Cleanup(func() { c.Close(); cmd.Process.Kill(); cmd.Wait() })
		return c, cmd
	}
	t.Fatalf("unknown transport %s", transport)
	return nil, nil
}

// Every vector crosses Go->Python (as the vector's bytes and as a value Go
// encoded) and Python->Go, over a unix socket and over an inherited socket
// pair. Python checks what it got against the vector; Go checks what it got.
func TestVectorsGoPython(t *testing.T) {
	valid := vectors.Shared(vectors.Load(t))
	for _, transport := range []string{"unix", "pipe"} {
		t.Run(transport, func(t *testing.T) {
			c, cmd := startPeer(t, transport, "vectors")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for round, how := range []string{"vector bytes", "Go-encoded value"} {
				for _, v := range valid {
					p, err := v.Payload()
					if err != nil {
						t.Fatal(err)
					}
					if round == 0 {
						err = c.SendBytesContext(ctx, p)
					} else {
						want, err2 := expectedValue(v)
						if err2 != nil {
							t.Fatal(err2)
						}
						err = c.SendContext(ctx, want)
					}
					if err != nil {
						t.Fatalf("%s: send: %v", v.Name, err)
					}
					var reply []any
					if err := c.RecvContext(ctx, &reply); err != nil {
						t.Fatalf("%s: reply: %v", v.Name, err)
					}
					if reply[0] != true {
						t.Errorf("%s (%s): Python decoded %v as %v", v.Name, how, reply[1], reply[2])
					}
					if v.Py != "" && reply[1] != v.Py {
						t.Errorf("%s (%s): Python type %v, want %s", v.Name, how, reply[1], v.Py)
					}
				}
			}
			for _, v := range valid { // Python -> Go
				var got any
				if err := c.RecvContext(ctx, &got); err != nil {
					t.Fatalf("%s: recv from Python: %v", v.Name, err)
				}
				want, _ := expectedValue(v)
				if !vectors.Same(got, wantAfterPython(v, want)) {
					t.Errorf("%s: Go got %#v from Python, want %#v", v.Name, got, want)
				}
			}
			c.Close()
			if err := cmd.Wait(); err != nil {
				t.Fatalf("python peer: %v", err)
			}
		})
	}
}

func expectedValue(v vectors.Vector) (any, error) { return v.Expected(wire.FromJSON) }

// wantAfterPython is what Go gets back when Python re-sends a vector's value:
// Python datetimes hold microseconds, so nanoseconds are truncated.
func wantAfterPython(v vectors.Vector, want any) any {
	if tm, ok := want.(time.Time); ok {
		return tm.Truncate(time.Microsecond)
	}
	return want
}

// Seed 003's AF_UNIX server, run unchanged: a Go client speaks its raw
// protocol and gets 'copy! <ctime>' back.
func TestSeed003PythonServerGoClient(t *testing.T) {
	dir := testenv.ShortDir(t)
	cmd := testenv.PythonCmd(t, seedScript("seed003_unix_server.py"))
	cmd.Dir = dir
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sock := filepath.Join(dir, "msg.sock")
	var nc net.Conn
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if nc, err = bridge.DialRaw(context.Background(), sock); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("seed server never listened: %v", err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	for _, msg := range []string{"hello", "from Go"} {
		nc.Write([]byte(msg))
		buf := make([]byte, 1024)
		n, err := nc.Read(buf)
		if err != nil || !strings.HasPrefix(string(buf[:n]), "copy! ") {
			t.Fatalf("reply %q, %v", buf[:n], err)
		}
	}
	nc.Close()
	// the server printed what it received
	sc := bufio.NewScanner(out)
	for _, want := range []string{"hello", "from Go"} {
		if !sc.Scan() || sc.Text() != want {
			t.Fatalf("server printed %q, want %q", sc.Text(), want)
		}
	}
}

// Seed 003's client, run unchanged (it reads lines from input()), against a
// Go server on a raw socket.
func TestSeed003GoServerPythonClient(t *testing.T) {
	dir := testenv.ShortDir(t)
	l, err := bridge.Listen(filepath.Join(dir, "msg.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		nc, err := l.AcceptRaw(context.Background())
		if err != nil {
			return
		}
		defer nc.Close()
		buf := make([]byte, 1024)
		for {
			n, err := nc.Read(buf)
			if err != nil {
				return
			}
			nc.Write([]byte("copy! " + string(buf[:n]) + " " + time.Now().Format("Mon Jan _2 15:04:05 2006")))
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.Python(t), seedScript("seed003_unix_client.py"))
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader("one\ntwo\n\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("seed client: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "copy! one") || !strings.Contains(string(out), "copy! two") {
		t.Fatalf("seed client printed %q", out)
	}
}

// The framed msgpack version of seed 003's exchange, both ways round.
func TestCopyServerFramed(t *testing.T) {
	t.Run("go-server-python-client", func(t *testing.T) {
		l, err := bridge.Listen(filepath.Join(testenv.ShortDir(t), "copy.sock"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			c, err := l.Accept(context.Background())
			if err != nil {
				return
			}
			defer c.Close()
			for {
				var msg string
				if err := c.Recv(&msg); err != nil {
					return
				}
				c.Send("copy! " + time.Now().Format("Mon Jan _2 15:04:05 2006"))
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, testenv.Python(t), peerScript(), "copy-client", l.Addr(), "a", "b").CombinedOutput()
		if err != nil || strings.Count(string(out), "copy! ") != 2 {
			t.Fatalf("python client: %v\n%s", err, out)
		}
	})
	t.Run("python-server-go-client", func(t *testing.T) {
		addr := "unix:" + filepath.Join(testenv.ShortDir(t), "copy.sock")
		cmd := testenv.PythonCmd(t, peerScript(), "copy-server", addr)
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		sc := bufio.NewScanner(out)
		if !sc.Scan() || sc.Text() != "listening" {
			t.Fatalf("python server: %q", sc.Text())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := bridge.Dial(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range []string{"hello", "again"} {
			c.SendContext(ctx, msg)
			var reply string
			if err := c.RecvContext(ctx, &reply); err != nil || !strings.HasPrefix(reply, "copy! ") {
				t.Fatalf("reply %q, %v", reply, err)
			}
			if !sc.Scan() || sc.Text() != msg {
				t.Fatalf("server printed %q, want %q", sc.Text(), msg)
			}
		}
		c.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("python server: %v", err)
		}
	})
}

// A stdlib multiprocessing.connection.Client reads and writes gobridge frames.
func TestStdlibClientToGoListener(t *testing.T) {
	l, err := bridge.Listen(filepath.Join(testenv.ShortDir(t), "std.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var got []any
	go func() {
		c, err := l.Accept(context.Background())
		if err != nil {
			return
		}
		defer c.Close()
		for {
			var v any
			if err := c.Recv(&v); err != nil {
				return
			}
			got = append(got, v)
			c.Send(v)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, path, _ := bridge.ParseAddress(l.Addr())
	out, err := exec.CommandContext(ctx, testenv.Python(t), peerScript(), "stdlib-client", path).Output()
	if err != nil {
		t.Fatalf("stdlib client: %v", err)
	}
	// Go writes map keys in its fixed order (SPEC 3.1): -2 before 1.
	want := `[{"args": [1, 2], "op": "add"}, {"$map": [[-2, {"$bin": "AGJpbg=="}], [1, "int key"]]}, [1.5, null, true]]`
	if strings.TrimSpace(string(out)) != want {
		t.Fatalf("stdlib client got back %s\nwant %s", out, want)
	}
	text, _ := json.Marshal(len(got))
	if string(text) != "3" {
		t.Fatalf("Go received %d messages", len(got))
	}
	if m := got[1].(map[any]any); m[int64(1)] != "int key" || string(m[int64(-2)].([]byte)) != "\x00bin" {
		t.Fatalf("int keys from the stdlib client: %#v", got[1])
	}
}

// Seed 003's Pipe example with a Go parent and a Python child, over a duplex
// and a one-way pipe: the Python child runs the seed's fun2 (blocks in recv,
// prints what came) while Go sends; then the Python child runs fun1 (sends
// after the seed's two seconds) while Go blocks in Recv.
func TestSeed003PipeGoParent(t *testing.T) {
	for _, duplex := range []bool{true, false} {
		name := map[bool]string{true: "duplex", false: "one-way"}[duplex]
		t.Run(name+"/python-fun2", func(t *testing.T) {
			fd1, fd2, err := bridge.Pipe(duplex) // fd1 receives, fd2 sends (one-way)
			if err != nil {
				t.Fatal(err)
			}
			defer fd2.Close()
			p2 := testenv.PythonCmd(t, seedScript("seed003_pipe.py"), "fun2")
			var out strings.Builder
			p2.Stdout, p2.Stderr = &out, os.Stderr
			if err := bridge.StartWithConn(p2, fd1); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // fun1's delay, shortened on the Go side
			if err := fd2.Send("msg"); err != nil {
				t.Fatal(err)
			}
			if err := waitTimeout(p2, 30*time.Second); err != nil {
				t.Fatalf("fun2: %v", err)
			}
			if out.String() != "msg\n" {
				t.Fatalf("fun2 printed %q", out.String())
			}
		})
		t.Run(name+"/python-fun1", func(t *testing.T) {
			fd1, fd2, err := bridge.Pipe(duplex)
			if err != nil {
				t.Fatal(err)
			}
			defer fd1.Close()
			p1 := testenv.PythonCmd(t, seedScript("seed003_pipe.py"), "fun1")
			p1.Stderr = os.Stderr
			if err := bridge.StartWithConn(p1, fd2); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var got string
			if err := fd1.RecvContext(ctx, &got); err != nil || got != "msg" {
				t.Fatalf("fun1 sent %q, %v", got, err)
			}
			if err := waitTimeout(p1, 30*time.Second); err != nil {
				t.Fatalf("fun1: %v", err)
			}
		})
	}
}

// waitTimeout waits for cmd, killing it after d.
func waitTimeout(cmd *exec.Cmd, d time.Duration) error {
	timer := time.AfterFunc(d, func() { cmd.Process.Kill() })
	defer timer.Stop()
	return cmd.Wait()
}

// Sending on the receive end of a one-way pipe fails clearly in Go; the
// Python side of the same misuse is checked by pytest.
func TestOneWayMisuseGo(t *testing.T) {
	r, w, _ := bridge.Pipe(false)
	defer r.Close()
	defer w.Close()
	if err := r.Send("x"); !errors.Is(err, bridge.ErrNotWritable) {
		t.Fatalf("send on receive end: %v", err)
	}
}

// A Python child killed with SIGKILL in the middle of a message: Go gets a
// clean error at once, never a hang or a partial message.
func TestPythonChildKilledMidMessage(t *testing.T) {
	for _, transport := range []string{"unix", "pipe"} {
		t.Run(transport, func(t *testing.T) {
			c, cmd := startPeer(t, transport, "half-frame")
			if ok, err := c.Poll(20 * time.Second); !ok || err != nil {
				t.Fatalf("peer wrote nothing: %v %v", ok, err)
			}
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			done := make(chan error, 1)
			go func() {
				var v any
				done <- c.Recv(&v)
			}()
			select {
			case err := <-done:
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Go side hangs after the Python peer was killed")
			}
			if err := c.Send("anyone?"); !errors.Is(err, bridge.ErrBrokenPipe) {
				// the first write after the peer's death may still be buffered by the kernel
				if err2 := c.SendBytes(make([]byte, 1<<20)); !errors.Is(err2, bridge.ErrBrokenPipe) {
					t.Fatalf("send to a dead peer: %v / %v", err, err2)
				}
			}
		})
	}
}
