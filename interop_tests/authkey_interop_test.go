package interop_tests

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobridge/gobridge/bridge"
	"github.com/gobridge/gobridge/internal/testenv"
	"github.com/gobridge/gobridge/wire/pickle"
)

// bridge.WithAuthkey and bridge.WithCodec against unmodified stdlib
// multiprocessing.connection peers of every CPython 3.10-3.13 found (the
// legacy and the {digest} handshake), and against gobridge's Python Listener
// and Client on every transport.

// serveBridge accepts until l closes, answering each connection's one
// message with {"ok": True, "client": its "client"}; each Accept's result
// goes to results.
func serveBridge(l *bridge.Listener, results chan<- error) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c, err := l.Accept(ctx)
		cancel()
		if errors.Is(err, bridge.ErrClosed) {
			return
		}
		if err != nil {
			results <- err
			continue
		}
		var msg map[string]any
		err = c.Recv(&msg)
		if err == nil {
			err = c.Send(map[string]any{"ok": true, "client": msg["client"]})
		}
		c.Close()
		results <- err
	}
}

func TestBridgeListenerServesStdlibClient(t *testing.T) {
	for _, py := range stdlibPythons(t) {
		t.Run(filepath.Base(py), func(t *testing.T) {
			t.Parallel()
			addr := "unix:" + filepath.Join(testenv.ShortDir(t), "s")
			l, err := bridge.Listen(addr, bridge.WithAuthkey(reachKey), bridge.WithCodec(pickle.Codec{}))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			results := make(chan error, 64)
			go serveBridge(l, results)

			const n = 4
			path := strings.TrimPrefix(addr, "unix:")
			out, err := exec.Command(py, "-I", "-c", stdlibClient, path, string(reachKey), fmt.Sprint(n)).CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for i, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if line != fmt.Sprintf("{'ok': True, 'client': %d}", i) && line != fmt.Sprintf("{'client': %d, 'ok': True}", i) {
					t.Errorf("client %d got %s", i, line)
				}
			}
			for range n {
				if err := <-results; err != nil {
					t.Errorf("server: %v", err)
				}
			}
			out, err = exec.Command(py, "-I", "-c", stdlibClient, path, "wrong key", "1").CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "AuthenticationError" {
				t.Fatalf("wrong key: %v %s", err, out)
			}
			if err := <-results; !errors.Is(err, bridge.ErrAuthentication) {
				t.Fatalf("wrong key, server: %v", err)
			}
		})
	}
}

func TestBridgeDialToStdlibListener(t *testing.T) {
	for _, py := range stdlibPythons(t) {
		t.Run(filepath.Base(py), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(testenv.ShortDir(t), "s")
			cmd := exec.Command(py, "-I", "-c", stdlibListener, path, string(reachKey))
			stdout, _ := cmd.StdoutPipe()
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var once sync.Once
			wait := func() { once.Do(func() { cmd.Wait() }) }
			defer func() { cmd.Process.Kill(); wait() }()
			lines := bufio.NewScanner(stdout)
			if !lines.Scan() || lines.Text() != "ready" {
				t.Fatalf("listener: %q %s", lines.Text(), stderr.String())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			codec := bridge.WithCodec(pickle.Codec{})
			if _, err := bridge.Dial(ctx, path, bridge.WithAuthkey([]byte("wrong")), codec); !errors.Is(err, bridge.ErrAuthentication) {
				t.Fatalf("wrong key: %v", err)
			}
			if !lines.Scan() || lines.Text() != "refused" {
				t.Fatalf("listener after a wrong key: %q", lines.Text())
			}
			c, err := bridge.Dial(ctx, path, bridge.WithAuthkey(reachKey), codec)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Send(map[string]any{"n": 42, "list": []any{"a", nil}}); err != nil {
				t.Fatal(err)
			}
			var reply struct {
				Echo struct {
					N    int   `msgpack:"n"`
					List []any `msgpack:"list"`
				} `msgpack:"echo"`
				From []int `msgpack:"from"`
			}
			if err := c.Recv(&reply); err != nil {
				t.Fatal(err)
			}
			if reply.Echo.N != 42 || len(reply.Echo.List) != 2 || len(reply.From) != 2 || reply.From[0] != 3 {
				t.Fatalf("got %+v", reply)
			}
			if !lines.Scan() || lines.Text() != "done" {
				t.Fatalf("listener: %q %s", lines.Text(), stderr.String())
			}
		})
	}
}

