package interop_tests

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobridge/gobridge/internal/authkey"
	"github.com/gobridge/gobridge/internal/testenv"
	"github.com/gobridge/gobridge/wire/pickle"
)

// The building blocks of issue 15 against unmodified stdlib code: a
// multiprocessing.connection Client or Listener with an authkey, exchanging
// pickled dicts with Go, which speaks raw frames through internal/authkey
// and wire/pickle directly (authkey_interop_test.go does the same through
// bridge.WithAuthkey and bridge.WithCodec).

// stdlibPythons returns CPython 3.10-3.13 ($GOBRIDGE_PYTHONS overrides):
// 3.10/3.11 answer in the legacy MD5 form, 3.12/3.13 in the {digest} form.
func stdlibPythons(t *testing.T) []string {
	t.Helper()
	if env := os.Getenv("GOBRIDGE_PYTHONS"); env != "" {
		return strings.Fields(env)
	}
	var found []string
	for _, v := range []string{"3.10", "3.11", "3.12", "3.13"} {
		m, _ := filepath.Glob("/root/.pyenv/versions/" + v + ".*/bin/python" + v)
		found = append(found, m...)
	}
	if len(found) == 0 {
		t.Skip("no CPython 3.10-3.13 found (set GOBRIDGE_PYTHONS)")
	}
	return found
}

var reachKey = []byte("reach secret")

const stdlibClient = `
import sys, threading
from multiprocessing.connection import Client, AuthenticationError
path, key, n = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
out = [None] * n
def run(i):
    try:
        with Client(path, family="AF_UNIX", authkey=key) as c:
            c.send({"client": i, "blob": b"\x00\xff", "pair": (1, 2.5), "tags": {"a"}})
            out[i] = repr(c.recv())
    except AuthenticationError as e:
        out[i] = "AuthenticationError"
ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
for t in ts: t.start()
for t in ts: t.join()
print("\n".join(out))
`

// serve is a Go accept loop as a listener would run it: each connection
// handshakes in its own goroutine, bounded by a deadline, so a silent or
// hostile client holds nothing up.
func serve(t *testing.T, l net.Listener, results chan<- error) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			s := authkey.NewStream(c)
			if err := authkey.Accept(ctx, s, reachKey); err != nil {
				results <- err
				return
			}
			p, err := s.RecvBytesMax(ctx, 1<<20)
			if err != nil {
				results <- err
				return
			}
			v, err := pickle.Decode(p)
			if err != nil {
				results <- err
				return
			}
			msg, _ := v.(map[string]any)
			blob, _ := msg["blob"].([]byte)
			pair, _ := msg["pair"].(pickle.Tuple)
			tags, _ := msg["tags"].(pickle.Set)
			if _, ok := tags["a"]; !ok || len(blob) != 2 || blob[1] != 0xff || len(pair) != 2 || pair[1] != 2.5 {
				results <- fmt.Errorf("decoded %#v", v)
				return
			}
			reply, err := pickle.Encode(map[string]any{"ok": true, "client": msg["client"]})
			if err == nil {
				err = s.SendBytesContext(ctx, reply)
			}
			results <- err
		}()
	}
}

func TestStdlibClientWithAuthkey(t *testing.T) {
	for _, py := range stdlibPythons(t) {
		t.Run(filepath.Base(py), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(testenv.ShortDir(t), "s")
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			results := make(chan error, 64)
			go serve(t, l, results)

			// A silent client and one sending garbage, while the real ones
			// handshake.
			silent, err := net.Dial("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer silent.Close()
			garbage, err := net.Dial("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			garbage.Write([]byte{0x7f, 0xff, 0xff, 0xff, 'x'})
			defer garbage.Close()

			const n = 8
			out, err := exec.Command(py, "-c", stdlibClient, path, string(reachKey), fmt.Sprint(n)).CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != n {
				t.Fatalf("python: %s", out)
			}
			for i, line := range lines {
				if line != fmt.Sprintf("{'client': %d, 'ok': True}", i) && line != fmt.Sprintf("{'ok': True, 'client': %d}", i) {
					t.Errorf("client %d got %s", i, line)
				}
			}
			var ok, authFailed, deadline int
			for range n + 2 {
				select {
				case err := <-results:
					switch {
					case err == nil:
						ok++
					case errors.Is(err, authkey.ErrAuthentication):
						authFailed++
						if errors.Is(err, os.ErrDeadlineExceeded) {
							deadline++
						}
					default:
						t.Errorf("server: %v", err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("the listener stopped serving")
				}
			}
			if ok != n || deadline != 1 || authFailed != 2 {
				t.Fatalf("%d served, %d auth failures (%d of them deadlines); want %d, 2, 1", ok, authFailed, deadline, n)
			}

			// The wrong key: AuthenticationError in Python, ErrAuthentication in Go.
			out, err = exec.Command(py, "-c", stdlibClient, path, "wrong key", "1").CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != "AuthenticationError" {
				t.Fatalf("wrong key: %v %s", err, out)
			}
			if err := <-results; !errors.Is(err, authkey.ErrAuthentication) {
				t.Fatalf("wrong key, server: %v", err)
			}
		})
	}
}

const stdlibListener = `
import sys
from multiprocessing.connection import Listener, AuthenticationError
path, key = sys.argv[1], sys.argv[2].encode()
with Listener(path, family="AF_UNIX", authkey=key) as l:
    print("ready", flush=True)
    for _ in range(2):
        try:
            with l.accept() as c:
                x = c.recv()
                c.send({"echo": x, "from": sys.version_info[:2]})
        except AuthenticationError:
            print("refused", flush=True)
print("done", flush=True)
`

func TestStdlibListenerWithAuthkey(t *testing.T) {
	for _, py := range stdlibPythons(t) {
		t.Run(filepath.Base(py), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(testenv.ShortDir(t), "s")
			cmd := exec.Command(py, "-c", stdlibListener, path, string(reachKey))
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
			dial := func(key []byte) (*authkey.Stream, context.Context, error) {
				c, err := net.Dial("unix", path)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				t.Cleanup(cancel)
				s := authkey.NewStream(c)
				return s, ctx, authkey.Connect(ctx, s, key)
			}
			if _, _, err := dial([]byte("wrong")); !errors.Is(err, authkey.ErrAuthentication) {
				t.Fatalf("wrong key: %v", err)
			}
			if !lines.Scan() || lines.Text() != "refused" {
				t.Fatalf("listener after a wrong key: %q", lines.Text())
			}
			s, ctx, err := dial(reachKey)
			if err != nil {
				t.Fatal(err)
			}
			p, _ := pickle.Encode(map[string]any{"n": 42, "list": []any{"a", nil}})
			if err := s.SendBytesContext(ctx, p); err != nil {
				t.Fatal(err)
			}
			p, err = s.RecvBytesMax(ctx, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			v, err := pickle.Decode(p)
			if err != nil {
				t.Fatal(err)
			}
			m := v.(map[string]any)
			echo := m["echo"].(map[string]any)
			if echo["n"] != int64(42) || len(echo["list"].([]any)) != 2 || len(m["from"].(pickle.Tuple)) != 2 {
				t.Fatalf("got %#v", v)
			}
			if !lines.Scan() || lines.Text() != "done" {
				t.Fatalf("listener: %q %s", lines.Text(), stderr.String())
			}
		})
	}
}
