package interop_tests

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobridge/gobridge/bridge"
	"github.com/gobridge/gobridge/internal/testenv"
)

// batchSize is conn_peer.py's batch_size: mixed sizes, some larger than the
// 4096-byte batch.
func batchSize(seq int) int {
	if seq%50 == 7 {
		return 6000
	}
	return 8 + seq%90
}

// TestWriteBufferGoPython: batched sends (WithWriteBuffer, set_write_buffer)
// cross the language line both ways over unix:, fifo: and shm:, every
// message intact and in order; the sender never flushes by hand, its wait
// for the reply does.
func TestWriteBufferGoPython(t *testing.T) {
	const n = 3000
	for _, transport := range []string{"unix", "fifo", "shm"} {
		for _, dir := range []string{"go->python", "python->go"} {
			t.Run(transport+"/"+dir, func(t *testing.T) {
				var addr string
				switch transport {
				case "unix":
					addr = "unix:" + filepath.Join(testenv.ShortDir(t), "w.sock")
				case "fifo":
					addr = "fifo:" + filepath.Join(testenv.ShortDir(t), "w.fifo")
				case "shm":
					addr = "shm:" + testenv.Tag(t)
				}
				l, err := bridge.Listen(addr, bridge.WithWriteBuffer(4096))
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				role := "batched-recv"
				if dir == "python->go" {
					role = "batched-send"
				}
				cmd := testenv.PythonCmd(t, peerScript(), role, addr, fmt.Sprint(n))
				cmd.Stderr = os.Stderr
				var out bytes.Buffer
				cmd.Stdout = &out
				c := startAndAccept(t, l, cmd)
				c.SetDeadline(time.Now().Add(60 * time.Second))
				if dir == "go->python" {
					for seq := range n {
						if err := c.Send([]any{seq, bytes.Repeat([]byte{byte(seq)}, batchSize(seq))}); err != nil {
							t.Fatal(err)
						}
					}
					var reply string
					if err := c.Recv(&reply); err != nil || reply != fmt.Sprintf("ok %d", n) {
						t.Fatalf("python's reply: %q, %v", reply, err)
					}
					return
				}
				for seq := range n {
					var m []any
					if err := c.Recv(&m); err != nil {
						t.Fatalf("message %d: %v", seq, err)
					}
					b, _ := m[1].([]byte)
					if len(m) != 2 || fmt.Sprint(m[0]) != fmt.Sprint(seq) || !bytes.Equal(b, bytes.Repeat([]byte{byte(seq)}, batchSize(seq))) {
						t.Fatalf("message %d: got seq %v, %d bytes", seq, m[0], len(b))
					}
				}
				if err := c.Send("done"); err != nil {
					t.Fatal(err)
				}
				c.Flush()
				if err := cmd.Wait(); err != nil {
					t.Fatal(err)
				}
				if got := strings.TrimSpace(out.String()); got != "done" {
					t.Fatalf("python printed %q", got)
				}
			})
		}
	}
}