// gobridge's Python, both roles, every transport, msgpack.
const gobridgeKeyed = `
import sys, gobridge
role, addr, key = sys.argv[1], sys.argv[2], sys.argv[3].encode()
if role == "client":
    try:
        with gobridge.Client(addr, authkey=key, timeout=20) as c:
            c.send({"client": 7})
            print(sorted(c.recv().items()))
    except gobridge.AuthenticationError:
        print("AuthenticationError")
else:
    with gobridge.Listener(addr, authkey=key) as l:
        print("ready", l.address, flush=True)
        for _ in range(2):
            try:
                with l.accept(timeout=20) as c:
                    c.send({"echo": c.recv()})
            except gobridge.AuthenticationError:
                print("refused", flush=True)
    print("done", flush=True)
`

func keyedInteropAddrs(t *testing.T) map[string]string {
	dir := testenv.ShortDir(t)
	return map[string]string{
		"unix": "unix:" + filepath.Join(dir, "k.sock"),
		"fifo": "fifo:" + filepath.Join(dir, "k.fifo"),
		"shm":  "shm:" + testenv.Name("akx"),
		"tcp":  "tcp:127.0.0.1:0",
	}
}

func TestAuthkeyGoListenerGobridgePythonClient(t *testing.T) {
	for name, addr := range keyedInteropAddrs(t) {
		t.Run(name, func(t *testing.T) {
			l, err := bridge.Listen(addr, bridge.WithAuthkey(reachKey))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			results := make(chan error, 8)
			go serveBridge(l, results)
			addr := l.Addr()
			out, err := testenv.PythonCmd(t, "-c", gobridgeKeyed, "client", addr, string(reachKey)).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "[('client', 7), ('ok', True)]" {
				t.Fatalf("%v %s", err, out)
			}
			if err := <-results; err != nil {
				t.Fatal(err)
			}
			out, err = testenv.PythonCmd(t, "-c", gobridgeKeyed, "client", addr, "wrong").CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "AuthenticationError" {
				t.Fatalf("%v %s", err, out)
			}
			if err := <-results; !errors.Is(err, bridge.ErrAuthentication) {
				t.Fatalf("server: %v", err)
			}
		})
	}
}

func TestAuthkeyGobridgePythonListenerGoClient(t *testing.T) {
	for name, addr := range keyedInteropAddrs(t) {
		t.Run(name, func(t *testing.T) {
			cmd := testenv.PythonCmd(t, "-c", gobridgeKeyed, "listener", addr, string(reachKey))
			stdout, _ := cmd.StdoutPipe()
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var once sync.Once
			wait := func() { once.Do(func() { cmd.Wait() }) }
			defer func() { cmd.Process.Kill(); wait() }()
			lines := bufio.NewScanner(stdout)
			if !lines.Scan() || !strings.HasPrefix(lines.Text(), "ready ") {
				t.Fatalf("listener: %q %s", lines.Text(), stderr.String())
			}
			addr := strings.TrimPrefix(lines.Text(), "ready ") // tcp: the port picked
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := bridge.Dial(ctx, addr, bridge.WithAuthkey([]byte("wrong"))); !errors.Is(err, bridge.ErrAuthentication) {
				t.Fatalf("wrong key: %v", err)
			}
			if !lines.Scan() || lines.Text() != "refused" {
				t.Fatalf("listener after a wrong key: %q %s", lines.Text(), stderr.String())
			}
			c, err := bridge.Dial(ctx, addr, bridge.WithAuthkey(reachKey))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Send(map[string]any{"n": 1}); err != nil {
				t.Fatal(err)
			}
			var got map[string]map[string]int
			if err := c.Recv(&got); err != nil || got["echo"]["n"] != 1 {
				t.Fatalf("got %v, %v", got, err)
			}
			if !lines.Scan() || lines.Text() != "done" {
				t.Fatalf("listener: %q %s", lines.Text(), stderr.String())
			}
		})
	}
}

