package interop_tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gobridge/gobridge/bridge"
	"github.com/gobridge/gobridge/internal/testenv"
	"github.com/gobridge/gobridge/internal/vectors"
	"github.com/gobridge/gobridge/wire"
)

// TestHelperProcess is not a test: Go->Go tests re-run the test binary as
// the child with GOBRIDGE_HELPER set (go-plugin's pattern).
func TestHelperProcess(t *testing.T) {
	var c *bridge.Conn
	var err error
	switch os.Getenv("GOBRIDGE_HELPER") {
	case "":
		return
	case "echo-parent":
		c, err = bridge.Parent()
	case "echo-dial":
		c, err = bridge.Dial(context.Background(), os.Getenv("GOBRIDGE_HELPER_ADDR"))
	default:
		os.Exit(5)
	}
	if err != nil {
		os.Exit(3)
	}
	for { // decode each message and send the decoded value back
		var v any
		if err := c.Recv(&v); err != nil {
			os.Exit(0)
		}
		if err := c.Send(v); err != nil {
			os.Exit(4)
		}
	}
}

// Every vector Go -> Go across two processes, over an inherited socket pair
// and over a unix socket: the child decodes and re-encodes each one.
func TestVectorsGoGo(t *testing.T) {
	valid := vectors.Valid(vectors.Load(t))
	for _, transport := range []string{"pipe", "unix"} {
		t.Run(transport, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
			cmd.Stderr = os.Stderr
			var c *bridge.Conn
			if transport == "pipe" {
				mine, theirs, err := bridge.Pipe(true)
				if err != nil {
					t.Fatal(err)
				}
				cmd.Env = append(os.Environ(), "GOBRIDGE_HELPER=echo-parent")
				if err := bridge.StartWithConn(cmd, theirs); err != nil {
					t.Fatal(err)
				}
				c = mine
			} else {
				l, err := bridge.Listen(filepath.Join(testenv.ShortDir(t), "gg.sock"))
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				cmd.Env = append(os.Environ(), "GOBRIDGE_HELPER=echo-dial", "GOBRIDGE_HELPER_ADDR="+l.Addr())
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				if c, err = l.Accept(ctx); err != nil {
					cmd.Process.Kill()
					t.Fatal(err)
				}
			}
			defer func() { c.Close(); waitTimeout(cmd, 20*time.Second) }()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for _, v := range valid {
				p, _ := v.Payload()
				if err := c.SendBytesContext(ctx, p); err != nil {
					t.Fatal(err)
				}
				back, err := c.RecvBytesContext(ctx)
				if err != nil {
					t.Fatalf("%s: %v", v.Name, err)
				}
				if v.Canonical && string(back) != string(p) {
					t.Errorf("%s: the Go child re-encoded %x as %x", v.Name, p, back)
				}
				want, err := expectedValue(v)
				if err != nil {
					t.Fatal(err)
				}
				var got any
				if err := wire.Unmarshal(back, &got); err != nil || !vectors.Same(got, want) {
					t.Errorf("%s: came back as %#v, %v", v.Name, got, err)
				}
			}
		})
	}
}
