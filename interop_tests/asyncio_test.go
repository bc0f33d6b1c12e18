package interop_tests

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobridge/gobridge/bridge"
	"github.com/gobridge/gobridge/internal/testenv"
)

func asyncioPeer() string {
	return filepath.Join(testenv.RepoRoot(), "interop_tests", "peers", "asyncio_peer.py")
}

// asyncioRoundTrips sends n messages on c, each answered by the asyncio peer
// with [seq, msg].
func asyncioRoundTrips(ctx context.Context, c *bridge.Conn, id, n int) error {
	for j := 0; j < n; j++ {
		msg := map[string]any{"id": int64(id), "j": int64(j), "pad": string(make([]byte, (id*13+j)%700))}
		if err := c.SendContext(ctx, msg); err != nil {
			return err
		}
		var got []any
		if err := c.RecvContext(ctx, &got); err != nil {
			return err
		}
		want := []any{int64(j), map[string]any{"id": int64(id), "j": int64(j), "pad": msg["pad"]}}
		if len(got) != 2 || !reflect.DeepEqual(normalizeInts(got), want) {
			return fmt.Errorf("client %d message %d: got %#v", id, j, got)
		}
	}
	return nil
}

func normalizeInts(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeInts(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalizeInts(e)
		}
		return out
	case uint64:
		return int64(x)
	case int8, int16, int32, uint8, uint16, uint32:
		return reflect.ValueOf(x).Convert(reflect.TypeOf(int64(0))).Interface()
	}
	return v
}

// 100 Go clients at once against one gobridge.asyncio listener, over unix:
// and fifo:, each doing request/response; the Python side is one event loop.
func TestGoClientsAsyncioListener(t *testing.T) {
	const clients, rounds = 100, 20
	for _, scheme := range []string{"unix", "fifo", "tcp"} {
		t.Run(scheme, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
			defer cancel()
			addr := scheme + ":" + filepath.Join(testenv.ShortDir(t), "a")
			if scheme == "tcp" {
				l, err := bridge.Listen("tcp:127.0.0.1:0")
				if errors.Is(err, bridge.ErrUnsupportedTransport) {
					t.Skip("no tcp: transport in this build")
				}
				if err != nil {
					t.Fatal(err)
				}
				l.Close()
				addr = "tcp:127.0.0.1:0"
			}
			cmd := testenv.PythonCmd(t, asyncioPeer(), "echo", addr, fmt.Sprint(clients))
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "listening ") {
				t.Fatalf("peer: %q, %v", line, err)
			}
			addr = strings.TrimSpace(strings.TrimPrefix(line, "listening "))
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for i := 0; i < clients; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := bridge.Dial(ctx, addr)
					if err != nil {
						errs <- err
						return
					}
					defer c.Close()
					errs <- asyncioRoundTrips(ctx, c, i, rounds)
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("asyncio peer: %v", err)
			}
		})
	}
}

// A Go parent hands a socket pair end to an asyncio child (gobridge.parent()
// wrapped by gobridge.asyncio.wrap).
func TestGoParentAsyncioChild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, cmd := func() (*bridge.Conn, interface{ Wait() error }) {
		mine, theirs, err := bridge.Pipe(true)
		if err != nil {
			t.Fatal(err)
		}
		cmd := testenv.PythonCmd(t, asyncioPeer(), "pipe")
		cmd.Stderr = os.Stderr
		if err := bridge.StartWithConn(cmd, theirs); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mine.Close(); cmd.Process.Kill(); cmd.Wait() })
		return mine, cmd
	}()
	if err := asyncioRoundTrips(ctx, c, 7, 200); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("asyncio child: %v", err)
	}
}