// The seeds over TCP: a stdlib Listener(('127.0.0.1', 0),
// authkey=...) exchanging pickled dicts with a Go client, and a Go tcp:
// listener with an authkey serving a stdlib Client.
const stdlibTCPListener = `
import sys
from multiprocessing.connection import Listener, AuthenticationError
with Listener(("127.0.0.1", 0), authkey=sys.argv[1].encode()) as l:
    print("ready %d" % l.address[1], flush=True)
    for _ in range(2):
        try:
            with l.accept() as c:
                x = c.recv()
                c.send({"echo": x, "from": sys.version_info[:2], "peer": l.last_accepted[0]})
        except AuthenticationError:
            print("refused", flush=True)
print("done", flush=True)
`

const stdlibTCPClient = `
import sys
from multiprocessing.connection import Client, AuthenticationError
try:
    with Client(("127.0.0.1", int(sys.argv[1])), authkey=sys.argv[2].encode()) as c:
        c.send({"client": 1, "tags": {"a", "b"}, "pair": (1, "x")})
        print(sorted(c.recv().items()))
except AuthenticationError:
    print("AuthenticationError")
`

func TestTCPStdlibListenerGoClient(t *testing.T) {
	for _, py := range stdlibPythons(t) {
		t.Run(filepath.Base(py), func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(py, "-I", "-c", stdlibTCPListener, string(reachKey))
			stdout, _ := cmd.StdoutPipe()
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var once sync.Once
			wait := func() { once.Do(func() { cmd.Wait() }) }
			defer func() { cmd.Process.Kill(); wait() }()
			lines := bufio.NewScanner(stdout)
			if !lines.Scan() || !strings.HasPrefix(lines.Text(), "ready ") {
				t.Fatalf("listener: %q %s", lines.Text(), stderr.String())
			}
			addr := "tcp:127.0.0.1:" + strings.TrimPrefix(lines.Text(), "ready ")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			codec := bridge.WithCodec(pickle.Codec{})
			if _, err := bridge.Dial(ctx, addr, bridge.WithAuthkey([]byte("wrong")), codec); !errors.Is(err, bridge.ErrAuthentication) {
				t.Fatalf("wrong key: %v", err)
			}
			if !lines.Scan() || lines.Text() != "refused" {
				t.Fatalf("listener after a wrong key: %q", lines.Text())
			}
			c, err := bridge.Dial(ctx, addr, bridge.WithAuthkey(reachKey), codec)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Send(map[string]any{"n": 42, "tuple": pickle.Tuple{"a", 1}}); err != nil {
				t.Fatal(err)
			}
			var v any // into *any a tuple stays a pickle.Tuple
			if err := c.Recv(&v); err != nil {
				t.Fatal(err)
			}
			reply, _ := v.(map[string]any)
			echo, _ := reply["echo"].(map[string]any)
			if tup, _ := echo["tuple"].(pickle.Tuple); echo["n"] != int64(42) || len(tup) != 2 || reply["peer"] != "127.0.0.1" {
				t.Fatalf("got %#v", reply)
			}
			if !lines.Scan() || lines.Text() != "done" {
				t.Fatalf("listener: %q %s", lines.Text(), stderr.String())
			}
		})
	}
}

func TestTCPGoListenerStdlibClient(t *testing.T) {
	for _, py := range stdlibPythons(t) {
		t.Run(filepath.Base(py), func(t *testing.T) {
			t.Parallel()
			l, err := bridge.Listen("tcp:127.0.0.1:0", bridge.WithAuthkey(reachKey), bridge.WithCodec(pickle.Codec{}))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			results := make(chan error, 4)
			go serveBridge(l, results)
			port := l.Addr()[strings.LastIndexByte(l.Addr(), ':')+1:]
			out, err := exec.Command(py, "-I", "-c", stdlibTCPClient, port, string(reachKey)).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "[('client', 1), ('ok', True)]" {
				t.Fatalf("%v %s", err, out)
			}
			if err := <-results; err != nil {
				t.Fatal(err)
			}
			out, err = exec.Command(py, "-I", "-c", stdlibTCPClient, port, "wrong").CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "AuthenticationError" {
				t.Fatalf("%v %s", err, out)
			}
			if err := <-results; !errors.Is(err, bridge.ErrAuthentication) {
				t.Fatalf("server: %v", err)
			}
		})
	}
}
