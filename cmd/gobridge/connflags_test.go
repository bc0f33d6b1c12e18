package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gobridge/gobridge/bridge"
	"github.com/gobridge/gobridge/internal/testenv"
	"github.com/gobridge/gobridge/wire/pickle"
)

// keyedEchoServer is a Go listener with an authkey and a codec, echoing.
func keyedEchoServer(t *testing.T, addr string, opts ...bridge.ConnOption) string {
	t.Helper()
	l, err := bridge.Listen(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept(context.Background())
			if errors.Is(err, bridge.ErrClosed) {
				return
			} else if err != nil {
				continue
			}
			go func() {
				defer c.Close()
				var v any
				for c.Recv(&v) == nil {
					c.Send(v)
				}
			}()
		}
	}()
	return l.Addr()
}

func TestCLISendAuthkeyCodecTCP(t *testing.T) {
	dir := testenv.ShortDir(t)
	key := filepath.Join(dir, "key")
	os.WriteFile(key, []byte("k3y\n"), 0o600)
	wrong := filepath.Join(dir, "wrong")
	os.WriteFile(wrong, []byte("nope"), 0o600)
	addr := keyedEchoServer(t, "tcp:127.0.0.1:0", bridge.WithAuthkey([]byte("k3y")), bridge.WithCodec(pickle.Codec{}))
	out, errOut, code := runCLI(t, "", "send", "--reply", "--codec", "pickle", "--authkey-file", key, addr, `{"a":[1,{"$bin":"AQ=="}]}`)
	if code != 0 || out != "{\"a\":[1,{\"$bin\":\"AQ==\"}]}\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	_, errOut, code = runCLI(t, "", "send", "--reply", "--codec", "pickle", "--authkey-file", wrong, addr, `1`)
	if code != 1 || !strings.Contains(errOut, "authentication failed") {
		t.Fatalf("wrong key: exit %d, stderr %q", code, errOut)
	}
	for _, args := range [][]string{
		{"send", "--codec", "json", addr, "1"},
		{"send", "--authkey-file", filepath.Join(dir, "empty"), addr, "1"},
		{"echo", "tcp:0.0.0.0:0"},
	} {
		if args[1] == "--authkey-file" {
			os.WriteFile(args[2], nil, 0o600)
		}
		if _, errOut, code := runCLI(t, "", args...); code == 0 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}
